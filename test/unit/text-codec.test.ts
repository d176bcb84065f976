// The text protocol codec without sockets: TextDecoder on raw reply transcripts (the replies as
// memcached 1.6.18 sends them, doc/protocol.txt), decoded whole, byte by byte and split in two
// at every position; acceptText folding frames into Outcomes; encodeText's exact request bytes.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Command, Outcome } from '../../src/memcache/protocol/command.js';
import { ProtocolError, TextDecoder, acceptText, encodeText, refuseText } from '../../src/memcache/protocol/text.js';
import type { TextDecoderOptions, TextFrame } from '../../src/memcache/protocol/text.js';
import { ByteWriter } from '../../src/util/byte-writer.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import { decodeAllWays } from '../support/decode-ways.js';

const wire = (text: string): Buffer => Buffer.from(text, 'latin1');

function decode(bytes: Buffer, options: TextDecoderOptions = {}): TextFrame[] {
  return decodeAllWays(() => new TextDecoder(options), bytes);
}

function value(key: string, flags: number, data: Buffer | string, cas = 0n): TextFrame {
  return { kind: 'value', key: wire(key), flags, data: typeof data === 'string' ? wire(data) : data, cas };
}

/** Asserts that decoding throws a ProtocolError with rc PROTOCOL_ERROR (every way alike). */
function assertMalformed(bytes: Buffer, options: TextDecoderOptions = {}, message?: RegExp): void {
  assert.throws(
    () => decode(bytes, options),
    (err: unknown) => {
      assert.ok(err instanceof ProtocolError, `expected a ProtocolError, got ${String(err)}`);
      assert.equal(err.rc, Rc.PROTOCOL_ERROR);
      if (message !== undefined) assert.match(err.message, message);
      return true;
    },
  );
}

