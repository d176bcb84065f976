#!/usr/bin/env node
// Interleaved benchmark matrix. Starts its own servers on free loopback ports, runs every
// member of a config group back to back (A B C ...), repeats the whole matrix for --rounds,
// rotating the order each round so drift and position effects hit every member alike.
// Each run is a child process with a hard time limit; `uptime` is recorded before each.
// Output: one JSON line per run appended to --out (JSONL); summarize with bench/summarize.mjs.
//
//   node bench/run-matrix.mjs --suite clients --rounds 3 --duration 8 --out scratch/clients.jsonl
//   node bench/run-matrix.mjs --suite threads --rounds 3 --out scratch/threads.jsonl
//   node bench/run-matrix.mjs --suite agi --rounds 3 --out scratch/agi.jsonl
//   node bench/run-matrix.mjs --suite clients --clients memjs,project --ops get,set --concurrency 16
//   node bench/run-matrix.mjs --suite protocols --protocols text,binary,meta --rounds 2 --duration 3
import { spawn, execSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startMemcached, freePort } from './lib/memcached-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opt } = parseArgs({
  options: {
    suite: { type: 'string', default: 'clients' },
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    out: { type: 'string', default: '' },
    clients: { type: 'string', default: 'raw-pipeline,memaslap,raw-ascii,memjs,memcached,memcache-client,mc' },
    ops: { type: 'string', default: 'get,set,incr' },
    concurrency: { type: 'string', default: '' },
    protocols: { type: 'string', default: 'text,binary,meta' },   // the protocols suite's client protocols
    'value-size': { type: 'string', default: '100' },
    'mc-threads': { type: 'string', default: '1' },      // memcached -t for the clients suite ('default' = 4)
    'agi-concurrency': { type: 'string', default: '' },
    quiet: { type: 'boolean', default: false },
  },
});
const rounds = Number(opt.rounds);
const duration = opt.duration;
const warmup = opt.warmup;
const valueSize = opt['value-size'];
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const outFile = opt.out || path.join(here, '..', 'scratch', `${opt.suite}-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
fs.mkdirSync(path.dirname(outFile), { recursive: true });
const log = (...a) => { if (!opt.quiet) console.error(...a); };

// ---- suites -------------------------------------------------------------------------
// A run: { name, tool: script file, args: {...}, server: key of servers{} }.
function clientRun(client, op, c, server = 'mc') {
  if (client === 'raw-pipeline') return { name: 'raw-pipeline', tool: 'raw-pipeline.mjs', args: { op, concurrency: c }, server };
  if (client === 'memaslap') {
    if (op === 'incr') return null;                                   // memaslap has no incr
    return { name: 'memaslap', tool: 'memaslap.mjs', args: { op, concurrency: c, threads: 1 }, server };   // T=1 beat T=2 against memcached -t 1 (threads suite)
  }
  return { name: client, tool: 'client-bench.mjs', args: { client, op, concurrency: c }, server };
}

const suites = {
  clients() {
    const threads = opt['mc-threads'] === 'default' ? null : Number(opt['mc-threads']);
    const concs = list(opt.concurrency || '1,16,256').map(Number);
    const groups = [];
    for (const op of list(opt.ops)) for (const c of concs) {
      const runs = list(opt.clients).map((cl) => clientRun(cl, op, c)).filter(Boolean);
      groups.push({ key: `${op} c=${c}`, runs });
    }
    return { servers: { mc: { kind: 'memcached', threads } }, groups };
  },
  threads() {
    const groups = [];
    const pair = (key, tool, args) => groups.push({ key, runs: ['t1', 't4'].map((s) => ({ name: `${key} [${s}]`, tool, args, server: s })) });
    const concs = list(opt.concurrency || '16,256').map(Number);
    for (const op of ['get', 'set']) for (const c of concs) {
      pair(`memaslap ${op} c=${c} T=1`, 'memaslap.mjs', { op, concurrency: c, threads: 1 });
      pair(`raw-pipeline ${op} c=${c} conns=1`, 'raw-pipeline.mjs', { op, concurrency: c });
    }
    pair('memaslap get c=256 T=2', 'memaslap.mjs', { op: 'get', concurrency: 256, threads: 2 });
    pair('raw-pipeline get c=256 conns=4', 'raw-pipeline.mjs', { op: 'get', concurrency: 256, conns: 4 });
    pair('raw-pipeline mg c=256 conns=1', 'raw-pipeline.mjs', { op: 'mg', concurrency: 256 });
    pair('raw-pipeline bget c=256 conns=1', 'raw-pipeline.mjs', { op: 'bget', concurrency: 256 });
    return { servers: { t1: { kind: 'memcached', threads: 1 }, t4: { kind: 'memcached', threads: null } }, groups };
  },
  framings() {
    // Same work (get hit, 100 B), three framings: classic ASCII get, meta mg, binary get.
    const concs = list(opt.concurrency || '1,16,256').map(Number);
    const groups = concs.map((c) => ({ key: `get-framing c=${c}`,
      runs: ['get', 'mg', 'bget'].map((op) => ({ name: `raw-pipeline ${op}`, tool: 'raw-pipeline.mjs', args: { op, concurrency: c }, server: 'mc' })) }));
    const threads = opt['mc-threads'] === 'default' ? null : Number(opt['mc-threads']);
    return { servers: { mc: { kind: 'memcached', threads } }, groups };
  },
  // res-memcached's client in each of its protocols, each beside the raw pipeline of the same
  // framing (member 0, the baseline of its group): text get/set/incr, binary bget/bset/bincr,
  // meta mg/ms/ma. A protocol the client cannot speak yet fails its runs only (the adapter
  // checks the framing of one get before the run), never the groups of the others.
  // The `harness` groups time client-bench itself against the null adapter (no I/O): the
  // CPU per op that every client row carries and no client can get under.
  protocols() {
    const concs = list(opt.concurrency || '1,16,256').map(Number);
    const rawOp = {
      text: { get: 'get', set: 'set', incr: 'incr' },
      binary: { get: 'bget', set: 'bset', incr: 'bincr' },
      meta: { get: 'mg', set: 'ms', incr: 'ma' },
    };
    const groups = [];
    for (const protocol of list(opt.protocols)) {
      if (!rawOp[protocol]) throw new Error(`--protocols: unknown protocol ${protocol}`);
      for (const op of list(opt.ops)) for (const c of concs) {
        groups.push({ key: `${protocol} ${op} c=${c}`, protocol, op, concurrency: c, runs: [
          { name: `raw-pipeline ${rawOp[protocol][op]}`, tool: 'raw-pipeline.mjs', args: { op: rawOp[protocol][op], concurrency: c }, server: 'mc' },
          { name: `res-memcached ${protocol}`, tool: 'client-bench.mjs', args: { client: 'res-memcached', op, concurrency: c }, server: 'mc',
            env: { RES_MEMCACHED_PROTOCOL: protocol } },
        ] });
      }
    }
    for (const c of concs) {
      groups.push({ key: `harness get c=${c}`, op: 'get', concurrency: c, runs: [
        { name: 'client-bench, null adapter', tool: 'client-bench.mjs', args: { client: 'null', op: 'get', concurrency: c }, server: 'mc' },
      ] });
    }
    return { servers: { mc: { kind: 'memcached', threads: 1 } }, groups };
  },
  // res-memcached's own matrix (npm run bench): its client against the raw pipeline of the same
  // (binary) framing, memjs (binary) and memcached (text); its FastAGI daemon against the bare
  // responder with one memcached get per session, all under Asterisk-like env writes.
  project() {
    const concs = list(opt.concurrency || '1,16,256').map(Number);
    const groups = [];
    const binaryOp = { get: 'bget', set: 'bset', incr: 'bincr' };
    for (const op of list(opt.ops)) for (const c of concs) {
      groups.push({ key: `${op} c=${c}`, runs: [
        { name: 'raw-pipeline', tool: 'raw-pipeline.mjs', args: { op: binaryOp[op], concurrency: c }, server: 'mc' },
        { name: 'res-memcached', tool: 'client-bench.mjs', args: { client: 'res-memcached', op, concurrency: c }, server: 'mc' },
        { name: 'memjs', tool: 'client-bench.mjs', args: { client: 'memjs', op, concurrency: c }, server: 'mc' },
        { name: 'memcached', tool: 'client-bench.mjs', args: { client: 'memcached', op, concurrency: c }, server: 'mc' },
      ] });
    }
    for (const c of list(opt['agi-concurrency'] || '1,16,128').map(Number)) {
      const load = { concurrency: c, 'env-writes': 'lines' };
      groups.push({ key: `agi c=${c}`, runs: [
        { name: 'agi-minimal+get', tool: 'agi-load.mjs', args: load, server: 'agimc' },
        { name: 'daemon (memcached)', tool: 'agi-load.mjs', args: { ...load, 'expect-commands': 1 }, server: 'daemonmc' },
        { name: 'daemon (embedded)', tool: 'agi-load.mjs', args: { ...load, 'expect-commands': 1 }, server: 'daemon' },
      ] });
    }
    return { servers: { mc: { kind: 'memcached', threads: 1 }, agimc: { kind: 'agi', memcached: 'mc' },
      daemonmc: { kind: 'daemon', memcached: 'mc' }, daemon: { kind: 'daemon' } }, groups };
  },
  agi() {
    const concs = list(opt.concurrency || '1,16,128').map(Number);
    const groups = concs.map((c) => ({ key: `agi c=${c}`, runs: [
      { name: 'agi-minimal', tool: 'agi-load.mjs', args: { concurrency: c }, server: 'agi' },
      { name: 'agi-minimal lines', tool: 'agi-load.mjs', args: { concurrency: c, 'env-writes': 'lines' }, server: 'agi' },
      { name: 'agi+memcached get', tool: 'agi-load.mjs', args: { concurrency: c }, server: 'agimc' },
    ] }));
    return { servers: { mc: { kind: 'memcached', threads: 1 }, agi: { kind: 'agi' }, agimc: { kind: 'agi', memcached: 'mc' } }, groups };
  },
};
if (!suites[opt.suite]) throw new Error(`unknown suite ${opt.suite}; one of ${Object.keys(suites).join(', ')}`);
const plan = suites[opt.suite]();

// ---- servers --------------------------------------------------------------------------
const servers = {};
async function startAgi(name, spec) {
  const port = await freePort();
  const args = [path.join(here, 'agi-server.mjs'), '--port', String(port)];
  if (spec.memcached) args.push('--memcached', servers[spec.memcached].address);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);               // prints a "listening" line when ready
    child.once('exit', (code) => reject(new Error(`agi-server exited ${code}`)));
  });
  return { address: `127.0.0.1:${port}`, pid: child.pid, flags: `node ${args.slice(1).join(' ')}`,
    stop: async () => { child.kill('SIGTERM'); await new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); }); } };
}
// res-memcached's daemon, built (dist/), on a free port; with `memcached` it serves from that
// server, else from its embedded store.
async function startDaemon(name, spec) {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(here, '..', 'scratch', 'daemon-'));
  const conf = path.join(dir, 'memcached.conf');
  // embedded_snapshot=no: a benchmark must not write (or load) the machine's snapshot in its state directory.
  fs.writeFileSync(conf, `[general]\nembedded_snapshot=no\n${spec.memcached ? `server=${servers[spec.memcached].address}\n` : ''}[agi]\nport=${port}\nmax_sessions=10000\n[http]\nenabled=no\n`);
  const args = [path.join(here, '..', 'dist', 'src', 'cli', 'main.js'), 'serve', '--config', conf, '--log-level', 'error'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`daemon exited ${child.exitCode}`);
    const up = await new Promise((r) => { const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { address: `127.0.0.1:${port}`, pid: child.pid, flags: `res-memcached serve (${spec.memcached ? 'memcached' : 'embedded store'})`,
    stop: async () => { child.kill('SIGTERM'); await new Promise((r) => { if (child.exitCode !== null) r(); else child.once('exit', r); }); fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function stopAll() {
  for (const [name, s] of Object.entries(servers).reverse()) {
    try { await s.stop(); log(`stopped ${name} (pid ${s.pid})`); } catch (e) { log(`stop ${name}: ${e.message}`); }
  }
}
process.on('SIGINT', async () => { await stopAll(); process.exit(130); });
process.on('SIGTERM', async () => { await stopAll(); process.exit(143); });

for (const [name, spec] of Object.entries(plan.servers)) {
  servers[name] = spec.kind === 'memcached' ? await startMemcached({ threads: spec.threads })
    : spec.kind === 'daemon' ? await startDaemon(name, spec) : await startAgi(name, spec);
  log(`started ${name}: ${servers[name].flags} (pid ${servers[name].pid})`);
}

// ---- run ------------------------------------------------------------------------------
function runOne(run, round, group, member) {
  const args = [path.join(here, run.tool), '--server', servers[run.server].address, '--label', run.name];
  if (run.tool === 'memaslap.mjs') {
    // memaslap has no warmup switch (it pre-loads its keys itself): give it the same wall time.
    args.push('--duration', String(Number(duration) + Number(warmup)), '--value-size', valueSize);
  } else {
    args.push('--duration', duration, '--warmup', warmup);
    if (run.tool !== 'agi-load.mjs') args.push('--value-size', valueSize);
    else args.push('--server-pid', String(servers[run.server].pid));
  }
  for (const [k, v] of Object.entries(run.args)) args.push(`--${k}`, String(v));
  const uptime = execSync('uptime', { encoding: 'utf8' }).trim();
  const limitMs = (Number(duration) + Number(warmup) + 40) * 1000;
  return new Promise((resolve) => {
    const env = run.env ? { ...process.env, ...run.env } : process.env;
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const killer = setTimeout(() => { err += '\n[run-matrix] killed: over time limit'; child.kill('SIGKILL'); }, limitMs);
    child.on('close', (code) => {
      clearTimeout(killer);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      let rec;
      try { rec = JSON.parse(line); } catch { rec = { ok: false, fatal: `no JSON (exit ${code}): ${err.trim().slice(-400)}` }; }
      if (err.trim() && rec.ok === false) rec.stderr = err.trim().slice(-400);
      resolve({ suite: opt.suite, round, group: group.key, member, name: run.name, serverName: run.server, serverFlags: servers[run.server].flags,
        ...(group.protocol ? { protocol: group.protocol } : {}), uptime, exit: code, ...rec });
    });
  });
}

const total = rounds * plan.groups.reduce((n, g) => n + g.runs.length, 0);
let done = 0;
log(`suite ${opt.suite}: ${total} runs of ~${Number(duration) + Number(warmup)} s -> ${outFile}`);
try {
  for (let round = 1; round <= rounds; round++) {
    for (const group of plan.groups) {
      const n = group.runs.length;
      // rotate the order each round; `member` keeps the run's place in the group (0 = baseline)
      const order = group.runs.map((_, i) => (i + round - 1) % n);
      for (const m of order) {
        const run = group.runs[m];
        const rec = await runOne(run, round, group, m);
        fs.appendFileSync(outFile, JSON.stringify(rec) + '\n');
        done++;
        log(`[${done}/${total}] r${round} ${group.key} ${run.name}: ${rec.ok ? '' : 'FAILED '}${rec.opsPerSec ?? rec.sessionsPerSec ?? '-'} /s p99 ${rec.p99Us ?? rec.p99UsUpTo ?? '-'} us | ${rec.uptime.replace(/.*load/, 'load')}`);
      }
    }
  }
} finally {
  await stopAll();
}
console.log(outFile);
