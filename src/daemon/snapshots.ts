// Warm restarts of the embedded store: which file it is saved to, loading it before the listener
// opens, writing it every embedded_snapshot_interval and once more when the daemon stops, and
// what to do with a file that cannot be used (move it aside, say why, start without it).

import { accessSync, constants, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';

import type { Settings, SnapshotSettings } from '../config/settings.js';
import { MemoryStore } from '../store/memory-store.js';
import { moveAside, restoreSnapshot, writeSnapshot } from '../store/snapshot-file.js';
import { SnapshotError } from '../store/snapshot-format.js';

/** How the last snapshot went, for health checks. */
export interface SnapshotStatus {
  readonly path: string;
  readonly lastOkAtMs: number | null;
  readonly lastError: string | null;
}

/**
 * The snapshot file to use, or null for none. The built-in default is a service's state
 * directory ($STATE_DIRECTORY when systemd gives one); a daemon that cannot write there (started by hand, not as the service) keeps its
 * snapshot in the user's state directory instead, and says so.
 */
export function resolveSnapshotPath(snapshot: SnapshotSettings, log: Logger): string | null {
  // systemd names the unit's StateDirectory= in $STATE_DIRECTORY (several, ':'-separated).
  const stateDirectory = process.env['STATE_DIRECTORY']?.split(':')[0];
  if (!snapshot.configured && stateDirectory) snapshot = { ...snapshot, path: join(stateDirectory, basename(snapshot.path)) };
  if (writableDirectory(dirname(snapshot.path))) return snapshot.path;
  if (snapshot.configured) {
    log.error({ snapshot: snapshot.path }, `embedded_snapshot=${snapshot.path}: its directory cannot be written; snapshots will fail until it can (the store will not survive a restart)`);
    return snapshot.path;
  }
  const stateHome = process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  const fallback = join(stateHome, 'res-memcached', 'store.snapshot');
  if (writableDirectory(dirname(fallback))) {
    log.warn({ snapshot: fallback }, `cannot write ${dirname(snapshot.path)} (not running as the service?): the embedded store is saved to ${fallback}`);
    return fallback;
  }
  log.error({ snapshot: snapshot.path }, `neither ${dirname(snapshot.path)} nor ${dirname(fallback)} can be written: the embedded store will not survive a restart (set embedded_snapshot=)`);
  return null;
}

/**
 * A new embedded store with what the snapshot at `path` holds. A file that is damaged, cut short,
 * from a newer version or unreadable is renamed beside itself (nothing is deleted) and the store
 * starts empty; one that holds more than the memory cap loads its most recently used items and is
 * kept aside whole as well.
 */
export async function openEmbeddedStore(settings: Settings, path: string | null, log: Logger): Promise<MemoryStore> {
  const fresh = (): MemoryStore => new MemoryStore({ keyPrefix: settings.keyPrefix, maxBytes: settings.embeddedMaxBytes });
  if (path === null) return fresh();
  removeStaleTempFiles(path, log);
  const store = fresh();
  try {
    const r = await restoreSnapshot(store, path);
    const fields = { snapshot: path, items: r.items, expired: r.expired, bytes: r.bytes, ms: r.ms };
    if (r.evicted > 0 || r.tooLarge > 0) {
      const aside = await moveAside(path, 'too-big').catch(() => null);
      log.warn(
        { ...fields, evicted: r.evicted, tooLarge: r.tooLarge, movedTo: aside },
        `snapshot ${path} holds more than embedded_max_memory=${settings.embeddedMaxBytes / 1_048_576} MiB: loaded the ${r.items} most recently used items, ${r.evicted + r.tooLarge} did not fit; ${aside === null ? 'the file could not be moved aside and will be replaced by the next snapshot' : `the whole file is kept as ${aside}`}`,
      );
    } else {
      log.info(fields, `embedded store restored from ${path}: ${r.items} items${r.expired > 0 ? ` (${r.expired} more had expired)` : ''} in ${r.ms} ms`);
    }
    return store;
  } catch (err) {
    await store.close();
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      log.info({ snapshot: path }, `no snapshot at ${path} yet: the embedded store starts empty`);
      return fresh();
    }
    const reason = err instanceof SnapshotError ? err.reason : 'unreadable';
    const aside = await moveAside(path, reason).catch(() => null);
    log.error(
      { snapshot: path, reason, movedTo: aside },
      `snapshot ${path} not loaded: ${(err as Error).message}; ${aside === null ? 'it could not be moved aside' : `moved aside to ${aside}`}; the embedded store starts empty`,
    );
    return fresh();
  }
}