describe('TextDecoder: every reply kind, decoded whole, byte by byte and split at every position', () => {
  it('VALUE without CAS, then END', () => {
    assert.deepStrictEqual(decode(wire('VALUE s 5 2\r\nab\r\nEND\r\n')), [value('s', 5, 'ab'), { kind: 'end' }]);
  });

  it('VALUE with CAS (gets), data padded by a shrunken counter', () => {
    assert.deepStrictEqual(decode(wire('VALUE n 0 3 3\r\n4  \r\nEND\r\n')), [value('n', 0, '4  ', 3n), { kind: 'end' }]);
  });

  it('several VALUEs (a repeated key included) closed by one END', () => {
    const transcript = 'VALUE n 0 3 3\r\n4  \r\nVALUE s 5 2 4\r\nab\r\nVALUE s 5 2 4\r\nab\r\nEND\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      value('n', 0, '4  ', 3n),
      value('s', 5, 'ab', 4n),
      value('s', 5, 'ab', 4n),
      { kind: 'end' },
    ]);
  });

  it('an empty value', () => {
    assert.deepStrictEqual(decode(wire('VALUE e 7 0\r\n\r\nEND\r\n')), [value('e', 7, ''), { kind: 'end' }]);
  });

  it('binary value bytes, with CRLF, a bare LF, "END\\r\\n" and a trailing CR inside the data', () => {
    const data = Buffer.from([0x00, 0x0d, 0x0a, 0xff, ...wire('END\r\nVALUE x 0 1\r\n'), 0x0a, 0x80, 0x0d]);
    const transcript = Buffer.concat([wire(`VALUE bin 1 ${data.length} 42\r\n`), data, wire('\r\nEND\r\n')]);
    assert.deepStrictEqual(decode(transcript), [value('bin', 1, data, 42n), { kind: 'end' }]);
  });

  it('the largest flags and CAS a VALUE line can carry', () => {
    assert.deepStrictEqual(decode(wire('VALUE k 4294967295 1 18446744073709551615\r\nx\r\n')), [
      value('k', 0xffff_ffff, 'x', 0xffff_ffff_ffff_ffffn),
    ]);
  });

  it('a key with bytes above 0x7f stays bytes', () => {
    const key = Buffer.from('ключ', 'utf8');
    const transcript = Buffer.concat([wire('VALUE '), key, wire(' 0 1\r\nv\r\n')]);
    const [frame] = decode(transcript);
    assert.ok(frame !== undefined && frame.kind === 'value');
    assert.deepStrictEqual(frame.key, key);
  });

  it('END alone (a miss)', () => {
    assert.deepStrictEqual(decode(wire('END\r\n')), [{ kind: 'end' }]);
  });

  it('the one-word replies', () => {
    const transcript = 'STORED\r\nNOT_STORED\r\nEXISTS\r\nNOT_FOUND\r\nDELETED\r\nTOUCHED\r\nOK\r\nERROR\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      { kind: 'stored' },
      { kind: 'not_stored' },
      { kind: 'exists' },
      { kind: 'not_found' },
      { kind: 'deleted' },
      { kind: 'touched' },
      { kind: 'ok' },
      { kind: 'error' },
    ]);
  });

  it('CLIENT_ERROR and SERVER_ERROR keep their message', () => {
    const transcript =
      'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n' +
      'SERVER_ERROR object too large for cache\r\n' +
      'SERVER_ERROR out of memory storing object\r\n' +
      'SERVER_ERROR\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      { kind: 'client_error', text: 'cannot increment or decrement non-numeric value' },
      { kind: 'server_error', text: 'object too large for cache' },
      { kind: 'server_error', text: 'out of memory storing object' },
      { kind: 'server_error', text: '' },
    ]);
  });

  it('VERSION', () => {
    assert.deepStrictEqual(decode(wire('VERSION 1.6.18\r\n')), [{ kind: 'version', text: '1.6.18' }]);
  });

  it('STAT lines (values with spaces, an empty value) then END', () => {
    const transcript = 'STAT pid 6676\r\nSTAT version 1.6.18\r\nSTAT libevent 2.1.12-stable x\r\nSTAT empty\r\nEND\r\n';
    assert.deepStrictEqual(decode(wire(transcript)), [
      { kind: 'stat', name: 'pid', value: '6676' },
      { kind: 'stat', name: 'version', value: '1.6.18' },
      { kind: 'stat', name: 'libevent', value: '2.1.12-stable x' },
      { kind: 'stat', name: 'empty', value: '' },
      { kind: 'end' },
    ]);
  });

  it('counter replies: 0, 2^64-1 and a space-padded number', () => {
    assert.deepStrictEqual(decode(wire('0\r\n18446744073709551615\r\n5  \r\n')), [
      { kind: 'number', value: 0n },
      { kind: 'number', value: 0xffff_ffff_ffff_ffffn },
      { kind: 'number', value: 5n },
    ]);
  });

  it('a line of exactly maxLineBytes (CR included) is accepted', () => {
    assert.deepStrictEqual(decode(wire('STORED\r\n'), { maxLineBytes: 7 }), [{ kind: 'stored' }]);
  });

  it('maxLineBytes pending bytes without a newline just wait for more', () => {
    assert.deepStrictEqual(decode(wire('STOR'), { maxLineBytes: 4 }), []);
  });

  it('a value of exactly maxValueBytes is accepted', () => {
    assert.deepStrictEqual(decode(wire('VALUE k 0 4\r\nabcd\r\n'), { maxValueBytes: 4 }), [value('k', 0, 'abcd')]);
  });

  it('an incomplete value yields nothing yet', () => {
    assert.deepStrictEqual(decode(wire('STORED\r\nVALUE k 0 4\r\nabcd\r')), [{ kind: 'stored' }]);
  });

  it('a value stays intact while later replies are fed and decoded (it is a view the decoder never writes into)', () => {
    const decoder = new TextDecoder();
    const expected = Array.from({ length: 40 }, (_, i) => `value-${i}-${'v'.repeat(i)}`);
    const bytes = wire(expected.map((v) => `VALUE k 0 ${v.length}\r\n${v}\r\n`).join(''));
    const values: Buffer[] = [];
    // Odd-sized chunks: replies straddle them, so they sit in the decoder's own buffer too.
    for (let at = 0; at < bytes.length; at += 37) {
      decoder.feed(Buffer.from(bytes.subarray(at, at + 37)));
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) if (f.kind === 'value') values.push(f.data);
    }
    assert.deepStrictEqual(values.map((v) => v.toString('latin1')), expected);
  });
});

