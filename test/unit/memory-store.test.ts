// What only the embedded store has (ARCHITECTURE.md, "The embedded store and snapshots"): the
// memory cap and its LRU eviction, stats, expiry on an injected clock, close(), the key prefix,
// and keys as raw bytes. The
// memcached semantics it shares with real memcached are in test/support/cache-behaviour.ts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ITEM_OVERHEAD, MemoryStore, type MemoryStoreOptions } from '../../src/store/memory-store.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';

async function rejectsWith(promise: Promise<unknown>, rc: number): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof MemcachedError, `expected a MemcachedError, got ${String(err)}`);
    assert.equal(err.rc, rc, `expected rc ${rc}, got ${err.rc} (${err.message})`);
    return true;
  });
}

/** A store on a clock that only moves when told to. */
function clocked(options: MemoryStoreOptions = {}): { store: MemoryStore; advance: (ms: number) => void } {
  let nowMs = 1_700_000_000_000;
  const store = new MemoryStore({ ...options, now: () => nowMs });
  return { store, advance: (ms) => void (nowMs += ms) };
}

/** Room for exactly `n` items of a 1-byte key and a `valueBytes` value. */
function capFor(n: number, valueBytes: number): number {
  return n * (ITEM_OVERHEAD + 1 + valueBytes);
}

const value = (c: string): string => c.repeat(100);

async function present(store: MemoryStore, keys: string): Promise<string> {
  let out = '';
  for (const k of keys) if ((await store.get(k)) !== null) out += k;
  return out;
}

