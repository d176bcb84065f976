// Failure handling against real memcached processes (ARCHITECTURE.md, "Failure policy"): a killed server, a stopped
// (SIGSTOP) one, and removal of failed servers with keys moving away and back. Bounds on time
// here are correctness bounds (a code arrives, nothing waits forever), with generous slack.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from '../../src/cluster/client.js';
import { Rc } from '../../src/util/errors.js';
import { freePort, startMemcached, type MemcachedProcess } from '../support/memcached.js';
import { codeOf } from '../support/wait.js';

const TIMEOUT_MS = 400;
const CONNECT_TIMEOUT_MS = 300;
const RETRY_MS = 600;
const SLACK_MS = 400;
const CONNECTION_LOST: number[] = [Rc.CONNECTION_FAILURE, Rc.WRITE_FAILURE, Rc.READ_FAILURE];

async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await p;
  return { value, ms: performance.now() - start };
}

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, limitMs = 5000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

async function server(): Promise<MemcachedProcess> {
  const mc = await startMemcached();
  cleanup.push(() => mc.stop());
  return mc;
}

function client(servers: string[], extra: Partial<ConstructorParameters<typeof Client>[0]> = {}): Client {
  const c = new Client({
    servers,
    timeoutMs: TIMEOUT_MS,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    retryTimeoutMs: RETRY_MS,
    serverFailureLimit: 2,
    ...extra,
  });
  cleanup.push(() => c.close());
  return c;
}

for (const protocol of ['binary', 'text', 'meta'] as const) {
  describe(`a killed server (${protocol})`, () => {
    test('answers with a code at once, is left alone for the retry interval, and is used again after it returns', async () => {
      const mc = await server();
      const c = client([mc.address], { protocol });
      await c.set('k', 'v');
      await mc.kill();

      // The idle socket may not have seen the kill yet: the write fails (5), or the reconnect is
      // refused (3).
      const first = await timed(codeOf(c.get('k')));
      assert.ok(CONNECTION_LOST.includes(first.value), `first code ${first.value}`);
      assert.ok(first.ms < CONNECT_TIMEOUT_MS + SLACK_MS, `first code after ${first.ms} ms`);

      // Inside the retry interval: no connect attempt, 47 at once.
      const during = await timed(Promise.all(Array.from({ length: 200 }, () => codeOf(c.get('k')))));
      assert.ok(during.value.every((rc) => rc === Rc.SERVER_TEMPORARILY_DISABLED), `got ${[...new Set(during.value)]}`);
      assert.ok(during.ms < 100, `200 refusals took ${during.ms} ms`);
      assert.equal(c.pendingRequests, 0, 'nothing waits on a disabled server');

      await mc.restart();
      await sleep(RETRY_MS + 50);
      await c.set('k', 'back');
      assert.equal((await c.get('k'))?.value.toString(), 'back');
      assert.deepEqual(c.health().map((h) => h.state), ['up']);
    });
  });

  describe(`a stopped (SIGSTOP) server (${protocol})`, () => {
    test('requests fail with 31 TIMEOUT within the timeout, nothing piles up, and it is used again after SIGCONT', async () => {
      const mc = await server();
      const c = client([mc.address], { protocol });
      await c.set('k', 'v');
      mc.pause();
      try {
        const burst = await timed(Promise.all(Array.from({ length: 500 }, (_, i) => codeOf(c.set(`k${i}`, 'v')))));
        assert.ok(burst.value.every((rc) => rc === Rc.TIMEOUT), `got ${[...new Set(burst.value)]}`);
        assert.ok(burst.ms >= TIMEOUT_MS - 50 && burst.ms < TIMEOUT_MS + SLACK_MS, `timed out after ${burst.ms} ms`);
        assert.equal(c.pendingRequests, 0);

        // Marked failing: the next requests are answered at once, not after another timeout.
        const fast = await timed(codeOf(c.get('k')));
        assert.equal(fast.value, Rc.SERVER_TEMPORARILY_DISABLED);
        assert.ok(fast.ms < 50, `refusal took ${fast.ms} ms`);

        // A steady trickle for three retry intervals: every request ends within the timeout and
        // the queue never holds more than one interval's worth.
        let maxPending = 0;
        const trickle: Promise<number>[] = [];
        const until = Date.now() + 3 * RETRY_MS;
        while (Date.now() < until) {
          const t0 = Date.now();
          trickle.push(codeOf(c.get('k')).then((rc) => (Date.now() - t0 <= TIMEOUT_MS + SLACK_MS ? rc : -1)));
          maxPending = Math.max(maxPending, c.pendingRequests);
          await sleep(5);
        }
        const codes = await Promise.all(trickle);
        assert.ok(!codes.includes(-1), 'a request waited longer than the timeout');
        assert.ok(codes.every((rc) => rc === Rc.TIMEOUT || rc === Rc.SERVER_TEMPORARILY_DISABLED || rc === Rc.SERVER_MARKED_DEAD), `got ${[...new Set(codes)]}`);
        assert.ok(codes.includes(Rc.SERVER_MARKED_DEAD), 'after the failure limit the server is marked dead (35)');
        assert.ok(maxPending <= TIMEOUT_MS / 5 + 10, `up to ${maxPending} requests were waiting`);
      } finally {
        mc.resume();
      }
      await sleep(RETRY_MS + 50);
      await waitUntil('the server to answer again', async () => (await codeOf(c.set('k', 'resumed'))) === Rc.SUCCESS);
      assert.equal((await c.get('k'))?.value.toString(), 'resumed');
    });
  });
}

