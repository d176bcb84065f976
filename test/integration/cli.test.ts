// The built CLI, spawned as a user runs it (README.md, "The command line"), against real memcached.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/cluster/client.js';
import { loadSettings } from '../../src/config/settings.js';
import { clientOptionsFromSettings } from '../../src/daemon/client-options.js';
import { repoRoot } from '../support/fixtures.js';
import { freePort, startMemcached, type MemcachedProcess } from '../support/memcached.js';

const CLI = join(repoRoot(), 'dist', 'src', 'cli', 'main.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('usage', () => {
  test('--help everywhere exits 0 with the usage', async () => {
    const top = await run(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Usage: res-memcached/);
    assert.match(top.stdout, /locate KEY/);
    for (const verb of ['locate', 'check', 'serve']) {
      const r = await run([verb, '--help']);
      assert.equal(r.code, 0, verb);
      assert.match(r.stdout, new RegExp(`Usage: res-memcached (\\[)?${verb}`));
    }
  });

  test('bad usage exits 2 with a message', async () => {
    for (const args of [['frobnicate'], ['locate'], ['--no-such-option'], ['check', 'extra']]) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /res-memcached: /);
      assert.equal(r.stdout, '');
    }
  });

  test('a wrong option gets the usage of the verb it was given to, exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['serve', '--bogus'], /^res-memcached serve: unknown option --bogus\n\nUsage: res-memcached \[serve\]/],
      [['locate', '--bogus', 'k'], /^res-memcached locate: unknown option --bogus .*after --\)\n\nUsage: res-memcached locate/],
      [['--config', '/nonexistent', 'check', '-x'], /^res-memcached check: unknown option -x\n\nUsage: res-memcached check/],
      // --log-level is serve's alone: elsewhere it would be silently ignored.
      [['check', '--log-level', 'debug'], /^res-memcached check: unknown option --log-level\n\nUsage: res-memcached check/],
      [['show', '--log-level', 'debug', 'functions'], /^res-memcached show: unknown option --log-level\n\nUsage: res-memcached show/],
      [['--bogus'], /^res-memcached: unknown option --bogus\n\nUsage: res-memcached \[VERB\]/],
      [['toString'], /^res-memcached: unknown verb "toString"\n\nUsage: res-memcached \[VERB\]/],
    ];
    for (const [args, expected] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, expected, args.join(' '));
      assert.equal(r.stdout, '');
    }
    // A key that starts with - goes after --.
    const conf = writeConfig('dash.conf', '[general]\nserver=127.0.0.1:1\n');
    const dash = await run(['locate', '--config', conf, '--', '-k']);
    assert.equal(dash.code, 0, dash.stderr);
    assert.equal(dash.stdout, '-k\t127.0.0.1:1\n');
  });

  test('locate, check and show print the config warnings to stderr as file:line: message', async () => {
    // distribtion= is ignored, so keys are placed by the default distribution: say so.
    const conf = writeConfig('typo.conf', '[general]\ndistribtion=modula\n');
    const warning = `res-memcached: warning: ${conf}:2: unknown key distribtion= in [general]; ignored (did you mean distribution=?)\n`;
    for (const args of [['locate', 'k'], ['check'], ['show', 'function', 'MCD']]) {
      const r = await run([...args, '--config', conf]);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, warning, args.join(' '));
      assert.notEqual(r.stdout, '');
    }
  });

  test('locate: a bad key gets its error and the others are still placed, exit 1', async () => {
    const long = 'x'.repeat(246);
    for (const servers of ['server=127.0.0.1:1\nserver=127.0.0.1:2\n', '']) {
      const conf = writeConfig('bad-key.conf', `[general]\nkeyprefix=pbx:\n${servers}`);
      const r = await run(['locate', '--config', conf, 'a', `${long}y`, 'b c', long, 'z']);
      assert.equal(r.code, 1, servers);
      const placed = r.stdout.trimEnd().split('\n').map((l) => l.split('\t')[0]);
      // 246 + 4 prefix bytes = 250 fits; 251 does not.
      assert.deepEqual(placed, ['a', long, 'z'], servers);
      assert.match(r.stderr, new RegExp(`^res-memcached: "${long}y": MEMCACHED_BAD_KEY_PROVIDED \\(33\\): key is longer than 250 bytes with its prefix\n`, 'm'));
      assert.match(r.stderr, /^res-memcached: "b c": MEMCACHED_BAD_KEY_PROVIDED \(33\)/m);
      assert.equal(r.stderr.split('\n').length, 3, r.stderr);
    }
  });

  test('a TLS file that cannot be read names the config and its key, not just ENOENT', async () => {
    const missing = join(dir, 'no-ca.pem');
    const conf = writeConfig('tls-missing.conf', `[general]\nserver=127.0.0.1:1\ntls=yes\ntls_ca=${missing}\n`);
    for (const args of [['check'], ['locate', 'k']]) {
      const r = await run([...args, '--config', conf]);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, `res-memcached: ${conf}: tls_ca=${missing}: cannot read: no such file\n`);
    }
  });

  test('a missing or malformed --config exits 1 naming the file and line', async () => {
    const missing = await run(['locate', '--config', join(dir, 'nope.conf'), 'k']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.conf/);
    const bad = writeConfig('bad.conf', '[general]\nttl=5\nthis line is wrong\n');
    const r = await run(['locate', '--config', bad, 'k']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.conf:3/);
  });
});

