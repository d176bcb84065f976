// MetaCodec over a raw socket against a real memcached (test/support/memcached.ts): what the
// server actually answers decodes into the Outcomes, with the codes, the text protocol gives.
// A tiny in-order request queue stands in for connection.ts; a second raw socket speaks the text
// protocol to see what the meta commands stored.

import assert from 'node:assert/strict';
import * as net from 'node:net';
import { after, before, describe, test } from 'node:test';

import type { Command, Outcome } from '../../src/memcache/protocol/command.js';
import { MetaCodec } from '../../src/memcache/protocol/meta.js';
import { Fold, type WireRequest } from '../../src/memcache/protocol/wire-codec.js';
import { ByteWriter } from '../../src/util/byte-writer.js';
import { Rc } from '../../src/util/errors.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';

/** Requests are answered in order: the codec folds each frame into the oldest one. */
class MetaConnection {
  readonly #socket: net.Socket;
  readonly #codec = new MetaCodec();
  readonly #queue: { req: WireRequest; resolve: (out: Outcome) => void; reject: (err: unknown) => void }[] = [];
  #failed: unknown = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#codec.feed(chunk);
        for (let frame = this.#codec.next(); frame !== undefined; frame = this.#codec.next()) {
          const head = this.#queue[0];
          if (head === undefined) throw new Error(`a reply nobody asked for: ${JSON.stringify(frame.kind)}`);
          if (this.#codec.accept(head.req, frame) === Fold.DONE) {
            this.#queue.shift();
            head.resolve(head.req.out);
          }
        }
      } catch (err) {
        this.#failed = err;
        for (const q of this.#queue.splice(0)) q.reject(err);
        socket.destroy();
      }
    });
  }

  static open(port: number): Promise<MetaConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new MetaConnection(s)));
      s.once('error', reject);
    });
  }

  send(...cmds: Command[]): Promise<Outcome[]> {
    if (this.#failed !== null) return Promise.reject(this.#failed);
    const w = new ByteWriter();
    const pending = cmds.map((cmd) => {
      const refusal = this.#codec.refuse(cmd);
      if (refusal !== null) return Promise.resolve<Outcome>({ rc: refusal.rc, text: refusal.message });
      const req: WireRequest = { cmd, out: { rc: 0 }, opaque: 0 };
      this.#codec.encode(req, w);
      return new Promise<Outcome>((resolve, reject) => this.#queue.push({ req, resolve, reject }));
    });
    for (const chunk of w.take()) this.#socket.write(chunk);
    return Promise.all(pending);
  }

  async one(cmd: Command): Promise<Outcome> {
    return (await this.send(cmd))[0]!;
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** One text-protocol exchange: writes `request`, reads until `until` ends the reply. */
function textExchange(port: number, request: Buffer, until: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const s = net.connect(port, '127.0.0.1', () => s.write(request));
    s.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (until.test(text)) {
        s.destroy();
        resolve(text);
      }
    });
    s.once('error', reject);
    s.setTimeout(2000, () => {
      s.destroy();
      reject(new Error(`no complete reply, got ${JSON.stringify(text)}`));
    });
  });
}

