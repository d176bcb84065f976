// mcdlimit, mcdrelease, MCDLIMITCOUNT, mcdlock and mcdunlock through the daemon, driven by the
// Asterisk-faithful AGI client (channel identity = agi_uniqueid), on the embedded store and on
// real memcached over the text, binary and meta protocols: every code, the hostile arguments, a failing backend, and
// channels of two daemons racing over a 3-server cluster.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { FakeChannel } from '../support/fake-asterisk.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';
import { freePort, startMemcached, type MemcachedProcess } from '../support/memcached.js';

let unique = 0;
const n = (label: string): string => `${label}_${process.pid}_${++unique}`;

async function call(d: TestDaemon, script: string, args: ReadonlyArray<string | Buffer>, ch = new FakeChannel()): Promise<FakeChannel> {
  const run = await ch.agi(d.url(script), args);
  assert.equal(run.status, 'SUCCESS', `AGISTATUS after ${script}: ${run.status}`);
  return ch;
}

const mcs: MemcachedProcess[] = [];
before(async () => {
  mcs.push(...(await Promise.all([startMemcached(), startMemcached(), startMemcached()])));
});
after(async () => {
  await Promise.all(mcs.map((m) => m.stop()));
});

const backends = [
  { name: 'the embedded store', config: () => '[general]\nkeyprefix=t:\nnode_id=pbx1\n' },
  { name: 'memcached, binary protocol', config: () => `[general]\nserver=${mcs[0]!.address}\nbinary_proto=yes\nnode_id=pbx1\n` },
  { name: 'memcached, text protocol', config: () => `[general]\nserver=${mcs[0]!.address}\nbinary_proto=no\nkeyprefix=t:\nnode_id=pbx1\n` },
  { name: 'memcached, meta protocol', config: () => `[general]\nserver=${mcs[0]!.address}\nprotocol=meta\nkeyprefix=m:\nnode_id=pbx1\n` },
];

