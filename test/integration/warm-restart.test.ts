// The embedded store's data survives what an administrator does to the daemon process: SIGTERM
// and a start again (every key, counter and TTL back), kill -9 (everything older than one
// snapshot interval back), a damaged, cut, foreign or newer snapshot file (the daemon starts,
// says why, keeps the file aside), a file bigger than the memory cap (the most recent items),
// SIGHUP reloads that change the cap or the prefix (nothing wiped), and FastAGI load while
// snapshots are written (no session fails). The daemon is the built CLI in its own process.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';

import { MemoryStore } from '../../src/store/memory-store.js';
import { writeSnapshot } from '../../src/store/snapshot-file.js';
import { recordRow, startLoad } from '../support/agi-load.js';
import { startCli, type DaemonProcess, type LogLine } from '../support/daemon-process.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { freePort } from '../support/memcached.js';

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-warm-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const msgIncludes = (text: string) => (l: LogLine): boolean => String(l.msg).includes(text);

interface Instance {
  readonly d: DaemonProcess;
  readonly port: number;
  call(script: string, args: string[], variables?: Record<string, string>): Promise<FakeChannel>;
  term(): Promise<number | null>;
}

/** A daemon on `config` (its [general] lines; the [agi] port is added), listening. */
async function serve(name: string, general: string): Promise<Instance> {
  const port = await freePort();
  const path = join(dir, `${name}.conf`);
  writeFileSync(path, `[general]\n${general}[agi]\nport=${port}\nmax_sessions=5000\n[http]\nenabled=no\n`);
  const d = startCli(dir, ['--config', path]);
  await d.waitFor(msgIncludes('listening'), 20_000);
  return {
    d,
    port,
    async call(script, args, variables = {}) {
      const ch = new FakeChannel({ variables });
      await ch.agi(`agi://127.0.0.1:${port}/${script}`, args);
      return ch;
    },
    async term() {
      d.child.kill('SIGTERM');
      return d.exited;
    },
  };
}

async function read(i: Instance, key: string): Promise<{ rc: string | undefined; value: string | undefined }> {
  const ch = await i.call('MCD', [key]);
  return { rc: ch.getVar('MCDRESULT'), value: ch.getVar('MCD') };
}

async function set(i: Instance, key: string, value: string, ttl?: number): Promise<void> {
  const ch = await i.call('mcdset', [key, value], ttl === undefined ? {} : { MCDTTL: String(ttl) });
  assert.equal(ch.getVar('MCDRESULT'), '0', `mcdset ${key}`);
}

/** Values that would be mangled by a careless encoding: quotes, backslashes, ${...}, commas, UTF-8. */
const valueOf = (i: number): string => `v${i} "q" \\ \${X} , é ${'x'.repeat(i % 50)}`;

