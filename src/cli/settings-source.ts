// Which memcached.conf a verb reads: --config PATH (must exist and be valid), else Asterisk's
// /etc/asterisk/memcached.conf, else the C module's own file name memcache.conf (so a box
// migrating from res_memcached keeps its settings), else the built-in defaults (no server=:
// the embedded store).

import { existsSync } from 'node:fs';
import { defaultSettings, loadSettings, type Settings } from '../config/settings.js';

export const DEFAULT_CONFIG_PATHS = ['/etc/asterisk/memcached.conf', '/etc/asterisk/memcache.conf'];

export function readSettings(explicitPath: string | undefined): Settings {
  // A missing or unreadable --config is a ConfigError naming the file (asterisk-conf.ts).
  if (explicitPath !== undefined) return loadSettings(explicitPath);
  const found = DEFAULT_CONFIG_PATHS.find((p) => existsSync(p));
  return found === undefined ? defaultSettings() : loadSettings(found);
}
