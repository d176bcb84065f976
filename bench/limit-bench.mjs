#!/usr/bin/env node
// What does a call limit cost through the daemon, next to a counter? The daemon in this process
// (as bench/snapshot-bench.mjs), on its embedded store (embedded_snapshot=no) and on a private
// memcached (`-t 1`, a free 127.0.0.1 port), with bench/agi-load.mjs as the Asterisk side in a
// child process. Interleaved phases at a fixed concurrency, order rotated every round:
//
//   counter     `MCDCOUNTER,calls,1`: one incr, the baseline.
//   call        `mcdlimit,calls,MAX` then `mcdrelease,calls` on the same channel (same
//               agi_uniqueid): a call's lease taken and given back, every mcdlimit gets OK.
//   call-small  the same on a name whose MAX is --small-max (the slots read grow with MAX).
//   full        `mcdlimit,full,MAX` on a name whose MAX slots another PBX holds: every session
//               gets FULL (the steady state of a limit that is reached).
//   count       `MCDLIMITCOUNT,full`: MAX holders counted.
//
// Every phase checks the outputs agi-load saw (MCDRESULT=0, MCDLIMIT=OK or FULL as expected), and
// counts the cache operations the daemon issued (the backend's methods wrapped in this process)
// per session. One JSON line per backend.
//
//   node bench/limit-bench.mjs [--backends embedded,memcached] [--rounds 3] [--phase-seconds 4] [--concurrency 16]
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hostFacts, loadavg } from './lib/env.mjs';
import { startMemcached, memcachedVersion } from './lib/memcached-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: {
  backends: { type: 'string', default: 'embedded,memcached' },
  concurrency: { type: 'string', default: '16' },
  rounds: { type: 'string', default: '3' },
  'phase-seconds': { type: 'string', default: '4' },
  warmup: { type: 'string', default: '1' },
  max: { type: 'string', default: '1000' },
  'small-max': { type: 'string', default: '20' },
  'env-writes': { type: 'string', default: 'lines' },
  phases: { type: 'string', default: 'counter,call,call-small,full,count' },
} });

const dist = (p) => new URL(`../dist/src/${p}`, import.meta.url).href;
const { Daemon } = await import(dist('daemon/daemon.js'));
const { settingsFromConfig } = await import(dist('config/settings.js'));
const { parseConfigText } = await import(dist('config/asterisk-conf.js'));
const { pino } = await import('pino');

const MAX = Number(opt.max);
const SMALL = Number(opt['small-max']);
const concurrency = Number(opt.concurrency);
if (concurrency > SMALL) throw new Error(`--small-max ${SMALL} is below --concurrency ${concurrency}: some call-small sessions would get FULL`);
const OTHER_NODE = 'bench-other-pbx';

// agi-load arguments per phase; `expect` are the tallies every measured session must show.
// Commands per session: a command that changes the cache costs two AGI round trips (the nonce
// check before it, the results after: src/dialplan/runner.ts), a read one.
const PHASES = {
  counter: { load: ['--script', 'MCDCOUNTER', '--args', 'calls,1', '--expect-commands', '2'], expect: { MCDCOUNTER: { MCDRESULT: '0' } } },
  call: { load: ['--script', 'mcdlimit', '--args', `calls,${MAX}`, '--expect-commands', '2', '--then', 'mcdrelease,calls', '--then-expect-commands', '2'],
    expect: { mcdlimit: { MCDLIMIT: 'OK', MCDRESULT: '0' }, mcdrelease: { MCDRESULT: '0' } } },
  'call-small': { load: ['--script', 'mcdlimit', '--args', `calls${SMALL},${SMALL}`, '--expect-commands', '2', '--then', `mcdrelease,calls${SMALL}`, '--then-expect-commands', '2'],
    expect: { mcdlimit: { MCDLIMIT: 'OK', MCDRESULT: '0' }, mcdrelease: { MCDRESULT: '0' } } },
  full: { load: ['--script', 'mcdlimit', '--args', `full,${MAX}`, '--expect-commands', '2'], expect: { mcdlimit: { MCDLIMIT: 'FULL', MCDLIMITCOUNT: String(MAX), MCDRESULT: '0' } } },
  count: { load: ['--script', 'MCDLIMITCOUNT', '--args', 'full', '--expect-commands', '1'], expect: { MCDLIMITCOUNT: { MCDLIMITCOUNT: String(MAX), MCDRESULT: '0' } } },
};
const phaseNames = opt.phases.split(',');
for (const p of phaseNames) if (!PHASES[p]) throw new Error(`unknown phase ${p} (${Object.keys(PHASES).join(', ')})`);
if (phaseNames[0] !== 'counter') throw new Error('the first phase must be counter: the ratios are to it');