describe('warm restart of the embedded store', () => {
  test('SIGTERM, start again: every key, every counter (to 2^64-1) and every TTL is back; the CAS counter carries on', async () => {
    const snapshot = join(dir, 'term', 'store.snapshot');
    const general = `embedded_snapshot=${snapshot}\nkeyprefix=wr:\n`;
    let a = await serve('term', general);
    const N = 300;
    for (let i = 0; i < N; i++) await set(a, `k${i}`, valueOf(i));
    const setAtMs = Date.now();
    await set(a, 'short', 'lives 4 s', 4);
    await set(a, 'long', 'lives an hour', 3600);
    assert.equal((await a.call('mcdcounterset', ['big', '18446744073709551615'])).getVar('MCDRESULT'), '0');
    assert.equal((await a.call('mcdcounterset', ['calls', '0'])).getVar('MCDRESULT'), '0');
    for (let i = 0; i < 7; i++) await a.call('MCDCOUNTER', ['calls', '1']);
    assert.equal(await a.term(), 0);
    const saved = await a.d.waitFor(msgIncludes('embedded store saved'));
    assert.equal(saved.why, 'stop');
    assert.equal(saved.items, N + 4);

    a = await serve('term', general);
    try {
      const restored = await a.d.waitFor(msgIncludes('restored'));
      assert.equal(restored.items, N + 4);
      for (let i = 0; i < N; i++) assert.deepEqual(await read(a, `k${i}`), { rc: '0', value: valueOf(i) }, `k${i}`);
      assert.equal((await a.call('MCDCOUNTER', ['big', '0'])).getVar('MCDCOUNTER'), '18446744073709551615');
      assert.equal((await a.call('MCDCOUNTER', ['big', '1'])).getVar('MCDCOUNTER'), '0', 'still a uint64 counter: it wraps');
      assert.equal((await a.call('MCDCOUNTER', ['calls', '1'])).getVar('MCDCOUNTER'), '8');
      assert.deepEqual(await read(a, 'short'), { rc: '0', value: 'lives 4 s' });
      // The TTL is absolute: the key dies 4 s after it was set, restart or not.
      await sleep(Math.max(0, setAtMs + 5_100 - Date.now()));
      assert.deepEqual(await read(a, 'short'), { rc: '16', value: '' });
      assert.deepEqual(await read(a, 'long'), { rc: '0', value: 'lives an hour' });
      recordRow({
        area: 'embedded store', case: 'SIGTERM and start again',
        done: `${N} keys with awkward bytes, a 4 s and a 1 h TTL, counters at 2^64-1 and 7; SIGTERM; the daemon started again`,
        measured: `saved ${saved.items} items (${saved.bytes} bytes) in ${saved.ms} ms at stop; restored ${restored.items} in ${restored.ms} ms before listening`,
        outcome: 'every value byte-exact, counters exact (2^64-1 wraps to 0), the 4 s key expired on time after the restart',
      });
    } finally {
      await a.term();
    }
  });

  test('kill -9: everything written more than one snapshot interval before is back', async () => {
    const snapshot = join(dir, 'kill', 'store.snapshot');
    const general = `embedded_snapshot=${snapshot}\nembedded_snapshot_interval=1\n`;
    let a = await serve('kill', general);
    for (let i = 0; i < 100; i++) await set(a, `k${i}`, valueOf(i));
    await a.call('mcdcounterset', ['calls', '41']);
    const writtenAtMs = Date.now();
    // The next interval's snapshot has them.
    await a.d.waitFor((l) => String(l.msg).includes('embedded store saved') && Number(l.time === undefined ? 0 : Date.parse(String(l.time))) > writtenAtMs, 5_000);
    await set(a, 'last-moment', 'may be lost');
    a.d.child.kill('SIGKILL');
    await a.d.exited;
    // What a kill in the middle of a write leaves: the dead daemon's temp file beside the snapshot.
    const leftover = join(dir, 'kill', `.store.snapshot.${a.d.child.pid}.tmp`);
    writeFileSync(leftover, 'half a snapshot');

    a = await serve('kill', general);
    try {
      for (let i = 0; i < 100; i++) assert.deepEqual(await read(a, `k${i}`), { rc: '0', value: valueOf(i) }, `k${i}`);
      assert.equal((await a.call('MCDCOUNTER', ['calls', '1'])).getVar('MCDCOUNTER'), '42');
      const lastMoment = (await read(a, 'last-moment')).rc;
      assert.ok(!existsSync(leftover), 'the dead write\'s temp file is cleaned up at start');
      recordRow({
        area: 'embedded store', case: 'kill -9',
        done: '100 keys and a counter; a snapshot interval of 1 s passes; one more key; kill -9; the daemon started again',
        measured: `the key written less than an interval before the kill: ${lastMoment === '0' ? 'there (a snapshot caught it)' : 'lost, as documented'}`,
        outcome: 'everything older than one interval back, byte-exact',
      });
    } finally {
      await a.term();
    }
  });

  test('a damaged, cut, foreign or newer snapshot: the daemon starts empty, says why, and keeps the file aside', async () => {
    const good = join(dir, 'good.snapshot');
    const store = new MemoryStore();
    for (let i = 0; i < 500; i++) await store.set(`k${i}`, valueOf(i));
    await writeSnapshot(store, good);
    const bytes = readFileSync(good);
    const cases: Array<{ name: string; content: Buffer; reason: string }> = [
      { name: 'truncated', content: bytes.subarray(0, Math.floor(bytes.length / 2)), reason: 'truncated' },
      { name: 'flipped', content: flip(bytes, Math.floor(bytes.length / 3)), reason: 'corrupt' },
      { name: 'newer', content: withVersion(bytes, 2), reason: 'future-version' },
      { name: 'foreign', content: Buffer.from('[general]\nserver=localhost\n'), reason: 'not-a-snapshot' },
    ];
    const measured: string[] = [];
    for (const c of cases) {
      const folder = join(dir, `bad-${c.name}`);
      const snapshot = join(folder, 'store.snapshot');
      const a = await serveWithFile(`bad-${c.name}`, snapshot, c.content);
      try {
        const line = await a.d.waitFor(msgIncludes('not loaded'));
        assert.equal(line.reason, c.reason, c.name);
        assert.equal(line.level, 50, 'logged as an error');
        assert.ok(typeof line.movedTo === 'string' && existsSync(line.movedTo), `${c.name}: moved aside`);
        assert.deepEqual(readFileSync(line.movedTo as string), c.content, `${c.name}: the file is kept as it was`);
        assert.equal((await read(a, 'k1')).rc, '16', 'nothing half-loaded');
        await set(a, 'k1', 'new');
        assert.deepEqual(await read(a, 'k1'), { rc: '0', value: 'new' }, 'serving');
        measured.push(`${c.name}: "${String(line.msg).replace(/^snapshot \S+ not loaded: /, '').replace(/; moved aside.*$/, '')}"`);
      } finally {
        assert.equal(await a.term(), 0);
      }
      // The next stop wrote a good snapshot in its place.
      assert.deepEqual(readdirSync(folder).filter((f) => f === 'store.snapshot'), ['store.snapshot']);
    }
    recordRow({
      area: 'embedded store', case: 'damaged snapshot files',
      done: 'the daemon started on a snapshot cut in half, one with a flipped byte, one of format version 2, and a config file in its place',
      measured: measured.join('; '),
      outcome: 'started every time, empty, with an error line giving the reason; the file kept aside byte for byte',
    });
  });

  test('a snapshot bigger than embedded_max_memory: the most recently used items are loaded, the file is kept aside whole', async () => {
    const store = new MemoryStore({ maxBytes: 8 * 1_048_576 });
    const value = 'x'.repeat(2000);
    for (let i = 0; i < 3000; i++) await store.set(`k${i}`, value);
    const folder = join(dir, 'big');
    const snapshot = join(folder, 'store.snapshot');
    const content = await snapshotBytes(store);
    const a = await serveWithFile('big', snapshot, content, 'embedded_max_memory=1\n');
    try {
      const line = await a.d.waitFor(msgIncludes('holds more than embedded_max_memory'));
      assert.equal(line.level, 40, 'a warning');
      assert.ok(Number(line.items) > 400 && Number(line.items) < 530, `about 1 MiB of 2 KB items: ${String(line.items)}`);
      assert.equal(Number(line.items) + Number(line.evicted), 3000);
      assert.equal((await read(a, 'k2999')).rc, '0', 'the most recent item is there');
      assert.equal((await read(a, 'k0')).rc, '16', 'the least recent is not');
      assert.deepEqual(readFileSync(line.movedTo as string), content, 'the whole file kept aside');
      recordRow({
        area: 'embedded store', case: 'snapshot bigger than the memory cap',
        done: 'a snapshot of 3000 items of 2 KB (about 6 MiB) loaded with embedded_max_memory=1',
        measured: `loaded ${String(line.items)}, ${String(line.evicted)} did not fit (least recently used first); ${String(line.ms)} ms`,
        outcome: 'started with the most recent items; the whole file kept aside; a warning says so',
      });
    } finally {
      await a.term();
    }
  });

  test('SIGHUP: a bigger cap keeps everything, a smaller one evicts least recently used (logged with a count), a new keyprefix wipes nothing', async () => {
    const port = await freePort();
    const path = join(dir, 'hup.conf');
    const write = (general: string): void => writeFileSync(path, `[general]\nembedded_snapshot=no\n${general}[agi]\nport=${port}\n[http]\nenabled=no\n`);
    write('embedded_max_memory=4\nkeyprefix=a:\n');
    const d = startCli(dir, ['--config', path]);
    const a: Instance = {
      d,
      port,
      call: async (script, args, variables = {}) => {
        const ch = new FakeChannel({ variables });
        await ch.agi(`agi://127.0.0.1:${port}/${script}`, args);
        return ch;
      },
      term: async () => (d.child.kill('SIGTERM'), d.exited),
    };
    const reloaded = async (): Promise<LogLine> => {
      const seen = d.lines.length;
      d.child.kill('SIGHUP');
      await d.waitFor((l) => d.lines.indexOf(l) >= seen && msgIncludes('configuration reloaded')(l));
      return d.lines.slice(seen).find(msgIncludes('configuration reloaded'))!;
    };
    try {
      await d.waitFor(msgIncludes('listening'));
      const value = 'y'.repeat(3000);
      for (let i = 0; i < 1000; i++) await set(a, `k${i}`, value); // about 3 MiB
      write('embedded_max_memory=8\nkeyprefix=a:\n');
      await reloaded();
      assert.equal((await read(a, 'k0')).rc, '0', 'a bigger cap keeps every item');
      assert.equal((await read(a, 'k999')).rc, '0');

      write('embedded_max_memory=1\nkeyprefix=a:\n');
      const seen = d.lines.length;
      await reloaded();
      const evictedLine = d.lines.slice(seen).find(msgIncludes('evicted'));
      assert.ok(evictedLine !== undefined, 'the eviction is logged');
      const evicted = Number(evictedLine.evicted);
      assert.ok(evicted > 600 && evicted < 720, `about 2 MiB of 3 KB items evicted: ${evicted}`);
      // k0 was read just before: recently used, so it stays; k1..k(evicted) went.
      assert.equal((await read(a, 'k0')).rc, '0', 'recently used items stay');
      assert.equal((await read(a, 'k1')).rc, '16', 'least recently used went');
      assert.equal((await read(a, 'k999')).rc, '0');

      write('embedded_max_memory=1\nkeyprefix=b:\n');
      await reloaded();
      assert.equal((await read(a, 'k999')).rc, '16', 'the new prefix names other keys');
      write('embedded_max_memory=1\nkeyprefix=a:\n');
      await reloaded();
      assert.equal((await read(a, 'k999')).rc, '0', 'the items under the old prefix were kept');
      recordRow({
        area: 'embedded store', case: 'SIGHUP changing embedded_max_memory and keyprefix',
        done: '1000 items of 3 KB; cap 4 → 8 → 1 MiB; keyprefix a: → b: → a:',
        measured: `4 → 8 MiB: nothing evicted; 8 → 1 MiB: ${evicted} least recently used evicted and logged; prefix changes: nothing lost`,
        outcome: 'no reload wipes the store',
      });
    } finally {
      await a.term();
    }
  });

  test('FastAGI load while a full 64 MiB store is snapshotted back to back: no session fails', async () => {
    const store = new MemoryStore({ maxBytes: 64 * 1_048_576 });
    for (let i = 0; store.stats().evictions === 0; i++) await store.set(`cust:${i}`, `${i}:${'z'.repeat(1000)}`);
    const folder = join(dir, 'load');
    const snapshot = join(folder, 'store.snapshot');
    const a = await serveWithFile('load', snapshot, await snapshotBytes(store), 'embedded_snapshot_interval=0.5\n');
    const items = store.stats().items;
    const restored = await a.d.waitFor(msgIncludes('restored'), 20_000);
    // Reads go to the newer half: the writes of the load evict the oldest items of a full store.
    const fresh = Math.ceil(items / 2) + store.stats().evictions;
    const savesBefore = a.d.lines.filter(msgIncludes('embedded store saved')).length;
    const startMs = Date.now();
    const load = startLoad(48, (c, i) => (i % 2 === 0 ? [`agi://127.0.0.1:${a.port}/MCD`, [`cust:${fresh + ((c * 7919 + i) % (items - fresh))}`]] : [`agi://127.0.0.1:${a.port}/mcdset`, [`load:${c}`, `v${i}`]]));
    const savesSoFar = (): LogLine[] => a.d.lines.filter(msgIncludes('embedded store saved')).slice(savesBefore);
    try {
      // At least 3 s, and until two whole snapshots were written under the load (a busy machine
      // makes each take longer); 30 s at most.
      await sleep(3_000);
      while (savesSoFar().length < 2 && Date.now() - startMs < 30_000) await sleep(100);
    } finally {
      await load.stop();
    }
    const seconds = (Date.now() - startMs) / 1000;
    const saves = savesSoFar();
    assert.equal(await a.term(), 0);
    const failed = load.sessions.filter((s) => s.status !== 'SUCCESS' || s.rc !== '0');
    const rate = Math.round(load.sessions.length / seconds);
    const slowest = load.sessions.reduce((m, s) => Math.max(m, s.endMs - s.startMs), 0);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${load.sessions.length} sessions failed`);
    assert.ok(saves.length >= 2, `snapshots written during the load: ${saves.length} in ${seconds} s`);
    recordRow({
      area: 'embedded store', case: 'sessions during snapshots of a full store',
      done: `a 64 MiB store (${items} items of 1 KB) restored in ${String(restored.ms)} ms; 48 channels of MCD/mcdset for ${seconds.toFixed(1)} s while it is snapshotted every 0.5 s`,
      measured: `${load.sessions.length} sessions (${rate}/s, test process and daemon on 2 cores); ${saves.length} snapshots of ${String(saves[0]?.bytes)} bytes, ${saves.map((s) => String(s.ms)).join('/')} ms each; slowest session ${slowest} ms`,
      outcome: 'no session failed',
    });
  });
});

/** A daemon whose snapshot file holds `content` before it starts. */
async function serveWithFile(name: string, snapshot: string, content: Buffer, general = ''): Promise<Instance> {
  mkdirSync(dirname(snapshot), { recursive: true });
  writeFileSync(snapshot, content);
  return serve(name, `embedded_snapshot=${snapshot}\n${general}`);
}

async function snapshotBytes(store: MemoryStore): Promise<Buffer> {
  const path = join(mkdtempSync(join(dir, 'gen-')), 'store.snapshot');
  await writeSnapshot(store, path);
  return readFileSync(path);
}

function flip(bytes: Buffer, at: number): Buffer {
  const out = Buffer.from(bytes);
  out[at] = out[at]! ^ 0x20;
  return out;
}

function withVersion(bytes: Buffer, version: number): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32BE(version, 8);
  return out;
}
