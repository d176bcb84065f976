// The binary protocol codec without sockets (memcached doc/protocol-binary.xml): BinaryDecoder on
// response transcripts built byte by byte here (field values as memcached 1.6.18 sends them),
// decoded whole, byte by byte and split in two at every position; encodeBinary's exact request
// bytes; statusRc; acceptBinary folding responses into Outcomes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { BinaryDecoder, Opcode, Status, acceptBinary, encodeBinary, opaqueSpan, statusRc } from '../../src/memcache/protocol/binary.js';
import type { BinaryDecoderOptions, BinaryFrame } from '../../src/memcache/protocol/binary.js';
import type { Command, Outcome } from '../../src/memcache/protocol/command.js';
import { ProtocolError } from '../../src/memcache/protocol/text.js';
import { ByteWriter } from '../../src/util/byte-writer.js';
import { Rc } from '../../src/util/errors.js';
import { decodeAllWays } from '../support/decode-ways.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

interface PacketSpec {
  opcode: number;
  /** Response: the status; request: the vbucket (always 0 here). */
  status?: number;
  opaque?: number;
  cas?: bigint;
  extras?: Buffer;
  key?: Buffer | string;
  value?: Buffer | string;
  /** Overrides for malformed packets. */
  magic?: number;
  keyLength?: number;
  bodyLength?: number;
}

const asBuffer = (b: Buffer | string | undefined): Buffer => (b === undefined ? Buffer.alloc(0) : typeof b === 'string' ? bytes(b) : b);

/** A 24-byte header (big-endian fields at their protocol offsets) followed by extras, key, value. */
function packet(magic: number, spec: PacketSpec): Buffer {
  const extras = spec.extras ?? Buffer.alloc(0);
  const key = asBuffer(spec.key);
  const value = asBuffer(spec.value);
  const header = Buffer.alloc(24);
  header.writeUInt8(spec.magic ?? magic, 0);
  header.writeUInt8(spec.opcode, 1);
  header.writeUInt16BE(spec.keyLength ?? key.length, 2);
  header.writeUInt8(extras.length, 4);
  header.writeUInt8(0, 5); // data type
  header.writeUInt16BE(spec.status ?? 0, 6);
  header.writeUInt32BE(spec.bodyLength ?? extras.length + key.length + value.length, 8);
  header.writeUInt32BE(spec.opaque ?? 0, 12);
  header.writeBigUInt64BE(spec.cas ?? 0n, 16);
  return Buffer.concat([header, extras, key, value]);
}

const response = (spec: PacketSpec): Buffer => packet(0x81, spec);
const request = (spec: PacketSpec): Buffer => packet(0x80, spec);

/** The frame the decoder should produce for `spec`. */
function frame(spec: PacketSpec): BinaryFrame {
  return {
    opcode: spec.opcode,
    status: spec.status ?? 0,
    opaque: spec.opaque ?? 0,
    cas: spec.cas ?? 0n,
    flags: spec.extras !== undefined && spec.extras.length >= 4 ? spec.extras.readUInt32BE(0) : 0,
    key: asBuffer(spec.key),
    value: asBuffer(spec.value),
  };
}

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function uint64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n, 0);
  return b;
}

function decode(transcript: Buffer, options: BinaryDecoderOptions = {}): BinaryFrame[] {
  return decodeAllWays(() => new BinaryDecoder(options), transcript);
}

