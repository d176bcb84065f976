// What the dialplan commands need from a cache: the memcached operations they use, with
// memcached's semantics. Both the cluster Client (real memcached) and the embedded MemoryStore
// satisfy it structurally, so dialplan code never knows which one serves.
//
// Every method rejects with a MemcachedError whose `rc` is the libmemcached-compatible code
// (14 NOTSTORED, 16 NOTFOUND, 33 bad key, 37 E2BIG, 3/31/35/47 for an unreachable server, ...).
// Keys are given without the configured prefix; the backend adds it.

import type { Item } from '../memcache/protocol/command.js';

export type { Item };

export interface TtlOptions {
  /** Seconds; 0 = never; above 30 days (2592000) an absolute Unix time. */
  ttl?: number;
}

export interface CacheBackend {
  /** null on a miss. */
  get(key: string | Buffer): Promise<Item | null>;
  /** get with the item's CAS unique (never 0n on a hit); null on a miss. */
  gets(key: string | Buffer): Promise<Item | null>;
  set(key: string | Buffer, value: string | Buffer, options?: TtlOptions): Promise<void>;
  /** 14 when the key exists. */
  add(key: string | Buffer, value: string | Buffer, options?: TtlOptions): Promise<void>;
  /** 14 when the key is missing. */
  replace(key: string | Buffer, value: string | Buffer, options?: TtlOptions): Promise<void>;
  /**
   * Stores only while the item still has `cas`: 12 DATA_EXISTS when it changed since, 16 when it
   * is gone; 38 for a `cas` outside 1 .. 2^64-1 (0 would be a plain set over the binary protocol).
   */
  cas(key: string | Buffer, value: string | Buffer, cas: bigint, options?: TtlOptions): Promise<void>;
  /** 14 when the key is missing; keeps the item's TTL. */
  append(key: string | Buffer, value: string | Buffer): Promise<void>;
  prepend(key: string | Buffer, value: string | Buffer): Promise<void>;
  /** Many keys in one request per server; misses are absent from the map. */
  getMulti<K extends string | Buffer>(keys: readonly K[]): Promise<Map<K, Item>>;
  /** 16 when the key is missing. */
  delete(key: string | Buffer): Promise<void>;
  /** Deletes only if unchanged since gets: 12 DATA_EXISTS if it changed, 16 if it is gone. */
  deleteCas(key: string | Buffer, cas: bigint): Promise<void>;
  /** 16 when the key is missing. */
  touch(key: string | Buffer, ttl: number): Promise<void>;
  /** uint64 add, wrapping at 2^64; 16 when missing; 9 CLIENT_ERROR when the value is not a number. */
  incr(key: string | Buffer, delta: bigint): Promise<bigint>;
  /** uint64 subtract, stopping at 0; 16 when missing; 9 when the value is not a number. */
  decr(key: string | Buffer, delta: bigint): Promise<bigint>;
  close(): Promise<void>;
}
