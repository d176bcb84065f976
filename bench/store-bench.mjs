#!/usr/bin/env node
// The embedded store in process (BENCHMARKS.md, "Embedded store, in process"; goal: >= 1 M get/set per second). Two ways an application
// uses it: one awaited operation at a time, and a batch of N in flight (Promise.all). Values of
// --value-size bytes over --keys keys; every get is checked. One JSON line per op and depth.
import { parseArgs } from 'node:util';
import { hostFacts } from './lib/env.mjs';

const { values: opt } = parseArgs({ options: {
  duration: { type: 'string', default: '2' },
  'value-size': { type: 'string', default: '100' },
  keys: { type: 'string', default: '1000' },
} });
const { MemoryStore } = await import(new URL('../dist/src/store/memory-store.js', import.meta.url).href);
const keys = Array.from({ length: Number(opt.keys) }, (_, i) => `bench:k:${String(i).padStart(6, '0')}`);
const value = Buffer.alloc(Number(opt['value-size']), 0x76);
const store = new MemoryStore();
for (const k of keys) await store.set(k, value);

async function measure(op, depth) {
  const seconds = Number(opt.duration);
  let ops = 0;
  let bad = 0;
  const one = op === 'get'
    ? async (i) => { const item = await store.get(keys[i % keys.length]); if (item === null || item.value.length !== value.length) bad++; }
    : (i) => store.set(keys[i % keys.length], value);
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const stopAt = start + BigInt(seconds * 1e9);
  let i = 0;
  while (process.hrtime.bigint() < stopAt) {
    if (depth === 1) {
      for (let n = 0; n < 1000; n++) await one(i++);
      ops += 1000;
    } else {
      const batch = new Array(depth);
      for (let n = 0; n < depth; n++) batch[n] = one(i++);
      await Promise.all(batch);
      ops += depth;
    }
  }
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { tool: 'store-bench', name: 'embedded store', op, concurrency: depth, ok: bad === 0, bad, ops, opsPerSec: Math.round(ops / elapsed),
    cpuUsPerOp: Math.round(((used.user + used.system) / ops) * 1000) / 1000, ...hostFacts() };
}

for (const op of ['get', 'set']) for (const depth of [1, 256]) process.stdout.write(JSON.stringify(await measure(op, depth)) + '\n');
await store.close();