// Responses as memcached 1.6.18 sent them to a probe.
const SET_OK: PacketSpec = { opcode: Opcode.SET, opaque: 1, cas: 9n };
const GET_HIT: PacketSpec = { opcode: Opcode.GET, opaque: 2, cas: 9n, extras: hex('deadbeef'), value: 'hi' };
const GET_MISS: PacketSpec = { opcode: Opcode.GET, status: Status.KEY_NOT_FOUND, opaque: 3, value: 'Not found' };
const GETQ_HIT: PacketSpec = { opcode: Opcode.GETQ, opaque: 5, cas: 9n, extras: hex('deadbeef'), value: 'hi' };
const NOOP: PacketSpec = { opcode: Opcode.NOOP, opaque: 6 };
const INCR_MAX: PacketSpec = { opcode: Opcode.INCREMENT, opaque: 8, cas: 10n, value: uint64(0xffff_ffff_ffff_ffffn) };
const INCR_NON_NUMERIC: PacketSpec = {
  opcode: Opcode.INCREMENT,
  status: Status.NON_NUMERIC,
  opaque: 9,
  value: 'Non-numeric server-side value for incr or decr',
};
const ADD_EXISTS: PacketSpec = { opcode: Opcode.ADD, status: Status.KEY_EXISTS, opaque: 10, value: 'Data exists for key.' };
const APPEND_NOT_STORED: PacketSpec = { opcode: Opcode.APPEND, status: Status.ITEM_NOT_STORED, opaque: 13, value: 'Not stored.' };
const VERSION: PacketSpec = { opcode: Opcode.VERSION, opaque: 14, value: '1.6.18' };
const STAT_MAXBYTES: PacketSpec = { opcode: Opcode.STAT, opaque: 15, key: 'maxbytes', value: '8388608' };
const STAT_VERSION: PacketSpec = { opcode: Opcode.STAT, opaque: 15, key: 'version', value: '1.6.18' };
const STAT_END: PacketSpec = { opcode: Opcode.STAT, opaque: 15 };
/** Extras, key and value all present (a GETK-style response), CAS using all 64 bits. */
const WITH_KEY: PacketSpec = {
  opcode: 0x0c,
  opaque: 0xffff_ffff,
  cas: 0xfedc_ba98_7654_3210n,
  extras: hex('00000007'),
  key: 'kk',
  value: Buffer.from([0x00, 0x81, 0x0d, 0x0a, 0xff]),
};

describe('BinaryDecoder: decoded whole, byte by byte and split at every position', () => {
  it('one response with nothing but a header', () => {
    assert.deepStrictEqual(decode(response(SET_OK)), [frame(SET_OK)]);
  });

  it('extras, key and value land in their own fields', () => {
    assert.deepStrictEqual(decode(response(WITH_KEY)), [frame(WITH_KEY)]);
  });

  it('a session of responses', () => {
    const specs = [
      SET_OK,
      GET_HIT,
      GET_MISS,
      GETQ_HIT,
      NOOP,
      INCR_MAX,
      INCR_NON_NUMERIC,
      ADD_EXISTS,
      APPEND_NOT_STORED,
      VERSION,
      STAT_MAXBYTES,
      STAT_VERSION,
      STAT_END,
      WITH_KEY,
    ];
    assert.deepStrictEqual(decode(Buffer.concat(specs.map(response))), specs.map(frame));
  });

  it('a value that looks like a response header is just data', () => {
    const spec: PacketSpec = { opcode: Opcode.GET, opaque: 2, extras: hex('00000000'), value: response(GET_MISS) };
    assert.deepStrictEqual(decode(Buffer.concat([response(spec), response(NOOP)])), [frame(spec), frame(NOOP)]);
  });

  it('an incomplete response yields nothing yet', () => {
    const whole = response(GET_HIT);
    assert.deepStrictEqual(decode(Buffer.concat([response(SET_OK), whole.subarray(0, whole.length - 1)])), [frame(SET_OK)]);
  });

  it('a body of exactly maxBodyBytes is accepted', () => {
    const spec: PacketSpec = { opcode: Opcode.GET, extras: hex('00000000'), value: 'x'.repeat(12) };
    assert.deepStrictEqual(decode(response(spec), { maxBodyBytes: 16 }), [frame(spec)]);
  });

  it('key and extras filling the whole body leave an empty value', () => {
    const spec: PacketSpec = { opcode: 0x0c, extras: hex('00000001'), key: 'abc' };
    assert.deepStrictEqual(decode(response(spec)), [frame(spec)]);
  });

  it('a value stays intact while later replies are fed and decoded (it is a view the decoder never writes into)', () => {
    const decoder = new BinaryDecoder();
    const bytes = Buffer.concat(Array.from({ length: 40 }, (_, i) => response({ ...WITH_KEY, opaque: i, value: `value-${i}-${'v'.repeat(i)}` })));
    const values: Buffer[] = [];
    // Odd-sized chunks: replies straddle them, so they sit in the decoder's own buffer too.
    for (let at = 0; at < bytes.length; at += 37) {
      decoder.feed(Buffer.from(bytes.subarray(at, at + 37)));
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) values.push(f.value);
    }
    assert.deepStrictEqual(values.map((v) => v.toString('latin1')), Array.from({ length: 40 }, (_, i) => `value-${i}-${'v'.repeat(i)}`));
  });
});