for (const backend of backends) {
  describe(`lease commands on ${backend.name}`, () => {
    let d: TestDaemon;
    before(async () => {
      d = await startDaemon(backend.config());
    });
    after(async () => {
      await d.stop();
    });

    test('mcdlimit: OK, OK, FULL (MCDRESULT 0 each), again OK without taking more; MCDLIMITCOUNT; mcdrelease 0 then 16', async () => {
      const name = n('lim');
      const [a, b, c] = [new FakeChannel(), new FakeChannel(), new FakeChannel()];
      const expect = async (ch: FakeChannel, limit: string, count: string): Promise<void> => {
        await call(d, 'mcdlimit', [name, '2'], ch);
        assert.deepEqual([ch.getVar('MCDLIMIT'), ch.getVar('MCDLIMITCOUNT'), ch.getVar('MCDRESULT')], [limit, count, '0']);
      };
      await expect(a, 'OK', '1');
      await expect(b, 'OK', '2');
      await expect(c, 'FULL', '2');
      await expect(a, 'OK', '2');
      assert.equal((await call(d, 'MCDLIMITCOUNT', [name])).getVar('MCDLIMITCOUNT'), '2');
      assert.equal((await call(d, 'mcdrelease', [name], c)).getVar('MCDRESULT'), '16');
      assert.equal((await call(d, 'mcdrelease', [name], a)).getVar('MCDRESULT'), '0');
      assert.equal((await call(d, 'mcdrelease', [name], a)).getVar('MCDRESULT'), '16');
      const count = await call(d, 'MCDLIMITCOUNT', [name]);
      assert.deepEqual([count.getVar('MCDLIMITCOUNT'), count.getVar('MCDRESULT')], ['1', '0']);
      await expect(c, 'OK', '2');
      assert.equal((await call(d, 'MCDLIMITCOUNT', [n('unused')])).getVar('MCDLIMITCOUNT'), '0');
    });

    test('mcdlock: OK, TIMEOUT for another after WAIT_MS, mcdunlock 16 for a non-holder, 0 for the holder', async () => {
      const name = n('lock');
      const [a, b] = [new FakeChannel(), new FakeChannel()];
      assert.deepEqual([(await call(d, 'mcdlock', [name], a)).getVar('MCDLOCK'), a.getVar('MCDRESULT')], ['OK', '0']);
      assert.equal((await call(d, 'mcdlock', [name, '0'], a)).getVar('MCDLOCK'), 'OK');
      const started = performance.now();
      assert.deepEqual([(await call(d, 'mcdlock', [name, '150'], b)).getVar('MCDLOCK'), b.getVar('MCDRESULT')], ['TIMEOUT', '0']);
      const waited = performance.now() - started;
      assert.ok(waited >= 140 && waited < 150 + 2000, `waited ${waited} ms`);
      assert.equal((await call(d, 'mcdunlock', [name], b)).getVar('MCDRESULT'), '16');
      // b waits while a unlocks: it gets the lock within its wait.
      const waiting = call(d, 'mcdlock', [name, '3000'], b);
      assert.equal((await call(d, 'mcdunlock', [name], a)).getVar('MCDRESULT'), '0');
      assert.equal((await waiting).getVar('MCDLOCK'), 'OK');
      assert.equal((await call(d, 'mcdunlock', [name], a)).getVar('MCDRESULT'), '16');
      assert.equal((await call(d, 'mcdunlock', [name], b)).getVar('MCDRESULT'), '0');
    });

    test('hostile arguments: a bad NAME 33/126/127, MAX not a whole number 1..1000 or WAIT_MS bad 38, MCDLIMIT/MCDLOCK=ERROR', async () => {
      const cases: Array<[string, Array<string | Buffer>, string, Record<string, string>]> = [
        ['mcdlimit', ['a b', '3'], '33', { MCDLIMIT: 'ERROR', MCDLIMITCOUNT: '' }],
        ['mcdlimit', [Buffer.from('a\x01b'), '3'], '33', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', ['x'.repeat(65), '3'], '126', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', ['', '3'], '127', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m')], '127', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m'), '0'], '38', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m'), '-1'], '38', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m'), '1.5'], '38', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m'), ' 2'], '38', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m'), '1001'], '38', { MCDLIMIT: 'ERROR' }],
        ['mcdlimit', [n('m'), 'ten'], '38', { MCDLIMIT: 'ERROR' }],
        ['mcdrelease', ['a b'], '33', {}],
        ['MCDLIMITCOUNT', ['a\tb'], '33', { MCDLIMITCOUNT: '' }],
        ['mcdlock', ['a b'], '33', { MCDLOCK: 'ERROR' }],
        ['mcdlock', [n('l'), 'soon'], '38', { MCDLOCK: 'ERROR' }],
        ['mcdlock', [n('l'), '60001'], '38', { MCDLOCK: 'ERROR' }],
        ['mcdunlock', [''], '127', {}],
      ];
      for (const [script, args, rc, vars] of cases) {
        const ch = await call(d, script, args);
        const what = `${script} ${args.map(String).join(',')}`;
        assert.equal(ch.getVar('MCDRESULT'), rc, what);
        for (const [name, value] of Object.entries(vars)) assert.equal(ch.getVar(name) ?? '', value, `${what}: ${name}`);
      }
    });
  });
}

test('the backend fails: mcdlimit gives its code and MCDLIMIT=ERROR; mcdlock ERROR; the call goes on', async () => {
  const port = await freePort();
  const d = await startDaemon(`[general]\nserver=127.0.0.1:${port}\nconnect_timeout=200\ntimeout=300\n`);
  try {
    const ch = await call(d, 'mcdlimit', [n('down'), '5']);
    assert.equal(ch.getVar('MCDLIMIT'), 'ERROR');
    assert.notEqual(ch.getVar('MCDRESULT'), '0');
    assert.match(ch.getVar('MCDRESULT') ?? '', /^(3|31|35|47)$/);
    const lock = await call(d, 'mcdlock', [n('down'), '100']);
    assert.equal(lock.getVar('MCDLOCK'), 'ERROR');
    assert.match(lock.getVar('MCDRESULT') ?? '', /^(3|31|35|47)$/);
    assert.match((await call(d, 'MCDLIMITCOUNT', [n('down')])).getVar('MCDRESULT') ?? '', /^(3|31|35|47)$/);
  } finally {
    await d.stop();
  }
});

