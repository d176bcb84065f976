#!/usr/bin/env node
// What /metrics costs FastAGI: sessions/s of bench/agi-load.mjs (mcdset, closed loop) against
// the daemon with [http] enabled=no (nothing counted: no observer on the memcached client, no
// session metrics) and with it on and GET /metrics scraped every second, as Prometheus would
// (more often than its usual 15 s, to make the cost visible). Both backends (memcached exercises
// the per-request observer of src/cluster/client.ts); phases alternate in order every round, and
// the overhead is the median of the per-round ratios. One JSON line per backend.
//
//   node bench/metrics-bench.mjs [--rounds 3] [--phase-seconds 5] [--concurrency 16]

import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startBenchDaemon } from './lib/daemon.mjs';
import { hostFacts, loadavg } from './lib/env.mjs';
import { startMemcached } from './lib/memcached-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: {
  backends: { type: 'string', default: 'embedded,memcached' },
  concurrency: { type: 'string', default: '16' },
  rounds: { type: 'string', default: '3' },
  'phase-seconds': { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1' },
} });

const median = (xs) => { const s = xs.filter(Number.isFinite).sort((a, b) => a - b); if (s.length === 0) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

for (const backend of opt.backends.split(',')) {
  const mc = backend === 'memcached' ? await startMemcached({ threads: 1 }) : null;
  try {
    const runs = [];
    for (let round = 1; round <= Number(opt.rounds); round++) {
      const order = round % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
      for (const phase of order) runs.push({ round, phase, ...(await runPhase(phase, mc)) });
    }
    const ratios = [];
    for (let round = 1; round <= Number(opt.rounds); round++) {
      const off = runs.find((r) => r.round === round && r.phase === 'off');
      const on = runs.find((r) => r.round === round && r.phase === 'on');
      if (off && on) ratios.push(on.sessionsPerSec / off.sessionsPerSec);
    }
    const overheadPct = Math.round((1 - median(ratios)) * 1000) / 10;
    process.stdout.write(JSON.stringify({
      bench: 'metrics', backend, at: new Date().toISOString(), host: hostFacts(), concurrency: Number(opt.concurrency),
      phaseSeconds: Number(opt['phase-seconds']), ok: runs.every((r) => r.ok),
      offSessionsPerSec: median(runs.filter((r) => r.phase === 'off').map((r) => r.sessionsPerSec)),
      onSessionsPerSec: median(runs.filter((r) => r.phase === 'on').map((r) => r.sessionsPerSec)),
      overheadPct, runs,
    }) + '\n');
  } finally {
    await mc?.stop();
  }
}
process.exit(0);

async function runPhase(phase, mc) {
  const daemon = await startBenchDaemon(
    `[general]\nembedded_snapshot=no\n${mc ? `server=${mc.address}\n` : ''}[agi]\nmax_sessions=10000\n[http]\nenabled=${phase === 'on' ? 'yes' : 'no'}\n`, 'metrics-bench.conf');
  let scrapes = 0;
  let scrapeMs = 0;
  let timer = null;
  try {
    if (phase === 'on') {
      const port = daemon.httpAddress.port;
      timer = setInterval(() => {
        const t = performance.now();
        http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
          res.resume();
          res.on('end', () => { scrapes++; scrapeMs += performance.now() - t; });
        }).on('error', () => undefined);
      }, 1000);
    }
    const loadBefore = loadavg();
    const child = spawn(process.execPath, [path.join(here, 'agi-load.mjs'), '--server', `127.0.0.1:${daemon.address.port}`,
      '--concurrency', opt.concurrency, '--duration', opt['phase-seconds'], '--warmup', opt.warmup, '--script', 'mcdset', '--args', 'k{n},v',
      '--expect-commands', '2', '--label', phase], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    const code = await new Promise((r) => child.once('exit', r));
    const agi = JSON.parse(out.trim().split('\n').pop());
    return { ok: agi.ok && code === 0, sessionsPerSec: agi.sessionsPerSec, p50Us: agi.p50Us, p99Us: agi.p99Us, scrapes, scrapeMsMean: scrapes ? Math.round((scrapeMs / scrapes) * 100) / 100 : null, loadBefore };
  } finally {
    if (timer) clearInterval(timer);
    await daemon.stop(5000);
  }
}