describe('BinaryDecoder: malformed responses throw ProtocolError', () => {
  function assertMalformed(transcript: Buffer, options: BinaryDecoderOptions, message: RegExp): void {
    assert.throws(
      () => decode(transcript, options),
      (err: unknown) => {
        assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
        assert.equal(err.rc, Rc.PROTOCOL_ERROR);
        assert.match(err.message, message);
        return true;
      },
    );
  }

  it('bad magic', () => {
    assertMalformed(request({ opcode: Opcode.GET, key: 'k' }), {}, /bad response magic 0x80/);
    assertMalformed(Buffer.concat([response(SET_OK), bytes('VALUE k 0 1\r\nv\r\nEND\r\nSTORED\r\n')]), {}, /bad response magic 0x56/);
  });

  it('key + extras longer than the body', () => {
    assertMalformed(response({ opcode: Opcode.GET, extras: hex('00000000'), key: 'abcd', bodyLength: 7 }), {}, /key and extras/);
    assertMalformed(response({ opcode: Opcode.GET, keyLength: 1 }), {}, /key and extras/);
  });

  it('a body over maxBodyBytes, refused from the header alone', () => {
    assertMalformed(response({ opcode: Opcode.GET, bodyLength: 17 }), { maxBodyBytes: 16 }, /body of 17 bytes/);
    assertMalformed(response({ opcode: Opcode.GET, bodyLength: 0xffff_ffff }), {}, /body of 4294967295 bytes/);
  });
});

