#!/usr/bin/env node
// Turns one `run-matrix --suite project` JSONL (+ the `--suite protocols` one, store, cluster, soak, snapshot, limit, metrics and door bench JSON lines) into BENCHMARKS.md and
// bench/results/ops-by-depth.svg: medians of interleaved rounds, each member's median per-round
// ratio to the group's baseline (member 0: the raw pipeline, or the bare FastAGI responder), and
// the machine the figures come from.
//
//   node bench/report.mjs --matrix scratch/project.jsonl --store scratch/store.jsonl --out BENCHMARKS.md
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({ options: {
  matrix: { type: 'string' }, protocols: { type: 'string' }, store: { type: 'string' }, cluster: { type: 'string' }, soak: { type: 'string' }, snapshot: { type: 'string' }, limit: { type: 'string' }, metrics: { type: 'string' }, door: { type: 'string' }, out: { type: 'string', default: 'BENCHMARKS.md' },
  svg: { type: 'string', default: 'bench/results/ops-by-depth.svg' }, command: { type: 'string', default: 'npm run bench' },
  // When the file is rebuilt from results measured earlier: the time they were measured (UTC).
  date: { type: 'string', default: new Date().toISOString().slice(0, 16).replace('T', ' ') },
} });
const rows = fs.readFileSync(opt.matrix, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const jsonl = (file) => (file ? fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : []);
const store = jsonl(opt.store);
const cluster = jsonl(opt.cluster);
const soak = jsonl(opt.soak);
const snapshot = jsonl(opt.snapshot);
const limit = jsonl(opt.limit);
const metricsRuns = jsonl(opt.metrics);
const doorRuns = jsonl(opt.door);
const protocolRows = jsonl(opt.protocols);

const median = (xs) => { const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b); if (s.length === 0) return NaN; const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const fmt2 = (n) => (Number.isFinite(n) ? n.toFixed(2) : '—');

// group -> member -> runs
const groups = new Map();
for (const r of rows) {
  if (!groups.has(r.group)) groups.set(r.group, new Map());
  const g = groups.get(r.group);
  if (!g.has(r.member)) g.set(r.member, []);
  g.get(r.member).push(r);
}
function cell(group, member) {
  const g = groups.get(group);
  const runs = g?.get(member) ?? [];
  const base = g?.get(0) ?? [];
  const ratios = runs.map((r) => { const b = base.find((x) => x.round === r.round); return b ? r.opsPerSec / b.opsPerSec : NaN; });
  return {
    name: runs[0]?.name ?? '?', ops: median(runs.map((r) => r.opsPerSec)), ratio: median(ratios),
    p50: median(runs.map((r) => r.p50Us)), p99: median(runs.map((r) => r.p99Us)),
    cpu: median(runs.map((r) => r.clientCpuUsPerOp ?? r.serverCpuUsPerSession)), ok: runs.every((r) => r.ok), n: runs.length,
    heap: runs.map((r) => r.heapMB).filter(Boolean), rss: median(runs.map((r) => (Array.isArray(r.rssMB) ? r.rssMB.at(-1) : NaN))),
  };
}
const memjsRatio = (group, member) => {
  const g = groups.get(group);
  const ratios = (g?.get(member) ?? []).map((r) => { const m = g.get(2)?.find((x) => x.round === r.round); return m ? r.opsPerSec / m.opsPerSec : NaN; });
  return median(ratios);
};

const lines = [];
const say = (s = '') => lines.push(s);
const rounds = Math.max(...rows.map((r) => r.round));
const first = rows[0];
let memcachedVersion = '';
try { memcachedVersion = execFileSync('memcached', ['-V'], { encoding: 'utf8' }).trim(); } catch { /* not installed */ }
say('# Benchmarks');
say();
say(`Produced by \`${opt.command}\` on ${opt.date} UTC. Rerun it to refresh this file; it starts and stops its own memcached (\`-t 1\`) and daemons on free 127.0.0.1 ports.`);
say();
say(`**Machine.** ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}, ${memcachedVersion}. Load average before the runs: ${first?.uptime?.replace(/.*load average: /, '') ?? '?'}. Client and server share the cores, so figures are whole-box figures; trust the ratios of interleaved runs (each cell: median of ${rounds} round(s), order rotated every round) over absolute numbers.`);
say();
say('**Method.** Closed loop: N requests outstanding (N workers each awaiting its reply). 100-byte values, 1000 keys, every reply checked, memcached\'s own counters compared with the client\'s (a run whose counts disagree is marked failed). The raw pipeline writes pre-built requests of the same framing as res-memcached\'s default protocol (binary GET/SET/INCREMENT) and only counts replies: the ceiling for any Node client on this box.');
say();

for (const op of ['get', 'set', 'incr']) {
  say(`## Client: ${op}`);
  say();
  say('Cell: ops/s (ratio to the raw pipeline) p50 / p99 µs · client CPU µs per op.');
  say();
  say('| client | c=1 | c=16 | c=256 |');
  say('|---|---|---|---|');
  for (const member of [0, 1, 2, 3]) {
    const cells = [1, 16, 256].map((c) => cell(`${op} c=${c}`, member));
    say(`| ${cells[0].name} | ${cells.map((x) => `${fmt(x.ops)} (${fmt2(x.ratio)}) ${fmt(x.p50)} / ${fmt(x.p99)} · ${fmt2(x.cpu)}${x.ok ? '' : ' **FAILED**'}`).join(' | ')} |`);
  }
  say(`| res-memcached ÷ memjs | ${[1, 16, 256].map((c) => `${fmt2(memjsRatio(`${op} c=${c}`, 1))}×`).join(' | ')} |`);
  say();
}

if (protocolRows.length > 0) protocolSection();

say('## FastAGI daemon');
say();
say('An Asterisk-like load (`bench/agi-load.mjs --env-writes lines`: the 25 environment lines written one by one, as res_agi.c does) running `mcdget` sessions, against the bare responder of the harness (`agi-server.mjs`: reads the environment, one memcached get, two `SET VARIABLE`s) and the daemon on memcached and on its embedded store (one `GET FULL VARIABLE` per session: the value and MCDRESULT ride in it).');
say();
say('Cell: sessions/s (ratio to the bare responder) p99 · server CPU per session (its ratio to the bare responder\'s in the same group; target for the daemon: at most 1.3).');
say();
say('| server | c=1 | c=16 | c=128 |');
say('|---|---|---|---|');
const bareCpu = [1, 16, 128].map((c) => cell(`agi c=${c}`, 0).cpu);
for (const member of [0, 1, 2]) {
  const cells = [1, 16, 128].map((c) => cell(`agi c=${c}`, member));
  const cpuRatio = (x, i) => (member === 0 || !(bareCpu[i] > 0) ? '' : ` (×${fmt2(x.cpu / bareCpu[i])})`);
  say(`| ${cells[0].name} | ${cells.map((x, i) => `${fmt(x.ops)}/s (${fmt2(x.ratio)}) p99 ${fmt(x.p99)} µs · server CPU ${fmt(x.cpu)} µs/session${cpuRatio(x, i)}${x.ok ? '' : ' **FAILED**'}`).join(' | ')} |`);
}
say();

if (store.length > 0) {
  say('## Embedded store, in process');
  say();
  say('| op | one awaited at a time | 256 in flight |');
  say('|---|---|---|');
  for (const op of ['get', 'set']) {
    const at = (d) => store.find((r) => r.op === op && r.concurrency === d);
    say(`| ${op} | ${fmt(at(1)?.opsPerSec)} ops/s (${fmt2(at(1)?.cpuUsPerOp)} µs CPU/op) | ${fmt(at(256)?.opsPerSec)} ops/s (${fmt2(at(256)?.cpuUsPerOp)} µs CPU/op) |`);
  }
  say();
}

if (cluster.length > 0) {
  say('## Client over 1, 2 and 3 servers');
  say();
  say(`\`bench/cluster-bench.mjs\`: the client alone (no harness), ${cluster[0].concurrency} requests in flight, consistent placement, one memcached \`-t 1\` per server on the same 2-core box.`);
  say();
  say('| op | 1 server | 2 servers | 3 servers |');
  say('|---|---|---|---|');
  for (const op of ['get', 'set']) {
    const at = (n) => cluster.find((r) => r.op === op && r.servers === n);
    say(`| ${op} | ${[1, 2, 3].map((n) => `${fmt(at(n)?.opsPerSec)} ops/s · ${fmt2(at(n)?.clientCpuUsPerOp)} µs CPU/op${at(n)?.ok ? '' : ' **FAILED**'}`).join(' | ')} |`);
  }
  const three = cluster.find((r) => r.servers === 3 && r.op === 'get');
  say();
  say(`Routing (key hash + continuum search, 3 servers): ${fmt(three?.routingNsPerKey)} ns per key, ${fmt2(three?.routingShareOfCpu)} % of the client's CPU per get in the 3-server run.`);
  say();
}

if (soak.length > 0) {
  const s = soak[0];
  say(`## Daemon over ${s.durationS} s at ${s.concurrency} sessions`);
  say();
  say(`\`bench/soak.mjs\`: the daemon (${s.backend} backend) in process, \`mcdget\` hits, Asterisk-like load; heap measured after a forced GC. ${fmt(s.sessions)} sessions, ${fmt(s.sessionsPerSec)}/s, ${s.ok ? 'all ok' : '**FAILED**'}. Heap ${fmt2(s.heapStartMB)} → ${fmt2(s.heapEndMB)} MB (${fmt2(s.heapGrowthPct)} %), RSS at most ${fmt(s.rssMaxMB)} MB.`);
  say();
  say('| at s | sessions/s in the interval | heap after GC MB | RSS MB |');
  say('|---|---|---|---|');
  for (const x of s.samples) say(`| ${x.atS} | ${fmt(x.sessionsPerSec)} | ${fmt2(x.heapMB)} | ${fmt(x.rssMB)} |`);
  say();
  say('A flat rate per interval over the run is the linearity check: twice the sessions take twice the time.');
  say();
}

if (snapshot.length > 0) {
  const s0 = snapshot[0];
  const slice = (x) => (x ? `${fmt2(x.p50Ms)} / ${fmt2(x.p99Ms)} / ${fmt2(x.maxMs)}` : '—');
  say('## Snapshot pause');
  say();
  say(`\`bench/snapshot-bench.mjs\`: the daemon in process on its embedded store, filled to its cap (embedded_max_memory=${fmt(s0.store.limitBytes / 1_048_576)} MiB), ${s0.concurrency} \`mcdget\` sessions in flight (Asterisk-like load, env written line by line). Interleaved phases of ${s0.phaseSeconds} s, ${s0.rounds} rounds, order rotated: **baseline** (no snapshot) and **during** (snapshots back to back for the whole window, through \`writeSnapshot()\`, the code the daemon's timer runs). Cells are medians over the rounds; the ratio is the median of the per-round ratios during / baseline. The longest event-loop stall is \`perf_hooks.monitorEventLoopDelay\`'s max in the daemon's process over the same window: on a busy box it includes time other jobs hold the CPU, which is why the baseline has one too. The work between two awaits is the snapshot's own share of a pause (resume after a write, encode the next chunk, hash it, issue its write), timed in the same process.`);
  say();
  say('| variant | items | mean value | snapshot file | snapshot alone: wall / CPU | longest loop stall: snapshot alone / as long with none | snapshot under load: median (max), n | work between two awaits p50 / p99 / max ms: alone; under load |');
  say('|---|---|---|---|---|---|---|---|');
  for (const r of snapshot) {
    const x = r.snapshot;
    say(`| ${r.variant} | ${fmt(r.store.items)} | ${fmt(r.store.meanValueBytes)} B | ${fmt2(x.bytes / 1_048_576)} MiB | ${fmt(x.idleMs)} ms / ${fmt(x.idleCpuMs)} ms | ${fmt2(x.idleLoopDelayMaxMs)} / ${fmt2(x.quietLoopDelayMaxMs)} ms | ${fmt(x.duringMsMedian)} ms (${fmt(x.duringMsMax)}), ${x.duringCount} | ${slice(x.sliceIdle)}; ${slice(x.sliceDuring)}${r.ok ? '' : ' **FAILED**'} |`);
  }
  say();
  say('| variant | phase | sessions/s | p50 µs | p99 µs | max µs (worst round) | longest loop stall ms (worst round) | GC in the window: total / longest ms (worst round) | machine busy |');
  say('|---|---|---|---|---|---|---|---|---|');
  for (const r of snapshot) {
    for (const phase of ['baseline', 'during']) {
      const x = r[phase];
      say(`| ${r.variant} | ${phase} | ${fmt(x.sessionsPerSec)} | ${fmt(x.p50Us)} | ${fmt(x.p99Us)} | ${fmt(x.maxUs)} (${fmt(x.worstMaxUs)}) | ${fmt2(x.loopDelayMaxMs)} (${fmt2(x.worstLoopDelayMaxMs)}) | ${fmt(x.gcTotalMs)} / ${fmt(x.gcMaxMs)} (${fmt(x.worstGcMaxMs)}) | ${fmt(x.machineBusyPct)} % |`);
    }
  }
  say();
  for (const r of snapshot) say(`- ${r.variant}: p99(during) / p99(baseline) = **${fmt2(r.ratio.p99)}**; p50 ${fmt2(r.ratio.p50)}; sessions/s ${fmt2(r.ratio.sessionsPerSec)}.`);
  const loads = snapshot.flatMap((r) => r.phases.map((p) => p.loadBefore?.[0])).filter(Number.isFinite);
  if (loads.length > 0) {
    say();
    say(`Measured ${snapshot[0].at ? `${snapshot[0].at.slice(0, 16).replace('T', ' ')} UTC, ` : ''}1-min load average before the phases ${fmt2(Math.min(...loads))}-${fmt2(Math.max(...loads))} on ${os.cpus().length} cores: the longest stalls and the max latencies of both phases are mostly the box's other jobs and garbage collection (timed by \`PerformanceObserver\`, in wall time, so a collector waiting for a core counts); the work between two awaits is the snapshot's own.`);
  }
  say();
}

if (limit.length > 0) {
  const l0 = limit[0];
  const what = {
    counter: '`MCDCOUNTER,calls,1`',
    call: `\`mcdlimit,calls,${l0.max}\` + \`mcdrelease,calls\``,
    'call-small': `\`mcdlimit,calls${l0.smallMax},${l0.smallMax}\` + \`mcdrelease,calls${l0.smallMax}\``,
    full: `\`mcdlimit,full,${l0.max}\` (${fmt(l0.max)} held)`,
    count: `\`MCDLIMITCOUNT,full\` (${fmt(l0.max)} held)`,
  };
  const outcome = { counter: 'incr', call: 'OK, then released', 'call-small': 'OK, then released', full: 'FULL', count: String(l0.max) };
  const opsText = (o) => Object.entries(o ?? {}).filter(([, n]) => n >= 0.005).map(([k, n]) => `${k} ${n >= 10 ? fmt(n) : fmt2(n)}`).join(', ');
  say('## Call limits');
  say();
  say(`\`bench/limit-bench.mjs\`: the daemon in process, on its embedded store (embedded_snapshot=no) and on a private memcached (\`-t 1\`), with \`bench/agi-load.mjs\` as the Asterisk side: ${l0.concurrency} channels in flight, env written line by line, every session a new channel (its own \`agi_uniqueid\`). Interleaved phases of ${l0.phaseSeconds} s, ${l0.rounds} rounds, order rotated; cells are medians over the rounds, ratios the median of per-round ratios to \`MCDCOUNTER\` in the same round (sessions/s: higher is better; p99: lower is better). A **call** is two sessions on one channel, \`mcdlimit\` then \`mcdrelease\` (as the hangup handler of extensions_mcd.conf does), so every \`mcdlimit\` gets OK and the slots never fill; **full** is the steady state of a reached limit: another PBX holds all ${fmt(l0.max)} slots and every \`mcdlimit\` gets FULL. Every session's outputs were checked (MCDRESULT=0, MCDLIMIT as stated). Cache operations per session are counted by wrapping the backend's methods in the daemon's process; for a call they are averaged over its two sessions (its mcdlimit does all the slot reads).`);
  say();
  say('| backend | phase | dialplan | outcome | sessions/s (÷ counter) | p50 / p99 µs (p99 ÷ counter) | calls/s, call p50 / p99 µs | cache operations per session |');
  say('|---|---|---|---|---|---|---|---|');
  for (const r of limit) {
    for (const [phase, x] of Object.entries(r.summary)) {
      const call = x.callsPerSec === undefined ? '—' : `${fmt(x.callsPerSec)}, ${fmt(x.callP50Us)} / ${fmt(x.callP99Us)}`;
      say(`| ${r.backend} | ${phase} | ${what[phase] ?? phase} | ${outcome[phase] ?? ''} | ${fmt(x.sessionsPerSec)} (${fmt2(x.ratioSessionsPerSec)}) | ${fmt(x.p50Us)} / ${fmt(x.p99Us)} (${fmt2(x.ratioP99)}) | ${call} | ${opsText(x.opsPerSession)}${r.ok ? '' : ' **FAILED**'} |`);
    }
  }
  say();
  for (const r of limit) {
    const c = r.summary.call;
    const f = r.summary.full;
    const n = r.summary.count;
    const sm = r.summary['call-small'];
    const parts = [];
    if (c) parts.push(`a call (mcdlimit + mcdrelease, MAX ${fmt(r.max)}) runs at **${fmt2(c.ratioCallsPerSec)}×** the MCDCOUNTER session rate (its sessions at ${fmt2(c.ratioSessionsPerSec)}×)`);
    if (sm) parts.push(`with MAX ${r.smallMax} at ${fmt2(sm.ratioCallsPerSec)}× (sessions ${fmt2(sm.ratioSessionsPerSec)}×)`);
    if (f) parts.push(`a FULL mcdlimit at ${fmt2(f.ratioSessionsPerSec)}×`);
    if (n) parts.push(`MCDLIMITCOUNT over ${fmt(r.max)} holders at ${fmt2(n.ratioSessionsPerSec)}×`);
    say(`- ${r.backend}: ${parts.join('; ')}.`);
  }
  const loads = limit.flatMap((r) => r.phases.map((p) => p.loadBefore?.[0])).filter(Number.isFinite);
  if (loads.length > 0) {
    say();
    const spread = limit.map((r) => { const xs = r.phases.filter((p) => p.phase === 'counter').map((p) => p.sessionsPerSec); return `${r.backend} ${fmt(Math.min(...xs))}-${fmt(Math.max(...xs))}`; }).join(', ');
    say(`Measured ${l0.at ? `${l0.at.slice(0, 16).replace('T', ' ')} UTC, ` : ''}1-min load average before the phases ${fmt2(Math.min(...loads))}-${fmt2(Math.max(...loads))} on ${os.cpus().length} cores, shared by the daemon, memcached, the load generator and other jobs: the MCDCOUNTER rate alone ranged over the rounds ${spread} sessions/s, so read the ratios as rough (the per-round rows are in bench/results/limit.jsonl); the operation counts do not depend on the load.`);
  }
  say();
  say('Why: an `mcdlimit` for a channel holding nothing waits on the cache three times in a row (src/leases/engine.ts `acquire`): (1) `gets` of the bound record `mcdlimit:NAME:max`, alongside the node index `mcdleases:<node_id>` rewritten whole with `set` (acquires in flight together share one write, hence fewer sets than acquires); (2) one `getMulti` of the slots up to the bound: one request per server carrying MAX keys (memcached still looks up every key, and the reply carries every held slot); (3) an `add` on a free slot (one more per slot lost to a racer). FULL stops after (2). `mcdrelease` is two waits and touches only its own slot: `gets`, then `deleteCas`. `MCDLIMITCOUNT` is two: `get` of the bound, then the `getMulti`. `MCDCOUNTER` is one `incr`. Over AGI, each of these but `MCDLIMITCOUNT` (a read) costs the same two commands to Asterisk. So the cost of a limit grows with MAX and with the holders (the keys looked up and the slots sent back), as the MAX-' + `${l0.smallMax}` + ' rows show; an earlier engine sent a `get` per slot and ran a MAX-1000 call at 0.05× the counter on memcached.');
  say();
  say('What would make it cheaper still: keep the bound in memory once seen (it only rises), saving wait (1) on most acquires; and, for a channel this process knows holds nothing under NAME, try the `add` on a random slot first and read the slots only when it loses: a limit far from full would then cost a couple of round trips more than a counter (FULL still reads them all), at the price of MCDLIMITCOUNT from mcdlimit being a lower bound on that path. The node index is rewritten whole on every acquire, so its bytes grow with the leases this node holds (at most ' + `${l0.concurrency}` + ' here): appending, or writing it on a timer, would keep the cost of an acquire flat on a busy PBX.');
  say();
}

// Memory: heap after forced GC at the start and end of each client run (client-bench heapMB).
const ours = rows.filter((r) => r.name === 'res-memcached' && Array.isArray(r.heapMB));
if (ours.length > 0) {
  const growth = ours.map((r) => r.heapMB.at(-1) - r.heapMB[0]);
  say(`**Memory (res-memcached client runs).** Heap after forced GC, end minus start of the measured window: median ${fmt2(median(growth))} MB, worst ${fmt2(Math.max(...growth))} MB over ${ours.length} runs; RSS at the end: median ${fmt(median(ours.map((r) => r.rssMB?.at(-1))))} MB.`);
  say();
}

say('## Chart');
say();
say(`![ops/s by depth](${path.relative(path.dirname(opt.out), opt.svg)})`);
say();
if (metricsRuns.length > 0) {
  say('## What /metrics costs FastAGI');
  say();
  say('`bench/metrics-bench.mjs`: `mcdset` sessions (c=16) against the daemon with `[http] enabled=no` (nothing counted) and with it on and `GET /metrics` scraped every second; phases alternate every round, the overhead is the median of the per-round ratios (target: under 3 %). On a shared box the round-to-round spread of the same phase is wider than that target, so read the per-round rows in bench/results/metrics.jsonl and the scrape cost beside it.');
  say();
  say('| backend | off: sessions/s | on: sessions/s | overhead | sessions/s per phase, by round | one scrape |');
  say('|---|---|---|---|---|---|');
  for (const r of metricsRuns) {
    const spread = r.runs.map((x) => `${x.phase} ${fmt(x.sessionsPerSec)}`).join(', ');
    const scrape = median(r.runs.filter((x) => x.phase === 'on').map((x) => x.scrapeMsMean));
    say(`| ${r.backend} | ${fmt(r.offSessionsPerSec)} | ${fmt(r.onSessionsPerSec)} | ${r.overheadPct} %${r.ok ? '' : ' **FAILED**'} | ${spread} | ${fmt2(scrape)} ms |`);
  }
  say();
}

if (doorRuns.length > 0) {
  const d0 = doorRuns[0];
  const cs = d0.concurrencies;
  say('## The HTTP door');
  say();
  say(`\`bench/door-bench.mjs\`: \`GET /MCD/key<N>\` through the inline door (src/http/door.ts), as Asterisk's \`CURL()\` would send it, against an \`MCD\` FastAGI session for the same key, through the same daemon in process, on its embedded store (embedded_snapshot=no) and on a private memcached (\`-t 1\`). ${fmt(d0.keys)} keys of ${d0.valueSize} bytes, preloaded; every reply checked (X-MCD-Result 0 and the ${d0.valueSize}-byte body; MCDRESULT=0). The door's load is \`bench/http-load.mjs\` (node:http Agent, keepAlive, maxSockets = c: c connections, each a closed loop, reopened only when the listener closes one after its 10,000 requests, src/http/server.ts); the FastAGI load is \`bench/agi-load.mjs --script MCD\` (env written line by line, a new connection per session, as the FastAGI table above). Interleaved phases of ${d0.phaseSeconds} s, ${d0.rounds} rounds, door and FastAGI in rotated order at each concurrency; cells are medians over the rounds, ratios the median of per-round ratios. Daemon CPU is \`process.cpuUsage()\` of the daemon's process over the load's measured window, per request (door) or per session (FastAGI); memcached's, from /proc, is in parentheses.`);
  say();
  say(`Cell: requests or sessions/s · p50 / p99 µs · daemon CPU µs each${doorRuns.some((r) => r.backend === 'memcached') ? ' (+ memcached CPU)' : ''}.`);
  say();
  say(`| backend | transport | ${cs.map((c) => `c=${c}`).join(' | ')} |`);
  say(`|---|---|${cs.map(() => '---').join('|')}|`);
  for (const r of doorRuns) {
    const cellText = (x) => `${fmt(x.perSec)}/s · ${fmt(x.p50Us)} / ${fmt(x.p99Us)} · ${fmt(x.daemonCpuUs)} µs${Number.isFinite(x.memcachedCpuUs) ? ` (+${fmt(x.memcachedCpuUs)})` : ''}`;
    say(`| ${r.backend} | door \`GET /MCD/key\` | ${cs.map((c) => cellText(r.summary[c].door)).join(' | ')} |`);
    say(`| ${r.backend} | FastAGI \`MCD\` session | ${cs.map((c) => cellText(r.summary[c].agi)).join(' | ')} |`);
    say(`| ${r.backend} | **door ÷ FastAGI**: rate · p99 · daemon CPU | ${cs.map((c) => { const x = r.summary[c]; return `**${fmt2(x.ratioPerSec)}×** · ${fmt2(x.ratioP99)}× · ${fmt2(x.ratioDaemonCpu)}×`; }).join(' | ')}${r.ok ? '' : ' **FAILED**'} |`);
  }
  // The FastAGI table above comes from the matrix run (mcdget, another day): its bare responder
  // and daemon rows at the same concurrencies, for scale beside this run's door.
  const matrixRow = (member) => cs.map((c) => cell(`agi c=${c}`, member));
  if (groups.has(`agi c=${cs[0]}`)) {
    for (const member of [0, 1, 2]) {
      const cells = matrixRow(member);
      say(`| (FastAGI table above) | ${cells[0].name} \`mcdget\` | ${cells.map((x) => `${fmt(x.ops)}/s · — / ${fmt(x.p99)} · ${fmt(x.cpu)} µs`).join(' | ')} |`);
    }
  }
  say();
  const loads = doorRuns.flatMap((r) => r.phases.map((p) => p.loadBefore?.[0])).filter(Number.isFinite);
  const busy = doorRuns.flatMap((r) => r.phases.map((p) => p.machineBusyPct)).filter(Number.isFinite);
  const spread = doorRuns.map((r) => `${r.backend}: ${cs.map((c) => { const x = r.summary[c]; return `c=${c} door ${x.door.perSecByRound.map(fmt).join(', ')}; FastAGI ${x.agi.perSecByRound.map(fmt).join(', ')}`; }).join('; ')}`).join('. ');
  say(`Measured ${d0.at ? `${d0.at.slice(0, 16).replace('T', ' ')} UTC, ` : ''}1-min load average before the phases ${fmt2(Math.min(...loads))}-${fmt2(Math.max(...loads))} on ${os.cpus().length} cores (whole box ${fmt(Math.min(...busy))}-${fmt(Math.max(...busy))} % busy during the windows), shared by the daemon, memcached, the load generator and other jobs; the absolute rates are whole-box rates, the ratios are what to read. Per round, per second: ${spread} (bench/results/door.jsonl has every phase, with the client's CPU).`);
  say();
  say('Why the door is cheaper: a FastAGI session is a TCP connection set up and torn down, the agi_* environment parsed, and a round trip to Asterisk for the `GET FULL VARIABLE` that carries the value (src/agi/session.ts, src/dialplan/runner.ts); a door request is one HTTP request on a connection kept open (src/http/server.ts), and the answer is the body. Both run the same command code (src/dialplan/execute.ts). The load generators share the two cores with the daemon, so the rates carry their cost too (their CPU per request or session is in bench/results/door.jsonl); the daemon CPU ratio is the cleaner measure of what the door saves.');
  say();
}

/**
 * `run-matrix --suite protocols`: the client in each protocol beside the raw pipeline of the same
 * framing, interleaved. A protocol missing from that file but measured by the project matrix
 * (binary: its `op c=N` groups, raw pipeline member 0 and res-memcached member 1) comes from there.
 */
function protocolSection() {
  const concs = [1, 16, 256];
  // The ratio each depth has to reach: one request at a time is all round trip, so the client
  // must add almost nothing; deep pipelines are bound by the client's CPU per op.
  const target = { 1: 0.95, 16: 0.7, 256: 0.8 };
  const pg = new Map();
  for (const r of protocolRows) {
    if (!pg.has(r.group)) pg.set(r.group, new Map());
    const g = pg.get(r.group);
    if (!g.has(r.member)) g.set(r.member, []);
    g.get(r.member).push(r);
  }
  const pcell = (map, group, member) => {
    const g = map.get(group);
    const runs = g?.get(member) ?? [];
    const base = g?.get(0) ?? [];
    const ratios = runs.map((r) => { const b = base.find((x) => x.round === r.round); return b?.ok && r.ok ? r.opsPerSec / b.opsPerSec : NaN; });
    const okRuns = runs.filter((r) => r.ok);
    return { n: runs.length, ok: runs.length > 0 && okRuns.length === runs.length, ops: median(okRuns.map((r) => r.opsPerSec)), ratio: median(ratios),
      cpu: median(okRuns.map((r) => r.clientCpuUsPerOp)), rawOps: median(base.filter((r) => r.ok).map((r) => r.opsPerSec)),
      rawCpu: median(base.filter((r) => r.ok).map((r) => r.clientCpuUsPerOp)),
      error: runs.find((r) => !r.ok)?.fatal ?? runs.find((r) => !r.ok)?.firstError ?? null };
  };
  const measured = new Set(protocolRows.map((r) => r.protocol).filter(Boolean));
  const rowsOut = [];
  for (const protocol of ['text', 'binary', 'meta']) {
    for (const op of ['get', 'set', 'incr']) {
      let source = null;
      if (measured.has(protocol)) source = concs.map((c) => pcell(pg, `${protocol} ${op} c=${c}`, 1));
      else if (protocol === 'binary' && groups.has(`${op} c=1`)) source = concs.map((c) => ({ ...pcell(groups, `${op} c=${c}`, 1), fromProject: true }));
      if (source && source.some((x) => x.n > 0)) rowsOut.push({ protocol, op, cells: source });
    }
  }
  const harness = concs.map((c) => pcell(pg, `harness get c=${c}`, 0));
  const cellText = (x, c) => {
    if (x.n === 0) return '—';
    if (!x.ok && !Number.isFinite(x.ops)) return `**FAILED**${x.error ? `: ${x.error.split(' | ')[0].replace(/^Error: /, '').replace(/\|/g, '/').slice(0, 140)}` : ''}`;
    const met = Number.isFinite(x.ratio) ? (x.ratio >= target[c] ? 'met' : '**missed**') : '—';
    return `${fmt(x.ops)}/s · **${fmt2(x.ratio)}** of ${fmt(x.rawOps)}/s · ${fmt2(x.cpu)} µs CPU/op (raw ${fmt2(x.rawCpu)}) · ≥ ${target[c]}: ${met}${x.ok ? '' : ' (some rounds **FAILED**)'}`;
  };
  const loads = protocolRows.map((r) => Number(r.uptime?.match(/load average: ([\d.]+)/)?.[1])).filter(Number.isFinite);
  const pRounds = Math.max(...protocolRows.map((r) => r.round));
  say('## Client vs raw pipeline, per protocol');
  say();
  say(`\`bench/run-matrix.mjs --suite protocols\`: res-memcached in each protocol (\`RES_MEMCACHED_PROTOCOL\`) beside the raw pipeline of the same framing, run back to back and in rotated order (${pRounds} round(s), medians; the ratio is the median of the per-round ratios): text \`get\`/\`set\`/\`incr\`, binary GET/SET/INCREMENT, meta \`mg key v f O<n>\` / \`ms key 100 F0 T0 MS O<n>\` / \`ma key MI D1 v O<n>\` (every meta request carries an opaque, as the client's meta codec sends them). memcached \`-t 1\`; 1-min load average ${loads.length ? `${fmt2(Math.min(...loads))}-${fmt2(Math.max(...loads))}` : '?'} on ${os.cpus().length} cores during the runs.${rowsOut.some((r) => r.cells[0].fromProject) ? ' Binary rows come from the project matrix above (same pairing, same server).' : ''}`);
  say();
  say('Cell: client ops/s · ratio to its own raw pipeline (of its ops/s) · client CPU µs per op (the raw pipeline\'s) · the target for the depth.');
  say();
  say(`| protocol | op | ${concs.map((c) => `c=${c} (target ≥ ${target[c]})`).join(' | ')} |`);
  say(`|---|---|${concs.map(() => '---').join('|')}|`);
  for (const r of rowsOut) say(`| ${r.protocol} | ${r.op} | ${r.cells.map((x, i) => cellText(x, concs[i])).join(' | ')} |`);
  if (harness.some((x) => x.n > 0)) {
    say(`| harness alone | get (null adapter) | ${harness.map((x) => (x.n ? `${fmt(x.ops)}/s · ${fmt2(x.cpu)} µs CPU/op` : '—')).join(' | ')} |`);
    say();
    const share = concs.flatMap((c, i) => {
      const ours = median(rowsOut.filter((r) => r.op === 'get').map((r) => r.cells[i].cpu));
      return harness[i].n && Number.isFinite(ours) ? [`c=${c}: ${fmt2(harness[i].cpu)} µs of ${fmt2(ours)} (${fmt(100 * harness[i].cpu / ours)} %)`] : [];
    });
    say(`The last row is \`client-bench.mjs\` with the null adapter (\`bench/adapters/null.mjs\`: no I/O, every request answered in one batch on the next event-loop turn): its worker loop (an async function per request in flight, two \`performance.now()\` calls, the key looked up, the histogram) and one promise made and settled per op. That CPU is inside every client row's "client CPU", since client-bench measures its whole process (\`process.cpuUsage()\`, all threads: GC included): a floor no client can get under. Its share of the client's get CPU per op (median over protocols): ${share.join('; ')}. The raw pipeline has no such loop, so the ratios above carry it as a cost of the client. At c=1 the floor also holds one event-loop turn per op, which a real client pays anyway (its socket's reply wakes the loop): there it bounds the harness's share from above.`);
  }
  say();
}

fs.writeFileSync(opt.out, lines.join('\n'));
fs.mkdirSync(path.dirname(opt.svg), { recursive: true });
fs.writeFileSync(opt.svg, chart());
console.error(`wrote ${opt.out} and ${opt.svg}`);

/** ops/s by depth (log scale), one panel per op, one line per client. */
function chart() {
  const W = 300, H = 220, pad = 40, colors = ['#444', '#d62728', '#1f77b4', '#2ca02c'];
  const depths = [1, 16, 256];
  const all = [];
  for (const op of ['get', 'set', 'incr']) for (const d of depths) for (const m of [0, 1, 2, 3]) all.push(cell(`${op} c=${d}`, m).ops);
  const max = Math.max(...all.filter(Number.isFinite), 1);
  const lo = 1e3, y = (v) => H - pad - (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(max * 1.2) - Math.log10(lo)) * (H - 2 * pad);
  const x = (i) => pad + i * ((W - 2 * pad) / (depths.length - 1));
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W * 3}" height="${H + 30}" font-family="sans-serif" font-size="11">`;
  ['get', 'set', 'incr'].forEach((op, p) => {
    svg += `<g transform="translate(${p * W},0)"><text x="${W / 2}" y="16" text-anchor="middle" font-weight="bold">${op} (ops/s, log scale)</text>`;
    svg += `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="#999"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="#999"/>`;
    depths.forEach((d, i) => { svg += `<text x="${x(i)}" y="${H - pad + 14}" text-anchor="middle">c=${d}</text>`; });
    for (const v of [1e4, 1e5, 1e6]) if (v < max * 1.2) svg += `<text x="${pad - 4}" y="${y(v) + 4}" text-anchor="end">${v >= 1e6 ? `${v / 1e6}M` : `${v / 1e3}k`}</text><line x1="${pad}" y1="${y(v)}" x2="${W - pad}" y2="${y(v)}" stroke="#eee"/>`;
    [0, 1, 2, 3].forEach((m) => {
      const pts = depths.map((d, i) => [x(i), y(cell(`${op} c=${d}`, m).ops)]);
      svg += `<polyline fill="none" stroke="${colors[m]}" stroke-width="2" points="${pts.map((q) => q.join(',')).join(' ')}"/>`;
    });
    svg += '</g>';
  });
  [0, 1, 2, 3].forEach((m, i) => { svg += `<rect x="${20 + i * 170}" y="${H + 12}" width="12" height="4" fill="${colors[m]}"/><text x="${36 + i * 170}" y="${H + 18}">${cell('get c=1', m).name}</text>`; });
  return svg + '</svg>\n';
}
