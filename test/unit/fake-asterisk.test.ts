// The Asterisk-faithful FastAGI client (test/support/fake-asterisk.ts) against the sessions a real
// Asterisk 22 produced (test/fixtures/agi/*.log): a scripted server replays each log's server
// side byte for byte and the fake must answer exactly what Asterisk answered.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { describe, it } from 'node:test';

import {
  buildEnvironment,
  FakeChannel,
  parseAgiCommandLine,
  substituteFull,
  type ChannelOptions,
} from '../support/fake-asterisk.js';
import { fixturePath } from '../support/fixtures.js';

// ---------------------------------------------------------------------------------------------
// Reading the transcripts

type Step =
  | { kind: 'send'; data: Buffer; note: string }
  | { kind: 'expect'; data: Buffer }
  | { kind: 'expect-abbrev'; prefix: Buffer; suffix: Buffer; total: number }
  | { kind: 'expect-nothing'; ms: number }
  | { kind: 'half-close' }
  | { kind: 'destroy' }
  | { kind: 'expect-fin' }
  | { kind: 'wait'; text: string };

interface LogSession {
  id: string;
  env: string[];
  steps: Step[];
}

/** The last JSON string literal in `s` (which ends with its closing quote). */
function lastJsonString(s: string): { value: string; start: number } {
  assert.ok(s.endsWith('"'), `no JSON string at the end of ${s}`);
  for (let i = s.length - 2; i >= 0; i--) {
    if (s[i] !== '"') continue;
    let n = 0;
    for (let k = i - 1; k >= 0 && s[k] === '\\'; k--) n++;
    if (n % 2 === 0) return { value: JSON.parse(s.slice(i)) as string, start: i };
  }
  throw new Error(`unterminated JSON string in ${s}`);
}

/** Rebuilds a command the log abbreviates as `"<prefix>"...(N bytes total)`: `SET VARIABLE name
 * <value>\n`, the value the repetition of the shown pattern, optionally in quotes. long.log's
 * 'x' values end in 'Z', as its GET answers show ("...xZ)"). */
function reconstruct(prefix: string, total: number, note: string): Buffer {
  const head = `${prefix.split(' ').slice(0, 3).join(' ')} `;
  let shown = prefix.slice(head.length);
  const quote = shown.startsWith('"') ? '"' : '';
  shown = shown.slice(quote.length);
  let unit = shown;
  for (let p = 1; p <= shown.length; p++) {
    if ([...shown].every((ch, i) => ch === shown[i % p])) {
      unit = shown.slice(0, p);
      break;
    }
  }
  const tail = `${quote}\n`;
  const valueBytes = total - Buffer.byteLength(head + quote) - Buffer.byteLength(tail);
  let value = '';
  while (Buffer.byteLength(value) < valueBytes) value += unit;
  while (Buffer.byteLength(value) > valueBytes) value = value.slice(0, -1);
  if (unit === 'x') value = `${value.slice(0, -1)}Z`;
  const declared = /(?:value|quoted) (\d+)/.exec(note);
  if (declared) assert.equal(Buffer.byteLength(value), Number(declared[1]), `value size in ${note}`);
  const line = Buffer.from(head + quote + value + tail);
  assert.equal(line.length, total);
  return line;
}