test('two daemons x 60 channels over a 3-server cluster racing for 10: exactly 10 OK, the count is 10, each release frees its own', async () => {
  const config = (node: string) => `[general]\n${mcs.map((m) => `server=${m.address}`).join('\n')}\nnode_id=${node}\n`;
  const daemons = await Promise.all([startDaemon(config('pbx-a')), startDaemon(config('pbx-b'))]);
  try {
    const name = n('race');
    const channels = Array.from({ length: 120 }, (_, i) => ({ d: daemons[i % 2]!, ch: new FakeChannel() }));
    await Promise.all(channels.map(({ d, ch }) => call(d, 'mcdlimit', [name, '10'], ch)));
    const ok = channels.filter(({ ch }) => ch.getVar('MCDLIMIT') === 'OK');
    assert.equal(ok.length, 10);
    assert.ok(channels.every(({ ch }) => ch.getVar('MCDRESULT') === '0' && ['OK', 'FULL'].includes(ch.getVar('MCDLIMIT') ?? '')));
    assert.equal((await call(daemons[0]!, 'MCDLIMITCOUNT', [name])).getVar('MCDLIMITCOUNT'), '10');
    // Losers cannot release; each winner frees exactly its own slot.
    const losers = channels.filter(({ ch }) => ch.getVar('MCDLIMIT') === 'FULL').slice(0, 20);
    for (const l of losers) assert.equal((await call(l.d, 'mcdrelease', [name], l.ch)).getVar('MCDRESULT'), '16');
    for (let i = 0; i < ok.length; i++) {
      const w = ok[i]!;
      assert.equal((await call(w.d, 'mcdrelease', [name], w.ch)).getVar('MCDRESULT'), '0');
      assert.equal((await call(daemons[1]!, 'MCDLIMITCOUNT', [name])).getVar('MCDLIMITCOUNT'), String(9 - i));
    }
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
  }
});

test('a server hung (SIGSTOP) during mcdlimit/mcdrelease: every call ends with a code within the timeout, no extra holder, nothing left after the TTL', async () => {
  const config = `[general]\n${mcs.map((m) => `server=${m.address}`).join('\n')}\nnode_id=pbx-f\ntimeout=300\nconnect_timeout=300\nlease_ttl=3\n`;
  const d = await startDaemon(config);
  const hung = mcs[2]!;
  try {
    const names = Array.from({ length: 12 }, () => n('fault'));
    const holders = names.map(() => new FakeChannel());
    await Promise.all(names.map((name, i) => call(d, 'mcdlimit', [name, '1'], holders[i])));
    assert.ok(holders.every((ch) => ch.getVar('MCDLIMIT') === 'OK'));
    hung.pause();
    const timed = async (f: () => Promise<FakeChannel>): Promise<FakeChannel> => {
      const started = performance.now();
      const ch = await f();
      const took = performance.now() - started;
      assert.ok(took < 300 * 4 + 1000, `took ${took} ms`);
      return ch;
    };
    // Another channel for each name: FULL, or the hung server's code; never a second holder.
    const others = await Promise.all(names.map((name) => timed(() => call(d, 'mcdlimit', [name, '1']))));
    for (const ch of others) {
      assert.notEqual(ch.getVar('MCDLIMIT'), 'OK');
      if (ch.getVar('MCDLIMIT') === 'ERROR') assert.match(ch.getVar('MCDRESULT') ?? '', /^(3|31|35|47)$/);
      else assert.deepEqual([ch.getVar('MCDLIMIT'), ch.getVar('MCDRESULT')], ['FULL', '0']);
    }
    assert.ok(others.some((ch) => ch.getVar('MCDLIMIT') === 'ERROR'), 'some name lives on the hung server');
    const released = await Promise.all(names.map((name, i) => timed(() => call(d, 'mcdrelease', [name], holders[i]))));
    for (const ch of released) assert.match(ch.getVar('MCDRESULT') ?? '', /^(0|3|31|35|47)$/);
    hung.resume();
    // Whatever could not be released expires with lease_ttl (3 s).
    await new Promise((r) => setTimeout(r, 4200));
    const monitor = await startDaemon(config.replace('pbx-f', 'pbx-m'));
    try {
      for (const name of names) assert.equal((await call(monitor, 'MCDLIMITCOUNT', [name])).getVar('MCDLIMITCOUNT'), '0', name);
    } finally {
      await monitor.stop();
    }
  } finally {
    hung.resume();
    await d.stop();
  }
});

