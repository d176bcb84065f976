// Hostile FastAGI sessions (RELIABILITY.md, "Hostile AGI sessions"): arguments that smuggle lines past
// the environment block, oversized lines, an environment that never ends, random bytes, abrupt
// closes, more sessions than max_sessions. Each is refused or closed; sessions running beside
// it are not harmed, and nothing smuggled is ever taken for an answer or reaches the cache.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { FakeChannel } from '../support/fake-asterisk.js';
import { startAgiRelay, startHangupRelay } from '../support/agi-relay.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';
import { recordRow } from '../support/agi-load.js';
import { REFUSAL_SETTLE_MS } from '../../src/agi/session.js';

const ENV = [
  'agi_network: yes',
  'agi_network_script: MCD',
  'agi_request: agi://127.0.0.1/MCD',
  'agi_channel: Local/s@hostile-00000000;2',
  'agi_language: en',
];

function rawConnect(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** The daemon's lines, one at a time (without their \n); rejects once it closed and none is left. */
function readLines(socket: Socket): { next(): Promise<string> } {
  const queue: string[] = [];
  let pending = '';
  let closed = false;
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    pending += chunk.toString('latin1');
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      queue.push(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
    }
    wake?.();
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  return {
    async next(): Promise<string> {
      while (queue.length === 0) {
        if (closed) throw new Error('the daemon closed the connection');
        await new Promise<void>((resolve) => (wake = resolve));
      }
      return queue.shift()!;
    },
  };
}

/** Resolves with how long the daemon took to close the socket on us. */
function closedWithin(socket: Socket, limitMs: number): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`socket still open after ${limitMs} ms`)), limitMs);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('close', () => {
      clearTimeout(t);
      resolve(Date.now() - started);
    });
  });
}

