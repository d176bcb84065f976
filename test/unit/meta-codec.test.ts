// The meta protocol codec without sockets: encodeMeta's exact request bytes, MetaDecoder on reply
// transcripts as memcached 1.6.18 sends them (decoded whole, byte by byte and split in two at
// every position), acceptMeta folding frames into Outcomes with the text protocol's codes, and
// MetaCodec's opaque bookkeeping.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Command, Outcome } from '../../src/memcache/protocol/command.js';
import {
  MAX_BASE64_KEY_BYTES,
  MetaCodec,
  MetaDecoder,
  NO_OPAQUE,
  acceptMeta,
  encodeMeta,
  metaOpaqueSpan,
  needsBase64,
  type MetaDecoderOptions,
  type MetaFrame,

} from '../../src/memcache/protocol/meta.js';
import { ProtocolError } from '../../src/memcache/protocol/text.js';
import { Fold, type WireRequest } from '../../src/memcache/protocol/wire-codec.js';
import { ByteWriter } from '../../src/util/byte-writer.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import { decodeAllWays } from '../support/decode-ways.js';

const wire = (text: string): Buffer => Buffer.from(text, 'latin1');
const key = (text: string): Buffer => Buffer.from(text, 'latin1');

function bytesOf(cmd: Command, opaque: number): string {
  const w = new ByteWriter(16);
  encodeMeta(cmd, opaque, w);
  return Buffer.concat(w.take()).toString('latin1');
}

function decode(bytes: Buffer, options: MetaDecoderOptions = {}): MetaFrame[] {
  return decodeAllWays(() => new MetaDecoder(options), bytes);
}

function assertMalformed(bytes: Buffer, message: RegExp, options: MetaDecoderOptions = {}): void {
  assert.throws(
    () => decode(bytes, options),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
      assert.equal(err.rc, Rc.PROTOCOL_ERROR);
      assert.match(err.message, message);
      return true;
    },
  );
}

const va = (opaque: number, data: string, flags = 0, cas = 0n): MetaFrame => ({ kind: 'VA', opaque, flags, cas, data: wire(data) });
const st = (kind: 'HD' | 'NS' | 'EX' | 'NF' | 'EN', opaque: number, cas = 0n): MetaFrame => ({ kind, opaque, cas });