describe('encodeBinary: exact request bytes', () => {
  function encoded(cmd: Command, opaque: number): Buffer {
    const w = new ByteWriter();
    encodeBinary(cmd, opaque, w);
    return Buffer.concat(w.take());
  }

  const key = bytes('key');
  const store = (mode: 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas', cas?: bigint): Command => ({
    op: 'store',
    mode,
    key,
    value: bytes('value'),
    flags: 0xdead_beef,
    ttl: 3600,
    ...(cas === undefined ? {} : { cas }),
  });
  const setExtras = Buffer.concat([uint32(0xdead_beef), uint32(3600)]);

  it('the header fields at their offsets, spelled out once', () => {
    assert.deepStrictEqual(
      encoded({ op: 'get', keys: [bytes('foo')], withCas: false }, 0x0102_0304),
      hex(`80 00 0003 00 00 0000 00000003 01020304 0000000000000000 ${bytes('foo').toString('hex')}`),
    );
    assert.deepStrictEqual(
      encoded({ op: 'store', mode: 'cas', key: bytes('k'), value: bytes('v'), flags: 1, ttl: 2, cas: 0x1122_3344_5566_7788n }, 7),
      hex('80 01 0001 08 00 0000 0000000a 00000007 1122334455667788 00000001 00000002 6b 76'),
    );
  });

  const cases: Array<[string, Command, number, Buffer]> = [
    ['get of one key: GET', { op: 'get', keys: [key], withCas: true }, 42, request({ opcode: Opcode.GET, key, opaque: 42 })],
    ['set: flags and ttl extras', store('set'), 1, request({ opcode: Opcode.SET, extras: setExtras, key, value: 'value', opaque: 1 })],
    ['add', store('add'), 2, request({ opcode: Opcode.ADD, extras: setExtras, key, value: 'value', opaque: 2 })],
    ['replace', store('replace'), 3, request({ opcode: Opcode.REPLACE, extras: setExtras, key, value: 'value', opaque: 3 })],
    ['append: no extras', store('append'), 4, request({ opcode: Opcode.APPEND, key, value: 'value', opaque: 4 })],
    ['prepend: no extras', store('prepend'), 5, request({ opcode: Opcode.PREPEND, key, value: 'value', opaque: 5 })],
    [
      'cas: SET carrying the CAS',
      store('cas', 0xffff_ffff_ffff_ffffn),
      6,
      request({ opcode: Opcode.SET, extras: setExtras, key, value: 'value', opaque: 6, cas: 0xffff_ffff_ffff_ffffn }),
    ],
    [
      'set with flags -1 and an empty value',
      { op: 'store', mode: 'set', key, value: Buffer.alloc(0), flags: -1, ttl: 0 },
      7,
      request({ opcode: Opcode.SET, extras: hex('ffffffff 00000000'), key, opaque: 7 }),
    ],
    ['delete', { op: 'delete', key }, 8, request({ opcode: Opcode.DELETE, key, opaque: 8 })],
    [
      'incr without initial: expiration 0xffffffff (do not create)',
      { op: 'incr', key, delta: 5n },
      9,
      request({ opcode: Opcode.INCREMENT, extras: hex('0000000000000005 0000000000000000 ffffffff'), key, opaque: 9 }),
    ],
    [
      'incr with initial and ttl',
      { op: 'incr', key, delta: 1n, initial: 10n, ttl: 60 },
      10,
      request({ opcode: Opcode.INCREMENT, extras: hex('0000000000000001 000000000000000a 0000003c'), key, opaque: 10 }),
    ],
    [
      'decr with initial 0 and no ttl',
      { op: 'decr', key, delta: 0xffff_ffff_ffff_ffffn, initial: 0n },
      11,
      request({ opcode: Opcode.DECREMENT, extras: hex('ffffffffffffffff 0000000000000000 00000000'), key, opaque: 11 }),
    ],
    ['touch: ttl extras', { op: 'touch', key, ttl: 100 }, 12, request({ opcode: Opcode.TOUCH, extras: uint32(100), key, opaque: 12 })],
    ['flush now: no extras', { op: 'flush', delay: 0 }, 13, request({ opcode: Opcode.FLUSH, opaque: 13 })],
    ['flush later: delay extras', { op: 'flush', delay: 30 }, 14, request({ opcode: Opcode.FLUSH, extras: uint32(30), opaque: 14 })],
    ['version', { op: 'version' }, 15, request({ opcode: Opcode.VERSION, opaque: 15 })],
    ['noop', { op: 'noop' }, 16, request({ opcode: Opcode.NOOP, opaque: 16 })],
    ['stats', { op: 'stats' }, 17, request({ opcode: Opcode.STAT, opaque: 17 })],
    ['stats of a group: the group is the key', { op: 'stats', group: 'settings' }, 18, request({ opcode: Opcode.STAT, key: 'settings', opaque: 18 })],
    [
      'auth: mechanism as key, data as value',
      { op: 'auth', mechanism: 'PLAIN', data: bytes('\0user\0pass') },
      19,
      request({ opcode: Opcode.SASL_AUTH, key: 'PLAIN', value: '\0user\0pass', opaque: 19 }),
    ],
  ];
  for (const [name, cmd, opaque, expected] of cases) {
    it(name, () => assert.deepStrictEqual(encoded(cmd, opaque).toString('hex'), expected.toString('hex')));
  }

  it('a multi-get: GETQ per key with opaques opaque-n .. opaque-1, then NOOP with opaque', () => {
    const cmd: Command = { op: 'get', keys: [bytes('a'), bytes('bb'), bytes('ccc')], withCas: false };
    const expected = Buffer.concat([
      request({ opcode: Opcode.GETQ, key: 'a', opaque: 7 }),
      request({ opcode: Opcode.GETQ, key: 'bb', opaque: 8 }),
      request({ opcode: Opcode.GETQ, key: 'ccc', opaque: 9 }),
      request({ opcode: Opcode.NOOP, opaque: 10 }),
    ]);
    assert.deepStrictEqual(encoded(cmd, 10).toString('hex'), expected.toString('hex'));
  });

  it('a multi-get across the uint32 wrap', () => {
    const cmd: Command = { op: 'get', keys: [bytes('a'), bytes('b'), bytes('c')], withCas: false };
    const expected = Buffer.concat([
      request({ opcode: Opcode.GETQ, key: 'a', opaque: 0xffff_fffe }),
      request({ opcode: Opcode.GETQ, key: 'b', opaque: 0xffff_ffff }),
      request({ opcode: Opcode.GETQ, key: 'c', opaque: 0 }),
      request({ opcode: Opcode.NOOP, opaque: 1 }),
    ]);
    assert.deepStrictEqual(encoded(cmd, 1).toString('hex'), expected.toString('hex'));
    const atZero = Buffer.concat([
      request({ opcode: Opcode.GETQ, key: 'a', opaque: 0xffff_fffe }),
      request({ opcode: Opcode.GETQ, key: 'b', opaque: 0xffff_ffff }),
      request({ opcode: Opcode.NOOP, opaque: 0 }),
    ]);
    assert.deepStrictEqual(encoded({ op: 'get', keys: [bytes('a'), bytes('b')], withCas: true }, 0).toString('hex'), atZero.toString('hex'));
  });

  it('a large value goes out by reference after its header, extras and key', () => {
    const data = Buffer.alloc(16 * 1024, 0x7a);
    const w = new ByteWriter();
    encodeBinary({ op: 'store', mode: 'set', key, value: data, flags: 0xdead_beef, ttl: 3600 }, 3, w);
    const chunks = w.take();
    assert.equal(chunks.length, 2);
    assert.deepStrictEqual(chunks[0], request({ opcode: Opcode.SET, extras: setExtras, key, opaque: 3, bodyLength: 8 + 3 + data.length }));
    assert.ok(chunks[1] === data);
  });

  it('opaqueSpan: a multi-get uses one opaque per key plus its NOOP, anything else one', () => {
    const keys = (n: number): Command => ({ op: 'get', keys: Array.from({ length: n }, (_, i) => bytes(`k${i}`)), withCas: false });
    assert.equal(opaqueSpan(keys(1)), 1);
    assert.equal(opaqueSpan(keys(2)), 3);
    assert.equal(opaqueSpan(keys(3)), 4);
    assert.equal(opaqueSpan(keys(100)), 101);
    assert.equal(opaqueSpan(store('set')), 1);
    assert.equal(opaqueSpan({ op: 'stats' }), 1);
    assert.equal(opaqueSpan({ op: 'noop' }), 1);
  });
});