/** Writes one store's snapshots: on a timer, on demand, never two at once. */
export class StoreSnapshots {
  readonly #store: MemoryStore;
  readonly #log: Logger;
  #path: string;
  #intervalMs: number;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<boolean> | null = null;
  #closed = false;
  #lastOkAtMs: number | null = null;
  #lastError: string | null = null;

  constructor(store: MemoryStore, path: string, intervalMs: number, log: Logger) {
    this.#store = store;
    this.#path = path;
    this.#intervalMs = intervalMs;
    this.#log = log;
  }

  get status(): SnapshotStatus {
    return { path: this.#path, lastOkAtMs: this.#lastOkAtMs, lastError: this.#lastError };
  }

  /** Starts the background snapshots (none when the interval is 0). */
  start(): void {
    this.#schedule();
  }

  /** A reload: another file or interval from now on (the store in memory is what counts). */
  reconfigure(path: string, intervalMs: number): void {
    this.#path = path;
    this.#intervalMs = intervalMs;
    this.#schedule();
  }

  /**
   * Writes the store now, after any snapshot already under way (that one may have walked past
   * writes made since). Resolves true when written; a failure is logged, never thrown.
   */
  async save(why: 'stop' | 'interval' | 'retired'): Promise<boolean> {
    while (this.#running !== null) await this.#running;
    const run = this.#write(why);
    this.#running = run;
    try {
      return await run;
    } finally {
      this.#running = null;
    }
  }

  /** Stops the timer and writes the last snapshot. */
  async close(why: 'stop' | 'retired'): Promise<boolean> {
    this.#closed = true;
    this.#clearTimer();
    return this.save(why);
  }

  /** Stops the timer without writing (snapshots turned off by a reload). */
  cancel(): void {
    this.#closed = true;
    this.#clearTimer();
  }

  async #write(why: string): Promise<boolean> {
    const path = this.#path;
    try {
      const written = await writeSnapshot(this.#store, path);
      const recovered = this.#lastError !== null;
      this.#lastOkAtMs = Date.now();
      this.#lastError = null;
      const fields = { snapshot: path, why, items: written.items, bytes: written.bytes, ms: written.ms, ...(recovered ? { recovered } : {}) };
      this.#log.info(fields, `embedded store saved to ${path}: ${written.items} items, ${written.bytes} bytes in ${written.ms} ms`);
      return true;
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#log.error({ snapshot: path, why, err: { message: (err as Error).message, code: (err as NodeJS.ErrnoException).code } }, `embedded store snapshot to ${path} failed: ${(err as Error).message}`);
      return false;
    }
  }

  #schedule(): void {
    this.#clearTimer();
    if (this.#closed || this.#intervalMs === 0) return;
    this.#timer = setInterval(() => {
      // A snapshot still running when the next is due (a huge store on a slow disk): skip a beat.
      if (this.#running === null) void this.save('interval');
    }, this.#intervalMs);
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

/** A write cut by kill -9 or a crash leaves its temp file (src/store/snapshot-file.ts names it); the finished snapshot is untouched. */
function removeStaleTempFiles(path: string, log: Logger): void {
  const prefix = `.${basename(path)}.`;
  try {
    for (const name of readdirSync(dirname(path))) {
      const pid = Number(name.slice(prefix.length, -'.tmp'.length));
      // Another daemon writing the same file now (two on one path: a misconfiguration) keeps its own.
      if (name.startsWith(prefix) && name.endsWith('.tmp') && !isRunning(pid)) {
        unlinkSync(join(dirname(path), name));
        log.info({ snapshot: path, removed: name }, `removed ${name}, left by a snapshot write that did not finish`);
      }
    }
  } catch {
    // An unreadable directory shows up when the snapshot is read or written.
  }
}

function isRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function writableDirectory(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
