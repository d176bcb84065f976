// Key placement exactly as libmemcached 1.1.4 does it: modula, the consistent-hashing continuum
// (libmemcached's own 100-point flavour, the spymemcached flavour and the weighted 160-point
// libketama flavour), lower-bound lookup with wrap-around. See test/fixtures/vectors/ALGORITHMS.md
// §4-§8; libmemcached's own sources (ALGORITHMS.md §10 gives the repository): src/libmemcached/hash.cc
// (dispatch_host, _generate_hash_wrapper) and src/libmemcached/hosts.cc (update_continuum).
//
// A Router is immutable and pure (no sockets, no timers). Lookups do not allocate: the continuum
// lives in typed arrays and the namespace+key bytes are assembled in a scratch buffer.

import { hashFunction, md5Points } from './hash.js';
import type { HashFunction } from './hash.js';
import type { HashName, ServerSpec } from './names.js';
import { MAX_KEY_BYTES } from '../util/keys.js';
import { DEFAULT_PORT } from './server-address.js';

export type RouterDistribution = 'modula' | 'consistent' | 'spy';

export interface RouterOptions {
  distribution: RouterDistribution;
  /**
   * libmemcached's `ketama.weighted_`: 160-point MD5 (libketama) continuum with points per server
   * in proportion to the weights. Ignored for modula.
   */
  weighted: boolean;
  /** `base_hash`: hashes the keys. */
  keyHash: HashName;
  /**
   * Hash of the non-weighted continuum points; defaults to `keyHash`. It differs only when the
   * key hash was changed after the servers were added, which does not rebuild libmemcached's
   * continuum (src/libmemcached/behavior.cc, MEMCACHED_BEHAVIOR_HASH).
   */
  pointHash?: HashName;
  /**
   * libmemcached's namespace (MEMCACHED_CALLBACK_NAMESPACE, `--NAMESPACE=`). It takes part in
   * placement only with `hashWithNamespace`; callers always pass keys without it.
   */
  namespace?: Uint8Array;
  /** MEMCACHED_BEHAVIOR_HASH_WITH_PREFIX_KEY / `--HASH-WITH-NAMESPACE`: hash namespace + key. */
  hashWithNamespace?: boolean;
}

/** MEMCACHED_POINTS_PER_SERVER: points of every server in the non-weighted continuum. */
export const POINTS_PER_SERVER = 100;
/** MEMCACHED_POINTS_PER_SERVER_KETAMA: base point count of the weighted continuum. */
export const POINTS_PER_SERVER_KETAMA = 160;

/** Continuum entries are sorted as value * 2^20 + server index in a Float64Array (exact below 2^53). */
const INDEX_RADIX = 0x100000;
const MAX_SERVERS = INDEX_RADIX;

const utf8 = new TextEncoder();

/**
 * The string whose hash gives point `i` of a server (hosts.cc update_continuum): `host-i` on port
 * 11211, else `host:port-i`; spymemcached's format is `/host:port-i`, always with the port. The
 * host is the configured text (never resolved); a Unix socket is its path, with the port
 * libmemcached recorded for it: 11211 when added as PHP Memcached does (`/path-i`), 0 when added
 * with memcached_server_add_unix_socket (`/path:0-i`); the client chooses (socketPointNames).
 */
export function continuumPointString(server: ServerSpec, i: number, spy: boolean): string {
  if (spy) return `/${server.host}:${server.port}-${i}`;
  return server.port === DEFAULT_PORT ? `${server.host}-${i}` : `${server.host}:${server.port}-${i}`;
}

/**
 * Points of one server in the weighted continuum. libmemcached computes this in single precision
 * (hosts.cc: `floorf(pct * 160 / 4 * (float) live_servers + 0.0000000001F) * 4`), which is why
 * weights 1,2 give 104 + 212 points, not 320: every step is rounded to float32 here as well.
 */
export function weightedPointCount(weight: number, totalWeight: number, liveServers: number): number {
  const f = Math.fround;
  const pct = f(f(weight) / f(totalWeight));
  const perQuarter = f(f(f(f(pct * POINTS_PER_SERVER_KETAMA) / 4) * f(liveServers)) + f(1e-10));
  return Math.floor(perQuarter) * 4;
}