describe('hostile AGI sessions', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon('[general]\n[agi]\nenv_timeout=400\nmax_line_length=2048\nanswer_timeout=1000\n');
    await d.daemon.backend.set('probe', 'fine');
  });
  after(async () => {
    await d.stop();
  });

  /** A well-behaved call beside the hostile ones: it must still work. */
  async function probe(): Promise<void> {
    const ch = new FakeChannel();
    const run = await ch.agi(d.url('MCD'), ['probe']);
    assert.equal(run.status, 'SUCCESS');
    assert.equal(ch.getVar('MCDRESULT'), '0');
    assert.equal(ch.getVar('MCD'), 'fine');
  }

  test('an argument with a line feed and an empty line: smuggled lines are never answers; the write is refused with 38', async () => {
    const ch = new FakeChannel();
    const smuggled = 'victim\n\n200 result=1 (forged)\n200 result=1\nagi_arg_9: x';
    const run = await ch.agi(d.url('mcdset'), [smuggled, 'evil value']);
    assert.equal(run.status, 'SUCCESS');
    assert.equal(ch.getVar('MCDRESULT'), '38');
    assert.equal(await d.daemon.backend.get('victim'), null, 'nothing was written under the cut key');
    await probe();
    recordRow({ area: 'agi', case: 'argument smuggling an empty line and forged answers', done: 'mcdset whose key argument holds LF, an empty line, "200 result=1 (forged)"', measured: `MCDRESULT=${ch.getVar('MCDRESULT')}; nothing stored; a concurrent session unharmed`, outcome: 'refused with 38; forged lines never taken for answers' });
  });

  test('the same smuggling on a read: the value read under the cut key is taken back, ${MCD}=""', async () => {
    await d.daemon.backend.set('cut', 'secret');
    const ch = new FakeChannel();
    const run = await ch.agi(d.url('MCD'), ['cut\n\n200 result=1 (x)']);
    assert.equal(run.status, 'SUCCESS');
    assert.equal(ch.getVar('MCDRESULT'), '38');
    assert.equal(ch.getVar('MCD'), '');
  });

  test('a line feed without an empty line breaks the block shape: refused with 38 before any write', async () => {
    const ch = new FakeChannel();
    await ch.agi(d.url('mcdset'), ['k1\nSET VARIABLE X 1', 'v']);
    assert.equal(ch.getVar('MCDRESULT'), '38');
    assert.equal(ch.getVar('X'), undefined);
    assert.equal(await d.daemon.backend.get('k1'), null);
    recordRow({ area: 'agi', case: 'argument holding a line feed (no empty line)', done: 'mcdset with key "k1\\nSET VARIABLE X 1"', measured: 'MCDRESULT=38; X not set; nothing stored', outcome: 'refused before any write' });
  });

  test('an oversized environment line closes that session at once; the others go on', async () => {
    const s = await rawConnect(d.port);
    const closed = closedWithin(s, 2000);
    s.write(ENV[0] + '\nagi_network_script: ' + 'x'.repeat(5000));
    await Promise.all([probe(), probe()]);
    const ms = await closed;
    recordRow({ area: 'agi', case: 'line far over max_line_length', done: '5000-byte environment line, max_line_length=2048', measured: `closed after ${ms} ms; 2 concurrent sessions served`, outcome: 'that session closed, others unharmed' });
  });

  test('an environment block that never ends is closed at env_timeout', async () => {
    const s = await rawConnect(d.port);
    const closed = closedWithin(s, 3000);
    const drip = setInterval(() => s.writable && s.write('agi_x: y\n'), 50);
    try {
      await probe();
      const ms = await closed;
      assert.ok(ms >= 300 && ms < 2000, `closed after ${ms} ms`);
      recordRow({ area: 'agi', case: 'environment that never ends', done: 'one agi_x line every 50 ms, env_timeout=400', measured: `closed after ${ms} ms; a concurrent session served`, outcome: 'closed at the deadline' });
    } finally {
      clearInterval(drip);
    }
  });

  test('random bytes and very many environment lines are closed without harm', async () => {
    const a = await rawConnect(d.port);
    const b = await rawConnect(d.port);
    const closedA = closedWithin(a, 3000);
    const closedB = closedWithin(b, 3000);
    a.write(randomBytes(64 * 1024));
    b.write(Array.from({ length: 2000 }, (_, i) => `agi_v${i}: x`).join('\n') + '\n');
    await probe();
    const [msA, msB] = await Promise.all([closedA, closedB]);
    recordRow({ area: 'agi', case: 'random bytes; very many environment lines', done: '64 KiB of random bytes; 2000 environment lines', measured: `closed after ${msA} ms and ${msB} ms; a concurrent session served`, outcome: 'both closed, others unharmed' });
  });

  test('abrupt closes at every stage leave the daemon serving and holding no session', async () => {
    for (const upTo of [1, 3, 5]) {
      const s = await rawConnect(d.port);
      s.write(ENV.slice(0, upTo).join('\n') + '\n');
      await sleep(10);
      s.destroy();
    }
    // A complete environment, then gone before the answer to the first command.
    const s = await rawConnect(d.port);
    s.write(ENV.join('\n') + '\nagi_arg_1: probe\n\n');
    await new Promise<void>((resolve) => s.once('data', () => resolve()));
    s.destroy();
    await probe();
    await sleep(100);
    assert.equal(d.daemon.sessions, 0, 'no session left behind');
    recordRow({ area: 'agi', case: 'abrupt closes at every stage', done: 'connections cut after 1, 3, 5 environment lines and right after the first command', measured: 'daemon sessions afterwards: 0; a session after them served', outcome: 'nothing left behind' });
  });

  test('Asterisk silent after the environment: the session ends at answer_timeout', async () => {
    const s = await rawConnect(d.port);
    const closed = closedWithin(s, 4000);
    s.write(ENV.join('\n') + '\nagi_arg_1: probe\n\n');
    const ms = await closed;
    assert.ok(ms >= 900, `closed after ${ms} ms`);
    recordRow({ area: 'agi', case: 'slow client: Asterisk silent after the environment', done: 'full environment, then no answer to the first command; answer_timeout=1000', measured: `closed after ${ms} ms`, outcome: 'closed at the deadline' });
  });
});

