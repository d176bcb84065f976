// The public memcached client: keys and their prefix, operations as Commands, outcomes as values
// or libmemcached's result codes. The servers, placement, failure policy and connections are the
// ServerPool's (server-pool.ts).
//
// Every operation resolves with its value or rejects with a MemcachedError whose `rc` is the
// libmemcached code (`code` its name): add on an existing key rejects with 14 NOTSTORED, delete
// of a missing key with 16 NOTFOUND, and so on, identical for both protocols. A get miss is not
// an error: it resolves null.

import { MemcachedError, Rc, rcText } from '../util/errors.js';
import { keyBytes } from '../util/keys.js';
import type { SaslCredentials, SocketFactory, TlsSettings } from '../memcache/connection.js';
import type { Command, Item, Outcome, StoreMode } from '../memcache/protocol/command.js';
import { refusalRule, wireTraits, type RefusalRule } from '../memcache/protocol/codecs.js';
import type { Protocol } from '../memcache/protocol/wire-codec.js';
import { checkCas, checkFlags, checkKeyPrefix, checkTtl, toUint64 } from '../util/request-rules.js';
import { CLIENT_DEFAULTS } from './defaults.js';
import type { DistributionName, HashName } from './names.js';
import { DEFAULT_PORT, parseServerAddress, type ServerAddress } from './server-address.js';
import { ServerPool, type RequestObserver } from './server-pool.js';

export type { Item } from '../memcache/protocol/command.js';
export type { ServerAddress } from './server-address.js';
export type { RequestObserver, ServerEvent } from './server-pool.js';
export { CLIENT_DEFAULTS } from './defaults.js';

export interface ClientOptions {
  /** `host[:port][/?weight]`, `[ipv6]:port`, `/path/to/socket`, or parsed addresses. Order matters for placement. */
  servers: ReadonlyArray<string | ServerAddress>;
  /** Default 'binary' (as the C module); 'text' for the ASCII protocol, 'meta' for memcached's meta commands. */
  protocol?: Protocol;
  /** Default 'consistent' (ketama as libmemcached computes it). */
  distribution?: DistributionName;
  /** Key hash; default 'default' (one-at-a-time), or 'md5' with ketama_weighted. */
  hash?: HashName;
  /** Sent in front of every key (libmemcached's namespace). */
  keyPrefix?: string;
  /** The prefix takes part in placement (libmemcached --HASH-WITH-NAMESPACE). Default false. */
  hashWithPrefix?: boolean;
  /**
   * Hash of the consistent continuum's points; default: `hash`. libmemcached builds the continuum
   * with the key hash in force when the servers are added and does not rebuild it when the hash
   * changes later (src/libmemcached/behavior.cc, MEMCACHED_BEHAVIOR_HASH): PHP Memcached that sets
   * OPT_HASH after addServers() hashes its points with 'default'. Not used by modula or weighted
   * ketama (MD5 points).
   */
  continuumHash?: HashName;
  /**
   * How a Unix socket server's continuum points are named. 'path' (default): `/path-N`, as PHP
   * Memcached's addServer('/path', 0) and libmemcached's memcached_server_add() (port 0 is
   * stored as 11211: src/libmemcached/hosts.cc, memcached_server_add_with_weight). 'path:0':
   * `/path:0-N`, as
   * memcached_server_add_unix_socket() (pylibmc, PHP Memcached's addServers()).
   */
  socketPointNames?: 'path' | 'path:0';
  connectTimeoutMs?: number;
  /** Longest wait for a reply (ms). */
  timeoutMs?: number;
  /** How long a failed server is left alone before it is tried again (ms). */
  retryTimeoutMs?: number;
  /** Failures in a row after which a server is marked dead (35), and ejected with removeFailedServers. */
  serverFailureLimit?: number;
  /** Move a dead server's keys to the other servers until it answers again. */
  removeFailedServers?: boolean;
  /** Most requests waiting on one server; more fail at once with 31. */
  maxQueuePerServer?: number;
  tls?: TlsSettings | null;
  sasl?: SaslCredentials | null;
  socketFactory?: SocketFactory;
}

export interface StoreOptions {
  /** Seconds; 0 = never; above 30 days an absolute Unix time (memcached's rule). */
  ttl?: number;
  flags?: number;
}

