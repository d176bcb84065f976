// Client.setMulti against real memcached over all three protocols: a batch of sets per server as
// one quiet run (meta `ms ... q` closed by `mn`, binary SETQs closed by NOOP) or, over text,
// pipelined sets one by one. What comes back names exactly the entries not stored; bad arguments
// refuse the whole call before a byte is written; and the server answers a quiet run that
// stored everything with one short reply.

import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { Client } from '../../src/cluster/client.js';
import { defaultSocketFactory, type SocketFactory } from '../../src/memcache/connection.js';
import type { Protocol } from '../../src/memcache/protocol/wire-codec.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import { freePort, startMemcached, type MemcachedProcess } from '../support/memcached.js';

/** A socket factory that counts the bytes each server sends back and the bytes written to it. */
function countingFactory(): { factory: SocketFactory; received: Map<string, number>; written: () => number } {
  const received = new Map<string, number>();
  let written = 0;
  const factory: SocketFactory = (address, tls) => {
    const socket: Duplex = defaultSocketFactory(address, tls);
    const name = address.kind === 'unix' ? address.path : `${address.host}:${address.port}`;
    socket.on('data', (chunk: Buffer) => received.set(name, (received.get(name) ?? 0) + chunk.length));
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      written += Buffer.isBuffer(chunk) ? chunk.length : Buffer.byteLength(String(chunk));
      return write(chunk, ...rest);
    }) as Duplex['write'];
    return socket;
  };
  return { factory, received, written: () => written };
}

async function rejectsWith(promise: Promise<unknown>, rc: number): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof MemcachedError, String(err));
    assert.equal(err.rc, rc, err.message);
    return true;
  });
}

/** A value that differs per entry in length and in every byte, so a mix-up shows. */
function valueFor(i: number): Buffer {
  const v = Buffer.alloc(1 + ((i * 37) % 700));
  for (let j = 0; j < v.length; j++) v[j] = (i * 131 + j * 7) & 0xff;
  return v;
}

const PROTOCOLS: Protocol[] = ['meta', 'binary', 'text'];