const median = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); if (s.length === 0) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const r2 = (x) => Math.round(x * 100) / 100;

// Each agi-load run gets its own agi_uniqueid base, so no channel id repeats within a daemon:
// a repeated one would find the lease it took in an earlier phase and take nothing.
let uidBase = Math.floor(Date.now() / 1000);

for (const backend of opt.backends.split(',')) {
  if (backend !== 'embedded' && backend !== 'memcached') throw new Error(`unknown backend ${backend}`);
  process.stdout.write(JSON.stringify(await runBackend(backend)) + '\n');
}
process.exit(0);

async function runBackend(kind) {
  const mc = kind === 'memcached' ? await startMemcached({ threads: 1 }) : null;
  try {
    // embedded_snapshot=no: a benchmark must not write (or load) the machine's snapshot in its state directory.
    const settings = settingsFromConfig(parseConfigText(
      `[general]\nembedded_snapshot=no\n${mc ? `server=${mc.address}\n` : ''}[agi]\nmax_sessions=10000\n[http]\nenabled=no\n`, 'limit-bench.conf'));
    settings.agi.port = 0;
    const daemon = await Daemon.start(settings, pino({ level: 'error' }));
    try {
      return await measure(kind, daemon, mc);
    } finally {
      await daemon.stop(5000);
    }
  } finally {
    await mc?.stop();
  }
}

async function measure(kind, daemon, mc) {
  const at = new Date().toISOString();
  const store = daemon.backend;
  const leases = daemon.leases;
  await store.set('calls', '0');
  // MAX holders of `full` from another PBX: written as the engine lays out a limit
  // (src/leases/engine.ts: slot keys `mcdlimit:NAME:I` holding `<node_id> <agi_uniqueid>`, and
  // the bound `mcdlimit:NAME:max`), then checked through the engine. Through the engine itself
  // each fill would read every slot; the layout is the same either way.
  await store.set('mcdlimit:full:max', String(MAX));
  await Promise.all(Array.from({ length: MAX }, (_, i) => store.set(`mcdlimit:full:${i}`, `${OTHER_NODE} fill.${i}`, { ttl: leases.leaseTtl })));
  const filled = await leases.count('full');
  if (filled !== MAX) throw new Error(`full holds ${filled} leases, not ${MAX}`);

  // Count the cache operations the daemon issues (the dialplan and the lease engine both call the
  // backend's methods through this object).
  const ops = {};
  for (const op of ['get', 'getMulti', 'gets', 'set', 'add', 'cas', 'deleteCas', 'incr', 'decr', 'delete', 'touch']) {
    const orig = store[op];
    if (typeof orig !== 'function') continue;
    store[op] = function counted(...args) { ops[op] = (ops[op] ?? 0) + 1; return orig.apply(this, args); };
  }

  const phases = [];
  for (let round = 1; round <= Number(opt.rounds); round++) {
    // Order rotated every round, so drift in the box's load hits every phase alike.
    const shift = (round - 1) % phaseNames.length;
    const order = [...phaseNames.slice(shift), ...phaseNames.slice(0, shift)];
    for (const phase of order) phases.push({ round, ...(await runPhase(phase, daemon.address.port, ops)) });
  }
  const leftCalls = await leases.count('calls');
  const leftSmall = await leases.count(`calls${SMALL}`);

  const of = (phase) => phases.filter((p) => p.phase === phase);
  const ratioTo = (phase, key, baseKey = 'sessionsPerSec') => median(of(phase).map((p) => {
    const b = phases.find((x) => x.phase === 'counter' && x.round === p.round);
    return b ? p[key] / b[baseKey] : NaN;
  }));
  const summary = {};
  for (const phase of phaseNames) {
    const ps = of(phase);
    const s = {
      sessionsPerSec: median(ps.map((p) => p.sessionsPerSec)), p50Us: median(ps.map((p) => p.p50Us)), p99Us: median(ps.map((p) => p.p99Us)),
      ratioSessionsPerSec: r2(ratioTo(phase, 'sessionsPerSec')), ratioP50: r2(ratioTo(phase, 'p50Us', 'p50Us')), ratioP99: r2(ratioTo(phase, 'p99Us', 'p99Us')),
      opsPerSession: medianOps(ps.map((p) => p.opsPerSession)), machineBusyPct: median(ps.map((p) => p.machineBusyPct)),
      sessions: ps.reduce((a, p) => a + p.sessions, 0),
    };
    if (ps[0]?.callsPerSec !== undefined) {
      Object.assign(s, {
        callsPerSec: median(ps.map((p) => p.callsPerSec)), callP50Us: median(ps.map((p) => p.callP50Us)), callP99Us: median(ps.map((p) => p.callP99Us)),
        // A call is two sessions: its rate next to the counter's session rate.
        ratioCallsPerSec: r2(ratioTo(phase, 'callsPerSec')),
        steps: ps[0].steps.map((st, i) => ({ script: st.script, p50Us: median(ps.map((p) => p.steps[i].p50Us)), p99Us: median(ps.map((p) => p.steps[i].p99Us)) })),
      });
    }
    summary[phase] = s;
  }
  return {
    tool: 'limit-bench', backend: kind, at, memcached: mc ? { flags: mc.flags, version: memcachedVersion() } : null,
    concurrency, envWrites: opt['env-writes'], rounds: Number(opt.rounds), phaseSeconds: Number(opt['phase-seconds']), max: MAX, smallMax: SMALL,
    leaseTtl: leases.leaseTtl,
    ok: phases.every((p) => p.ok) && leftCalls === 0 && leftSmall === 0,
    leftHolders: { calls: leftCalls, [`calls${SMALL}`]: leftSmall },
    summary, phases, ...hostFacts(), loadAfter: loadavg(),
  };
}