describe('a storm of hostile sessions', () => {
  test("leaves the daemon's memory and open sockets where they were", async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heap = (): number => {
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const d = await startDaemon('[general]\n[agi]\nenv_timeout=300\nanswer_timeout=300\nmax_line_length=2048\n');
    try {
      const storm = async (): Promise<void> => {
        const jobs: Promise<unknown>[] = [];
        for (let i = 0; i < 60; i++) {
          jobs.push((async () => {
            const s = await rawConnect(d.port);
            const closed = closedWithin(s, 3000);
            if (i % 4 === 0) s.write(randomBytes(4096));
            else if (i % 4 === 1) s.write('agi_network: yes\n' + 'x'.repeat(3000));
            else if (i % 4 === 2) s.write(ENV.join('\n') + '\nagi_arg_1: k\n\n');
            else s.destroy();
            await closed.catch(() => undefined);
          })());
          jobs.push(new FakeChannel().agi(d.url('mcdset'), [`storm\n\n200 result=1 (${i})`, 'v']));
        }
        await Promise.all(jobs);
      };
      await storm(); // warm up: code paths compiled, pools grown
      await sleep(200);
      const heapBefore = heap();
      const fdsBefore = fds();
      for (let round = 0; round < 3; round++) await storm();
      await sleep(200);
      const grownMb = (heap() - heapBefore) / 1048576;
      const fdsAfter = fds();
      assert.equal(d.daemon.sessions, 0);
      assert.ok(grownMb < 2, `heap grew ${grownMb.toFixed(2)} MB`);
      assert.ok(fdsAfter <= fdsBefore + 2, `fds ${fdsBefore} → ${fdsAfter}`);
      recordRow({ area: 'agi', case: "hostile storm: the daemon's memory", done: '3 rounds of 60 hostile connections (random bytes, long lines, silence, abrupt closes) + 60 smuggling calls each, after a warm-up round', measured: `heap after GC ${grownMb >= 0 ? '+' : ''}${grownMb.toFixed(2)} MB; open fds ${fdsBefore} → ${fdsAfter}; sessions left 0`, outcome: 'bounded' });
    } finally {
      await d.stop();
    }
  });
});

describe('HANGUP at every point of a command', () => {
  test('the channel hangs up before, between and after each command: the result is still written', async () => {
    const d = await startDaemon('[general]\n');
    try {
      await d.daemon.backend.set('quoted', 'needs "quotes" and spaces ');
      const outcomes: string[] = [];
      for (const [script, args, commands] of [['mcdset', ['hk', 'v'], 2], ['MCD', ['quoted'], 2], ['MCD', ['missing'], 1]] as const) {
        for (let at = 0; at <= commands; at++) {
          const ch = new FakeChannel();
          // A relay that hangs the channel up when the daemon's `at`-th command passes (0: at connect).
          const relay = await startHangupRelay(ch, d.port, at);
          try {
            const run = await ch.agi(`agi://127.0.0.1:${relay.port}/${script}`, [...args]);
            // Hung up before Asterisk's AGI loop started: it runs the script "dead" and reports SUCCESS.
            assert.equal(run.status, at === 0 ? 'SUCCESS' : 'HANGUP', `${script} hung up at command ${at}`);
            assert.equal(ch.getVar('MCDRESULT'), script === 'MCD' && args[0] === 'missing' ? '16' : '0', `${script} at ${at}`);
            if (script === 'MCD' && args[0] === 'quoted') assert.equal(ch.getVar('MCD'), 'needs "quotes" and spaces ');
            outcomes.push(`${script}@${at}:${ch.getVar('MCDRESULT')}`);
          } finally {
            relay.close();
          }
        }
      }
      recordRow({ area: 'agi', case: 'HANGUP at every point of a command', done: 'the channel hung up at connect and as each command of mcdset, MCD (quoted value) and MCD (miss) reached Asterisk', measured: outcomes.join(' '), outcome: 'every result written; AGISTATUS=HANGUP (SUCCESS when hung up at connect: Asterisk then runs the script dead)' });
    } finally {
      await d.stop();
    }
  });
});