describe('TextDecoder: malformed replies throw ProtocolError', () => {
  it('a garbage line', () => {
    assertMalformed(wire('HELLO world\r\n'), {}, /unexpected reply line/);
    assertMalformed(wire('STORED\r\nstored\r\n'), {}, /unexpected reply line/);
    assertMalformed(wire('VALUE\r\n'), {}, /unexpected reply line/);
  });

  it('a line without CR', () => {
    assertMalformed(wire('STORED\n'), {}, /CRLF/);
    assertMalformed(wire('\n'), {}, /CRLF/);
    assertMalformed(wire('END\r\n5\n'), {}, /CRLF/);
  });

  it('a line over maxLineBytes without its newline', () => {
    assertMalformed(wire('STORE'), { maxLineBytes: 4 }, /longer than 4 bytes/);
    assertMalformed(wire('STORED\r\n'), { maxLineBytes: 6 }, /longer than 6 bytes/);
    assertMalformed(wire('END\r\nVALUE k 0 1 123'), { maxLineBytes: 8 }, /longer than 8 bytes/);
  });

  it('VALUE with bad flags', () => {
    assertMalformed(wire('VALUE k x 1\r\nv\r\n'), {}, /flags/);
    assertMalformed(wire('VALUE k -1 1\r\nv\r\n'), {}, /flags/);
    assertMalformed(wire('VALUE k 4294967296 1\r\nv\r\n'), {}, /flags/);
    assertMalformed(wire('VALUE k  1\r\nv\r\n'), {}, /flags/);
  });

  it('VALUE with a bad or missing length', () => {
    assertMalformed(wire('VALUE k 0 x\r\nv\r\n'), {}, /length/);
    assertMalformed(wire('VALUE k 0 -1\r\nv\r\n'), {}, /length/);
    assertMalformed(wire('VALUE k 0 \r\nv\r\n'), {}, /length/);
    assertMalformed(wire('VALUE k 0\r\nv\r\n'), {}, /malformed VALUE line/);
    assertMalformed(wire('VALUE k\r\nv\r\n'), {}, /malformed VALUE line/);
    assertMalformed(wire('VALUE  0 1\r\nv\r\n'), {}, /malformed VALUE line/);
  });

  it('VALUE with a bad CAS', () => {
    assertMalformed(wire('VALUE k 0 1 x\r\nv\r\n'), {}, /CAS/);
    assertMalformed(wire('VALUE k 0 1 \r\nv\r\n'), {}, /CAS/);
    assertMalformed(wire('VALUE k 0 1 1 2\r\nv\r\n'), {}, /CAS/);
    assertMalformed(wire('VALUE k 0 1 -5\r\nv\r\n'), {}, /CAS/);
    assertMalformed(wire('VALUE k 0 1 123456789012345678901\r\nv\r\n'), {}, /CAS/);
  });

  it(
    'VALUE with a CAS above 2^64-1',
    () => {
      assertMalformed(wire('VALUE k 0 1 18446744073709551616\r\nv\r\n'), {}, /CAS/);
    },
  );

  it('value data not followed by CRLF', () => {
    assertMalformed(wire('VALUE k 0 2\r\nabc\r\n'), {}, /not followed by CRLF/);
    assertMalformed(wire('VALUE k 0 2\r\nab\n\r'), {}, /not followed by CRLF/);
    assertMalformed(wire('VALUE k 0 2\r\nab\rX'), {}, /not followed by CRLF/);
  });

  it('VALUE announcing more than maxValueBytes, before its data arrives', () => {
    assertMalformed(wire('VALUE k 0 5\r\n'), { maxValueBytes: 4 }, /over the 4-byte limit/);
    assertMalformed(wire('VALUE k 0 9999999999\r\n'), {}, /over the 134217728-byte limit/);
  });

  it('a counter above 2^64-1 or with junk', () => {
    assertMalformed(wire('18446744073709551616\r\n'), {}, /above 2\^64-1/);
    assertMalformed(wire('99999999999999999999\r\n'), {}, /above 2\^64-1/);
    assertMalformed(wire('123456789012345678901\r\n'), {}, /bad counter/);
    assertMalformed(wire('12x\r\n'), {}, /bad counter/);
    assertMalformed(wire('1 2\r\n'), {}, /bad counter/);
  });
});

