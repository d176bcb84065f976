// The admin verbs (get, set, delete, incr, stats, leases) of the built CLI, spawned as a user runs
// them: against real memcached through server= lines, and against a running daemon's embedded
// store through its HTTP listener (src/cli/admin.ts).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { Client } from '../../src/cluster/client.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';
import { repoRoot } from '../support/fixtures.js';
import { freePort, startMemcached, type MemcachedProcess } from '../support/memcached.js';

const CLI = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** stdout as bytes: the values must come back byte-exact. */
function run(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { encoding: 'buffer', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr: stderr.toString('utf8') });
    });
  });
}

function ok(r: Run, what: string): void {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
}

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-cli-admin-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** A lease taken through the daemon's door, as CURL() in the dialplan takes one. */
function takeLease(d: TestDaemon, name: string, channel: string): Promise<string> {
  const port = d.daemon.httpAddress!.port;
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: `/mcdlimit/${name}/5?channel=${channel}`, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    }).on('error', reject);
  });
}

describe('admin verbs against real memcached (server= lines)', () => {
  let a: MemcachedProcess;
  let b: MemcachedProcess;
  let conf: string;
  let client: Client;
  before(async () => {
    a = await startMemcached();
    b = await startMemcached();
    conf = writeConfig('cluster.conf', `[general]\nserver=${a.address}\nserver=${b.address}\nkeyprefix=adm:\n`);
    client = new Client({ servers: [a.address, b.address].map((t) => ({ kind: 'tcp' as const, host: '127.0.0.1', port: Number(t.split(':')[1]), weight: 1, text: t })), keyPrefix: 'adm:' });
  });
  after(async () => {
    await client.close();
    await a.stop();
    await b.stop();
  });

  test('set then get: the value byte-exact, a trailing newline kept, none added', async () => {
    ok(await run(['set', '--config', conf, 'greeting', 'héllo wörld\n']), 'set');
    const got = await run(['get', '--config', conf, 'greeting']);
    ok(got, 'get');
    assert.deepEqual(got.stdout, Buffer.from('héllo wörld\n', 'utf8'));
    // keyprefix applied by the CLI as by the daemon: the item is under adm:greeting.
    assert.deepEqual((await client.get('greeting'))?.value, Buffer.from('héllo wörld\n', 'utf8'));
  });

  test('a newline after the value only when stdout is a terminal', async () => {
    await client.set('tty', 'v');
    for (const isTty of [false, true]) {
      const out: Buffer[] = [];
      const io = { out: (t: string) => void out.push(Buffer.from(t)), err: () => undefined, bytes: (b: Buffer) => void out.push(b), isTty };
      assert.equal(await main(['get', '--config', conf, 'tty'], io), 0);
      assert.equal(Buffer.concat(out).toString(), isTty ? 'v\n' : 'v', `isTty ${isTty}`);
    }
  });

  test('binary bytes stored by another client come out as they are', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x0d, 0x0a, 0x80, 0x25, 0x2f, 0x00, 0xc3]);
    await client.set('bin/ary%key', bytes);
    const got = await run(['get', '--config', conf, 'bin/ary%key']);
    ok(got, 'get');
    assert.deepEqual(got.stdout, bytes);
  });

  test('--ttl 2: there at once, gone after 3 s', async () => {
    // memcached's clock ticks in whole seconds, so a TTL of N lives N-1 to N seconds: with 1, a
    // spawned CLI started on a busy box could already find the item gone.
    ok(await run(['set', '--config', conf, '--ttl', '2', 'brief', 'x']), 'set');
    assert.deepEqual((await run(['get', '--config', conf, 'brief'])).stdout, Buffer.from('x'));
    await sleep(3100);
    const gone = await run(['get', '--config', conf, 'brief']);
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, 'res-memcached: get brief: MEMCACHED_NOTFOUND (16)\n');
  });

  test('delete, then get and delete are NOTFOUND (exit 1, the name on stderr)', async () => {
    await client.set('doomed', 'v');
    ok(await run(['delete', '--config', conf, 'doomed']), 'delete');
    assert.equal(await client.get('doomed'), null);
    const again = await run(['delete', '--config', conf, 'doomed']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^res-memcached: delete doomed: MEMCACHED_NOTFOUND \(16\)/);
    assert.equal(again.stdout.length, 0);
  });

  test('incr: +1 by default, +N, a negative N decrements; a missing counter is 16', async () => {
    await client.set('calls', '10');
    assert.equal((await run(['incr', '--config', conf, 'calls'])).stdout.toString(), '11');
    assert.equal((await run(['incr', '--config', conf, 'calls', '5'])).stdout.toString(), '16');
    const down = await run(['incr', '--config', conf, 'calls', '-3']);
    ok(down, 'incr -3');
    assert.equal(down.stdout.toString(), '13');
    assert.equal((await client.get('calls'))?.value.toString(), '13');
    const missing = await run(['incr', '--config', conf, 'no-such-counter']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^res-memcached: incr no-such-counter: MEMCACHED_NOTFOUND \(16\)/);
  });

  test('a bad key is MEMCACHED_BAD_KEY_PROVIDED (33)', async () => {
    for (const args of [['get', 'has space'], ['set', 'k'.repeat(300), 'v'], ['incr', 'a\tb']]) {
      const r = await run([args[0]!, '--config', conf, ...args.slice(1)]);
      assert.equal(r.code, 1, args.join(' '));
      assert.match(r.stderr, /MEMCACHED_BAD_KEY_PROVIDED \(33\)/, args.join(' '));
    }
  });

  test('stats prints per-server figures; --server picks one; a dead server is exit 1', async () => {
    const all = await run(['stats', '--config', conf]);
    ok(all, 'stats');
    const lines = all.stdout.toString().trimEnd().split('\n').map((l) => l.split('\t'));
    for (const m of [a, b]) {
      assert.ok(lines.some(([s, n, v]) => s === m.address && n === 'pid' && v === String(m.pid)), m.address);
      assert.ok(lines.some(([s, n]) => s === m.address && n === 'curr_items'), m.address);
    }
    const one = await run(['stats', '--config', conf, '--server', b.address]);
    ok(one, 'stats --server');
    const servers = new Set(one.stdout.toString().trimEnd().split('\n').map((l) => l.split('\t')[0]));
    assert.deepEqual([...servers], [b.address]);
    const unknown = await run(['stats', '--config', conf, '--server', '127.0.0.1:1']);
    assert.equal(unknown.code, 2);

    const deadPort = await freePort();
    const withDead = writeConfig('dead.conf', `[general]\nserver=${a.address}\nserver=127.0.0.1:${deadPort}\n`);
    const partial = await run(['stats', '--config', withDead]);
    assert.equal(partial.code, 1);
    assert.match(partial.stdout.toString(), new RegExp(`^${a.address}\\tpid\\t`, 'm'));
    assert.match(partial.stderr, new RegExp(`res-memcached: stats 127\\.0\\.0\\.1:${deadPort}: MEMCACHED_`));
  });

  test('leases NAME counts the holders of a limit taken by a daemon on the same cluster', async () => {
    const d = await startDaemon(`[general]\nserver=${a.address}\nserver=${b.address}\nkeyprefix=adm:\n[http]\nenabled=yes\n`);
    try {
      assert.equal((await run(['leases', '--config', conf, 'trunk'])).stdout.toString(), '0');
      assert.equal(await takeLease(d, 'trunk', '1700000000.1'), 'OK');
      assert.equal(await takeLease(d, 'trunk', '1700000000.2'), 'OK');
      const r = await run(['leases', '--config', conf, 'trunk']);
      ok(r, 'leases');
      assert.equal(r.stdout.toString(), '2');
    } finally {
      await d.stop();
    }
  });
});