function parseLog(name: string): LogSession[] {
  const text = readFileSync(fixturePath('agi', name), 'utf8');
  const sessions: LogSession[] = [];
  let cur: LogSession | undefined;
  for (const raw of text.split('\n')) {
    const m = /^\[\+\s*\d+ms\] #(\d+) (.*)$/.exec(raw);
    if (!m) continue;
    const rest = m[2]!;
    if (rest.startsWith('CONNECT ')) {
      cur = { id: m[1]!, env: [], steps: [] };
      sessions.push(cur);
      continue;
    }
    assert.ok(cur, `line before CONNECT in ${name}`);
    if (rest.startsWith('ENV ')) cur.env.push(JSON.parse(rest.slice(4)) as string);
    else if (rest.startsWith('>> ')) {
      const payload = rest.slice(3);
      const abbr = /\.\.\.\((\d+) bytes total\)$/.exec(payload);
      const body = abbr ? payload.slice(0, abbr.index) : payload;
      const { value, start } = lastJsonString(body);
      const note = body.slice(0, start).trim();
      const data = abbr ? reconstruct(value, Number(abbr[1]), note) : Buffer.from(value);
      cur.steps.push({ kind: 'send', data, note });
    } else if (rest.startsWith('<< ')) {
      const payload = rest.slice(3);
      const nothing = /^\(nothing within (\d+)ms\)$/.exec(payload);
      const abbr = /" \((\d+) bytes\)$/.exec(payload);
      if (nothing) cur.steps.push({ kind: 'expect-nothing', ms: Number(nothing[1]) });
      else if (abbr) {
        const suffix = lastJsonString(payload.slice(0, abbr.index + 1));
        const before = payload.slice(0, suffix.start);
        assert.ok(before.endsWith('...'), raw);
        const prefix = lastJsonString(before.slice(0, -3));
        cur.steps.push({ kind: 'expect-abbrev', prefix: Buffer.from(prefix.value), suffix: Buffer.from(suffix.value), total: Number(abbr[1]) });
      } else cur.steps.push({ kind: 'expect', data: Buffer.from(lastJsonString(payload).value) });
    } else if (rest.startsWith('ACTION: we half-close')) cur.steps.push({ kind: 'half-close' });
    else if (rest.startsWith('ACTION: we destroy')) cur.steps.push({ kind: 'destroy' });
    else if (rest.startsWith('EVENT: Asterisk half-closed')) cur.steps.push({ kind: 'expect-fin' });
    else if (rest.startsWith('.. waiting')) cur.steps.push({ kind: 'wait', text: rest });
    // SCENARIO, rx chunk, DONE, socket closed/error and notes carry nothing to replay.
  }
  return sessions;
}

const envValue = (s: LogSession, key: string): string | undefined =>
  s.env.find((l) => l.startsWith(`${key}: `))?.slice(key.length + 2);

function channelFor(s: LogSession, extra: ChannelOptions = {}): FakeChannel {
  return new FakeChannel({
    name: envValue(s, 'agi_channel')!,
    context: envValue(s, 'agi_context')!,
    extension: envValue(s, 'agi_extension')!,
    priority: Number(envValue(s, 'agi_priority')),
    ...extra,
  });
}

const argsOf = (s: LogSession): string[] =>
  s.env.filter((l) => /^agi_arg_\d+: /.test(l)).map((l) => l.slice(l.indexOf(': ') + 2));

/** Env lines comparable across runs: no uniqueid/threadid (time and thread bound). */
const comparable = (lines: string[]): string[] => lines.filter((l) => !/^agi_(uniqueid|threadid): /.test(l));

// ---------------------------------------------------------------------------------------------
// The scripted server

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const show = (b: Buffer): string => JSON.stringify(b.toString('utf8'));

/** The server end of one connection: buffers what the fake sends. */
class Peer {
  buf = Buffer.alloc(0);
  ended = false;
  closed = false;
  private waiters: Array<() => void> = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => {
      /* EPIPE/ECONNRESET after the fake closed (exitonhangup.log) */
    });
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(pred: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  async read(n: number, ms = 3000): Promise<Buffer> {
    await this.until(() => this.buf.length >= n || this.closed, ms);
    const got = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(got.length);
    return got;
  }

  async readUntil(marker: string, ms = 3000): Promise<Buffer> {
    await this.until(() => this.buf.includes(marker) || this.closed, ms);
    const at = this.buf.indexOf(marker);
    assert.ok(at >= 0, `no ${JSON.stringify(marker)} in ${show(this.buf)}`);
    const got = this.buf.subarray(0, at + marker.length);
    this.buf = this.buf.subarray(got.length);
    return got;
  }
}

async function listen(): Promise<{ server: net.Server; port: number; peer: Promise<Peer> }> {
  const server = net.createServer({ allowHalfOpen: true });
  const peer = new Promise<Peer>((resolve) => server.once('connection', (s) => resolve(new Peer(s))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as net.AddressInfo).port, peer };
}

interface ReplayHooks {
  channel?: ChannelOptions;
  /** Runs after a step (e.g. to hang up the channel where the dialplan did). */
  after?: (step: Step, channel: FakeChannel) => void;
}