test('a server killed during mcdlimit/mcdlock/mcdrelease: codes within the timeout, never a second holder of a slot or a lock, nothing left after the TTL once it is back', async () => {
  const own = await Promise.all([startMemcached(), startMemcached(), startMemcached()]);
  const config = `[general]\n${own.map((m) => `server=${m.address}`).join('\n')}\nnode_id=pbx-k\ntimeout=300\nconnect_timeout=300\nretry_timeout=0.2\nlease_ttl=3\n`;
  const d = await startDaemon(config);
  const killed = own[1]!;
  try {
    const names = Array.from({ length: 12 }, () => n('killed'));
    const holders = names.map(() => new FakeChannel());
    await Promise.all(names.map((name, i) => call(d, i % 2 === 0 ? 'mcdlimit' : 'mcdlock', i % 2 === 0 ? [name, '1'] : [name], holders[i])));
    assert.ok(holders.every((ch, i) => ch.getVar(i % 2 === 0 ? 'MCDLIMIT' : 'MCDLOCK') === 'OK'));
    await killed.kill();
    const bound = 300 * 4 + 1000;
    const timed = async (f: () => Promise<FakeChannel>): Promise<FakeChannel> => {
      const started = performance.now();
      const ch = await f();
      assert.ok(performance.now() - started < bound, `took ${performance.now() - started} ms`);
      return ch;
    };
    // Another channel for each name: FULL/TIMEOUT, or the dead server's code; never OK.
    const others = await Promise.all(names.map((name, i) => timed(() => call(d, i % 2 === 0 ? 'mcdlimit' : 'mcdlock', i % 2 === 0 ? [name, '1'] : [name, '200']))));
    others.forEach((ch, i) => {
      const got = ch.getVar(i % 2 === 0 ? 'MCDLIMIT' : 'MCDLOCK');
      assert.notEqual(got, 'OK', `${names[i]}: a second holder`);
      if (got === 'ERROR') assert.match(ch.getVar('MCDRESULT') ?? '', /^(3|5|31|35|47)$/);
      else assert.equal(ch.getVar('MCDRESULT'), '0');
    });
    assert.ok(others.some((ch, i) => ch.getVar(i % 2 === 0 ? 'MCDLIMIT' : 'MCDLOCK') === 'ERROR'), 'some name lives on the killed server');
    const released = await Promise.all(names.map((name, i) => timed(() => call(d, i % 2 === 0 ? 'mcdrelease' : 'mcdunlock', [name], holders[i]))));
    for (const ch of released) assert.match(ch.getVar('MCDRESULT') ?? '', /^(0|3|5|31|35|47)$/);
    // Back (empty, as a restarted memcached is); whatever could not be released elsewhere expires.
    await killed.restart();
    await new Promise((r) => setTimeout(r, 4200));
    for (const [i, name] of names.entries()) {
      if (i % 2 === 0) assert.equal((await call(d, 'MCDLIMITCOUNT', [name])).getVar('MCDLIMITCOUNT'), '0', name);
      else assert.equal((await call(d, 'mcdlock', [name])).getVar('MCDLOCK'), 'OK', `${name}: the lock is free again`);
    }
  } finally {
    await d.stop();
    for (const m of own) await m.stop();
  }
});