describe('admin verbs against a running daemon\'s embedded store (no server=)', () => {
  let d: TestDaemon;
  let conf: string;
  before(async () => {
    d = await startDaemon('[general]\nkeyprefix=emb:\n[http]\nenabled=yes\n');
    conf = writeConfig('embedded.conf', `[general]\nkeyprefix=emb:\n[http]\nport=${d.daemon.httpAddress!.port}\n`);
  });
  after(() => d.stop());

  test('set, get byte-exact (every path byte escaped), delete', async () => {
    const key = 'a/b?c%d#e';
    ok(await run(['set', '--config', conf, key, 'wört, with commas & = and trailing blanks \t ']), 'set');
    const got = await run(['get', '--config', conf, key]);
    ok(got, 'get');
    assert.deepEqual(got.stdout, Buffer.from('wört, with commas & = and trailing blanks \t ', 'utf8'));
    ok(await run(['delete', '--config', conf, key]), 'delete');
    const gone = await run(['get', '--config', conf, key]);
    assert.equal(gone.code, 1);
    assert.equal(gone.stderr, `res-memcached: get ${key}: MEMCACHED_NOTFOUND (16)\n`);
  });

  test('a value with CR, LF or NUL cannot pass the door (the dialplan\'s rule): 122, nothing stored', async () => {
    const r = await run(['set', '--config', conf, 'multi', 'line one\n']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^res-memcached: set multi: MEMCACHED_BAD_VALUE \(122\)/);
    assert.equal((await run(['get', '--config', conf, 'multi'])).code, 1);
  });

  test('--ttl 1 travels as ?ttl=: gone after 2 s', async () => {
    ok(await run(['set', '--config', conf, '--ttl', '1', 'brief', 'x']), 'set');
    assert.deepEqual((await run(['get', '--config', conf, 'brief'])).stdout, Buffer.from('x'));
    await sleep(2100);
    assert.equal((await run(['get', '--config', conf, 'brief'])).code, 1);
  });

  test('incr up and down, as MCDCOUNTER', async () => {
    ok(await run(['set', '--config', conf, 'n', '7']), 'set');
    assert.equal((await run(['incr', '--config', conf, 'n', '3'])).stdout.toString(), '10');
    assert.equal((await run(['incr', '--config', conf, 'n', '-4'])).stdout.toString(), '6');
    assert.equal((await run(['incr', '--config', conf, 'n'])).stdout.toString(), '7');
    const missing = await run(['incr', '--config', conf, 'no-such-counter']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr.toString(), /MEMCACHED_NOTFOUND \(16\)/);
  });

  test('a bad key is 33', async () => {
    const r = await run(['get', '--config', conf, 'has space']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^res-memcached: get has space: MEMCACHED_BAD_KEY_PROVIDED \(33\)/);
  });

  test('stats: the embedded store figures from /metrics', async () => {
    ok(await run(['set', '--config', conf, 'counted', 'v']), 'set');
    const r = await run(['stats', '--config', conf]);
    ok(r, 'stats');
    const rows = r.stdout.toString().trimEnd().split('\n').map((l) => l.split('\t'));
    const items = rows.find(([s, n]) => s === 'embedded' && n === 'items');
    assert.ok(items !== undefined, r.stdout.toString());
    assert.ok(Number(items[2]) >= 1, r.stdout.toString());
    assert.ok(rows.some(([, n]) => n === 'hits_total'));
    assert.equal((await run(['stats', '--config', conf, '--server', 'x:1'])).code, 2);
  });

  test('leases NAME: MCDLIMITCOUNT through the door', async () => {
    assert.equal(await takeLease(d, 'sip', '1700000001.1'), 'OK');
    const r = await run(['leases', '--config', conf, 'sip']);
    ok(r, 'leases');
    assert.equal(r.stdout.toString(), '1');
  });
});

