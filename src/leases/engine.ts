// Leases and locks held by channels, kept in the cache (memcached or the embedded store) so that
// every PBX of a cluster sees the same holders. A layer above the CacheBackend: it uses only
// memcached operations that are atomic on one key, so it is exact on any backend, over both
// protocols and on a cluster (each key is placed as every other key is).
//
// Layout (keys get the backend's keyprefix like every key):
//   mcdlimit:NAME:I   slot I (0 <= I < MAX) of the limit NAME. Value: the holder's identity,
//                     `<node_id> <agi_uniqueid>`; TTL lease_ttl. Taken with `add`, which memcached
//                     performs atomically per key: of two channels racing for one slot exactly one
//                     gets STORED, so no more than MAX channels can ever hold slots 0..MAX-1.
//   mcdlimit:NAME:max the highest MAX any caller used for NAME (decimal, no TTL), raised with
//                     gets/cas before a slot at or above the old value is taken: counting reads
//                     this and then the slots, so MCDLIMITCOUNT needs no MAX and sees every slot.
//   mcdlock:NAME      the lock NAME: one slot, same value and TTL.
//   mcdleases:NODE_ID what this node holds (see NodeIndex below): lets a restarted daemon find
//                     its leases again. A hint only: every use checks the slot key itself.
//
// Releasing and refreshing read the slot with gets, check that the value is our identity, and
// then delete (or rewrite with a new TTL) only if the CAS unique is unchanged: a slot that
// expired and was taken by another channel in between has a new CAS, so it is never freed or
// extended by mistake. A holder that stops refreshing (crash, no AMI) loses the slot when its TTL
// runs out: nothing outlives lease_ttl after the last refresh.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Item } from '../memcache/protocol/command.js';
import { MemcachedError, Rc, ResultError } from '../util/errors.js';
import { hasForbiddenKeyByte } from '../util/keys.js';

/** The engine's own refusal (a bad name, channel id or option, a slot that kept changing): not a cache failure. */
export class LeaseError extends ResultError {
  constructor(rc: number, message?: string, options?: { cause?: unknown; serverText?: string }) {
    super(rc, message, options);
    this.name = 'LeaseError';
  }
}

/**
 * The cache operations the engine needs, with memcached's semantics and codes (the Client and the
 * MemoryStore have them; src/dialplan/backend.ts declares the same for the commands). Declared
 * here so that this layer does not depend on the one above it.
 */
export interface LeaseBackend {
  get(key: string | Buffer): Promise<Item | null>;
  gets(key: string | Buffer): Promise<Item | null>;
  /** 14 NOTSTORED when the key exists. */
  add(key: string | Buffer, value: string | Buffer, options?: { ttl?: number }): Promise<void>;
  set(key: string | Buffer, value: string | Buffer, options?: { ttl?: number }): Promise<void>;
  /** 12 DATA_EXISTS when changed, 16 NOTFOUND when gone. */
  cas(key: string | Buffer, value: string | Buffer, cas: bigint, options?: { ttl?: number }): Promise<void>;
  /** 12 DATA_EXISTS when changed, 16 NOTFOUND when gone. */
  deleteCas(key: string | Buffer, cas: bigint): Promise<void>;
  /** Many keys in one request per server (misses absent); a count of MAX slots is one round trip. */
  getMulti<K extends string | Buffer>(keys: readonly K[]): Promise<Map<K, Item>>;
}

export type LeaseKind = 'limit' | 'lock';

export interface LeaseEngineOptions {
  /** This PBX's identity in the cache: 1-64 bytes, no whitespace or control bytes. */
  nodeId: string;
  /** Seconds a slot lives after it was taken or last refreshed (1..2592000). */
  leaseTtl: number;
  /** Clock in ms (the index's expiry marks). Default Date.now. */
  now?: () => number;
}

export interface AcquireResult {
  /** 'ok': this channel holds a slot now (taken now or already); 'full': MAX are held. */
  readonly outcome: 'ok' | 'full';
  /** Holders seen while deciding, this channel included when it holds one. */
  readonly holders: number;
  /** It already held a slot under this name: nothing more was taken. */
  readonly already: boolean;
}

