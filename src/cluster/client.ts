// The public memcached client (SPEC §5): keys → server (libmemcached's placement), one lazily
// opened, pipelined connection per server, failure policy, and the result codes of libmemcached.
//
// Every operation resolves with its value or rejects with a MemcachedError whose `rc` is the
// libmemcached code (`code` its name): add on an existing key rejects with 14 NOTSTORED, delete
// of a missing key with 16 NOTFOUND, and so on, identical for both protocols. A get miss is not
// an error: it resolves null.

import { channel } from 'node:diagnostics_channel';
import { MemcachedError, Rc, rcText } from '../util/errors.js';
import { keyBytes } from '../util/keys.js';
import { Connection, settle, type Address, type PendingRequest, type Protocol, type SaslCredentials, type SocketFactory, type TlsSettings } from '../memcache/connection.js';
import type { Command, Item, Outcome, StoreMode } from '../memcache/protocol/command.js';
import { checkCas, checkFlags, checkKeyPrefix, checkTtl, toUint64 } from '../util/request-rules.js';
import { CLIENT_DEFAULTS } from './defaults.js';
import { ServerHealth } from './health.js';
import type { DistributionName, HashName, ServerSpec } from './names.js';
import { Router, type RouterOptions } from './router.js';
import { DEFAULT_PORT, parseServerAddress, type ServerAddress } from './server-address.js';

export type { Item } from '../memcache/protocol/command.js';
export type { ServerAddress } from './server-address.js';
export { CLIENT_DEFAULTS } from './defaults.js';

export interface ClientOptions {
  /** `host[:port][/?weight]`, `[ipv6]:port`, `/path/to/socket`, or parsed addresses. Order matters for placement. */
  servers: ReadonlyArray<string | ServerAddress>;
  /** Default 'binary' (as the C module). */
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

/** Published on `res-memcached:server` when a server's health changes. */
export interface ServerEvent {
  server: string;
  event: 'failure' | 'ejected' | 'revived' | 'recovered';
  rc?: number;
  message?: string;
  failures?: number;
}

/**
 * Told of every request the Client routes to a server (for metrics). Set with
 * Client.observeRequests; without one the request path reads no clock.
 */
export interface RequestObserver {
  /** The request settled with `rc` after `ms`, queued to settled. */
  completed(serverIndex: number, rc: number, ms: number): void;
  /** Answered at once with the server's health code (47, 35), never sent. */
  refused(serverIndex: number): void;
}

const serverChannel = channel('res-memcached:server');

const MAX_KEYS_PER_GET = 100;

interface Server {
  readonly index: number;
  readonly address: ServerAddress;
  readonly health: ServerHealth;
  readonly conn: Connection;
  probe: NodeJS.Timeout | null;
}

export class Client {
  readonly #servers: Server[];
  readonly #prefix: Buffer;
  readonly #hashWithPrefix: boolean;
  readonly #protocol: Protocol;
  readonly #routerOptions: RouterOptions;
  readonly #specs: ServerSpec[];
  #router: Router;
  #closed = false;
  #observer: RequestObserver | null = null;

