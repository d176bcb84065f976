// The embedded store (used when memcached.conf has no `server=` line; ARCHITECTURE.md, "The
// embedded store and snapshots"): an in-process cache with memcached's semantics, so a single
// box works with no memcached installed. It satisfies the dialplan's
// CacheBackend structurally and answers with the codes the cluster Client reports from a real
// memcached 1.6 over the binary protocol (the default); test/support/cache-behaviour.ts runs the
// same assertions against both.
//
// Everything happens synchronously inside; the methods are async only so that the store is a
// drop-in for the Client (errors arrive as rejections, never as throws). No timers: expiry is
// checked lazily on access and under memory pressure, so nothing keeps the process alive.

import type { Item, StoreMode } from '../memcache/protocol/command.js';
import { MemcachedError, Rc } from '../util/errors.js';
import { keyBytes, MAX_KEY_BYTES } from '../util/keys.js';
import { checkCas, checkFlags, checkKeyPrefix, checkTtl, toUint64, UINT64_MAX } from '../util/request-rules.js';

export interface MemoryStoreOptions {
  /** Put in front of every key, as the Client's keyPrefix (printable ASCII, at most 127 bytes). */
  keyPrefix?: string;
  /** Memory cap, counted as memcached counts items (see ITEM_OVERHEAD). Default 64 MiB (memcached -m 64). */
  maxBytes?: number;
  /** Largest item, header and key included, as memcached's -I. Default 1 MiB. */
  maxItemBytes?: number;
  /** Clock in ms; injectable so tests can move time. Default Date.now. */
  now?: () => number;
}

export interface MemoryStoreWriteOptions {
  /** Seconds; 0 = never; above 30 days an absolute Unix time (memcached's rule). */
  ttl?: number;
  flags?: number;
}

export interface MemoryStoreStats {
  /** Items held, including expired ones not yet reclaimed (as memcached's curr_items). */
  items: number;
  /** Bytes held, counted with ITEM_OVERHEAD per item. */
  bytes: number;
  /** Live items dropped to make room (expired ones reclaimed on the way do not count). */
  evictions: number;
  getHits: number;
  getMisses: number;
  limitBytes: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ITEM_BYTES = 1024 * 1024;

/**
 * Bytes an item costs besides its key and value. memcached 1.6 (64-bit, CAS on) stores an item
 * as a 48-byte header + 8-byte CAS + key + NUL + value + CRLF, i.e. key + value + 59, and refuses
 * an item whose total is over -I: measured with the Client, the largest value for a 5-byte key
 * is 1048512 bytes in both protocols. Using memcached's own arithmetic makes the largest value
 * the same here and there; as a memory estimate it is close to a Map entry's real cost.
 */
export const ITEM_OVERHEAD = 59;

/** memcached: exptime above 30 days is an absolute Unix time. */
const MAX_RELATIVE_TTL = 60 * 60 * 24 * 30;
const UINT64_MOD = 0x1_0000_0000_0000_0000n;
/** How many of the least recently used items a write looks at for expired ones before evicting. */
const EXPIRED_SCAN_LIMIT = 64;
const SPACE = 0x20;

interface Entry {
  value: Buffer;
  flags: number;
  cas: bigint;
  /** ms on the store's clock; 0 = never. */
  expiresAtMs: number;
  /** What the item counts against the memory cap. */
  size: number;
}

/**
 * What a snapshot holds, in the order it must be replayed: the items from least to most recently
 * used, then what happened to items the walk had already passed (see Storage.records()). `key` is
 * the prefixed key's bytes as latin1; `expiresAtMs` is on the store's clock (Unix ms by default),
 * 0 for never.
 */
export type StoreRecord =
  | { readonly kind: 'item'; readonly key: string; readonly value: Buffer; readonly flags: number; readonly cas: bigint; readonly expiresAtMs: number }
  | { readonly kind: 'delete'; readonly key: string }
  | { readonly kind: 'flush' };

/** How a walk ends: the records replaying what happened behind it, and the CAS counter. */
export interface WalkEnd {
  readonly tail: readonly StoreRecord[];
  readonly lastCas: bigint;
}

/** What restoring one record did. */
export type RestoreOutcome = 'loaded' | 'expired' | 'too-large' | 'applied';

/** While a walk is under way: removals and flushes it must replay after the items it passed. */
interface Walk {
  readonly removed: Set<string>;
  flushed: boolean;
}

/**
 * The items and the rules of memcached, keyed by the prefixed key's bytes as a latin1 string
 * (one char per byte, so any byte sequence is its own key and the string's length is the key's
 * byte length). The Map's insertion order is the LRU order: a hit deletes and re-inserts.
 */
class Storage {
  readonly #items = new Map<string, Entry>();
  #maxBytes: number;
  readonly #maxItemBytes: number;
  readonly #now: () => number;
  #bytes = 0;
  #evictions = 0;
  #getHits = 0;
  #getMisses = 0;
  /** memcached hands out CAS uniques from a global counter starting at 1; 0 is never one. */
  #lastCas = 0n;
  #closed = false;
  #walk: Walk | null = null;

