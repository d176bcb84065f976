// Every client operation against a real memcached, over the text, binary and meta protocols:
// one code per outcome whatever the protocol, the text protocol's code (ARCHITECTURE.md,
// "Result codes").

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/cluster/client.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';

async function rejectsWith(promise: Promise<unknown>, rc: number): Promise<MemcachedError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MemcachedError, `expected MemcachedError, got ${String(err)}`);
    assert.equal(err.rc, rc, `expected rc ${rc}, got ${err.rc} (${err.message})`);
    return err;
  }
  assert.fail(`expected rejection with rc ${rc}`);
}

for (const protocol of ['text', 'binary', 'meta'] as const) {
  describe(`client operations over the ${protocol} protocol`, () => {
    let mc: MemcachedProcess;
    let client: Client;
    let raw: Client; // no prefix, to see what went on the wire
    const prefix = 'pbx1:';

    before(async () => {
      mc = await startMemcached();
      client = new Client({ servers: [mc.address], protocol, keyPrefix: prefix });
      raw = new Client({ servers: [mc.address], protocol });
    });
    after(async () => {
      await client.close();
      await raw.close();
      await mc.stop();
    });

    test('connections open on first use, not at construction', async () => {
      const c = new Client({ servers: [mc.address], protocol });
      const before = Number((await raw.stats()).at(0)?.value?.['curr_connections']);
      const again = Number((await raw.stats()).at(0)?.value?.['curr_connections']);
      assert.equal(again, before, 'constructing a client opened nothing');
      await c.set('lazy', 'x');
      const afterUse = Number((await raw.stats()).at(0)?.value?.['curr_connections']);
      assert.equal(afterUse, before + 1);
      await c.close();
    });

    test('set then get returns the bytes, flags and the prefix is on the wire', async () => {
      await client.set('greeting', 'hello', { flags: 42 });
      const item = await client.get('greeting');
      assert.ok(item);
      assert.equal(item.value.toString(), 'hello');
      assert.equal(item.flags, 42);
      const onWire = await raw.get(`${prefix}greeting`);
      assert.equal(onWire?.value.toString(), 'hello');
      assert.equal(await raw.get('greeting'), null);
    });

    test('binary-safe values: CR LF NUL and every byte', async () => {
      const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const tricky = Buffer.concat([value, Buffer.from('\r\nEND\r\nVALUE x 0 1\r\n')]);
      await client.set('bytes', tricky);
      assert.deepEqual((await client.get('bytes'))?.value, tricky);
      await client.set('empty', '');
      assert.equal((await client.get('empty'))?.value.length, 0);
    });

    test('UTF-8 keys and values', async () => {
      await client.set('ключ', 'значение ☎');
      assert.equal((await client.get('ключ'))?.value.toString('utf8'), 'значение ☎');
    });

    test('get of a missing key resolves null', async () => {
      assert.equal(await client.get('never_set'), null);
    });

    test('add: stores when missing, 14 NOTSTORED when it exists', async () => {
      await client.add('add_k', 'first');
      await rejectsWith(client.add('add_k', 'second'), Rc.NOTSTORED);
      assert.equal((await client.get('add_k'))?.value.toString(), 'first');
    });

    test('replace: 14 NOTSTORED when missing, replaces when it exists', async () => {
      await rejectsWith(client.replace('rep_k', 'x'), Rc.NOTSTORED);
      assert.equal(await client.get('rep_k'), null);
      await client.set('rep_k', 'hello world');
      await client.replace('rep_k', 'goodbye');
      assert.equal((await client.get('rep_k'))?.value.toString(), 'goodbye');
    });

    test('append and prepend: server-side, 14 when missing', async () => {
      await rejectsWith(client.append('app_k', ' world!'), Rc.NOTSTORED);
      await rejectsWith(client.prepend('app_k', 'say: '), Rc.NOTSTORED);
      await client.set('app_k', 'hello');
      await client.append('app_k', ' world!');
      await client.prepend('app_k', 'say: ');
      assert.equal((await client.get('app_k'))?.value.toString(), 'say: hello world!');
    });

    test('delete: 16 NOTFOUND when missing; get after delete misses', async () => {
      await rejectsWith(client.delete('del_k'), Rc.NOTFOUND);
      await client.set('del_k', 'x');
      await client.delete('del_k');
      assert.equal(await client.get('del_k'), null);
    });

    test('gets/cas: stores with the right CAS, 12 DATA_EXISTS after a change, 16 when gone', async () => {
      await client.set('cas_k', 'v1');
      const item = await client.gets('cas_k');
      assert.ok(item && item.cas > 0n);
      await client.cas('cas_k', 'v2', item.cas);
      assert.equal((await client.get('cas_k'))?.value.toString(), 'v2');
      await rejectsWith(client.cas('cas_k', 'v3', item.cas), Rc.DATA_EXISTS);
      assert.equal((await client.get('cas_k'))?.value.toString(), 'v2');
      const fresh = await client.gets('cas_k');
      await client.delete('cas_k');
      await rejectsWith(client.cas('cas_k', 'v4', fresh!.cas), Rc.NOTFOUND);
    });

    test('getMulti: hits by key, misses absent, duplicates and many keys', async () => {
      const keys = Array.from({ length: 250 }, (_, i) => `multi_${i}`);
      await Promise.all(keys.filter((_, i) => i % 3 !== 0).map((k) => client.set(k, `v_${k}`)));
      const got = await client.getMulti([...keys, 'multi_1']);
      assert.equal(got.size, keys.filter((_, i) => i % 3 !== 0).length);
      for (const [i, k] of keys.entries()) {
        if (i % 3 === 0) assert.equal(got.has(k), false);
        else assert.equal(got.get(k)?.value.toString(), `v_${k}`);
      }
    });

    // Keys here hold no '-': memcached 1.6's incr/decr of a counter >= 2^63 scans past the value
    // for a '-' (util.c safe_strtoull) and fails with 9 when old bytes nearby hold one.
    test('incr/decr: 16 when missing, exact 64-bit values, decr clamps at 0, incr wraps', async () => {
      await rejectsWith(client.incr('ctr_missing', 1), Rc.NOTFOUND);
      await rejectsWith(client.decr('ctr_missing', 1), Rc.NOTFOUND);
      await client.set('ctr', '10');
      assert.equal(await client.incr('ctr', 5), 15n);
      assert.equal(await client.decr('ctr', 3), 12n);
      assert.equal(await client.decr('ctr', 100), 0n);
      await client.set('ctr', '18446744073709551614');
      assert.equal(await client.incr('ctr', 1n), 18446744073709551615n);
      assert.equal(await client.incr('ctr', 0n), 18446744073709551615n);
      assert.equal(await client.incr('ctr', 1n), 0n);
      await client.set('ctr', '4294967295');
      assert.equal(await client.incr('ctr', 1n), 4294967296n);
      await client.set('ctr', '9007199254740993');
      assert.equal(await client.incr('ctr', 0n), 9007199254740993n);
    });

    test('incr leaves padding that get shows, and the counter still reads exactly', async () => {
      await client.set('pad', '100');
      assert.equal(await client.decr('pad', 95), 5n);
      const stored = (await client.get('pad'))!.value.toString();
      assert.equal(stored.trimEnd(), '5', 'memcached keeps the item length and pads with spaces');
      assert.equal(await client.incr('pad', 0), 5n);
    });

    test('incr of a non-numeric value: 9 CLIENT_ERROR in all three protocols', async () => {
      await client.set('nan', 'hello');
      await rejectsWith(client.incr('nan', 1), Rc.CLIENT_ERROR);
      assert.equal((await client.get('nan'))?.value.toString(), 'hello');
    });

    test('incr with an initial value creates the counter, then counts', async () => {
      assert.equal(await client.incr('init_ctr', 5, { initial: 100 }), 100n);
      assert.equal(await client.incr('init_ctr', 5, { initial: 100 }), 105n);
      assert.equal(await client.decr('init_ctr2', 1, { initial: 7n }), 7n);
    });

    test('touch: 16 when missing; changes the TTL of an existing key', async () => {
      await rejectsWith(client.touch('touch_missing', 10), Rc.NOTFOUND);
      await client.set('touch_k', 'v', { ttl: 1000 });
      await client.touch('touch_k', 1);
      assert.equal((await client.get('touch_k'))?.value.toString(), 'v');
      await new Promise((r) => setTimeout(r, 2100));
      assert.equal(await client.get('touch_k'), null);
    });

    test('TTL: a value set with ttl 1 is gone after 2 s', async () => {
      await client.set('ttl_k', 'soon gone', { ttl: 1 });
      assert.equal((await client.get('ttl_k'))?.value.toString(), 'soon gone');
      await new Promise((r) => setTimeout(r, 2100));
      assert.equal(await client.get('ttl_k'), null);
    });

    test('a value over the server item size: 37 E2BIG, and the connection still works', async () => {
      await rejectsWith(client.set('big', Buffer.alloc(1024 * 1024 + 1, 0x61)), Rc.E2BIG);
      assert.equal(await client.get('big'), null);
      await client.set('after_big', 'ok');
      assert.equal((await client.get('after_big'))?.value.toString(), 'ok');
    });

    test('bad keys get 33 and are never sent', async () => {
      const statsBefore = (await raw.stats()).at(0)?.value!;
      // Over meta, whitespace and control bytes are ordinary key bytes (sent base64, see the
      // meta client tests); only empty and over-long keys are refused there.
      const controlKeys = ['a b', 'a\r\nb', 'tab\there', 'nul\0', 'del\x7f'];
      const refused = ['', 'x'.repeat(251 - prefix.length), ...(protocol === 'meta' ? [] : controlKeys)];
      for (const key of refused) {
        await rejectsWith(client.set(key, 'v'), Rc.BAD_KEY_PROVIDED);
        await rejectsWith(client.get(key), Rc.BAD_KEY_PROVIDED);
      }
      // An injection attempt that would otherwise run a second command: refused by text and
      // binary, a plain miss over meta (the key travels base64, so nothing is run).
      if (protocol === 'meta') assert.equal(await client.get('x\r\nflush_all'), null);
      else await rejectsWith(client.get('x\r\nflush_all'), Rc.BAD_KEY_PROVIDED);
      const statsAfter = (await raw.stats()).at(0)?.value!;
      assert.equal(statsAfter['cmd_set'], statsBefore['cmd_set']);
      assert.equal(statsAfter['cmd_flush'], statsBefore['cmd_flush']);
      // The longest key that fits with the prefix works.
      const longest = 'k'.repeat(250 - prefix.length);
      await client.set(longest, 'fits');
      assert.equal((await client.get(longest))?.value.toString(), 'fits');
    });

    test('bad arguments get 38 INVALID_ARGUMENTS', async () => {
      await rejectsWith(client.set('k', 'v', { ttl: -1 }), Rc.INVALID_ARGUMENTS);
      await rejectsWith(client.set('k', 'v', { ttl: 1.5 }), Rc.INVALID_ARGUMENTS);
      await rejectsWith(client.set('k', 'v', { flags: 2 ** 32 }), Rc.INVALID_ARGUMENTS);
      await rejectsWith(client.incr('k', -1), Rc.INVALID_ARGUMENTS);
      await rejectsWith(client.incr('k', 2n ** 64n), Rc.INVALID_ARGUMENTS);
    });

    test('version and stats per server', async () => {
      const [v] = await client.version();
      assert.equal(v?.rc, 0);
      assert.match(v?.value ?? '', /^1\.\d+\.\d+/);
      const [s] = await client.stats();
      assert.equal(s?.rc, 0);
      assert.ok(Number(s?.value?.['curr_items']) > 0);
      assert.equal(s?.server, mc.address);
    });

    test('pipelining: 2000 concurrent requests all answered correctly', async () => {
      const n = 2000;
      await Promise.all(Array.from({ length: n }, (_, i) => client.set(`pipe_${i}`, `value_${i}`)));
      const values = await Promise.all(Array.from({ length: n }, (_, i) => client.get(`pipe_${i}`)));
      values.forEach((item, i) => assert.equal(item?.value.toString(), `value_${i}`));
      await client.set('pipe_ctr', '0');
      await Promise.all(Array.from({ length: n }, () => client.incr('pipe_ctr', 1)));
      assert.equal(await client.incr('pipe_ctr', 0), BigInt(n));
    });

    test('large values (512 KiB) round-trip among small ones', async () => {
      const big = Buffer.alloc(512 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
      const ops = [client.set('big_ok', big), client.set('small_1', 'a'), client.get('small_1')];
      await Promise.all(ops);
      assert.deepEqual((await client.get('big_ok'))?.value, big);
    });

    test('flush empties the server', async () => {
      await client.set('to_flush', 'x');
      await client.flush();
      assert.equal(await client.get('to_flush'), null);
    });
  });
}

describe('no servers', () => {
  test('every operation answers 20 NO_SERVERS', async () => {
    const c = new Client({ servers: [] });
    await rejectsWith(c.get('k'), Rc.NO_SERVERS);
    await rejectsWith(c.set('k', 'v'), Rc.NO_SERVERS);
    await rejectsWith(c.incr('k', 1), Rc.NO_SERVERS);
    await c.close();
  });
});