export interface CounterOptions {
  /** Create a missing counter with this value (returned as is, without the delta). */
  initial?: bigint | number;
  /** TTL of a counter created with `initial`. */
  ttl?: number;
}

export interface ServerResult<T> {
  server: string;
  rc: number;
  error?: string;
  value?: T;
}

const MAX_KEYS_PER_GET = 100;

/** The keys placed on one server, in the order given (see Client.#byServer). */
interface ServerGroup<K, P> {
  wire: Buffer[];
  route: Buffer[];
  original: K[];
  payload: P[];
}

export class Client {
  readonly #pool: ServerPool;
  readonly #prefix: Buffer;
  readonly #hashWithPrefix: boolean;
  readonly #protocol: Protocol;
  readonly #anyKeyByte: boolean;
  readonly #counterWithInitial: boolean;
  readonly #quietWrites: boolean;
  /** Asked whether the protocol can carry a batch, before any of it is queued (setMulti). */
  readonly #refuse: RefusalRule;

  constructor(options: ClientOptions) {
    const o = { ...CLIENT_DEFAULTS, ...stripUndefined(options) };
    this.#protocol = o.protocol;
    ({ anyKeyByte: this.#anyKeyByte, counterWithInitial: this.#counterWithInitial, quietWrites: this.#quietWrites } = wireTraits(o.protocol));
    this.#refuse = refusalRule(o.protocol);
    this.#prefix = Buffer.from(o.keyPrefix ?? '', 'utf8');
    checkKeyPrefix(this.#prefix);
    this.#hashWithPrefix = o.hashWithPrefix ?? false;
    const addresses = o.servers.map((s) => (typeof s === 'string' ? parseServerAddress(s) : s));
    // The port libmemcached records for a socket decides its point names (router.ts continuumPointString).
    const socketPort = o.socketPointNames === 'path:0' ? 0 : DEFAULT_PORT;
    const specs = addresses.map((a) => ({ host: a.host, port: a.kind === 'unix' ? socketPort : a.port, weight: Math.max(1, a.weight) }));
    const weightsGiven = specs.some((s) => s.weight > 1);
    const distribution = o.distribution;
    this.#pool = new ServerPool({
      addresses,
      specs,
      router: {
        distribution: distribution === 'modula' ? 'modula' : distribution === 'ketama_spy' ? 'spy' : 'consistent',
        // libmemcached turns on weighted ketama when weighted servers join a consistent
        // distribution (src/libmemcached/hosts.cc server_add); ketama_weighted always is.
        weighted: distribution === 'ketama_weighted' || (distribution !== 'modula' && weightsGiven),
        keyHash: o.hash ?? (distribution === 'ketama_weighted' ? 'md5' : 'default'),
        ...(o.continuumHash === undefined ? {} : { pointHash: o.continuumHash }),
      },
      health: { retryTimeoutMs: o.retryTimeoutMs, failureLimit: Math.max(1, o.serverFailureLimit), removeFailed: o.removeFailedServers },
      protocol: o.protocol,
      connectTimeoutMs: o.connectTimeoutMs,
      timeoutMs: o.timeoutMs,
      maxQueuePerServer: o.maxQueuePerServer,
      tls: o.tls ?? null,
      sasl: o.sasl ?? null,
      socketFactory: o.socketFactory,
    });
  }

  /** Reports each request's server, code and latency to `observer` (null: stop). */
  observeRequests(observer: RequestObserver | null): void {
    this.#pool.observeRequests(observer);
  }

  /** The servers in placement order, as given. */
  get servers(): readonly ServerAddress[] {
    return this.#pool.addresses;
  }

  get protocol(): Protocol {
    return this.#protocol;
  }

  /** Requests accepted and not yet answered, over all servers (bounded by the timeouts). */
  get pendingRequests(): number {
    return this.#pool.pendingRequests;
  }

  /** Each server's health now: 'up', 'disabled' (failed, retried after the interval) or 'ejected'. */
  health(): Array<{ server: string; state: 'up' | 'disabled' | 'ejected'; failures: number }> {
    return this.#pool.health();
  }

  // ---- reading ----

  get(key: string | Buffer): Promise<Item | null> {
    return this.#read(key, false, undefined);
  }

  /** get with the CAS unique, for cas(). */
  gets(key: string | Buffer): Promise<Item | null> {
    return this.#read(key, true, undefined);
  }

  /**
   * get that also sets the item's TTL (memcached's gat; meta `mg T`, binary GAT). Resolves null,
   * touching nothing, when the key is missing.
   */
  getAndTouch(key: string | Buffer, ttl: number): Promise<Item | null> {
    let touchTtl: number;
    try {
      touchTtl = checkTtl(ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#read(key, false, touchTtl);
  }

  /** Fetches many keys with one request per server; misses are absent from the map. */
  async getMulti<K extends string | Buffer>(keys: readonly K[]): Promise<Map<K, Item>> {
    const groups = this.#byServer(keys, (key) => [key, undefined] as const);
    const result = new Map<K, Item>();
    const work: Promise<void>[] = [];
    for (const [index, group] of groups) {
      for (let i = 0; i < group.wire.length; i += MAX_KEYS_PER_GET) {
        const wire = group.wire.slice(i, i + MAX_KEYS_PER_GET);
        const original = group.original.slice(i, i + MAX_KEYS_PER_GET);
        // A lone key can follow its placement to another server; a batch fails with its server.
        const route = wire.length === 1 ? group.route[i] : undefined;
        work.push(
          this.#pool.request(index, { op: 'get', keys: wire, withCas: true }, route, asIs).then((out) => {
            if (out.rc !== Rc.SUCCESS) throw errorOf(out);
            out.items?.forEach((item, slot) => {
              if (item !== undefined) result.set(original[slot]!, item);
            });
          }),
        );
      }
    }
    await Promise.all(work);
    return result;
  }

  // ---- writing ----

  set(key: string | Buffer, value: string | Buffer, options?: StoreOptions): Promise<void> {
    return this.#store('set', key, value, options);
  }

  /**
   * Sets many entries, all with the same TTL and flags: per server, runs of at most 100 quiet
   * sets that cost one short reply each (meta `ms ... q` + `mn`, binary SETQ + NOOP; over text,
   * one pipelined set per entry). Resolves with the entries that were NOT stored, each with its
   * own error (37 E2BIG, a server's or connection's code...): an empty map means all stored.
   * Rejects only for bad arguments (33 bad key, 38 bad TTL or flags), before anything is sent.
   * Entries are sent in order, so a key given twice ends with its last value.
   */
  async setMulti<K extends string | Buffer>(entries: Iterable<readonly [K, string | Buffer]>, options?: StoreOptions): Promise<Map<K, MemcachedError>> {
    const flags = checkFlags(options?.flags ?? 0);
    const ttl = checkTtl(options?.ttl ?? 0);
    // Every key is checked before the first request is queued: a bad one sends nothing.
    const groups = this.#byServer(entries, ([key, value]) => [key, typeof value === 'string' ? Buffer.from(value, 'utf8') : value] as const);
    // Each batch is built and put to the protocol's own refusal rules first (meta takes fewer
    // raw bytes in a key it must send base64), so a key it cannot carry refuses the whole call
    // before any batch is sent rather than failing its batch after others went out.
    const batches: Array<{ index: number; at: number; cmd: Extract<Command, { op: 'storeMany' }>; route: Buffer | undefined }> = [];
    if (this.#quietWrites) {
      for (const [index, group] of groups) {
        for (let at = 0; at < group.wire.length; at += MAX_KEYS_PER_GET) {
          const keys = group.wire.slice(at, at + MAX_KEYS_PER_GET);
          const cmd = { op: 'storeMany', mode: 'set', keys, values: group.payload.slice(at, at + MAX_KEYS_PER_GET), flags, ttl } as const;
          const refusal = this.#refuse(cmd);
          if (refusal !== null) throw new MemcachedError(refusal.rc, refusal.message);
          // A lone entry can follow its placement to another server; a batch fails with its server.
          batches.push({ index, at, cmd, route: keys.length === 1 ? group.route[at] : undefined });
        }
      }
    }
    const failed = new Map<K, MemcachedError>();
    const work: Promise<void>[] = [];
    if (!this.#quietWrites) {
      for (const [index, group] of groups) {
        for (let i = 0; i < group.wire.length; i++) work.push(this.#setOne(index, group.wire[i]!, group.route[i]!, group.payload[i]!, flags, ttl, group.original[i]!, failed));
      }
    }
    for (const { index, at, cmd, route } of batches) {
      const group = groups.get(index)!;
      const { keys, values } = cmd;
      work.push(
        this.#pool.request(index, cmd, route, asIs).then(async (out) => {
          const retried = new Set(out.unattributed);
          const again: Promise<void>[] = [];
          for (let slot = 0; slot < keys.length; slot++) {
            // The server refused one entry of the run without saying which (meta's
            // SERVER_ERROR): set each suspect again on its own, whose reply names its fate.
            // Sets are idempotent, so an entry stored the first time is only stored again.
            if (retried.has(slot)) {
              again.push(this.#setOne(index, keys[slot]!, group.route[at + slot]!, values[slot]!, flags, ttl, group.original[at + slot]!, failed));
              continue;
            }
            const rc = out.rcs?.[slot] ?? out.rc;
            if (rc !== Rc.SUCCESS) failed.set(group.original[at + slot]!, errorOf(rc === out.rc ? out : { rc }));
          }
          await Promise.all(again);
        }),
      );
    }
    await Promise.all(work);
    return failed;
  }

  /** Rejects with 14 NOTSTORED when the key exists. */
  add(key: string | Buffer, value: string | Buffer, options?: StoreOptions): Promise<void> {
    return this.#store('add', key, value, options);
  }

  /** Rejects with 14 NOTSTORED when the key is missing. */
  replace(key: string | Buffer, value: string | Buffer, options?: StoreOptions): Promise<void> {
    return this.#store('replace', key, value, options);
  }

  /** Server-side append; rejects with 14 NOTSTORED when the key is missing. */
  append(key: string | Buffer, value: string | Buffer): Promise<void> {
    return this.#store('append', key, value, undefined);
  }

  prepend(key: string | Buffer, value: string | Buffer): Promise<void> {
    return this.#store('prepend', key, value, undefined);
  }

  /** Stores only if the item still has `cas`; rejects with 12 DATA_EXISTS if it changed, 16 if it is gone. */
  cas(key: string | Buffer, value: string | Buffer, cas: bigint, options?: StoreOptions): Promise<void> {
    try {
      checkCas(cas);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#store('cas', key, value, options, cas);
  }


  /** Rejects with 16 NOTFOUND when the key is missing. */
  delete(key: string | Buffer): Promise<void> {
    return this.#single(key, (k) => ({ op: 'delete', key: k }), expectSuccess);
  }

  /**
   * Deletes only if the item still has `cas` (from gets): rejects with 12 DATA_EXISTS if it
   * changed, 16 if it is gone. Binary: a delete carrying the CAS; text: see encodeText.
   */
  deleteCas(key: string | Buffer, cas: bigint): Promise<void> {
    try {
      checkCas(cas);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#single(key, (k) => ({ op: 'delete', key: k, cas }), expectSuccess);
  }

  touch(key: string | Buffer, ttl: number): Promise<void> {
    let t: number;
    try {
      t = checkTtl(ttl);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#single(key, (k) => ({ op: 'touch', key: k, ttl: t }), expectSuccess);
  }

  // ---- counters (unsigned 64-bit, exact) ----

  /** Adds `delta` (wrapping at 2^64); rejects with 16 when missing unless `initial` is given. */
  incr(key: string | Buffer, delta: bigint | number = 1n, options?: CounterOptions): Promise<bigint> {
    return this.#counter('incr', key, delta, options);
  }

  /** Subtracts `delta`; memcached stops at 0. */
  decr(key: string | Buffer, delta: bigint | number = 1n, options?: CounterOptions): Promise<bigint> {
    return this.#counter('decr', key, delta, options);
  }

  // ---- every server ----

  /** flush_all on every server; rejects if one fails. */
  async flush(delaySeconds = 0): Promise<void> {
    const results = await this.#everyServer({ op: 'flush', delay: checkTtl(delaySeconds) });
    const failed = results.find((r) => r.rc !== Rc.SUCCESS);
    if (failed) throw new MemcachedError(failed.rc, `${failed.server}: ${failed.error ?? rcText(failed.rc)}`);
  }

  /** Each server's version, or its code when it cannot be reached. Never rejects. */
  async version(): Promise<ServerResult<string>[]> {
    return (await this.#everyServer({ op: 'version' })).map(({ out, ...r }) => (out?.text !== undefined ? { ...r, value: out.text } : r));
  }

  /** Each server's `stats [group]`, or its code. Never rejects. */
  async stats(group?: string): Promise<ServerResult<Record<string, string>>[]> {
    const cmd: Command = group ? { op: 'stats', group } : { op: 'stats' };
    return (await this.#everyServer(cmd)).map(({ out, ...r }) => (out?.stats ? { ...r, value: Object.fromEntries(out.stats) } : r));
  }

  /** The server (as written in its `server=` line or options) that `key` maps to now; null if none is live. */
  locate(key: string | Buffer): string | null {
    const { route } = this.#key(key);
    const index = this.#pool.pick(route);
    return index < 0 ? null : this.#pool.name(index);
  }

  /** Answers what is in flight, then closes every connection. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  // ---- internals ----

  /**
   * Items grouped by the server their key is placed on, in the order given, each key with its
   * wire and placement bytes and the item's payload; throws 33 at the first bad key.
   */
  #byServer<T, K extends string | Buffer, P>(items: Iterable<T>, split: (item: T) => readonly [K, P]): Map<number, ServerGroup<K, P>> {
    const groups = new Map<number, ServerGroup<K, P>>();
    for (const item of items) {
      const [key, payload] = split(item);
      const { wire, route } = this.#key(key);
      const index = this.#pool.pick(route);
      let group = groups.get(index);
      if (group === undefined) groups.set(index, (group = { wire: [], route: [], original: [], payload: [] }));
      group.wire.push(wire);
      group.route.push(route);
      group.original.push(key);
      group.payload.push(payload);
    }
    return groups;
  }

  /** Prefixed wire bytes and the bytes that take part in placement; throws 33 for a bad key. */
  #key(key: string | Buffer): { wire: Buffer; route: Buffer } {
    const raw = this.#rawKey(key);
    const wire = this.#wireKey(raw);
    return { wire, route: this.#routeKey(raw, wire) };
  }

  // The three steps of #key, kept apart so #single makes no object per request for them.

  /** The caller's key as bytes, checked against the protocol's key rules; throws 33. */
  #rawKey(key: string | Buffer): Buffer {
    return keyBytes(key, this.#prefix.length, this.#anyKeyByte);
  }

  #wireKey(raw: Buffer): Buffer {
    return this.#prefix.length === 0 ? raw : Buffer.concat([this.#prefix, raw]);
  }

  #routeKey(raw: Buffer, wire: Buffer): Buffer {
    return this.#hashWithPrefix ? wire : raw;
  }

  #read(key: string | Buffer, withCas: boolean, touchTtl: number | undefined): Promise<Item | null> {
    const make = touchTtl !== undefined ? (wire: Buffer): Command => ({ op: 'get', keys: [wire], withCas, touchTtl }) : withCas ? getsOf : getOf;
    return this.#single(key, make, firstItem);
  }

  #single<T>(key: string | Buffer, make: (wire: Buffer) => Command, finish: (out: Outcome) => T): Promise<T> {
    let raw: Buffer;
    try {
      raw = this.#rawKey(key);
    } catch (err) {
      return Promise.reject(err);
    }
    const wire = this.#wireKey(raw);
    const route = this.#routeKey(raw, wire);
    return this.#pool.request(this.#pool.pick(route), make(wire), route, finish);
  }

  #store(mode: StoreMode, key: string | Buffer, value: string | Buffer, options: StoreOptions | undefined, cas?: bigint): Promise<void> {
    let flags: number;
    let ttl: number;
    try {
      flags = checkFlags(options?.flags ?? 0);
      ttl = checkTtl(options?.ttl ?? 0);
    } catch (err) {
      return Promise.reject(err);
    }
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    return this.#single(
      key,
      (wire): Command => (mode === 'cas' ? { op: 'store', mode, key: wire, value: data, flags, ttl, cas: cas ?? 0n } : { op: 'store', mode, key: wire, value: data, flags, ttl }),
      expectSuccess,
    );
  }

  /** One set of setMulti's: its failure goes into `failed`, never rejects. */
  #setOne<K>(index: number, key: Buffer, route: Buffer, value: Buffer, flags: number, ttl: number, original: K, failed: Map<K, MemcachedError>): Promise<void> {
    return this.#pool.request(index, { op: 'store', mode: 'set', key, value, flags, ttl }, route, (out) => {
      if (out.rc !== Rc.SUCCESS) failed.set(original, errorOf(out));
    });
  }

  #counter(op: 'incr' | 'decr', key: string | Buffer, delta: bigint | number, options: CounterOptions | undefined): Promise<bigint> {
    let d: bigint;
    let initial: bigint | undefined;
    let ttl: number;
    let k: { wire: Buffer; route: Buffer };
    try {
      d = toUint64(delta, 'delta');
      initial = options?.initial === undefined ? undefined : toUint64(options.initial, 'initial');
      ttl = checkTtl(options?.ttl ?? 0);
      k = this.#key(key);
    } catch (err) {
      return Promise.reject(err);
    }
    const index = this.#pool.pick(k.route);
    if (initial !== undefined && !this.#counterWithInitial) return this.#counterWithInitialEmulated(index, op, k, d, initial, ttl);
    const cmd: Command = initial === undefined ? { op, key: k.wire, delta: d } : { op, key: k.wire, delta: d, initial, ttl };
    return this.#pool.request(index, cmd, k.route, counterValue);
  }

  /** A protocol that cannot create a counter (text): incr, else add, else (lost a race) incr again. */
  async #counterWithInitialEmulated(index: number, op: 'incr' | 'decr', k: { wire: Buffer; route: Buffer }, delta: bigint, initial: bigint, ttl: number): Promise<bigint> {
    const key = k.wire;
    for (let attempt = 0; attempt < 3; attempt++) {
      const out = await this.#pool.request(index, { op, key, delta }, k.route, asIs);
      if (out.rc === Rc.SUCCESS) return out.number!;
      if (out.rc !== Rc.NOTFOUND) throw errorOf(out);
      const added = await this.#pool.request(index, { op: 'store', mode: 'add', key, value: Buffer.from(initial.toString(), 'latin1'), flags: 0, ttl }, k.route, asIs);
      if (added.rc === Rc.SUCCESS) return initial;
      if (added.rc !== Rc.NOTSTORED) throw errorOf(added);
    }
    throw new MemcachedError(Rc.FAILURE, 'counter kept disappearing while being created');
  }

  async #everyServer(cmd: Command): Promise<Array<{ server: string; rc: number; error?: string; out?: Outcome }>> {
    const pool = this.#pool;
    return Promise.all(
      pool.addresses.map(async ({ text: server }, index) => {
        const out = await pool.request(index, cmd, undefined, asIs);
        if (out.rc === Rc.SUCCESS) return { server, rc: out.rc, out };
        return { server, rc: out.rc, error: out.text ?? rcText(out.rc) };
      }),
    );
  }
}

// The commands of get and gets, made once: a closure per call would cost an allocation on the
// busiest path.
const getOf = (wire: Buffer): Command => ({ op: 'get', keys: [wire], withCas: false });
const getsOf = (wire: Buffer): Command => ({ op: 'get', keys: [wire], withCas: true });

function firstItem(out: Outcome): Item | null {
  if (out.rc !== Rc.SUCCESS) throw errorOf(out);
  return out.items?.[0] ?? null;
}

function asIs(out: Outcome): Outcome {
  return out;
}

function counterValue(out: Outcome): bigint {
  if (out.rc !== Rc.SUCCESS) throw errorOf(out);
  return out.number!;
}

function expectSuccess(out: Outcome): void {
  if (out.rc !== Rc.SUCCESS) throw errorOf(out);
}

function errorOf(out: Outcome): MemcachedError {
  const message = out.text ? `${rcText(out.rc)}: ${out.text}` : rcText(out.rc);
  return new MemcachedError(out.rc, message, out.text === undefined ? undefined : { serverText: out.text });
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