/** Replays one logged session against a fresh channel named as in the log. */
async function replay(s: LogSession, hooks: ReplayHooks = {}) {
  const { server, port, peer: peerP } = await listen();
  const channel = channelFor(s, hooks.channel);
  const url = envValue(s, 'agi_request')!.replace('127.0.0.1:4573', `127.0.0.1:${port}`);
  const runP = channel.agi(url, argsOf(s), { sessionTimeoutMs: 20000 });
  let conn: Peer | undefined;
  try {
    const peer = await peerP;
    conn = peer;
    const env = (await peer.readUntil('\n\n')).toString('utf8').split('\n').slice(0, -2);
    const expectedEnv = s.env.map((l) => l.replace('127.0.0.1:4573', `127.0.0.1:${port}`));
    assert.deepEqual(comparable(env), comparable(expectedEnv), `env of session #${s.id}`);
    for (const step of s.steps) {
      switch (step.kind) {
        case 'send':
          peer.socket.write(step.data);
          break;
        case 'expect': {
          const got = await peer.read(step.data.length);
          assert.equal(show(got), show(step.data), `session #${s.id}`);
          assert.ok(got.equals(step.data));
          break;
        }
        case 'expect-abbrev': {
          const got = await peer.read(step.total);
          assert.equal(got.length, step.total, `answer length in session #${s.id}`);
          assert.equal(show(got.subarray(0, step.prefix.length)), show(step.prefix));
          assert.equal(show(got.subarray(got.length - step.suffix.length)), show(step.suffix));
          break;
        }
        case 'expect-nothing':
          // The probe waited up to seconds; a fake that answers at once needs far less.
          await sleep(Math.min(step.ms, 250));
          assert.equal(show(peer.buf), '""', `unexpected bytes in session #${s.id}`);
          break;
        case 'half-close':
          peer.socket.end();
          break;
        case 'destroy':
          peer.socket.destroy();
          break;
        case 'expect-fin':
          assert.ok(await peer.until(() => peer.ended, 3000), `no FIN from the fake in session #${s.id}`);
          break;
        case 'wait':
          break;
      }
      hooks.after?.(step, channel);
    }
    const run = await runP;
    assert.equal(show(peer.buf), '""', `bytes left over in session #${s.id}`);
    return { run, channel };
  } catch (err) {
    conn?.socket.destroy(); // let the fake end instead of timing out after the test
    await runP.catch(() => undefined);
    throw err;
  } finally {
    server.close();
  }
}

const onWait = (text: string) => (step: Step, channel: FakeChannel) => {
  if (step.kind === 'wait' && step.text.includes(text)) channel.hangup();
};

// ---------------------------------------------------------------------------------------------

describe('fake Asterisk replays the real transcripts byte for byte', () => {
  for (const log of ['hello', 'proto', 'quoting', 'long', 'boundary', 'funcs']) {
    it(`${log}.log`, async () => {
      const [s] = parseLog(`${log}.log`);
      assert.ok(s);
      const { run, channel } = await replay(s);
      assert.equal(run.status, 'SUCCESS');
      assert.equal(channel.getVar('AGISTATUS'), 'SUCCESS');
      assert.equal(run.transcript.filter((e) => e.dir === 'event' && e.what === 'hangup-sent').length, 1);
    });
  }

  it('args.log: the sessions that reach a free port (the third uses the default 4573)', async () => {
    const sessions = parseLog('args.log');
    assert.equal(sessions.length, 3);
    for (const s of sessions.slice(0, 2)) {
      const { run } = await replay(s);
      assert.equal(run.status, 'SUCCESS');
    }
  });

  it('agihangup.log: HANGUP answers 200 then the notification; channel commands get 511 after', async () => {
    const [s] = parseLog('agihangup.log');
    const { run, channel } = await replay(s!);
    assert.equal(run.status, 'HANGUP');
    assert.equal(channel.getVar('AGISTATUS'), 'HANGUP');
    assert.ok(channel.hungUp);
  });

  it('remotehangup.log: the caller hangs up while Asterisk waits for a command', async () => {
    const [s] = parseLog('remotehangup.log');
    const { run } = await replay(s!, { after: onWait('hung up') });
    assert.equal(run.status, 'HANGUP');
  });

  it('hangupduringcmd.log: HANGUP right after the answer of the command in progress', async () => {
    const [s] = parseLog('hangupduringcmd.log');
    const { run } = await replay(s!, {
      after: (step, channel) => {
        if (step.kind === 'send' && step.data.toString() === 'EXEC Wait 5\n') setTimeout(() => channel.hangup(), 100);
      },
    });
    assert.equal(run.status, 'HANGUP');
    assert.ok(run.durationMs < 4000, 'Wait was cut short by the hangup');
  });

  it('nosighup.log: AGISIGHUP=no, no HANGUP line at all', async () => {
    const [s] = parseLog('nosighup.log');
    const { run } = await replay(s!, { channel: { agiSigHup: false }, after: onWait('expect NO HANGUP') });
    assert.equal(run.status, 'HANGUP');
    assert.equal(run.transcript.filter((e) => e.dir === 'event' && e.what === 'hangup-sent').length, 0);
  });

  it('exitonhangup.log: AGIEXITONHANGUP=yes, HANGUP twice and Asterisk closes', async () => {
    const [s] = parseLog('exitonhangup.log');
    const { run } = await replay(s!, { channel: { agiExitOnHangup: true }, after: onWait('waiting for hangup') });
    assert.equal(run.status, 'HANGUP');
  });

  it('closeimmediately.log: a server that closes at once, then one that lingers', async () => {
    const [first, second] = parseLog('closeimmediately.log');
    const a = await replay(first!);
    assert.equal(a.run.status, 'SUCCESS');
    assert.deepEqual(a.run.commands, []);
    const b = await replay(second!);
    assert.equal(b.run.status, 'SUCCESS');
  });
});

