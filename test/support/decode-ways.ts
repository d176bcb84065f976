// Feeds one wire transcript to a fresh decoder in every way a socket could deliver it: all at
// once, one byte per chunk, and as two chunks split at every position. An incremental decoder
// must not care where the chunk boundaries fall, so every way has to yield the same frames and,
// for malformed input, the same error after the same frames.

import assert from 'node:assert/strict';

/** The part of TextDecoder / BinaryDecoder these tests drive. */
export interface IncrementalDecoder<F> {
  feed(chunk: Buffer): void;
  next(): F | undefined;
}

interface Run<F> {
  way: string;
  frames: F[];
  error: unknown;
}

/**
 * Decodes `bytes` in every way and returns the frames (copied, so they stay valid). When the
 * decoder throws, every way must throw the same kind of error after the same frames; that error
 * is rethrown, so `assert.throws(() => decodeAllWays(...), ProtocolError)` checks malformed input.
 */
export function decodeAllWays<F>(makeDecoder: () => IncrementalDecoder<F>, bytes: Buffer): F[] {
  const runs: Run<F>[] = [decodeChunks(makeDecoder, 'whole', [bytes])];
  runs.push(decodeChunks(makeDecoder, 'byte by byte', splitBytes(bytes)));
  for (let at = 1; at < bytes.length; at++) {
    runs.push(decodeChunks(makeDecoder, `split at ${at}`, [bytes.subarray(0, at), bytes.subarray(at)]));
  }
  const reference = runs[0]!;
  for (const run of runs.slice(1)) {
    assert.deepStrictEqual(run.frames, reference.frames, `frames decoded ${run.way} differ from whole`);
    assert.deepStrictEqual(describeError(run.error), describeError(reference.error), `error decoded ${run.way} differs from whole`);
  }
  if (reference.error !== undefined) throw reference.error;
  return reference.frames;
}

function splitBytes(bytes: Buffer): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
  return chunks;
}

function decodeChunks<F>(makeDecoder: () => IncrementalDecoder<F>, way: string, chunks: Buffer[]): Run<F> {
  const decoder = makeDecoder();
  const frames: F[] = [];
  try {
    for (const chunk of chunks) {
      // A fresh copy per chunk: the decoder may borrow it, and the transcript must stay intact.
      decoder.feed(Buffer.from(chunk));
      for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) frames.push(snapshot(frame));
    }
  } catch (error) {
    return { way, frames, error };
  }
  return { way, frames, error: undefined };
}

/** A frame's Buffers may be views into the decoder's buffer: copy them before the next feed. */
function snapshot<F>(frame: F): F {
  const copy: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(frame as object)) {
    copy[name] = Buffer.isBuffer(value) ? Buffer.from(value) : value;
  }
  return copy as F;
}

function describeError(error: unknown): unknown {
  if (error === undefined) return undefined;
  if (!(error instanceof Error)) return { thrown: error };
  return { name: error.name, message: error.message, rc: (error as { rc?: unknown }).rc };
}
