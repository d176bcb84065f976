// One behaviour suite for every cache backend: the embedded store must pass the same assertions
// as real memcached, so it cannot drift from it. Each assertion states memcached's semantics as our Client
// reports them from a real memcached 1.6 — codes per outcome, byte-exact values, uint64
// counters, TTL rules, key rules — and test/integration/cache-behaviour.test.ts runs it against
// memcached over the text, binary and meta protocols and against the embedded MemoryStore.
//
// Time: a backend with a clock of its own (the store) passes advanceSeconds and its run is
// instant; memcached's clock is really waited for, once, in the TTL test. memcached counts time
// in whole seconds on a clock that ticks once a second, so an item with ttl=N lives between N-1
// and N seconds: items that must still be alive right after being written use ttl >= 2, and
// every expiry is checked after N + 0.1 s, which both clocks agree on.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import type { CacheBackend } from '../../src/dialplan/backend.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';

/** CacheBackend plus what the suite needs to look deeper: flush. */
export interface BehaviourBackend extends CacheBackend {
  flush(): Promise<void>;
}

export interface BehaviourHarness {
  /**
   * A backend with this key prefix ('' = none) over the one storage under test: every backend
   * opened sees the same items, as two Clients on one memcached do.
   */
  open(keyPrefix: string): Promise<BehaviourBackend>;
  /** Moves the backend's clock forward; absent when time must really pass (memcached). */
  advanceSeconds?: (seconds: number) => Promise<void>;
  /** Closes every backend opened and whatever serves them. */
  close(): Promise<void>;
  /**
   * memcached over the meta protocol: keys may hold any byte (whitespace and control bytes go
   * base64), and memcached 1.6.18 unlinks the old item when any ms is too large, whatever its
   * mode (proto_text.c process_mset_command), where the text and binary add/replace/append/
   * prepend leave it.
   */
  meta?: boolean;
}

/** memcached -I default and the store's default maxItemBytes. */
export const ITEM_SIZE_MAX = 1024 * 1024;
/**
 * What memcached 1.6 adds to key + value to size an item (48-byte header, 8-byte CAS, the key's
 * NUL, the value's CRLF): the largest value with a 5-byte key measured 1048512 bytes in both
 * protocols.
 */
export const ITEM_HEADER_BYTES = 59;

const U64_MAX = 2n ** 64n - 1n;
const PREFIX = 'behave:';

/**
 * A counter's stored text, ended by a NUL. memcached (1.6.18, and upstream's util.c as stored)
 * checks a number of 2^63 or more for a '-' with strchr() over the item's bytes, which does not
 * stop at the value's end: whatever lies after the item in its slab chunk up to the next NUL is
 * searched too, so incr/decr of such a counter fails now and then with CLIENT_ERROR when an old
 * key or value with a '-' is left behind it. A NUL right after the digits ends that search, and
 * memcached and the store both read the digits before it as the number.
 */
function counterText(n: bigint): string {
  return `${n}\0`;
}

export async function rejectsWith(promise: Promise<unknown>, rc: number, what = ''): Promise<MemcachedError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MemcachedError, `${what}: expected a MemcachedError, got ${String(err)}`);
    assert.equal(err.rc, rc, `${what}: expected rc ${rc}, got ${err.rc} (${err.message})`);
    return err;
  }
  assert.fail(`${what}: expected a rejection with rc ${rc}`);
}

async function text(backend: BehaviourBackend, key: string | Buffer): Promise<string | null> {
  return (await backend.get(key))?.value.toString('latin1') ?? null;
}