describe('parseAgiCommandLine (res_agi.c parse_args)', () => {
  const words = (line: string): string[] => parseAgiCommandLine(Buffer.from(line)).map((b) => b.toString());

  it('every SET VARIABLE of quoting.log parses to the value GET VARIABLE returned', () => {
    const steps = parseLog('quoting.log')[0]!.steps;
    let checked = 0;
    let refused = 0;
    for (let i = 0; i + 3 < steps.length; i++) {
      const [set, setAns, get, getAns] = steps.slice(i, i + 4);
      if (set?.kind !== 'send' || setAns?.kind !== 'expect' || get?.kind !== 'send' || getAns?.kind !== 'expect') continue;
      const line = set.data.toString();
      const m = /^SET VARIABLE "?(\w+)"? /.exec(line);
      if (!m || get.data.toString() !== `GET VARIABLE ${m[1]}\n` || line.indexOf('\n') !== line.length - 1) continue;
      const w = words(line.slice(0, -1));
      if (setAns.data.toString().startsWith('520')) {
        assert.notEqual(w.length, 4, line);
        refused++;
        continue;
      }
      const answer = /^200 result=1 \(([\s\S]*)\)\n$/.exec(getAns.data.toString());
      assert.ok(answer, getAns.data.toString());
      assert.deepEqual(w.slice(0, 3), ['SET', 'VARIABLE', m[1]]);
      assert.equal(w.length, 4, line);
      assert.equal(w[3], answer[1], line);
      checked++;
    }
    assert.deepEqual([checked, refused], [18, 1]); // Q1-Q4 B1-B6 T1 U1 S1 S2 S4 S5 CR1 Q9; S3
  });

  it('quotes, escapes and separators as proto.log shows', () => {
    assert.deepEqual(words('"GET VARIABLE" CHANNEL'), ['GET VARIABLE', 'CHANNEL']);
    assert.deepEqual(words('GET VARIABLE\\ CHANNEL'), ['GET', 'VARIABLE CHANNEL']);
    assert.deepEqual(words('   GET    VARIABLE    CHANNEL   '), ['GET', 'VARIABLE', 'CHANNEL']);
    assert.deepEqual(words('GET VARIABLE\tCHANNEL'), ['GET', 'VARIABLE', 'CHANNEL']);
    assert.deepEqual(words('GET VARIABLE "CHANNEL'), ['GET', 'VARIABLE', 'CHANNEL']);
    assert.deepEqual(words('GET VARIABLE CHANNEL\r'), ['GET', 'VARIABLE', 'CHANNEL\r']);
    assert.deepEqual(words('SET VARIABLE EMPTY ""'), ['SET', 'VARIABLE', 'EMPTY', '']);
    assert.deepEqual(words('a"b c"d e'), ['ab cd', 'e']);
    assert.deepEqual(words('"\\n\\t\\r" \\"x\\\\'), ['ntr', '"x\\']);
    assert.deepEqual(words(''), []);
    assert.deepEqual(words('   '), []);
  });

  it('a NUL ends the line; a LF is an ordinary byte here', () => {
    assert.deepEqual(words('NOOP\0 more words'), ['NOOP']);
    assert.deepEqual(words('a\nb'), ['a\nb']);
  });

  it('keeps the first 127 words and drops the rest, however they start', () => {
    const many = Array.from({ length: 200 }, (_, i) => `w${i}`);
    assert.deepEqual(words(many.join(' ')), many.slice(0, 127));
    assert.deepEqual(words([...many.slice(0, 127), '"quoted"', 'x'].join(' ')), many.slice(0, 127));
  });

  it('bytes pass unchanged', () => {
    const raw = Buffer.from([0x53, 0x20, 0xff, 0xfe, 0x22, 0xc3, 0xa9, 0x20, 0x22]);
    assert.deepEqual(parseAgiCommandLine(raw), [Buffer.from('S'), Buffer.from([0xff, 0xfe, 0xc3, 0xa9, 0x20])]);
  });
});

