// The embedded store's snapshot, without a daemon: the format round-trips every item field and
// the LRU order; a walk taken while the store keeps changing restores to exactly the store's state
// at the walk's end (property-based, random interleavings); a damaged, cut, foreign or newer file
// is refused whole, wherever the damage is; the file is written atomically; a reconfigure keeps
// the items. The daemon's side (restart, kill -9, reload) is test/integration/warm-restart.test.ts.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';

import { ITEM_OVERHEAD, MemoryStore, type MemoryStoreOptions, type StoreRecord } from '../../src/store/memory-store.js';
import { moveAside, restoreSnapshot, writeSnapshot } from '../../src/store/snapshot-file.js';
import { SNAPSHOT_VERSION, SnapshotDecoder, SnapshotEncoder, SnapshotError } from '../../src/store/snapshot-format.js';
import { UINT64_MAX } from '../../src/util/request-rules.js';

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-snapshot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const T0 = 1_700_000_000_000;

function clocked(options: MemoryStoreOptions = {}, start = T0): { store: MemoryStore; advance: (ms: number) => void } {
  let nowMs = start;
  const store = new MemoryStore({ ...options, now: () => nowMs });
  return { store, advance: (ms) => void (nowMs += ms) };
}

/** The whole snapshot of `store`, taken with nothing changing in between. */
function encode(store: MemoryStore): Buffer {
  const encoder = new SnapshotEncoder();
  const walk = store.records();
  for (let step = walk.next(); ; step = walk.next()) {
    if (step.done === true) {
      encoder.end(step.value);
      break;
    }
    encoder.record(step.value);
  }
  return Buffer.concat(encoder.take());
}

/** Replays `bytes` cut at `cuts` into `store`; the error, if the file is refused. */
function decodeInto(store: MemoryStore, bytes: Buffer, cuts: number[] = []): SnapshotError | null {
  const decoder = new SnapshotDecoder();
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  try {
    for (const to of [...points, bytes.length]) {
      for (const record of decoder.push(bytes.subarray(from, to))) store.restore(record);
      from = to;
    }
    store.restoreCasCounter(decoder.finish());
    return null;
  } catch (err) {
    if (err instanceof SnapshotError) return err;
    throw err;
  }
}

type Row = [key: string, value: string, flags: number, cas: string, expiresAtMs: number];

/** Every live item, least recently used first, with every field. */
function dump(store: MemoryStore): Row[] {
  const rows: Row[] = [];
  for (const r of store.records() as Iterable<StoreRecord>) {
    if (r.kind === 'item') rows.push([r.key, r.value.toString('hex'), r.flags, r.cas.toString(), r.expiresAtMs]);
  }
  return rows;
}

async function filled(start = T0): Promise<{ store: MemoryStore; advance: (ms: number) => void }> {
  const c = clocked({}, start);
  const s = c.store;
  await s.set('plain', 'hello');
  await s.set('flagged', 'x', { flags: 0xffff_ffff });
  await s.set('empty', '');
  await s.set('ttl-relative', 'soon', { ttl: 30 });
  await s.set('ttl-absolute', 'later', { ttl: Math.floor(start / 1000) + 86_400 * 40 });
  await s.set('max', UINT64_MAX.toString());
  await s.set('wrap', '18446744073709551614');
  await s.incr('wrap', 1n);
  await s.set('counter', '100');
  await s.decr('counter', 95n); // "5  ": rewritten in place and padded, as memcached does
  await s.set(Buffer.from([0xff, 0xfe, 0x41]), Buffer.from([0, 13, 10, 255]));
  await s.set('big', Buffer.alloc(200_000, 0xab));
  await s.get('plain'); // plain becomes the most recently used
  return c;
}