/** One lease or lock this node holds (or held before a restart, until reconciled). */
export interface HeldLease {
  readonly kind: LeaseKind;
  readonly name: string;
  readonly uniqueId: string;
  /** The slot index when known; null when it must be looked up (after a restart or a lost reply). */
  readonly slot: number | null;
  /** Found in the node index at start, not yet confirmed by reconcile() or refresh(). */
  readonly restored: boolean;
}

export interface MaintenanceReport {
  /** Leases whose TTL was extended (refresh, reconcile). */
  kept: number;
  /** Leases freed (reconcile of dead channels, releaseChannel). */
  released: number;
  /** Leases found no longer ours (expired, taken by another): forgotten. */
  lost: number;
  /** Leases whose cache operation failed: kept in memory, tried again next time. */
  failed: number;
}

/** Most slots one limit may have: MCDLIMITCOUNT reads them all. */
export const MAX_LIMIT_SLOTS = 1000;
/** Bytes the engine adds around NAME in its longest key (`mcdlimit:` + NAME + `:999`/`:max`). */
export const LEASE_KEY_OVERHEAD = 'mcdlimit:'.length + ':max'.length;
const MAX_ID_BYTES = 64;
/** First and longest pause between two tries of a lock (ms); doubled with jitter in between. */
const LOCK_POLL_FIRST_MS = 5;
const LOCK_POLL_MAX_MS = 100;
/** gets/cas rounds before giving up on a key others keep changing (each lost round = one of them won). */
const CAS_ROUNDS = 16;

const SPACE = 0x20;

export class LeaseEngine {
  readonly #backend: LeaseBackend;
  readonly #nodeId: string;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #index: NodeIndex;
  /** What this process holds, by `kind name uniqueId`. */
  readonly #held = new Map<string, Held>();

  constructor(backend: LeaseBackend, options: LeaseEngineOptions) {
    if (!isIdentityPart(options.nodeId)) throw new LeaseError(Rc.INVALID_ARGUMENTS, 'node_id must be 1-64 bytes without whitespace or control characters');
    if (!Number.isInteger(options.leaseTtl) || options.leaseTtl < 1 || options.leaseTtl > 2592000) {
      throw new LeaseError(Rc.INVALID_ARGUMENTS, 'lease_ttl must be 1..2592000 seconds');
    }
    this.#backend = backend;
    this.#nodeId = options.nodeId;
    this.#ttl = options.leaseTtl;
    this.#now = options.now ?? Date.now;
    this.#index = new NodeIndex(backend, Buffer.from(`mcdleases:${options.nodeId}`, 'latin1'), options.leaseTtl, this.#now);
  }

  get nodeId(): string {
    return this.#nodeId;
  }

  get leaseTtl(): number {
    return this.#ttl;
  }

  /** The value a slot held by this channel carries. */
  identity(uniqueId: string): string {
    return `${this.#nodeId} ${uniqueId}`;
  }