/**
 * Decodes `transcript` and folds its frames into a fresh Outcome for `cmd`: the command must be
 * complete exactly at the last frame.
 */
function replyTo(cmd: Command, transcript: string | Buffer): Outcome {
  const frames = decode(typeof transcript === 'string' ? wire(transcript) : transcript);
  const out: Outcome = { rc: Rc.SUCCESS };
  const search = { from: 0 };
  frames.forEach((frame, i) => {
    const done = acceptText(cmd, out, frame, search);
    assert.equal(done, i === frames.length - 1, `frame ${i} (${frame.kind}) ${done ? 'completed' : 'did not complete'} ${cmd.op}`);
  });
  return out;
}

const k = wire('k');
const set = (mode: 'set' | 'add' | 'replace' | 'append' | 'prepend' = 'set'): Command => ({
  op: 'store',
  mode,
  key: k,
  value: wire('v'),
  flags: 0,
  ttl: 0,
});
const cas: Command = { op: 'store', mode: 'cas', key: k, value: wire('v'), flags: 0, ttl: 0, cas: 7n };
const get = (keys: string[], withCas = false): Command => ({ op: 'get', keys: keys.map(wire), withCas });
const incr: Command = { op: 'incr', key: k, delta: 1n };
const decr: Command = { op: 'decr', key: k, delta: 1n };