describe('statusRc: the text protocol code for each binary status', () => {
  const k = bytes('k');
  const store = (mode: 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas'): Command => ({
    op: 'store',
    mode,
    key: k,
    value: k,
    flags: 0,
    ttl: 0,
    ...(mode === 'cas' ? { cas: 1n } : {}),
  });
  const get: Command = { op: 'get', keys: [k], withCas: false };
  const incr: Command = { op: 'incr', key: k, delta: 1n };
  const del: Command = { op: 'delete', key: k };
  const touch: Command = { op: 'touch', key: k, ttl: 0 };
  const auth: Command = { op: 'auth', mechanism: 'PLAIN', data: k };

  const cases: Array<[string, Command, number, number]> = [
    ['set + NO_ERROR', store('set'), Status.NO_ERROR, 0],
    ['get + NO_ERROR', get, Status.NO_ERROR, 0],
    ['add + KEY_EXISTS', store('add'), Status.KEY_EXISTS, 14],
    ['cas + KEY_EXISTS', store('cas'), Status.KEY_EXISTS, 12],
    ['set + KEY_EXISTS', store('set'), Status.KEY_EXISTS, 12],
    ['replace + KEY_NOT_FOUND', store('replace'), Status.KEY_NOT_FOUND, 14],
    ['append + KEY_NOT_FOUND', store('append'), Status.KEY_NOT_FOUND, 14],
    ['cas + KEY_NOT_FOUND', store('cas'), Status.KEY_NOT_FOUND, 16],
    ['delete + KEY_NOT_FOUND', del, Status.KEY_NOT_FOUND, 16],
    ['incr + KEY_NOT_FOUND', incr, Status.KEY_NOT_FOUND, 16],
    ['touch + KEY_NOT_FOUND', touch, Status.KEY_NOT_FOUND, 16],
    ['get + KEY_NOT_FOUND', get, Status.KEY_NOT_FOUND, 16],
    ['append + ITEM_NOT_STORED', store('append'), Status.ITEM_NOT_STORED, 14],
    ['prepend + ITEM_NOT_STORED', store('prepend'), Status.ITEM_NOT_STORED, 14],
    ['incr + NON_NUMERIC', incr, Status.NON_NUMERIC, 9],
    ['set + VALUE_TOO_LARGE', store('set'), Status.VALUE_TOO_LARGE, 37],
    ['set + INVALID_ARGUMENTS', store('set'), Status.INVALID_ARGUMENTS, 38],
    ['auth + AUTH_ERROR', auth, Status.AUTH_ERROR, 41],
    ['auth + AUTH_CONTINUE', auth, Status.AUTH_CONTINUE, 42],
    ['get + UNKNOWN_COMMAND', get, Status.UNKNOWN_COMMAND, 28],
    ['touch + NOT_SUPPORTED', touch, Status.NOT_SUPPORTED, 28],
    ['set + OUT_OF_MEMORY', store('set'), Status.OUT_OF_MEMORY, 48],
    ['set + INTERNAL_ERROR', store('set'), Status.INTERNAL_ERROR, 10],
    ['get + BUSY', get, Status.BUSY, 10],
    ['get + TEMPORARY_FAILURE', get, Status.TEMPORARY_FAILURE, 10],
    ['get + an unknown status', get, 0x00ff, 10],
  ];
  for (const [name, cmd, status, rc] of cases) {
    it(`${name} → ${rc}`, () => assert.equal(statusRc(cmd, status), rc));
  }
});