  /** What this process knows it holds (restored entries included until confirmed). */
  held(): HeldLease[] {
    return [...this.#held.values()].map((h) => ({ kind: h.kind, name: h.name, uniqueId: h.uniqueId, slot: h.slot, restored: h.restored }));
  }

  /**
   * Takes a slot of the limit NAME for the channel if fewer than `max` are held; OK without
   * taking more when the channel already holds one.
   */
  async acquire(name: string | Buffer, uniqueId: string, max: number): Promise<AcquireResult> {
    const n = nameOf(name);
    checkUniqueId(uniqueId);
    if (!Number.isInteger(max) || max < 1 || max > MAX_LIMIT_SLOTS) throw new LeaseError(Rc.INVALID_ARGUMENTS, `MAX must be an integer 1..${MAX_LIMIT_SLOTS}`);
    const id = this.identity(uniqueId);
    const { entry, fresh } = this.#intent('limit', n, uniqueId);
    // Write-ahead: the index names the lease before its slot can exist, so a crash right after
    // the add still leaves it findable by reconcile().
    const [bound] = await Promise.all([this.#raiseBound(n, max), this.#index.write(this.#held)]);
    const items = await this.#readSlots(n, bound);
    const idBytes = Buffer.from(id, 'latin1');
    let holders = 0;
    let mine = -1;
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item === null || item === undefined || !isIdentity(item.value)) continue;
      holders++;
      if (mine === -1 && item.value.equals(idBytes)) mine = i;
    }
    if (mine !== -1) {
      entry.slot = mine;
      entry.restored = false;
      return { outcome: 'ok', holders, already: true };
    }
    if (holders >= max) return this.#forget(entry, fresh, { outcome: 'full', holders, already: false });
    // Free slots below max, starting at a random one so that racers spread out instead of all
    // fighting for slot 0.
    const free: number[] = [];
    for (let i = 0; i < max; i++) if (items[i] === null || !isIdentity(items[i]!.value)) free.push(i);
    const start = Math.floor(Math.random() * free.length);
    let lost = 0;
    for (let k = 0; k < free.length; k++) {
      const slot = free[(start + k) % free.length]!;
      try {
        await this.#backend.add(slotKey(n, slot), Buffer.from(id, 'latin1'), { ttl: this.#ttl });
      } catch (err) {
        if (err instanceof MemcachedError && err.rc === Rc.NOTSTORED) {
          lost++;
          continue;
        }
        // The add's outcome is unknown (a timeout may hide a STORED): the entry stays, with no
        // slot, so releaseChannel()/refresh() look it up.
        throw err;
      }
      entry.slot = slot;
      entry.restored = false;
      entry.expiresAtMs = this.#now() + this.#ttl * 1000;
      return { outcome: 'ok', holders: holders + lost + 1, already: false };
    }
    return this.#forget(entry, fresh, { outcome: 'full', holders: Math.min(max, holders + lost), already: false });
  }

  /** Frees the channel's slot of the limit NAME; false when it held none. */
  release(name: string | Buffer, uniqueId: string): Promise<boolean> {
    checkUniqueId(uniqueId);
    return this.#release('limit', nameOf(name), uniqueId);
  }

  /** Live holders of the limit NAME (slots holding an identity). */
  async count(name: string | Buffer): Promise<number> {
    const n = nameOf(name);
    const bound = await this.#readBound(n);
    const items = await this.#readSlots(n, bound);
    return items.filter((item) => item !== null && isIdentity(item.value)).length;
  }

  /**
   * Takes the lock NAME for the channel, trying until `waitMs` has passed (0: once). 'ok' also
   * when the channel already holds it.
   */
  async lock(name: string | Buffer, uniqueId: string, waitMs = 0): Promise<'ok' | 'timeout'> {
    const n = nameOf(name);
    checkUniqueId(uniqueId);
    if (!Number.isInteger(waitMs) || waitMs < 0) throw new LeaseError(Rc.INVALID_ARGUMENTS, 'WAIT_MS must be a non-negative integer');
    const deadline = this.#now() + waitMs;
    const id = this.identity(uniqueId);
    const key = lockKey(n);
    const { entry, fresh } = this.#intent('lock', n, uniqueId);
    await this.#index.write(this.#held);
    let pause = LOCK_POLL_FIRST_MS;
    for (;;) {
      try {
        await this.#backend.add(key, Buffer.from(id, 'latin1'), { ttl: this.#ttl });
        entry.slot = 0;
        entry.restored = false;
        entry.expiresAtMs = this.#now() + this.#ttl * 1000;
        return 'ok';
      } catch (err) {
        if (!(err instanceof MemcachedError && err.rc === Rc.NOTSTORED)) throw err;
      }
      const holder = await this.#backend.gets(key);
      if (holder !== null && holder.value.equals(Buffer.from(id, 'latin1'))) {
        entry.slot = 0;
        entry.restored = false;
        return 'ok';
      }
      const left = deadline - this.#now();
      if (left <= 0) return this.#forget(entry, fresh, 'timeout');
      // Polling with a bounded, jittered backoff: memcached has no way to wait on a key.
      await sleep(Math.min(left, pause * (0.5 + Math.random())));
      pause = Math.min(LOCK_POLL_MAX_MS, pause * 2);
    }
  }

  /** Frees the lock NAME if this channel holds it; false otherwise. */
  unlock(name: string | Buffer, uniqueId: string): Promise<boolean> {
    checkUniqueId(uniqueId);
    return this.#release('lock', nameOf(name), uniqueId);
  }

  /** Frees every lease and lock of the channel (at hangup). Resolves with how many were freed. */
  async releaseChannel(uniqueId: string): Promise<MaintenanceReport> {
    await this.#loadIndexQuietly();
    const report = emptyReport();
    const mine = [...this.#held.values()].filter((h) => h.uniqueId === uniqueId);
    await Promise.all(
      mine.map(async (h) => {
        try {
          if (await this.#release(h.kind, Buffer.from(h.name, 'latin1'), h.uniqueId)) report.released++;
          else report.lost++;
        } catch {
          report.failed++;
        }
      }),
    );
    return report;
  }

  /**
   * Extends the TTL of the leases this node holds — of every one, or only of channels in
   * `liveUniqueIds` when given. Entries restored from the index are refreshed only when they are
   * known to be live. A lease no longer ours is forgotten; nothing is released.
   */
  async refresh(liveUniqueIds?: ReadonlySet<string>): Promise<MaintenanceReport> {
    const report = emptyReport();
    const due = [...this.#held.values()].filter((h) => (liveUniqueIds === undefined ? !h.restored : liveUniqueIds.has(h.uniqueId)));
    await Promise.all(due.map((h) => this.#keepOne(h, report)));
    await this.#index.write(this.#held).catch(() => undefined);
    return report;
  }

  /**
   * After a (re)connect to Asterisk or a daemon restart: keeps (refreshes) the leases of channels
   * in `liveUniqueIds`, frees those of every other channel this node held, the index's included.
   */
  async reconcile(liveUniqueIds: ReadonlySet<string>): Promise<MaintenanceReport> {
    await this.#index.load(this.#held);
    const report = emptyReport();
    await Promise.all(
      [...this.#held.values()].map(async (h) => {
        if (liveUniqueIds.has(h.uniqueId)) return this.#keepOne(h, report);
        try {
          if (await this.#release(h.kind, Buffer.from(h.name, 'latin1'), h.uniqueId)) report.released++;
          else report.lost++;
        } catch {
          report.failed++;
        }
      }),
    );
    await this.#index.write(this.#held);
    return report;
  }

  // ---- internals ----

  #intent(kind: LeaseKind, name: Buffer, uniqueId: string): { entry: Held; fresh: boolean } {
    const k = heldKey(kind, name.toString('latin1'), uniqueId);
    const existing = this.#held.get(k);
    if (existing !== undefined) return { entry: existing, fresh: false };
    const entry: Held = { kind, name: name.toString('latin1'), uniqueId, slot: null, restored: false, expiresAtMs: this.#now() + this.#ttl * 1000 };
    this.#held.set(k, entry);
    return { entry, fresh: true };
  }

  /** Drops an entry that turned out not to be held, and returns `result`. */
  #forget<T>(entry: Held, _fresh: boolean, result: T): T {
    this.#held.delete(heldKey(entry.kind, entry.name, entry.uniqueId));
    return result;
  }

  async #release(kind: LeaseKind, name: Buffer, uniqueId: string): Promise<boolean> {
    const k = heldKey(kind, name.toString('latin1'), uniqueId);
    const entry = this.#held.get(k);
    const id = this.identity(uniqueId);
    let freed = false;
    const keys = kind === 'lock' ? [lockKey(name)] : await this.#candidateSlots(name, entry?.slot ?? null);
    for (const key of keys) {
      if (await this.#deleteIfOurs(key, id)) {
        freed = true;
        break;
      }
    }
    // A slot known but not ours any more: it may sit elsewhere (taken through another daemon of
    // this node); look at every slot before saying none is held.
    if (!freed && kind === 'limit' && entry?.slot !== null && entry?.slot !== undefined) {
      for (const key of await this.#candidateSlots(name, null)) {
        if (await this.#deleteIfOurs(key, id)) {
          freed = true;
          break;
        }
      }
    }
    this.#held.delete(k);
    return freed;
  }

  /** The slot keys to look at: the known one, else all of them. */
  async #candidateSlots(name: Buffer, slot: number | null): Promise<Buffer[]> {
    if (slot !== null) return [slotKey(name, slot)];
    const bound = await this.#readBound(name);
    return Array.from({ length: bound }, (_, i) => slotKey(name, i));
  }

  /** gets, check the identity, delete with that CAS; again if the item changed meanwhile. */
  async #deleteIfOurs(key: Buffer, id: string): Promise<boolean> {
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const item = await this.#backend.gets(key);
      if (item === null || !item.value.equals(Buffer.from(id, 'latin1'))) return false;
      try {
        await this.#backend.deleteCas(key, item.cas);
        return true;
      } catch (err) {
        if (!(err instanceof MemcachedError)) throw err;
        if (err.rc === Rc.NOTFOUND) return false;
        if (err.rc !== Rc.DATA_EXISTS) throw err;
        // Changed since gets (refreshed by another daemon of this node, or expired and taken):
        // look again.
      }
    }
    throw new LeaseError(Rc.FAILURE, 'the slot kept changing while being released');
  }

  /** Refreshes one held lease, counting the outcome. */
  async #keepOne(h: Held, report: MaintenanceReport): Promise<void> {
    const name = Buffer.from(h.name, 'latin1');
    const id = this.identity(h.uniqueId);
    try {
      const keys = h.kind === 'lock' ? [lockKey(name)] : await this.#candidateSlots(name, h.slot);
      for (const key of keys) {
        if (await this.#extendIfOurs(key, id)) {
          h.restored = false;
          h.expiresAtMs = this.#now() + this.#ttl * 1000;
          if (h.kind === 'limit') {
            h.slot = slotOf(key);
            // The bound record has no TTL, but it may have been evicted: put it back so counts see this slot.
            await this.#raiseBound(name, h.slot + 1);
          }
          report.kept++;
          return;
        }
      }
      if (h.kind === 'limit' && h.slot !== null) {
        // Known slot not ours: it may be elsewhere after all.
        h.slot = null;
        return this.#keepOne(h, report);
      }
      this.#held.delete(heldKey(h.kind, h.name, h.uniqueId));
      report.lost++;
    } catch {
      report.failed++;
    }
  }