describe('setMulti against memcached 1.6.18', () => {
  const servers: MemcachedProcess[] = [];

  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startMemcached());
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  for (const protocol of PROTOCOLS) {
    describe(protocol, () => {
      test('200 entries across 3 servers are all stored and read back byte-exact, with their flags', async () => {
        const client = new Client({ servers: servers.map((s) => s.address), protocol });
        try {
          const entries = new Map<string, Buffer>();
          for (let i = 0; i < 200; i++) entries.set(`sm:${protocol}:all:${i}`, valueFor(i));
          const spread = new Set([...entries.keys()].map((k) => client.locate(k)));
          assert.equal(spread.size, 3, 'the keys land on every server');
          const failed = await client.setMulti(entries, { flags: 0xfeedf00d, ttl: 300 });
          assert.equal(failed.size, 0, [...failed].map(([k, e]) => `${k}: ${e.message}`).join(', '));
          const got = await client.getMulti([...entries.keys()]);
          assert.equal(got.size, 200);
          for (const [k, v] of entries) {
            assert.ok(got.get(k)!.value.equals(v), k);
            assert.equal(got.get(k)!.flags, 0xfeedf00d, k);
          }
        } finally {
          await client.close();
        }
      });

      test('a 2 MiB value among small ones: exactly that entry fails with 37, the others are stored', async () => {
        const counting = countingFactory();
        const client = new Client({ servers: servers.map((s) => s.address), protocol, socketFactory: counting.factory });
        try {
          const entries: Array<[string, Buffer]> = [];
          for (let i = 0; i < 60; i++) entries.push([`sm:${protocol}:big:${i}`, valueFor(i)]);
          const bigKey = `sm:${protocol}:big:17`;
          entries[17] = [bigKey, Buffer.alloc(2 * 1024 * 1024, 0x62)];
          const failed = await client.setMulti(entries);
          assert.deepStrictEqual([...failed.keys()], [bigKey]);
          assert.equal(failed.get(bigKey)!.rc, Rc.E2BIG);
          if (protocol === 'binary') {
            // memcached names the failed SETQ by its opaque: one error response ("Too large.")
            // besides each batch's NOOP, and no entry is set a second time.
            const perServer = new Map<string, number>();
            for (const [k] of entries) perServer.set(client.locate(k)!, (perServer.get(client.locate(k)!) ?? 0) + 1);
            let expected = 24 + 'Too large.'.length;
            for (const n of perServer.values()) expected += 24 * Math.ceil(n / 100);
            assert.equal([...counting.received.values()].reduce((a, b) => a + b, 0), expected);
          }
          const got = await client.getMulti(entries.map(([k]) => k));
          assert.equal(got.has(bigKey), false);
          for (const [k, v] of entries) if (k !== bigKey) assert.ok(got.get(k)?.value.equals(v), k);
          // The connection is still in step: a plain round trip after the run.
          await client.set(`sm:${protocol}:after`, 'ok');
          assert.equal((await client.get(`sm:${protocol}:after`))?.value.toString(), 'ok');
        } finally {
          await client.close();
        }
      });

      test('a bad key or TTL refuses the whole call (33 / 38) and nothing is sent', async () => {
        const counting = countingFactory();
        const client = new Client({ servers: servers.map((s) => s.address), protocol, socketFactory: counting.factory });
        try {
          const good: Array<[string, string]> = [[`sm:${protocol}:bad:a`, 'a'], [`sm:${protocol}:bad:b`, 'b']];
          await rejectsWith(client.setMulti([...good, ['k'.repeat(251), 'x']]), Rc.BAD_KEY_PROVIDED);
          await rejectsWith(client.setMulti([...good, ['', 'x']]), Rc.BAD_KEY_PROVIDED);
          if (protocol !== 'meta') await rejectsWith(client.setMulti([...good, ['a b', 'x']]), Rc.BAD_KEY_PROVIDED);
          // Over meta a key with a space travels base64, so memcached's 250-character token takes
          // at most 186 raw bytes: refused by the protocol's own rules, still before anything is sent.
          await rejectsWith(client.setMulti([...good, [` ${'k'.repeat(186)}`, 'x']]), Rc.BAD_KEY_PROVIDED);
          await rejectsWith(client.setMulti(good, { ttl: -5 }), Rc.INVALID_ARGUMENTS);
          await rejectsWith(client.setMulti(good, { flags: 2 ** 32 }), Rc.INVALID_ARGUMENTS);
          assert.equal(counting.written(), 0, 'no byte written');
          assert.equal(counting.received.size, 0, 'no socket opened');
          assert.equal(await client.get(good[0]![0]), null);
        } finally {
          await client.close();
        }
      });

      test('a server that cannot be reached: every entry is reported with its code, none claimed stored', async () => {
        const client = new Client({ servers: [`127.0.0.1:${await freePort()}`], protocol, connectTimeoutMs: 500, timeoutMs: 1000 });
        try {
          const entries = Array.from({ length: 150 }, (_, i): [string, string] => [`sm:${protocol}:down:${i}`, 'v']);
          const failed = await client.setMulti(entries);
          assert.equal(failed.size, 150);
          for (const err of failed.values()) assert.notEqual(err.rc, Rc.SUCCESS);
        } finally {
          await client.close();
        }
      });

      test(`bytes the servers send back for 200 stored entries: ${protocol === 'text' ? "one STORED per entry (text has no quiet mode)" : 'one short reply per batch'}`, async () => {
        const counting = countingFactory();
        const client = new Client({ servers: servers.map((s) => s.address), protocol, socketFactory: counting.factory });
        try {
          const entries = new Map<string, Buffer>();
          for (let i = 0; i < 200; i++) entries.set(`sm:${protocol}:quiet:${i}`, valueFor(i));
          const perServer = new Map<string, number>();
          for (const k of entries.keys()) perServer.set(client.locate(k)!, (perServer.get(client.locate(k)!) ?? 0) + 1);
          assert.equal((await client.setMulti(entries)).size, 0);
          for (const [server, n] of perServer) {
            const batches = Math.ceil(n / 100);
            // meta: `MN\r\n` per batch; binary: one 24-byte NOOP response per batch.
            const expected = protocol === 'meta' ? 4 * batches : protocol === 'binary' ? 24 * batches : 'STORED\r\n'.length * n;
            assert.equal(counting.received.get(server), expected, `${server}: ${n} entries`);
          }
        } finally {
          await client.close();
        }
      });
    });
  }
});