/**
 * Decodes `transcript` and folds its frames into a fresh Outcome for `cmd` sent with `opaque`:
 * the command must be complete exactly at the last frame.
 */
function replyTo(cmd: Command, opaque: number, specs: PacketSpec[]): Outcome {
  const frames = decode(Buffer.concat(specs.map(response)));
  const out: Outcome = { rc: Rc.SUCCESS };
  frames.forEach((f, i) => {
    const done = acceptBinary(cmd, opaque, out, f);
    assert.equal(done, i === frames.length - 1, `response ${i} (opcode ${f.opcode}) ${done ? 'completed' : 'did not complete'} ${cmd.op}`);
  });
  return out;
}

function assertDesync(cmd: Command, opaque: number, specs: PacketSpec[]): void {
  assert.throws(
    () => replyTo(cmd, opaque, specs),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
      assert.equal(err.rc, Rc.UNKNOWN_READ_FAILURE);
      return true;
    },
  );
}

describe('acceptBinary: multi-get assembly', () => {
  const keys = ['a', 'b', 'c', 'd'].map(bytes);
  const multi: Command = { op: 'get', keys, withCas: true };
  const hit = (opaque: number, flags: number, value: string, cas: bigint): PacketSpec => ({
    opcode: Opcode.GETQ,
    opaque,
    cas,
    extras: uint32(flags),
    value,
  });

  it('values by opaque slot, misses absent, the NOOP completes', () => {
    const out = replyTo(multi, 100, [hit(97, 1, 'B', 11n), hit(99, 0xffff_ffff, 'D', 12n), { opcode: Opcode.NOOP, opaque: 100 }]);
    assert.equal(out.rc, 0);
    assert.deepStrictEqual(Array.from(out.items ?? []), [
      undefined,
      { value: bytes('B'), flags: 1, cas: 11n },
      undefined,
      { value: bytes('D'), flags: 0xffff_ffff, cas: 12n },
    ]);
  });

  it('slots come from the opaque, not from arrival order', () => {
    const out = replyTo(multi, 100, [hit(99, 4, 'D', 2n), hit(96, 3, 'A', 1n), { opcode: Opcode.NOOP, opaque: 100 }]);
    assert.deepStrictEqual(Array.from(out.items ?? []), [
      { value: bytes('A'), flags: 3, cas: 1n },
      undefined,
      undefined,
      { value: bytes('D'), flags: 4, cas: 2n },
    ]);
  });

  it('all misses: just the NOOP, no items', () => {
    const out = replyTo(multi, 100, [{ opcode: Opcode.NOOP, opaque: 100 }]);
    assert.equal(out.rc, 0);
    assert.equal(out.items, undefined);
  });

  it('across the uint32 wrap (opaque 1, three keys)', () => {
    const cmd: Command = { op: 'get', keys: keys.slice(0, 3), withCas: false };
    const out = replyTo(cmd, 1, [hit(0xffff_fffe, 5, 'A', 1n), hit(0, 6, 'C', 3n), { opcode: Opcode.NOOP, opaque: 1 }]);
    assert.deepStrictEqual(Array.from(out.items ?? []), [
      { value: bytes('A'), flags: 5, cas: 1n },
      undefined,
      { value: bytes('C'), flags: 6, cas: 3n },
    ]);
  });

  it('a foreign opaque throws', () => {
    assertDesync(multi, 100, [hit(95, 0, 'x', 1n)]);
    assertDesync(multi, 100, [hit(101, 0, 'x', 1n)]);
    assertDesync(multi, 100, [hit(7, 0, 'x', 1n)]);
  });

  it('a GET (not GETQ) answer in a key slot throws', () => {
    assertDesync(multi, 100, [{ ...hit(97, 0, 'x', 1n), opcode: Opcode.GET }]);
  });
});

