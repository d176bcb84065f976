#!/usr/bin/env node
// Self and inclusive time per function in a V8 .cpuprofile (node --cpu-prof), heaviest first:
// where a server spends its CPU, without a browser.
//
//   node bench/cpuprofile-top.mjs FILE.cpuprofile [--top 40] [--by self|total] [--filter TEXT]
//
// A function counts once per sample in its inclusive time however often it recurses.
import fs from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '40' }, by: { type: 'string', default: 'self' }, filter: { type: 'string', default: '' } },
});
const profile = JSON.parse(fs.readFileSync(positionals[0], 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample: the delta that follows it (the first sample's delta is the gap before it).
const dt = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
}
const nameOf = (n) => {
  const f = n.callFrame;
  const file = f.url ? f.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/') : '';
  return `${f.functionName || '(anonymous)'} ${file}${file ? `:${f.lineNumber + 1}` : ''}`;
};
const self = new Map();
const total = new Map();
let all = 0;
for (const [id, t] of dt) {
  all += t;
  const key = nameOf(nodes.get(id));
  self.set(key, (self.get(key) ?? 0) + t);
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const k = nameOf(nodes.get(at));
    if (seen.has(k)) continue;
    seen.add(k);
    total.set(k, (total.get(k) ?? 0) + t);
  }
}
const idle = [...self].filter(([k]) => k.startsWith('(idle)') || k.startsWith('(program)') || k.startsWith('(garbage collector)'));
const rows = [...total.keys()]
  .filter((k) => opt.filter === '' || k.includes(opt.filter))
  .map((k) => ({ k, self: self.get(k) ?? 0, total: total.get(k) }))
  .sort((a, b) => (opt.by === 'total' ? b.total - a.total : b.self - a.self))
  .slice(0, Number(opt.top));
const pct = (t) => `${((100 * t) / all).toFixed(2).padStart(6)} %`;
console.log(`sampled ${(all / 1e6).toFixed(2)} s; ${idle.map(([k, t]) => `${k.trim()} ${pct(t)}`).join(', ')}`);
console.log(`${'self'.padStart(8)}  ${'total'.padStart(8)}  function`);
for (const r of rows) console.log(`${pct(r.self)}  ${pct(r.total)}  ${r.k}`);