/** Per operation, the median over rounds of operations per session. */
function medianOps(list) {
  const keys = [...new Set(list.flatMap((o) => Object.keys(o)))];
  return Object.fromEntries(keys.map((k) => [k, r2(median(list.map((o) => o[k] ?? 0)))]));
}

async function runPhase(phase, port, ops) {
  const loadBefore = loadavg();
  const child = spawn(process.execPath, [path.join(here, 'agi-load.mjs'), '--server', `127.0.0.1:${port}`,
    '--concurrency', String(concurrency), '--duration', opt['phase-seconds'], '--warmup', opt.warmup, '--env-writes', opt['env-writes'],
    '--uid-base', String(uidBase++), '--tally', 'MCDRESULT,MCDLIMIT,MCDLIMITCOUNT', '--label', phase, ...PHASES[phase].load],
  { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  // The operations counted over agi-load's measured window.
  let opsAtOpen = null;
  let opsInWindow = {};
  child.on('message', (m) => {
    if (m.measuring) opsAtOpen = { ...ops };
    else opsInWindow = Object.fromEntries(Object.keys(ops).map((k) => [k, ops[k] - (opsAtOpen?.[k] ?? 0)]).filter(([, n]) => n > 0));
  });
  const code = await new Promise((r) => child.once('exit', r));
  const agi = JSON.parse(out.trim().split('\n').pop());
  const outcomes = checkTally(PHASES[phase].expect, agi.tally ?? {}, agi);
  return {
    phase, ok: agi.ok && code === 0 && outcomes.ok, outcomeError: outcomes.error, sessions: agi.sessions, sessionsPerSec: agi.sessionsPerSec,
    p50Us: agi.p50Us, p99Us: agi.p99Us, p999Us: agi.p999Us, maxUs: agi.maxUs,
    ...(agi.calls === undefined ? {} : { calls: agi.calls, callsPerSec: agi.callsPerSec, callP50Us: agi.call.p50Us, callP99Us: agi.call.p99Us, steps: agi.steps }),
    opsPerSession: Object.fromEntries(Object.entries(opsInWindow).map(([k, n]) => [k, r2(n / Math.max(1, agi.sessions))])),
    tally: agi.tally, machineBusyPct: agi.machineBusyPct, loadBefore,
  };
}

/** Every measured session of each script showed the expected value of each variable. */
function checkTally(expect, tally, agi) {
  for (const [script, vars] of Object.entries(expect)) {
    const sessions = agi.steps ? agi.steps.find((s) => s.script === script)?.sessions : agi.sessions;
    for (const [name, value] of Object.entries(vars)) {
      const seen = tally[script]?.[name] ?? {};
      const other = Object.entries(seen).filter(([v]) => v !== value);
      // A session whose outputs came just before the window opened counts as measured without
      // its values tallied (and one just after the close the other way): up to one per channel.
      if (other.length > 0 || (seen[value] ?? 0) < sessions - concurrency) {
        return { ok: false, error: `${script}: ${name} was ${JSON.stringify(seen)}, expected ${value} in all ${sessions} sessions` };
      }
    }
  }
  return { ok: true, error: null };
}