describe('encodeMeta: exact request bytes', () => {
  it('get of one key, without and with CAS', () => {
    assert.equal(bytesOf({ op: 'get', keys: [key('foo')], withCas: false }, 7), 'mg foo v f O7\r\n');
    assert.equal(bytesOf({ op: 'get', keys: [key('foo')], withCas: true }, 7), 'mg foo v f c O7\r\n');
  });

  it('get of several keys: quiet mg per key with consecutive opaques, closed by mn', () => {
    assert.equal(
      bytesOf({ op: 'get', keys: [key('a'), key('b'), key('c')], withCas: true }, 10),
      'mg a v f c q O10\r\nmg b v f c q O11\r\nmg c v f c q O12\r\nmn\r\n',
    );
    assert.equal(bytesOf({ op: 'get', keys: [key('a'), key('b')], withCas: false }, 0xffffffff), 'mg a v f q O4294967295\r\nmg b v f q O0\r\nmn\r\n');
  });

  it('get-and-touch (touchTtl) adds T to every mg', () => {
    const one: Command = { op: 'get', keys: [key('foo')], withCas: true, touchTtl: 300 };
    assert.equal(bytesOf(one, 1), 'mg foo v f c T300 O1\r\n');
    const two: Command = { op: 'get', keys: [key('a'), key('b')], withCas: false, touchTtl: 0 };
    assert.equal(bytesOf(two, 5), 'mg a v f T0 q O5\r\nmg b v f T0 q O6\r\nmn\r\n');
  });

  it('store in every mode, asking for the new CAS', () => {
    const store = (mode: 'set' | 'add' | 'replace' | 'append' | 'prepend') =>
      bytesOf({ op: 'store', mode, key: key('k'), value: wire('hello'), flags: 0xfffffffe, ttl: 60 }, 3);
    assert.equal(store('set'), 'ms k 5 F4294967294 T60 MS O3\r\nhello\r\n');
    assert.equal(store('add'), 'ms k 5 F4294967294 T60 ME O3\r\nhello\r\n');
    assert.equal(store('replace'), 'ms k 5 F4294967294 T60 MR O3\r\nhello\r\n');
    assert.equal(store('append'), 'ms k 5 F4294967294 T60 MA O3\r\nhello\r\n');
    assert.equal(store('prepend'), 'ms k 5 F4294967294 T60 MP O3\r\nhello\r\n');
    assert.equal(
      bytesOf({ op: 'store', mode: 'cas', key: key('k'), value: wire(''), flags: 1, ttl: 0, cas: 18446744073709551615n }, 4),
      'ms k 0 F1 T0 MS C18446744073709551615 O4\r\n\r\n',
    );
  });

  it('a large value is written after its line, unchanged', () => {
    const value = Buffer.alloc(40_000, 0x61);
    const w = new ByteWriter(16);
    encodeMeta({ op: 'store', mode: 'set', key: key('big'), value, flags: 0, ttl: 0 }, 9, w);
    const out = Buffer.concat(w.take());
    assert.deepEqual(out, Buffer.concat([wire('ms big 40000 F0 T0 MS O9\r\n'), value, wire('\r\n')]));
  });

  it('delete, with and without CAS', () => {
    assert.equal(bytesOf({ op: 'delete', key: key('k') }, 2), 'md k O2\r\n');
    assert.equal(bytesOf({ op: 'delete', key: key('k'), cas: 42n }, 2), 'md k C42 O2\r\n');
  });

  it('incr/decr, and with an initial value and TTL', () => {
    assert.equal(bytesOf({ op: 'incr', key: key('n'), delta: 5n }, 1), 'ma n MI D5 v O1\r\n');
    assert.equal(bytesOf({ op: 'decr', key: key('n'), delta: 18446744073709551615n }, 1), 'ma n MD D18446744073709551615 v O1\r\n');
    assert.equal(bytesOf({ op: 'incr', key: key('n'), delta: 1n, initial: 42n, ttl: 100 }, 8), 'ma n MI D1 N100 J42 v O8\r\n');
    assert.equal(bytesOf({ op: 'decr', key: key('n'), delta: 1n, initial: 0n }, 8), 'ma n MD D1 N0 J0 v O8\r\n');
  });

  it('touch is an mg with T and no value', () => {
    assert.equal(bytesOf({ op: 'touch', key: key('k'), ttl: 30 }, 6), 'mg k T30 O6\r\n');
  });

  it('flush_all, version, stats and noop', () => {
    assert.equal(bytesOf({ op: 'flush', delay: 0 }, 1), 'flush_all\r\n');
    assert.equal(bytesOf({ op: 'flush', delay: 10 }, 1), 'flush_all 10\r\n');
    assert.equal(bytesOf({ op: 'version' }, 1), 'version\r\n');
    assert.equal(bytesOf({ op: 'stats' }, 1), 'stats\r\n');
    assert.equal(bytesOf({ op: 'stats', group: 'slabs' }, 1), 'stats slabs\r\n');
    assert.equal(bytesOf({ op: 'noop' }, 1), 'mn\r\n');
  });

  it('keys with whitespace, control bytes or DEL travel base64 with b; bytes >= 0x80 stay plain', () => {
    assert.equal(bytesOf({ op: 'get', keys: [Buffer.from('a b\x01\x7f\xff', 'latin1')], withCas: false }, 1), 'mg YSBiAX// b v f O1\r\n');
    assert.equal(bytesOf({ op: 'get', keys: [Buffer.from([0x61, 0x00, 0x62])], withCas: false }, 1), 'mg YQBi b v f O1\r\n');
    assert.equal(
      bytesOf({ op: 'store', mode: 'set', key: Buffer.from('a\tb'), value: wire('v'), flags: 0, ttl: 0 }, 2),
      'ms YQli 1 b F0 T0 MS O2\r\nv\r\n',
    );
    assert.equal(
      bytesOf({ op: 'store', mode: 'cas', key: Buffer.from('a\tb'), value: wire('v'), flags: 0, ttl: 0, cas: 7n }, 2),
      'ms YQli 1 b F0 T0 MS C7 O2\r\nv\r\n',
    );
    assert.equal(bytesOf({ op: 'delete', key: Buffer.from('a\nb'), cas: 9n }, 3), 'md YQpi b C9 O3\r\n');
    assert.equal(bytesOf({ op: 'incr', key: Buffer.from('a\x00'), delta: 1n, initial: 3n, ttl: 5 }, 3), 'ma YQA= b MI D1 N5 J3 v O3\r\n');
    assert.equal(bytesOf({ op: 'delete', key: Buffer.from('a\nb') }, 3), 'md YQpi b O3\r\n');
    assert.equal(bytesOf({ op: 'incr', key: Buffer.from('a\rb'), delta: 1n }, 4), 'ma YQ1i b MI D1 v O4\r\n');
    assert.equal(bytesOf({ op: 'touch', key: Buffer.from(' '), ttl: 1 }, 5), 'mg IA== b T1 O5\r\n');
    assert.equal(
      bytesOf({ op: 'get', keys: [Buffer.from('x y'), key('z')], withCas: false }, 5),
      'mg eCB5 b v f q O5\r\nmg z v f q O6\r\nmn\r\n',
    );
    const high = Buffer.from('caf\u00e9\u00ff', 'utf8');
    assert.equal(needsBase64(high), false);
    const w = new ByteWriter(16);
    encodeMeta({ op: 'get', keys: [high], withCas: false }, 1, w);
    assert.deepEqual(Buffer.concat(w.take()), Buffer.concat([wire('mg '), high, wire(' v f O1\r\n')]));
  });

  it('auth cannot be encoded', () => {
    assert.throws(() => bytesOf({ op: 'auth', mechanism: 'PLAIN', data: Buffer.alloc(0) }, 1), (err: unknown) => {
      assert.ok(err instanceof MemcachedError && !(err instanceof ProtocolError));
      assert.equal(err.rc, Rc.NOT_SUPPORTED);
      return true;
    });
  });
});