describe('substituteFull (GET FULL VARIABLE)', () => {
  const sub = (expr: string, ch: FakeChannel): string => substituteFull(expr, ch).toString();

  it('SET(): name up to the first =, both sides stripped of blanks and control bytes', () => {
    const ch = new FakeChannel();
    assert.equal(sub('[${SET(  A = x y  )}]', ch), '[x y]');
    assert.equal(ch.getVar('A'), 'x y');
    assert.equal(sub('${SET(B=\t v\r)}', ch), 'v');
    assert.equal(ch.getVar('B'), 'v');
    assert.equal(sub('${SET(C=a=b)}', ch), 'a=b');
    assert.equal(ch.getVar('C'), 'a=b');
    assert.equal(sub('<${SET(NOEQUALS)}>', ch), '<>');
    assert.equal(ch.getVar('NOEQUALS'), undefined);
    assert.equal(sub('${SET(E=)}|${E}', ch), '|');
    assert.equal(ch.getVar('E'), '');
    assert.equal(sub('${SET(__INH=1)}${INH}|${__INH}', ch), '11|');
    assert.equal(ch.getVar('INH'), '1');
    assert.equal(ch.getVar('__INH'), undefined);
  });

  it('FILTER(): ranges, escapes, a reversed range wraps through 255', () => {
    const ch = new FakeChannel();
    assert.equal(sub('${FILTER(0-9,a1b2c3)}', ch), '123');
    assert.equal(sub('${FILTER(a-cx,abcdxyz)}', ch), 'abcx');
    assert.equal(sub('${FILTER(\\x41-\\x43,ABCD)}', ch), 'ABC');
    assert.equal(sub('${FILTER(a\\-,a-b)}', ch), 'a-');
    assert.equal(sub('${FILTER(z-a,amz{)}', ch), 'az{');
    assert.equal(sub('${FILTER(0-9)}', ch), ''); // no string: the read fails
    ch.setVar('NUM', '+1 (555) 010-2000');
    assert.equal(sub('${FILTER(0-9+,${NUM})}', ch), '+15550102000');
  });

  it('LEN(), nesting, substrings, builtins, unknown names', () => {
    const ch = new FakeChannel({ name: 'Local/s@agi-funcs-00000000;2', extension: '100' });
    ch.setVar('X', 'abc');
    assert.equal(sub('${LEN(hello world)}', ch), '11');
    assert.equal(sub('${LEN()}', ch), '0');
    assert.equal(sub('${LEN(${X})}', ch), '3');
    assert.equal(sub('${LEN(${CHANNEL})}', ch), '28'); // funcs.log
    assert.equal(sub('${X:1}|${X:-2}|${X:0:-1}|${X:5}', ch), 'bc|bc|ab|');
    assert.equal(sub('${CHANNEL}|${EXTEN}', ch), 'Local/s@agi-funcs-00000000;2|100');
    assert.equal(sub('x${NOSUCH}y${NOSUCHFUNC(1)}z', ch), 'xyz');
    assert.equal(sub('a$b$', ch), 'a$b$');
    assert.equal(sub('${X', ch), 'abc'); // a missing '}' keeps the whole rest as the name
    assert.equal(sub('$[1+1]|$[2*(3+4)]|$[${LEN(${X})} > 2]', ch), '2|14|1');
  });

  it('no length cut, raw bytes kept (long.log, quoting.log)', () => {
    const ch = new FakeChannel();
    const big = `${'x'.repeat(8171)}Z`;
    ch.setVar('BIG', big);
    ch.setVar('CR', 'a\rb');
    assert.equal(sub('${BIG}', ch), big);
    assert.equal(sub('${CR}', ch), 'a\rb');
    assert.equal(sub('${BASE64_DECODE(bGluZTEKbGluZTI=)}', ch), 'line1\nline2');
  });

  it('globals back up channel variables', () => {
    const globals = new Map([['G', Buffer.from('global')]]);
    const ch = new FakeChannel({ globals });
    assert.equal(sub('${G}', ch), 'global');
    ch.setVar('G', 'channel');
    assert.equal(sub('${G}|${GLOBAL(G)}', ch), 'channel|global');
  });
});