describe('snapshot format: round trip', () => {
  test('every field comes back: value bytes, flags, CAS, absolute expiry, uint64 counters, raw-byte keys; LRU order kept', async () => {
    const { store } = await filled();
    const before = dump(store);
    const copy = clocked().store;
    assert.equal(decodeInto(copy, encode(store)), null);
    assert.deepEqual(dump(copy), before);
    assert.equal(dump(copy).at(-1)?.[0], 'plain', 'the most recently used item is still the most recent');
    assert.equal((await copy.get('max'))?.value.toString(), '18446744073709551615');
    assert.equal((await copy.incr('max', 1n)), 0n, 'a restored counter wraps at 2^64 as before');
    assert.equal((await copy.get('counter'))?.value.toString(), '5  ', 'the in-place padding is kept');
  });

  test('CAS uniques carry on after a restore: a new write never reuses one', async () => {
    const { store } = await filled();
    const copy = clocked().store;
    decodeInto(copy, encode(store));
    const restored = dump(copy).map((r) => BigInt(r[3]));
    await copy.set('new', 'v');
    const fresh = (await copy.gets('new'))!.cas;
    assert.ok(restored.every((c) => fresh > c), `new unique ${fresh} is above every restored one`);
  });

  test('items expired by the time of the restore are not loaded; the others keep their absolute expiry', async () => {
    const { store } = await filled();
    const bytes = encode(store);
    const later = clocked({}, T0 + 31_000).store;
    decodeInto(later, bytes);
    assert.equal(await later.get('ttl-relative'), null);
    const expiry = dump(later).find((r) => r[0] === 'ttl-absolute')?.[4];
    assert.equal(expiry, (T0 / 1000 + 86_400 * 40) * 1000);
  });

  test('a store smaller than the snapshot keeps the most recently used items, least recently used go first', async () => {
    const { store } = clocked();
    for (let i = 0; i < 10; i++) await store.set(`k${i}`, 'v'.repeat(100));
    const small = clocked({ maxBytes: 4 * (ITEM_OVERHEAD + 2 + 100) }).store;
    decodeInto(small, encode(store));
    assert.deepEqual(dump(small).map((r) => r[0]), ['k6', 'k7', 'k8', 'k9']);
    assert.equal(small.stats().evictions, 6);
  });

  test('any chunking of the file gives the same store', async () => {
    const { store } = await filled();
    const bytes = encode(store);
    const want = dump(store);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 20 }), (cuts) => {
        const copy = clocked().store;
        assert.equal(decodeInto(copy, bytes, cuts), null);
        assert.deepEqual(dump(copy), want);
      }),
      { numRuns: 100 },
    );
    // Byte by byte, too.
    const copy = clocked().store;
    assert.equal(decodeInto(copy, bytes, Array.from({ length: bytes.length }, (_, i) => i)), null);
    assert.deepEqual(dump(copy), want);
  });
});

describe('snapshot format: refused whole', () => {
  async function small(): Promise<Buffer> {
    const { store } = clocked();
    await store.set('a', 'one', { flags: 7 });
    await store.set('b', '18446744073709551615');
    return encode(store);
  }

  test('cut short anywhere: "truncated", never a partial success', async () => {
    const bytes = await small();
    for (let n = 0; n < bytes.length; n++) {
      const err = decodeInto(clocked().store, bytes.subarray(0, n));
      assert.ok(err !== null, `a file cut at ${n} of ${bytes.length} bytes was accepted`);
      assert.equal(err.reason, 'truncated', `cut at ${n}: ${err.message}`);
    }
  });

  test('any one byte changed anywhere: refused (checksum or structure), never accepted', async () => {
    const bytes = await small();
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const damaged = Buffer.from(bytes);
        damaged[i] = damaged[i]! ^ mask;
        const err = decodeInto(clocked().store, damaged);
        assert.ok(err !== null, `byte ${i} ^ 0x${mask.toString(16)} was accepted`);
      }
    }
  });

  test('bytes after the end, another file, a newer version: each with its reason', async () => {
    const bytes = await small();
    assert.equal(decodeInto(clocked().store, Buffer.concat([bytes, Buffer.from('x')]))?.reason, 'corrupt');
    assert.equal(decodeInto(clocked().store, Buffer.from('[general]\nserver=localhost\n'))?.reason, 'not-a-snapshot');
    const newer = Buffer.from(bytes);
    newer.writeUInt32BE(SNAPSHOT_VERSION + 1, 8);
    const err = decodeInto(clocked().store, newer);
    assert.equal(err?.reason, 'future-version');
    assert.match(err!.message, new RegExp(`version ${SNAPSHOT_VERSION + 1}`));
    assert.equal(decodeInto(clocked().store, Buffer.alloc(0))?.reason, 'truncated');
  });

  test('random bytes never crash the decoder: a SnapshotError or nothing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (raw, withMagic) => {
        const bytes = withMagic ? Buffer.concat([Buffer.from('RMCDSNAP\0\0\0\x01\0\0\0\0', 'latin1'), raw]) : Buffer.from(raw);
        assert.notEqual(decodeInto(clocked().store, bytes), null);
      }),
      { numRuns: 500 },
    );
  });
});

