// Leases kept true by the AMI link (src/daemon/lease-healing.ts), through the daemon, against real
// memcached and the Asterisk-faithful AMI server: a Hangup frees the channel's lease within a
// second with no hangup handler; a call longer than 3 × lease_ttl keeps its lease; a daemon
// restarted while calls are up keeps the live channels' leases and frees the dead ones'; with the
// link down nothing is refreshed or released (leases keep their TTL) and FastAGI goes on, and
// when it is back the daemon reconciles by itself.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { recordRow } from '../support/agi-load.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';
import { FakeAmi } from '../support/fake-ami.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';
import { waitFor } from '../support/wait.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let mc: MemcachedProcess;
before(async () => {
  mc = await startMemcached();
});
after(async () => {
  await mc.stop();
});

let seq = 0;
/** A daemon on the shared memcached (its own keyprefix), with the AMI link to `ami`, leases of `ttl` seconds. */
function daemon(ami: FakeAmi, ttl: number, prefix = `heal${++seq}:`): Promise<TestDaemon> {
  return startDaemon(`[general]\nserver=${mc.address}\nkeyprefix=${prefix}\nnode_id=pbx1\nlease_ttl=${ttl}\n[ami]\nport=${ami.port}\nusername=bar\nsecret=bar-secret\nreconnect_max=1000\n`);
}

/** A channel Asterisk (the fake AMI) knows about. */
function call(ami: FakeAmi): FakeChannel {
  const ch = new FakeChannel();
  ami.addChannel({ Uniqueid: ch.uniqueId });
  return ch;
}

async function run(d: TestDaemon, ch: FakeChannel, script: string, args: string[]): Promise<FakeChannel> {
  await ch.agi(d.url(script), args);
  return ch;
}

async function holders(d: TestDaemon, name: string): Promise<number> {
  const ch = await run(d, new FakeChannel(), 'MCDLIMITCOUNT', [name]);
  assert.equal(ch.getVar('MCDRESULT'), '0');
  return Number(ch.getVar('MCDLIMITCOUNT'));
}

async function linkUp(d: TestDaemon): Promise<void> {
  await waitFor(() => d.daemon.leaseHealing?.ami === 'up', 5000, 'AMI link up');
}