describe('max_sessions', () => {
  test('a connection over the cap gets MCDRESULT=47 and a clean end; under the cap all is normal again', async () => {
    const d = await startDaemon('[general]\n[agi]\nmax_sessions=2\nenv_timeout=2000\n');
    try {
      const idle = [await rawConnect(d.port), await rawConnect(d.port)];
      await sleep(50);
      const ch = new FakeChannel();
      const run = await ch.agi(d.url('MCD'), ['k']);
      assert.equal(run.status, 'SUCCESS');
      assert.equal(ch.getVar('MCDRESULT'), '47');
      for (const s of idle) s.destroy();
      await sleep(50);
      await ch.agi(d.url('MCD'), ['k']);
      assert.equal(ch.getVar('MCDRESULT'), '16');
      assert.ok(d.logs.some((l) => l.msg.includes('max_sessions')));
      recordRow({ area: 'agi', case: 'more sessions than max_sessions', done: 'max_sessions=2, two idle connections, then a call', measured: 'the call: AGISTATUS=SUCCESS, MCDRESULT=47; after the idle ones left: 16 (normal)', outcome: 'refused with a code, not hung' });
    } finally {
      await d.stop();
    }
  });
});

describe('permit/deny', () => {
  test('a client outside permit= is cut at connect and logged', async () => {
    const d = await startDaemon('[general]\n[agi]\npermit=127.0.0.2/32\n');
    try {
      const s = await rawConnect(d.port);
      await closedWithin(s, 1000);
      assert.ok(d.logs.some((l) => l.msg.includes('refused') && l.address === '127.0.0.1'));
    } finally {
      await d.stop();
    }
  });
});