describe('MetaCodec.refuse', () => {
  const codec = new MetaCodec();
  it('auth: SASL needs the binary protocol', () => {
    assert.deepEqual(codec.refuse({ op: 'auth', mechanism: 'PLAIN', data: Buffer.alloc(0) }), {
      rc: Rc.NOT_SUPPORTED,
      message: 'SASL needs the binary protocol',
    });
  });

  it('carries every other command, incr with an initial value included', () => {
    for (const cmd of [
      { op: 'get', keys: [key('a'), key('b')], withCas: true },
      { op: 'incr', key: key('n'), delta: 1n, initial: 5n, ttl: 10 },
      { op: 'noop' },
      { op: 'flush', delay: 0 },
      { op: 'version' },
      { op: 'stats' },
      { op: 'touch', key: key('k'), ttl: 1 },
      { op: 'delete', key: key('k'), cas: 3n },
    ] satisfies Command[]) {
      assert.equal(codec.refuse(cmd), null, cmd.op);
    }
  });

  it('a base64 key whose token would pass 250 characters: 33 BAD_KEY_PROVIDED (186 raw bytes is the most)', () => {
    assert.equal(MAX_BASE64_KEY_BYTES, 186);
    const ok = Buffer.alloc(186, 0x20);
    const long = Buffer.alloc(187, 0x20);
    assert.equal(ok.toString('base64').length, 248);
    assert.equal(long.toString('base64').length, 252);
    assert.equal(codec.refuse({ op: 'get', keys: [ok], withCas: false }), null);
    assert.equal(codec.refuse({ op: 'get', keys: [key('a'), long], withCas: false })?.rc, Rc.BAD_KEY_PROVIDED);
    assert.equal(codec.refuse({ op: 'store', mode: 'set', key: long, value: wire('v'), flags: 0, ttl: 0 })?.rc, Rc.BAD_KEY_PROVIDED);
    assert.equal(codec.refuse({ op: 'delete', key: long })?.rc, Rc.BAD_KEY_PROVIDED);
    // A plain key keeps memcached's 250.
    assert.equal(codec.refuse({ op: 'touch', key: Buffer.alloc(250, 0x61), ttl: 0 }), null);
    assert.equal(codec.refuse({ op: 'touch', key: Buffer.alloc(251, 0x61), ttl: 0 })?.rc, Rc.BAD_KEY_PROVIDED);
  });
});

