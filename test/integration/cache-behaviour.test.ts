// The behaviour suite of test/support/cache-behaviour.ts against real memcached over the text,
// binary and meta protocols and against the embedded store: one set of assertions, four
// backends, so the store cannot drift from what memcached does. They run side by side — each
// has its own memcached or store — so the suite costs about one TTL wait, not four.

import { describe } from 'node:test';

import { Client } from '../../src/cluster/client.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { defineCacheBehaviour, type BehaviourBackend } from '../support/cache-behaviour.js';
import { startMemcached } from '../support/memcached.js';
import { PrefixedView } from '../support/prefixed-view.js';

describe('one behaviour, four backends', { concurrency: true }, () => {
  for (const protocol of ['text', 'binary', 'meta'] as const) {
    defineCacheBehaviour(`memcached, ${protocol} protocol`, async () => {
      const mc = await startMemcached();
      // startMemcached trusts whatever answers on the port it picked; with test files running in
      // parallel another memcached may have taken it, and two suites sharing one server would
      // flush and overwrite each other's keys. Make sure the server is ours.
      const probe = new Client({ servers: [mc.address] });
      const pid = (await probe.stats()).at(0)?.value?.['pid'];
      await probe.close();
      if (pid !== String(mc.pid)) {
        await mc.stop();
        throw new Error(`${mc.address} is served by pid ${pid}, not by the memcached started for this suite (${mc.pid})`);
      }
      const clients: Client[] = [];
      return {
        meta: protocol === 'meta',
        open: async (keyPrefix) => {
          const client = new Client({ servers: [mc.address], protocol, keyPrefix });
          clients.push(client);
          return client satisfies BehaviourBackend;
        },
        close: async () => {
          await Promise.all(clients.map((c) => c.close()));
          await mc.stop();
        },
      };
    });
  }

  defineCacheBehaviour('the embedded MemoryStore', async () => {
    // Real time plus whatever the suite has moved it by, so absolute Unix times mean the same here.
    let offsetMs = 0;
    // The server's raw key space; every backend is a client of it under its own prefix.
    const raw = new MemoryStore({ now: () => Date.now() + offsetMs });
    return {
      open: async (keyPrefix) => (keyPrefix === '' ? raw : new PrefixedView(raw, keyPrefix)) satisfies BehaviourBackend,
      advanceSeconds: async (seconds) => {
        offsetMs += seconds * 1000;
      },
      close: async () => {
        await raw.close();
      },
    };
  });
});
