// The client's placement options against libmemcached's own placements
// (test/fixtures/vectors/placement-consistent.json): continuumHash and socketPointNames must reach
// the continuum, so a Client configured like the memcached_st of a scenario locates every key
// where libmemcached did. The live counterparts (real PHP Memcached and pylibmc) are in
// test/integration/neighbours.test.ts; this runs everywhere, without them. No connection opens:
// locate() only routes. The reroute tests at the end use in-memory servers (a SocketFactory).

import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, it } from 'node:test';

import { Client, type ClientOptions } from '../../src/cluster/client.js';
import type { SocketFactory } from '../../src/memcache/connection.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
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

/**
 * Text-protocol servers in memory: `dead` refuses every connect; the others answer every get
 * with a miss and record which server saw which request line.
 */
function fakeServers(dead: string, seen: Array<{ server: string; line: string }>): SocketFactory {
  return (address) => {
    const server = address.kind === 'tcp' ? `${address.host}:${address.port}` : address.path;
    const socket: Duplex = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('latin1').split('\r\n')) {
          if (line === '') continue;
          seen.push({ server, line });
          socket.push(line.startsWith('get ') ? 'END\r\n' : 'ERROR\r\n');
        }
        done();
      },
    });
    process.nextTick(() => {
      if (server === dead) socket.emit('error', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
      else socket.emit('connect');
    });
    return socket;
  };
}

describe('an unsent request follows its key when its server is ejected', () => {
  const servers = ['10.0.0.1:11211', '10.0.0.2:11211', '10.0.0.3:11211'];
  const dead = servers[1]!;

  function client(hashWithPrefix: boolean, seen: Array<{ server: string; line: string }>): Client {
    return new Client({ servers, protocol: 'text', keyPrefix: 'app:', hashWithPrefix, removeFailedServers: true, serverFailureLimit: 1, socketFactory: fakeServers(dead, seen) });
  }

  /** Keys whose home, as `c` places them now, is the dead server. */
  function keysOnDead(c: Client, n: number): string[] {
    const keys = Array.from({ length: 200 }, (_, i) => `key-${i}`).filter((k) => c.locate(k) === dead);
    assert.ok(keys.length >= n, 'the continuum puts some keys on every server');
    return keys.slice(0, n);
  }

  for (const hashWithPrefix of [false, true]) {
    it(`keyPrefix with hashWithPrefix ${hashWithPrefix}: the get lands where locate() places the key after the ejection`, async () => {
      const seen: Array<{ server: string; line: string }> = [];
      const c = client(hashWithPrefix, seen);
      try {
        const keys = keysOnDead(c, 5);
        // The connect is refused before the gets are written: failure 1 ejects the server and
        // each get goes to its key's new home, which answers a miss, instead of failing.
        assert.deepEqual(await Promise.all(keys.map((k) => c.get(k))), keys.map(() => null));
        assert.equal(c.health()[1]?.state, 'ejected');
        const expected = keys.map((k) => ({ server: c.locate(k), line: `get app:${k}` }));
        assert.ok(expected.every((e) => e.server !== null && e.server !== dead));
        const bySeen = (a: { server: string | null; line: string }, b: { server: string | null; line: string }): number => a.line.localeCompare(b.line);
        assert.deepEqual([...seen].sort(bySeen), expected.sort(bySeen));
      } finally {
        await c.close();
      }
    });
  }

  it("a multi-key get has no single home: it fails with the server's code", async () => {
    const seen: Array<{ server: string; line: string }> = [];
    const c = client(false, seen);
    try {
      const keys = keysOnDead(c, 2);
      await assert.rejects(c.getMulti(keys), (err: MemcachedError) => err.rc === Rc.CONNECTION_FAILURE);
      assert.equal(c.health()[1]?.state, 'ejected');
      assert.deepEqual(seen, []);
    } finally {
      await c.close();
    }
  });
});
