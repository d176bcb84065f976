#!/usr/bin/env node
// Memory and linearity of the FastAGI daemon over a long run (BENCHMARKS.md, "Daemon over 60 s at 128 sessions"): the daemon in this
// process (so its heap can be measured after a forced GC), bench/agi-load.mjs as the Asterisk
// side in a child process, --concurrency sessions in flight for --duration seconds. Samples heap
// after GC and RSS every --every seconds, and the sessions done in each interval (a flat rate
// means cost grows linearly with sessions). One JSON line.
import { spawn } from 'node:child_process';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { hostFacts } from './lib/env.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({ options: {
  concurrency: { type: 'string', default: '128' }, duration: { type: 'string', default: '60' }, every: { type: 'string', default: '10' },
  memcached: { type: 'string', default: '' },
} });
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');
const heapMB = () => { gc(); gc(); return Math.round(process.memoryUsage().heapUsed / 1e4) / 100; };
const rssMB = () => Math.round(process.memoryUsage().rss / 1e4) / 100;

const dist = (p) => new URL(`../dist/src/${p}`, import.meta.url).href;
const { Daemon } = await import(dist('daemon/daemon.js'));
const { settingsFromConfig } = await import(dist('config/settings.js'));
const { parseConfigText } = await import(dist('config/asterisk-conf.js'));
const { pino } = await import('pino');
// embedded_snapshot=no: a benchmark must not write (or load) the machine's snapshot in its state directory.
const settings = settingsFromConfig(parseConfigText(`[general]\nembedded_snapshot=no\n${opt.memcached ? `server=${opt.memcached}\n` : ''}[agi]\nmax_sessions=10000\n[http]\nenabled=no\n`, 'soak.conf'));
settings.agi.port = 0;
const daemon = await Daemon.start(settings, pino({ level: 'error' }));
// Fill the cache the sessions read, so each mcdget is a hit.
for (let i = 0; i < 1000; i++) await daemon.backend.set(`key${i}`, 'hello');

const load = spawn(process.execPath, [path.join(here, 'agi-load.mjs'), '--server', `127.0.0.1:${daemon.address.port}`, '--concurrency', opt.concurrency,
  '--duration', opt.duration, '--warmup', '2', '--env-writes', 'lines', '--expect-commands', '1'], { stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
load.stdout.on('data', (d) => { out += d; });
const exited = new Promise((r) => load.once('exit', r));

const samples = [];
await new Promise((r) => setTimeout(r, 2000)); // the load generator's warmup
const t0 = Date.now();
const base = { heapMB: heapMB(), rssMB: rssMB() };
let served = daemon.sessionsServed;
const every = Number(opt.every) * 1000;
while (Date.now() - t0 < Number(opt.duration) * 1000 - 500) {
  const started = Date.now();
  await new Promise((r) => setTimeout(r, Math.min(every, Number(opt.duration) * 1000 - (Date.now() - t0))));
  const now = daemon.sessionsServed;
  // Sessions per second in this interval: flat over the run means cost grows linearly.
  samples.push({ atS: Math.round((Date.now() - t0) / 1000), sessionsPerSec: Math.round(((now - served) * 1000) / (Date.now() - started)), heapMB: heapMB(), rssMB: rssMB(), openSessions: daemon.sessions });
  served = now;
}
await exited;
const agi = JSON.parse(out.trim().split('\n').pop());
await daemon.stop(5000);
const heaps = samples.map((s) => s.heapMB);
const endHeap = heaps.at(-1);
process.stdout.write(JSON.stringify({
  tool: 'soak', backend: opt.memcached ? 'memcached' : 'embedded', concurrency: Number(opt.concurrency), durationS: Number(opt.duration),
  ok: agi.ok, sessions: agi.sessions, sessionsPerSec: agi.sessionsPerSec, p99Us: agi.p99Us,
  heapStartMB: base.heapMB, heapEndMB: endHeap, heapGrowthPct: Math.round(((endHeap - base.heapMB) / base.heapMB) * 1000) / 10,
  rssStartMB: base.rssMB, rssMaxMB: Math.max(base.rssMB, ...samples.map((s) => s.rssMB)), samples, ...hostFacts(),
}) + '\n');
process.exit(0);
