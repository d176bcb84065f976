// The embedded store's snapshot file, as bytes: a pure codec (no files, no clock). The file is
// written while the store keeps serving (src/daemon/snapshots.ts) and read back before the
// listener opens, so an encoder takes records one at a time and hands out bytes in chunks, and a
// decoder takes chunks in any size and yields records; neither holds the whole file.
//
// Layout, integers big-endian:
//   header   "RMCDSNAP" (8 bytes), version u32 (= 1), reserved u32 (= 0)
//   records  0x01 item:   key length u8, value length u32, flags u32, cas u64,
//                         expiry f64 (Unix ms on the store's clock, 0 = never), key, value
//            0x02 delete: key length u8, key
//            0x03 flush
//   end      0xFF, the store's CAS counter u64, then SHA-256 of every byte before the digest
// Records replay in order (src/store/memory-store.ts Storage.records() says why a key can come
// twice and why delete and flush records exist). Nothing after the digest; nothing is trusted
// until the digest matches, which is why a restore fills a fresh store and keeps it only then.

import { createHash, type Hash } from 'node:crypto';

import { ByteWriter } from '../util/byte-writer.js';
import { MAX_KEY_BYTES } from '../util/keys.js';
import { ReadBuffer } from '../util/read-buffer.js';
import type { StoreRecord, WalkEnd } from './memory-store.js';

export const SNAPSHOT_MAGIC = Buffer.from('RMCDSNAP', 'latin1');
export const SNAPSHOT_VERSION = 1;

const HEADER_BYTES = 16;
const TAG_ITEM = 0x01;
const TAG_DELETE = 0x02;
const TAG_FLUSH = 0x03;
const TAG_END = 0xff;
/** tag, key length, value length, flags, cas, expiry. */
const ITEM_HEAD_BYTES = 1 + 1 + 4 + 4 + 8 + 8;
const END_BYTES = 1 + 8;
const DIGEST_BYTES = 32;
/** memcached's -I cannot go above 1 GiB; a longer value length is damage, not data. */
const MAX_VALUE_BYTES = 1024 * 1024 * 1024;

/** Why a file cannot be restored; `reason` is for logs and for the name the file is moved aside to. */
export class SnapshotError extends Error {
  constructor(
    readonly reason: 'not-a-snapshot' | 'future-version' | 'truncated' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotError';
  }
}

/** Records in, bytes out. Call take() whenever convenient; the bytes taken are the file's, in order. */
export class SnapshotEncoder {
  readonly #out = new ByteWriter(64 * 1024);
  readonly #hash: Hash = createHash('sha256');
  #ended = false;

  constructor() {
    this.#out.bytes(SNAPSHOT_MAGIC);
    this.#out.uint32(SNAPSHOT_VERSION);
    this.#out.uint32(0);
  }

  /** Bytes held and not yet taken. */
  get pendingBytes(): number {
    return this.#out.pendingBytes;
  }

  record(record: StoreRecord): void {
    switch (record.kind) {
      case 'item': {
        const at = this.#out.reserve(ITEM_HEAD_BYTES);
        const head = this.#out.staging;
        head[at] = TAG_ITEM;
        head[at + 1] = record.key.length;
        head.writeUInt32BE(record.value.length, at + 2);
        head.writeUInt32BE(record.flags >>> 0, at + 6);
        head.writeBigUInt64BE(record.cas, at + 10);
        head.writeDoubleBE(record.expiresAtMs, at + 18);
        this.#out.latin1(record.key);
        this.#out.bytes(record.value);
        return;
      }
      case 'delete':
        this.#out.byte(TAG_DELETE);
        this.#out.byte(record.key.length);
        this.#out.latin1(record.key);
        return;
      case 'flush':
        this.#out.byte(TAG_FLUSH);
        return;
    }
  }

  /** The walk's tail, the end record and the digest; nothing may follow. */
  end(walkEnd: WalkEnd): void {
    for (const record of walkEnd.tail) this.record(record);
    this.#out.byte(TAG_END);
    this.#out.uint64(walkEnd.lastCas);
    this.#ended = true;
  }

  /** The bytes written since the last take (after end(), the digest as the last chunk). */
  take(): Buffer[] {
    const chunks = this.#out.take();
    for (const chunk of chunks) this.#hash.update(chunk);
    if (this.#ended) chunks.push(this.#hash.digest());
    return chunks;
  }
}

/** Bytes in (any chunking), records out; finish() says whether the file was whole. */
export class SnapshotDecoder {
  readonly #in = new ReadBuffer();
  readonly #hash: Hash = createHash('sha256');
  #headerSeen = false;
  #lastCas: bigint | null = null;
  #verified = false;

