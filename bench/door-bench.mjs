#!/usr/bin/env node
// The inline door (src/http/door.ts) next to FastAGI: `GET /MCD/key<N>` over keep-alive HTTP
// (what Asterisk's CURL() sends) against an `MCD` FastAGI session for the same key, at the same
// concurrencies, through the same daemon. The daemon runs in this process (as
// bench/limit-bench.mjs), on its embedded store (embedded_snapshot=no) and on a private memcached
// (`-t 1`, a free 127.0.0.1 port), with 1,000 keys of 100 bytes preloaded through the door; the
// load runs in a child process: bench/http-load.mjs (node:http Agent, keepAlive, maxSockets = N,
// closed loop) or bench/agi-load.mjs (--script MCD, env written line by line, as the FastAGI
// table of BENCHMARKS.md). Every reply is checked (X-MCD-Result 0 and the 100-byte body; MCDRESULT=0).
//
// Interleaved phases, order rotated every round: for each concurrency, door then agi, or agi then
// door. The daemon's CPU per request is process.cpuUsage() of this process (which runs only the
// daemon) over the child's measured window, which the child marks over IPC; memcached's CPU comes
// from /proc. Cells are medians over the rounds, the ratio door ÷ FastAGI the median of the
// per-round ratios. One JSON line per backend.
//
//   node bench/door-bench.mjs [--backends embedded,memcached] [--rounds 3] [--phase-seconds 3] [--concurrency 1,16,128]
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBenchDaemon } from './lib/daemon.mjs';
import { hostFacts, loadavg, procCpuSeconds } from './lib/env.mjs';
import { startMemcached, memcachedVersion } from './lib/memcached-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: {
  backends: { type: 'string', default: 'embedded,memcached' },
  concurrency: { type: 'string', default: '1,16,128' },
  rounds: { type: 'string', default: '3' },
  'phase-seconds': { type: 'string', default: '3' },
  warmup: { type: 'string', default: '1' },
  keys: { type: 'string', default: '1000' },
  'value-size': { type: 'string', default: '100' },
  'env-writes': { type: 'string', default: 'lines' },
} });

const KEYS = Number(opt.keys);
const VALUE_SIZE = Number(opt['value-size']);
const concurrencies = opt.concurrency.split(',').map(Number);
const median = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); if (s.length === 0) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;

for (const backend of opt.backends.split(',')) {
  if (backend !== 'embedded' && backend !== 'memcached') throw new Error(`unknown backend ${backend}`);
  process.stdout.write(JSON.stringify(await runBackend(backend)) + '\n');
}
process.exit(0);

async function runBackend(kind) {
  const mc = kind === 'memcached' ? await startMemcached({ threads: 1 }) : null;
  try {
    // max_connections above the largest concurrency, so the listener never refuses one of ours.
    const maxConnections = Math.max(256, ...concurrencies.map((c) => c * 2));
    const daemon = await startBenchDaemon(
      `[general]\nembedded_snapshot=no\n${mc ? `server=${mc.address}\n` : ''}[agi]\nmax_sessions=10000\n[http]\nenabled=yes\nmax_connections=${maxConnections}\n`, 'door-bench.conf');
    try {
      return await measure(kind, daemon, mc);
    } finally {
      await daemon.stop(5000);
    }
  } finally {
    await mc?.stop();
  }
}

/** The value of key<i>: VALUE_SIZE bytes, unreserved characters only, so it rides a path segment as is. */
function valueText(i) { return `v${i}-`.padEnd(VALUE_SIZE, 'x'); }

async function preload(port) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const put = (i) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: `/mcdset/key${i}/${valueText(i)}`, agent }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 && res.headers['x-mcd-result'] === '0' ? resolve() : reject(new Error(`preload key${i}: ${res.statusCode} ${res.headers['x-mcd-result']}`))));
    }).on('error', reject);
  });
  for (let i = 0; i < KEYS; i += 16) await Promise.all(Array.from({ length: Math.min(16, KEYS - i) }, (_, j) => put(i + j)));
  agent.destroy();
}