describe('MetaDecoder: every reply kind, decoded whole, byte by byte and split at every position', () => {
  it('VA with return flags in the order asked, data, and an empty VA', () => {
    assert.deepStrictEqual(decode(wire('VA 2 f5 c1 O8\r\nhi\r\nVA 0 O9 c18446744073709551615 f4294967295\r\n\r\n')), [
      va(8, 'hi', 5, 1n),
      va(9, '', 4294967295, 18446744073709551615n),
    ]);
  });

  it('VA data holding CR, LF and "VA" itself', () => {
    assert.deepStrictEqual(decode(wire('VA 8 O1\r\n\r\nVA 1\r\n\r\nEN O2\r\n')), [va(1, '\r\nVA 1\r\n'), st('EN', 2)]);
  });

  it('flags this codec does not use (t, s, k raw and base64 with b, unknown letters) are skipped', () => {
    const transcript = Buffer.concat([
      wire('VA 2 f5 c1 t-1 s2 kfoo O8\r\nhi\r\n'),
      wire('VA 1 f0 kcaf'),
      Buffer.from([0xc3, 0xa9, 0xff, 0x01]),
      wire(' O3\r\nx\r\n'),
      wire('VA 1 kYSBiAX// b O4 Zfuture W\r\nz\r\n'),
      wire('HD t99 O5\r\n'),
    ]);
    assert.deepStrictEqual(decode(transcript), [va(8, 'hi', 5, 1n), va(3, 'x'), va(4, 'z'), st('HD', 5)]);
  });

  it('status lines with and without opaque and CAS', () => {
    const transcript = 'HD c22 O1\r\nHD\r\nNS O2\r\nEX O3\r\nNF O4\r\nEN O5\r\nEN\r\nMN\r\nHD O4294967295\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      st('HD', 1, 22n),
      st('HD', NO_OPAQUE),
      st('NS', 2),
      st('EX', 3),
      st('NF', 4),
      st('EN', 5),
      st('EN', NO_OPAQUE),
      { kind: 'MN' },
      st('HD', 4294967295),
    ]);
  });

  it('the text replies: OK, VERSION, STAT..END, ERROR, CLIENT_ERROR, SERVER_ERROR', () => {
    const transcript =
      'OK\r\nVERSION 1.6.18\r\nSTAT pid 11001\r\nSTAT 1:chunk_size 96\r\nSTAT empty\r\nEND\r\nERROR\r\n' +
      'CLIENT_ERROR cannot increment or decrement non-numeric value\r\nSERVER_ERROR object too large for cache\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      { kind: 'ok' },
      { kind: 'version', text: '1.6.18' },
      { kind: 'stat', name: 'pid', value: '11001' },
      { kind: 'stat', name: '1:chunk_size', value: '96' },
      { kind: 'stat', name: 'empty', value: '' },
      { kind: 'end' },
      { kind: 'error' },
      { kind: 'client_error', text: 'cannot increment or decrement non-numeric value' },
      { kind: 'server_error', text: 'object too large for cache' },
    ]);
  });

  it('a multi-get transcript: hits with their opaques, MN', () => {
    assert.deepStrictEqual(decode(wire('VA 1 f0 c3 O12\r\nc\r\nVA 1 f7 c2 O10\r\na\r\nMN\r\n')), [va(12, 'c', 0, 3n), va(10, 'a', 7, 2n), { kind: 'MN' }]);
  });

  it('a session recorded from memcached 1.6.18 (ms c, quiet multi-get, mg miss, md, mn, flush_all, version, stats)', () => {
    // Replies to: ms YSBi 1 b F0 T0 MS O1 / mg YSBi b v f c q O2 / mg YSBj b v f c q O3 / mn /
    // mg YSBj b v f O4 / md YSBi b O5 / mn / flush_all / version / stats slabs (cut short).
    const transcript =
      'HD c22 O1\r\nVA 1 f0 c22 O2\r\nx\r\nMN\r\nEN O4\r\nHD O5\r\nMN\r\nOK\r\nVERSION 1.6.18\r\n' +
      'STAT 1:chunk_size 96\r\nSTAT active_slabs 2\r\nEND\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      st('HD', 1, 22n),
      va(2, 'x', 0, 22n),
      { kind: 'MN' },
      st('EN', 4),
      st('HD', 5),
      { kind: 'MN' },
      { kind: 'ok' },
      { kind: 'version', text: '1.6.18' },
      { kind: 'stat', name: '1:chunk_size', value: '96' },
      { kind: 'stat', name: 'active_slabs', value: '2' },
      { kind: 'end' },
    ]);
  });

  it('a value up to the limit is fine', () => {
    assert.deepStrictEqual(decode(wire('VA 3 O1\r\nabc\r\n'), { maxValueBytes: 3 }), [va(1, 'abc')]);
  });
});

describe('MetaDecoder: malformed replies fail the same way in every split', () => {
  it('a line not ending in CRLF', () => assertMalformed(wire('HD O1\n'), /CRLF/));
  it('a bare LF', () => assertMalformed(wire('\n'), /CRLF/));
  it('VA data not followed by CRLF', () => assertMalformed(wire('VA 2 O1\r\nabcd\r\n'), /not followed by CRLF/));
  it('VA with a bad length', () => {
    assertMalformed(wire('VA x O1\r\n'), /length in VA/);
    assertMalformed(wire('VA -1 O1\r\n'), /length in VA/);
    assertMalformed(wire('VA\r\n'), /length in VA/);
    assertMalformed(wire('VA 12345678901 O1\r\n'), /length in VA/);
  });
  it('a VA longer than the value limit', () => {
    assertMalformed(wire('VA 134217729 O1\r\n'), /over the 134217728-byte limit/);
    assertMalformed(wire('VA 4 O1\r\n'), /over the 3-byte limit/, { maxValueBytes: 3 });
  });
  it('a line longer than the limit, with or without its newline', () => {
    assertMalformed(wire('HD ' + 'k'.repeat(100)), /longer than 64 bytes/, { maxLineBytes: 64 });
    assertMalformed(wire('HD ' + 'k'.repeat(100) + '\r\n'), /longer than 64 bytes/, { maxLineBytes: 64 });
  });
  it('a CAS above 2^64-1 or not a number', () => {
    assertMalformed(wire('HD c18446744073709551616 O1\r\n'), /above 2\^64-1/);
    assertMalformed(wire('HD c123456789012345678901 O1\r\n'), /malformed c/);
    assertMalformed(wire('HD c12x O1\r\n'), /malformed c/);
    assertMalformed(wire('HD c O1\r\n'), /malformed c/);
    assertMalformed(wire('HD c1234567890123456x O1\r\n'), /malformed c/);
  });
  it('bad flags or opaque', () => {
    assertMalformed(wire('VA 1 f4294967296 O1\r\nx\r\n'), /malformed f/);
    assertMalformed(wire('VA 1 f-1 O1\r\nx\r\n'), /malformed f/);
    assertMalformed(wire('HD Oabc\r\n'), /malformed O/);
    assertMalformed(wire('HD O4294967296\r\n'), /malformed O/);
  });
  it('an unknown reply line, and MN with trailing bytes', () => {
    assertMalformed(wire('ZZ O1\r\n'), /unexpected reply line/);
    assertMalformed(wire('STORED\r\n'), /unexpected reply line/);
    assertMalformed(wire('MN O1\r\n'), /MN with trailing/);
  });
  it('frames before the bad one still come out, the same in every split', () => {
    const frames: MetaFrame[] = [];
    const d = new MetaDecoder();
    d.feed(wire('HD O1\r\nVA 1 O2\r\nxy\r\n'));
    frames.push(d.next()!);
    assert.throws(() => d.next(), ProtocolError);
    assert.deepStrictEqual(frames, [st('HD', 1)]);
    assertMalformed(wire('HD O1\r\nVA 1 O2\r\nxy\r\n'), /not followed by CRLF/);
  });
});

