// The AGI codec without sockets: what Asterisk sends (environment block, answers, inline HANGUP,
// 520 usage blocks, lines an argument smuggled) decoded whole, byte by byte and split at every
// position; and command lines quoted so Asterisk's parser gives every byte back.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AGI_MAX_COMMAND_BYTES, AgiDecoder, AgiProtocolError, encodeCommand, quoteWord, type AgiDecoderOptions, type AgiFrame } from '../../src/agi/codec.js';
import { decodeAllWays } from '../support/decode-ways.js';

const ENV_HEAD = [
  'agi_network: yes',
  'agi_network_script: mcdset?ttl=30',
  'agi_request: agi://127.0.0.1:4573/mcdset?ttl=30',
  'agi_channel: Local/s@test-00000000;2',
  'agi_language: en',
  'agi_type: Local',
  'agi_uniqueid: 1795529631.1',
  'agi_version: 22.10.1',
  'agi_callerid: unknown',
  'agi_calleridname: unknown',
  'agi_callingpres: 67',
  'agi_callingani2: 0',
  'agi_callington: 0',
  'agi_callingtns: 0',
  'agi_dnid: unknown',
  'agi_rdnis: unknown',
  'agi_context: test',
  'agi_extension: s',
  'agi_priority: 2',
  'agi_enhanced: 0.0',
  'agi_accountcode: ',
  'agi_threadid: 140606188410560',
];

function decode(bytes: Buffer, options: AgiDecoderOptions = {}): AgiFrame[] {
  return decodeAllWays(() => {
    const d = new AgiDecoder(options);
    return { feed: (c: Buffer) => d.feed(c), next: () => d.next() ?? undefined };
  }, bytes);
}

const env = (...args: string[]): string => [...ENV_HEAD, ...args.map((a, i) => `agi_arg_${i + 1}: ${a}`), '', ''].join('\n');

describe('AGI decoder: the environment block', () => {
  it('reads every variable, the script with its query, the channel and the arguments in order', () => {
    const frames = decode(Buffer.from(env('key one', 'a,b', ' lead', ''), 'utf8'));
    assert.equal(frames.length, 1);
    const f = frames[0]!;
    assert.equal(f.kind, 'env');
    if (f.kind !== 'env') return;
    assert.equal(f.env.script, 'mcdset?ttl=30');
    assert.equal(f.env.channel, 'Local/s@test-00000000;2');
    assert.deepEqual(f.env.args.map((a) => a.toString()), ['key one', 'a,b', ' lead', '']);
    assert.equal(f.env.vars.get('agi_accountcode')?.length, 0, 'an empty value is "key: " with nothing after');
    assert.equal(f.env.broken, false);
  });

  it('keeps argument bytes raw (UTF-8 and backslashes unchanged)', () => {
    const frames = decode(Buffer.from(env('héllo ✓ 日本', 'x\\y'), 'utf8'));
    const f = frames[0]!;
    assert.ok(f.kind === 'env');
    assert.deepEqual(f.env.args[0], Buffer.from('héllo ✓ 日本', 'utf8'));
    assert.equal(f.env.args[1]!.toString(), 'x\\y');
  });

  it('has no script when the URL has no path (args.log session #3)', () => {
    const text = ENV_HEAD.filter((l) => !l.startsWith('agi_network_script')).join('\n') + '\n\n';
    const f = decode(Buffer.from(text))[0]!;
    assert.ok(f.kind === 'env');
    assert.equal(f.env.script, null);
  });

  it('marks the block broken when an argument held a line feed and the rest arrived as foreign lines', () => {
    // agi_arg_1 = "abc\nSET VARIABLE X 1": Asterisk writes it unescaped.
    const f = decode(Buffer.from(env('abc\nSET VARIABLE X 1', 'v')))[0]!;
    assert.ok(f.kind === 'env');
    assert.equal(f.env.broken, true);
  });

  it('marks the block broken when a smuggled line imitates an argument out of sequence', () => {
    const f = decode(Buffer.from(env('k\nagi_arg_2: forged', 'real')))[0]!;
    assert.ok(f.kind === 'env');
    assert.equal(f.env.broken, true);
  });

  it('when an argument holds an empty line, the block ends early and the rest are stray lines, never answers', () => {
    const bytes = Buffer.from(env('k\n\n200 result=1 (forged)', 'v') + '200 result=1\n');
    const frames = decode(bytes);
    assert.equal(frames[0]!.kind, 'env');
    if (frames[0]!.kind === 'env') assert.deepEqual(frames[0]!.env.args.map(String), ['k']);
    // The forged "200" does look like an answer to the decoder: telling it apart is the
    // session's job (nonce). What follows the forged one are the real remaining env lines.
    const kinds = frames.slice(1).map((f) => f.kind);
    assert.deepEqual(kinds.slice(0, 2), ['answer', 'stray']);
  });

  it('bounds the number of environment lines and the length of a line', () => {
    const many = Array.from({ length: 40 }, (_, i) => `agi_x${i}: v`).join('\n') + '\n';
    assert.throws(() => decode(Buffer.from(many), { maxEnvLines: 32 }), AgiProtocolError);
    assert.throws(() => decode(Buffer.from('agi_network: ' + 'y'.repeat(300)), { maxLineBytes: 256 }), AgiProtocolError);
  });
});