/**
 * Where libmemcached puts a key: an index into `servers`.
 *
 * Callers pass the key without any namespace; the namespace rule is applied here (hash.cc
 * `_generate_hash_wrapper`): by default only the key is hashed; with `hashWithNamespace` the bytes
 * are namespace + key, and if those are longer than 250 bytes the hash is 0 (not an error).
 *
 * Ejected servers (`live[i] === false`) are treated as libmemcached's auto-eject does for the
 * continuum: it is built from live servers only, and the weighted formula counts only live
 * servers and their weights (hosts.cc update_continuum). Modula differs on purpose, see
 * indexForHash().
 */
export class Router {
  readonly servers: readonly ServerSpec[];
  readonly options: Readonly<RouterOptions>;
  readonly live: readonly boolean[];

  readonly #keyHash: HashFunction;
  readonly #liveMask: Uint8Array;
  /** Live server indexes in order; modula's fallback for keys of a dead server. */
  readonly #liveIndexes: Uint32Array;
  /** Continuum point values, ascending, and the server index owning each point. */
  readonly #values: Uint32Array;
  readonly #owners: Uint16Array | Uint32Array;
  /** namespace + key scratch buffer (hashWithNamespace only), and a view per length. */
  readonly #scratch: Uint8Array | null;
  readonly #namespaceLength: number;
  readonly #views: Array<Uint8Array | undefined>;

