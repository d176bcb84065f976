// Another client on the same cache under another key prefix, for the embedded store: a
// MemoryStore made with keyPrefix '' is the server's raw key space, and each view puts its
// prefix in front of every key, as a Client with keyPrefix does on one memcached. The store's
// own key rules (33 for a bad byte or prefix + key over 250 bytes) apply to the joined key;
// only the empty key needs checking here, since prefix + '' is not empty.

import type { Item } from '../../src/memcache/protocol/command.js';
import type { MemoryStore, MemoryStoreWriteOptions } from '../../src/store/memory-store.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import type { BehaviourBackend } from './cache-behaviour.js';

export class PrefixedView implements BehaviourBackend {
  readonly #raw: MemoryStore;
  readonly #prefix: string;
  readonly #prefixBytes: Buffer;

  constructor(raw: MemoryStore, keyPrefix: string) {
    this.#raw = raw;
    this.#prefix = keyPrefix;
    this.#prefixBytes = Buffer.from(keyPrefix, 'utf8');
  }

  get(key: string | Buffer): Promise<Item | null> {
    return this.#call(key, (k) => this.#raw.get(k));
  }
  gets(key: string | Buffer): Promise<Item | null> {
    return this.#call(key, (k) => this.#raw.gets(k));
  }
  async getMulti<K extends string | Buffer>(keys: readonly K[]): Promise<Map<K, Item>> {
    const joined = new Map<string | Buffer, K>();
    for (const key of keys) joined.set(this.#join(key), key);
    const found = await this.#raw.getMulti([...joined.keys()]);
    const out = new Map<K, Item>();
    for (const [k, item] of found) out.set(joined.get(k)!, item);
    return out;
  }
  set(key: string | Buffer, value: string | Buffer, options?: MemoryStoreWriteOptions): Promise<void> {
    return this.#call(key, (k) => this.#raw.set(k, value, options));
  }
  add(key: string | Buffer, value: string | Buffer, options?: MemoryStoreWriteOptions): Promise<void> {
    return this.#call(key, (k) => this.#raw.add(k, value, options));
  }
  replace(key: string | Buffer, value: string | Buffer, options?: MemoryStoreWriteOptions): Promise<void> {
    return this.#call(key, (k) => this.#raw.replace(k, value, options));
  }
  append(key: string | Buffer, value: string | Buffer): Promise<void> {
    return this.#call(key, (k) => this.#raw.append(k, value));
  }
  prepend(key: string | Buffer, value: string | Buffer): Promise<void> {
    return this.#call(key, (k) => this.#raw.prepend(k, value));
  }
  cas(key: string | Buffer, value: string | Buffer, cas: bigint, options?: MemoryStoreWriteOptions): Promise<void> {
    return this.#call(key, (k) => this.#raw.cas(k, value, cas, options));
  }
  delete(key: string | Buffer): Promise<void> {
    return this.#call(key, (k) => this.#raw.delete(k));
  }
  deleteCas(key: string | Buffer, cas: bigint): Promise<void> {
    return this.#call(key, (k) => this.#raw.deleteCas(k, cas));
  }
  touch(key: string | Buffer, ttl: number): Promise<void> {
    return this.#call(key, (k) => this.#raw.touch(k, ttl));
  }
  incr(key: string | Buffer, delta: bigint): Promise<bigint> {
    return this.#call(key, (k) => this.#raw.incr(k, delta));
  }
  decr(key: string | Buffer, delta: bigint): Promise<bigint> {
    return this.#call(key, (k) => this.#raw.decr(k, delta));
  }
  /** flush_all: every prefix's items go, as on memcached. */
  flush(): Promise<void> {
    return this.#raw.flush();
  }
  /** The raw store is the harness's to close. */
  async close(): Promise<void> {}

  #call<T>(key: string | Buffer, run: (joined: string | Buffer) => Promise<T>): Promise<T> {
    try {
      return run(this.#join(key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #join(key: string | Buffer): string | Buffer {
    if (key.length === 0) throw new MemcachedError(Rc.BAD_KEY_PROVIDED, 'empty key');
    return typeof key === 'string' ? this.#prefix + key : Buffer.concat([this.#prefixBytes, key]);
  }
}
