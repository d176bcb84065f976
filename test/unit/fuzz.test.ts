// Property-based tests (fast-check; RELIABILITY.md, "Property-based tests") of everything that reads bytes from outside:
// the three decoders never throw anything but their protocol error and do not care where chunk
// boundaries fall; the config parser either gives settings or a ConfigError naming a real line;
// and a value quoted by our AGI encoder comes back byte for byte through Asterisk's own parser
// (the faithful fake), whatever its bytes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';

import { AgiDecoder, AgiProtocolError, encodeCommand } from '../../src/agi/codec.js';
import { parseConfigText } from '../support/config-text.js';
import { ConfigError, settingsFromConfig } from '../../src/config/settings.js';
import { BinaryDecoder } from '../../src/memcache/protocol/binary.js';
import { ProtocolError, TextDecoder } from '../../src/memcache/protocol/text.js';
import { MemcachedError } from '../../src/util/errors.js';
import { parseAgiCommandLine } from '../support/fake-asterisk.js';
import { recordRow } from '../support/agi-load.js';

const RUNS = 300;

interface Decoder {
  feed(chunk: Buffer): void;
  next(): unknown;
}

/** Frames (as JSON) and the error kind, feeding `bytes` cut at `cuts`. */
function decode(make: () => Decoder, bytes: Buffer, cuts: number[]): { frames: string[]; error: string | null } {
  const d = make();
  const frames: string[] = [];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  try {
    for (const to of [...points, bytes.length]) {
      d.feed(bytes.subarray(from, to));
      from = to;
      for (let f = d.next(); f !== undefined && f !== null; f = d.next()) frames.push(JSON.stringify(f, (_, v) => (typeof v === 'bigint' ? v.toString() : v)));
    }
  } catch (err) {
    return { frames, error: (err as Error).constructor.name };
  }
  return { frames, error: null };
}

/** Bytes that look like protocol traffic often enough to reach deep states, and plain noise. */
function protocolish(words: string[]): fc.Arbitrary<Buffer> {
  const piece = fc.oneof(
    fc.constantFrom(...words),
    fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a).toString('latin1')),
    fc.nat(300).map(String),
  );
  return fc.array(piece, { maxLength: 30 }).map((parts) => Buffer.from(parts.join(''), 'latin1'));
}

const decoders: Array<{ name: string; make: () => Decoder; errors: Array<new (...a: never[]) => Error>; input: fc.Arbitrary<Buffer> }> = [
  {
    name: 'memcached text replies',
    make: () => new TextDecoder({ maxLineBytes: 256, maxValueBytes: 4096 }),
    errors: [ProtocolError, MemcachedError],
    input: protocolish(['VALUE k 0 ', 'VALUE k 0 3 ', '\r\n', 'END\r\n', 'STORED\r\n', 'STAT pid 1\r\n', 'ERROR\r\n', 'CLIENT_ERROR x\r\n', 'SERVER_ERROR y\r\n', 'abc', ' ', 'VERSION 1\r\n', 'NOT_FOUND\r\n']),
  },
  {
    name: 'memcached binary replies',
    make: () => new BinaryDecoder({ maxBodyBytes: 4096 }),
    errors: [ProtocolError, MemcachedError],
    input: fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.array(fc.tuple(fc.nat(255), fc.nat(40), fc.nat(8), fc.nat(60)), { maxLength: 6 }).map((frames) =>
        Buffer.concat(frames.map(([op, key, extras, body]) => {
          const h = Buffer.alloc(24);
          h[0] = 0x81;
          h[1] = op;
          h.writeUInt16BE(key, 2);
          h[4] = extras;
          h.writeUInt32BE(body, 8);
          return Buffer.concat([h, Buffer.alloc(Math.min(body, 60))]);
        })),
      ),
    ),
  },
  {
    name: 'AGI from Asterisk',
    make: () => new AgiDecoder({ maxLineBytes: 256, maxEnvLines: 40, maxBlockLines: 8 }),
    errors: [AgiProtocolError],
    input: protocolish(['agi_network: yes\n', 'agi_arg_1: ', 'agi_arg_2: ', '\n', 'HANGUP\n', '200 result=1 (', ')\n', '200 result=0\n', '520-', '520 End\n', '510 x\n', '100 result=0 Trying...\n']),
  },
];

describe('decoders on arbitrary bytes', () => {
  for (const { name, make, errors, input } of decoders) {
    it(`${name}: only protocol errors, and the same frames however the bytes are cut`, () => {
      fc.assert(
        fc.property(input, fc.array(fc.nat(400), { maxLength: 6 }), (bytes, cuts) => {
          const whole = decode(make, bytes, []);
          const cut = decode(make, bytes, cuts);
          const byteByByte = decode(make, bytes, Array.from({ length: bytes.length }, (_, i) => i));
          if (whole.error !== null) assert.ok(errors.some((E) => E.name === whole.error), `unexpected ${whole.error}`);
          assert.deepEqual(cut, whole);
          assert.deepEqual(byteByByte, whole);
        }),
        { numRuns: RUNS },
      );
      recordRow({ area: 'fuzz', case: `${name} decoder`, done: `${RUNS} random inputs (protocol-like and noise), decoded whole, cut at random points and byte by byte`, measured: 'only protocol errors; same frames however cut', outcome: 'holds' });
    });
  }
});

describe('memcached.conf on arbitrary text', () => {
  const line = fc.oneof(
    fc.constantFrom('[general]', '[agi]', '[x](!)', '[y](x)', 'server=127.0.0.1:11211', 'server=/tmp/s', 'ttl=5', 'ttl=x', 'hash=md5', 'port=4573',
      'permit=10.0.0.0/8', 'deny=bad', 'keyprefix=a b', 'binary_proto=maybe', '#include nothing.conf', ';-- c', '--;', '; c', 'a=b\\;c', '', ' = '),
    fc.string({ maxLength: 30 }),
  );
  it('gives settings, or a ConfigError naming a line of the file', () => {
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
        const text = lines.join('\n');
        try {
          settingsFromConfig(parseConfigText(text, '/fuzz/memcached.conf'));
        } catch (err) {
          assert.ok(err instanceof ConfigError, `unexpected ${String(err)}`);
          assert.ok(err.line >= 0 && err.line <= lines.length + 1, `line ${err.line} of ${lines.length}`);
          assert.match(err.message, /memcached\.conf|nothing\.conf/);
        }
      }),
      { numRuns: RUNS },
    );
    recordRow({ area: 'fuzz', case: 'memcached.conf parser', done: `${RUNS} random files of known and random lines`, measured: 'settings, or a ConfigError naming file and a line of the file', outcome: 'holds' });
  });
});

describe('AGI quoting against Asterisk’s parser', () => {
  it('SET VARIABLE X "<quoted>" gives back every byte of any value without LF or NUL', () => {
    const value = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a.filter((b) => b !== 0x0a && b !== 0x00)));
    fc.assert(
      fc.property(value, (v) => {
        const line = encodeCommand('SET', 'VARIABLE', 'X', v);
        const words = parseAgiCommandLine(line.subarray(0, line.length - 1));
        assert.equal(words.length, 4);
        assert.deepEqual(words[3], v);
      }),
      { numRuns: RUNS * 3 },
    );
  });
});
