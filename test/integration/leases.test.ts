// The lease engine on real memcached (test/support/lease-behaviour.ts): one server over each
// protocol, and a 3-server cluster (consistent placement), each open() a Client of its own.

import { describe } from 'node:test';

import { Client, type ClientOptions } from '../../src/cluster/client.js';
import { defineLeaseBehaviour } from '../support/lease-behaviour.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';

function harness(servers: number, options: Omit<ClientOptions, 'servers'>) {
  return async () => {
    const mcs: MemcachedProcess[] = await Promise.all(Array.from({ length: servers }, () => startMemcached()));
    const clients: Client[] = [];
    return {
      open: async () => {
        const c = new Client({ servers: mcs.map((m) => m.address), ...options });
        clients.push(c);
        return c;
      },
      close: async () => {
        await Promise.all(clients.map((c) => c.close()));
        await Promise.all(mcs.map((m) => m.stop()));
      },
    };
  };
}

describe('leases on memcached', { concurrency: true }, () => {
  defineLeaseBehaviour('memcached, text protocol', harness(1, { protocol: 'text' }));
  defineLeaseBehaviour('memcached, binary protocol', harness(1, { protocol: 'binary' }));
  defineLeaseBehaviour('memcached, meta protocol', harness(1, { protocol: 'meta' }));
  defineLeaseBehaviour('3-server cluster, meta, keyprefix', harness(3, { protocol: 'meta', keyPrefix: 'pbx:' }));
  defineLeaseBehaviour('3-server cluster, binary, keyprefix', harness(3, { protocol: 'binary', keyPrefix: 'pbx:' }));
  defineLeaseBehaviour('3-server cluster, text', harness(3, { protocol: 'text' }));
});
