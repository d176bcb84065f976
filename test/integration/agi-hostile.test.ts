// Hostile FastAGI sessions (issue 3 "Done when"; SPEC §3): arguments that smuggle lines past
// the environment block, oversized lines, an environment that never ends, random bytes, abrupt
// closes, more sessions than max_sessions. Each is refused or closed; sessions running beside
// it are not harmed, and nothing smuggled is ever taken for an answer or reaches the cache.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { FakeChannel } from '../support/fake-asterisk.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';

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
  });

  test('an oversized environment line closes that session at once; the others go on', async () => {
    const s = await rawConnect(d.port);
    const closed = closedWithin(s, 2000);
    s.write(ENV[0] + '\nagi_network_script: ' + 'x'.repeat(5000));
    await Promise.all([probe(), probe()]);
    await closed;
  });

  test('an environment block that never ends is closed at env_timeout', async () => {
    const s = await rawConnect(d.port);
    const closed = closedWithin(s, 3000);
    const drip = setInterval(() => s.writable && s.write('agi_x: y\n'), 50);
    try {
      await probe();
      const ms = await closed;
      assert.ok(ms >= 300 && ms < 2000, `closed after ${ms} ms`);
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
    await Promise.all([closedA, closedB]);
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
  });

  test('Asterisk silent after the environment: the session ends at answer_timeout', async () => {
    const s = await rawConnect(d.port);
    const closed = closedWithin(s, 4000);
    s.write(ENV.join('\n') + '\nagi_arg_1: probe\n\n');
    const ms = await closed;
    assert.ok(ms >= 900, `closed after ${ms} ms`);
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