describe('acceptText: the Outcome.rc of each reply', () => {
  const cases: Array<[string, Command, string, number]> = [
    ['set + STORED', set(), 'STORED\r\n', 0],
    ['set + NOT_STORED', set(), 'NOT_STORED\r\n', 14],
    ['add + NOT_STORED', set('add'), 'NOT_STORED\r\n', 14],
    ['replace + NOT_STORED', set('replace'), 'NOT_STORED\r\n', 14],
    ['append + NOT_STORED', set('append'), 'NOT_STORED\r\n', 14],
    ['prepend + STORED', set('prepend'), 'STORED\r\n', 0],
    ['cas + STORED', cas, 'STORED\r\n', 0],
    ['cas + EXISTS', cas, 'EXISTS\r\n', 12],
    ['cas + NOT_FOUND', cas, 'NOT_FOUND\r\n', 16],
    ['delete + DELETED', { op: 'delete', key: k }, 'DELETED\r\n', 0],
    ['delete + NOT_FOUND', { op: 'delete', key: k }, 'NOT_FOUND\r\n', 16],
    ['incr + NOT_FOUND', incr, 'NOT_FOUND\r\n', 16],
    ['decr + NOT_FOUND', decr, 'NOT_FOUND\r\n', 16],
    ['touch + TOUCHED', { op: 'touch', key: k, ttl: 1 }, 'TOUCHED\r\n', 0],
    ['touch + NOT_FOUND', { op: 'touch', key: k, ttl: 1 }, 'NOT_FOUND\r\n', 16],
    ['flush + OK', { op: 'flush', delay: 0 }, 'OK\r\n', 0],
    ['get + END', get(['k']), 'END\r\n', 0],
    ['set + SERVER_ERROR object too large', set(), 'SERVER_ERROR object too large for cache\r\n', 37],
    ['set + SERVER_ERROR out of memory', set(), 'SERVER_ERROR out of memory storing object\r\n', 48],
    ['set + another SERVER_ERROR', set(), 'SERVER_ERROR failed to allocate memory\r\n', 10],
    ['set + CLIENT_ERROR', set(), 'CLIENT_ERROR bad data chunk\r\n', 9],
    ['incr + CLIENT_ERROR', incr, 'CLIENT_ERROR cannot increment or decrement non-numeric value\r\n', 9],
    ['get + ERROR', get(['k']), 'ERROR\r\n', 11],
    ['version + ERROR', { op: 'version' }, 'ERROR\r\n', 11],
    ['stats + SERVER_ERROR', { op: 'stats', group: 'x' }, 'SERVER_ERROR nope\r\n', 10],
  ];
  for (const [name, cmd, transcript, rc] of cases) {
    it(`${name} → ${rc}`, () => {
      assert.equal(replyTo(cmd, transcript).rc, rc);
    });
  }

  it('the server text of ERROR replies is kept', () => {
    assert.equal(replyTo(set(), 'SERVER_ERROR object too large for cache\r\n').text, 'object too large for cache');
    assert.equal(replyTo(set(), 'CLIENT_ERROR bad data chunk\r\n').text, 'bad data chunk');
  });

  it('incr/decr numbers, 2^64-1 exact and a padded one', () => {
    const big = replyTo(incr, '18446744073709551615\r\n');
    assert.equal(big.rc, 0);
    assert.equal(big.number, 0xffff_ffff_ffff_ffffn);
    const padded = replyTo(decr, '9 \r\n');
    assert.equal(padded.rc, 0);
    assert.equal(padded.number, 9n);
  });

  it('version text', () => {
    const out = replyTo({ op: 'version' }, 'VERSION 1.6.18\r\n');
    assert.equal(out.rc, 0);
    assert.equal(out.text, '1.6.18');
  });

  it('stats until END', () => {
    const out = replyTo({ op: 'stats' }, 'STAT pid 6676\r\nSTAT version 1.6.18\r\nSTAT rusage_user 0.1 s\r\nEND\r\n');
    assert.equal(out.rc, 0);
    assert.deepStrictEqual(
      out.stats,
      new Map([
        ['pid', '6676'],
        ['version', '1.6.18'],
        ['rusage_user', '0.1 s'],
      ]),
    );
  });

  it('stats with no STAT line at all', () => {
    const out = replyTo({ op: 'stats', group: 'empty' }, 'END\r\n');
    assert.equal(out.rc, 0);
    assert.equal(out.stats, undefined);
  });
});

describe('acceptText: get slots', () => {
  it('a single hit', () => {
    const out = replyTo(get(['k']), 'VALUE k 3 2\r\nhi\r\nEND\r\n');
    assert.equal(out.rc, 0);
    assert.deepStrictEqual(Array.from(out.items ?? []), [{ value: wire('hi'), flags: 3, cas: 0n }]);
  });

  it('a single miss leaves no items', () => {
    const out = replyTo(get(['k']), 'END\r\n');
    assert.equal(out.rc, 0);
    assert.equal(out.items, undefined);
  });

  it('a multi-get skips misses: one slot per key, undefined where missing', () => {
    const out = replyTo(get(['a', 'b', 'c', 'd'], true), 'VALUE b 1 1 10\r\nB\r\nVALUE d 2 1 11\r\nD\r\nEND\r\n');
    assert.equal(out.rc, 0);
    assert.deepStrictEqual(Array.from(out.items ?? []), [
      undefined,
      { value: wire('B'), flags: 1, cas: 10n },
      undefined,
      { value: wire('D'), flags: 2, cas: 11n },
    ]);
  });

  it('duplicate keys fill their slots in request order', () => {
    const transcript = 'VALUE a 0 1\r\n1\r\nVALUE a 0 1\r\n2\r\nVALUE b 0 1\r\n3\r\nVALUE a 0 1\r\n4\r\nEND\r\n';
    const out = replyTo(get(['a', 'a', 'b', 'a']), transcript);
    assert.deepStrictEqual(Array.from(out.items ?? []), [
      { value: wire('1'), flags: 0, cas: 0n },
      { value: wire('2'), flags: 0, cas: 0n },
      { value: wire('3'), flags: 0, cas: 0n },
      { value: wire('4'), flags: 0, cas: 0n },
    ]);
  });
});