async function measure(kind, daemon, mc) {
  const at = new Date().toISOString();
  const httpPort = daemon.httpAddress.port;
  await preload(httpPort);
  const phases = [];
  for (let round = 1; round <= Number(opt.rounds); round++) {
    // Order rotated every round, so drift in the box's load hits both transports alike.
    const order = round % 2 === 1 ? ['door', 'agi'] : ['agi', 'door'];
    for (const c of concurrencies) {
      for (const transport of order) phases.push({ round, ...(await runPhase(transport, c, daemon, mc)) });
    }
  }
  const summary = {};
  for (const c of concurrencies) {
    const of = (t) => phases.filter((p) => p.transport === t && p.concurrency === c);
    const cell = (t) => ({
      perSec: median(of(t).map((p) => p.perSec)), p50Us: median(of(t).map((p) => p.p50Us)), p99Us: median(of(t).map((p) => p.p99Us)),
      daemonCpuUs: median(of(t).map((p) => p.daemonCpuUs)), memcachedCpuUs: median(of(t).map((p) => p.memcachedCpuUs)),
      clientCpuUs: median(of(t).map((p) => p.clientCpuUs)), perSecByRound: of(t).map((p) => p.perSec),
    });
    const ratio = (key) => r2(median(of('door').map((d) => {
      const a = phases.find((p) => p.transport === 'agi' && p.concurrency === c && p.round === d.round);
      return a ? d[key] / a[key] : NaN;
    })));
    summary[c] = { door: cell('door'), agi: cell('agi'), ratioPerSec: ratio('perSec'), ratioDaemonCpu: ratio('daemonCpuUs'), ratioP99: ratio('p99Us') };
  }
  return {
    bench: 'door', backend: kind, at, host: hostFacts(), memcached: mc ? `${memcachedVersion()} (${mc.flags})` : null,
    rounds: Number(opt.rounds), phaseSeconds: Number(opt['phase-seconds']), concurrencies, keys: KEYS, valueSize: VALUE_SIZE,
    envWrites: opt['env-writes'], ok: phases.every((p) => p.ok), summary, phases,
  };
}

async function runPhase(transport, concurrency, daemon, mc) {
  const args = transport === 'door'
    ? [path.join(here, 'http-load.mjs'), '--server', `127.0.0.1:${daemon.httpAddress.port}`, '--path', `/MCD/key{n%${KEYS}}`,
      '--expect-result', '0', '--expect-length', String(VALUE_SIZE)]
    : [path.join(here, 'agi-load.mjs'), '--server', `127.0.0.1:${daemon.address.port}`, '--script', 'MCD', '--args', `key{n%${KEYS}}`,
      // MCD is a read: one AGI command (the GET FULL VARIABLE that sets ${MCD} and MCDRESULT, src/dialplan/runner.ts).
      '--expect-commands', '1', '--env-writes', opt['env-writes'], '--tally', 'MCDRESULT'];
  args.push('--concurrency', String(concurrency), '--duration', opt['phase-seconds'], '--warmup', opt.warmup, '--label', `${transport}-c${concurrency}`);
  const loadBefore = loadavg();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  let cpu0 = null;
  let mc0 = NaN;
  let cpu = null;
  let mcS = NaN;
  child.on('message', (m) => {
    if (m?.measuring === true) { cpu0 = process.cpuUsage(); mc0 = mc ? procCpuSeconds(mc.pid) : NaN; }
    if (m?.measuring === false && cpu0 !== null) { cpu = process.cpuUsage(cpu0); mcS = mc ? procCpuSeconds(mc.pid) - mc0 : NaN; }
  });
  const code = await new Promise((r) => child.once('exit', r));
  const res = JSON.parse(out.trim().split('\n').pop());
  const n = transport === 'door' ? res.requests : res.sessions;
  let ok = res.ok && code === 0 && cpu !== null;
  if (transport === 'agi') {
    const results = res.tally?.MCD?.MCDRESULT ?? {};
    // Every MCDRESULT seen in the window is 0 (a session is tallied when its result is set, and
    // counted when it ends, so the counts may differ by the sessions in flight at the edges).
    ok &&= Object.keys(results).length === 1 && results['0'] > 0;
  }
  return {
    transport, concurrency, ok, perSec: transport === 'door' ? res.requestsPerSec : res.sessionsPerSec, n,
    p50Us: res.p50Us, p99Us: res.p99Us, maxUs: res.maxUs,
    daemonCpuUs: cpu && n ? r1((cpu.user + cpu.system) / n) : null,
    memcachedCpuUs: Number.isFinite(mcS) && n ? r1((mcS * 1e6) / n) : null,
    clientCpuUs: transport === 'door' ? res.clientCpuUsPerRequest : res.clientCpuUsPerSession,
    connections: res.connections, machineBusyPct: res.machineBusyPct, loadBefore, firstError: res.firstError ?? null,
  };
}