  /** gets, check the identity, rewrite the same value with a fresh TTL under that CAS. */
  async #extendIfOurs(key: Buffer, id: string): Promise<boolean> {
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const item = await this.#backend.gets(key);
      if (item === null || !item.value.equals(Buffer.from(id, 'latin1'))) return false;
      try {
        await this.#backend.cas(key, item.value, item.cas, { ttl: this.#ttl });
        return true;
      } catch (err) {
        if (!(err instanceof MemcachedError)) throw err;
        if (err.rc === Rc.NOTFOUND) return false;
        if (err.rc !== Rc.DATA_EXISTS) throw err;
      }
    }
    throw new LeaseError(Rc.FAILURE, 'the slot kept changing while being refreshed');
  }

  async #readSlots(name: Buffer, bound: number): Promise<Array<{ value: Buffer; cas: bigint } | null>> {
    // One multi-get per server, not a request per slot: the cost of a count is one round trip
    // whatever MAX is (bench/limit-bench.mjs measured a get per slot at 0.05 of MCDCOUNTER's rate
    // with MAX=1000).
    const keys = Array.from({ length: bound }, (_, i) => slotKey(name, i));
    const found = await this.#backend.getMulti(keys);
    return keys.map((k) => found.get(k) ?? null);
  }

  /** The bound record, capped (a hostile or damaged value cannot make a count read millions of keys). */
  async #readBound(name: Buffer): Promise<number> {
    const item = await this.#backend.get(boundKey(name));
    return item === null ? 0 : Math.min(MAX_LIMIT_SLOTS, parseBound(item.value) ?? MAX_LIMIT_SLOTS);
  }

  /** Makes the bound record at least `n`; resolves with the bound now in force. */
  async #raiseBound(name: Buffer, n: number): Promise<number> {
    const key = boundKey(name);
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const item = await this.#backend.gets(key);
      try {
        if (item === null) {
          await this.#backend.add(key, String(n));
          return n;
        }
        const current = parseBound(item.value);
        if (current !== null && current >= n) return Math.min(MAX_LIMIT_SLOTS, current);
        await this.#backend.cas(key, String(n), item.cas);
        return n;
      } catch (err) {
        if (!(err instanceof MemcachedError)) throw err;
        if (err.rc !== Rc.NOTSTORED && err.rc !== Rc.DATA_EXISTS && err.rc !== Rc.NOTFOUND) throw err;
      }
    }
    throw new LeaseError(Rc.FAILURE, 'the limit record kept changing');
  }

  async #loadIndexQuietly(): Promise<void> {
    await this.#index.load(this.#held).catch(() => undefined);
  }
}

