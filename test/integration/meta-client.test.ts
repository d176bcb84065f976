// The Client over memcached's meta protocol, against a real memcached: what meta carries that
// text and binary cannot (keys holding any byte, sent base64 with the `b` flag), where its key
// limits lie (memcached checks the 250-character limit on the encoded token, so at most 186 raw
// bytes when the key goes base64), counters created with an initial value and TTL in one
// request, and getAndTouch on all three protocols.

import assert from 'node:assert/strict';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client, type ClientOptions } from '../../src/cluster/client.js';
import { defaultSocketFactory, type SocketFactory } from '../../src/memcache/connection.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';

async function rejectsWith(promise: Promise<unknown>, rc: number, what = ''): Promise<void> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MemcachedError, `${what}: expected MemcachedError, got ${String(err)}`);
    assert.equal(err.rc, rc, `${what}: expected rc ${rc}, got ${err.rc} (${err.message})`);
    return;
  }
  assert.fail(`${what}: expected a rejection with rc ${rc}`);
}

/** A socket factory that keeps a copy of every byte the client writes. */
function recordingFactory(): { factory: SocketFactory; written: () => string } {
  const chunks: Buffer[] = [];
  const factory: SocketFactory = (address, tls) => {
    const socket: Duplex = defaultSocketFactory(address, tls);
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      chunks.push(Buffer.isBuffer(chunk) ? Buffer.from(chunk) : Buffer.from(String(chunk), 'latin1'));
      return write(chunk, ...rest);
    }) as Duplex['write'];
    return socket;
  };
  return { factory, written: () => Buffer.concat(chunks).toString('latin1') };
}

/** One text-protocol exchange on a fresh socket: sends `request`, returns the reply once it ends with `until`. */
async function rawText(mc: MemcachedProcess, request: Buffer, until: string): Promise<Buffer> {
  const socket: Socket = createConnection(mc.port, mc.host);
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const got: Buffer[] = [];
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        got.push(chunk);
        const all = Buffer.concat(got);
        if (all.toString('latin1').endsWith(until)) resolve(all);
      });
      socket.write(request);
    });
  } finally {
    socket.destroy();
  }
}

// Keys the text and binary protocols refuse (they could end a line or split a token there) and
// meta carries base64, plus raw bytes >= 0x80 and invalid UTF-8 that every protocol carries.
const ODD_KEYS: ReadonlyArray<string | Buffer> = [
  'a b',
  ' leading and trailing ',
  'tab\there',
  'cr\rlf\nboth\r\n',
  'x\r\nflush_all',
  'nul\0inside',
  Buffer.from([0x00]),
  Buffer.from([0x61, 0x00]),
  'del\x7f',
  'bell\x07',
  'ключ с пробелом',
  Buffer.from([0x80, 0x20, 0xff]),
  Buffer.from([0xc3, 0x28, 0x0a, 0xfe]),
];
const HIGH_BYTE_KEYS: ReadonlyArray<Buffer> = [Buffer.from([0x80, 0xff, 0xfe]), Buffer.from([0xc3, 0x28]), Buffer.from('ключ', 'utf8')];

const show = (key: string | Buffer): string => JSON.stringify(Buffer.isBuffer(key) ? key.toString('hex') : key);