  constructor(servers: readonly ServerSpec[], options: RouterOptions, live?: readonly boolean[]) {
    if (servers.length > MAX_SERVERS) throw new RangeError(`more than ${MAX_SERVERS} servers`);
    if (live !== undefined && live.length !== servers.length) {
      throw new RangeError(`live has ${live.length} entries for ${servers.length} servers`);
    }
    for (const s of servers) {
      if (!Number.isInteger(s.port) || s.port < 0 || s.port > 0xffff) {
        throw new RangeError(`bad port for ${s.host}: ${s.port}`);
      }
      if (!Number.isInteger(s.weight) || s.weight < 1 || s.weight > 0xffffffff) {
        throw new RangeError(`bad weight for ${s.host}: ${s.weight} (libmemcached stores 0 as 1)`);
      }
    }
    this.servers = Object.freeze([...servers]);
    this.options = Object.freeze({ ...options });
    this.live = Object.freeze(servers.map((_, i) => live?.[i] !== false));
    this.#keyHash = hashFunction(options.keyHash);

    this.#liveMask = Uint8Array.from(this.live, (l) => (l ? 1 : 0));
    this.#liveIndexes = Uint32Array.from(this.live.flatMap((l, i) => (l ? [i] : [])));

    const ns = options.hashWithNamespace === true ? (options.namespace ?? new Uint8Array(0)) : null;
    if (ns !== null && ns.length <= MAX_KEY_BYTES) {
      this.#scratch = new Uint8Array(MAX_KEY_BYTES);
      strncpyInto(this.#scratch, 0, ns, ns.length);
      this.#namespaceLength = ns.length;
    } else {
      // A namespace longer than 250 bytes makes every hash 0; libmemcached caps it at 127 anyway.
      this.#scratch = null;
      this.#namespaceLength = ns === null ? -1 : ns.length;
    }
    this.#views = new Array<Uint8Array | undefined>(MAX_KEY_BYTES + 1).fill(undefined);

    const [values, owners] = options.distribution === 'modula' ? emptyContinuum() : this.#buildContinuum();
    this.#values = values;
    this.#owners = owners;
  }

  /**
   * The hash libmemcached computes for this key (namespace rule included). Note that with a
   * single server libmemcached computes no hash at all; indexFor() does the same.
   */
  hashOf(key: Uint8Array): number {
    const nsLength = this.#namespaceLength;
    if (nsLength < 0) return this.#keyHash(key);
    const total = nsLength + key.length;
    const scratch = this.#scratch;
    if (scratch === null || total > MAX_KEY_BYTES) return 0;
    strncpyInto(scratch, nsLength, key, key.length);
    let view = this.#views[total];
    if (view === undefined) this.#views[total] = view = scratch.subarray(0, total);
    return this.#keyHash(view);
  }

  /** Index into `servers` for this key (without namespace); -1 when no server is live. */
  indexFor(key: Uint8Array): number {
    // hash.cc _generate_hash_wrapper: with exactly one server no hash is computed.
    if (this.servers.length === 1) return this.#liveIndexes.length === 1 ? 0 : -1;
    if (this.#liveIndexes.length === 0) return -1;
    return this.indexForHash(this.hashOf(key));
  }

  /** Index into `servers` for an already computed key hash; -1 when no server is live. */
  indexForHash(hash: number): number {
    const liveCount = this.#liveIndexes.length;
    if (liveCount === 0) return -1;
    const count = this.servers.length;
    if (count === 1) return 0;
    const h = hash >>> 0;

    if (this.options.distribution === 'modula') {
      // hash.cc dispatch_host: hash % number of servers. libmemcached ignores ejection here and
      // keeps sending a dead server's keys to it; we do better: only the keys of a dead server
      // move, spread over the live ones, and they come back when it is live again.
      const index = h % count;
      if (this.#liveMask[index] === 1) return index;
      return this.#liveIndexes[h % liveCount]!;
    }

    // hash.cc dispatch_host: first point >= hash (lower bound); past the last point, wrap.
    const values = this.#values;
    let left = 0;
    let right = values.length;
    while (left < right) {
      const middle = (left + right) >>> 1;
      if (values[middle]! < h) left = middle + 1;
      else right = middle;
    }
    if (right === values.length) right = 0;
    return this.#owners[right]!;
  }

  /** [value, serverIndex] pairs in continuum order, to compare with libmemcached's own. Empty for modula. */
  continuum(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (let i = 0; i < this.#values.length; i++) out.push([this.#values[i]!, this.#owners[i]!]);
    return out;
  }

  /** hosts.cc update_continuum, for live servers only. */
  #buildContinuum(): [Uint32Array, Uint16Array | Uint32Array] {
    const { weighted, distribution } = this.options;
    const spy = distribution === 'spy';
    const pointHash = hashFunction(this.options.pointHash ?? this.options.keyHash);
    const liveServers = this.#liveIndexes.length;
    let totalWeight = 0;
    for (const i of this.#liveIndexes) totalWeight += this.servers[i]!.weight;

    const entries: number[] = [];
    for (const index of this.#liveIndexes) {
      const server = this.servers[index]!;
      if (weighted) {
        // Each point string gives 4 points: the 4 little-endian words of its MD5, whatever the
        // key hash is (hosts.cc ketama_server_hash).
        const strings = weightedPointCount(server.weight, totalWeight, liveServers) / 4;
        for (let i = 0; i < strings; i++) {
          for (const value of md5Points(continuumPointString(server, i, spy))) {
            entries.push(value * INDEX_RADIX + index);
          }
        }
      } else {
        for (let i = 0; i < POINTS_PER_SERVER; i++) {
          const value = pointHash(utf8.encode(continuumPointString(server, i, spy)));
          entries.push(value * INDEX_RADIX + index);
        }
      }
    }

    // hosts.cc continuum_item_cmp: by value, ties by lower server index; duplicates are kept.
    const sorted = Float64Array.from(entries).sort();
    const values = new Uint32Array(sorted.length);
    const owners = this.servers.length <= 0x10000 ? new Uint16Array(sorted.length) : new Uint32Array(sorted.length);
    for (let i = 0; i < sorted.length; i++) {
      const entry = sorted[i]!;
      const owner = entry % INDEX_RADIX;
      owners[i] = owner;
      values[i] = (entry - owner) / INDEX_RADIX;
    }
    return [values, owners];
  }
}

function emptyContinuum(): [Uint32Array, Uint16Array] {
  return [new Uint32Array(0), new Uint16Array(0)];
}

/**
 * hash.cc builds namespace + key with strncpy(), which stops at a NUL byte and pads with NULs:
 * bytes after a NUL in the key are hashed as 0. Reproduced for keys with NUL bytes (binary
 * protocol); for every other key this is a plain copy.
 */
function strncpyInto(target: Uint8Array, offset: number, source: Uint8Array, length: number): void {
  let i = 0;
  for (; i < length && source[i] !== 0; i++) target[offset + i] = source[i]!;
  target.fill(0, offset + i, offset + length);
}