describe('acceptText: a frame that cannot answer the command throws (desync)', () => {
  function assertDesync(cmd: Command, transcript: string): void {
    assert.throws(
      () => replyTo(cmd, transcript),
      (err: unknown) => {
        assert.ok(err instanceof ProtocolError);
        assert.equal(err.rc, Rc.UNKNOWN_READ_FAILURE);
        return true;
      },
    );
  }

  const cases: Array<[string, Command, string]> = [
    ['store + DELETED', set(), 'DELETED\r\n'],
    ['store + END', set(), 'END\r\n'],
    ['store + number', set(), '5\r\n'],
    ['delete + STORED', { op: 'delete', key: k }, 'STORED\r\n'],
    ['delete + EXISTS', { op: 'delete', key: k }, 'EXISTS\r\n'],
    ['incr + STORED', incr, 'STORED\r\n'],
    ['touch + OK', { op: 'touch', key: k, ttl: 0 }, 'OK\r\n'],
    ['flush + END', { op: 'flush', delay: 0 }, 'END\r\n'],
    ['version + OK', { op: 'version' }, 'OK\r\n'],
    ['stats + VALUE', { op: 'stats' }, 'VALUE k 0 1\r\nv\r\n'],
    ['get + STORED', get(['k']), 'STORED\r\n'],
    ['get + STAT', get(['k']), 'STAT pid 1\r\n'],
    ['get + VALUE for a key not asked for', get(['a', 'b']), 'VALUE c 0 1\r\nv\r\n'],
    ['get + VALUEs out of request order', get(['a', 'b']), 'VALUE b 0 1\r\nv\r\nVALUE a 0 1\r\nv\r\n'],
    ['noop + OK', { op: 'noop' }, 'OK\r\n'],
  ];
  for (const [name, cmd, transcript] of cases) {
    it(name, () => assertDesync(cmd, transcript));
  }
});

