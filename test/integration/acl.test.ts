// permit=/deny= with real sockets from several loopback addresses (RELIABILITY.md, "Access and
// transport security"): Linux routes all
// of 127.0.0.0/8 to lo, so binding the client side to 127.0.0.2, .3, ... gives distinct peers.
// A permitted peer gets the daemon's first command; a refused one is cut at connect and told
// nothing (README, "permit= and deny=").

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, test } from 'node:test';

import { startDaemon } from '../support/daemon.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { recordRow } from '../support/agi-load.js';

/** 'served' when the daemon sends a command after our environment, 'refused' when it hangs up. */
function tryFrom(localAddress: string, port: number): Promise<'served' | 'refused'> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress });
    const t = setTimeout(() => reject(new Error(`no verdict for ${localAddress}`)), 3000);
    const verdict = (v: 'served' | 'refused'): void => {
      clearTimeout(t);
      s.destroy();
      resolve(v);
    };
    s.on('connect', () => s.write(`agi_network: yes\nagi_network_script: MCD\nagi_channel: Local/acl;2\nagi_arg_1: k\n\n`));
    s.on('data', () => verdict('served'));
    s.on('close', () => verdict('refused'));
    s.on('error', () => undefined);
  });
}

describe('permit/deny from several source addresses', () => {
  test('rules in file order, the last match wins; with a permit= line unmatched peers are refused', async () => {
    const d = await startDaemon('[general]\n[agi]\ndeny=0.0.0.0/0.0.0.0\npermit=127.0.0.0/255.255.255.0\ndeny=127.0.0.3/32\n');
    try {
      assert.equal(await tryFrom('127.0.0.1', d.port), 'served');
      assert.equal(await tryFrom('127.0.0.2', d.port), 'served');
      assert.equal(await tryFrom('127.0.0.3', d.port), 'refused', 'denied after the permit');
      assert.equal(await tryFrom('127.0.1.5', d.port), 'refused', 'outside the permitted network');
      const refused = d.logs.filter((l) => String(l.msg).includes('refused by permit/deny')).map((l) => l.address);
      assert.deepEqual(refused.sort(), ['127.0.0.3', '127.0.1.5']);
      recordRow({ area: 'security', case: 'permit/deny from several 127.x addresses', done: 'deny=0.0.0.0/0, permit=127.0.0.0/24, deny=127.0.0.3; clients bound to 127.0.0.1/.2/.3 and 127.0.1.5', measured: '.1 and .2 served; .3 and 127.0.1.5 cut at connect and logged', outcome: 'as configured' });
    } finally {
      await d.stop();
    }
  });

  test('a deny-only list shuts out just the networks it names', async () => {
    const d = await startDaemon('[general]\n[agi]\ndeny=127.0.0.4/31\n');
    try {
      assert.equal(await tryFrom('127.0.0.4', d.port), 'refused');
      assert.equal(await tryFrom('127.0.0.5', d.port), 'refused');
      assert.equal(await tryFrom('127.0.0.6', d.port), 'served');
    } finally {
      await d.stop();
    }
  });

  test('a refused peer is told nothing, not even a result code: AGI() returns SUCCESS with MCDRESULT as it was', async () => {
    // A denied peer could be anything, so no AGI is spoken to it; a denied Asterisk learns of it
    // through the subroutines of extensions_mcd.conf, which make an unset MCDRESULT 3.
    const d = await startDaemon('[general]\n[agi]\ndeny=127.0.0.1/32\n');
    try {
      const ch = new FakeChannel({ variables: { MCDRESULT: 'before' } });
      const run = await ch.agi(d.url('MCD'), ['k']);
      assert.equal(run.status, 'SUCCESS');
      assert.deepEqual(run.commands, []);
      assert.ok(!run.transcript.some((e) => e.dir === 'answer'));
      assert.equal(ch.getVar('MCDRESULT'), 'before');
      assert.equal(ch.getVar('MCD'), undefined);
    } finally {
      await d.stop();
    }
  });

  test('a reload changes the rules for new connections', async () => {
    const d = await startDaemon('[general]\n[agi]\npermit=127.0.0.7/32\n');
    try {
      assert.equal(await tryFrom('127.0.0.8', d.port), 'refused');
      const { settingsFromText } = await import('../support/daemon.js');
      const next = settingsFromText('[general]\n[agi]\npermit=127.0.0.8/32\n');
      next.agi.port = d.daemon.settings.agi.port;
      d.daemon.reload(next);
      assert.equal(await tryFrom('127.0.0.8', d.port), 'served');
      assert.equal(await tryFrom('127.0.0.7', d.port), 'refused');
    } finally {
      await d.stop();
    }
  });
});