function accept(cmd: Command, opaque: number, frames: MetaFrame[]): { out: Outcome; done: boolean[] } {
  const out: Outcome = { rc: 0 };
  const done = frames.map((f) => acceptMeta(cmd, opaque, out, f));
  return { out, done };
}

function assertDesync(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, String(err));
    assert.equal(err.rc, Rc.UNKNOWN_READ_FAILURE);
    return true;
  });
}

describe('acceptMeta: the text protocol\'s codes for the same outcomes', () => {
  const k = key('k');
  const store = (mode: 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas'): Command => ({
    op: 'store',
    mode,
    key: k,
    value: wire('v'),
    flags: 0,
    ttl: 0,
    ...(mode === 'cas' ? { cas: 5n } : {}),
  });

  it('get of one key: hit, miss (success, empty slot)', () => {
    const get: Command = { op: 'get', keys: [k], withCas: true };
    assert.deepStrictEqual(accept(get, 4, [va(4, 'hi', 5, 9n)]), { out: { rc: 0, items: [{ value: wire('hi'), flags: 5, cas: 9n }] }, done: [true] });
    assert.deepStrictEqual(accept(get, 4, [st('EN', 4)]), { out: { rc: 0 }, done: [true] });
  });

  it('store: HD (the new CAS in number), NS 14, EX 12, NF 16 for cas / 14 otherwise', () => {
    assert.deepStrictEqual(accept(store('set'), 1, [st('HD', 1, 77n)]).out, { rc: 0, number: 77n });
    assert.equal(accept(store('add'), 1, [st('NS', 1)]).out.rc, Rc.NOTSTORED);
    assert.equal(accept(store('replace'), 1, [st('NS', 1)]).out.rc, Rc.NOTSTORED);
    assert.equal(accept(store('append'), 1, [st('NS', 1)]).out.rc, Rc.NOTSTORED);
    assert.equal(accept(store('prepend'), 1, [st('NS', 1)]).out.rc, Rc.NOTSTORED);
    assert.equal(accept(store('append'), 1, [st('NF', 1)]).out.rc, Rc.NOTSTORED);
    assert.equal(accept(store('cas'), 1, [st('EX', 1)]).out.rc, Rc.DATA_EXISTS);
    assert.equal(accept(store('cas'), 1, [st('NF', 1)]).out.rc, Rc.NOTFOUND);
    assert.equal(Rc.NOTSTORED, 14);
    assert.equal(Rc.DATA_EXISTS, 12);
    assert.equal(Rc.NOTFOUND, 16);
  });

  it('server and client errors: E2BIG, out of memory, SERVER_ERROR, CLIENT_ERROR, ERROR', () => {
    const s = store('set');
    assert.deepStrictEqual(accept(s, 1, [{ kind: 'server_error', text: 'object too large for cache' }]), {
      out: { rc: Rc.E2BIG, text: 'object too large for cache' },
      done: [true],
    });
    assert.equal(accept(s, 1, [{ kind: 'server_error', text: 'out of memory storing object' }]).out.rc, Rc.SERVER_MEMORY_ALLOCATION_FAILURE);
    assert.equal(accept(s, 1, [{ kind: 'server_error', text: 'whatever' }]).out.rc, Rc.SERVER_ERROR);
    assert.equal(accept(s, 1, [{ kind: 'client_error', text: 'bad command line format' }]).out.rc, Rc.CLIENT_ERROR);
    assert.deepStrictEqual(accept(s, 1, [{ kind: 'error' }]), { out: { rc: Rc.ERROR }, done: [true] });
  });

  it('delete: HD, NF 16, EX 12', () => {
    assert.deepStrictEqual(accept({ op: 'delete', key: k }, 2, [st('HD', 2)]).out, { rc: 0 });
    assert.equal(accept({ op: 'delete', key: k }, 2, [st('NF', 2)]).out.rc, Rc.NOTFOUND);
    assert.equal(accept({ op: 'delete', key: k, cas: 3n }, 2, [st('EX', 2)]).out.rc, Rc.DATA_EXISTS);
  });

  it('incr/decr: the number, NF 16, CLIENT_ERROR 9 for a non-numeric value', () => {
    const incr: Command = { op: 'incr', key: k, delta: 1n };
    assert.deepStrictEqual(accept(incr, 3, [va(3, '18446744073709551615')]).out, { rc: 0, number: 18446744073709551615n });
    assert.deepStrictEqual(accept(incr, 3, [va(3, '4  ')]).out, { rc: 0, number: 4n });
    assert.equal(accept(incr, 3, [st('NF', 3)]).out.rc, Rc.NOTFOUND);
    assert.deepStrictEqual(accept(incr, 3, [{ kind: 'client_error', text: 'cannot increment or decrement non-numeric value' }]).out, {
      rc: Rc.CLIENT_ERROR,
      text: 'cannot increment or decrement non-numeric value',
    });
    assert.throws(() => accept(incr, 3, [va(3, '18446744073709551616')]), /above 2\^64-1/);
    assert.throws(() => accept(incr, 3, [va(3, 'x1')]), /bad counter/);
  });

  it('touch: HD, EN is NOTFOUND 16', () => {
    const touch: Command = { op: 'touch', key: k, ttl: 5 };
    assert.deepStrictEqual(accept(touch, 6, [st('HD', 6)]).out, { rc: 0 });
    assert.equal(accept(touch, 6, [st('EN', 6)]).out.rc, Rc.NOTFOUND);
  });

  it('flush, version, stats, noop', () => {
    assert.deepStrictEqual(accept({ op: 'flush', delay: 0 }, 1, [{ kind: 'ok' }]), { out: { rc: 0 }, done: [true] });
    assert.deepStrictEqual(accept({ op: 'version' }, 1, [{ kind: 'version', text: '1.6.18' }]), { out: { rc: 0, text: '1.6.18' }, done: [true] });
    assert.deepStrictEqual(
      accept({ op: 'stats' }, 1, [
        { kind: 'stat', name: 'pid', value: '1' },
        { kind: 'stat', name: 'uptime', value: '2' },
        { kind: 'end' },
      ]),
      {
        out: {
          rc: 0,
          stats: new Map([
            ['pid', '1'],
            ['uptime', '2'],
          ]),
        },
        done: [false, false, true],
      },
    );
    assert.deepStrictEqual(accept({ op: 'noop' }, 1, [{ kind: 'MN' }]), { out: { rc: 0 }, done: [true] });
  });

  it('multi-get: hits out of order fill their slots, misses stay empty, MN completes', () => {
    const get: Command = { op: 'get', keys: [key('a'), key('b'), key('c'), key('d')], withCas: true };
    const { out, done } = accept(get, 10, [va(13, 'd', 4, 4n), va(10, 'a', 1, 1n), st('EN', 11), { kind: 'MN' }]);
    assert.deepStrictEqual(done, [false, false, false, true]);
    assert.equal(out.rc, 0);
    assert.equal(out.items?.length, 4);
    assert.deepStrictEqual(out.items?.[0], { value: wire('a'), flags: 1, cas: 1n });
    assert.equal(out.items?.[1], undefined);
    assert.equal(out.items?.[2], undefined);
    assert.deepStrictEqual(out.items?.[3], { value: wire('d'), flags: 4, cas: 4n });
    // All misses: just MN.
    assert.deepStrictEqual(accept(get, 10, [{ kind: 'MN' }]), { out: { rc: 0 }, done: [true] });
    // No keys at all: the run is just mn.
    const none: Command = { op: 'get', keys: [], withCas: false };
    assert.equal(bytesOf(none, 3), 'mn\r\n');
    assert.deepStrictEqual(accept(none, 3, [{ kind: 'MN' }]), { out: { rc: 0 }, done: [true] });
  });

  it('multi-get across the 2^32 wrap', () => {
    const get: Command = { op: 'get', keys: [key('a'), key('b')], withCas: false };
    const { out } = accept(get, 0xffffffff, [va(0, 'b'), va(0xffffffff, 'a'), { kind: 'MN' }]);
    assert.deepStrictEqual(out.items, [
      { value: wire('a'), flags: 0, cas: 0n },
      { value: wire('b'), flags: 0, cas: 0n },
    ]);
  });

  it('multi-get: a CLIENT_ERROR or SERVER_ERROR in the run fails the whole get, which still ends at MN', () => {
    const get: Command = { op: 'get', keys: [key('a'), key('b')], withCas: false };
    const r = accept(get, 1, [va(1, 'a'), { kind: 'server_error', text: 'out of memory writing get response' }, { kind: 'MN' }]);
    assert.deepStrictEqual(r.done, [false, false, true]);
    assert.equal(r.out.rc, Rc.SERVER_MEMORY_ALLOCATION_FAILURE);
    const c = accept(get, 1, [{ kind: 'client_error', text: 'bad command line format' }, { kind: 'MN' }]);
    assert.deepStrictEqual(c.done, [false, true]);
    assert.equal(c.out.rc, Rc.CLIENT_ERROR);
  });

  it('a reply with an opaque that is not the head\'s is a desync (UNKNOWN_READ_FAILURE)', () => {
    assertDesync(() => accept({ op: 'get', keys: [k], withCas: false }, 4, [va(5, 'x')]));
    assertDesync(() => accept({ op: 'get', keys: [k], withCas: false }, 4, [st('EN', NO_OPAQUE)]));
    assertDesync(() => accept(store('set'), 4, [st('HD', 3)]));
    assertDesync(() => accept({ op: 'delete', key: k }, 4, [st('NF', 40)]));
    // Outside the run's opaques, or no opaque at all inside a run.
    const get: Command = { op: 'get', keys: [key('a'), key('b')], withCas: false };
    assertDesync(() => accept(get, 10, [va(12, 'x')]));
    assertDesync(() => accept(get, 10, [va(9, 'x')]));
    assertDesync(() => accept(get, 10, [va(NO_OPAQUE, 'x')]));
    assertDesync(() => accept(get, 10, [st('HD', 10)]));
  });

  it('a reply of the wrong kind is a desync', () => {
    assertDesync(() => accept(store('set'), 1, [st('EN', 1)]));
    assertDesync(() => accept({ op: 'touch', key: k, ttl: 1 }, 1, [va(1, 'x')]));
    assertDesync(() => accept({ op: 'noop' }, 1, [{ kind: 'ok' }]));
    assertDesync(() => accept({ op: 'flush', delay: 0 }, 1, [{ kind: 'MN' }]));
    assertDesync(() => accept({ op: 'get', keys: [k], withCas: false }, 1, [{ kind: 'MN' }]));
    assertDesync(() => accept({ op: 'version' }, 1, [{ kind: 'end' }]));
  });
});

