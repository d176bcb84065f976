#!/usr/bin/env node
// Self time by function from a V8 .cpuprofile (node --cpu-prof): where a benchmark's CPU went,
// aggregated over every node of the call tree with the same function, file and line.
//
//   node --cpu-prof --cpu-prof-dir scratch/prof bench/client-bench.mjs --client res-memcached ...
//   node bench/profile-summary.mjs scratch/prof/CPU.*.cpuprofile [--top 40] [--by file]
//        [--skip 2 --span 3] [--cpu-us-per-op 1.94]
//
// --by total gives each function's inclusive time (itself and everything it called; counted once
// per sample however often it recurses) instead of its self time. --by file sums per script (src/memcache/connection.js, node:net, ...). --skip/--span
// keep the samples from S seconds after the profile starts, for span seconds: the measured
// window, without module loading, seeding and warmup. --cpu-us-per-op (client-bench's
// clientCpuUsPerOp of the same run) adds a column: each function's share of the busy samples
// times that, i.e. its µs per op. Percentages are of all samples, idle included; "(idle)" is
// the event loop waiting, "(garbage collector)" GC, "(program)" native code V8 cannot
// attribute. Samples are taken in wall time: on a loaded box a native call (a socket write)
// also collects the time its thread waited for a core, so read them beside the CPU figures.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({ allowPositionals: true, options: {
  top: { type: 'string', default: '40' }, by: { type: 'string', default: 'function' },
  skip: { type: 'string', default: '0' }, span: { type: 'string', default: '' }, 'cpu-us-per-op': { type: 'string', default: '' },
} });
if (positionals.length === 0) { console.error('usage: profile-summary.mjs FILE.cpuprofile [--top N] [--by function|total|file]'); process.exit(2); }

for (const file of positionals) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // Time per sample: the gap to the next one (the last sample gets the mean gap).
  const selfUs = new Map();
  const deltas = prof.timeDeltas;
  const mean = (prof.endTime - prof.startTime) / Math.max(1, prof.samples.length);
  const from = Number(opt.skip) * 1e6;
  const to = opt.span ? from + Number(opt.span) * 1e6 : Infinity;
  let at = 0;
  prof.samples.forEach((id, i) => {
    at += deltas[i];
    if (at < from || at >= to) return;
    const dt = i + 1 < deltas.length ? deltas[i + 1] : mean;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, dt));
  });
  const shortUrl = (u) => (u ? u.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '') : '');
  const totals = new Map();
  let all = 0;
  const keyOf = (id) => {
    const f = byId.get(id).callFrame;
    const url = shortUrl(f.url);
    return opt.by === 'file' ? (url || f.functionName || '(native)') : `${f.functionName || '(anonymous)'}  ${url ? `${url}:${f.lineNumber + 1}` : ''}`;
  };
  const parent = new Map();
  if (opt.by === 'total') for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (const [id, us] of selfUs) {
    all += us;
    if (opt.by !== 'total') {
      totals.set(keyOf(id), (totals.get(keyOf(id)) ?? 0) + us);
      continue;
    }
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const key = keyOf(at);
      if (seen.has(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + us);
    }
  }
  const busy = all - (totals.get('(idle)  ') ?? totals.get('(idle)') ?? 0);
  const perOp = Number(opt['cpu-us-per-op']);
  console.log(`${path.basename(file)}: ${(all / 1e3).toFixed(0)} ms sampled, ${(busy / 1e3).toFixed(0)} ms not idle`);
  console.log(`${opt.by === 'total' ? '  total ms' : '   self ms'}   % all  % busy${perOp ? '  µs/op' : ''}  function / file`);
  for (const [key, us] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, Number(opt.top))) {
    const idle = key.startsWith('(idle)');
    const share = idle ? '' : (100 * us / busy).toFixed(1);
    const op = perOp ? (idle ? '' : (perOp * us / busy).toFixed(3)).padStart(7) : '';
    console.log(`${(us / 1e3).toFixed(1).padStart(9)} ${(100 * us / all).toFixed(1).padStart(7)} ${share.padStart(7)}${op}  ${key}`);
  }
  console.log();
}