describe('memory cap and LRU eviction', () => {
  test('the least recently used item goes first; a get refreshes recency', async () => {
    const store = new MemoryStore({ maxBytes: capFor(3, 100) });
    await store.set('a', value('a'));
    await store.set('b', value('b'));
    await store.set('c', value('c'));
    assert.equal(store.stats().evictions, 0);
    await store.get('a'); // a is now the most recent: b is the coldest
    await store.set('d', value('d'));
    assert.equal(store.stats().evictions, 1);
    // Checking presence with get refreshes too, so look at each key only once, coldest last.
    assert.equal(await present(store, 'b'), '', 'b was evicted');
    assert.equal(await present(store, 'acd'), 'acd');
  });

  test('touch, incr, append and a failed add refresh recency too (memcached bumps them)', async () => {
    for (const refresh of [
      (s: MemoryStore) => s.touch('a', 0),
      (s: MemoryStore) => s.append('a', ''),
      (s: MemoryStore) => s.add('a', 'x').catch(() => undefined),
      (s: MemoryStore) => s.incr('a', 0n),
    ]) {
      const store = new MemoryStore({ maxBytes: capFor(2, 100) });
      await store.set('a', '1'.padEnd(100, ' '));
      await store.set('b', value('b'));
      await refresh(store);
      await store.set('c', value('c'));
      assert.equal(await present(store, 'b'), '');
      assert.equal(await present(store, 'ac'), 'ac');
    }
  });

  test('a write evicts as many items as it needs, coldest first, and the byte count stays under the cap', async () => {
    const maxBytes = capFor(10, 100);
    const store = new MemoryStore({ maxBytes });
    for (const k of 'abcdefghij') await store.set(k, value(k));
    assert.equal(store.stats().bytes, maxBytes);
    await store.set('z', 'z'.repeat(350)); // needs the room of three 100-byte items
    const stats = store.stats();
    assert.equal(stats.evictions, 3);
    assert.equal(stats.items, 8);
    assert.ok(stats.bytes <= maxBytes);
    assert.equal(await present(store, 'abc'), '');
    assert.equal(await present(store, 'defghijz'), 'defghijz');
  });

  test('the item being written is never evicted for its own new value', async () => {
    const store = new MemoryStore({ maxBytes: capFor(3, 100) });
    await store.set('a', value('a'));
    await store.set('b', value('b'));
    await store.set('c', value('c'));
    // a is the coldest, and its new value needs more room than it had.
    await store.set('a', 'A'.repeat(150));
    assert.equal((await store.get('a'))?.value.toString(), 'A'.repeat(150));
    assert.equal(await present(store, 'b'), '', 'b made room instead');
    await store.append('c', 'C'.repeat(100));
    assert.equal((await store.get('c'))?.value.length, 200);
  });

  test('many writes into a small cap: the bytes held never exceed it', async () => {
    const maxBytes = 64 * 1024;
    const store = new MemoryStore({ maxBytes });
    for (let i = 0; i < 5000; i++) {
      await store.set(`key-${i}`, 'v'.repeat(i % 300));
      assert.ok(store.stats().bytes <= maxBytes);
    }
    const stats = store.stats();
    assert.ok(stats.evictions > 0);
    assert.equal((await store.get('key-4999'))?.value.length, 4999 % 300);
  });

  test('an item bigger than the whole cap: 37 E2BIG, and nothing is evicted for it', async () => {
    const store = new MemoryStore({ maxBytes: capFor(2, 100) });
    await store.set('a', value('a'));
    await rejectsWith(store.set('b', 'b'.repeat(capFor(2, 100))), Rc.E2BIG);
    assert.equal(await present(store, 'a'), 'a');
    assert.equal(store.stats().evictions, 0);
    // The largest item that fits is exactly the cap.
    await store.set('c', 'c'.repeat(capFor(2, 100) - ITEM_OVERHEAD - 1));
    assert.equal(store.stats().bytes, capFor(2, 100));
  });

  test('maxItemBytes counts the key and the header, as memcached -I does', async () => {
    const store = new MemoryStore({ maxItemBytes: 1000 });
    await store.set('k', Buffer.alloc(1000 - ITEM_OVERHEAD - 1));
    await rejectsWith(store.set('k', Buffer.alloc(1000 - ITEM_OVERHEAD)), Rc.E2BIG);
    await rejectsWith(store.set('kk', Buffer.alloc(1000 - ITEM_OVERHEAD - 1)), Rc.E2BIG);
  });

  test('stats: items, bytes, hits and misses, the limit; flush empties them', async () => {
    const store = new MemoryStore({ maxBytes: 4096 });
    await store.set('a', 'xy');
    await store.set('bb', '');
    await store.get('a');
    await store.gets('bb');
    await store.get('missing');
    assert.deepEqual(store.stats(), {
      items: 2,
      bytes: ITEM_OVERHEAD + 1 + 2 + ITEM_OVERHEAD + 2,
      evictions: 0,
      getHits: 2,
      getMisses: 1,
      limitBytes: 4096,
    });
    await store.flush();
    assert.equal(store.stats().items, 0);
    assert.equal(store.stats().bytes, 0);
  });

  test('the defaults are 64 MiB and 1 MiB items', async () => {
    const store = new MemoryStore();
    assert.equal(store.stats().limitBytes, 64 * 1024 * 1024);
    await store.set('k', Buffer.alloc(1024 * 1024 - ITEM_OVERHEAD - 1));
    await rejectsWith(store.set('k', Buffer.alloc(1024 * 1024 - ITEM_OVERHEAD)), Rc.E2BIG);
  });
});