interface Held {
  readonly kind: LeaseKind;
  /** NAME's bytes as latin1. */
  readonly name: string;
  readonly uniqueId: string;
  slot: number | null;
  restored: boolean;
  /** When the slot expires at the latest if nobody refreshes it (ms, this process's clock). */
  expiresAtMs: number;
}

/**
 * The node index: one item per node, `mcdleases:<node_id>`, holding a line per lease this node
 * holds: `<L|K> <NAME> <agi_uniqueid> <expires, unix s>`. Rewritten whole (set, TTL lease_ttl)
 * from this process's memory — only this node writes it, so no CAS is needed — before a slot is
 * taken (write-ahead), and after refresh/reconcile. Concurrent writers are coalesced: a caller
 * waits for a write that started after its change. On first use the existing item is read and
 * merged (entries marked restored), so a restarted daemon does not erase what its predecessor
 * held before reconcile() has decided about it; entries not refreshed drop out when their
 * expiry passes, as their slots do. Its size is bounded by the leases held at once (about
 * 100 bytes each: 10,000 fit in memcached's default 1 MiB item).
 */
class NodeIndex {
  readonly #backend: LeaseBackend;
  readonly #key: Buffer;
  readonly #ttl: number;
  readonly #now: () => number;
  #loaded = false;
  #loading: Promise<void> | null = null;
  #changes = 0;
  #written = 0;
  #writing: Promise<void> | null = null;

