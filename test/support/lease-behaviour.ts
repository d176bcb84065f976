// One lease/lock suite for every backend: test/unit/lease-engine.test.ts runs it on the embedded
// store, test/integration/leases.test.ts on real memcached over the text, binary and meta
// protocols and on 3-server clusters. Each `open()` is a backend of its own over the same
// storage, as the Client of one daemon is: several engines on several backends are several PBXs
// racing.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { LeaseEngine, type LeaseBackend } from '../../src/leases/engine.js';
import { Rc, ResultError } from '../../src/util/errors.js';

export interface LeaseHarness {
  open(): Promise<LeaseBackend>;
  close(): Promise<void>;
}

async function rejectsWith(promise: Promise<unknown>, rc: number, what: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof ResultError, `${what}: expected a ResultError, got ${String(err)}`);
    assert.equal(err.rc, rc, `${what}: expected rc ${rc}, got ${err.rc} (${err.message})`);
    return true;
  });
}

let names = 0;
/** A name no other test (or earlier run on a shared server) uses. */
function fresh(label: string): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${names++}`;
}

export function defineLeaseBehaviour(name: string, makeHarness: () => Promise<LeaseHarness>): void {
  describe(`leases: ${name}`, { concurrency: true }, () => {
    let h: LeaseHarness;
    const engine = async (nodeId: string, leaseTtl = 60): Promise<LeaseEngine> => new LeaseEngine(await h.open(), { nodeId, leaseTtl });
    before(async () => {
      h = await makeHarness();
    });
    after(async () => {
      await h.close();
    });

    test('up to MAX holders, then FULL; asking again is OK and takes nothing more', async () => {
      const e = await engine('pbx1');
      const n = fresh('max');
      assert.deepEqual(await e.acquire(n, 'c1', 2), { outcome: 'ok', holders: 1, already: false });
      assert.deepEqual(await e.acquire(n, 'c2', 2), { outcome: 'ok', holders: 2, already: false });
      assert.deepEqual(await e.acquire(n, 'c3', 2), { outcome: 'full', holders: 2, already: false });
      assert.deepEqual(await e.acquire(n, 'c1', 2), { outcome: 'ok', holders: 2, already: true });
      assert.equal(await e.count(n), 2);
      // A larger MAX from another caller: the count still sees every slot.
      assert.equal((await e.acquire(n, 'c3', 5)).outcome, 'ok');
      assert.equal(await e.count(n), 3);
      assert.equal(await e.count(fresh('never')), 0);
    });

    test('a release frees only its own lease: another channel or node cannot free it', async () => {
      const a = await engine('pbx1');
      const b = await engine('pbx2');
      const n = fresh('own');
      assert.equal((await a.acquire(n, 'c1', 1)).outcome, 'ok');
      assert.equal(await a.release(n, 'c2'), false, 'another channel of the same node');
      assert.equal(await b.release(n, 'c1'), false, 'the same channel id on another node');
      assert.equal(await b.count(n), 1);
      assert.equal((await b.acquire(n, 'c9', 1)).outcome, 'full');
      assert.equal(await a.release(n, 'c1'), true);
      assert.equal(await a.release(n, 'c1'), false, 'released twice');
      assert.equal(await b.count(n), 0);
      assert.equal((await b.acquire(n, 'c9', 1)).outcome, 'ok');
    });

    test('contention: 8 nodes x 25 channels racing for 10: exactly 10 OK, never more than 10 held, each release frees its own', async () => {
      const n = fresh('race');
      const engines = await Promise.all(Array.from({ length: 8 }, (_, i) => engine(`node${i}`)));
      const monitor = await engine('monitor');
      let most = 0;
      let samples = 0;
      let racing = true;
      const watching = (async () => {
        while (racing) {
          const c = await monitor.count(n);
          most = Math.max(most, c);
          samples++;
          await sleep(1);
        }
      })();
      const results = await Promise.all(engines.flatMap((e, i) => Array.from({ length: 25 }, (_, j) => e.acquire(n, `ch${i}-${j}`, 10).then((r) => ({ e, id: `ch${i}-${j}`, r })))));
      const winners = results.filter((x) => x.r.outcome === 'ok');
      assert.equal(winners.length, 10);
      assert.equal(await monitor.count(n), 10);
      // Losers retry while the first half of the winners leave: freed slots are taken again, never over 10.
      const half = winners.slice(0, 5);
      const again = results.filter((x) => x.r.outcome === 'full').slice(0, 40);
      const [released, retried] = await Promise.all([
        Promise.all(half.map((w) => w.e.release(n, w.id))),
        Promise.all(again.map((x) => x.e.acquire(n, x.id, 10))),
      ]);
      racing = false;
      await watching;
      assert.deepEqual(released, half.map(() => true));
      assert.ok(samples > 0);
      assert.ok(most <= 10, `the monitor saw ${most} holders`);
      const retriedOk = retried.filter((r) => r.outcome === 'ok').length;
      assert.ok(retriedOk <= 5, `${retriedOk} retries won`);
      assert.equal(await monitor.count(n), 5 + retriedOk);
      // The other half still hold theirs: asking again takes nothing more.
      for (const w of winners.slice(5)) assert.deepEqual(await w.e.acquire(n, w.id, 10), { outcome: 'ok', holders: 5 + retriedOk, already: true });
      for (const w of winners.slice(5)) assert.equal(await w.e.release(n, w.id), true);
      assert.equal(await monitor.count(n), retriedOk);
    });

    test('locks: never two holders; every waiter gets OK or TIMEOUT within WAIT_MS + the client timeout + 1 s', async () => {
      const n = fresh('lock');
      const engines = await Promise.all(Array.from({ length: 6 }, (_, i) => engine(`node${i}`)));
      let holding = 0;
      let most = 0;
      const waitMs = 400;
      const outcomes = await Promise.all(
        engines.flatMap((e, i) =>
          Array.from({ length: 8 }, async (_, j) => {
            const id = `ch${i}-${j}`;
            const started = performance.now();
            const got = await e.lock(n, id, waitMs);
            const took = performance.now() - started;
            // WAIT_MS, plus one last try that may take the client's timeout (1 s), plus 1 s for a
            // busy 2-core box (48 waiters polling at once).
            assert.ok(took < waitMs + 2000, `${id} waited ${took} ms`);
            if (got === 'ok') {
              holding++;
              most = Math.max(most, holding);
              await sleep(3);
              holding--;
              assert.equal(await e.unlock(n, id), true);
            }
            return got;
          }),
        ),
      );
      assert.equal(most, 1);
      assert.ok(outcomes.includes('ok'));
      assert.ok(outcomes.every((o) => o === 'ok' || o === 'timeout'));
      // Held: another times out at once with WAIT_MS 0, asking again is OK, only the holder unlocks.
      const [a, b] = engines as [LeaseEngine, LeaseEngine];
      assert.equal(await a.lock(n, 'x'), 'ok');
      assert.equal(await a.lock(n, 'x'), 'ok');
      assert.equal(await b.lock(n, 'y', 0), 'timeout');
      assert.equal(await b.unlock(n, 'x'), false);
      assert.equal(await a.unlock(n, 'y'), false);
      assert.equal(await a.unlock(n, 'x'), true);
      assert.equal(await b.lock(n, 'y', 0), 'ok');
      assert.equal(await b.unlock(n, 'y'), true);
    });

    test('expiry: a slot not refreshed is free after lease_ttl; refresh keeps it; a stale holder cannot free or extend the new one', async () => {
      const n = fresh('ttl');
      // memcached's clock ticks once a second: a ttl of 3 lives 2 to 3 s, so refreshing every
      // 0.9 s keeps a slot with margin even on a loaded machine.
      const a = await engine('pbx1', 3);
      const b = await engine('pbx2', 3);
      assert.equal((await a.acquire(n, 'kept', 2)).outcome, 'ok');
      assert.equal((await a.acquire(n, 'dropped', 2)).outcome, 'ok');
      assert.equal(await a.lock(n, 'dropped'), 'ok');
      for (let i = 0; i < 4; i++) {
        await sleep(900);
        const r = await a.refresh(new Set(['kept']));
        assert.equal(r.kept, 1, `refresh ${i}`);
      }
      // 3.6 s after the take: the refreshed one lives, the other (ttl 3) and its lock are gone.
      assert.equal(await b.count(n), 1);
      assert.equal(await b.lock(n, 'other'), 'ok');
      assert.equal((await b.acquire(n, 'newcomer', 2)).outcome, 'ok');
      // a still believes it holds 'dropped': it can neither free nor extend the newcomer's slot.
      assert.equal(await a.release(n, 'dropped'), false);
      assert.equal(await a.unlock(n, 'dropped'), false);
      assert.equal(await b.count(n), 2);
      await sleep(3100);
      assert.equal(await b.count(n), 0, 'nothing outlives lease_ttl once refreshing stops');
    });

    test('releaseChannel frees all of a channel, and a restarted daemon reconciles from the node index', async () => {
      // NAME bytes above 0x7f (here 0xa0 and UTF-8) survive the node index.
      const n1 = Buffer.concat([Buffer.from(fresh('rc1'), 'latin1'), Buffer.from([0xa0]), Buffer.from('é', 'utf8')]);
      const n2 = fresh('rc2');
      const node = `node-${fresh('restart')}`;
      const first = await engine(node);
      assert.equal((await first.acquire(n1, 'live', 3)).outcome, 'ok');
      assert.equal((await first.acquire(n1, 'dead', 3)).outcome, 'ok');
      assert.equal((await first.acquire(n2, 'dead', 3)).outcome, 'ok');
      assert.equal(await first.lock(n2, 'dead'), 'ok');
      assert.equal(await first.lock(n1, 'gone'), 'ok');
      assert.deepEqual(await first.releaseChannel('gone'), { kept: 0, released: 1, lost: 0, failed: 0 });
      // The daemon restarts: a new engine with the same node id knows nothing in memory.
      const second = await engine(node);
      const r = await second.reconcile(new Set(['live']));
      // 'gone' released its lock before the restart, but a release does not rewrite the index:
      // its line is checked against the slot, found not held, and dropped (lost).
      assert.deepEqual(r, { kept: 1, released: 3, lost: 1, failed: 0 });
      assert.equal(await second.count(n1), 1);
      assert.equal(await second.count(n2), 0);
      assert.equal(await second.lock(n2, 'someone'), 'ok');
      assert.deepEqual(second.held().filter((x) => x.uniqueId === 'live').map((x) => [x.kind, x.slot !== null, x.restored]), [['limit', true, false]]);
      assert.deepEqual(await second.releaseChannel('live'), { kept: 0, released: 1, lost: 0, failed: 0 });
      assert.equal(await second.count(n1), 0);
    });

    test('memory and the node index forget what was never refreshed once its lease_ttl is over', async () => {
      const n1 = fresh('forget');
      const e = await engine(`node-${fresh('forget')}`, 1);
      assert.equal((await e.acquire(n1, 'old', 5)).outcome, 'ok');
      assert.equal(e.held().length, 1);
      await sleep(1200);
      // The next write of the index drops the expired entry.
      assert.equal((await e.acquire(n1, 'new', 5)).outcome, 'ok');
      assert.deepEqual(e.held().map((x) => x.uniqueId), ['new']);
    });

    test('hostile names and arguments: codes, nothing stored', async () => {
      const e = await engine('pbx1');
      await rejectsWith(e.acquire('a b', 'c1', 1), Rc.BAD_KEY_PROVIDED, 'space');
      await rejectsWith(e.acquire('a\r\nflush_all', 'c1', 1), Rc.BAD_KEY_PROVIDED, 'CRLF');
      await rejectsWith(e.lock('a\x00b', 'c1'), Rc.BAD_KEY_PROVIDED, 'NUL');
      await rejectsWith(e.acquire('x'.repeat(300), 'c1', 1), Rc.BAD_KEY_PROVIDED, 'too long');
      await rejectsWith(e.acquire('', 'c1', 1), Rc.ARGUMENT_NEEDED, 'empty');
      for (const max of [0, -1, 1.5, 1001, Number.NaN]) await rejectsWith(e.acquire(fresh('m'), 'c1', max), Rc.INVALID_ARGUMENTS, `MAX ${max}`);
      await rejectsWith(e.acquire(fresh('u'), 'c 1', 1), Rc.INVALID_ARGUMENTS, 'channel id with a space');
      assert.throws(() => new LeaseEngine({} as LeaseBackend, { nodeId: 'a b', leaseTtl: 10 }));
      assert.throws(() => new LeaseEngine({} as LeaseBackend, { nodeId: 'a', leaseTtl: 0 }));
    });
  });
}