describe('expiry on the injected clock', () => {
  test('relative TTL: alive until the last millisecond, a miss from then on', async () => {
    const { store, advance } = clocked();
    await store.set('k', 'v', { ttl: 10 });
    advance(9_999);
    assert.notEqual(await store.get('k'), null);
    advance(1);
    assert.equal(await store.get('k'), null);
    assert.equal(store.stats().getMisses, 1);
    assert.equal(store.stats().items, 0, 'the expired item was reclaimed when it was read');
  });

  test('absolute TTL is read against the injected clock', async () => {
    const { store, advance } = clocked();
    const nowSeconds = 1_700_000_000;
    await store.set('k', 'v', { ttl: nowSeconds + 5 });
    advance(4_999);
    assert.notEqual(await store.get('k'), null);
    advance(1);
    assert.equal(await store.get('k'), null);
    await store.set('k', 'v', { ttl: nowSeconds + 5 });
    assert.equal(await store.get('k'), null, 'exactly now is already past');
  });

  test('expired items make room before live ones, and are not counted as evictions', async () => {
    const { store, advance } = clocked({ maxBytes: capFor(3, 100) });
    await store.set('a', value('a'));
    await store.set('b', value('b'));
    await store.set('c', value('c'), { ttl: 5 }); // the most recent, but it will expire
    advance(5_000);
    await store.set('d', value('d'));
    assert.equal(store.stats().evictions, 0);
    assert.equal(await present(store, 'abd'), 'abd');
    assert.equal(await present(store, 'c'), '');
  });

  test('expired items among the coldest are dropped first, and only live ones count as evictions', async () => {
    const { store, advance } = clocked({ maxBytes: capFor(3, 100) });
    await store.set('a', value('a'), { ttl: 5 });
    await store.set('b', value('b'));
    await store.set('c', value('c'));
    advance(5_000);
    await store.set('z', 'z'.repeat(200)); // needs a's and b's room
    assert.equal(store.stats().evictions, 1, 'only b was live');
    assert.equal(await present(store, 'cz'), 'cz');
  });

  test('an expired item is missing for every operation', async () => {
    const { store, advance } = clocked();
    await store.set('k', '5', { ttl: 1 });
    advance(1_000);
    await rejectsWith(store.replace('k', 'x'), Rc.NOTSTORED);
    await rejectsWith(store.append('k', 'x'), Rc.NOTSTORED);
    await rejectsWith(store.incr('k', 1n), Rc.NOTFOUND);
    await rejectsWith(store.touch('k', 10), Rc.NOTFOUND);
    await rejectsWith(store.delete('k'), Rc.NOTFOUND);
    await rejectsWith(store.cas('k', 'x', 1n), Rc.NOTFOUND);
    await store.add('k', 'new');
    assert.equal((await store.get('k'))?.value.toString(), 'new');
  });
});

describe('keys', () => {
  test('any byte sequence is its own key: no collisions between different bytes', async () => {
    const store = new MemoryStore();
    const keys = [Buffer.from([0x80]), Buffer.from([0xc2, 0x80]), Buffer.from('\u0080'), Buffer.from([0xe9]), Buffer.from('é'), Buffer.from([0xff, 0xfe]), Buffer.from([0xfe, 0xff])];
    const distinct = new Map(keys.map((k) => [k.toString('hex'), k]));
    for (const [hex, k] of distinct) await store.set(k, hex);
    for (const [hex, k] of distinct) assert.equal((await store.get(k))?.value.toString(), hex);
    assert.equal(store.stats().items, distinct.size);
    assert.equal((await store.get('é'))?.value.toString(), 'c3a9', 'a string key is its UTF-8 bytes');
  });

  test('the prefix is bytes in front of the key, as on the wire', async () => {
    const store = new MemoryStore({ keyPrefix: 'pbx1:' });
    await store.set('k', 'v');
    // Without the prefix (as after a reload that drops it), the stored key is prefix + key.
    store.reconfigure({ keyPrefix: '' });
    assert.equal((await store.get('pbx1:k'))?.value.toString(), 'v');
    await store.set('pbx1:other', 'w');
    store.reconfigure({ keyPrefix: 'pbx1:' });
    assert.equal((await store.get('other'))?.value.toString(), 'w');
  });

  test('prefixes follow the Client: printable ASCII (33), at most 127 bytes (39)', () => {
    assert.throws(() => new MemoryStore({ keyPrefix: 'a b' }), (e: unknown) => e instanceof MemcachedError && e.rc === Rc.BAD_KEY_PROVIDED);
    assert.throws(() => new MemoryStore({ keyPrefix: 'é' }), (e: unknown) => e instanceof MemcachedError && e.rc === Rc.BAD_KEY_PROVIDED);
    assert.throws(() => new MemoryStore({ keyPrefix: 'p'.repeat(128) }), (e: unknown) => e instanceof MemcachedError && e.rc === Rc.KEY_TOO_BIG);
    new MemoryStore({ keyPrefix: 'p'.repeat(127) });
  });

  test('bad sizes are refused at construction', () => {
    for (const options of [{ maxBytes: 0 }, { maxBytes: -1 }, { maxBytes: 1.5 }, { maxItemBytes: 0 }, { maxItemBytes: Number.NaN }]) {
      assert.throws(() => new MemoryStore(options), (e: unknown) => e instanceof MemcachedError && e.rc === Rc.INVALID_ARGUMENTS);
    }
  });
});