describe('encodeText: exact request bytes', () => {
  function encoded(cmd: Command): string {
    const w = new ByteWriter();
    encodeText(cmd, w);
    return Buffer.concat(w.take()).toString('latin1');
  }

  const cases: Array<[Command, string]> = [
    [get(['foo']), 'get foo\r\n'],
    [get(['a', 'b', 'c']), 'get a b c\r\n'],
    [get(['a', 'b'], true), 'gets a b\r\n'],
    [{ op: 'store', mode: 'set', key: wire('k'), value: wire('hello'), flags: 5, ttl: 60 }, 'set k 5 60 5\r\nhello\r\n'],
    [{ op: 'store', mode: 'add', key: wire('k'), value: wire('v'), flags: 0, ttl: 0 }, 'add k 0 0 1\r\nv\r\n'],
    [{ op: 'store', mode: 'replace', key: wire('k'), value: wire('v'), flags: 1, ttl: 2 }, 'replace k 1 2 1\r\nv\r\n'],
    [{ op: 'store', mode: 'append', key: wire('k'), value: wire('xy'), flags: 0, ttl: 0 }, 'append k 0 0 2\r\nxy\r\n'],
    [{ op: 'store', mode: 'prepend', key: wire('k'), value: wire('xy'), flags: 0, ttl: 0 }, 'prepend k 0 0 2\r\nxy\r\n'],
    [
      { op: 'store', mode: 'cas', key: wire('k'), value: wire('v'), flags: 3, ttl: 9, cas: 18446744073709551615n },
      'cas k 3 9 1 18446744073709551615\r\nv\r\n',
    ],
    [{ op: 'store', mode: 'cas', key: wire('k'), value: wire('v'), flags: 0, ttl: 0 }, 'cas k 0 0 1 0\r\nv\r\n'],
    [{ op: 'store', mode: 'set', key: wire('k'), value: wire(''), flags: 0xffffffff, ttl: 0 }, 'set k 4294967295 0 0\r\n\r\n'],
    [{ op: 'store', mode: 'set', key: wire('k'), value: wire('a\r\nb'), flags: -1, ttl: 0 }, 'set k 4294967295 0 4\r\na\r\nb\r\n'],
    [{ op: 'delete', key: wire('k') }, 'delete k\r\n'],
    [{ op: 'incr', key: wire('k'), delta: 5n }, 'incr k 5\r\n'],
    [{ op: 'decr', key: wire('k'), delta: 18446744073709551615n }, 'decr k 18446744073709551615\r\n'],
    [{ op: 'touch', key: wire('k'), ttl: 100 }, 'touch k 100\r\n'],
    [{ op: 'flush', delay: 0 }, 'flush_all\r\n'],
    [{ op: 'flush', delay: 10 }, 'flush_all 10\r\n'],
    [{ op: 'version' }, 'version\r\n'],
    [{ op: 'stats' }, 'stats\r\n'],
    [{ op: 'stats', group: '' }, 'stats\r\n'],
    [{ op: 'stats', group: 'settings' }, 'stats settings\r\n'],
  ];
  for (const [cmd, expected] of cases) {
    it(JSON.stringify(expected), () => assert.equal(encoded(cmd), expected));
  }

  it('key and value bytes are written as they are', () => {
    const key = Buffer.from('ключ', 'utf8');
    const data = Buffer.from([0x00, 0xff, 0x0d, 0x0a]);
    const w = new ByteWriter();
    encodeText({ op: 'store', mode: 'set', key, value: data, flags: 0, ttl: 0 }, w);
    encodeText({ op: 'get', keys: [key, key], withCas: false }, w);
    const expected = Buffer.concat([wire('set '), key, wire(' 0 0 4\r\n'), data, wire('\r\nget '), key, wire(' '), key, wire('\r\n')]);
    assert.deepStrictEqual(Buffer.concat(w.take()), expected);
  });

  it('a large value goes out by reference between its header and trailer', () => {
    const data = Buffer.alloc(20_000, 0x61);
    const w = new ByteWriter();
    encodeText({ op: 'store', mode: 'set', key: wire('big'), value: data, flags: 0, ttl: 0 }, w);
    const chunks = w.take();
    assert.equal(chunks.length, 3);
    assert.deepStrictEqual(chunks[0], wire('set big 0 0 20000\r\n'));
    assert.ok(chunks[1] === data);
    assert.deepStrictEqual(chunks[2], wire('\r\n'));
  });

  function assertRefused(cmd: Command, rc: number): void {
    assert.equal(refuseText(cmd)?.rc, rc, 'refused before it is queued');
    const w = new ByteWriter();
    assert.throws(
      () => encodeText(cmd, w),
      (err: unknown) => err instanceof MemcachedError && err.rc === rc,
    );
    assert.deepStrictEqual(w.take(), [], 'nothing written');
  }

  it('incr/decr with an initial value needs the binary protocol (INVALID_ARGUMENTS)', () => {
    assertRefused({ op: 'incr', key: k, delta: 1n, initial: 0n }, Rc.INVALID_ARGUMENTS);
    assertRefused({ op: 'decr', key: k, delta: 1n, initial: 5n, ttl: 3 }, Rc.INVALID_ARGUMENTS);
  });

  it('everything else is carried', () => {
    for (const cmd of [get(['k']), set(), cas, incr, decr, { op: 'touch', key: k, ttl: 1 }, { op: 'flush', delay: 0 }, { op: 'version' }, { op: 'stats' }] as Command[]) {
      assert.equal(refuseText(cmd), null, cmd.op);
    }
  });

  it('a quiet run of sets is refused (NOT_SUPPORTED): noreply would hide its failures', () => {
    assertRefused({ op: 'storeMany', mode: 'set', keys: [k], values: [wire('v')], flags: 0, ttl: 0 }, Rc.NOT_SUPPORTED);
  });

  it('noop and auth need the binary protocol (NOT_SUPPORTED)', () => {
    assertRefused({ op: 'noop' }, Rc.NOT_SUPPORTED);
    assertRefused({ op: 'auth', mechanism: 'PLAIN', data: wire('\0u\0p') }, Rc.NOT_SUPPORTED);
  });
});