describe('admin verbs: no daemon, usage', () => {
  test('no server= and nothing on the [http] port: exit 1 with what to do', async () => {
    const port = await freePort();
    const conf = writeConfig('nodaemon.conf', `[http]\nport=${port}\n`);
    const r = await run(['get', '--config', conf, 'k']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `res-memcached: no server= in ${conf} and no daemon answering on 127.0.0.1:${port} ([http]): start it or add server= lines\n`);
    const off = writeConfig('httpoff.conf', '[http]\nenabled=no\n');
    const r2 = await run(['stats', '--config', off]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /\[http\] enabled=no/);
  });

  test('usage errors exit 2 with the verb\'s usage', async () => {
    const conf = writeConfig('usage.conf', '[general]\nserver=127.0.0.1:1\n');
    const cases = [['get'], ['get', 'a', 'b'], ['set', 'k'], ['set', '--ttl', 'soon', 'k', 'v'], ['incr', 'k', 'x'], ['incr', 'k', '1', '2'], ['delete'], ['stats', 'x'], ['leases'], ['get', '--ttl', '1', 'k'], ['get', '--bogus', 'k']];
    for (const args of cases) {
      const r = await run([...args, '--config', conf]);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, new RegExp(`^res-memcached( ${args[0]})?: .*\\n\\nUsage: res-memcached ${args[0]} `, 's'), args.join(' '));
      assert.equal(r.stdout.length, 0);
    }
  });

  test('--help per verb', async () => {
    for (const verb of ['get', 'set', 'delete', 'incr', 'stats', 'leases']) {
      const r = await run([verb, '--help']);
      assert.equal(r.code, 0, verb);
      assert.match(r.stdout.toString(), new RegExp(`^Usage: res-memcached ${verb} `), verb);
    }
    assert.match((await run(['--help'])).stdout.toString(), /incr KEY \[N\]/);
  });
});
