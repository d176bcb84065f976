// `res-memcached check`: every server's reachability, version, items and hit ratio, and the
// protocol they were asked in.

import { Client } from '../cluster/client.js';
import { clientOptionsFromSettings } from '../daemon/client-options.js';
import { rcName } from '../util/errors.js';
import type { Io } from './io.js';
import { readSettingsReporting } from './settings-source.js';

export async function runCheck(configPath: string | undefined, io: Io): Promise<number> {
  const settings = readSettingsReporting(configPath, io);
  if (settings.servers.length === 0) {
    io.out('no server= lines: the embedded store serves (nothing to check)\n');
    return 0;
  }
  const client = new Client(clientOptionsFromSettings(settings));
  try {
    const [versions, stats] = await Promise.all([client.version(), client.stats()]);
    const rows: string[][] = [['SERVER', 'STATUS', 'VERSION', 'ITEMS', 'HIT RATIO']];
    let down = 0;
    versions.forEach((v, i) => {
      const s = stats[i]!;
      if (v.rc !== 0 || s.rc !== 0) {
        down++;
        const rc = v.rc !== 0 ? v.rc : s.rc;
        rows.push([v.server, 'DOWN', '-', '-', `${rcName(rc)} (${rc})`]);
        return;
      }
      const st = s.value ?? {};
      const hits = Number(st['get_hits'] ?? 0);
      const misses = Number(st['get_misses'] ?? 0);
      const ratio = hits + misses === 0 ? '-' : `${((100 * hits) / (hits + misses)).toFixed(1)}% (${hits}/${hits + misses})`;
      rows.push([v.server, 'up', v.value ?? '?', st['curr_items'] ?? '?', ratio]);
    });
    io.out(formatTable(rows));
    io.out(`protocol: ${client.protocol}\n`);
    return down > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
}

function formatTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}
