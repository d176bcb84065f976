#!/usr/bin/env node
// The client over 1, 2 and 3 memcached servers (BENCHMARKS.md, "Client over 1, 2 and 3 servers": throughput should grow with servers; routing
// costs < 5 % of CPU per op). Starts its own memcached -t 1 servers. Closed loop, --concurrency
// requests in flight, keys spread by the default consistent (ketama) placement; every get is
// checked. Routing cost: the time of the continuum lookup (key hash + search) for a 3-server
// ring, measured alone, against the client's whole CPU per op in the 3-server run. (The key
// check and its bytes are paid with one server too; they are not routing.)
import { parseArgs } from 'node:util';
import { startMemcached } from './lib/memcached-server.mjs';
import { hostFacts } from './lib/env.mjs';

const { values: opt } = parseArgs({ options: {
  concurrency: { type: 'string', default: '256' }, duration: { type: 'string', default: '4' }, warmup: { type: 'string', default: '1' }, ops: { type: 'string', default: 'get,set' },
} });
const dist = (p) => new URL(`../dist/src/${p}`, import.meta.url).href;
const { Client } = await import(dist('index.js'));
const { Router } = await import(dist('cluster/router.js'));

const servers = [await startMemcached({ threads: 1 }), await startMemcached({ threads: 1 })];
servers.push(await startMemcached({ threads: 1 }));
const keys = Array.from({ length: 1000 }, (_, i) => `bench:k:${String(i).padStart(6, '0')}`);
const value = 'v'.repeat(100);

async function run(n, op) {
  const client = new Client({ servers: servers.slice(0, n).map((s) => s.address) });
  for (const k of keys) await client.set(k, value);
  let ops = 0, bad = 0, measuring = false, stop = false, i = 0;
  const worker = async () => {
    while (!stop) {
      const k = keys[i++ % keys.length];
      if (op === 'get') { const item = await client.get(k); if (item?.value.length !== 100) bad++; } else await client.set(k, value);
      if (measuring) ops++;
    }
  };
  const workers = Array.from({ length: Number(opt.concurrency) }, worker);
  await new Promise((r) => setTimeout(r, Number(opt.warmup) * 1000));
  const cpu = process.cpuUsage();
  const t = process.hrtime.bigint();
  measuring = true;
  await new Promise((r) => setTimeout(r, Number(opt.duration) * 1000));
  measuring = false;
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const used = process.cpuUsage(cpu);
  stop = true;
  await Promise.all(workers);
  await client.close();
  return { servers: n, op, ok: bad === 0, opsPerSec: Math.round(ops / seconds), clientCpuUsPerOp: Math.round(((used.user + used.system) / ops) * 100) / 100 };
}

function routingNs() {
  const router = new Router(servers.map((s) => ({ host: s.host, port: s.port, weight: 1 })), { distribution: 'consistent', weighted: false, keyHash: 'default' });
  const rounds = 2_000_000;
  const wire = keys.map((k) => Buffer.from(k));
  let sink = 0;
  const t = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) sink += router.indexFor(wire[i % wire.length]);
  return { nsPerKey: Number(process.hrtime.bigint() - t) / rounds, sink };
}

try {
  const results = [];
  for (const op of opt.ops.split(',')) for (const n of [1, 2, 3]) results.push(await run(n, op));
  const routing = routingNs();
  for (const r of results) process.stdout.write(JSON.stringify({ tool: 'cluster-bench', name: `res-memcached × ${r.servers}`, concurrency: Number(opt.concurrency), ...r,
    routingNsPerKey: Math.round(routing.nsPerKey), routingShareOfCpu: Math.round((routing.nsPerKey / 1000 / r.clientCpuUsPerOp) * 1000) / 10, ...hostFacts() }) + '\n');
} finally {
  for (const s of servers) await s.stop();
}
