// The FastAGI daemon started in process for a test, on a free 127.0.0.1 port, with its log lines
// captured so tests can assert what an administrator would read.

import { pino } from 'pino';
import { parseConfigText } from './config-text.js';
import { settingsFromConfig, type Settings } from '../../src/config/settings.js';
import { Daemon } from '../../src/daemon/daemon.js';

export interface LogEntry {
  level: number;
  msg: string;
  [field: string]: unknown;
}

export interface TestDaemon {
  readonly daemon: Daemon;
  readonly port: number;
  readonly logs: LogEntry[];
  /** `agi://127.0.0.1:PORT/<script>` */
  url(script: string): string;
  stop(graceMs?: number): Promise<void>;
}

export function settingsFromText(configText: string): Settings {
  const settings = settingsFromConfig(parseConfigText(configText, '/test/memcached.conf'));
  settings.agi.port = 0; // a free port, picked when listening
  settings.http.port = 0;
  // A test never reads or writes the machine's state directory: snapshots only where a test
  // names the file (embedded_snapshot=/its/temp/dir/...).
  if (settings.embeddedSnapshot?.configured !== true) settings.embeddedSnapshot = null;
  return settings;
}

export async function startDaemon(configText: string, tweak: (s: Settings) => void = () => undefined): Promise<TestDaemon> {
  const settings = settingsFromText(configText);
  tweak(settings);
  const logs: LogEntry[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as LogEntry) });
  const daemon = await Daemon.start(settings, log);
  const port = daemon.address.port;
  return {
    daemon,
    port,
    logs,
    url: (script) => `agi://127.0.0.1:${port}/${script}`,
    stop: (graceMs = 5000) => daemon.stop(graceMs, 0),
  };
}