describe('locate and a real 3-server cluster', () => {
  const servers: MemcachedProcess[] = [];
  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startMemcached());
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  const layouts: Array<[string, (addrs: string[]) => string]> = [
    ['consistent (default)', (a) => a.map((s) => `server=${s}`).join('\n')],
    ['modula', (a) => `distribution=modula\nhash=fnv1a_32\n${a.map((s) => `server => ${s}`).join('\n')}`],
    ['ketama_weighted with weights', (a) => `distribution=ketama_weighted\n${a.map((s, i) => `server=${s}/?${i + 1}`).join('\n')}`],
    ['consistent with keyprefix and text protocol', (a) => `keyprefix=pbx7:\nbinary_proto=no\n${a.map((s) => `server=${s}`).join('\n')}`],
    ['consistent with keyprefix and meta protocol', (a) => `keyprefix=pbx8:\nprotocol=meta\n${a.map((s) => `server=${s}`).join('\n')}`],
  ];

  for (const [name, body] of layouts) {
    test(`${name}: each of 1000 keys is on exactly the server locate names`, async () => {
      const addrs = servers.map((s) => s.address);
      const conf = writeConfig(`cluster-${name.replace(/\W+/g, '-')}.conf`, `[general]\n${body(addrs)}\n`);
      const keys = Array.from({ length: 1000 }, (_, i) => `caller:${1000 + i * 7919}`);
      const r = await run(['locate', '--config', conf, ...keys]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.equal(lines.length, keys.length);
      const named = lines.map((line, i) => {
        const [key, server] = line.split('\t');
        assert.equal(key, keys[i]);
        assert.ok(server !== undefined && addrs.some((a) => server.startsWith(a)), line);
        return server!;
      });
      const used = new Set(named);
      assert.equal(used.size, 3, 'the keys spread over all three servers');

      const settings = loadSettings(conf);
      const client = new Client(clientOptionsFromSettings(settings));
      const value = `v-${name}`;
      await Promise.all(keys.map((k) => client.set(k, value)));
      await client.close();

      // Ask each server directly, without prefix logic: the key is on the named one and no other.
      for (const mc of servers) {
        const direct = new Client({ servers: [mc.address] });
        const got = await direct.getMulti(keys.map((k) => settings.keyPrefix + k));
        for (const [i, k] of keys.entries()) {
          const here = named[i]!.startsWith(mc.address);
          assert.equal(got.get(settings.keyPrefix + k)?.value.toString() === value, here, `${k} on ${mc.address}`);
        }
        await direct.flush();
        await direct.close();
      }
    });
  }
});

describe('check', () => {
  test('every server up: a row each with version and items, exit 0; one down: DOWN and exit 1', async () => {
    const up = [await startMemcached(), await startMemcached()];
    try {
      const seed = new Client({ servers: [up[0]!.address] });
      await seed.set('a', '1');
      await seed.get('a');
      await seed.get('missing');
      await seed.close();
      const conf = writeConfig('check.conf', `[general]\n${up.map((s) => `server=${s.address}`).join('\n')}\n`);
      const ok = await run(['check', '--config', conf]);
      assert.equal(ok.code, 0, ok.stderr);
      const rows = ok.stdout.trimEnd().split('\n');
      assert.match(rows[0]!, /SERVER\s+STATUS\s+VERSION\s+ITEMS\s+HIT RATIO/);
      assert.match(rows[1]!, new RegExp(`^${up[0]!.address}\\s+up\\s+1\\.\\d+\\.\\d+\\s+1\\s+50\\.0% \\(1/2\\)`));
      assert.match(rows[2]!, new RegExp(`^${up[1]!.address}\\s+up\\s+1\\.\\d+\\.\\d+\\s+0\\s+-`));
      assert.equal(rows[3], 'protocol: binary');
      const text = await run(['check', '--config', writeConfig('check-text.conf', `[general]\nprotocol=text\nserver=${up[0]!.address}\n`)]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /\nprotocol: text\n$/);

      const deadPort = await freePort();
      const conf2 = writeConfig('check-down.conf', `[general]\nserver=${up[0]!.address}\nserver=127.0.0.1:${deadPort}\n`);
      const down = await run(['check', '--config', conf2]);
      assert.equal(down.code, 1);
      assert.match(down.stdout, new RegExp(`127\\.0\\.0\\.1:${deadPort}\\s+DOWN\\s+-\\s+-\\s+MEMCACHED_CONNECTION_FAILURE \\(3\\)`));
      assert.match(down.stdout, new RegExp(`${up[0]!.address}\\s+up`));
    } finally {
      await Promise.all(up.map((s) => s.stop()));
    }
  });

  test('no server= lines: the embedded store, exit 0', async () => {
    const conf = writeConfig('embedded.conf', '[general]\nttl=0\n');
    const r = await run(['check', '--config', conf]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /embedded store/);
  });
});