describe('buildEnvironment', () => {
  const lines = (bufs: Buffer[]): string[] => bufs.map((b) => b.toString());

  it('matches every ENV block of the transcripts, line for line', () => {
    for (const log of ['hello', 'proto', 'quoting', 'long', 'boundary', 'funcs', 'agihangup', 'remotehangup', 'nosighup', 'exitonhangup', 'closeimmediately', 'hangupduringcmd', 'args']) {
      for (const s of parseLog(`${log}.log`)) {
        const env = buildEnvironment(channelFor(s), envValue(s, 'agi_request')!, argsOf(s));
        assert.equal(env.at(-1)?.length, 0, 'ends with the empty line');
        assert.deepEqual(comparable(lines(env.slice(0, -1))), comparable(s.env), `${log}.log #${s.id}`);
      }
    }
  });

  it('agi_network_script: the path with its query, absent without a path', () => {
    const ch = new FakeChannel();
    const script = (url: string) => lines(buildEnvironment(ch, url)).find((l) => l.startsWith('agi_network_script'));
    assert.equal(script('agi://127.0.0.1:4573/env?x=1&y=two words'), 'agi_network_script: env?x=1&y=two words');
    assert.equal(script('agi://127.0.0.1/MCD'), 'agi_network_script: MCD');
    assert.equal(script('agi://127.0.0.1:4573'), undefined);
    assert.equal(script('agi://127.0.0.1:4573/'), undefined);
    assert.throws(() => buildEnvironment(ch, '/var/lib/asterisk/agi-bin/x.sh'));
  });

  it('arguments raw: an empty one is "key: ", a LF breaks the framing', () => {
    const ch = new FakeChannel();
    const env = buildEnvironment(ch, 'agi://127.0.0.1/x', ['a', '', 'line1\n\n200 result=1 (forged)']);
    const args = lines(env).filter((l) => l.startsWith('agi_arg_'));
    assert.deepEqual(args, ['agi_arg_1: a', 'agi_arg_2: ', 'agi_arg_3: line1\n\n200 result=1 (forged)']);
    const wire = Buffer.concat(env.map((l) => Buffer.concat([l, Buffer.from('\n')]))).toString();
    assert.ok(wire.endsWith('agi_arg_3: line1\n\n200 result=1 (forged)\n\n'));
    // The block as a server reads it ends at the first empty line, inside the argument.
    assert.ok(wire.indexOf('\n\n') < wire.indexOf('200 result=1'));
  });

  it('more than 127 arguments: the remainder is joined into the last', () => {
    const args = Array.from({ length: 130 }, (_, i) => `a${i + 1}`);
    const env = lines(buildEnvironment(new FakeChannel(), 'agi://127.0.0.1/x', args)).filter((l) => l.startsWith('agi_arg_'));
    assert.equal(env.length, 127);
    assert.equal(env[126], 'agi_arg_127: a127,a128,a129,a130');
  });
});