describe('acceptBinary: single commands', () => {
  const k = bytes('k');
  const get: Command = { op: 'get', keys: [k], withCas: false };

  it('get hit: one item with flags from the extras and the CAS', () => {
    const out = replyTo(get, 2, [GET_HIT]);
    assert.equal(out.rc, 0);
    assert.deepStrictEqual(Array.from(out.items ?? []), [{ value: bytes('hi'), flags: 0xdead_beef, cas: 9n }]);
  });

  it('get hit without extras: flags 0', () => {
    const out = replyTo(get, 2, [{ opcode: Opcode.GET, opaque: 2, value: 'v' }]);
    assert.deepStrictEqual(Array.from(out.items ?? []), [{ value: bytes('v'), flags: 0, cas: 0n }]);
  });

  it('get miss: rc 0 and no item', () => {
    const out = replyTo(get, 3, [GET_MISS]);
    assert.equal(out.rc, 0);
    assert.equal(out.items, undefined);
  });

  it('a response with another opaque throws', () => {
    assertDesync(get, 4, [GET_HIT]);
    assertDesync({ op: 'version' }, 15, [VERSION]);
  });

  it('incr: the 8-byte value as an exact bigint (2^64-1)', () => {
    const out = replyTo({ op: 'incr', key: k, delta: 1n }, 8, [INCR_MAX]);
    assert.equal(out.rc, 0);
    assert.equal(out.number, 0xffff_ffff_ffff_ffffn);
  });

  it('decr: 0x0102030405060708', () => {
    const spec: PacketSpec = { opcode: Opcode.DECREMENT, opaque: 1, value: hex('0102030405060708') };
    assert.equal(replyTo({ op: 'decr', key: k, delta: 1n }, 1, [spec]).number, 0x0102_0304_0506_0708n);
  });

  it('incr whose value is not 8 bytes is a protocol error', () => {
    const spec: PacketSpec = { opcode: Opcode.INCREMENT, opaque: 1, value: '42' };
    assert.throws(
      () => replyTo({ op: 'incr', key: k, delta: 1n }, 1, [spec]),
      (err: unknown) => err instanceof ProtocolError && err.rc === Rc.PROTOCOL_ERROR,
    );
  });

  it('incr on a non-numeric value: CLIENT_ERROR with the server text', () => {
    const out = replyTo({ op: 'incr', key: k, delta: 1n }, 9, [INCR_NON_NUMERIC]);
    assert.equal(out.rc, 9);
    assert.equal(out.text, 'Non-numeric server-side value for incr or decr');
    assert.equal(out.number, undefined);
  });

  it('store: the new CAS as number', () => {
    const out = replyTo({ op: 'store', mode: 'set', key: k, value: k, flags: 0, ttl: 0 }, 1, [SET_OK]);
    assert.equal(out.rc, 0);
    assert.equal(out.number, 9n);
  });

  it('add on an existing key: NOTSTORED with the server text', () => {
    const out = replyTo({ op: 'store', mode: 'add', key: k, value: k, flags: 0, ttl: 0 }, 10, [ADD_EXISTS]);
    assert.equal(out.rc, 14);
    assert.equal(out.text, 'Data exists for key.');
  });

  it('append to a missing key: NOTSTORED', () => {
    assert.equal(replyTo({ op: 'store', mode: 'append', key: k, value: k, flags: 0, ttl: 0 }, 13, [APPEND_NOT_STORED]).rc, 14);
  });

  it('delete, touch, flush, noop: rc 0 / NOTFOUND', () => {
    assert.equal(replyTo({ op: 'delete', key: k }, 1, [{ opcode: Opcode.DELETE, opaque: 1 }]).rc, 0);
    const missing: PacketSpec = { opcode: Opcode.DELETE, status: Status.KEY_NOT_FOUND, opaque: 2, value: 'Not found' };
    assert.equal(replyTo({ op: 'delete', key: k }, 2, [missing]).rc, 16);
    assert.equal(replyTo({ op: 'touch', key: k, ttl: 1 }, 3, [{ opcode: Opcode.TOUCH, opaque: 3 }]).rc, 0);
    assert.equal(replyTo({ op: 'flush', delay: 0 }, 4, [{ opcode: Opcode.FLUSH, opaque: 4 }]).rc, 0);
    assert.equal(replyTo({ op: 'noop' }, 5, [{ opcode: Opcode.NOOP, opaque: 5 }]).rc, 0);
  });

  it('auth refused: AUTH_FAILURE', () => {
    const spec: PacketSpec = { opcode: Opcode.SASL_AUTH, status: Status.AUTH_ERROR, opaque: 6, value: 'Auth failure' };
    assert.equal(replyTo({ op: 'auth', mechanism: 'PLAIN', data: k }, 6, [spec]).rc, 41);
  });

  it('version text', () => {
    const out = replyTo({ op: 'version' }, 14, [VERSION]);
    assert.equal(out.rc, 0);
    assert.equal(out.text, '1.6.18');
  });

  it('stats: one entry per response until the empty key', () => {
    const out = replyTo({ op: 'stats', group: 'settings' }, 15, [STAT_MAXBYTES, STAT_VERSION, STAT_END]);
    assert.equal(out.rc, 0);
    assert.deepStrictEqual(
      out.stats,
      new Map([
        ['maxbytes', '8388608'],
        ['version', '1.6.18'],
      ]),
    );
  });
});

