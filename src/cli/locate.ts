// `res-memcached locate KEY...`: KEY<TAB>SERVER per key, placed exactly as the client places it.

import { Client } from '../cluster/client.js';
import { clientOptionsFromSettings } from '../daemon/client-options.js';
import { MemcachedError } from '../util/errors.js';
import { UsageError, type Io } from './io.js';
import { readSettings } from './settings-source.js';

export async function runLocate(keys: readonly string[], configPath: string | undefined, io: Io): Promise<number> {
  if (keys.length === 0) throw new UsageError('locate needs at least one KEY');
  const settings = readSettings(configPath);
  if (settings.servers.length === 0) {
    for (const key of keys) io.out(`${key}\t(embedded store)\n`);
    return 0;
  }
  const client = new Client(clientOptionsFromSettings(settings));
  let status = 0;
  try {
    for (const key of keys) {
      try {
        io.out(`${key}\t${client.locate(key) ?? '(no live server)'}\n`);
      } catch (err) {
        if (!(err instanceof MemcachedError)) throw err;
        io.err(`res-memcached: ${JSON.stringify(key)}: ${err.code} (${err.rc}): ${err.message}\n`);
        status = 1;
      }
    }
  } finally {
    await client.close();
  }
  return status;
}