describe('FakeChannel.agi over a socket', () => {
  /** Starts agi() against a scripted server and hands the connection to `script`. */
  async function session(channel: FakeChannel, script: (peer: Peer, port: number) => Promise<void>, args: string[] = [], path = 'x') {
    const { server, port, peer } = await listen();
    try {
      const runP = channel.agi(`agi://127.0.0.1:${port}/${path}`, args, { sessionTimeoutMs: 8000 });
      const p = await peer;
      try {
        await script(p, port);
      } catch (err) {
        p.socket.destroy();
        await runP.catch(() => undefined);
        throw err;
      }
      return { run: await runP, peer: p };
    } finally {
      server.close();
    }
  }

  const finish = async (peer: Peer): Promise<void> => {
    peer.socket.end();
    assert.equal((await peer.read(7)).toString(), 'HANGUP\n');
    assert.ok(await peer.until(() => peer.ended, 2000));
  };

  it('nothing listening: FAILURE, no env, AGISTATUS=FAILURE', async () => {
    const { server, port } = await listen();
    await new Promise<void>((r) => server.close(() => r()));
    const ch = new FakeChannel();
    const run = await ch.agi(`agi://127.0.0.1:${port}/x`);
    assert.equal(run.status, 'FAILURE');
    assert.equal(ch.getVar('AGISTATUS'), 'FAILURE');
    assert.ok(!run.transcript.some((e) => e.dir === 'env'));
    assert.ok(run.transcript.some((e) => e.dir === 'event' && e.what === 'connect-failed'));
  });

  it('an argument with LF arrives raw: the env block ends early (README.md)', async () => {
    const ch = new FakeChannel();
    const { run } = await session(
      ch,
      async (peer) => {
        const first = await peer.readUntil('\n\n');
        assert.ok(first.toString().endsWith('agi_arg_1: ok\nagi_arg_2: x\n\n'));
        assert.equal((await peer.readUntil('\n\n')).toString(), '200 result=1 (forged)\n\n');
        peer.socket.write('NOOP\n');
        assert.equal((await peer.read(13)).toString(), '200 result=0\n');
        await finish(peer);
      },
      ['ok', 'x\n\n200 result=1 (forged)'],
    );
    assert.equal(run.status, 'SUCCESS');
    assert.deepEqual(run.commands, ['NOOP']);
  });

  it('one-write env mode sends the same bytes', async () => {
    const ch = new FakeChannel();
    const expected = Buffer.concat(buildEnvironment(ch, 'agi://127.0.0.1:1/x', ['a']).map((l) => Buffer.concat([l, Buffer.from('\n')])));
    const { server, port, peer } = await listen();
    try {
      const runP = ch.agi(`agi://127.0.0.1:${port}/x`, ['a'], { envWriteMode: 'one-write' });
      const p = await peer;
      const env = await p.readUntil('\n\n');
      assert.equal(env.toString(), expected.toString().replace('127.0.0.1:1/', `127.0.0.1:${port}/`));
      await finish(p);
      assert.equal((await runP).status, 'SUCCESS');
    } finally {
      server.close();
    }
  });

  it('no pipelining: a second command in the same write waits for more bytes (proto.log)', async () => {
    const ch = new FakeChannel();
    const { run } = await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.write('NOOP\nVERBOSE hi\n');
      assert.equal((await peer.read(13)).toString(), '200 result=0\n');
      await sleep(150);
      assert.equal(peer.buf.length, 0, 'the buffered VERBOSE waits for more bytes');
      // Any new bytes wake Asterisk, which then runs the line it had buffered (proto.log
      // "after pipeline"); the new partial line itself waits for its LF.
      peer.socket.write('NOOP');
      assert.equal((await peer.read(13)).toString(), '200 result=1\n');
      await sleep(150);
      assert.equal(peer.buf.length, 0, 'a partial line is not answered');
      peer.socket.write('\n');
      assert.equal((await peer.read(13)).toString(), '200 result=0\n');
      await finish(peer);
    });
    assert.deepEqual(run.commands, ['NOOP', 'VERBOSE hi', 'NOOP']);
  });

  it('a last line without LF is still run when the server closes', async () => {
    const ch = new FakeChannel();
    const { run } = await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.end('SET VARIABLE A b');
      assert.equal((await peer.read(20)).toString(), '200 result=1\nHANGUP\n');
      assert.ok(await peer.until(() => peer.ended, 2000));
    });
    assert.equal(run.status, 'SUCCESS');
    assert.equal(ch.getVar('A'), 'b');
  });

  it('hangup while idle: HANGUP at once, then variables still work and channel commands 511', async () => {
    const ch = new FakeChannel();
    const { run } = await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      ch.hangup();
      assert.equal((await peer.read(7)).toString(), 'HANGUP\n');
      peer.socket.write('SET VARIABLE MCDRESULT 0\n');
      assert.equal((await peer.read(13)).toString(), '200 result=1\n');
      peer.socket.write('ANSWER\n');
      assert.equal((await peer.read(65)).toString(), '511 Command Not Permitted on a dead channel or intercept routine\n');
      await finish(peer);
    });
    assert.equal(run.status, 'HANGUP');
    assert.equal(ch.getVar('AGISTATUS'), 'HANGUP');
    assert.equal(ch.getVar('MCDRESULT'), '0');
  });

  it('AGI() on a channel already hung up runs dead from the start and ends SUCCESS', async () => {
    const ch = new FakeChannel();
    ch.hangup();
    const { run } = await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.write('ANSWER\n');
      assert.match((await peer.read(65)).toString(), /^511 /);
      await finish(peer);
    });
    assert.equal(run.status, 'SUCCESS');
  });

  it('a line starting "failure" ends AGI with FAILURE', async () => {
    const ch = new FakeChannel();
    const { run } = await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.write('FAILURE to launch\n');
      assert.equal((await peer.read(7)).toString(), 'HANGUP\n');
      assert.ok(await peer.until(() => peer.ended, 2000));
    });
    assert.equal(run.status, 'FAILURE');
  });

  it('wrong argument counts give the 520 blocks of proto.log', async () => {
    const ch = new FakeChannel();
    await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.write('SET VARIABLE ONLYNAME\n');
      const usage = '520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.\n';
      assert.equal((await peer.read(usage.length)).toString(), usage);
      peer.socket.write('get full variable\n');
      const block = await peer.read(700);
      assert.match(block.toString(), /^520-Invalid command syntax\.  Proper usage follows:\nEvaluates the given /);
      assert.match(block.toString(), /result=1 \(The time is 1578493800\)\n520 End of proper usage\.\n$/);
      await finish(peer);
    });
  });

  it('GET VARIABLE cuts at 1023 bytes, GET FULL VARIABLE does not; AGIEXECFULL substitutes EXEC', async () => {
    const ch = new FakeChannel({ variables: { BIG: 'y'.repeat(2000), AGIEXECFULL: 'yes' } });
    await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.write('GET VARIABLE BIG\n');
      assert.equal((await peer.read(14 + 1023 + 2)).toString(), `200 result=1 (${'y'.repeat(1023)})\n`);
      peer.socket.write('GET FULL VARIABLE ${BIG}\n');
      assert.equal((await peer.read(14 + 2000 + 2)).toString(), `200 result=1 (${'y'.repeat(2000)})\n`);
      peer.socket.write('EXEC Set "L=${LEN(${BIG})}"\n');
      assert.equal((await peer.read(13)).toString(), '200 result=0\n');
      await finish(peer);
    });
    assert.equal(ch.getVar('L'), '2000');
  });

  it('the session timeout rejects', async () => {
    const ch = new FakeChannel();
    const { server, port, peer } = await listen();
    try {
      const runP = ch.agi(`agi://127.0.0.1:${port}/x`, [], { sessionTimeoutMs: 200 });
      await peer;
      await assert.rejects(runP, /exceeded 200 ms/);
    } finally {
      server.close();
    }
  });

  it('the transcript records env, commands, answers and events in order', async () => {
    const ch = new FakeChannel();
    const { run } = await session(ch, async (peer) => {
      await peer.readUntil('\n\n');
      peer.socket.write('GET VARIABLE CHANNEL\n');
      await peer.readUntil(')\n');
      await finish(peer);
    });
    const kinds = run.transcript.map((e) => (e.dir === 'event' ? e.what : e.dir));
    const firstEnv = kinds.indexOf('env');
    assert.deepEqual(kinds.slice(0, firstEnv), ['connected']);
    assert.deepEqual(kinds.slice(kinds.lastIndexOf('env') + 1), ['env-sent', 'cmd', 'answer', 'server-closed', 'script-completed', 'hangup-sent', 'closed']);
    const answer = run.transcript.find((e) => e.dir === 'answer');
    assert.equal(answer?.dir === 'answer' && answer.data.toString(), `200 result=1 (${ch.name})\n`);
  });
});