  constructor(options: ClientOptions) {
    const o = { ...CLIENT_DEFAULTS, ...stripUndefined(options) };
    this.#protocol = o.protocol;
    this.#prefix = Buffer.from(o.keyPrefix ?? '', 'utf8');
    checkKeyPrefix(this.#prefix);
    this.#hashWithPrefix = o.hashWithPrefix ?? false;
    const addresses = o.servers.map((s) => (typeof s === 'string' ? parseServerAddress(s) : s));
    // The port libmemcached records for a socket decides its point names (router.ts continuumPointString).
    const socketPort = o.socketPointNames === 'path:0' ? 0 : DEFAULT_PORT;
    this.#specs = addresses.map((a) => ({ host: a.host, port: a.kind === 'unix' ? socketPort : a.port, weight: Math.max(1, a.weight) }));
    const weightsGiven = this.#specs.some((s) => s.weight > 1);
    const distribution = o.distribution;
    this.#routerOptions = {
      distribution: distribution === 'modula' ? 'modula' : distribution === 'ketama_spy' ? 'spy' : 'consistent',
      // libmemcached turns on weighted ketama when weighted servers join a consistent
      // distribution (src/libmemcached/hosts.cc server_add); ketama_weighted always is.
      weighted: distribution === 'ketama_weighted' || (distribution !== 'modula' && weightsGiven),
      keyHash: o.hash ?? (distribution === 'ketama_weighted' ? 'md5' : 'default'),
      ...(o.continuumHash === undefined ? {} : { pointHash: o.continuumHash }),
    };
    this.#router = new Router(this.#specs, this.#routerOptions);
    const policy = { retryTimeoutMs: o.retryTimeoutMs, failureLimit: Math.max(1, o.serverFailureLimit), removeFailed: o.removeFailedServers };
    this.#servers = addresses.map((address, index) => ({
      index,
      address,
      health: new ServerHealth(policy),
      probe: null,
      conn: new Connection(
        {
          address: toConnectAddress(address),
          protocol: o.protocol,
          connectTimeoutMs: o.connectTimeoutMs,
          timeoutMs: o.timeoutMs,
          maxQueue: o.maxQueuePerServer,
          tls: o.tls ?? null,
          sasl: o.sasl ?? null,
          ...(o.socketFactory ? { socketFactory: o.socketFactory } : {}),
        },
        {
          // The connection reports only after the servers list exists, so indexing it is safe.
          onHealthy: () => this.#onHealthy(this.#servers[index]!),
          onFailure: (rc, error, unsent) => this.#onFailure(this.#servers[index]!, rc, error, unsent),
        },
      ),
    }));
  }

  /** Reports each request's server, code and latency to `observer` (null: stop). */
  observeRequests(observer: RequestObserver | null): void {
    this.#observer = observer;
  }

  /** The servers in placement order, as given. */
  get servers(): readonly ServerAddress[] {
    return this.#servers.map((s) => s.address);
  }

  get protocol(): Protocol {
    return this.#protocol;
  }

  /** Requests accepted and not yet answered, over all servers (bounded by the timeouts). */
  get pendingRequests(): number {
    let n = 0;
    for (const s of this.#servers) n += s.conn.pending;
    return n;
  }

  /** Each server's health now: 'up', 'disabled' (failed, retried after the interval) or 'ejected'. */
  health(): Array<{ server: string; state: 'up' | 'disabled' | 'ejected'; failures: number }> {
    const now = Date.now();
    return this.#servers.map((s) => ({ server: s.address.text, state: s.health.state(now), failures: s.health.failures }));
  }

  // ---- reading ----

  get(key: string | Buffer): Promise<Item | null> {
    return this.#single(key, (k) => ({ op: 'get', keys: [k], withCas: false }), firstItem);
  }

  /** get with the CAS unique, for cas(). */
  gets(key: string | Buffer): Promise<Item | null> {
    return this.#single(key, (k) => ({ op: 'get', keys: [k], withCas: true }), firstItem);
  }

  /** Fetches many keys with one request per server; misses are absent from the map. */
  async getMulti<K extends string | Buffer>(keys: readonly K[]): Promise<Map<K, Item>> {
    const groups = new Map<number, { wire: Buffer[]; original: K[] }>();
    for (const key of keys) {
      const { wire, route } = this.#key(key);
      const index = this.#pick(route);
      let group = groups.get(index);
      if (group === undefined) groups.set(index, (group = { wire: [], original: [] }));
      group.wire.push(wire);
      group.original.push(key);
    }
    const result = new Map<K, Item>();
    const work: Promise<void>[] = [];
    for (const [index, group] of groups) {
      for (let i = 0; i < group.wire.length; i += MAX_KEYS_PER_GET) {
        const wire = group.wire.slice(i, i + MAX_KEYS_PER_GET);
        const original = group.original.slice(i, i + MAX_KEYS_PER_GET);
        work.push(
          this.#send(index, { op: 'get', keys: wire, withCas: true }).then((out) => {
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
    const index = this.#pick(route);
    return index < 0 ? null : this.#servers[index]!.address.text;
  }

  /** Answers what is in flight, then closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#servers) {
      if (s.probe !== null) clearTimeout(s.probe);
      s.probe = null;
    }
    await Promise.all(this.#servers.map((s) => s.conn.close()));
  }

  // ---- internals ----

  /** Prefixed wire bytes and the bytes that take part in placement; throws 33 for a bad key. */
  #key(key: string | Buffer): { wire: Buffer; route: Buffer } {
    const raw = keyBytes(key, this.#prefix.length);
    if (this.#prefix.length === 0) return { wire: raw, route: raw };
    const wire = Buffer.concat([this.#prefix, raw]);
    return { wire, route: this.#hashWithPrefix ? wire : raw };
  }

  #pick(route: Buffer): number {
    if (this.#servers.length === 1) return this.#servers[0]!.health.ejected ? -1 : 0;
    return this.#router.indexFor(route);
  }

  #single<T>(key: string | Buffer, make: (wire: Buffer) => Command, finish: (out: Outcome) => T): Promise<T> {
    let k: { wire: Buffer; route: Buffer };
    try {
      k = this.#key(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#request(this.#pick(k.route), make(k.wire), finish);
  }

  #send(index: number, cmd: Command): Promise<Outcome> {
    return this.#request(index, cmd, asIs);
  }

  /**
   * Sends `cmd` and settles with `finish(outcome)` (or its throw): one promise per request, the
   * hot path of every operation.
   */
  #request<T>(index: number, cmd: Command, finish: (out: Outcome) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settleWith = (out: Outcome): void => {
        try {
          resolve(finish(out));
        } catch (err) {
          reject(err);
        }
      };
      if (this.#closed) return settleWith({ rc: Rc.CONNECTION_FAILURE, text: 'client is closed' });
      if (index < 0) return settleWith({ rc: this.#servers.length === 0 ? Rc.NO_SERVERS : Rc.SERVER_MARKED_DEAD });
      const server = this.#servers[index]!;
      const refusal = server.health.admitNow();
      const observer = this.#observer;
      if (refusal !== Rc.SUCCESS) {
        observer?.refused(index);
        return settleWith({ rc: refusal });
      }
      if (observer === null) return server.conn.enqueue({ cmd, opaque: 0, deadline: 0, out: { rc: Rc.SUCCESS }, resolve: settleWith });
      const started = performance.now();
      const observed = (out: Outcome): void => {
        observer.completed(index, out.rc, performance.now() - started);
        settleWith(out);
      };
      server.conn.enqueue({ cmd, opaque: 0, deadline: 0, out: { rc: Rc.SUCCESS }, resolve: observed });
    });
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
    return this.#single(key, (k) => (mode === 'cas' ? { op: 'store', mode, key: k, value: data, flags, ttl, cas: cas ?? 0n } : { op: 'store', mode, key: k, value: data, flags, ttl }), expectSuccess);
  }

  async #counter(op: 'incr' | 'decr', key: string | Buffer, delta: bigint | number, options: CounterOptions | undefined): Promise<bigint> {
    const d = toUint64(delta, 'delta');
    const initial = options?.initial === undefined ? undefined : toUint64(options.initial, 'initial');
    const ttl = checkTtl(options?.ttl ?? 0);
    const k = this.#key(key);
    const index = this.#pick(k.route);
    if (initial !== undefined && this.#protocol === 'text') return this.#counterWithInitialText(index, op, k.wire, d, initial, ttl);
    const cmd: Command = initial === undefined ? { op, key: k.wire, delta: d } : { op, key: k.wire, delta: d, initial, ttl };
    return this.#request(index, cmd, counterValue);
  }

  /** The text protocol cannot create a counter: incr, else add, else (lost a race) incr again. */
  async #counterWithInitialText(index: number, op: 'incr' | 'decr', key: Buffer, delta: bigint, initial: bigint, ttl: number): Promise<bigint> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const out = await this.#send(index, { op, key, delta });
      if (out.rc === Rc.SUCCESS) return out.number!;
      if (out.rc !== Rc.NOTFOUND) throw errorOf(out);
      const added = await this.#send(index, { op: 'store', mode: 'add', key, value: Buffer.from(initial.toString(), 'latin1'), flags: 0, ttl });
      if (added.rc === Rc.SUCCESS) return initial;
      if (added.rc !== Rc.NOTSTORED) throw errorOf(added);
    }
    throw new MemcachedError(Rc.FAILURE, 'counter kept disappearing while being created');
  }

  async #everyServer(cmd: Command): Promise<Array<{ server: string; rc: number; error?: string; out?: Outcome }>> {
    return Promise.all(
      this.#servers.map(async (s, index) => {
        const out = await this.#send(index, cmd);
        if (out.rc === Rc.SUCCESS) return { server: s.address.text, rc: out.rc, out };
        return { server: s.address.text, rc: out.rc, error: out.text ?? rcText(out.rc) };
      }),
    );
  }

  #onHealthy(server: Server): void {
    const wasFailing = server.health.failures > 0;
    if (server.health.onSuccess()) {
      this.#rebuildRouter();
      publish({ server: server.address.text, event: 'revived' });
    } else if (wasFailing) {
      publish({ server: server.address.text, event: 'recovered' });
    }
  }

  #onFailure(server: Server, rc: number, error: Error, unsent: PendingRequest[]): void {
    const ejected = server.health.onFailure(Date.now());
    publish({ server: server.address.text, event: 'failure', rc, message: error.message, failures: server.health.failures });
    if (ejected) {
      this.#rebuildRouter();
      publish({ server: server.address.text, event: 'ejected', rc, failures: server.health.failures });
      this.#scheduleProbe(server);
    } else if (server.health.ejected) {
      this.#scheduleProbe(server);
    }
    for (const req of unsent) {
      // Never written: with the server ejected its keys have a new home, so nothing is lost.
      const target = ejected ? this.#rerouteTarget(req.cmd) : -1;
      if (target >= 0 && target !== server.index && this.#servers[target]!.health.admitNow() === Rc.SUCCESS) {
        this.#servers[target]!.conn.enqueue(req);
      } else {
        settle(req, rc, error.message);
      }
    }
  }

  /** The new server for a single-key command; -1 for others (they fail with the server's code). */
  #rerouteTarget(cmd: Command): number {
    const wire = cmd.op === 'get' ? (cmd.keys.length === 1 ? cmd.keys[0] : undefined) : 'key' in cmd ? cmd.key : undefined;
    if (wire === undefined) return -1;
    const route = this.#hashWithPrefix || this.#prefix.length === 0 ? wire : wire.subarray(this.#prefix.length);
    return this.#pick(route);
  }

  #rebuildRouter(): void {
    const live = this.#servers.map((s) => !s.health.ejected);
    this.#router = live.every(Boolean) ? new Router(this.#specs, this.#routerOptions) : new Router(this.#specs, this.#routerOptions, live);
  }

  /** An ejected server gets no traffic, so it is probed with `version` every retry interval. */
  #scheduleProbe(server: Server): void {
    if (this.#closed || server.probe !== null) return;
    const delay = Math.max(0, server.health.retryAt - Date.now());
    server.probe = setTimeout(() => {
      server.probe = null;
      if (this.#closed) return;
      // The probe bypasses admit(): it is the retry.
      void server.conn.send({ op: 'version' }).then((out) => {
        if (out.rc !== Rc.SUCCESS && server.health.ejected) this.#scheduleProbe(server);
      });
    }, delay);
    server.probe.unref();
  }
}

function publish(event: ServerEvent): void {
  if (serverChannel.hasSubscribers) serverChannel.publish(event);
}

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

function toConnectAddress(a: ServerAddress): Address {
  return a.kind === 'unix' ? { kind: 'unix', path: a.host } : { kind: 'tcp', host: a.host, port: a.port };
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