  constructor(maxBytes: number, maxItemBytes: number, now: () => number) {
    this.#maxBytes = maxBytes;
    this.#maxItemBytes = maxItemBytes;
    this.#now = now;
  }

  get(key: string): Entry | undefined {
    const entry = this.#live(key);
    if (entry === undefined) {
      this.#getMisses++;
      return undefined;
    }
    this.#getHits++;
    this.#bump(key, entry);
    return entry;
  }

  /** `value` becomes the store's own: the caller must not change it afterwards. */
  store(mode: StoreMode, key: string, value: Buffer, flags: number, ttl: number, cas: bigint): void {
    const size = itemSize(key, value.length);
    if (size > this.#maxItemBytes || size > this.#maxBytes) {
      // memcached drops the old item when a set fails for size, so stale data does not outlive
      // a write the caller believes replaced it; over the binary protocol a cas is a set too.
      if (mode === 'set' || mode === 'cas') this.#remove(key);
      throw new MemcachedError(Rc.E2BIG, `item of ${size} bytes is over the ${Math.min(this.#maxItemBytes, this.#maxBytes)}-byte limit`);
    }
    const existing = this.#live(key);
    switch (mode) {
      case 'add':
        if (existing !== undefined) {
          // memcached promotes the item a failed add found (do_store_item: "add only adds a
          // nonexistent item, but promote to head of LRU").
          this.#bump(key, existing);
          throw new MemcachedError(Rc.NOTSTORED);
        }
        break;
      case 'replace':
        if (existing === undefined) throw new MemcachedError(Rc.NOTSTORED);
        break;
      case 'cas':
        if (existing === undefined) throw new MemcachedError(Rc.NOTFOUND);
        if (existing.cas !== cas) throw new MemcachedError(Rc.DATA_EXISTS);
        break;
      case 'append':
      case 'prepend': {
        if (existing === undefined) throw new MemcachedError(Rc.NOTSTORED);
        const joined = mode === 'append' ? Buffer.concat([existing.value, value]) : Buffer.concat([value, existing.value]);
        // memcached answers NOT_STORED (not E2BIG) when the joined item would be too big.
        const joinedSize = itemSize(key, joined.length);
        if (joinedSize > this.#maxItemBytes || joinedSize > this.#maxBytes) throw new MemcachedError(Rc.NOTSTORED, 'the joined value would be too large');
        // append/prepend keep the item's flags and expiry.
        this.#put(key, { value: joined, flags: existing.flags, cas: this.#nextCas(), expiresAtMs: existing.expiresAtMs, size: joinedSize });
        return;
      }
      case 'set':
        break;
    }
    this.#put(key, { value, flags, cas: this.#nextCas(), expiresAtMs: this.#expiry(ttl), size });
  }

  delete(key: string, cas = 0n): void {
    const entry = this.#live(key);
    if (entry === undefined) throw new MemcachedError(Rc.NOTFOUND);
    if (cas !== 0n && entry.cas !== cas) throw new MemcachedError(Rc.DATA_EXISTS);
    this.#remove(key);
  }

  /** memcached 1.6's touch keeps the CAS unique (measured in both protocols). */
  touch(key: string, ttl: number): void {
    const entry = this.#live(key);
    if (entry === undefined) throw new MemcachedError(Rc.NOTFOUND);
    entry.expiresAtMs = this.#expiry(ttl);
    this.#bump(key, entry);
  }

  counter(op: 'incr' | 'decr', key: string, delta: bigint): bigint {
    const entry = this.#live(key);
    if (entry === undefined) throw new MemcachedError(Rc.NOTFOUND);
    // memcached refuses empty values and chunked items (over half of -I: its slab chunk limit)
    // before it looks at the digits.
    const current = entry.value.length === 0 || entry.size > this.#maxItemBytes / 2 ? null : parseCounter(entry.value);
    if (current === null) throw new MemcachedError(Rc.CLIENT_ERROR, 'cannot increment or decrement non-numeric value');
    const next = op === 'incr' ? (current + delta) % UINT64_MOD : current > delta ? current - delta : 0n;
    const digits = Buffer.from(next.toString(), 'latin1');
    if (digits.length <= entry.value.length) {
      // memcached rewrites the item in place when the number fits, padding it with spaces to the
      // old length ("100" decremented by 95 reads "5  "); the CAS unique changes all the same.
      const value = Buffer.alloc(entry.value.length, SPACE);
      digits.copy(value);
      entry.value = value;
      entry.cas = this.#nextCas();
      this.#bump(key, entry);
    } else {
      this.#put(key, { value: digits, flags: entry.flags, cas: this.#nextCas(), expiresAtMs: entry.expiresAtMs, size: itemSize(key, digits.length) });
    }
    return next;
  }

  flush(): void {
    this.#items.clear();
    this.#bytes = 0;
    if (this.#walk !== null) {
      this.#walk.flushed = true;
      this.#walk.removed.clear();
    }
  }

  /** A new memory cap; a smaller one evicts least recently used items down to it. Returns how many went. */
  resize(maxBytes: number): number {
    const before = this.#evictions;
    this.#maxBytes = maxBytes;
    this.#makeRoom(0);
    return this.#evictions - before;
  }

  /**
   * Every live item from least to most recently used, for a snapshot taken while the store keeps
   * serving: the consumer may pause between items (the walk is lazy), and writes in between are
   * not lost. A Map iterator is live: an item written or read after the walk passed it moves to
   * the Map's end and is walked again (the later record wins on restore); a flush restarts the
   * iterator on the emptied Map, so a 'flush' record goes first. The walk ends, in the same step
   * that finds the Map exhausted (so no write can slip in between), with the records that replay
   * what happened behind it — a flush after the last item, 'delete' for keys removed after the
   * walk passed them — and the CAS counter, so a restored store never hands out a unique it
   * already gave.
   */
  *records(): Generator<StoreRecord, WalkEnd, undefined> {
    if (this.#walk !== null) throw new Error('a snapshot is already walking the embedded store');
    const walk: Walk = { removed: new Set(), flushed: false };
    this.#walk = walk;
    const nowMs = this.#now();
    try {
      for (const [key, entry] of this.#items) {
        // close() empties the Map like a flush; a snapshot of that would replace a good file with an empty one.
        if (this.#closed) throw new MemcachedError(Rc.CONNECTION_FAILURE, 'the embedded store was closed during the snapshot');
        if (walk.flushed) {
          walk.flushed = false;
          yield { kind: 'flush' };
        }
        if (this.#expired(entry, nowMs)) continue;
        yield { kind: 'item', key, value: entry.value, flags: entry.flags, cas: entry.cas, expiresAtMs: entry.expiresAtMs };
      }
      if (this.#closed) throw new MemcachedError(Rc.CONNECTION_FAILURE, 'the embedded store was closed during the snapshot');
      const tail: StoreRecord[] = walk.flushed ? [{ kind: 'flush' }] : [];
      for (const key of walk.removed) {
        if (!this.#items.has(key)) tail.push({ kind: 'delete', key });
      }
      return { tail, lastCas: this.#lastCas };
    } finally {
      this.#walk = null;
    }
  }

  /** Replays one snapshot record; an item goes in as the most recently used (evicting as a write would). */
  restore(record: StoreRecord): RestoreOutcome {
    switch (record.kind) {
      case 'flush':
        this.flush();
        return 'applied';
      case 'delete':
        this.#remove(record.key);
        return 'applied';
      case 'item': {
        if (this.#expired(record, this.#now())) {
          this.#remove(record.key);
          return 'expired';
        }
        const size = itemSize(record.key, record.value.length);
        if (size > this.#maxItemBytes || size > this.#maxBytes) {
          this.#remove(record.key);
          return 'too-large';
        }
        this.#put(record.key, { value: record.value, flags: record.flags, cas: record.cas, expiresAtMs: record.expiresAtMs, size });
        if (record.cas > this.#lastCas) this.#lastCas = record.cas;
        return 'loaded';
      }
    }
  }

  /** After a restore: the CAS counter carries on from the snapshot's, never below a restored unique. */
  restoreCasCounter(lastCas: bigint): void {
    if (lastCas > this.#lastCas) this.#lastCas = lastCas;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    this.flush();
  }

  stats(): MemoryStoreStats {
    return {
      items: this.#items.size,
      bytes: this.#bytes,
      evictions: this.#evictions,
      getHits: this.#getHits,
      getMisses: this.#getMisses,
      limitBytes: this.#maxBytes,
    };
  }

  /** The live item under `key`; an expired one is reclaimed on the way and reads as missing. */
  #live(key: string): Entry | undefined {
    const entry = this.#items.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs !== 0 && this.#expired(entry, this.#now())) {
      this.#remove(key);
      return undefined;
    }
    return entry;
  }

  #expired(entry: Pick<Entry, 'expiresAtMs'>, nowMs: number): boolean {
    return entry.expiresAtMs !== 0 && entry.expiresAtMs <= nowMs;
  }

  /** memcached's exptime rule: 0 never; up to 30 days relative seconds; above, absolute Unix seconds. */
  #expiry(ttl: number): number {
    if (ttl === 0) return 0;
    if (ttl <= MAX_RELATIVE_TTL) return this.#now() + ttl * 1000;
    // An absolute time in the past is already expired: #expired() sees it at the next access.
    return ttl * 1000;
  }

  /** Moves the item to the most recently used end. */
  #bump(key: string, entry: Entry): void {
    this.#items.delete(key);
    this.#items.set(key, entry);
  }

  #nextCas(): bigint {
    this.#lastCas = (this.#lastCas + 1n) % UINT64_MOD || 1n;
    return this.#lastCas;
  }

  /** Replaces whatever is under `key`; the old item is removed first so it is never evicted for its successor. */
  #put(key: string, entry: Entry): void {
    this.#remove(key);
    this.#makeRoom(entry.size);
    this.#items.set(key, entry);
    this.#bytes += entry.size;
  }

  #remove(key: string): void {
    const old = this.#items.get(key);
    if (old === undefined) return;
    this.#items.delete(key);
    this.#bytes -= old.size;
    this.#walk?.removed.add(key);
  }

  /**
   * Frees room for `size` bytes (never more than maxBytes, checked by the caller). As memcached's
   * LRU tail pull, expired items near the cold end go first; the scan is bounded so a write stays
   * O(1) however many items are held. Then the least recently used live items are evicted.
   */
  #makeRoom(size: number): void {
    if (this.#bytes + size <= this.#maxBytes) return;
    const nowMs = this.#now();
    let scanned = 0;
    for (const [key, entry] of this.#items) {
      if (this.#bytes + size <= this.#maxBytes || ++scanned > EXPIRED_SCAN_LIMIT) break;
      if (this.#expired(entry, nowMs)) this.#remove(key);
    }
    for (const [key, entry] of this.#items) {
      if (this.#bytes + size <= this.#maxBytes) break;
      if (!this.#expired(entry, nowMs)) this.#evictions++;
      this.#remove(key);
    }
  }
}

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;

export class MemoryStore {
  readonly #storage: Storage;
  /** The prefix's bytes as latin1, ready to put in front of a key's latin1 string. */
  #prefix: string;

  constructor(options: MemoryStoreOptions = {}) {
    this.#prefix = prefixOf(options.keyPrefix ?? '');
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxItemBytes = options.maxItemBytes ?? DEFAULT_MAX_ITEM_BYTES;
    checkPositive(maxBytes, 'maxBytes');
    checkPositive(maxItemBytes, 'maxItemBytes');
    this.#storage = new Storage(maxBytes, maxItemBytes, options.now ?? Date.now);
  }

  // ---- reading ----

  /** null on a miss. The Item's value is the caller's own copy. */
  async get(key: string | Buffer): Promise<Item | null> {
    return this.#read(key);
  }

  /** get with the CAS unique, for cas(). */
  gets(key: string | Buffer): Promise<Item | null> {
    return this.get(key);
  }

  /** Many keys at once, as the Client's getMulti: misses are absent from the map. */
  async getMulti<K extends string | Buffer>(keys: readonly K[]): Promise<Map<K, Item>> {
    const found = new Map<K, Item>();
    for (const key of keys) {
      const item = this.#read(key);
      if (item !== null) found.set(key, item);
    }
    return found;
  }

  // ---- writing ----

  async set(key: string | Buffer, value: string | Buffer, options?: MemoryStoreWriteOptions): Promise<void> {
    this.#write('set', key, value, options, 0n);
  }

  /** Rejects with 14 NOTSTORED when the key exists. */
  async add(key: string | Buffer, value: string | Buffer, options?: MemoryStoreWriteOptions): Promise<void> {
    this.#write('add', key, value, options, 0n);
  }

  /** Rejects with 14 NOTSTORED when the key is missing. */
  async replace(key: string | Buffer, value: string | Buffer, options?: MemoryStoreWriteOptions): Promise<void> {
    this.#write('replace', key, value, options, 0n);
  }

  /** Rejects with 14 NOTSTORED when the key is missing; keeps the item's flags and TTL. */
  async append(key: string | Buffer, value: string | Buffer): Promise<void> {
    this.#write('append', key, value, undefined, 0n);
  }

  async prepend(key: string | Buffer, value: string | Buffer): Promise<void> {
    this.#write('prepend', key, value, undefined, 0n);
  }

  /**
   * Stores only if the item still has `cas`: 12 DATA_EXISTS if it changed, 16 NOTFOUND if it is
   * gone. 0n is never a unique: refused with 38, as by the Client.
   */
  async cas(key: string | Buffer, value: string | Buffer, cas: bigint, options?: MemoryStoreWriteOptions): Promise<void> {
    this.#write('cas', key, value, options, checkCas(cas));
  }

  /** Rejects with 16 NOTFOUND when the key is missing. */
  async delete(key: string | Buffer): Promise<void> {
    const k = this.#key(key);
    this.#open().delete(k);
  }

  /** Deletes only if the item still has `cas`: 12 DATA_EXISTS if it changed, 16 NOTFOUND if it is gone. */
  async deleteCas(key: string | Buffer, cas: bigint): Promise<void> {
    const c = checkCas(cas);
    const k = this.#key(key);
    this.#open().delete(k, c);
  }

  /** Sets a new TTL; rejects with 16 NOTFOUND when the key is missing. */
  async touch(key: string | Buffer, ttl: number): Promise<void> {
    const t = checkTtl(ttl);
    const k = this.#key(key);
    this.#open().touch(k, t);
  }

  // ---- counters (unsigned 64-bit, exact) ----

  /** Adds `delta`, wrapping at 2^64; 16 when missing, 9 CLIENT_ERROR when the value is not a number. */
  async incr(key: string | Buffer, delta: bigint | number = 1n): Promise<bigint> {
    const d = toUint64(delta, 'delta');
    const k = this.#key(key);
    return this.#open().counter('incr', k, d);
  }

  /** Subtracts `delta`, stopping at 0; 16 when missing, 9 when the value is not a number. */
  async decr(key: string | Buffer, delta: bigint | number = 1n): Promise<bigint> {
    const d = toUint64(delta, 'delta');
    const k = this.#key(key);
    return this.#open().counter('decr', k, d);
  }

  // ---- the whole store ----

  /** Drops every item (every prefix: it is flush_all). */
  async flush(): Promise<void> {
    this.#open().flush();
  }

  /**
   * A new key prefix and memory cap, keeping the items (a reload must not lose data): items
   * written under the old prefix stay, as they would on a memcached whose clients changed
   * prefix; a smaller cap evicts the least recently used down to it. Returns how many went.
   */
  reconfigure(options: Pick<MemoryStoreOptions, 'keyPrefix' | 'maxBytes'>): number {
    const prefix = prefixOf(options.keyPrefix ?? '');
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    checkPositive(maxBytes, 'maxBytes');
    this.#prefix = prefix;
    return this.#storage.resize(maxBytes);
  }

  // ---- snapshots (src/store/snapshot-format.ts) ----

  /** Every live item, least recently used first, then what changed behind the walk: see Storage.records(). */
  records(): Generator<StoreRecord, WalkEnd, undefined> {
    return this.#open().records();
  }

  /** Replays one record of a snapshot into this store. */
  restore(record: StoreRecord): RestoreOutcome {
    return this.#open().restore(record);
  }

  /** Ends a restore: the snapshot's CAS counter carries on. */
  restoreCasCounter(lastCas: bigint): void {
    this.#open().restoreCasCounter(lastCas);
  }

  /** Counters for the daemon's `show`; still answers after close() (with no items). */
  stats(): MemoryStoreStats {
    return this.#storage.stats();
  }

  /**
   * Drops every item; later calls reject with 3 CONNECTION_FAILURE, the code the Client answers
   * once it is closed, so callers see one code for "the backend is gone" whichever serves.
   */
  async close(): Promise<void> {
    this.#storage.close();
  }

  // ---- internals ----

  #read(key: string | Buffer): Item | null {
    const entry = this.#open().get(this.#key(key));
    if (entry === undefined) return null;
    // A copy: the caller may write into it without changing the stored item.
    const value = Buffer.allocUnsafe(entry.value.length);
    entry.value.copy(value);
    return { value, flags: entry.flags, cas: entry.cas };
  }

  #open(): Storage {
    if (this.#storage.closed) throw new MemcachedError(Rc.CONNECTION_FAILURE, 'the embedded store is closed');
    return this.#storage;
  }

  /** The prefixed key as a latin1 string; 33 for a bad key or prefix + key over 250 bytes. */
  #key(key: string | Buffer): string {
    // Printable ASCII is its own latin1 form: no round trip through bytes.
    if (typeof key === 'string' && key.length + this.#prefix.length <= MAX_KEY_BYTES && PRINTABLE_ASCII.test(key)) return this.#prefix + key;
    return this.#prefix + keyBytes(key, this.#prefix.length).toString('latin1');
  }

  #write(mode: StoreMode, key: string | Buffer, value: string | Buffer, options: MemoryStoreWriteOptions | undefined, cas: bigint): void {
    const flags = checkFlags(options?.flags ?? 0);
    const ttl = checkTtl(options?.ttl ?? 0);
    const k = this.#key(key);
    const storage = this.#open();
    // The stored bytes must be the store's own: a caller's Buffer is copied, so changing it
    // afterwards cannot change the item (a string is encoded into a fresh Buffer anyway).
    storage.store(mode, k, typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value), flags, ttl, cas);
  }
}

function checkPositive(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new MemcachedError(Rc.INVALID_ARGUMENTS, `${name} must be a positive integer`);
}

function itemSize(key: string, valueLength: number): number {
  return ITEM_OVERHEAD + key.length + valueLength;
}

/**
 * The number memcached reads from a value (safe_strtoull over the item's bytes, which end with
 * CRLF): C's strtoull — optional leading whitespace, an optional sign, decimal digits — then
 * whitespace or the end. Measured on memcached 1.6: " 12", "12 abc", "+5" and "-0" count; "12abc",
 * "1.5", "-1" and anything above 2^64-1 are not numbers. null when not a number.
 */
function parseCounter(value: Buffer): bigint | null {
  let i = 0;
  while (i < value.length && isCSpace(value[i]!)) i++;
  let negative = false;
  if (value[i] === 0x2b /* + */ || value[i] === 0x2d /* - */) {
    negative = value[i] === 0x2d;
    i++;
  }
  const start = i;
  while (i < value.length && value[i]! >= 0x30 && value[i]! <= 0x39) i++;
  if (i === start) return null;
  // strtoull stops at the first non-digit; memcached then wants whitespace or the string's end
  // (a NUL inside the value ends the C string).
  if (i < value.length && !isCSpace(value[i]!) && value[i] !== 0) return null;
  const magnitude = BigInt(value.toString('latin1', start, i));
  if (magnitude > UINT64_MAX) return null; // ERANGE
  const n = negative ? (UINT64_MOD - magnitude) % UINT64_MOD : magnitude;
  // memcached rejects a '-' only when the result would be negative as a signed 64-bit number,
  // so "-0" is 0 and "-18446744073709551615" is 1.
  if (negative && n > 0x7fff_ffff_ffff_ffffn) return null;
  return n;
}

/** C's isspace() in the C locale. */
function isCSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/** The Client's prefix rules, as the latin1 string put in front of keys. */
function prefixOf(keyPrefix: string): string {
  return checkKeyPrefix(Buffer.from(keyPrefix, 'utf8')).toString('latin1');
}