const k = (s: string): Buffer => Buffer.from(s, 'latin1');
const v = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('MetaCodec against memcached', () => {
  let mc: MemcachedProcess;
  let conn: MetaConnection;

  before(async () => {
    mc = await startMemcached();
    conn = await MetaConnection.open(mc.port);
  });
  after(async () => {
    conn.close();
    await mc.stop();
  });

  test('version, noop, flush', async () => {
    const [version, noop, flush, delayed] = await conn.send({ op: 'version' }, { op: 'noop' }, { op: 'flush', delay: 0 }, { op: 'flush', delay: 0 });
    assert.equal(version!.rc, 0);
    assert.match(version!.text ?? '', /^1\.\d+\.\d+/);
    assert.deepStrictEqual(noop, { rc: 0 });
    assert.deepStrictEqual(flush, { rc: 0 });
    assert.deepStrictEqual(delayed, { rc: 0 });
  });

  test('stats, and a stats group', async () => {
    const [all, slabs] = await conn.send({ op: 'stats' }, { op: 'stats', group: 'settings' });
    assert.equal(all!.rc, 0);
    assert.equal(all!.stats?.get('pid'), String(mc.pid));
    assert.equal(slabs!.stats?.get('tcpport'), String(mc.port));
  });

  test('set (no CAS asked for: none reported), get with CAS, flags', async () => {
    const set = await conn.one({ op: 'store', mode: 'set', key: k('m:a'), value: v('hello'), flags: 4294967295, ttl: 0 });
    assert.deepStrictEqual(set, { rc: 0 });
    const got = await conn.one({ op: 'get', keys: [k('m:a')], withCas: true });
    const cas = got.items?.[0]?.cas ?? 0n;
    assert.ok(cas > 0n);
    assert.deepStrictEqual(got, { rc: 0, items: [{ value: v('hello'), flags: 4294967295, cas }] });
    const noCas = await conn.one({ op: 'get', keys: [k('m:a')], withCas: false });
    assert.deepStrictEqual(noCas, { rc: 0, items: [{ value: v('hello'), flags: 4294967295, cas: 0n }] });
    const text = await textExchange(mc.port, v('get m:a\r\n'), /END\r\n$/);
    assert.equal(text, 'VALUE m:a 4294967295 5\r\nhello\r\nEND\r\n');
  });

  test('get miss: success with an empty slot', async () => {
    assert.deepStrictEqual(await conn.one({ op: 'get', keys: [k('m:none')], withCas: false }), { rc: 0 });
  });

  test('store modes: add existing 14, replace/append/prepend missing 14, cas changed 12, cas missing 16', async () => {
    await conn.one({ op: 'store', mode: 'set', key: k('m:s'), value: v('b'), flags: 0, ttl: 0 });
    const store = (mode: 'add' | 'replace' | 'append' | 'prepend', key: string, value: string) =>
      conn.one({ op: 'store', mode, key: k(key), value: v(value), flags: 0, ttl: 0 });
    assert.equal((await store('add', 'm:s', 'x')).rc, Rc.NOTSTORED);
    assert.equal((await store('replace', 'm:missing', 'x')).rc, Rc.NOTSTORED);
    assert.equal((await store('append', 'm:missing', 'x')).rc, Rc.NOTSTORED);
    assert.equal((await store('prepend', 'm:missing', 'x')).rc, Rc.NOTSTORED);
    assert.equal((await store('append', 'm:s', 'c')).rc, 0);
    assert.equal((await store('prepend', 'm:s', 'a')).rc, 0);
    assert.equal((await store('add', 'm:new', 'n')).rc, 0);
    assert.equal((await store('replace', 'm:new', 'N')).rc, 0);
    const got = await conn.one({ op: 'get', keys: [k('m:s')], withCas: true });
    assert.equal(got.items?.[0]?.value.toString(), 'abc');
    const cas = got.items![0]!.cas;
    const casStore = (key: string, c: bigint) => conn.one({ op: 'store', mode: 'cas', key: k(key), value: v('z'), flags: 0, ttl: 0, cas: c });
    assert.equal((await casStore('m:s', cas + 1000n)).rc, Rc.DATA_EXISTS);
    assert.equal((await casStore('m:missing', cas)).rc, Rc.NOTFOUND);
    const ok = await casStore('m:s', cas);
    assert.equal(ok.rc, 0);
    const after = await conn.one({ op: 'get', keys: [k('m:s')], withCas: true });
    assert.equal(after.items?.[0]?.value.toString(), 'z');
    assert.ok(after.items![0]!.cas > cas, 'the cas store made a new CAS');
  });

  test('too large a value: E2BIG, and the connection goes on', async () => {
    const [big, after] = await conn.send(
      { op: 'store', mode: 'set', key: k('m:big'), value: Buffer.alloc(2 * 1024 * 1024, 0x61), flags: 0, ttl: 0 },
      { op: 'noop' },
    );
    assert.equal(big!.rc, Rc.E2BIG);
    assert.deepStrictEqual(after, { rc: 0 });
  });

  test('delete: HD, NF 16, with CAS: EX 12 then HD', async () => {
    await conn.one({ op: 'store', mode: 'set', key: k('m:d'), value: v('x'), flags: 0, ttl: 0 });
    assert.deepStrictEqual(await conn.one({ op: 'delete', key: k('m:d') }), { rc: 0 });
    assert.equal((await conn.one({ op: 'delete', key: k('m:d') })).rc, Rc.NOTFOUND);
    await conn.one({ op: 'store', mode: 'set', key: k('m:d'), value: v('x'), flags: 0, ttl: 0 });
    const cas = (await conn.one({ op: 'get', keys: [k('m:d')], withCas: true })).items![0]!.cas;
    assert.equal((await conn.one({ op: 'delete', key: k('m:d'), cas: cas + 1n })).rc, Rc.DATA_EXISTS);
    assert.equal((await conn.one({ op: 'delete', key: k('m:d'), cas })).rc, 0);
    assert.equal((await conn.one({ op: 'delete', key: k('m:d'), cas })).rc, Rc.NOTFOUND);
  });

  test('incr/decr: numbers, missing 16, non-numeric CLIENT_ERROR 9, floor at 0, wrap at 2^64', async () => {
    await conn.one({ op: 'store', mode: 'set', key: k('m:n'), value: v('10'), flags: 0, ttl: 0 });
    assert.deepStrictEqual(await conn.one({ op: 'incr', key: k('m:n'), delta: 5n }), { rc: 0, number: 15n });
    assert.deepStrictEqual(await conn.one({ op: 'decr', key: k('m:n'), delta: 100n }), { rc: 0, number: 0n });
    assert.deepStrictEqual(await conn.one({ op: 'incr', key: k('m:n'), delta: 18446744073709551615n }), { rc: 0, number: 18446744073709551615n });
    assert.deepStrictEqual(await conn.one({ op: 'incr', key: k('m:n'), delta: 2n }), { rc: 0, number: 1n });
    assert.equal((await conn.one({ op: 'incr', key: k('m:nothing'), delta: 1n })).rc, Rc.NOTFOUND);
    await conn.one({ op: 'store', mode: 'set', key: k('m:word'), value: v('ab'), flags: 0, ttl: 0 });
    const bad = await conn.one({ op: 'incr', key: k('m:word'), delta: 1n });
    assert.equal(bad.rc, Rc.CLIENT_ERROR);
    assert.equal(bad.text, 'cannot increment or decrement non-numeric value');
  });

  test('incr with an initial value creates the counter with exactly that value and the TTL', async () => {
    const created = await conn.one({ op: 'incr', key: k('m:c'), delta: 5n, initial: 42n, ttl: 1000 });
    assert.deepStrictEqual(created, { rc: 0, number: 42n });
    assert.deepStrictEqual(await conn.one({ op: 'incr', key: k('m:c'), delta: 5n, initial: 42n, ttl: 1000 }), { rc: 0, number: 47n });
    const decr = await conn.one({ op: 'decr', key: k('m:c2'), delta: 5n, initial: 9n });
    assert.deepStrictEqual(decr, { rc: 0, number: 9n });
    const text = await textExchange(mc.port, v('get m:c\r\nmg m:c t\r\nmg m:c2 t\r\n'), /END\r\nHD t-?\d+\r\nHD t-?\d+\r\n$/);
    const ttls = [...text.matchAll(/HD t(-?\d+)/g)].map((m) => Number(m[1]));
    assert.ok(text.startsWith('VALUE m:c 0 2\r\n47\r\nEND\r\n'), text);
    assert.ok(ttls[0]! > 990 && ttls[0]! <= 1000, `TTL ${ttls[0]}`);
    assert.equal(ttls[1], -1, 'N0: no expiry');
  });

  test('touch: HD, missing is NOTFOUND 16; the TTL is set', async () => {
    await conn.one({ op: 'store', mode: 'set', key: k('m:t'), value: v('x'), flags: 0, ttl: 0 });
    assert.deepStrictEqual(await conn.one({ op: 'touch', key: k('m:t'), ttl: 500 }), { rc: 0 });
    assert.equal((await conn.one({ op: 'touch', key: k('m:t-missing'), ttl: 500 })).rc, Rc.NOTFOUND);
    const text = await textExchange(mc.port, v('mg m:t t v\r\n'), /\r\nx\r\n$/);
    const ttl = Number(/VA 1 t(\d+)/.exec(text)?.[1]);
    assert.ok(ttl > 490 && ttl <= 500, text);
  });

  test('get-and-touch (touchTtl) returns the item and sets its TTL', async () => {
    await conn.one({ op: 'store', mode: 'set', key: k('m:gat'), value: v('g'), flags: 3, ttl: 0 });
    const gat: Command = { op: 'get', keys: [k('m:gat'), k('m:gat-missing')], withCas: false, touchTtl: 700 };
    const out = await conn.one(gat);
    assert.equal(out.rc, 0);
    assert.deepStrictEqual([...out.items!], [{ value: v('g'), flags: 3, cas: 0n }, undefined]);
    const text = await textExchange(mc.port, v('mg m:gat t\r\n'), /\r\n$/);
    const ttl = Number(/HD t(\d+)/.exec(text)?.[1]);
    assert.ok(ttl > 690 && ttl <= 700, text);
  });

  test('multi-get: hits in their slots, misses empty, then the connection goes on in order', async () => {
    await conn.send(
      { op: 'store', mode: 'set', key: k('m:g1'), value: v('one'), flags: 1, ttl: 0 },
      { op: 'store', mode: 'set', key: k('m:g3'), value: v('three'), flags: 3, ttl: 0 },
    );
    const [many, none, single] = await conn.send(
      { op: 'get', keys: [k('m:g0'), k('m:g1'), k('m:g2'), k('m:g3'), k('m:g1')], withCas: true },
      { op: 'get', keys: [k('m:x1'), k('m:x2')], withCas: false },
      { op: 'get', keys: [k('m:g3')], withCas: false },
    );
    assert.equal(many!.rc, 0);
    const items = [...many!.items!];
    assert.equal(items.length, 5);
    assert.equal(items[0], undefined);
    assert.equal(items[1]?.value.toString(), 'one');
    assert.equal(items[1]?.flags, 1);
    assert.ok(items[1]!.cas > 0n);
    assert.equal(items[2], undefined);
    assert.equal(items[3]?.value.toString(), 'three');
    assert.deepStrictEqual(items[4], items[1]);
    assert.deepStrictEqual(none, { rc: 0 });
    assert.deepStrictEqual(single, { rc: 0, items: [{ value: v('three'), flags: 3, cas: 0n }] });
  });

  test('base64 keys are stored under their raw bytes: a text get of the raw key finds them', async () => {
    const raw = Buffer.from('b64\x01key\x7f\ttab', 'latin1');
    const set = await conn.one({ op: 'store', mode: 'set', key: raw, value: v('raw'), flags: 9, ttl: 0 });
    assert.equal(set.rc, 0);
    const text = await textExchange(mc.port, Buffer.concat([v('get '), raw, v('\r\n')]), /END\r\n$/);
    assert.equal(text, Buffer.concat([v('VALUE '), raw, v(' 9 3\r\nraw\r\nEND\r\n')]).toString('latin1'));
    // And back through the codec, alone and in a multi-get next to a plain key.
    assert.deepStrictEqual(await conn.one({ op: 'get', keys: [raw], withCas: false }), { rc: 0, items: [{ value: v('raw'), flags: 9, cas: 0n }] });
    const spaced = Buffer.from('with space', 'latin1');
    await conn.one({ op: 'store', mode: 'set', key: spaced, value: v('sp'), flags: 0, ttl: 0 });
    const multi = await conn.one({ op: 'get', keys: [spaced, k('m:g3'), raw], withCas: false });
    assert.deepStrictEqual(
      [...multi.items!].map((i) => i?.value.toString()),
      ['sp', 'three', 'raw'],
    );
    assert.equal((await conn.one({ op: 'incr', key: raw, delta: 1n })).rc, Rc.CLIENT_ERROR);
    assert.deepStrictEqual(await conn.one({ op: 'touch', key: raw, ttl: 100 }), { rc: 0 });
    assert.deepStrictEqual(await conn.one({ op: 'delete', key: raw }), { rc: 0 });
    assert.equal((await conn.one({ op: 'delete', key: raw })).rc, Rc.NOTFOUND);
  });

  test('keys with bytes >= 0x80 go plain and are the same key for the text protocol', async () => {
    const raw = Buffer.from('café\u00ff', 'utf8');
    assert.equal((await conn.one({ op: 'store', mode: 'set', key: raw, value: v('hi'), flags: 0, ttl: 0 })).rc, 0);
    const text = await textExchange(mc.port, Buffer.concat([v('get '), raw, v('\r\n')]), /END\r\n$/);
    assert.equal(text, Buffer.concat([v('VALUE '), raw, v(' 0 2\r\nhi\r\nEND\r\n')]).toString('latin1'));
  });

  test('a base64 key of 186 raw bytes is the longest memcached takes; 187 is refused before sending', async () => {
    const longest = Buffer.alloc(186, 0x09);
    assert.equal((await conn.one({ op: 'store', mode: 'set', key: longest, value: v('L'), flags: 0, ttl: 0 })).rc, 0);
    assert.equal((await conn.one({ op: 'get', keys: [longest], withCas: false })).items?.[0]?.value.toString(), 'L');
    const tooLong = Buffer.alloc(187, 0x09);
    const [refused, after] = await conn.send({ op: 'store', mode: 'set', key: tooLong, value: v('L'), flags: 0, ttl: 0 }, { op: 'noop' });
    assert.equal(refused!.rc, Rc.BAD_KEY_PROVIDED);
    assert.deepStrictEqual(after, { rc: 0 });
  });

  test('auth is refused with NOT_SUPPORTED', async () => {
    const out = await conn.one({ op: 'auth', mechanism: 'PLAIN', data: Buffer.alloc(0) });
    assert.deepStrictEqual(out, { rc: Rc.NOT_SUPPORTED, text: 'SASL needs the binary protocol' });
  });
});