describe('MetaCodec: opaques and the WireCodec fold', () => {
  function request(cmd: Command): WireRequest {
    return { cmd, out: { rc: 0 }, opaque: 0 };
  }

  it('hands out one opaque per request and one per key of a multi-get', () => {
    const codec = new MetaCodec({ firstOpaque: 0xfffffffe });
    const w = new ByteWriter(16);
    const a = request({ op: 'get', keys: [key('x')], withCas: false });
    const b = request({ op: 'get', keys: [key('p'), key('q'), key('r')], withCas: false });
    const c = request({ op: 'delete', key: key('x') });
    codec.encode(a, w);
    codec.encode(b, w);
    codec.encode(c, w);
    assert.deepStrictEqual([a.opaque, b.opaque, c.opaque], [0xfffffffe, 0xffffffff, 2]);
    assert.equal(metaOpaqueSpan(b.cmd), 3);
    assert.equal(
      Buffer.concat(w.take()).toString('latin1'),
      'mg x v f O4294967294\r\nmg p v f q O4294967295\r\nmg q v f q O0\r\nmg r v f q O1\r\nmn\r\nmd x O2\r\n',
    );
    codec.feed(wire('EN O4294967294\r\nVA 1 f0 O1\r\nR\r\nMN\r\nHD O2\r\n'));
    assert.equal(codec.accept(a, codec.next()!), Fold.DONE);
    assert.equal(codec.accept(b, codec.next()!), Fold.MORE);
    assert.equal(codec.accept(b, codec.next()!), Fold.DONE);
    assert.equal(codec.accept(c, codec.next()!), Fold.DONE);
    assert.equal(codec.next(), undefined);
    assert.deepStrictEqual([...b.out.items!], [undefined, undefined, { value: wire('R'), flags: 0, cas: 0n }]);
    assert.deepStrictEqual(c.out, { rc: 0 });
  });
});

