// `res-memcached locate KEY...`: KEY<TAB>SERVER per key, placed exactly as the client places it.

import { Client } from '../cluster/client.js';
import { clientOptionsFromSettings } from '../daemon/client-options.js';
import { ResultError } from '../util/errors.js';
import { keyBytes } from '../util/keys.js';
import { UsageError, type Io } from './io.js';
import { readSettingsReporting } from './settings-source.js';

export async function runLocate(keys: readonly string[], configPath: string | undefined, io: Io): Promise<number> {
  if (keys.length === 0) throw new UsageError('locate needs at least one KEY');
  const settings = readSettingsReporting(configPath, io);
  const client = settings.servers.length === 0 ? null : new Client(clientOptionsFromSettings(settings));
  // The embedded store refuses a key under the same rule as the client (util/keys.ts).
  const prefixBytes = Buffer.byteLength(settings.keyPrefix, 'utf8');
  const place = (key: string): string => {
    if (client !== null) return client.locate(key) ?? '(no live server)';
    keyBytes(key, prefixBytes);
    return '(embedded store)';
  };
  // A bad key is reported and the others are still placed; the exit status tells there was one.
  let status = 0;
  try {
    for (const key of keys) {
      try {
        io.out(`${key}\t${place(key)}\n`);
      } catch (err) {
        if (!(err instanceof ResultError)) throw err;
        io.err(`res-memcached: ${JSON.stringify(key)}: ${err.code} (${err.rc}): ${err.message}\n`);
        status = 1;
      }
    }
  } finally {
    await client?.close();
  }
  return status;
}
