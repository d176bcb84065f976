#!/usr/bin/env node
// Does writing the embedded store's snapshot stall FastAGI sessions? The daemon in this process
// on its embedded store, filled to its memory cap (embedded_max_memory, 64 MiB by default), with
// bench/agi-load.mjs as the Asterisk side in a child process (as bench/soak.mjs). Interleaved
// phases at a fixed concurrency: `baseline` (no snapshot) and `during` (snapshots back to back for
// the whole window, through writeSnapshot(), the code the daemon's timer runs:
// src/daemon/snapshots.ts). Per phase: the sessions' p50/p99/max latency and sessions/s (from
// agi-load), this process's event-loop delay (perf_hooks.monitorEventLoopDelay: its max is the
// longest stall) and the snapshot's own work between two awaits (timedWalk below). Per variant
// also three snapshots with no load (time, CPU, bytes, items, the same two stall measures), and
// the file read back into a fresh store as a check. One JSON line per variant.
//
//   node bench/snapshot-bench.mjs [--variants realistic,small] [--concurrency 16] [--rounds 5] [--phase-seconds 5]
//
// The snapshot goes to a temporary directory, never to the daemon's default path (the machine's
// state directory).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hostFacts, loadavg } from './lib/env.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: {
  variants: { type: 'string', default: 'realistic,small' },
  concurrency: { type: 'string', default: '16' },
  rounds: { type: 'string', default: '5' },
  'phase-seconds': { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
  'max-memory': { type: 'string', default: '64' },          // MiB, embedded_max_memory
  'env-writes': { type: 'string', default: 'lines' },
} });

const dist = (p) => new URL(`../dist/src/${p}`, import.meta.url).href;
const { Daemon } = await import(dist('daemon/daemon.js'));
const { settingsFromConfig } = await import(dist('config/settings.js'));
const { parseConfigText } = await import(dist('config/asterisk-conf.js'));
const { MemoryStore } = await import(dist('store/memory-store.js'));
const { writeSnapshot, restoreSnapshot } = await import(dist('store/snapshot-file.js'));
const { pino } = await import('pino');

/** Value sizes per variant: a few hundred bytes to a few KiB (log-uniform), or ~100 bytes, where per-item cost dominates. */
const VARIANTS = {
  realistic: () => Math.round(256 * 2 ** (Math.random() * 4)),   // 256 B .. 4 KiB
  small: () => 90 + Math.floor(Math.random() * 21),                // 90 .. 110 B
};
// The pause a session can see is the snapshot's work between two awaits: resume, walk and
// encode the next records, hash them, hand them to a write. writeSnapshot() reaches the store only
// through records() (src/store/snapshot-file.ts), so a walk that times itself sees each such
// stretch: it opens at the first step after an await, and a microtask queued then runs as soon
// as writeSnapshot() awaits again. The event-loop delay also counts what the box's other jobs
// take; this does not (unless the process is descheduled in the middle of one).
const slices = [];
function timedWalk(walk) {
  let start = -1;
  const close = () => { slices.push(performance.now() - start); start = -1; };
  return {
    next(x) {
      if (start < 0) { start = performance.now(); queueMicrotask(close); }
      return walk.next(x);
    },
    return(v) { return walk.return(v); },
    throw(e) { return walk.throw(e); },
    [Symbol.iterator]() { return this; },
  };
}
/** The store as writeSnapshot() sees it, its walk timed; everything else goes to the store itself. */
const timedStore = (store) => new Proxy(store, {
  get(target, key) {
    if (key === 'records') return () => timedWalk(target.records());
    const v = Reflect.get(target, key);
    return typeof v === 'function' ? v.bind(target) : v;
  },
});
// Garbage collection in this process, per phase: with ~100 MB of store on the heap a collection
// is a stall of its own, whether or not a snapshot runs.
const gcs = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push({ ms: e.duration, major: e.detail?.kind === 2 /* NODE_PERFORMANCE_GC_MAJOR */ }); }).observe({ entryTypes: ['gc'] });
const gcStats = (xs) => ({ gcCount: xs.length, gcTotalMs: r1(xs.reduce((a, g) => a + g.ms, 0)), gcMaxMs: r1(Math.max(0, ...xs.map((g) => g.ms))), gcMajor: xs.filter((g) => g.major).length });
const sliceStats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))] * 1000) / 1000;
  return { count: s.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: Math.round((s.at(-1) ?? NaN) * 1000) / 1000 };
};
const median = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); if (s.length === 0) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;
const ms = (ns) => Math.round(ns / 1e4) / 100;
const cpuMs = (since) => { const u = process.cpuUsage(since); return Math.round((u.user + u.system) / 100) / 10; };