describe('values, flags and CAS', () => {
  test('flags are kept, and kept by append, incr and touch', async () => {
    const store = new MemoryStore();
    await store.set('k', '9', { flags: 0xffffffff });
    await store.append('k', '9');
    await store.incr('k', 1n); // 99 -> 100 grows into a new item
    await store.touch('k', 100);
    assert.equal((await store.get('k'))?.flags, 0xffffffff);
    await rejectsWith(store.set('k', 'v', { flags: 2 ** 32 }), Rc.INVALID_ARGUMENTS);
    await rejectsWith(store.set('k', 'v', { flags: -1 }), Rc.INVALID_ARGUMENTS);
  });

  test('cas of 0n or a negative is refused with 38, as by the Client, and stores nothing', async () => {
    const store = new MemoryStore();
    await store.set('k', 'v');
    await rejectsWith(store.cas('k', 'x', 0n), Rc.INVALID_ARGUMENTS);
    await rejectsWith(store.cas('missing', 'x', 0n), Rc.INVALID_ARGUMENTS);
    await rejectsWith(store.cas('k', 'x', -1n), Rc.INVALID_ARGUMENTS);
    assert.equal((await store.get('missing')), null);
    assert.equal((await store.get('k'))?.value.toString(), 'v');
  });

  test('CAS uniques are never 0 and never repeat', async () => {
    const store = new MemoryStore();
    const seen = new Set<bigint>();
    for (let i = 0; i < 100; i++) {
      await store.set(`k${i % 7}`, String(i));
      const { cas } = (await store.gets(`k${i % 7}`))!;
      assert.ok(cas > 0n);
      assert.ok(!seen.has(cas));
      seen.add(cas);
    }
  });

  test('incr and decr accept a number delta as the Client does, and default to 1', async () => {
    const store = new MemoryStore();
    await store.set('n', '10');
    assert.equal(await store.incr('n'), 11n);
    assert.equal(await store.incr('n', 4), 15n);
    assert.equal(await store.decr('n'), 14n);
    await rejectsWith(store.incr('n', 2 ** 53), Rc.INVALID_ARGUMENTS);
    await rejectsWith(store.incr('n', 1.5), Rc.INVALID_ARGUMENTS);
  });

  test('a counter grown by incr may evict to make room', async () => {
    const store = new MemoryStore({ maxBytes: capFor(2, 2) });
    await store.set('a', '99');
    await store.set('b', '99');
    assert.equal(await store.incr('b', 1n), 100n);
    assert.equal(store.stats().evictions, 1);
    assert.equal(await store.get('a'), null);
  });
});

describe('close()', () => {
  test('every later call rejects with 3 CONNECTION_FAILURE; close is idempotent', async () => {
    const store = new MemoryStore({ keyPrefix: 'p:' });
    await store.set('k', 'v');
    await store.close();
    await store.close();
    const calls: Array<Promise<unknown>> = [
      store.get('k'),
      store.gets('k'),
      store.set('k', 'v'),
      store.add('k', 'v'),
      store.replace('k', 'v'),
      store.append('k', 'v'),
      store.prepend('k', 'v'),
      store.cas('k', 'v', 1n),
      store.delete('k'),
      store.touch('k', 1),
      store.incr('k', 1n),
      store.decr('k', 1n),
      store.flush(),
    ];
    for (const call of calls) await rejectsWith(call, Rc.CONNECTION_FAILURE);
    assert.equal(store.stats().items, 0);
    assert.equal(store.stats().bytes, 0);
  });

  test('methods reject rather than throw, so callers can rely on the promise', () => {
    const store = new MemoryStore();
    assert.doesNotThrow(() => {
      void store.touch('k', -1).catch(() => undefined);
      void store.get('a b').catch(() => undefined);
      void store.incr('k', -1n).catch(() => undefined);
    });
  });
});