describe('storeMany: a quiet run of ms closed by mn', () => {
  const many = (...entries: Array<[string, string]>): Extract<Command, { op: 'storeMany' }> => ({
    op: 'storeMany',
    mode: 'set',
    keys: entries.map(([k]) => key(k)),
    values: entries.map(([, v]) => wire(v)),
    flags: 7,
    ttl: 60,
  });
  const three = many(['a', 'x'], ['b', 'yy'], ['c', '']);

  it('writes one quiet ms per entry with opaques opaque .. opaque+n-1, then mn', () => {
    assert.equal(
      bytesOf(three, 10),
      'ms a 1 F7 T60 q O10\r\nx\r\nms b 2 F7 T60 q O11\r\nyy\r\nms c 0 F7 T60 q O12\r\n\r\nmn\r\n',
    );
    assert.equal(metaOpaqueSpan(three), 3);
  });

  it('a single entry is still a quiet run; opaques wrap at 2^32; a key with a space goes base64 after the length', () => {
    assert.equal(bytesOf(many(['a', 'x']), 0xffffffff), 'ms a 1 F7 T60 q O4294967295\r\nx\r\nmn\r\n');
    assert.equal(metaOpaqueSpan(many(['a', 'x'])), 1);
    assert.equal(bytesOf(many(['x y', 'v'], ['z', 'w']), 0xffffffff), 'ms eCB5 1 b F7 T60 q O4294967295\r\nv\r\nms z 1 F7 T60 q O0\r\nw\r\nmn\r\n');
  });

  it('refuses a key memcached would refuse before parsing the data block', () => {
    const cmd: Command = { ...three, keys: [key('a'), Buffer.alloc(251, 0x61), key('c')] };
    assert.equal(new MetaCodec().refuse(cmd)?.rc, Rc.BAD_KEY_PROVIDED);
    assert.equal(new MetaCodec().refuse(three), null);
  });

  it('all stored: MN alone completes it with no per-entry code', () => {
    const { out, done } = accept(three, 10, [{ kind: 'MN' }]);
    assert.deepStrictEqual(done, [true]);
    assert.deepStrictEqual(out, { rc: 0 });
  });

  it('NS / EX / NF land in their entry by opaque; an HD sent anyway means stored', () => {
    const { out, done } = accept(three, 0xffffffff, [
      { kind: 'NS', opaque: 0, cas: 0n },
      { kind: 'HD', opaque: 0xffffffff, cas: 0n },
      { kind: 'EX', opaque: 1, cas: 0n },
      { kind: 'MN' },
    ]);
    assert.deepStrictEqual(done, [false, false, false, true]);
    assert.equal(out.rc, 0);
    assert.deepStrictEqual([...out.rcs!], [undefined, Rc.NOTSTORED, Rc.DATA_EXISTS]);
    assert.equal(out.unattributed, undefined);
    assert.deepStrictEqual([...accept(three, 10, [{ kind: 'NF', opaque: 12, cas: 0n }, { kind: 'MN' }]).out.rcs!], [undefined, undefined, Rc.NOTSTORED]);
  });

  it('a reply with an opaque outside the run, without one, or of the wrong kind is a desync', () => {
    assertDesync(() => accept(three, 10, [{ kind: 'NS', opaque: 13, cas: 0n }]));
    assertDesync(() => accept(three, 10, [{ kind: 'NS', opaque: 9, cas: 0n }]));
    assertDesync(() => accept(three, 10, [{ kind: 'NS', opaque: NO_OPAQUE, cas: 0n }]));
    assertDesync(() => accept(three, 10, [{ kind: 'VA', opaque: 10, flags: 0, cas: 0n, data: wire('x') }]));
    assertDesync(() => accept(three, 10, [{ kind: 'EN', opaque: 10, cas: 0n }]));
    assertDesync(() => accept(three, 10, [{ kind: 'end' }]));
  });

  it('an error line without an opaque: no silent entry is vouched for, the run still ends only at MN', () => {
    // What 1.6.18 sends for a run whose second entry is over the item size limit (its data block
    // is swallowed, the run goes on), the third refused by its own opaque.
    const { out, done } = accept(three, 10, [
      { kind: 'server_error', text: 'object too large for cache' },
      { kind: 'NS', opaque: 12, cas: 0n },
      { kind: 'MN' },
    ]);
    assert.deepStrictEqual(done, [false, false, true]);
    assert.equal(out.rc, Rc.E2BIG);
    assert.equal(out.text, 'object too large for cache');
    assert.deepStrictEqual([...out.rcs!], [Rc.E2BIG, Rc.E2BIG, Rc.NOTSTORED]);
    assert.deepStrictEqual(out.unattributed, [0, 1]);

    const other = accept(three, 10, [{ kind: 'client_error', text: 'bad data chunk' }, { kind: 'error' }, { kind: 'MN' }]);
    assert.deepStrictEqual(other.done, [false, false, true]);
    assert.equal(other.out.rc, Rc.ERROR);
    assert.deepStrictEqual([...other.out.rcs!], [Rc.ERROR, Rc.ERROR, Rc.ERROR]);
    assert.deepStrictEqual(other.out.unattributed, [0, 1, 2]);
  });

  it('decodes the transcript memcached 1.6.18 sends for a run with a too-large entry, and folds it through MetaCodec', () => {
    const codec = new MetaCodec({ firstOpaque: 4 });
    const req: WireRequest = { cmd: three, out: { rc: 0 }, opaque: 0 };
    const w = new ByteWriter(16);
    codec.encode(req, w);
    assert.equal(req.opaque, 4);
    codec.feed(wire('SERVER_ERROR object too large for cache\r\nMN\r\n'));
    assert.equal(codec.accept(req, codec.next()!), Fold.MORE);
    assert.equal(codec.accept(req, codec.next()!), Fold.DONE);
    assert.equal(codec.next(), undefined);
    assert.deepStrictEqual(req.out.unattributed, [0, 1, 2]);
  });
});
