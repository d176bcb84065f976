// Access and transport security (RELIABILITY.md, "Access and transport security") against Debian's memcached: SASL PLAIN over the
// binary protocol with a SASL database the test makes (memcached -S), and TLS (memcached -Z)
// with a CA and a server certificate the test makes, verification on by default. Both through
// the client and through the daemon's config.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { Client } from '../../src/cluster/client.js';
import { Rc } from '../../src/util/errors.js';
import { codeOf } from '../support/wait.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { startDaemon } from '../support/daemon.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';
import { recordRow } from '../support/agi-load.js';

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-security-'));
// memcached drops root for `nobody`: it must be able to read the SASL files and certificates.
execFileSync('chmod', ['755', dir]);
after(() => rmSync(dir, { recursive: true, force: true }));

describe('SASL (memcached -S, PLAIN, binary protocol)', () => {
  let mc: MemcachedProcess;

  before(async () => {
    const db = join(dir, 'sasldb2');
    execFileSync('saslpasswd2', ['-p', '-a', 'memcached', '-c', '-f', db, 'alice'], { input: 's3cret' });
    execFileSync('chmod', ['644', db]);
    writeFileSync(join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${db}\n`);
    mc = await startMemcached(['-S'], { env: { ...process.env, SASL_CONF_PATH: dir } });
  });
  after(async () => {
    await mc.stop();
  });

  test('the right credentials: every operation works', async () => {
    const c = new Client({ servers: [mc.address], sasl: { username: 'alice', password: 's3cret' } });
    try {
      await c.set('sasl-k', 'v');
      assert.equal((await c.get('sasl-k'))?.value.toString(), 'v');
      assert.equal(await c.incr('sasl-n', 1n, { initial: 5n }), 5n);
    } finally {
      await c.close();
    }
  });

  test('a wrong password or an unknown user: 41 AUTH_FAILURE for everything; no credentials: nothing works either', async () => {
    const cases = [{ username: 'alice', password: 'wrong' }, { username: 'mallory', password: 's3cret' }];
    for (const sasl of cases) {
      const c = new Client({ servers: [mc.address], sasl, retryTimeoutMs: 0 });
      try {
        assert.equal(await codeOf(c.set('sasl-evil', 'x')), Rc.AUTH_FAILURE, JSON.stringify(sasl));
        assert.equal(await codeOf(c.get('sasl-k')), Rc.AUTH_FAILURE, 'reads are refused too');
        assert.equal(await codeOf(c.delete('sasl-k')), Rc.AUTH_FAILURE);
      } finally {
        await c.close();
      }
    }
    // No credentials at all: memcached answers the first command "Auth failure" and then hangs
    // up, so what follows fails as a lost connection (3) or 41 again: never a success.
    const anonymous = new Client({ servers: [mc.address], retryTimeoutMs: 0 });
    try {
      assert.equal(await codeOf(anonymous.set('sasl-evil', 'x')), Rc.AUTH_FAILURE);
      for (const op of [() => anonymous.get('sasl-k'), () => anonymous.delete('sasl-k'), () => anonymous.set('sasl-evil', 'y')]) {
        assert.ok([Rc.AUTH_FAILURE, Rc.CONNECTION_FAILURE].includes((await codeOf(op())) as 41 | 3));
      }
    } finally {
      await anonymous.close();
    }
    const good = new Client({ servers: [mc.address], sasl: { username: 'alice', password: 's3cret' } });
    try {
      assert.equal(await good.get('sasl-evil'), null, 'nothing was stored');
      assert.equal((await good.get('sasl-k'))?.value.toString(), 'v', 'nothing was deleted');
      recordRow({ area: 'security', case: 'SASL PLAIN, wrong credentials', done: 'memcached -S with a sasldb made by the test; wrong password, unknown user, none', measured: 'set/get/delete: 41 (no credentials: 41, then 41 or 3 as memcached hangs up); nothing stored or deleted', outcome: 'refused' });
    } finally {
      await good.close();
    }
  });

  test('the daemon with sasl_username/sasl_password: MCD works; a wrong password gives MCDRESULT=41', async () => {
    const ok = await startDaemon(`[general]\nserver=${mc.address}\nsasl_username=alice\nsasl_password=s3cret\n`);
    const bad = await startDaemon(`[general]\nserver=${mc.address}\nsasl_username=alice\nsasl_password=nope\n`);
    try {
      const ch = new FakeChannel();
      await ch.agi(ok.url('MCD'), ['sasl-k']);
      assert.equal(ch.getVar('MCDRESULT'), '0');
      assert.equal(ch.getVar('MCD'), 'v');
      await ch.agi(bad.url('MCD'), ['sasl-k']);
      assert.equal(ch.getVar('MCDRESULT'), '41');
      assert.equal(ch.getVar('MCD'), '');
    } finally {
      await ok.stop();
      await bad.stop();
    }
  });
});

describe('TLS (memcached -Z), certificates made by the test', () => {
  let mc: MemcachedProcess;
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca.key');
  const cert = join(dir, 'server.pem');
  const key = join(dir, 'server.key');

  before(async () => {
    const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=res-memcached test CA');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', join(dir, 'server.csr'), '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl('x509', '-req', '-in', join(dir, 'server.csr'), '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '2', '-extfile', join(dir, 'san.ext'));
    execFileSync('chmod', ['644', key, cert]);
    mc = await startMemcached(['-Z', '-o', `ssl_chain_cert=${cert},ssl_key=${key}`]);
  });
  after(async () => {
    await mc.stop();
  });

  test('verified against the test CA: every operation works', async () => {
    const c = new Client({ servers: [mc.address], tls: { ca: readFileSync(ca), verify: true } });
    try {
      await c.set('tls-k', 'over tls');
      assert.equal((await c.get('tls-k'))?.value.toString(), 'over tls');
    } finally {
      await c.close();
    }
  });

  for (const protocol of ['text', 'binary', 'meta'] as const) {
    test(`verified against the test CA over ${protocol}: reads, writes, counters, CAS, multi-get`, async () => {
      const c = new Client({ servers: [mc.address], protocol, tls: { ca: readFileSync(ca), verify: true } });
      const k = (name: string): string => `tls-${protocol}-${name}`;
      try {
        const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
        await c.set(k('v'), value, { flags: 9 });
        const item = await c.get(k('v'));
        assert.deepEqual(item?.value, value);
        assert.equal(item?.flags, 9);
        assert.equal((await c.getAndTouch(k('v'), 100))?.flags, 9);
        assert.equal(await c.incr(k('n'), 1, { initial: 41 }), 41n);
        assert.equal(await c.incr(k('n'), 1), 42n);
        const cas = (await c.gets(k('v')))!.cas;
        await c.cas(k('v'), 'next', cas);
        assert.equal(await codeOf(c.cas(k('v'), 'again', cas)), Rc.DATA_EXISTS);
        const got = await c.getMulti([k('v'), k('missing'), k('n')]);
        assert.deepEqual([...got.keys()], [k('v'), k('n')]);
        assert.equal(await codeOf(c.delete(k('missing'))), Rc.NOTFOUND);
        assert.equal((await c.get('tls-k'))?.value.toString(), 'over tls', `${protocol} reads what another protocol wrote`);
      } finally {
        await c.close();
      }
    });
  }

  test('verification is on by default: an unknown CA or a wrong name is refused with a code', async () => {
    const unknownCa = new Client({ servers: [mc.address], tls: {}, retryTimeoutMs: 0 });
    const wrongName = new Client({ servers: [mc.address], tls: { ca: readFileSync(ca), servername: 'other.example' }, retryTimeoutMs: 0 });
    try {
      const a = await codeOf(unknownCa.get('tls-k'));
      const b = await codeOf(wrongName.get('tls-k'));
      assert.notEqual(a, Rc.SUCCESS);
      assert.notEqual(b, Rc.SUCCESS);
      assert.equal(a, Rc.CONNECTION_FAILURE);
      assert.equal(b, Rc.CONNECTION_FAILURE);
      recordRow({ area: 'security', case: 'TLS, verification on by default', done: 'memcached -Z with a certificate from a CA made by the test', measured: `with the CA: works; unknown CA: rc ${a}; wrong server name: rc ${b}; tls_verify=no: works`, outcome: 'verified' });
    } finally {
      await unknownCa.close();
      await wrongName.close();
    }
  });

  test('tls_verify=no connects without a CA; a plain client on the TLS port gets a code, not a hang', async () => {
    const unverified = new Client({ servers: [mc.address], tls: { verify: false } });
    const plain = new Client({ servers: [mc.address], timeoutMs: 500, connectTimeoutMs: 500 });
    const plainMeta = new Client({ servers: [mc.address], protocol: 'meta', timeoutMs: 500, connectTimeoutMs: 500 });
    try {
      assert.equal((await unverified.get('tls-k'))?.value.toString(), 'over tls');
      const started = Date.now();
      assert.notEqual(await codeOf(plain.get('tls-k')), Rc.SUCCESS);
      assert.notEqual(await codeOf(plainMeta.get('tls-k')), Rc.SUCCESS);
      assert.ok(Date.now() - started < 3000);
    } finally {
      await unverified.close();
      await plain.close();
      await plainMeta.close();
    }
  });

  test('the daemon with tls=yes and tls_ca=: MCD works over TLS', async () => {
    const d = await startDaemon(`[general]\nserver=${mc.address}\ntls=yes\ntls_ca=${ca}\n`);
    try {
      const ch = new FakeChannel();
      await ch.agi(d.url('MCD'), ['tls-k']);
      assert.equal(ch.getVar('MCDRESULT'), '0');
      assert.equal(ch.getVar('MCD'), 'over tls');
    } finally {
      await d.stop();
    }
  });

  test('the daemon with tls=yes and protocol=meta: MCD works over TLS', async () => {
    const d = await startDaemon(`[general]\nserver=${mc.address}\ntls=yes\ntls_ca=${ca}\nprotocol=meta\n`);
    try {
      const ch = new FakeChannel();
      await ch.agi(d.url('MCD'), ['tls-k']);
      assert.equal(ch.getVar('MCDRESULT'), '0');
      assert.equal(ch.getVar('MCD'), 'over tls');
    } finally {
      await d.stop();
    }
  });
});