  constructor(backend: LeaseBackend, key: Buffer, ttl: number, now: () => number) {
    this.#backend = backend;
    this.#key = key;
    this.#ttl = ttl;
    this.#now = now;
  }

  /** Merges the stored index into `held` (once; again after a failure). */
  load(held: Map<string, Held>): Promise<void> {
    if (this.#loaded) return Promise.resolve();
    this.#loading ??= (async () => {
      try {
        const item = await this.#backend.get(this.#key);
        if (item !== null) {
          const now = this.#now();
          for (const line of item.value.toString('latin1').split('\n')) {
            // Fields split on ' ' only: NAME may hold any byte above 0x20, \xa0 included, which \S would not match.
            const m = /^([LK]) ([^ ]+) ([^ ]+) ([0-9]{1,12})$/.exec(line);
            if (m === null) continue;
            const kind: LeaseKind = m[1] === 'L' ? 'limit' : 'lock';
            const expiresAtMs = Number(m[4]) * 1000;
            const k = heldKey(kind, m[2]!, m[3]!);
            if (expiresAtMs <= now || held.has(k) || !isIdentityPart(m[3]!)) continue;
            held.set(k, { kind, name: m[2]!, uniqueId: m[3]!, slot: null, restored: true, expiresAtMs });
          }
        }
        this.#loaded = true;
      } finally {
        this.#loading = null;
      }
    })();
    return this.#loading;
  }

  /** Resolves once a write that includes every change made before the call has succeeded. */
  async write(held: Map<string, Held>): Promise<void> {
    await this.load(held);
    const want = ++this.#changes;
    while (this.#written < want) {
      if (this.#writing !== null) {
        await this.#writing.catch(() => undefined);
        continue;
      }
      const upTo = this.#changes;
      this.#writing = this.#backend.set(this.#key, Buffer.from(this.#serialise(held), 'latin1'), { ttl: this.#ttl }).then(
        () => {
          this.#written = Math.max(this.#written, upTo);
        },
      );
      try {
        await this.#writing;
      } finally {
        this.#writing = null;
      }
    }
  }

  #serialise(held: Map<string, Held>): string {
    const now = this.#now();
    let text = '';
    for (const [k, h] of held) {
      // Past its expiry and not refreshed since: the cache has dropped the slot, so memory and
      // the index drop the entry too (this also bounds both when nothing ever refreshes).
      if (h.expiresAtMs <= now) {
        held.delete(k);
        continue;
      }
      text += `${h.kind === 'limit' ? 'L' : 'K'} ${h.name} ${h.uniqueId} ${Math.ceil(h.expiresAtMs / 1000)}\n`;
    }
    return text;
  }
}