// The operations a session can make between two steps of a walk.
type Op =
  | { op: 'set'; key: number; value: number; ttl: 0 | 1 }
  | { op: 'get' | 'delete' | 'incr' | 'touch' | 'append'; key: number }
  | { op: 'flush' }
  | { op: 'walk'; steps: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('set' as const), key: fc.nat(15), value: fc.nat(1000), ttl: fc.constantFrom(0 as const, 1 as const) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constantFrom('get' as const, 'delete' as const, 'incr' as const, 'touch' as const, 'append' as const), key: fc.nat(15) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'flush' as const }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('walk' as const), steps: fc.integer({ min: 1, max: 4 }) }) },
);

async function apply(store: MemoryStore, o: Exclude<Op, { op: 'walk' }>): Promise<void> {
  const key = 'key' in o ? `k${o.key}` : '';
  const ignoreMisses = (p: Promise<unknown>): Promise<unknown> => p.catch(() => undefined);
  switch (o.op) {
    case 'set':
      return store.set(key, String(o.value), { ttl: o.ttl * 3600 });
    case 'get':
      return void (await store.get(key));
    case 'delete':
      return void (await ignoreMisses(store.delete(key)));
    case 'incr':
      return void (await ignoreMisses(store.incr(key, 7n)));
    case 'touch':
      return void (await ignoreMisses(store.touch(key, 60)));
    case 'append':
      return void (await ignoreMisses(store.append(key, '0')));
    case 'flush':
      return store.flush();
  }
}

describe('a snapshot taken while the store serves', () => {
  test('whatever happens between the steps of a walk, the restored store is the store as the walk ended (items, values, flags, CAS, expiry, order of recency)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(15), { maxLength: 16 }), fc.array(opArb, { maxLength: 60 }), async (initial, ops) => {
        const { store } = clocked();
        for (const k of initial) await store.set(`k${k}`, `${k}`);
        const encoder = new SnapshotEncoder();
        const walk = store.records();
        let done = false;
        let atEnd: Row[] = [];
        const step = (): void => {
          if (done) return;
          const next = walk.next();
          if (next.done === true) {
            encoder.end(next.value);
            done = true;
            atEnd = dump(store);
          } else encoder.record(next.value);
        };
        for (const o of ops) {
          if (o.op === 'walk') for (let i = 0; i < o.steps; i++) step();
          else await apply(store, o);
        }
        while (!done) step();
        const copy = clocked().store;
        assert.equal(decodeInto(copy, Buffer.concat(encoder.take())), null);
        // Items and fields exactly; recency order too, except that an item the walk passed twice
        // keeps its last position (which is its real one).
        assert.deepEqual(sorted(dump(copy)), sorted(atEnd));
        assert.deepEqual(dump(copy).map((r) => r[0]), atEnd.map((r) => r[0]));
      }),
      { numRuns: 400 },
    );
  });

  test('one walk at a time; an abandoned walk frees the store for the next', async () => {
    const { store } = clocked();
    await store.set('a', '1');
    const first = store.records();
    first.next();
    assert.throws(() => store.records().next(), /already walking/);
    first.return({ tail: [], lastCas: 0n });
    assert.deepEqual(dump(store).map((r) => r[0]), ['a']);
  });

  test('a store closed during a walk fails the snapshot instead of writing an empty one', async () => {
    const { store } = clocked();
    await store.set('a', '1');
    await store.set('b', '2');
    const walk = store.records();
    walk.next();
    await store.close();
    assert.throws(() => walk.next(), /closed during the snapshot/);
  });
});

