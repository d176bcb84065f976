// The daemon as an administrator runs it: the built CLI spawned as its own process, its pino log
// lines parsed as they come, so a test can wait for what an administrator would read.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';

import { repoRoot } from './fixtures.js';

export const CLI = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

export type LogLine = Record<string, unknown>;

export interface DaemonProcess {
  child: ChildProcess;
  lines: LogLine[];
  /** Resolves with the first log line matching (also one already seen). */
  waitFor(match: (line: LogLine) => boolean, ms?: number): Promise<LogLine>;
  exited: Promise<number | null>;
}

/**
 * Spawns `res-memcached ARGS`. The embedded store's snapshot goes to `stateDirectory`
 * ($STATE_DIRECTORY, as systemd gives it): by default a new empty folder under `scratch`, so no
 * test reads another's data or the machine's /var/lib.
 */
export function startCli(scratch: string, args: string[], stateDirectory = mkdtempSync(join(scratch, 'state-'))): DaemonProcess {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STATE_DIRECTORY: stateDirectory } });
  const lines: LogLine[] = [];
  const waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    let nl: number;
    while ((nl = partial.indexOf('\n')) !== -1) {
      const line = JSON.parse(partial.slice(0, nl)) as LogLine;
      partial = partial.slice(nl + 1);
      lines.push(line);
      for (const w of waiters.filter((w) => w.match(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    waitFor(match, ms = 5000) {
      const seen = lines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no such log line within ${ms} ms; got:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`)), ms);
        waiters.push({ match, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    },
  };
}
