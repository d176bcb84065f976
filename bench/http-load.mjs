#!/usr/bin/env node
// Keep-alive HTTP load generator for the inline door (src/http/door.ts), the CURL() side of
// bench/door-bench.mjs: N connections (node:http Agent, keepAlive, maxSockets = N), each a closed
// loop of GET <path>, so N requests are in flight. Every reply is checked: status 200,
// X-MCD-Result as --expect-result and, when given, the body's length. One JSON line on stdout,
// in the shape of bench/agi-load.mjs's (requestsPerSec, p50Us/p99Us, client CPU per request).
//
//   node bench/http-load.mjs --server 127.0.0.1:4574 --concurrency 16 --duration 4 --path '/MCD/key{n%1000}'
//
// --path   `{n%M}` becomes the request number modulo M (the keys a bench preloaded), `{n}` the number.
// A parent that started us with an IPC channel gets {measuring: true|false} at the window's
// edges, to time its own CPU over the same window (as bench/agi-load.mjs does).
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Histogram } from './lib/histogram.mjs';
import { parseAddress } from './lib/mcstats.mjs';
import { loadavg, cpuTimes, busyPercent, hostFacts } from './lib/env.mjs';

const { values: opt } = parseArgs({
  options: {
    server: { type: 'string', default: '127.0.0.1:4574' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '1' },
    path: { type: 'string', default: '/MCD/key{n%1000}' },
    'expect-result': { type: 'string', default: '0' },
    'expect-length': { type: 'string', default: '' },
    'request-timeout': { type: 'string', default: '10' },
    label: { type: 'string', default: '' },
  },
});
const { host, port } = parseAddress(opt.server, 4574);
const concurrency = Number(opt.concurrency);
const expectResult = opt['expect-result'];
const expectLength = opt['expect-length'] === '' ? null : Number(opt['expect-length']);
const timeoutMs = Number(opt['request-timeout']) * 1000;
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
const pathOf = (n) => opt.path.replace(/\{n%(\d+)\}/g, (_, m) => String(n % Number(m))).replaceAll('{n}', String(n));

const hist = new Histogram();
let measuring = false;
let stopping = false;
let requests = 0;
let errors = 0;
let bad = 0;
let firstError = null;
let seq = 0;
const sockets = new Set();

function oneRequest(n) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const req = http.get({ host, port, path: pathOf(n), agent, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const length = chunks.reduce((a, c) => a + c.length, 0);
        const rc = res.headers['x-mcd-result'];
        const ok = res.statusCode === 200 && rc === expectResult && (expectLength === null || length === expectLength);
        if (!ok) firstError ??= `${pathOf(n)}: status ${res.statusCode}, X-MCD-Result ${rc}, ${length} bytes`;
        if (measuring) {
          if (ok) { hist.record(Number(process.hrtime.bigint() - t0)); requests++; } else bad++;
        }
        resolve(ok);
      });
    });
    req.on('socket', (s) => sockets.add(s));
    req.on('timeout', () => req.destroy(new Error('request timeout')));
    req.on('error', (err) => { firstError ??= err.message; if (measuring) errors++; resolve(false); });
  });
}

async function loop() {
  while (!stopping) {
    const ok = await oneRequest(seq++);
    if (!ok && !stopping) await new Promise((r) => setTimeout(r, 5));   // no hot loop on a dead server
  }
}

const result = { tool: 'http-load', label: opt.label || undefined, concurrency, path: opt.path, server: `${host}:${port}`, ...hostFacts(), loadBefore: loadavg() };
const loops = Array.from({ length: concurrency }, () => loop());
await new Promise((r) => setTimeout(r, Number(opt.warmup) * 1000));
const cpuBefore = process.cpuUsage();
const sysBefore = cpuTimes();
hist.reset(); requests = 0; errors = 0; bad = 0;
const tStart = process.hrtime.bigint();
measuring = true;
process.send?.({ measuring: true });
await new Promise((r) => setTimeout(r, Number(opt.duration) * 1000));
measuring = false;
process.send?.({ measuring: false });
const seconds = Number(process.hrtime.bigint() - tStart) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
const sysBusy = busyPercent(sysBefore, cpuTimes());
stopping = true;
const drained = await Promise.race([Promise.all(loops).then(() => true), new Promise((r) => setTimeout(() => r(false), timeoutMs + 1000).unref())]);
agent.destroy();
process.stdout.write(JSON.stringify({
  ...result,
  ok: drained && errors === 0 && bad === 0,
  durationS: Math.round(seconds * 100) / 100,
  requests,
  requestsPerSec: Math.round(requests / seconds),
  // Connections opened over the whole run: with keep-alive, the concurrency (a reconnect would add one).
  connections: sockets.size,
  errors,
  bad,
  firstError,
  ...hist.summaryUs(),
  clientCpuUsPerRequest: requests ? Math.round(((cpu.user + cpu.system) / requests) * 10) / 10 : null,
  machineBusyPct: sysBusy,
  hung: !drained,
  loadAfter: loadavg(),
}) + '\n');
process.exit(drained ? 0 : 3);