describe('remove_failed_servers', () => {
  test("a dead server's keys move to the others and come back when it returns", async () => {
    const servers = [await server(), await server(), await server()];
    const c = client(
      servers.map((s) => s.address),
      { removeFailedServers: true },
    );
    const keys = Array.from({ length: 300 }, (_, i) => `move-${i}`);
    const home = new Map(keys.map((k) => [k, c.locate(k)!]));
    const victim = servers[1]!;
    const victimKeys = keys.filter((k) => home.get(k) === victim.address);
    const otherKeys = keys.filter((k) => home.get(k) !== victim.address);
    assert.ok(victimKeys.length > 30 && otherKeys.length > 30, 'the continuum spreads the keys');
    await Promise.all(keys.map((k) => c.set(k, `v1-${k}`)));

    await victim.kill();
    const probe = victimKeys[0]!;
    // Failure 1 (refused) disables it; after the retry interval failure 2 ejects it.
    assert.ok(CONNECTION_LOST.includes(await codeOf(c.get(probe))));
    assert.equal(await codeOf(c.get(probe)), Rc.SERVER_TEMPORARILY_DISABLED);
    await sleep(RETRY_MS + 50);
    // This get waits on the reconnect, which is refused: failure 2 ejects the server, and the
    // request, never written, is rerouted to the key's new server (a miss there) instead of failing.
    assert.equal(await c.get(probe), null);
    assert.equal(c.health()[1]?.state, 'ejected');

    for (const k of otherKeys) assert.equal(c.locate(k), home.get(k), 'keys of live servers stay put');
    for (const k of victimKeys) assert.notEqual(c.locate(k), victim.address, 'keys of the dead server move');
    // They work on their new servers.
    await Promise.all(victimKeys.map((k) => c.set(k, `v2-${k}`)));
    assert.equal((await c.get(probe))?.value.toString(), `v2-${probe}`);

    await victim.restart();
    await waitUntil('the server to be probed back', () => c.health()[1]?.state === 'up', RETRY_MS * 4);
    for (const k of keys) assert.equal(c.locate(k), home.get(k), 'every key is home again');
    await c.set(probe, 'v3');
    const direct = client([victim.address]);
    assert.equal((await direct.get(probe))?.value.toString(), 'v3', 'the key is stored on its own server again');
  });

  test('all servers dead: 35 at once, no waiting', async () => {
    const port = await freePort();
    const c = client([`127.0.0.1:${port}`], { removeFailedServers: true, serverFailureLimit: 1 });
    assert.equal(await codeOf(c.get('k')), Rc.CONNECTION_FAILURE);
    const t = await timed(codeOf(c.get('k')));
    assert.equal(t.value, Rc.SERVER_MARKED_DEAD);
    assert.ok(t.ms < 50);
  });
});

describe('unreachable addresses', () => {
  test('a port nobody listens on: 3 at once', async () => {
    const port = await freePort();
    const c = client([`127.0.0.1:${port}`]);
    const t = await timed(codeOf(c.get('k')));
    assert.equal(t.value, Rc.CONNECTION_FAILURE);
    assert.ok(t.ms < CONNECT_TIMEOUT_MS);
  });

  test('a Unix socket that does not exist: 27 FAIL_UNIX_SOCKET', async () => {
    const c = client(['/nonexistent/memcached.sock']);
    assert.equal(await codeOf(c.get('k')), Rc.FAIL_UNIX_SOCKET);
  });
});
