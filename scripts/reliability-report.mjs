// Rows written by the reliability tests (test/support/agi-load.ts recordRow) → RELIABILITY.md.
import fs from 'node:fs';
import os from 'node:os';
import { execFileSync } from 'node:child_process';

const [file, status] = process.argv.slice(2);
const rows = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
let memcached = '';
try { memcached = execFileSync('memcached', ['-V'], { encoding: 'utf8' }).trim(); } catch { /* absent */ }
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');
const areas = [
  ['faults', 'Faults under load (real memcached processes, 127.0.0.1)'],
  ['daemon', 'The daemon stopped and reloaded under load'],
  ['embedded store', 'The embedded store keeps its data (restart, kill -9, damaged snapshots, reloads)'],
  ['leases', 'Call limits and locks (leases) across daemons, with and without the AMI link'],
  ['counters', 'Counters across daemons and servers'],
  ['agi', 'Hostile AGI sessions'],
  ['memcached', 'A lying memcached'],
  ['fuzz', 'Property-based tests'],
  ['security', 'Access and transport security'],
];
const out = [];
out.push('# Reliability');
out.push('');
out.push(`Produced by \`npm run reliability\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}, ${memcached}). Every row is a test in the repo that fails if the behaviour breaks; the same tests run in \`.ci/run\`. Test run: ${status === '0' ? 'all passed' : `**FAILED (exit ${status})**`}.`);
out.push('');
for (const [area, title] of areas) {
  const mine = rows.filter((r) => r.area === area);
  if (mine.length === 0) continue;
  out.push(`## ${title}`);
  out.push('');
  out.push('| case | what was done | measured | outcome |');
  out.push('|---|---|---|---|');
  for (const r of mine) out.push(`| ${cell(r.case)} | ${cell(r.done)} | ${cell(r.measured)} | ${cell(r.outcome)} |`);
  out.push('');
}
process.stdout.write(out.join('\n'));