export function defineCacheBehaviour(name: string, makeHarness: () => Promise<BehaviourHarness>): void {
  describe(`cache behaviour: ${name}`, { concurrency: 1 }, () => {
    let harness: BehaviourHarness;
    let b: BehaviourBackend;
    /** Waits for the backend's clock: moved when it can be, else really waited for. */
    let pass: (seconds: number) => Promise<void>;

    before(async () => {
      harness = await makeHarness();
      b = await harness.open(PREFIX);
      pass = harness.advanceSeconds ?? ((seconds) => sleep(seconds * 1000));
    });
    after(async () => {
      await harness.close();
    });

    test('get and gets of a missing key resolve null', async () => {
      assert.equal(await b.get('missing'), null);
      assert.equal(await b.gets('missing'), null);
    });

    test('set/get are byte-exact: every byte, protocol look-alikes, UTF-8, empty', async () => {
      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const tricky = Buffer.concat([every, Buffer.from('\r\nEND\r\nVALUE x 0 1\r\n\0')]);
      await b.set('bytes', tricky);
      assert.deepEqual((await b.get('bytes'))?.value, tricky);
      await b.set('utf8', 'значение ☎ 𝄞');
      assert.equal((await b.get('utf8'))?.value.toString('utf8'), 'значение ☎ 𝄞');
      await b.set('empty', '');
      const empty = await b.get('empty');
      assert.ok(empty, 'an empty value is a hit, not a miss');
      assert.equal(empty.value.length, 0);
      await b.set('bytes', 'overwritten');
      assert.equal(await text(b, 'bytes'), 'overwritten');
    });

    test('the value read is a copy: changing it or the written Buffer changes nothing stored', async () => {
      const written = Buffer.from('abc');
      await b.set('copy', written);
      written[0] = 0x78;
      const read = (await b.get('copy'))!;
      read.value[1] = 0x78;
      assert.equal(await text(b, 'copy'), 'abc');
    });

    test('keys are bytes: a Buffer and a string with the same UTF-8 bytes are one key, others are not', async () => {
      await b.set('é', 'utf8 e-acute');
      assert.equal(await text(b, Buffer.from([0xc3, 0xa9])), 'utf8 e-acute');
      assert.equal(await b.get(Buffer.from([0xe9])), null, 'latin1 é is another key');
      await b.set(Buffer.from([0x80, 0xff]), 'raw bytes');
      assert.equal(await text(b, Buffer.from([0x80, 0xff])), 'raw bytes');
      assert.equal(await b.get(Buffer.from([0xff, 0x80])), null);
    });

    test('the largest item: exactly up to -I with its header and key, 37 E2BIG one byte over', async () => {
      const key = 'big';
      const largest = ITEM_SIZE_MAX - ITEM_HEADER_BYTES - PREFIX.length - key.length;
      const value = Buffer.alloc(largest);
      for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
      await b.set(key, value);
      assert.deepEqual((await b.get(key))?.value, value);
      await rejectsWith(b.add('big-add', Buffer.alloc(largest + 1 + key.length - 'big-add'.length)), Rc.E2BIG, 'add one byte over');
      assert.equal(await b.get('big-add'), null);
      // A set that fails for size drops the old item (memcached: no stale data after a failed set).
      await rejectsWith(b.set(key, Buffer.alloc(largest + 1)), Rc.E2BIG, 'set one byte over');
      assert.equal(await b.get(key), null);
      await rejectsWith(b.set(key, Buffer.alloc(ITEM_SIZE_MAX + 1)), Rc.E2BIG, 'set of 1 MiB + 1');
      // Other writes that fail for size leave the item as it was, except over meta, where
      // memcached drops it for every mode (the code is 37 all the same).
      const sizeFailures: Array<[string, (k: string) => Promise<unknown>]> = [
        ['add', (k) => b.add(k, Buffer.alloc(ITEM_SIZE_MAX + 1))],
        ['replace', (k) => b.replace(k, Buffer.alloc(ITEM_SIZE_MAX + 1))],
        ['append', (k) => b.append(k, Buffer.alloc(ITEM_SIZE_MAX + 1))],
        ['prepend', (k) => b.prepend(k, Buffer.alloc(ITEM_SIZE_MAX + 1))],
      ];
      for (const [op, run] of sizeFailures) {
        await b.set(key, 'small');
        await rejectsWith(run(key), Rc.E2BIG, op);
        if (harness.meta === true) assert.equal(await b.get(key), null, `meta ${op} one byte over drops the item`);
        else assert.equal(await text(b, key), 'small', `${op} one byte over leaves the item`);
      }
      await rejectsWith(b.replace('big-missing', Buffer.alloc(ITEM_SIZE_MAX + 1)), Rc.E2BIG, 'replace of a missing key: size is checked first');
      await b.set(key, 'small');
      // cas of an oversized value: 37 too (the old item survives over text, not over binary).
      const item = (await b.gets(key))!;
      await rejectsWith(b.cas(key, Buffer.alloc(ITEM_SIZE_MAX + 1), item.cas), Rc.E2BIG, 'cas');
      await b.set('after-big', 'still works');
      assert.equal(await text(b, 'after-big'), 'still works');
    });

    test('add: stores when missing, 14 NOTSTORED when the key exists', async () => {
      await b.add('add', 'first');
      await rejectsWith(b.add('add', 'second'), Rc.NOTSTORED);
      assert.equal(await text(b, 'add'), 'first');
    });

    test('replace: 14 NOTSTORED when missing (and nothing is created), replaces when present', async () => {
      await rejectsWith(b.replace('replace', 'x'), Rc.NOTSTORED);
      assert.equal(await b.get('replace'), null);
      await b.set('replace', 'hello world');
      await b.replace('replace', 'bye');
      assert.equal(await text(b, 'replace'), 'bye');
    });

    test('append/prepend: 14 when missing, join byte-exact in order, 14 when the join is too big', async () => {
      await rejectsWith(b.append('join', 'x'), Rc.NOTSTORED);
      await rejectsWith(b.prepend('join', 'x'), Rc.NOTSTORED);
      assert.equal(await b.get('join'), null);
      await b.set('join', 'hello');
      await b.append('join', ' world!');
      await b.prepend('join', 'say: ');
      await b.append('join', Buffer.from([0, 0xff, 0x0d, 0x0a]));
      await b.append('join', '');
      assert.deepEqual((await b.get('join'))?.value, Buffer.concat([Buffer.from('say: hello world!'), Buffer.from([0, 0xff, 0x0d, 0x0a])]));
      // Each part fits, the joined item would not: memcached answers NOT_STORED, not E2BIG.
      const half = Buffer.alloc(600 * 1024, 0x61);
      await b.set('join-big', half);
      await rejectsWith(b.append('join-big', half), Rc.NOTSTORED, 'append past -I');
      await rejectsWith(b.prepend('join-big', half), Rc.NOTSTORED, 'prepend past -I');
      assert.equal((await b.get('join-big'))?.value.length, half.length);
    });

    test('delete: 16 NOTFOUND when missing; a deleted key misses', async () => {
      await rejectsWith(b.delete('delete'), Rc.NOTFOUND);
      await b.set('delete', 'x');
      await b.delete('delete');
      assert.equal(await b.get('delete'), null);
      await rejectsWith(b.delete('delete'), Rc.NOTFOUND);
    });

    test('touch: 16 NOTFOUND when missing, success when present', async () => {
      await rejectsWith(b.touch('touch', 100), Rc.NOTFOUND);
      await b.set('touch', 'x');
      await b.touch('touch', 100);
      assert.equal(await text(b, 'touch'), 'x');
    });

    test('incr/decr: 16 NOTFOUND on a missing counter, and nothing is created', async () => {
      await rejectsWith(b.incr('ctr-missing', 1n), Rc.NOTFOUND);
      await rejectsWith(b.decr('ctr-missing', 1n), Rc.NOTFOUND);
      assert.equal(await b.get('ctr-missing'), null);
    });

    test('incr/decr are exact uint64 arithmetic around 2^32, 2^53 and 2^64', async () => {
      const cases: Array<[start: bigint, op: 'incr' | 'decr', delta: bigint, result: bigint]> = [
        [10n, 'incr', 5n, 15n],
        [15n, 'decr', 3n, 12n],
        [2n ** 32n - 1n, 'incr', 1n, 2n ** 32n],
        [2n ** 32n, 'decr', 1n, 2n ** 32n - 1n],
        [2n ** 53n, 'incr', 1n, 2n ** 53n + 1n],
        [2n ** 53n + 1n, 'incr', 0n, 2n ** 53n + 1n],
        [2n ** 53n + 2n, 'decr', 1n, 2n ** 53n + 1n],
        [U64_MAX - 1n, 'incr', 1n, U64_MAX],
        [U64_MAX, 'incr', 0n, U64_MAX],
        [U64_MAX, 'decr', 1n, U64_MAX - 1n],
        // incr wraps at 2^64.
        [U64_MAX, 'incr', 1n, 0n],
        [U64_MAX, 'incr', 2n, 1n],
        [U64_MAX, 'incr', U64_MAX, U64_MAX - 1n],
        [1n, 'incr', U64_MAX, 0n],
        // decr stops at 0.
        [5n, 'decr', 10n, 0n],
        [0n, 'decr', 1n, 0n],
        [U64_MAX, 'decr', U64_MAX, 0n],
        [1n, 'decr', U64_MAX, 0n],
      ];
      for (const [i, [start, op, delta, result]] of cases.entries()) {
        const key = `ctr-${i}`;
        await b.set(key, counterText(start));
        assert.equal(await b[op](key, delta), result, `${start} ${op} ${delta}`);
        assert.equal(BigInt((await text(b, key))!.trimEnd()), result, `${start} ${op} ${delta}: stored value`);
      }
    });

    test('incr/decr store the decimal number in place, padded with spaces to the old length', async () => {
      const cases: Array<[start: string, op: 'incr' | 'decr', delta: bigint, stored: string]> = [
        ['100', 'decr', 95n, '5  '],
        ['10', 'decr', 1n, '9 '],
        ['99', 'incr', 1n, '100'],
        ['0099', 'incr', 1n, '100 '],
        ['5  ', 'incr', 995n, '1000'],
        [counterText(U64_MAX), 'incr', 1n, '0'.padEnd(21, ' ')],
        ['0', 'incr', 0n, '0'],
      ];
      for (const [i, [start, op, delta, stored]] of cases.entries()) {
        const key = `ctr-text-${i}`;
        await b.set(key, start);
        await b[op](key, delta);
        assert.equal(await text(b, key), stored, `${JSON.stringify(start)} ${op} ${delta}`);
      }
    });

    test('incr reads numbers as memcached (strtoull): leading space, sign, trailing text after a space', async () => {
      const numbers: Array<[value: string, after: bigint]> = [
        [' 12', 13n],
        ['\n7', 8n],
        ['7\t', 8n],
        ['12 abc', 13n],
        ['+5', 6n],
        ['-0', 1n],
        ['00000000000000000000000001', 2n],
        ['5\0abc', 6n],
      ];
      for (const [i, [value, after]] of numbers.entries()) {
        await b.set(`lenient-${i}`, value);
        assert.equal(await b.incr(`lenient-${i}`, 1n), after, JSON.stringify(value));
      }
    });

    test('incr/decr of a value that is not a uint64: 9 CLIENT_ERROR, value unchanged', async () => {
      for (const [i, value] of ['hello', '12abc', '', '   ', '-1', '-5', '1.5', '0x10', '18446744073709551616'].entries()) {
        const key = `nan-${i}`;
        await b.set(key, value);
        await rejectsWith(b.incr(key, 1n), Rc.CLIENT_ERROR, `incr ${JSON.stringify(value)}`);
        await rejectsWith(b.decr(key, 1n), Rc.CLIENT_ERROR, `decr ${JSON.stringify(value)}`);
        assert.equal(await text(b, key), value);
      }
      // A value too long to be held in one slab chunk (over half of -I) is not a number either.
      const long = '1' + ' '.repeat(ITEM_SIZE_MAX / 2);
      await b.set('nan-long', long);
      await rejectsWith(b.incr('nan-long', 1n), Rc.CLIENT_ERROR, 'a counter in a chunked item');
    });

    test('gets/cas: success when unchanged, 12 DATA_EXISTS when changed, 16 NOTFOUND when gone', async () => {
      await rejectsWith(b.cas('cas', 'x', 1n), Rc.NOTFOUND, 'cas of a missing key');
      await b.set('cas', 'v1');
      const first = (await b.gets('cas'))!;
      assert.ok(first.cas > 0n);
      await b.cas('cas', 'v2', first.cas);
      assert.equal(await text(b, 'cas'), 'v2');
      await rejectsWith(b.cas('cas', 'v3', first.cas), Rc.DATA_EXISTS, 'cas with a stale unique');
      assert.equal(await text(b, 'cas'), 'v2');
      const second = (await b.gets('cas'))!;
      assert.notEqual(second.cas, first.cas);
      await b.delete('cas');
      await rejectsWith(b.cas('cas', 'v4', second.cas), Rc.NOTFOUND, 'cas after delete');
      assert.equal(await b.get('cas'), null);
    });

    test('deleteCas: 12 DATA_EXISTS when changed (item kept), 16 when gone, deletes when unchanged; add works after', async () => {
      await rejectsWith(b.deleteCas('dcas', 1n), Rc.NOTFOUND, 'deleteCas of a missing key');
      await b.set('dcas', 'mine', { ttl: 100 });
      const first = (await b.gets('dcas'))!;
      await b.set('dcas', 'theirs', { ttl: 100 });
      await rejectsWith(b.deleteCas('dcas', first.cas), Rc.DATA_EXISTS, 'deleteCas with a stale unique');
      assert.equal(await text(b, 'dcas'), 'theirs');
      const second = (await b.gets('dcas'))!;
      await b.deleteCas('dcas', second.cas);
      assert.equal(await b.get('dcas'), null, 'gone for get');
      assert.equal(await b.gets('dcas'), null, 'gone for gets');
      await rejectsWith(b.deleteCas('dcas', second.cas), Rc.NOTFOUND, 'deleteCas after deleteCas');
      await rejectsWith(b.touch('dcas', 100), Rc.NOTFOUND, 'touch after deleteCas');
      await rejectsWith(b.replace('dcas', 'x'), Rc.NOTSTORED, 'replace after deleteCas');
      await b.add('dcas', 'next', { ttl: 100 });
      assert.equal(await text(b, 'dcas'), 'next');
      await rejectsWith(b.deleteCas('dcas', 0n), Rc.INVALID_ARGUMENTS, 'deleteCas with 0');
    });

    test('the CAS unique changes on every write and incr, not on get or touch', async () => {
      const unique = async (key: string) => (await b.gets(key))!.cas;
      await b.set('uniq', '1');
      let last = await unique('uniq');
      const changes: Array<[string, () => Promise<unknown>]> = [
        ['set', () => b.set('uniq', '2')],
        ['replace', () => b.replace('uniq', '3')],
        ['append', () => b.append('uniq', '0')],
        ['prepend', () => b.prepend('uniq', '1')],
        ['incr', () => b.incr('uniq', 1n)],
        ['incr by 0', () => b.incr('uniq', 0n)],
        ['decr', () => b.decr('uniq', 1n)],
      ];
      for (const [what, change] of changes) {
        await change();
        const now = await unique('uniq');
        assert.notEqual(now, last, `${what} gives a new unique`);
        last = now;
      }
      await b.get('uniq');
      await b.touch('uniq', 1000);
      assert.equal(await unique('uniq'), last, 'get and touch keep the unique');
    });

    test('TTL: relative seconds, 0 forever, the 30-day absolute rule, touch and append', async () => {
      const nowSeconds = Math.floor(Date.now() / 1000);
      // Absolute times (above 30 days) in the past: expired at once. 2592001 is 1970.
      await b.set('abs-past', 'x', { ttl: nowSeconds - 10 });
      await b.set('abs-1970', 'x', { ttl: 2592001 });
      assert.equal(await b.get('abs-past'), null);
      assert.equal(await b.get('abs-1970'), null);
      await b.add('abs-past', 'added', { ttl: 0 });
      assert.equal(await text(b, 'abs-past'), 'added', 'an expired key can be added');
      await b.set('replaced-into-past', 'x');
      await b.replace('replaced-into-past', 'y', { ttl: 2592001 });
      assert.equal(await b.get('replaced-into-past'), null);
      await b.set('touched-into-past', 'x');
      await b.touch('touched-into-past', nowSeconds - 10);
      assert.equal(await b.get('touched-into-past'), null);
      await rejectsWith(b.touch('abs-1970', 100), Rc.NOTFOUND, 'touch of an expired key');
      // Exactly 30 days is still relative; an absolute time ahead works.
      await b.set('rel-30d', 'x', { ttl: 2592000 });
      await b.set('abs-future', 'x', { ttl: nowSeconds + 30 });
      assert.equal(await text(b, 'rel-30d'), 'x');
      assert.equal(await text(b, 'abs-future'), 'x');

      await b.set('ttl-1', 'x', { ttl: 1 });
      await b.set('ttl-2', 'x', { ttl: 2 });
      await b.set('ttl-0', 'x', { ttl: 0 });
      await b.set('ttl-100', 'x', { ttl: 100 });
      await b.set('touch-longer', 'x', { ttl: 2 });
      await b.touch('touch-longer', 100);
      await b.set('touch-shorter', 'x', { ttl: 100 });
      await b.touch('touch-shorter', 2);
      await b.set('touch-forever', 'x', { ttl: 2 });
      await b.touch('touch-forever', 0);
      // append/prepend/incr keep the item's TTL.
      await b.set('append-keeps', 'a', { ttl: 2 });
      await b.append('append-keeps', 'b');
      await b.set('prepend-keeps', 'a', { ttl: 2 });
      await b.prepend('prepend-keeps', 'b');
      await b.set('incr-keeps', '10', { ttl: 2 }); // rewritten in place
      await b.incr('incr-keeps', 1n);
      await b.set('incr-grows', '99', { ttl: 2 }); // grown by incr into a new item
      await b.incr('incr-grows', 1n);
      // A ttl=2 item lives at least 1 s (memcached's clock): alive right after the writes.
      assert.equal(await text(b, 'ttl-2'), 'x');
      assert.equal(await text(b, 'append-keeps'), 'ab');

      await pass(2.1);

      for (const gone of ['ttl-1', 'ttl-2', 'touch-shorter', 'append-keeps', 'prepend-keeps', 'incr-keeps', 'incr-grows']) {
        assert.equal(await b.get(gone), null, `${gone} has expired`);
      }
      for (const alive of ['ttl-0', 'ttl-100', 'touch-longer', 'touch-forever', 'rel-30d', 'abs-future', 'abs-past']) {
        assert.notEqual(await b.get(alive), null, `${alive} is alive`);
      }
      // Expired keys behave as missing for every operation.
      await rejectsWith(b.replace('ttl-1', 'x'), Rc.NOTSTORED, 'replace of an expired key');
      await rejectsWith(b.append('ttl-1', 'x'), Rc.NOTSTORED, 'append to an expired key');
      await rejectsWith(b.delete('ttl-1'), Rc.NOTFOUND, 'delete of an expired key');
      await rejectsWith(b.touch('ttl-1', 10), Rc.NOTFOUND, 'touch of an expired key');
      await rejectsWith(b.incr('incr-keeps', 1n), Rc.NOTFOUND, 'incr of an expired key');
      await b.add('ttl-2', 'again');
      assert.equal(await text(b, 'ttl-2'), 'again');
    });

    test('key prefixes: backends with different prefixes never see each other’s keys', async () => {
      const other = await harness.open('other:');
      const raw = await harness.open('');
      await b.set('shared-name', 'mine');
      assert.equal(await other.get('shared-name'), null);
      assert.equal(await text(raw, `${PREFIX}shared-name`), 'mine', 'the prefix is part of the stored key');
      await other.set('shared-name', 'theirs');
      assert.equal(await text(b, 'shared-name'), 'mine');
      await other.set('ctr', '100');
      await b.set('ctr', '5');
      assert.equal(await other.incr('ctr', 1n), 101n);
      assert.equal(await b.incr('ctr', 1n), 6n);
      await other.delete('shared-name');
      assert.equal(await text(b, 'shared-name'), 'mine');
    });

    test('key length: 250 bytes with the prefix, 33 one byte over', async () => {
      const raw = await harness.open('');
      const longest = 'k'.repeat(250 - PREFIX.length);
      await b.set(longest, 'fits');
      assert.equal(await text(b, longest), 'fits');
      assert.equal(await text(raw, PREFIX + longest), 'fits');
      await rejectsWith(b.set(longest + 'k', 'x'), Rc.BAD_KEY_PROVIDED, 'prefix + key of 251 bytes');
      await raw.set('r'.repeat(250), 'fits');
      await rejectsWith(raw.get('r'.repeat(251)), Rc.BAD_KEY_PROVIDED, 'a 251-byte key');
      // The limit counts bytes, not characters: 125 two-byte characters fit, 126 do not.
      await raw.set('é'.repeat(125), 'fits');
      await rejectsWith(raw.set('é'.repeat(126), 'x'), Rc.BAD_KEY_PROVIDED, '252 bytes of UTF-8');
    });

    test('bad keys: 33 BAD_KEY_PROVIDED from every operation, and nothing is stored', async () => {
      const spaced: Array<string | Buffer> = ['a b', 'a\rb', 'a\nb', 'x\r\nflush_all', 'nul\0', 'tab\there', 'del\x7f', 'bell\x07', Buffer.from([0x61, 0x00])];
      const empty: Array<string | Buffer> = ['', 'x'.repeat(251 - PREFIX.length), Buffer.alloc(0)];
      // Over meta, whitespace and control bytes are key bytes like any other (sent base64): each
      // such key is its own item. Empty and over-long keys are refused by every protocol.
      const bad = harness.meta === true ? empty : [...empty, ...spaced];
      if (harness.meta === true) {
        for (const [i, key] of spaced.entries()) await b.set(key, `spaced ${i}`);
        for (const [i, key] of spaced.entries()) assert.equal(await text(b, key), `spaced ${i}`, JSON.stringify(key.toString()));
        for (const key of spaced) await b.delete(key);
      }
      const ops: Array<[string, (key: string | Buffer) => Promise<unknown>]> = [
        ['get', (k) => b.get(k)],
        ['gets', (k) => b.gets(k)],
        ['set', (k) => b.set(k, 'v')],
        ['add', (k) => b.add(k, 'v')],
        ['replace', (k) => b.replace(k, 'v')],
        ['append', (k) => b.append(k, 'v')],
        ['prepend', (k) => b.prepend(k, 'v')],
        ['cas', (k) => b.cas(k, 'v', 1n)],
        ['delete', (k) => b.delete(k)],
        ['touch', (k) => b.touch(k, 10)],
        ['incr', (k) => b.incr(k, 1n)],
        ['decr', (k) => b.decr(k, 1n)],
      ];
      for (const key of bad) {
        for (const [op, run] of ops) await rejectsWith(run(key), Rc.BAD_KEY_PROVIDED, `${op} ${JSON.stringify(key.toString())}`);
      }
      assert.equal(await b.get('a'), null);
      assert.equal(await b.get('x'), null);
    });

    test('bad arguments: 38 INVALID_ARGUMENTS, as the Client refuses them', async () => {
      await b.set('args', '1');
      for (const ttl of [-1, 1.5, 2 ** 31, 2 ** 32, Number.NaN]) {
        await rejectsWith(b.set('args', 'v', { ttl }), Rc.INVALID_ARGUMENTS, `set ttl ${ttl}`);
        await rejectsWith(b.touch('args', ttl), Rc.INVALID_ARGUMENTS, `touch ttl ${ttl}`);
      }
      await rejectsWith(b.cas('args', 'v', 0n), Rc.INVALID_ARGUMENTS, 'cas 0: binary would take it as a plain set');
      await rejectsWith(b.incr('args', -1n), Rc.INVALID_ARGUMENTS, 'negative delta');
      await rejectsWith(b.decr('args', 2n ** 64n), Rc.INVALID_ARGUMENTS, 'delta of 2^64');
      assert.equal(await text(b, 'args'), '1');
    });

    test('a bad TTL for touch is a rejection, not a synchronous throw', async () => {
      let promise: Promise<void> | undefined;
      assert.doesNotThrow(() => {
        promise = b.touch('args', -1);
      });
      await rejectsWith(promise!, Rc.INVALID_ARGUMENTS, 'touch ttl -1');
    });

    test('flush empties every prefix', async () => {
      const other = await harness.open('flush-other:');
      await b.set('to-flush', 'x');
      await other.set('to-flush', 'y');
      await b.flush();
      assert.equal(await b.get('to-flush'), null);
      assert.equal(await other.get('to-flush'), null);
      await b.set('after-flush', 'z');
      assert.equal(await text(b, 'after-flush'), 'z');
    });
  });
}
