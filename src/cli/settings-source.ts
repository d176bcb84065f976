// Which memcached.conf a verb reads: --config PATH (must exist and be valid), else Asterisk's
// /etc/asterisk/memcached.conf, else the C module's own file name memcache.conf (so a box
// migrating from res_memcached keeps its settings), else the built-in defaults (no server=:
// the embedded store).

import { existsSync } from 'node:fs';
import { defaultSettings, formatWarning, loadSettings, type Settings } from '../config/settings.js';
import type { Io } from './io.js';

export const DEFAULT_CONFIG_PATHS = ['/etc/asterisk/memcached.conf', '/etc/asterisk/memcache.conf'];

export function readSettings(explicitPath: string | undefined): Settings {
  // A missing or unreadable --config is a ConfigError naming the file (asterisk-conf.ts).
  if (explicitPath !== undefined) return loadSettings(explicitPath);
  const found = DEFAULT_CONFIG_PATHS.find((p) => existsSync(p));
  return found === undefined ? defaultSettings() : loadSettings(found);
}

/**
 * readSettings for the verbs that answer on the terminal (locate, check, show): the config's
 * warnings go to stderr as `file:line: message`, as serve logs them. An unknown key such as
 * distribtion= changes placement silently otherwise.
 */
export function readSettingsReporting(explicitPath: string | undefined, io: Io): Settings {
  const settings = readSettings(explicitPath);
  for (const warning of settings.warnings) io.err(`res-memcached: warning: ${formatWarning(warning)}\n`);
  return settings;
}