describe('leases healed by the AMI link', () => {
  test('a Hangup event frees the lease within a second, with no hangup handler', async () => {
    const ami = await FakeAmi.start();
    const d = await daemon(ami, 60);
    try {
      await linkUp(d);
      const a = await run(d, call(ami), 'mcdlimit', ['trunk', '1']);
      assert.equal(a.getVar('MCDLIMIT'), 'OK');
      const b = await run(d, call(ami), 'mcdlimit', ['trunk', '1']);
      assert.equal(b.getVar('MCDLIMIT'), 'FULL');
      const hungUpAt = Date.now();
      ami.hangup(a.uniqueId);
      let freedAfter = -1;
      while (Date.now() - hungUpAt < 1000) {
        if ((await holders(d, 'trunk')) === 0) {
          freedAfter = Date.now() - hungUpAt;
          break;
        }
        await sleep(20);
      }
      assert.ok(freedAfter >= 0, 'freed within 1 s of the Hangup event');
      assert.equal((await run(d, b, 'mcdlimit', ['trunk', '1'])).getVar('MCDLIMIT'), 'OK', 'the next call gets the slot');
      // A Hangup of a channel that holds nothing, or that this PBX never saw, frees nothing else.
      ami.emit([['Event', 'Hangup'], ['Privilege', 'call,all'], ['Channel', 'PJSIP/x-1'], ['Uniqueid', '1.999'], ['Linkedid', '1.999'], ['Cause', '16']]);
      await sleep(100);
      assert.equal(await holders(d, 'trunk'), 1);
      recordRow({
        area: 'leases', case: 'Hangup event over AMI',
        done: 'mcdlimit of 1 taken by a channel, a second gets FULL; Asterisk reports the first one\'s Hangup; no hangup handler',
        measured: `the slot was free ${freedAfter} ms after the event; a Hangup for an unknown channel freed nothing`,
        outcome: 'freed within 1 s, only the hung-up channel\'s lease',
      });
    } finally {
      await d.stop();
      await ami.stop();
    }
  });

  test('a call longer than 3 × lease_ttl keeps its lease; one Asterisk no longer has loses it at the next reconciliation', async () => {
    const ami = await FakeAmi.start();
    const d = await daemon(ami, 2);
    try {
      await linkUp(d);
      const long = await run(d, call(ami), 'mcdlimit', ['long', '5']);
      assert.equal(long.getVar('MCDLIMIT'), 'OK');
      // A channel that vanishes without a Hangup event (one missed while the link was busy).
      const gone = await run(d, call(ami), 'mcdlimit', ['long', '5']);
      ami.channels.delete(gone.uniqueId);
      await sleep(6_500);
      assert.equal(await holders(d, 'long'), 1, 'the live call still holds its lease after 6.5 s with lease_ttl=2');
      assert.equal((await run(d, long, 'mcdrelease', ['long'])).getVar('MCDRESULT'), '0', 'and it is still its own');
      recordRow({
        area: 'leases', case: 'a long call',
        done: 'lease_ttl=2; one call held a lease for 6.5 s; another channel vanished from Asterisk without a Hangup event',
        measured: 'the live call\'s lease was refreshed every 0.67 s and still released as its own; the vanished one was freed by a reconciliation',
        outcome: 'a live call keeps its lease however long; a dead one cannot hold it',
      });
    } finally {
      await d.stop();
      await ami.stop();
    }
  });

  test('a daemon restarted while calls are up keeps the live channels\' leases and frees the dead ones\'', async () => {
    const ami = await FakeAmi.start();
    const prefix = `heal${++seq}:`;
    let d = await daemon(ami, 30, prefix);
    const live = call(ami);
    const dead = call(ami);
    try {
      await linkUp(d);
      assert.equal((await run(d, live, 'mcdlimit', ['tenant', '2'])).getVar('MCDLIMIT'), 'OK');
      assert.equal((await run(d, dead, 'mcdlock', ['tenant-lock'])).getVar('MCDLOCK'), 'OK');
      assert.equal((await run(d, dead, 'mcdlimit', ['tenant', '2'])).getVar('MCDLIMIT'), 'OK');
      await d.stop();
      // While no daemon runs, one call ends: its Hangup reaches nobody.
      ami.hangup(dead.uniqueId);
      d = await daemon(ami, 30, prefix);
      await linkUp(d);
      await waitFor(() => d.daemon.leaseHealing?.lastReconcileAtMs !== null, 5000, 'reconciled after the restart');
      assert.equal(await holders(d, 'tenant'), 1, 'the dead channel\'s lease was freed, the live one kept');
      const other = await run(d, call(ami), 'mcdlock', ['tenant-lock']);
      assert.equal(other.getVar('MCDLOCK'), 'OK', 'the dead channel\'s lock was freed');
      assert.equal((await run(d, live, 'mcdrelease', ['tenant'])).getVar('MCDRESULT'), '0', 'the live channel still holds its own');
      recordRow({
        area: 'leases', case: 'daemon restarted while calls are up',
        done: 'two channels held leases and a lock; the daemon stopped; one call ended meanwhile; a new daemon (same node_id) started',
        measured: 'CoreShowChannels at connect: the live channel\'s lease kept (released later as its own), the dead one\'s lease and lock freed',
        outcome: 'reconciled from the node index with no hangup handler',
      });
    } finally {
      await d.stop();
      await ami.stop();
    }
  });

  test('AMI down: nothing refreshed or released, FastAGI unaffected; back up: reconciled by itself', async () => {
    const ami = await FakeAmi.start();
    const d = await daemon(ami, 4);
    try {
      await linkUp(d);
      const a = await run(d, call(ami), 'mcdlimit', ['down', '3']);
      const b = await run(d, call(ami), 'mcdlimit', ['down', '3']);
      assert.equal(await holders(d, 'down'), 2);
      await ami.stop();
      await waitFor(() => d.daemon.leaseHealing?.ami !== 'up', 3000, 'link seen down');
      // The daemon cannot tell live channels from dead ones now: it releases nothing.
      ami.channels.delete(b.uniqueId);
      assert.equal(await holders(d, 'down'), 2);
      const set = await run(d, new FakeChannel(), 'mcdset', ['k', 'v']);
      assert.equal(set.getVar('MCDRESULT'), '0', 'FastAGI goes on while AMI is gone');
      await sleep(1500);
      await ami.listen();
      await linkUp(d);
      await waitFor(() => (d.daemon.leaseHealing?.lastReconcileAtMs ?? 0) > Date.now() - 1000, 5000, 'reconciled after the reconnect');
      await sleep(4_500);
      assert.equal(await holders(d, 'down'), 1, 'after the reconnect: the live channel kept its lease past lease_ttl, the vanished one lost it');
      assert.equal((await run(d, a, 'mcdrelease', ['down'])).getVar('MCDRESULT'), '0');
      recordRow({
        area: 'leases', case: 'AMI down and back',
        done: 'lease_ttl=4; two channels held leases; the AMI server stopped for 1.5 s, one channel vanished meanwhile; then it listened again',
        measured: 'while down: both leases kept, mcdset answered 0; after the reconnect the daemon reconciled by itself: the live lease outlived lease_ttl, the vanished one was freed',
        outcome: 'no release on a guess; healed once Asterisk could say who is alive',
      });
    } finally {
      await d.stop();
      await ami.stop();
    }
  });
});