describe('AGI decoder: answers', () => {
  const after = (answers: string): Buffer => Buffer.from(env() + answers, 'utf8');
  const answers = (bytes: Buffer): AgiFrame[] => decode(bytes).slice(1);

  it('decodes 200 with and without data, data holding ")" and spaces, taken to the last ")"', () => {
    const frames = answers(after('200 result=1\n200 result=0\n200 result=1 (some "quoted" value)\n200 result=1 ((paren))\n200 result=-1\n'));
    const got = frames.map((f) => (f.kind === 'answer' ? [f.code, f.result, f.data?.toString() ?? null] : f.kind));
    assert.deepEqual(got, [
      [200, '1', null],
      [200, '0', null],
      [200, '1', 'some "quoted" value'],
      [200, '1', '(paren)'],
      [200, '-1', null],
    ]);
  });

  it('takes HANGUP inline, wherever it falls, as a notification and not an answer (hangupduringcmd.log)', () => {
    const frames = answers(after('200 result=-1\nHANGUP\nHANGUP\n200 result=1 (x)\n'));
    assert.deepEqual(frames.map((f) => f.kind), ['answer', 'hangup', 'hangup', 'answer']);
  });

  it('reads a multi-line 520 usage block as one answer (proto.log)', () => {
    const block = '520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.\n';
    const frames = answers(after(block + '200 result=1\n'));
    assert.equal(frames.length, 2);
    const f = frames[0]!;
    assert.ok(f.kind === 'answer');
    assert.equal(f.code, 520);
    assert.equal(f.line.toString(), block);
  });

  it('skips 100 Trying, and reads 510 and 511', () => {
    const frames = answers(after('100 result=0 Trying...\n200 result=0\n510 Invalid or unknown command\n511 Command Not Permitted on a dead channel or intercept routine\n'));
    assert.deepEqual(frames.map((f) => (f.kind === 'answer' ? f.code : f.kind)), ['trying', 200, 510, 511]);
  });

  it('keeps a CR in data (quoting.log CR1) and calls anything else a stray line', () => {
    const frames = answers(after('200 result=1 (a\rb)\nhello there\nagi_arg_2: x\n'));
    assert.ok(frames[0]!.kind === 'answer');
    if (frames[0]!.kind === 'answer') assert.equal(frames[0]!.data?.toString('latin1'), 'a\rb');
    assert.deepEqual(frames.slice(1).map((f) => f.kind), ['stray', 'stray']);
  });

  it('bounds a 520 block', () => {
    const block = '520-x\n' + 'line\n'.repeat(20);
    assert.throws(() => decode(after(block), { maxBlockLines: 10 }), AgiProtocolError);
  });
});

describe('AGI encoder', () => {
  /** Asterisk's parse_args for one quoted word: `"` toggles quoting and is dropped, `\x` is x. */
  function asteriskWord(bytes: Buffer): Buffer {
    const out: number[] = [];
    let escaped = false;
    for (const b of bytes) {
      if (escaped) {
        out.push(b);
        escaped = false;
      } else if (b === 0x5c) escaped = true;
      else if (b !== 0x22) out.push(b);
    }
    return Buffer.from(out);
  }

  it('quotes a word so Asterisk gives back every byte: only \\ and " escaped', () => {
    const cases = ['plain', 'He said "hi" \\ back\\slash ${X} ✓', 'trailing\\', 'C:\\dir\\file\\', '\\n\\t\\r', 'a\tb', 'a\rb', '', ' edge ', '"', '\\"'];
    for (const value of cases) {
      const quoted = quoteWord(value);
      assert.equal(quoted[0], 0x22);
      assert.equal(quoted.at(-1), 0x22);
      assert.equal(asteriskWord(quoted).toString('utf8'), value, `round trip of ${JSON.stringify(value)}`);
    }
    assert.equal(quoteWord('He said "hi" \\ x').toString(), '"He said \\"hi\\" \\\\ x"');
  });

  it('refuses a word holding LF or NUL: it would end or corrupt the command line', () => {
    assert.throws(() => quoteWord('a\nb'), RangeError);
    assert.throws(() => quoteWord(Buffer.from([0x61, 0x00])), RangeError);
  });

  it('builds one line: bare words as given, Buffers quoted, one \\n at the end', () => {
    assert.equal(encodeCommand('SET', 'VARIABLE', 'MCD', Buffer.from('a "b"')).toString(), 'SET VARIABLE MCD "a \\"b\\""\n');
    assert.equal(encodeCommand('NOOP').toString(), 'NOOP\n');
    assert.equal(AGI_MAX_COMMAND_BYTES, 8191);
  });
});
