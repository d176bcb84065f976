// The client's placement options against libmemcached's own placements
// (test/fixtures/vectors/placement-consistent.json): continuumHash and socketPointNames must reach
// the continuum, so a Client configured like the memcached_st of a scenario locates every key
// where libmemcached did. The live counterparts (real PHP Memcached and pylibmc) are in
// test/integration/neighbours.test.ts; this runs everywhere, without them. No connection opens:
// locate() only routes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Client, type ClientOptions } from '../../src/cluster/client.js';
import { hexBytes, readJsonFixture } from '../support/fixtures.js';

interface Scenario {
  id: string;
  state: { servers: Array<{ hostname: string; port: number; type: string }> };
  keys: Array<{ key_hex: string; server_index: number }>;
}

const file = readJsonFixture<{ scenarios: Scenario[] }>('vectors', 'placement-consistent.json');

function scenario(id: string): Scenario {
  const s = file.scenarios.find((x) => x.id === id);
  if (s === undefined) throw new Error(`no scenario ${id} in placement-consistent.json`);
  return s;
}

/** How many of the scenario's keys this client places on another server than libmemcached did. */
function misplaced(s: Scenario, options: Omit<ClientOptions, 'servers'>): number {
  const servers = s.state.servers.map((x) => (x.type === 'SOCKET' ? x.hostname : `${x.hostname}:${x.port}`));
  const client = new Client({ servers, ...options });
  return s.keys.filter((k) => client.locate(Buffer.from(hexBytes(k.key_hex))) !== servers[k.server_index]).length;
}

describe('client placement options against libmemcached', () => {
  it('continuumHash: the hash set after the servers keys the lookups, the points keep the old one', () => {
    // --DISTRIBUTION=consistent, three servers, then behavior HASH=MD5 (PHP: OPT_HASH after addServers).
    const s = scenario('consistent-3-hash-set-after-servers');
    assert.equal(misplaced(s, { distribution: 'consistent', hash: 'md5', continuumHash: 'default' }), 0);
    assert.ok(misplaced(s, { distribution: 'consistent', hash: 'md5' }) > s.keys.length / 10);
  });

  it("socketPointNames 'path:0': a socket added with memcached_server_add_unix_socket (port 0)", () => {
    const s = scenario('consistent-socket-mixed');
    assert.equal(s.state.servers[0]?.port, 0);
    assert.equal(misplaced(s, { distribution: 'consistent', socketPointNames: 'path:0' }), 0);
    // The default names the points as PHP's addServer('/path', 0) does (port 11211): elsewhere.
    assert.ok(misplaced(s, { distribution: 'consistent' }) > s.keys.length / 10);
  });
});