function sorted(rows: Row[]): Row[] {
  return [...rows].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

describe('snapshot files', () => {
  test('written atomically: no temp file left, mode 0600, and read back whole', async () => {
    const { store } = await filled(Date.now());
    const path = join(dir, 'round.snapshot');
    const written = await writeSnapshot(store, path);
    assert.equal(written.items, dump(store).length);
    assert.equal(written.bytes, statSync(path).size);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('tmp')), []);
    const copy = new MemoryStore();
    const restored = await restoreSnapshot(copy, path);
    assert.equal(restored.items, written.items);
    assert.deepEqual(sorted(dump(copy)).map((r) => r.slice(0, 4)), sorted(dump(store)).map((r) => r.slice(0, 4)));
  });

  test('a failed write leaves the previous snapshot as it was', async () => {
    const { store } = clocked();
    await store.set('old', 'kept');
    const path = join(dir, 'failing.snapshot');
    await writeSnapshot(store, path);
    const before = readFileSync(path);
    await store.set('new', 'v');
    // A directory where the temp file would go makes the write fail.
    const blocked = join(dir, 'blocked');
    writeFileSync(blocked, '');
    await assert.rejects(writeSnapshot(store, join(blocked, 'x.snapshot')));
    assert.deepEqual(readFileSync(path), before);
    assert.ok(!existsSync(join(dir, `.failing.snapshot.${process.pid}.tmp`)));
  });

  test('a file that does not exist is ENOENT (the caller starts empty); moveAside keeps the file under a telling name', async () => {
    await assert.rejects(restoreSnapshot(new MemoryStore(), join(dir, 'missing.snapshot')), { code: 'ENOENT' });
    const path = join(dir, 'aside.snapshot');
    writeFileSync(path, 'garbage');
    const aside = await moveAside(path, 'corrupt', Date.UTC(2026, 11, 1, 12, 0, 0));
    assert.equal(aside, `${path}.corrupt-2026-12-01T12-00-00-000Z`);
    assert.equal(readFileSync(aside, 'utf8'), 'garbage');
    assert.ok(!existsSync(path));
  });
});

describe('reconfigure (a reload)', () => {
  test('a smaller cap evicts the least recently used down to it and says how many; a bigger one keeps all', async () => {
    const { store } = clocked();
    for (let i = 0; i < 10; i++) await store.set(`k${i}`, 'v'.repeat(100));
    await store.get('k0');
    assert.equal(store.reconfigure({ maxBytes: 64 * 1_048_576 }), 0);
    assert.equal(dump(store).length, 10);
    assert.equal(store.reconfigure({ maxBytes: 3 * (ITEM_OVERHEAD + 2 + 100) }), 7);
    assert.deepEqual(dump(store).map((r) => r[0]), ['k8', 'k9', 'k0']);
    assert.equal(store.stats().limitBytes, 3 * (ITEM_OVERHEAD + 2 + 100));
  });

  test('a new key prefix keeps the items written under the old one', async () => {
    const store = new MemoryStore({ keyPrefix: 'old:' });
    await store.set('k', 'v');
    store.reconfigure({ keyPrefix: 'new:' });
    assert.equal(await store.get('k'), null, 'the new prefix names other keys');
    await store.set('k', 'w');
    store.reconfigure({ keyPrefix: 'old:' });
    assert.equal((await store.get('k'))?.value.toString(), 'v', 'the old item is still there');
  });
});