function emptyReport(): MaintenanceReport {
  return { kept: 0, released: 0, lost: 0, failed: 0 };
}

function heldKey(kind: LeaseKind, name: string, uniqueId: string): string {
  return `${kind} ${name} ${uniqueId}`;
}

function nameOf(name: string | Buffer): Buffer {
  const b = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  if (b.length === 0) throw new LeaseError(Rc.ARGUMENT_NEEDED, 'a name is needed');
  if (hasForbiddenKeyByte(b)) throw new LeaseError(Rc.BAD_KEY_PROVIDED, 'the name holds whitespace or a control character');
  return b;
}

function checkUniqueId(uniqueId: string): void {
  if (!isIdentityPart(uniqueId)) throw new LeaseError(Rc.INVALID_ARGUMENTS, 'the channel id (agi_uniqueid) must be 1-64 bytes without whitespace or control characters');
}

/** A node id or channel id: printable ASCII, no whitespace, at most 64 bytes. */
export function isIdentityPart(text: string): boolean {
  return /^[\x21-\x7e]{1,64}$/.test(text) && text.length <= MAX_ID_BYTES;
}

/** A slot's value looks like `<node> <channel>`: anything else is not counted as a holder. */
function isIdentity(value: Buffer): boolean {
  const space = value.indexOf(SPACE);
  return space > 0 && space < value.length - 1 && value.indexOf(SPACE, space + 1) === -1;
}

function parseBound(value: Buffer): number | null {
  const text = value.toString('latin1');
  return /^[0-9]{1,9}$/.test(text) ? Number(text) : null;
}

function slotKey(name: Buffer, slot: number): Buffer {
  return Buffer.concat([LIMIT_PREFIX, name, Buffer.from(`:${slot}`, 'latin1')]);
}

function slotOf(key: Buffer): number {
  return Number(key.toString('latin1', key.lastIndexOf(':') + 1));
}

function boundKey(name: Buffer): Buffer {
  return Buffer.concat([LIMIT_PREFIX, name, BOUND_SUFFIX]);
}

function lockKey(name: Buffer): Buffer {
  return Buffer.concat([LOCK_PREFIX, name]);
}

const LIMIT_PREFIX = Buffer.from('mcdlimit:', 'latin1');
const BOUND_SUFFIX = Buffer.from(':max', 'latin1');
const LOCK_PREFIX = Buffer.from('mcdlock:', 'latin1');