  /** Records completed by this chunk, in order. Throws SnapshotError on bytes no snapshot has. */
  push(chunk: Buffer): StoreRecord[] {
    this.#in.append(chunk);
    const records: StoreRecord[] = [];
    if (!this.#headerSeen && !this.#header()) return records;
    for (;;) {
      if (this.#lastCas !== null) {
        this.#digest();
        return records;
      }
      const record = this.#record();
      if (record === null) return records;
      if (record !== END) records.push(record);
    }
  }

  /** At the end of the file: the store's CAS counter when the file was whole and its digest matched. */
  finish(): bigint {
    // Bytes that are not a header's start were refused by push() already.
    if (!this.#headerSeen) throw new SnapshotError('truncated', 'the file is shorter than a snapshot header');
    if (this.#lastCas === null || !this.#verified) throw new SnapshotError('truncated', 'the file ends before the snapshot does (no end record and checksum): it was cut short');
    return this.#lastCas;
  }

  #header(): boolean {
    const n = Math.min(this.#in.available, SNAPSHOT_MAGIC.length);
    if (!this.#in.peek(n).equals(SNAPSHOT_MAGIC.subarray(0, n))) throw new SnapshotError('not-a-snapshot', 'the file does not start with a res-memcached snapshot header');
    if (this.#in.available < HEADER_BYTES) return false;
    const version = this.#in.readUInt32BE(8);
    if (version !== SNAPSHOT_VERSION) {
      throw new SnapshotError(version > SNAPSHOT_VERSION ? 'future-version' : 'corrupt', `snapshot format version ${version}; this res-memcached reads version ${SNAPSHOT_VERSION}`);
    }
    this.#consume(HEADER_BYTES);
    this.#headerSeen = true;
    return true;
  }

  /** The next whole record, END for the end record, null when more bytes are needed. */
  #record(): StoreRecord | typeof END | null {
    const available = this.#in.available;
    if (available === 0) return null;
    const tag = this.#in.byteAt(0);
    switch (tag) {
      case TAG_ITEM: {
        if (available < ITEM_HEAD_BYTES) return null;
        const keyLength = this.#checkKeyLength(this.#in.byteAt(1));
        const valueLength = this.#in.readUInt32BE(2);
        if (valueLength > MAX_VALUE_BYTES) throw new SnapshotError('corrupt', `an item claims a ${valueLength}-byte value`);
        if (available < ITEM_HEAD_BYTES + keyLength + valueLength) return null;
        const head = this.#in.peek(ITEM_HEAD_BYTES);
        const flags = head.readUInt32BE(6);
        const cas = head.readBigUInt64BE(10);
        const expiresAtMs = head.readDoubleBE(18);
        if (!Number.isFinite(expiresAtMs) || expiresAtMs < 0) throw new SnapshotError('corrupt', 'an item has an impossible expiry');
        this.#consume(ITEM_HEAD_BYTES);
        const key = this.#in.latin1(keyLength);
        this.#consume(keyLength);
        // A copy the store keeps: a view would pin the whole read chunk for the item's lifetime.
        const value = this.#in.copy(valueLength);
        this.#consume(valueLength);
        return { kind: 'item', key, value, flags, cas, expiresAtMs };
      }
      case TAG_DELETE: {
        if (available < 2) return null;
        const keyLength = this.#checkKeyLength(this.#in.byteAt(1));
        if (available < 2 + keyLength) return null;
        this.#consume(2);
        const key = this.#in.latin1(keyLength);
        this.#consume(keyLength);
        return { kind: 'delete', key };
      }
      case TAG_FLUSH:
        this.#consume(1);
        return { kind: 'flush' };
      case TAG_END:
        if (available < END_BYTES) return null;
        this.#lastCas = this.#in.readBigUInt64BE(1);
        this.#consume(END_BYTES);
        return END;
      default:
        throw new SnapshotError('corrupt', `an unknown record type 0x${tag.toString(16).padStart(2, '0')}`);
    }
  }

  #checkKeyLength(length: number): number {
    if (length === 0 || length > MAX_KEY_BYTES) throw new SnapshotError('corrupt', `a key of ${length} bytes`);
    return length;
  }

  /** After the end record: the digest, then nothing. */
  #digest(): void {
    if (this.#verified) {
      if (this.#in.available > 0) throw new SnapshotError('corrupt', 'bytes follow the end of the snapshot');
      return;
    }
    if (this.#in.available < DIGEST_BYTES) return;
    if (!this.#in.peek(DIGEST_BYTES).equals(this.#hash.digest())) throw new SnapshotError('corrupt', 'the checksum does not match: the file was damaged');
    this.#in.skip(DIGEST_BYTES);
    this.#verified = true;
    if (this.#in.available > 0) throw new SnapshotError('corrupt', 'bytes follow the end of the snapshot');
  }

  /** Hashes and drops the next `length` bytes. */
  #consume(length: number): void {
    this.#hash.update(this.#in.peek(length));
    this.#in.skip(length);
  }
}

const END = Symbol('end');