describe('Asterisk refuses a command: the session ends at once', () => {
  // answer_timeout stays at its 10 s default: a session that waited for it would fail the bound.
  let d: TestDaemon;
  const returnedAfter: string[] = [];
  before(async () => {
    d = await startDaemon('[general]\n');
    // Read back with MCD, this value needs a SET VARIABLE of its own after the first command.
    await d.daemon.backend.set('quoted', 'needs "quotes" and spaces ');
  });
  after(async () => {
    await d.stop();
    recordRow({ area: 'agi', case: 'Asterisk refuses a command (510, 511, a 520 block)', done: 'a relay put an unknown command, a wrong one, or ANSWER on a dead channel in place of the first command, a later nonce command and a later SET VARIABLE; answer_timeout=10000', measured: `AGI() returned after ${returnedAfter.join(', ')}`, outcome: 'session ended at once with a warning naming the answer (first command: after 500 ms of silence)' });
  });

  // What the relay puts in place of the daemon's command, so that the fake Asterisk gives its
  // own answer to it; the 511 case runs on a channel hung up before AGI() (res_agi.c runs it dead).
  const REFUSALS = [
    { code: '510', line: 'NO SUCH COMMAND\n', dead: false, answer: /^510 Invalid or unknown command\n$/ },
    { code: '520', line: 'GET FULL VARIABLE\n', dead: false, answer: /^520-Invalid command syntax\.  Proper usage follows:\n[^]*\n520 End of proper usage\.\n$/ },
    { code: '511', line: 'ANSWER\n', dead: true, answer: /^511 Command Not Permitted on a dead channel or intercept routine\n$/ },
  ];
  // Which command is refused: the first (the nonce command), a later nonce command (mcdset reads
  // MCDTTL first, then writes its result), a later SET VARIABLE (MCD's quoted value).
  const WHERE = [
    { what: 'the first command', script: 'MCD', args: ['quoted'], at: 1, verb: 'GET FULL VARIABLE' },
    { what: 'a later nonce command', script: 'mcdset', args: ['refused-later', 'v'], at: 2, verb: 'GET FULL VARIABLE' },
    { what: 'a later SET VARIABLE', script: 'MCD', args: ['quoted'], at: 2, verb: 'SET VARIABLE MCD' },
  ];

  for (const refusal of REFUSALS) {
    for (const where of WHERE) {
      test(`${refusal.code} to ${where.what}: closed well before answer_timeout, with a warning`, async () => {
        const ch = new FakeChannel({ variables: { MCDRESULT: 'before' } });
        if (refusal.dead) ch.hangup();
        const relay = await startAgiRelay(d.port, (n) => (n === where.at ? Buffer.from(refusal.line) : undefined));
        const logsBefore = d.logs.length;
        try {
          const run = await ch.agi(`agi://127.0.0.1:${relay.port}/${where.script}`, where.args);
          const answers = run.transcript.flatMap((e) => (e.dir === 'answer' ? [e.data.toString('latin1')] : []));
          assert.match(answers[where.at - 1] ?? '', refusal.answer, 'the fake Asterisk gave its own refusal');
          assert.equal(answers.length, where.at, 'no command after the refusal');
          assert.ok(run.durationMs < 2000, `AGI() returned after ${run.durationMs} ms`);
          returnedAfter.push(`${refusal.code} to ${where.what}: ${run.durationMs} ms`);
          assert.equal(run.status, 'SUCCESS');
          assert.ok(run.transcript.some((e) => e.dir === 'event' && e.what === 'server-closed'), 'the daemon ended the session (FIN)');
          const firstLine = (answers[where.at - 1] ?? '').split('\n')[0]!;
          const warned = d.logs.slice(logsBefore).filter((l) => l.level >= 40 && String(l.msg).includes(`Asterisk answered ${JSON.stringify(firstLine)}`));
          assert.equal(warned.length, 1, JSON.stringify(d.logs.slice(logsBefore)));
          assert.ok(String(warned[0]!.msg).includes(`to ${where.verb}`), String(warned[0]!.msg));
          // Refused at the first command, nothing reached the channel.
          if (where.at === 1) assert.equal(ch.getVar('MCDRESULT'), 'before');
          if (where.script === 'MCD') assert.equal(ch.getVar('MCD'), undefined, 'the value was never written');
        } finally {
          relay.close();
        }
      });
    }
  }

  test('a smuggled refusal that arrives after the first command, the rest of the block later, is skipped', async () => {
    // Asterisk's own writes, delayed as TCP may delay them (Nagle waiting for an ACK): the key
    // argument ends the block early, the daemon sends its first command, then the smuggled 510
    // arrives, then the rest of the block, then Asterisk's answer to that command.
    const s = await rawConnect(d.port);
    const lines = readLines(s);
    s.write(['agi_network: yes', 'agi_network_script: mcdset', 'agi_channel: Local/s@hostile-00000001;2', 'agi_arg_1: late', '', ''].join('\n'));
    const first = await lines.next();
    const nonce = /^GET FULL VARIABLE "([0-9a-f]{16})/.exec(first)?.[1];
    assert.ok(nonce !== undefined, first);
    s.write('510 Invalid or unknown command\n');
    await sleep(REFUSAL_SETTLE_MS / 5);
    s.write('agi_arg_2: v\n\n');
    s.write(`200 result=1 (${nonce}0:)\n`);
    const second = await lines.next();
    assert.match(second, /^GET FULL VARIABLE ".*\$\{SET\(MCDRESULT=38\)\}"$/, 'the refusal was a stray line: the write is refused with 38');
    s.destroy();
    assert.equal(await d.daemon.backend.get('late'), null);
  });

  test('refusals an argument smuggles before the first answer are still skipped: 38, nothing stored', async () => {
    const smuggled = [
      '510 Invalid or unknown command',
      '511 Command Not Permitted on a dead channel or intercept routine',
      '520-Invalid command syntax.  Proper usage follows:\nSets a variable to the current channel.\n520 End of proper usage.',
    ];
    for (const lines of smuggled) {
      // In the key, more environment lines follow; at the end of the value, only the empty line
      // that closes the block does.
      for (const args of [[`k-smuggled\n\n${lines}`, 'v'], ['k-smuggled', `v\n\n${lines}`]]) {
        const ch = new FakeChannel();
        const run = await ch.agi(d.url('mcdset'), args);
        assert.equal(run.status, 'SUCCESS');
        assert.equal(ch.getVar('MCDRESULT'), '38', JSON.stringify(args));
        assert.equal(await d.daemon.backend.get('k-smuggled'), null);
      }
    }
  });
});