for (const variant of opt.variants.split(',')) {
  if (!VARIANTS[variant]) throw new Error(`unknown variant ${variant} (${Object.keys(VARIANTS).join(', ')})`);
  process.stdout.write(JSON.stringify(await runVariant(variant)) + '\n');
}
process.exit(0);

async function runVariant(variant) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'res-memcached-snapshot-bench-'));
  const file = path.join(dir, 'store.snapshot');
  try {
    const settings = settingsFromConfig(parseConfigText(
      `[general]\nembedded_max_memory=${opt['max-memory']}\nembedded_snapshot=${file}\nembedded_snapshot_interval=0\n[agi]\nmax_sessions=10000\n[http]\nenabled=no\n`, path.join(dir, 'bench.conf')));
    settings.agi.port = 0;
    const daemon = await Daemon.start(settings, pino({ level: 'error' }));
    try {
      if (daemon.snapshotStatus?.path !== file) throw new Error(`the daemon would snapshot to ${daemon.snapshotStatus?.path}, not ${file}`);
      return await measureVariant(variant, daemon, file);
    } finally {
      await daemon.stop(5000);   // writes one last snapshot, into the temporary directory
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function measureVariant(variant, daemon, file) {
  const at = new Date().toISOString();
  const loadBefore = loadavg();
  const store = daemon.backend;
  // Fill to the cap: items until the first eviction. Each value is its own buffer, as a value
  // read off a socket is; the bytes are random (the format does not compress).
  const pool = randomBytes(64 * 1024);
  const size = VARIANTS[variant];
  const fillStart = Date.now();
  let filled = 0;
  let valueBytes = 0;
  while (store.stats().evictions === 0) {
    const n = size();
    const value = Buffer.allocUnsafe(n);
    pool.copy(value, 0, (filled * 7919) % (pool.length - n), (filled * 7919) % (pool.length - n) + n);
    await store.set(`cust:${String(filled).padStart(8, '0')}`, value);
    filled++;
    valueBytes += n;
  }
  // The keys the sessions read (agi-load asks for key0..key999), set last so they stay.
  for (let i = 0; i < 1000; i++) await store.set(`key${i}`, 'hello');
  const stats = store.stats();
  const fillMs = Date.now() - fillStart;

  // Snapshots with no sessions running: their time and CPU, and the event loop's longest stall
  // during each (the longest stretch of snapshot work between two awaits, plus whatever the
  // other jobs on the box take), against as long a quiet window with no snapshot (that noise
  // alone).
  const idleRuns = [];
  slices.length = 0;
  for (let i = 0; i < 3; i++) {
    const eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    const cpu = process.cpuUsage();
    const w = await writeSnapshot(timedStore(store), file);
    const cpuUsed = cpuMs(cpu);
    eld.disable();
    const quiet = monitorEventLoopDelay({ resolution: 1 });
    quiet.enable();
    await new Promise((r) => setTimeout(r, w.ms));
    quiet.disable();
    idleRuns.push({ ...w, cpuMs: cpuUsed, loopDelayMaxMs: ms(eld.max), quietLoopDelayMaxMs: ms(quiet.max) });
  }
  const idle = idleRuns.at(-1);
  const idleSlices = sliceStats(slices);
  slices.length = 0;

  const phases = [];
  for (let round = 1; round <= Number(opt.rounds); round++) {
    // Order rotated every round, so drift in the box's load hits both phases alike.
    const order = round % 2 ? ['baseline', 'during'] : ['during', 'baseline'];
    for (const phase of order) phases.push({ round, ...(await runPhase(phase, store, file, daemon.address.port)) });
  }
  // The last snapshot read back into a fresh store (after the phases: a second full store on the
  // heap would slow the collector while they run). The sessions only read, so nothing was added.
  const check = new MemoryStore({ maxBytes: Number(opt['max-memory']) * 1_048_576 });
  const restored = await restoreSnapshot(check, file);
  await check.close();
  const restoredOk = restored.items === stats.items && restored.evicted === 0;
  const of = (phase) => phases.filter((p) => p.phase === phase);
  const summary = (phase) => {
    const ps = of(phase);
    return {
      sessionsPerSec: median(ps.map((p) => p.sessionsPerSec)), p50Us: median(ps.map((p) => p.p50Us)), p99Us: median(ps.map((p) => p.p99Us)),
      maxUs: median(ps.map((p) => p.maxUs)), worstMaxUs: Math.max(...ps.map((p) => p.maxUs)),
      loopDelayMaxMs: median(ps.map((p) => p.loopDelayMaxMs)), worstLoopDelayMaxMs: Math.max(...ps.map((p) => p.loopDelayMaxMs)),
      loopDelayP99Ms: median(ps.map((p) => p.loopDelayP99Ms)), machineBusyPct: median(ps.map((p) => p.machineBusyPct)),
      gcTotalMs: median(ps.map((p) => p.gcTotalMs)), gcMaxMs: median(ps.map((p) => p.gcMaxMs)), worstGcMaxMs: Math.max(...ps.map((p) => p.gcMaxMs)),
    };
  };
  const during = of('during');
  const ratio = (key) => median(during.map((d) => { const b = phases.find((p) => p.phase === 'baseline' && p.round === d.round); return b ? d[key] / b[key] : NaN; }));
  const snapshotMs = during.flatMap((p) => p.snapshotMs);
  return {
    tool: 'snapshot-bench', variant, at, loadBefore, concurrency: Number(opt.concurrency), envWrites: opt['env-writes'], rounds: Number(opt.rounds), phaseSeconds: Number(opt['phase-seconds']),
    ok: restoredOk && phases.every((p) => p.ok) && during.every((p) => p.snapshots > 0),
    store: { items: stats.items, bytes: stats.bytes, limitBytes: stats.limitBytes, meanValueBytes: Math.round(valueBytes / filled), fillMs },
    snapshot: {
      bytes: idle.bytes, items: idle.items, idleMs: median(idleRuns.map((w) => w.ms)), idleCpuMs: median(idleRuns.map((w) => w.cpuMs)),
      mbPerSec: r1(idle.bytes / 1e3 / Math.max(median(idleRuns.map((w) => w.ms)), 1)),
      idleLoopDelayMaxMs: median(idleRuns.map((w) => w.loopDelayMaxMs)), quietLoopDelayMaxMs: median(idleRuns.map((w) => w.quietLoopDelayMaxMs)), idleRuns,
      restoredItems: restored.items, restoreMs: restored.ms,
      duringMsMedian: median(snapshotMs), duringMsMax: Math.max(...snapshotMs), duringCount: snapshotMs.length,
      // Snapshot work between two awaits (see timedWalk): alone, and with the sessions running.
      sliceIdle: idleSlices, sliceDuring: sliceStats(during.flatMap((p) => p.slicesMs)),
    },
    baseline: summary('baseline'), during: summary('during'),
    // Median over rounds of during / baseline of the same round.
    ratio: { p99: r2(ratio('p99Us')), p50: r2(ratio('p50Us')), sessionsPerSec: r2(ratio('sessionsPerSec')) },
    phases: phases.map(({ slicesMs, ...p }) => p), ...hostFacts(), loadAfter: loadavg(),
  };
}

/** One agi-load run; with `during`, snapshots back to back from its start to its end. */
async function runPhase(phase, store, file, port) {
  const loadBefore = loadavg();
  const eld = monitorEventLoopDelay({ resolution: 1 });
  const snapshots = [];
  let windowOpen = false;
  let cpuAtOpen = null;
  let windowCpuMs = NaN;
  let gc = null;
  const child = spawn(process.execPath, [path.join(here, 'agi-load.mjs'), '--server', `127.0.0.1:${port}`,
    '--concurrency', opt.concurrency, '--duration', opt['phase-seconds'], '--warmup', opt.warmup, '--env-writes', opt['env-writes'], '--expect-commands', '1'],
  { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  // agi-load says when its measured window opens and closes: the event-loop delay is taken over the same window.
  child.on('message', (m) => {
    if (m.measuring) { windowOpen = true; cpuAtOpen = process.cpuUsage(); eld.reset(); eld.enable(); gcs.length = 0; } else { windowOpen = false; eld.disable(); windowCpuMs = cpuMs(cpuAtOpen); gc = gcStats(gcs); }
  });
  const exited = new Promise((r) => child.once('exit', r));
  let done = false;
  exited.then(() => { done = true; });
  slices.length = 0;
  if (phase === 'during') {
    while (!done) {
      const inWindow = windowOpen;
      const w = await writeSnapshot(timedStore(store), file);
      if (inWindow || windowOpen) snapshots.push(w);
    }
  }
  const code = await exited;
  const agi = JSON.parse(out.trim().split('\n').pop());
  return {
    phase, ok: agi.ok && code === 0, sessions: agi.sessions, sessionsPerSec: agi.sessionsPerSec, p50Us: agi.p50Us, p99Us: agi.p99Us, p999Us: agi.p999Us, maxUs: agi.maxUs,
    loopDelayMaxMs: ms(eld.max), loopDelayP99Ms: ms(eld.percentile(99)), daemonCpuMs: windowCpuMs, ...gc,
    snapshots: snapshots.length, snapshotMs: snapshots.map((w) => w.ms), slicesMs: slices.splice(0), machineBusyPct: agi.machineBusyPct, loadBefore,
  };
}