describe('storeMany: a run of SETQs closed by NOOP', () => {
  const cmd: Command = {
    op: 'storeMany',
    mode: 'set',
    keys: [bytes('a'), bytes('bb'), bytes('ccc')],
    values: [bytes('x'), bytes(''), bytes('zz')],
    flags: 0xdeadbeef,
    ttl: 60,
  };
  const extras = Buffer.concat([uint32(0xdeadbeef), uint32(60)]);

  it('writes SETQ per entry (flags, TTL extras) with opaques opaque-n .. opaque-1, then NOOP with opaque', () => {
    const w = new ByteWriter(16);
    encodeBinary(cmd, 10, w);
    const expected = Buffer.concat([
      request({ opcode: Opcode.SETQ, key: 'a', value: 'x', extras, opaque: 7 }),
      request({ opcode: Opcode.SETQ, key: 'bb', extras, opaque: 8 }),
      request({ opcode: Opcode.SETQ, key: 'ccc', value: 'zz', extras, opaque: 9 }),
      request({ opcode: Opcode.NOOP, opaque: 10 }),
    ]);
    assert.equal(Buffer.concat(w.take()).toString('hex'), expected.toString('hex'));
    assert.equal(Opcode.SETQ, 0x11);
    assert.equal(opaqueSpan(cmd), 4);
  });

  it('opaques wrap at 2^32', () => {
    const w = new ByteWriter(16);
    encodeBinary(cmd, 1, w);
    const opaques: number[] = [];
    const all = Buffer.concat(w.take());
    for (let at = 0; at < all.length; at += 24 + all.readUInt32BE(at + 8)) opaques.push(all.readUInt32BE(at + 12));
    assert.deepStrictEqual(opaques, [0xfffffffe, 0xffffffff, 0, 1]);
  });

  it('all stored: the NOOP alone completes it', () => {
    assert.deepStrictEqual(replyTo(cmd, 10, [{ opcode: Opcode.NOOP, opaque: 10 }]), { rc: Rc.SUCCESS });
  });

  it('each failure lands in its entry by opaque, with the text protocol code', () => {
    const out = replyTo(cmd, 10, [
      { opcode: Opcode.SETQ, opaque: 8, status: Status.VALUE_TOO_LARGE, value: 'Too large.' },
      { opcode: Opcode.SETQ, opaque: 9, status: Status.OUT_OF_MEMORY, value: 'Out of memory' },
      { opcode: Opcode.SETQ, opaque: 7, status: Status.NO_ERROR },
      { opcode: Opcode.NOOP, opaque: 10 },
    ]);
    assert.equal(out.rc, Rc.SUCCESS);
    assert.deepStrictEqual([...out.rcs!], [undefined, Rc.E2BIG, Rc.SERVER_MEMORY_ALLOCATION_FAILURE]);
    assert.equal(statusRc(cmd, Status.KEY_NOT_FOUND), Rc.NOTSTORED);
  });

  it('a response outside the run, or not a SETQ, or a NOOP-opaque non-NOOP, is a desync', () => {
    assertDesync(cmd, 10, [{ opcode: Opcode.SETQ, opaque: 6, status: Status.VALUE_TOO_LARGE }]);
    assertDesync(cmd, 10, [{ opcode: Opcode.SETQ, opaque: 11, status: Status.VALUE_TOO_LARGE }]);
    assertDesync(cmd, 10, [{ opcode: Opcode.SET, opaque: 8, status: Status.VALUE_TOO_LARGE }]);
    assertDesync(cmd, 10, [{ opcode: Opcode.GETQ, opaque: 8 }]);
    assertDesync(cmd, 10, [{ opcode: Opcode.SETQ, opaque: 10 }]);
  });
});
