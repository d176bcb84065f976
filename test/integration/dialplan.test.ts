// Every dialplan command through the daemon, driven by the Asterisk-faithful AGI client, against
// the embedded store and real memcached over the text, binary and meta protocols (README.md,
// "The dialplan"):
// MCDRESULT and the variables for every success and every error code, byte-exact values,
// MCDTTL/?ttl, uint64 counters, the refusals 122/124/125/126/127/33, and that every session ends
// cleanly with AGISTATUS=SUCCESS.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { Client } from '../../src/cluster/client.js';
import type { CacheBackend } from '../../src/dialplan/backend.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { FakeChannel, type AgiRun } from '../support/fake-asterisk.js';
import { startHangupRelay } from '../support/agi-relay.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';

const U64_MAX = '18446744073709551615';

interface Backend {
  name: string;
  /** The wire protocol memcached.conf names; absent for the embedded store. */
  protocol?: 'text' | 'binary' | 'meta';
  config(): string;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

let mc: MemcachedProcess | null = null;
const backends: Backend[] = [
  { name: 'the embedded store', config: () => '[general]\nkeyprefix=t:\n' },
  {
    name: 'memcached, binary protocol',
    protocol: 'binary',
    config: () => `[general]\nserver=${mc!.address}\nbinary_proto=yes\nkeyprefix=t:\n`,
  },
  {
    name: 'memcached, text protocol',
    protocol: 'text',
    config: () => `[general]\nserver=${mc!.address}\nbinary_proto=no\nkeyprefix=t:\n`,
  },  {
    // protocol=meta in memcached.conf: the daemon's client speaks meta (checked in its own test).
    name: 'memcached, meta protocol',
    protocol: 'meta',
    config: () => `[general]\nserver=${mc!.address}\nprotocol=meta\nkeyprefix=t:\n`,
  },
];

before(async () => {
  mc = await startMemcached();
});
after(async () => {
  await mc?.stop();
});

let unique = 0;
// No '-' in keys or values on the memcached these tests share: memcached 1.6's incr/decr of a
// counter >= 2^63 scans past the value for a '-' (util.c safe_strtoull) and then fails with 9.
const k = (name: string): string => `${name}_${process.pid}_${++unique}`;

for (const backend of backends) {
  describe(`dialplan commands on ${backend.name}`, () => {
    let d: TestDaemon;
    let cache: CacheBackend;

    before(async () => {
      d = await startDaemon(backend.config());
      cache = d.daemon.backend;
    });
    after(async () => {
      await d.stop();
    });

    async function call(script: string, args: ReadonlyArray<string | Buffer>, variables: Record<string, string> = {}): Promise<{ ch: FakeChannel; run: AgiRun }> {
      const ch = new FakeChannel({ variables });
      const run = await ch.agi(d.url(script), args);
      assert.equal(run.status, 'SUCCESS', `AGISTATUS after ${script}: ${run.status}`);
      return { ch, run };
    }
    const result = (ch: FakeChannel): string | undefined => ch.getVar('MCDRESULT');

    test('the daemon\'s backend speaks the protocol memcached.conf names', () => {
      if (backend.protocol === undefined) assert.ok(!(cache instanceof Client), 'the embedded store');
      else {
        assert.ok(cache instanceof Client, 'a memcached client');
        assert.equal(cache.protocol, backend.protocol);
      }
    });

    test('mcdset then MCD: the value comes back byte for byte, MCDRESULT=0', async () => {
      const values = ['hello', 'He said "hi" \\ back\\slash ${X} $[1+1] ✓', '  spaced out  ', 'semi;colon|pipe', '(paren)', 'tab\there', 'x'.repeat(4096)];
      for (const value of values) {
        const key = k('v');
        const set = await call('mcdset', [key, value]);
        assert.equal(result(set.ch), '0');
        const got = await call('MCD', [key]);
        assert.equal(result(got.ch), '0');
        assert.equal(got.ch.getVar('MCD'), value, `value ${JSON.stringify(value.slice(0, 40))}`);
        assert.deepEqual((await cache.get(key))?.value, Buffer.from(value, 'utf8'));
      }
    });

    test('a value split by the dialplan on commas is joined again; nothing is trimmed', async () => {
      const key = k('commas');
      const { ch } = await call('mcdset', [key, ' a', 'b ', '', 'c']);
      assert.equal(result(ch), '0');
      assert.equal((await cache.get(key))?.value.toString(), ' a,b ,,c');
      const empty = k('empty');
      assert.equal(result((await call('mcdset', [empty, ''])).ch), '0');
      const got = await call('MCD', [empty]);
      assert.equal(result(got.ch), '0');
      assert.equal(got.ch.getVar('MCD'), '');
    });

    test('MCD of a missing key: MCDRESULT=16 and ${MCD}=""; a stale ${MCD} is cleared', async () => {
      const { ch } = await call('MCD', [k('missing')], { MCD: 'stale' });
      assert.equal(result(ch), '16');
      assert.equal(ch.getVar('MCD'), '');
    });

    test('script names are case-insensitive; an unknown one gives 28 and still ends cleanly', async () => {
      const key = k('case');
      assert.equal(result((await call('McDsEt', [key, 'v'])).ch), '0');
      const got = await call('mcd', [key]);
      assert.equal(got.ch.getVar('MCD'), 'v');
      assert.equal(result((await call('nosuchcommand', [key])).ch), '28');
    });

    test('mcdget sets the named variable; a bad name or a missing key gives 127', async () => {
      const key = k('get');
      await cache.set(key, 'stored');
      const ok = await call('mcdget', ['MYVAR', key]);
      assert.equal(result(ok.ch), '0');
      assert.equal(ok.ch.getVar('MYVAR'), 'stored');
      const miss = await call('mcdget', ['MYVAR', k('nope')], { MYVAR: 'old' });
      assert.equal(result(miss.ch), '16');
      assert.equal(miss.ch.getVar('MYVAR'), '');
      for (const bad of ['', 'has space', 'x(y)', 'a=b', '${X}']) {
        const r = await call('mcdget', [bad, key]);
        assert.equal(result(r.ch), '127', `variable name ${JSON.stringify(bad)}`);
      }
      assert.equal(result((await call('mcdget', ['V'])).ch), '127');
      assert.equal(result((await call('mcdget', [])).ch), '127');
    });

    test('key rules: 127 missing, 126 over max_key_length (64), 33 whitespace or control bytes — never sent', async () => {
      assert.equal(result((await call('MCD', [])).ch), '127');
      assert.equal(result((await call('MCD', [''])).ch), '127');
      assert.equal(result((await call('mcdset', ['k'.repeat(65), 'v'])).ch), '126');
      assert.equal(result((await call('mcdset', ['k'.repeat(64), 'v'])).ch), '0');
      for (const bad of ['a b', 'a\tb', 'a\rb', 'x\x7f', 'x\x01', 'set k 0 0 1']) {
        const r = await call('mcdset', [bad, 'v']);
        assert.equal(result(r.ch), '33', `key ${JSON.stringify(bad)}`);
      }
      assert.equal(await cache.get('a'), null);
    });

    test('keys as raw bytes: invalid UTF-8 is a key like any other; a refused key never reaches the cache', async () => {
      const raw = Buffer.from([0x6b, 0xff, 0xfe, 0xc3, 0x28]);
      assert.equal(result((await call('mcdset', [raw, 'bytes'])).ch), '0');
      assert.equal((await cache.get(raw))?.value.toString(), 'bytes');
      const got = await call('MCD', [raw]);
      assert.equal(got.ch.getVar('MCD'), 'bytes');
      if (backend.name.startsWith('memcached')) {
        const before = await serverCounters();
        for (const bad of ['a b', 'x\ry', 'x\x00y', 'x\x1by', 'k'.repeat(65), 'get k\r\nset k 0 0 1']) {
          await call('mcdset', [bad, 'v']);
          await call('MCD', [bad]);
          await call('mcddelete', [bad]);
          await call('MCDCOUNTER', [bad, '1']);
        }
        const after = await serverCounters();
        assert.deepEqual(after, before, 'no command reached memcached for a refused key');
      }
    });

    async function serverCounters(): Promise<Record<string, string>> {
      const probe = new Client({ servers: [mc!.address] });
      try {
        const stats = (await probe.stats())[0]!.value!;
        return { cmd_get: stats['cmd_get']!, cmd_set: stats['cmd_set']!, delete_misses: stats['delete_misses']!, incr_misses: stats['incr_misses']! };
      } finally {
        await probe.close();
      }
    }

    test('value rules on write: 127 missing, 125 over max_value_length (4096), 122 CR', async () => {
      const key = k('vw');
      assert.equal(result((await call('mcdset', [key])).ch), '127');
      assert.equal(result((await call('mcdset', [key, 'x'.repeat(4097)])).ch), '125');
      assert.equal(result((await call('mcdset', [key, 'x'.repeat(4095), 'y'])).ch), '125', 'the joined value counts');
      assert.equal(result((await call('mcdset', [key, 'a\rb'])).ch), '122');
      assert.equal(await cache.get(key), null);
    });

    test('values that cannot travel to the dialplan: CR/LF/NUL give 122, too long 125, ${MCD}=""', async () => {
      const cases: Array<[Buffer, string]> = [
        [Buffer.from('line1\nline2'), '122'],
        [Buffer.from('a\rb'), '122'],
        [Buffer.from([0x61, 0x00, 0x62]), '122'],
        [Buffer.from('\nSET VARIABLE EVIL 1'), '122'],
        [Buffer.alloc(4097, 0x78), '125'],
      ];
      for (const [value, code] of cases) {
        const key = k('bad');
        await cache.set(key, value);
        const { ch, run } = await call('MCD', [key], { MCD: 'stale' });
        assert.equal(result(ch), code);
        assert.equal(ch.getVar('MCD'), '');
        assert.equal(ch.getVar('EVIL'), undefined);
        assert.ok(run.commands.every((c) => !c.includes('EVIL')));
      }
    });

    test('mcdadd: 14 when the key exists; mcdreplace: 14 when it is missing', async () => {
      const key = k('ar');
      assert.equal(result((await call('mcdadd', [key, 'first'])).ch), '0');
      assert.equal(result((await call('mcdadd', [key, 'second'])).ch), '14');
      assert.equal((await cache.get(key))?.value.toString(), 'first');
      assert.equal(result((await call('mcdreplace', [key, 'third'])).ch), '0');
      assert.equal((await cache.get(key))?.value.toString(), 'third');
      assert.equal(result((await call('mcdreplace', [k('absent'), 'x'])).ch), '14');
    });

    test('mcdappend / mcdprepend: server-side, not trimmed; 14 when missing', async () => {
      const key = k('ap');
      await call('mcdset', [key, 'hello']);
      assert.equal(result((await call('mcdappend', [key, ' world!'])).ch), '0');
      assert.equal(result((await call('mcdprepend', [key, '>> '])).ch), '0');
      assert.equal((await cache.get(key))?.value.toString(), '>> hello world!');
      assert.equal(result((await call('mcdappend', [k('absent'), 'x'])).ch), '14');
      assert.equal(result((await call('mcdprepend', [k('absent'), 'x'])).ch), '14');
    });

    test('mcddelete: 0, then 16', async () => {
      const key = k('del');
      await cache.set(key, 'x');
      assert.equal(result((await call('mcddelete', [key])).ch), '0');
      assert.equal(await cache.get(key), null);
      assert.equal(result((await call('mcddelete', [key])).ch), '16');
    });

    test('MCDCOUNTER: read, add, subtract, clamp at 0, wrap at 2^64, uint64 exact; 16 and "" when missing; 124 bad increment', async () => {
      const key = k('ctr');
      assert.equal(result((await call('mcdcounterset', [key, '678'])).ch), '0');
      const read = await call('MCDCOUNTER', [key]);
      assert.equal(read.ch.getVar('MCDCOUNTER'), '678');
      assert.equal(result(read.ch), '0');
      assert.equal((await call('MCDCOUNTER', [key, '-12'])).ch.getVar('MCDCOUNTER'), '666');
      assert.equal((await call('MCDCOUNTER', [key, '+4'])).ch.getVar('MCDCOUNTER'), '670');
      assert.equal((await call('MCDCOUNTER', [key, '-1000'])).ch.getVar('MCDCOUNTER'), '0');
      await call('mcdcounterset', [key, U64_MAX]);
      assert.equal((await call('MCDCOUNTER', [key])).ch.getVar('MCDCOUNTER'), U64_MAX);
      assert.equal((await call('MCDCOUNTER', [key, '1'])).ch.getVar('MCDCOUNTER'), '0', 'incr wraps at 2^64');
      await call('mcdcounterset', [key, '9007199254740993']); // 2^53 + 1: no float rounding
      assert.equal((await call('MCDCOUNTER', [key, '2'])).ch.getVar('MCDCOUNTER'), '9007199254740995');
      await call('mcdcounterset', [key, '4294967295']);
      assert.equal((await call('MCDCOUNTER', [key, '1'])).ch.getVar('MCDCOUNTER'), '4294967296');

      const missing = await call('MCDCOUNTER', [k('nocounter'), '1'], { MCDCOUNTER: 'stale' });
      assert.equal(result(missing.ch), '16');
      assert.equal(missing.ch.getVar('MCDCOUNTER'), '');
      for (const bad of ['abc', '1.5', '0x10', '18446744073709551616', '--1', '1e3']) {
        const r = await call('MCDCOUNTER', [key, bad]);
        assert.equal(result(r.ch), '124', `increment ${bad}`);
        assert.equal(r.ch.getVar('MCDCOUNTER'), '');
      }
      assert.equal((await call('MCDCOUNTER', [key])).ch.getVar('MCDCOUNTER'), '4294967296', 'refused increments changed nothing');
      await cache.set(key, 'not a number');
      assert.equal(result((await call('MCDCOUNTER', [key, '1'])).ch), '9');
    });

    test('mcdcounterset: creates or forces; 124 for anything but 0..2^64-1; 127 without a value', async () => {
      const key = k('cs');
      await cache.set(key, '5');
      assert.equal(result((await call('mcdcounterset', [key, '0'])).ch), '0');
      assert.equal((await cache.get(key))?.value.toString(), '0');
      for (const bad of ['-1', 'x', '18446744073709551616', '']) {
        assert.equal(result((await call('mcdcounterset', [key, bad])).ch), '124', `value ${JSON.stringify(bad)}`);
      }
      assert.equal(result((await call('mcdcounterset', [key, '1', '2'])).ch), '124', '"1,2" is not a number');
      assert.equal(result((await call('mcdcounterset', [key])).ch), '127');
      assert.equal((await cache.get(key))?.value.toString(), '0');
    });

    test('mcdtouch: 16 when missing, 38 for a bad ttl', async () => {
      assert.equal(result((await call('mcdtouch', [k('absent'), '10'])).ch), '16');
      const key = k('touch');
      await cache.set(key, 'x');
      assert.equal(result((await call('mcdtouch', [key, '100'])).ch), '0');
      assert.equal(result((await call('mcdtouch', [key, 'soon'])).ch), '38');
      assert.equal(result((await call('mcdtouch', [key, '-5'])).ch), '38');
    });

    test('TTL: MCDTTL over the config, ?ttl= over MCDTTL, a non-numeric MCDTTL ignored with a warning; mcdtouch expires', async () => {
      const viaMcdttl = k('ttl1');
      const viaQuery = k('ttl2');
      const ignored = k('ttl3');
      const touched = k('ttl4');
      const counter = k('ttl5');
      await call('mcdset', [viaMcdttl, 'x'], { MCDTTL: '1' });
      await call('mcdset?ttl=1', [viaQuery, 'x'], { MCDTTL: '1000' });
      await call('mcdset', [ignored, 'x'], { MCDTTL: '1; DROP' });
      await call('mcdset', [touched, 'x']);
      await call('mcdtouch', [touched, '1']);
      await call('mcdcounterset', [counter, '7'], { MCDTTL: '1' });
      const casMcdttl = k('ttl6');
      const casQuery = k('ttl7');
      for (const [key, script, variables] of [[casMcdttl, 'mcdcas', { MCDTTL: '1' }], [casQuery, 'mcdcas?ttl=1', { MCDTTL: '1000' }]] as const) {
        await cache.set(key, 'x');
        const token = (await call('mcdgets', ['V', key])).ch.getVar('MCDCAS')!;
        assert.equal(result((await call(script, [key, token, 'y'], variables)).ch), '0');
      }
      assert.ok(d.logs.some((l) => l.level === 40 && String(l.warning ?? l.msg).includes('MCDTTL')), 'the bad MCDTTL is logged');
      await sleep(2100);
      assert.equal(result((await call('MCD', [viaMcdttl])).ch), '16');
      assert.equal(result((await call('MCD', [viaQuery])).ch), '16');
      assert.equal(result((await call('MCD', [ignored])).ch), '0', 'config ttl 0: never expires');
      assert.equal(result((await call('MCD', [touched])).ch), '16');
      assert.equal(result((await call('MCDCOUNTER', [counter])).ch), '16');
      assert.equal(result((await call('MCD', [casMcdttl])).ch), '16', 'mcdcas takes MCDTTL');
      assert.equal(result((await call('MCD', [casQuery])).ch), '16', 'mcdcas takes ?ttl= over MCDTTL');
      assert.equal(result((await call('mcdset?ttl=abc', [ignored, 'x'])).ch), '38');
      assert.equal(result((await call('mcdset?colour=red', [ignored, 'x'])).ch), '38');
    });

    test('200 concurrent sessions incrementing one counter leave it exactly right', async () => {
      const key = k('race');
      await call('mcdcounterset', [key, '1000']);
      const runs = await Promise.all(
        Array.from({ length: 200 }, (_, i) => call('MCDCOUNTER', [key, i % 2 === 0 ? '3' : '-1'])),
      );
      for (const { ch } of runs) assert.equal(result(ch), '0');
      const seen = new Set(runs.map(({ ch }) => ch.getVar('MCDCOUNTER')));
      assert.equal(seen.size, 200, 'every session saw a distinct counter value (atomic)');
      assert.equal((await call('MCDCOUNTER', [key])).ch.getVar('MCDCOUNTER'), String(1000 + 100 * 3 - 100));
    });

    test('mcdgets sets the variable and ${MCDCAS}; mcdcas with that token stores, byte for byte, and MCDRESULT=0', async () => {
      const values = ['plain', 'He said "hi" \\ back\\slash ${X} $[1+1] ✓', '  spaced out  ', 'x'.repeat(4096)];
      for (const value of values) {
        const key = k('cas');
        await cache.set(key, value);
        const read = await call('mcdgets', ['V', key], { V: 'stale', MCDCAS: 'stale' });
        assert.equal(result(read.ch), '0');
        assert.equal(read.ch.getVar('V'), value, `value ${JSON.stringify(value.slice(0, 40))}`);
        const token = read.ch.getVar('MCDCAS')!;
        assert.match(token, /^[1-9][0-9]*$/);
        assert.equal(BigInt(token), (await cache.gets(key))!.cas, 'the token is the item\'s CAS unique, exactly');
        const next = `${value}!`;
        const write = await call('mcdcas', [key, token, next]);
        assert.equal(result(write.ch), value.length === 4096 ? '125' : '0');
        if (value.length < 4096) assert.deepEqual((await cache.get(key))?.value, Buffer.from(next, 'utf8'));
      }
      const key = k('cascomma');
      await cache.set(key, 'x');
      const read = await call('mcdgets', ['V', key]);
      assert.equal(result((await call('mcdcas', [key, read.ch.getVar('MCDCAS')!, ' a', 'b ', '', 'c'])).ch), '0');
      assert.equal((await cache.get(key))?.value.toString(), ' a,b ,,c', 'the value is every argument from the third on, joined with commas');
    });

    test('mcdcas: 12 after another write in between, 16 after a delete; mcdgets of a missing key: 16 and both variables ""', async () => {
      const key = k('cas12');
      await cache.set(key, 'first');
      const token = (await call('mcdgets', ['V', key])).ch.getVar('MCDCAS')!;
      assert.equal(result((await call('mcdset', [key, 'other PBX'])).ch), '0');
      assert.equal(result((await call('mcdcas', [key, token, 'mine'])).ch), '12');
      assert.equal((await cache.get(key))?.value.toString(), 'other PBX', 'a refused cas changes nothing');
      const fresh = (await call('mcdgets', ['V', key])).ch.getVar('MCDCAS')!;
      assert.notEqual(fresh, token);
      assert.equal(result((await call('mcdcas', [key, fresh, 'mine'])).ch), '0');
      assert.equal(result((await call('mcdcas', [key, fresh, 'again'])).ch), '12', 'a token is good for one write');

      const gone = (await call('mcdgets', ['V', key])).ch.getVar('MCDCAS')!;
      assert.equal(result((await call('mcddelete', [key])).ch), '0');
      assert.equal(result((await call('mcdcas', [key, gone, 'back'])).ch), '16');
      assert.equal(await cache.get(key), null, 'mcdcas never creates a key');

      const miss = await call('mcdgets', ['V', key], { V: 'stale', MCDCAS: 'stale' });
      assert.equal(result(miss.ch), '16');
      assert.equal(miss.ch.getVar('V'), '');
      assert.equal(miss.ch.getVar('MCDCAS'), '');

      // A value the dialplan cannot receive gives no token either: nothing to base a write on.
      await cache.set(key, 'line1\nline2');
      const unsafe = await call('mcdgets', ['V', key], { V: 'stale', MCDCAS: 'stale' });
      assert.equal(result(unsafe.ch), '122');
      assert.equal(unsafe.ch.getVar('V'), '');
      assert.equal(unsafe.ch.getVar('MCDCAS'), '');
    });

    test('mcdcas: a CAS that is not a token gives 38, an empty or missing one 127 — nothing sent; 2^64-1 is parsed exactly', async () => {
      const key = k('casbad');
      await cache.set(key, 'kept');
      const before = backend.name.startsWith('memcached') ? await serverCounters() : null;
      for (const bad of ['abc', '0', '00', '-1', '+1', ' 1', '1 ', '1.0', '0x10', '1e3', '18446744073709551616', '99999999999999999999', '000000000000000000001']) {
        assert.equal(result((await call('mcdcas', [key, bad, 'v'])).ch), '38', `cas ${JSON.stringify(bad)}`);
      }
      assert.equal(result((await call('mcdcas', [key, '', 'v'])).ch), '127');
      assert.equal(result((await call('mcdcas', [key])).ch), '127');
      assert.equal(result((await call('mcdcas', [key, '5'])).ch), '127', 'no value');
      assert.equal(result((await call('mcdcas', [key, '5', 'a\rb'])).ch), '122');
      assert.equal(result((await call('mcdcas', [key, '5', 'x'.repeat(4097)])).ch), '125');
      assert.equal(result((await call('mcdcas', ['a b', '5', 'v'])).ch), '33');
      assert.equal(result((await call('mcdcas', ['k'.repeat(65), '5', 'v'])).ch), '126');
      if (before !== null) assert.deepEqual(await serverCounters(), before, 'no refused mcdcas reached memcached');
      assert.equal((await cache.get(key))?.value.toString(), 'kept');

      // The largest token reaches the cache as itself: not refused (38) and not rounded into a
      // token the item might have — a changed item (12), a missing one (16).
      assert.equal(result((await call('mcdcas', [key, U64_MAX, 'v'])).ch), '12');
      assert.equal(result((await call('mcdcas', [k('casabsent'), U64_MAX, 'v'])).ch), '16');
      assert.equal((await cache.get(key))?.value.toString(), 'kept');
      if (cache instanceof MemoryStore) {
        // Only the embedded store can be made to hand out 2^64-1: it must come back as itself
        // and match only itself (a double would read …615 and …614 alike, as 2^64).
        cache.restoreCasCounter(BigInt(U64_MAX) - 1n);
        const top = k('castop');
        await cache.set(top, 'old');
        const read = await call('mcdgets', ['V', top]);
        assert.equal(read.ch.getVar('MCDCAS'), U64_MAX);
        assert.equal(result((await call('mcdcas', [top, '18446744073709551614', 'off by one'])).ch), '12');
        assert.equal(result((await call('mcdcas', [top, U64_MAX, 'new'])).ch), '0');
        assert.equal((await cache.get(top))?.value.toString(), 'new');
      }
    });

    test('mcdgets: a bad variable name, or MCDCAS itself, gives 127 and clears ${MCDCAS}', async () => {
      const key = k('casvar');
      await cache.set(key, 'x');
      for (const bad of ['', 'has space', 'x(y)', '${X}', 'MCDCAS', 'mcdcas']) {
        const r = await call('mcdgets', [bad, key], { MCDCAS: 'stale' });
        assert.equal(result(r.ch), '127', `variable name ${JSON.stringify(bad)}`);
        assert.equal(r.ch.getVar('MCDCAS'), '', `variable name ${JSON.stringify(bad)}`);
      }
      assert.equal(result((await call('mcdgets', ['V'])).ch), '127');
    });

    test('50 concurrent channels incrementing one key with mcdgets + mcdcas, retrying on 12, leave it at exactly 50', async () => {
      const key = k('casrace');
      await cache.set(key, '0');
      let conflicts = 0;
      const channel = async (): Promise<number> => {
        for (let attempt = 1; attempt <= 200; attempt++) {
          const read = await call('mcdgets', ['N', key]);
          assert.equal(result(read.ch), '0');
          const write = await call('mcdcas', [key, read.ch.getVar('MCDCAS')!, String(Number(read.ch.getVar('N')) + 1)]);
          if (result(write.ch) === '0') return attempt;
          assert.equal(result(write.ch), '12');
          conflicts++;
        }
        throw new Error('no write in 200 attempts');
      };
      const attempts = await Promise.all(Array.from({ length: 50 }, channel));
      assert.equal((await cache.get(key))?.value.toString(), '50', 'no increment lost, none doubled');
      assert.equal(attempts.length, 50);
      assert.ok(conflicts > 0, 'the channels really raced (some mcdcas answered 12)');
    });

    test('a hangup during the session: the result is still written, AGI() returns HANGUP', async () => {
      const key = k('hang');
      await cache.set(key, 'still here');
      const ch = new FakeChannel();
      // Hung up the moment the daemon's first command is on its way, so Asterisk's HANGUP
      // notification reaches the daemon before the answer.
      const relay = await startHangupRelay(ch, d.port, 1);
      try {
        const run = await ch.agi(`agi://127.0.0.1:${relay.port}/MCD`, [key]);
        assert.equal(run.status, 'HANGUP');
        const hangups = run.transcript.filter((e) => e.dir === 'event' && e.what === 'hangup-sent');
        assert.equal(hangups.length, 2, 'one HANGUP when the channel hung up, one at the end of the session');
        assert.equal(ch.getVar('MCD'), 'still here');
        assert.equal(ch.getVar('MCDRESULT'), '0');
      } finally {
        relay.close();
      }
    });
  });
}

describe('dialplan: config switches', () => {
  test('result_format=name writes MEMCACHED_* names', async () => {
    const d = await startDaemon('[general]\nresult_format=name\n');
    try {
      const ch = new FakeChannel();
      await ch.agi(d.url('MCD'), ['nothing-here']);
      assert.equal(ch.getVar('MCDRESULT'), 'MEMCACHED_NOTFOUND');
      await ch.agi(d.url('mcdset'), ['k', 'v']);
      assert.equal(ch.getVar('MCDRESULT'), 'MEMCACHED_SUCCESS');
    } finally {
      await d.stop();
    }
  });

  test('keyprefix + key over 250 bytes gives 126; counter_ttl applies to mcdcounterset and ttl= to mcdcas without MCDTTL', async () => {
    const d = await startDaemon(`[general]\nkeyprefix=${'p'.repeat(120)}\nmax_key_length=200\ncounter_ttl=1\nttl=1\n`);
    try {
      const ch = new FakeChannel();
      // Stored without a TTL, so only mcdcas's own TTL can make it expire.
      await d.daemon.backend.set('casttl', 'forever');
      await ch.agi(d.url('mcdgets'), ['V', 'casttl']);
      await ch.agi(d.url('mcdcas'), ['casttl', ch.getVar('MCDCAS')!, 'for a second']);
      assert.equal(ch.getVar('MCDRESULT'), '0');
      await ch.agi(d.url('mcdset'), ['k'.repeat(131), 'v']);
      assert.equal(ch.getVar('MCDRESULT'), '126');
      await ch.agi(d.url('mcdset'), ['k'.repeat(130), 'v']);
      assert.equal(ch.getVar('MCDRESULT'), '0');
      await ch.agi(d.url('mcdcounterset'), ['c', '5']);
      await sleep(2100);
      await ch.agi(d.url('MCDCOUNTER'), ['c']);
      assert.equal(ch.getVar('MCDRESULT'), '16');
      await ch.agi(d.url('MCD'), ['casttl']);
      assert.equal(ch.getVar('MCDRESULT'), '16', 'mcdcas took ttl= of the config');
    } finally {
      await d.stop();
    }
  });

  test('a memcached that is not there: MCDRESULT=3 within the connect timeout, the call goes on', async () => {
    const { freePort } = await import('../support/memcached.js');
    const port = await freePort();
    const d = await startDaemon(`[general]\nserver=127.0.0.1:${port}\nconnect_timeout=300\n`);
    try {
      const ch = new FakeChannel();
      const started = Date.now();
      const run = await ch.agi(d.url('MCD'), ['k']);
      assert.equal(run.status, 'SUCCESS');
      assert.equal(ch.getVar('MCDRESULT'), '3');
      assert.equal(ch.getVar('MCD'), '');
      assert.ok(Date.now() - started < 2000);
      await ch.agi(d.url('mcdset'), ['k', 'v']);
      assert.ok(['3', '47', '35'].includes(ch.getVar('MCDRESULT')!), `then ${ch.getVar('MCDRESULT')}`);
    } finally {
      await d.stop();
    }
  });

  test('the embedded store and a Client see the same semantics for keyprefix (isolation)', async () => {
    const a = await startDaemon('[general]\nkeyprefix=a:\n');
    const raw = new Client({ servers: [mc!.address], keyPrefix: 'b:' });
    try {
      const ch = new FakeChannel();
      await ch.agi(a.url('mcdset'), ['shared', 'from a']);
      assert.equal((await a.daemon.backend.get('shared'))?.value.toString(), 'from a');
      assert.equal(await raw.get('shared'), null);
    } finally {
      await a.stop();
      await raw.close();
    }
  });
});

describe('every command with missing, empty and oversized arguments', () => {
  test('127 without arguments or with an empty key, 126 for an oversized key, 125 for an oversized value; the call goes on', async () => {
    const { COMMANDS } = await import('../../src/dialplan/registry.js');
    const { recordRow } = await import('../support/agi-load.js');
    const d = await startDaemon('[general]\n');
    const seen: string[] = [];
    try {
      // Valid arguments in the command's own order, as its usage lists them, with one changed.
      const GOOD: Record<string, string> = { varname: 'V', key: 'k', name: 'k', max: '10', wait_ms: '0', cas: '1', value: 'v' };
      for (const command of COMMANDS) {
        const names = command.arguments.map((a) => a.name);
        for (const name of names) assert.ok(name === 'increment' || name === 'ttl' || name === 'n' || name in GOOD, `${command.name}: argument ${name} has no case here`);
        const upTo = (last: string, given: string): string[] => {
          const args = names.slice(0, names.indexOf(last) + 1).map((n) => GOOD[n] ?? '1');
          args[args.length - 1] = given;
          return args;
        };
        // The lease commands' NAME is checked as a key.
        const keyArgument = names.includes('key') ? 'key' : 'name';
        const cases: Array<[string, string[], string]> = [
          ['no arguments', [], '127'],
          ['empty key', upTo(keyArgument, ''), '127'],
          ['oversized key', upTo(keyArgument, 'k'.repeat(65)), '126'],
        ];
        if (names.includes('cas')) cases.push(['empty cas', upTo('cas', ''), '127']);
        if (names.includes('value')) cases.push(['oversized value', upTo('value', 'x'.repeat(4097)), '125']);
        for (const [what, args, code] of cases) {
          const ch = new FakeChannel();
          const run = await ch.agi(d.url(command.name), args);
          assert.equal(run.status, 'SUCCESS', `${command.name} ${what}`);
          assert.equal(ch.getVar('MCDRESULT'), code, `${command.name} ${what}`);
          seen.push(`${command.name}/${what}:${code}`);
        }
      }
      assert.equal(await d.daemon.backend.get('k'), null, 'nothing was written');
      recordRow({ area: 'agi', case: 'every command with missing, empty, oversized arguments', done: `${COMMANDS.length} commands × (no arguments, empty key, 65-byte key, empty cas and 4097-byte value where one is taken)`, measured: `${seen.length} calls: 127 / 126 / 125 as expected; nothing written`, outcome: 'refused with the code, the call goes on' });
    } finally {
      await d.stop();
    }
  });
});