describe('the meta client against real memcached', () => {
  let mc: MemcachedProcess;
  let meta: Client;
  let text: Client;
  let binary: Client;
  const opened: Client[] = [];
  const open = (options: Omit<ClientOptions, 'servers'>): Client => {
    const c = new Client({ servers: [mc.address], ...options });
    opened.push(c);
    return c;
  };

  before(async () => {
    mc = await startMemcached();
    meta = open({ protocol: 'meta' });
    text = open({ protocol: 'text' });
    binary = open({ protocol: 'binary' });
  });
  after(async () => {
    await Promise.all(opened.map((c) => c.close()));
    await mc.stop();
  });

  const stat = async (name: string): Promise<number> => Number((await text.stats()).at(0)?.value?.[name]);

  test('keys with whitespace, control bytes, NUL and non-UTF-8 bytes round-trip byte-exact: set/get/gets/delete', async () => {
    for (const [i, key] of ODD_KEYS.entries()) await meta.set(key, `value ${i}`, { flags: 1000 + i });
    for (const [i, key] of ODD_KEYS.entries()) {
      const item = await meta.get(key);
      assert.equal(item?.value.toString(), `value ${i}`, show(key));
      assert.equal(item?.flags, 1000 + i, show(key));
      assert.ok((await meta.gets(key))!.cas > 0n, show(key));
    }
    // Each is a key of its own: not cut at the space / NUL, not merged with a neighbour.
    for (const near of ['a', 'b', 'nul', 'tab', 'cr', 'x', 'del', 'bell', 'ключ']) assert.equal(await meta.get(near), null, near);
    assert.equal(await meta.get(Buffer.from([0x61])), null);
    for (const key of ODD_KEYS) await meta.delete(key);
    for (const key of ODD_KEYS) assert.equal(await meta.get(key), null, show(key));
    for (const key of ODD_KEYS) await rejectsWith(meta.delete(key), Rc.NOTFOUND, `delete again ${show(key)}`);
  });

  test('the same keys: incr/decr (with and without initial), touch, add/replace/append/prepend, cas, deleteCas', async () => {
    for (const [i, key] of ODD_KEYS.entries()) {
      const what = show(key);
      await rejectsWith(meta.incr(key, 1), Rc.NOTFOUND, `incr missing ${what}`);
      await rejectsWith(meta.touch(key, 100), Rc.NOTFOUND, `touch missing ${what}`);
      assert.equal(await meta.incr(key, 5, { initial: 10 * i }), BigInt(10 * i), what);
      assert.equal(await meta.incr(key, 5), BigInt(10 * i + 5), what);
      assert.equal(await meta.decr(key, 2), BigInt(10 * i + 3), what);
      await meta.touch(key, 100);
      await rejectsWith(meta.add(key, 'x'), Rc.NOTSTORED, `add existing ${what}`);
      await meta.replace(key, 'mid');
      await meta.append(key, '>');
      await meta.prepend(key, '<');
      assert.equal((await meta.get(key))?.value.toString(), '<mid>', what);
      const item = (await meta.gets(key))!;
      await meta.cas(key, 'cas1', item.cas);
      await rejectsWith(meta.cas(key, 'cas2', item.cas), Rc.DATA_EXISTS, `stale cas ${what}`);
      await rejectsWith(meta.deleteCas(key, item.cas), Rc.DATA_EXISTS, `stale deleteCas ${what}`);
      const fresh = (await meta.gets(key))!;
      await meta.deleteCas(key, fresh.cas);
      assert.equal(await meta.get(key), null, what);
      await rejectsWith(meta.deleteCas(key, fresh.cas), Rc.NOTFOUND, `deleteCas gone ${what}`);
      await rejectsWith(meta.cas(key, 'v', fresh.cas), Rc.NOTFOUND, `cas gone ${what}`);
    }
  });

  test('getMulti over meta with odd keys: hits, misses, duplicates, and the map keyed by the keys given', async () => {
    const hits = ODD_KEYS.filter((_, i) => i % 2 === 0);
    const misses = ODD_KEYS.filter((_, i) => i % 2 === 1);
    for (const key of ODD_KEYS) await meta.delete(key).catch(() => undefined);
    for (const [i, key] of hits.entries()) await meta.set(key, Buffer.from([i, 0x0d, 0x0a, 0x00]));
    const asked = [...ODD_KEYS, hits[0]!, misses[0]!, hits[1]!];
    const got = await meta.getMulti(asked);
    assert.equal(got.size, hits.length);
    for (const [i, key] of hits.entries()) assert.deepEqual(got.get(key)?.value, Buffer.from([i, 0x0d, 0x0a, 0x00]), show(key));
    for (const key of misses) assert.equal(got.has(key), false, show(key));
    // A run of all misses, and the connection still answers in order afterwards.
    assert.equal((await meta.getMulti(misses)).size, 0);
    assert.equal((await meta.get(hits[0]!))?.value[0], 0);
    for (const key of hits) await meta.delete(key);
  });

  test('the same keys are refused with 33 over text and binary, and nothing is sent', async () => {
    const refusedOnly = ODD_KEYS.filter((k) => (Buffer.isBuffer(k) ? k : Buffer.from(k)).some((b) => b <= 0x20 || b === 0x7f));
    assert.equal(refusedOnly.length, ODD_KEYS.length, 'every odd key holds a byte text cannot carry');
    const before = [await stat('cmd_get'), await stat('cmd_set'), await stat('cmd_touch'), await stat('incr_misses'), await stat('delete_misses')];
    for (const client of [text, binary]) {
      for (const key of ODD_KEYS) {
        const what = `${client.protocol} ${show(key)}`;
        await rejectsWith(client.set(key, 'v'), Rc.BAD_KEY_PROVIDED, `set ${what}`);
        await rejectsWith(client.get(key), Rc.BAD_KEY_PROVIDED, `get ${what}`);
        await rejectsWith(client.getAndTouch(key, 10), Rc.BAD_KEY_PROVIDED, `getAndTouch ${what}`);
        await rejectsWith(client.delete(key), Rc.BAD_KEY_PROVIDED, `delete ${what}`);
        await rejectsWith(client.incr(key, 1), Rc.BAD_KEY_PROVIDED, `incr ${what}`);
        await rejectsWith(client.touch(key, 10), Rc.BAD_KEY_PROVIDED, `touch ${what}`);
        await rejectsWith(client.getMulti(['fine', key]), Rc.BAD_KEY_PROVIDED, `getMulti ${what}`);
      }
    }
    const after = [await stat('cmd_get'), await stat('cmd_set'), await stat('cmd_touch'), await stat('incr_misses'), await stat('delete_misses')];
    assert.deepEqual(after, before, 'no refused request reached memcached');
  });

  test('keys of raw bytes >= 0x80 are one key in all three protocols', async () => {
    for (const [i, key] of HIGH_BYTE_KEYS.entries()) {
      await meta.set(key, `from meta ${i}`, { flags: 7 });
      for (const reader of [text, binary]) {
        const item = await reader.get(key);
        assert.equal(item?.value.toString(), `from meta ${i}`, `${reader.protocol} ${show(key)}`);
        assert.equal(item?.flags, 7);
      }
      await binary.set(key, `from binary ${i}`);
      assert.equal((await meta.get(key))?.value.toString(), `from binary ${i}`, show(key));
    }
  });

  test('a base64 key is stored by its raw bytes: a text-protocol socket reads it by them', async () => {
    // memcached's text tokenizer splits on spaces only, so bytes such as 0x07 and 0x01 can be sent
    // as they are on a raw text socket; the Client sends them base64 over meta and refuses them
    // over text. What memcached stores is the decoded bytes, not the base64 token.
    const key = Buffer.from([0x62, 0x07, 0x01, 0x7f, 0x80]);
    await meta.set(key, 'decoded', { flags: 3 });
    const reply = await rawText(mc, Buffer.concat([Buffer.from('get '), key, Buffer.from('\r\n')]), 'END\r\n');
    assert.deepEqual(reply, Buffer.concat([Buffer.from('VALUE '), key, Buffer.from(' 3 7\r\ndecoded\r\nEND\r\n')]));
    assert.equal(await text.get(key.toString('base64')), null, 'the base64 token is not the key');
    // And the other way: written by its raw bytes over text, read over meta.
    const other = Buffer.from([0x63, 0x01, 0x02]);
    const stored = await rawText(mc, Buffer.concat([Buffer.from('set '), other, Buffer.from(' 9 0 2\r\nok\r\n')]), '\r\n');
    assert.equal(stored.toString(), 'STORED\r\n');
    const item = await meta.get(other);
    assert.equal(item?.value.toString(), 'ok');
    assert.equal(item?.flags, 9);
    // A key sent base64 whose bytes are text-safe (another meta client may encode every key) is
    // the plain key for text and binary clients.
    const b64 = Buffer.from('safe-b64-key').toString('base64');
    const ms = await rawText(mc, Buffer.from(`ms ${b64} 2 b F4\r\nhi\r\n`), '\r\n');
    assert.equal(ms.toString(), 'HD\r\n');
    for (const reader of [text, binary, meta]) {
      const hit = await reader.get('safe-b64-key');
      assert.deepEqual([hit?.value.toString(), hit?.flags], ['hi', 4], reader.protocol);
    }
  });

  test('key length: 186 raw bytes that go base64 work, 187 get 33 unsent; a plain key works up to 250, 251 gets 33', async () => {
    const written = recordingFactory();
    const c = open({ protocol: 'meta', socketFactory: written.factory });
    const ctl186 = Buffer.alloc(186, 0x01);
    const ctl187 = Buffer.alloc(187, 0x01);
    // One space makes the whole key go base64, so a long key with a space hits the 186 limit.
    const spaced186 = Buffer.from(`${'s'.repeat(185)} `);
    const spaced187 = Buffer.from(`${'s'.repeat(186)} `);
    const plain250 = 'p'.repeat(250);
    for (const key of [ctl186, spaced186, plain250]) {
      await c.set(key, 'fits');
      assert.equal((await c.get(key))?.value.toString(), 'fits', `${key.length} bytes`);
      await c.delete(key);
      assert.equal(await c.incr(key, 1, { initial: 5 }), 5n);
      assert.equal(await c.incr(key, 1), 6n);
      await c.touch(key, 100);
      assert.equal((await c.getAndTouch(key, 100))?.value.toString(), '6');
      await c.delete(key);
    }
    const sentBefore = written.written().length;
    const setsBefore = await stat('cmd_set');
    for (const key of [ctl187, spaced187, 'p'.repeat(251), Buffer.alloc(251, 0x70)]) {
      const what = `${key.length} bytes`;
      await rejectsWith(c.set(key, 'v'), Rc.BAD_KEY_PROVIDED, `set ${what}`);
      await rejectsWith(c.get(key), Rc.BAD_KEY_PROVIDED, `get ${what}`);
      await rejectsWith(c.getAndTouch(key, 5), Rc.BAD_KEY_PROVIDED, `getAndTouch ${what}`);
      await rejectsWith(c.delete(key), Rc.BAD_KEY_PROVIDED, `delete ${what}`);
      await rejectsWith(c.incr(key, 1, { initial: 1 }), Rc.BAD_KEY_PROVIDED, `incr ${what}`);
      await rejectsWith(c.touch(key, 5), Rc.BAD_KEY_PROVIDED, `touch ${what}`);
      await rejectsWith(c.getMulti([ctl186, key]), Rc.BAD_KEY_PROVIDED, `getMulti ${what}`);
    }
    assert.equal(written.written().length, sentBefore, 'no byte of a refused request was written');
    assert.equal(await stat('cmd_set'), setsBefore);
    // No desync: the connection answers the next requests, in order.
    await c.set(ctl186, 'after');
    const [a, b] = await Promise.all([c.get(ctl186), c.get('p'.repeat(250))]);
    assert.equal(a?.value.toString(), 'after');
    assert.equal(b, null);
  });

  test('a key prefix counts towards the limits and is on the wire with the key', async () => {
    const prefix = 'pbx:';
    const c = open({ protocol: 'meta', keyPrefix: prefix });
    await c.set('a b\r\n', 'prefixed');
    assert.equal((await c.get('a b\r\n'))?.value.toString(), 'prefixed');
    assert.equal((await meta.get(`${prefix}a b\r\n`))?.value.toString(), 'prefixed', 'stored as prefix + key');
    assert.equal(await meta.get('a b\r\n'), null);
    await c.set('x'.repeat(250 - prefix.length), 'longest');
    await rejectsWith(c.set('x'.repeat(251 - prefix.length), 'v'), Rc.BAD_KEY_PROVIDED, 'plain, one over with the prefix');
    await c.set(Buffer.alloc(186 - prefix.length, 0x09), 'longest base64');
    assert.equal((await meta.get(Buffer.concat([Buffer.from(prefix), Buffer.alloc(186 - prefix.length, 0x09)])))?.value.toString(), 'longest base64');
    await rejectsWith(c.set(Buffer.alloc(187 - prefix.length, 0x09), 'v'), Rc.BAD_KEY_PROVIDED, 'base64, one over with the prefix');
    const got = await c.getMulti(['a b\r\n', 'missing key', 'a b\r\n']);
    assert.deepEqual([...got.keys()], ['a b\r\n']);
    assert.equal(await c.incr('ctr with space', 2, { initial: 40 }), 40n);
    assert.equal((await meta.get(`${prefix}ctr with space`))?.value.toString(), '40');
  });

  // Found while comparing the protocols: memcached 1.6.18 reads a text or meta TTL as a signed
  // 32-bit number, so 2^31..2^32-1 would wrap negative and the item be stored already expired,
  // while the binary protocol's unsigned exptime keeps it: the Client refuses them (38) in all
  // three, and nothing is sent.
  test('a TTL of 2^31 or more is refused with 38 in all three protocols; 2^31-1 is kept', async () => {
    for (const client of [text, binary, meta]) {
      const key = `ttl_${client.protocol}`;
      await client.set(key, 'kept', { ttl: 2 ** 31 - 1 });
      assert.equal((await client.get(key))?.value.toString(), 'kept', client.protocol);
      for (const ttl of [2 ** 31, 2 ** 32 - 1]) {
        await assert.rejects(client.set(`${key}_${ttl}`, 'x', { ttl }), (err: unknown) => err instanceof MemcachedError && err.rc === Rc.INVALID_ARGUMENTS);
        await assert.rejects(client.touch(key, ttl), (err: unknown) => err instanceof MemcachedError && err.rc === Rc.INVALID_ARGUMENTS);
        assert.equal(await client.get(`${key}_${ttl}`), null, `${client.protocol}: nothing stored with ttl ${ttl}`);
      }
    }
  });

  test('SASL credentials with meta are refused at construction with 38, as with text', () => {
    for (const protocol of ['text', 'meta'] as const) {
      assert.throws(
        () => new Client({ servers: [mc.address], protocol, sasl: { username: 'u', password: 'p' } }),
        (err: unknown) => err instanceof MemcachedError && err.rc === Rc.INVALID_ARGUMENTS && err.message.includes(`not ${protocol}`),
      );
    }
  });

  describe('waits on memcached\'s clock, side by side', { concurrency: true }, () => {
    test('incr with initial and ttl creates the counter in one request, and the TTL applies', async () => {
      // A memcached of its own: the tests beside this one store items, which its counts would see.
      const own = await startMemcached();
      const written = recordingFactory();
      const c = new Client({ servers: [own.address], protocol: 'meta', socketFactory: written.factory });
      const ownStat = async (name: string): Promise<number> => Number((await c.stats()).at(0)?.value?.[name]);
      try {
        const key = 'ctr ttl\t1';
        await c.set('warm', 'x'); // the connection is open; what follows is the counter alone
        const [misses, items, sets] = [await ownStat('incr_misses'), await ownStat('total_items'), await ownStat('cmd_set')];
        const from = written.written().length;
        assert.equal(await c.incr(key, 3, { initial: 100, ttl: 2 }), 100n);
        const sent = written.written().slice(from);
        assert.equal(sent.match(/\r\n/g)?.length, 1, `one request line: ${JSON.stringify(sent)}`);
        // N2: create with TTL 2; J100: the initial value; the key goes base64 (it holds a space).
        assert.match(sent, new RegExp(`^ma ${Buffer.from(key).toString('base64')} b MI D3 N2 J100 v O\\d+\r\n$`), JSON.stringify(sent));
        // memcached 1.6.18 counts a counter created by ma N as an item stored, not as an incr miss
        // or a set: an emulation (incr, miss, add) would show as incr_misses + 1 and cmd_set + 1.
        assert.equal(await ownStat('total_items'), items + 1, 'one item created');
        assert.equal(await ownStat('incr_misses'), misses, 'no plain incr that missed');
        assert.equal(await ownStat('cmd_set'), sets, 'no add: the counter was not emulated');
        assert.equal(await c.incr(key, 3), 103n);
        await sleep(3000);
        assert.equal(await c.get(key), null, 'the counter expired with the TTL it was created with');
        await rejectsWith(c.incr(key, 1), Rc.NOTFOUND, 'gone');
      } finally {
        await c.close();
        await own.stop();
      }
    });

    for (const protocol of ['text', 'binary', 'meta'] as const) {
      test(`getAndTouch over ${protocol}: the item, its new TTL applies; a miss is null and creates nothing`, async () => {
        const c = open({ protocol });
        const key = `gat_${protocol}`;
        await c.set(key, 'touched', { flags: 77, ttl: 1000 });
        const item = await c.getAndTouch(key, 2);
        assert.equal(item?.value.toString(), 'touched');
        assert.equal(item?.flags, 77);
        assert.equal(await c.getAndTouch(`${key}_missing`, 100), null);
        assert.equal(await c.get(`${key}_missing`), null, 'a miss stores nothing');
        // A longer TTL by getAndTouch keeps an item that would have expired.
        await c.set(`${key}_kept`, 'kept', { ttl: 2 });
        assert.equal((await c.getAndTouch(`${key}_kept`, 1000))?.value.toString(), 'kept');
        await sleep(3000);
        assert.equal(await c.get(key), null, 'expired with the TTL set by getAndTouch');
        assert.equal((await c.get(`${key}_kept`))?.value.toString(), 'kept', 'kept alive by getAndTouch');
        await rejectsWith(c.getAndTouch(key, -1), Rc.INVALID_ARGUMENTS, 'negative ttl');
      });
    }
  });
});
