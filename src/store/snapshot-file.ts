// The embedded store to and from its snapshot file (format: src/store/snapshot-format.ts).
//
// Writing is atomic — a temp file beside the target, fsync, rename, fsync of the directory — so
// a crash at any moment leaves either the previous snapshot or the new one, never half of one.
// It is also incremental: the store is walked lazily and every chunk of output is handed to an
// asynchronous write, so the event loop (and every FastAGI session on it) gets the CPU back
// between chunks instead of waiting for the whole store to be serialised.

import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setImmediate } from 'node:timers/promises';

import type { MemoryStore } from './memory-store.js';
import { SnapshotDecoder, SnapshotEncoder } from './snapshot-format.js';

/**
 * Output encoded between two turns of the event loop: encoding and hashing this much is the most
 * a session waits on a snapshot (bench/snapshot-bench.mjs measures it: about 0.1-0.2 ms on a
 * 2-core VM, against 0.4-0.9 ms when a whole write's worth was encoded at once). Below 128 KiB, so
 * the copy the encoder hands out is an ordinary allocation, not a fresh mapping per chunk.
 */
const SLICE_BYTES = 64 * 1024;
/** Output written per system call (writev of the slices): fewer, larger writes cost less CPU. */
const WRITE_BYTES = 256 * 1024;
const READ_CHUNK_BYTES = 1024 * 1024;

export interface SnapshotWritten {
  /** Item records written (a key changed during the walk is written again). */
  items: number;
  bytes: number;
  ms: number;
}

export interface SnapshotRestored {
  /** Items now in the store from the file. */
  items: number;
  /** Items whose time had run out. */
  expired: number;
  /** Items over the store's item limit. */
  tooLarge: number;
  /** Items restored and then evicted because the file held more than the memory cap. */
  evicted: number;
  bytes: number;
  ms: number;
}

/** Writes `store` to `path` atomically, giving the event loop back between chunks. */
export async function writeSnapshot(store: MemoryStore, path: string): Promise<SnapshotWritten> {
  const startMs = Date.now();
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const file = await open(temp, 'w', 0o600);
  let items = 0;
  let bytes = 0;
  try {
    const encoder = new SnapshotEncoder();
    let held: Buffer[] = [];
    let heldBytes = 0;
    const take = (): void => {
      for (const chunk of encoder.take()) {
        held.push(chunk);
        heldBytes += chunk.length;
      }
    };
    const write = async (): Promise<void> => {
      const chunks = held;
      held = [];
      bytes += heldBytes;
      heldBytes = 0;
      const expected = chunks.reduce((n, c) => n + c.length, 0);
      const { bytesWritten } = chunks.length > 0 ? await file.writev(chunks) : { bytesWritten: 0 };
      // A short write (a full disk) must fail the snapshot, not be renamed over the good one.
      if (bytesWritten !== expected) throw new Error(`wrote ${bytesWritten} of ${expected} bytes (is the disk full?)`);
    };
    const walk = store.records();
    try {
      for (let step = walk.next(); ; step = walk.next()) {
        if (step.done === true) {
          encoder.end(step.value);
          break;
        }
        encoder.record(step.value);
        if (step.value.kind === 'item') items++;
        // The walk is paused while a write is under way, or for one turn of the event loop:
        // sessions run in between.
        if (encoder.pendingBytes >= SLICE_BYTES) {
          take();
          await (heldBytes >= WRITE_BYTES ? write() : setImmediate());
        }
      }
    } finally {
      // Ends the walk (and the store's bookkeeping for it) when a write failed half way.
      walk.return({ tail: [], lastCas: 0n });
    }
    take();
    await write();
    await file.sync();
  } catch (err) {
    await file.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await file.close();
  await rename(temp, path);
  await syncDirectory(dirname(path));
  return { items, bytes, ms: Date.now() - startMs };
}

/**
 * Replays the file at `path` into `store` (a fresh one: nothing in the file is trusted until its
 * checksum matched at the end, so on a SnapshotError the caller drops the store). Throws the
 * file system's error (ENOENT when there is no snapshot yet) or a SnapshotError.
 */
export async function restoreSnapshot(store: MemoryStore, path: string): Promise<SnapshotRestored> {
  const startMs = Date.now();
  const evictionsBefore = store.stats().evictions;
  const file = await open(path, 'r');
  const decoder = new SnapshotDecoder();
  const counts = { loaded: 0, expired: 0, 'too-large': 0, applied: 0 };
  let bytes = 0;
  try {
    for (;;) {
      // A new buffer per read: the decoder may keep the tail of this one (a record cut by the
      // chunk's end) until the next push.
      const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const { bytesRead } = await file.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      bytes += bytesRead;
      for (const record of decoder.push(chunk.subarray(0, bytesRead))) counts[store.restore(record)]++;
    }
  } finally {
    await file.close();
  }
  store.restoreCasCounter(decoder.finish());
  const stats = store.stats();
  return { items: stats.items, expired: counts.expired, tooLarge: counts['too-large'], evicted: stats.evictions - evictionsBefore, bytes, ms: Date.now() - startMs };
}

/** Renames a snapshot that could not be used to `<path>.<reason>-<time>`, so nothing is lost; returns the new name. */
export async function moveAside(path: string, reason: string, nowMs = Date.now()): Promise<string> {
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, '-');
  const aside = `${path}.${reason}-${stamp}`;
  await rename(path, aside);
  return aside;
}

/** The rename itself is durable only once the directory is synced. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
