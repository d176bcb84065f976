// `res-memcached [serve]`: the daemon in the foreground, logging JSON lines with pino to stdout.
// SIGTERM/SIGINT: stop accepting, let sessions finish, exit 0. SIGHUP: reload the config; an
// invalid one is refused and the running one kept.

import { pino, type Logger } from 'pino';
import { ConfigError } from '../config/settings.js';
import { Daemon } from '../daemon/daemon.js';
import { readSettings } from './settings-source.js';

/** Longest a stop waits for running sessions (each is bounded by its own deadlines anyway). */
const STOP_GRACE_MS = 30_000;

export async function runServe(configPath: string | undefined, logLevel: string): Promise<number> {
  const log = pino({ level: logLevel, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(readSettings(configPath), log);
  } catch (err) {
    log.fatal(errorFields(err), `not started: ${(err as Error).message}`);
    log.flush();
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, `${signal} received`);
      daemon.stop(STOP_GRACE_MS).then(
        () => finish(0),
        (err: unknown) => {
          log.error(errorFields(err), `stop failed: ${(err as Error).message}`);
          finish(1);
        },
      );
    };
    const reload = (): void => reloadFrom(configPath, daemon, log);
    const finish = (code: number): void => {
      process.off('SIGTERM', onTerm).off('SIGINT', onInt).off('SIGHUP', reload);
      log.flush();
      resolve(code);
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm).on('SIGINT', onInt).on('SIGHUP', reload);
  });
}

function reloadFrom(configPath: string | undefined, daemon: Daemon, log: Logger): void {
  log.info({ config: configPath ?? daemon.settings.source }, 'SIGHUP received: reloading the configuration');
  const refused = (err: unknown): void => {
    log.error(errorFields(err), `reload refused, the running configuration is kept: ${(err as Error).message}`);
  };
  try {
    daemon.reload(readSettings(configPath)).catch(refused);
  } catch (err) {
    refused(err);
  }
}

/**
 * Log fields of an error: the message, and where there are, the config file:line and the error
 * code (EADDRINUSE, MEMCACHED_...). Those failures are expected and their stack says nothing;
 * anything else is a bug and goes under `err`, which pino writes with its real stack.
 */
export function errorFields(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { err };
  // A listen failure wraps the socket's error: its code is the cause's.
  const code = codeOf(err) ?? codeOf(err.cause);
  const coded = code === undefined ? {} : { code };
  if (err instanceof ConfigError) return { error: err.reason, file: err.file, line: err.line, ...coded };
  return code === undefined ? { err } : { error: err.message, ...coded };
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
