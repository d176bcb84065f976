// `res-memcached install` into temporary roots: every file it writes and what is in it, what it
// leaves alone, a second run that changes nothing, systemd-analyze verify of the unit (where
// systemd-analyze exists), and README's Install section followed line by line: npm pack, npm
// install -g of the tarball, res-memcached install, the daemon started as the unit starts it,
// and the self-test of the installed extensions_mcd.conf run through it.

import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';

import { Daemon } from '../../src/daemon/daemon.js';

import { defaultSettings } from '../../src/config/settings.js';
import { startDaemon } from '../support/daemon.js';
import { CLI } from '../support/daemon-process.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { repoRoot } from '../support/fixtures.js';
import { freePort } from '../support/memcached.js';
import { loadDialplan, runDialplan } from '../support/mini-dialplan.js';

const scratch = mkdtempSync(join(tmpdir(), 'res-memcached-install-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const SAMPLE = readFileSync(join(repoRoot(), 'memcached.conf.sample'));
const EXTENSIONS = readFileSync(join(repoRoot(), 'extensions_mcd.conf'));
const UNIT = 'etc/systemd/system/res-memcached.service';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { maxBuffer: 16 * 1024 * 1024, ...options }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

const install = (args: string[]): Promise<Run> => run(process.execPath, [CLI, 'install', ...args]);

function newRoot(name: string): string {
  const root = join(scratch, name);
  mkdirSync(root);
  return root;
}

/** The unit as systemd reads it: section → key → values (a key may repeat). Comments dropped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current !== undefined && eq > 0, `unit line outside a section or without =: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

function one(unit: Map<string, Map<string, string[]>>, section: string, key: string): string | undefined {
  const values = unit.get(section)?.get(key);
  assert.ok(values === undefined || values.length === 1, `${section} ${key} set ${values?.length} times`);
  return values?.[0];
}

function hasSystemdAnalyze(): boolean {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('res-memcached install --root', () => {
  test('a fresh root gets every file, with the shipped contents and a complete, hardened unit', async () => {
    const root = newRoot('fresh');
    const r = await install(['--root', root]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(readFileSync(join(root, 'etc/asterisk/memcached.conf')), SAMPLE);
    assert.deepEqual(readFileSync(join(root, 'etc/asterisk/extensions_mcd.conf')), EXTENSIONS);
    const state = statSync(join(root, 'var/lib/res-memcached'));
    assert.ok(state.isDirectory());
    assert.equal(state.mode & 0o777, 0o750);
    assert.deepEqual(readdirSync(root).sort(), ['etc', 'var']);
    for (const path of ['etc/asterisk/memcached.conf', 'etc/asterisk/extensions_mcd.conf', 'var/lib/res-memcached', UNIT]) {
      assert.match(r.stdout, new RegExp(`^created +${join(root, path)}`, 'm'), path);
    }
    // What to do next, as README's Install section says it.
    for (const next of ['systemctl daemon-reload && systemctl enable --now res-memcached', '#include extensions_mcd.conf', 'asterisk -rx "dialplan reload"', 'channel originate Local/mcdtest@mcd-selftest-dial application Wait 10']) {
      assert.ok(r.stdout.includes(next), next);
    }
    assert.doesNotMatch(r.stdout, /Nothing changed/);

    const unit = parseUnit(readFileSync(join(root, UNIT), 'utf8'));
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
    assert.match(one(unit, 'Unit', 'Description')!, /res-memcached/);
    assert.ok(one(unit, 'Unit', 'Documentation'));
    assert.equal(one(unit, 'Unit', 'After'), 'network-online.target');
    assert.equal(one(unit, 'Unit', 'Wants'), 'network-online.target');
    assert.equal(one(unit, 'Unit', 'Before'), 'asterisk.service');
    // Run from the checkout (node dist/src/cli/main.js), the unit runs this node and this script.
    assert.equal(one(unit, 'Service', 'ExecStart'), `${process.execPath} ${realpathSync(CLI)} --config /etc/asterisk/memcached.conf`);
    // No asterisk user in this root: a transient one.
    assert.equal(one(unit, 'Service', 'DynamicUser'), 'yes');
    assert.equal(one(unit, 'Service', 'User'), undefined);
    const service: Record<string, string> = {
      Type: 'exec',
      ExecReload: '/bin/kill -HUP $MAINPID',
      Restart: 'on-failure',
      StateDirectory: 'res-memcached',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      RestrictNamespaces: 'yes',
      LockPersonality: 'yes',
      SystemCallArchitectures: 'native',
      CapabilityBoundingSet: '',
    };
    for (const [key, value] of Object.entries(service)) assert.equal(one(unit, 'Service', key), value, key);
    // V8's JIT needs writable executable memory.
    assert.equal(one(unit, 'Service', 'MemoryDenyWriteExecute'), undefined);
    assert.equal(one(unit, 'Install', 'WantedBy'), 'multi-user.target');

  });

  // systemd-analyze comes with systemd; where it is missing (a container without systemd) this
  // one test is skipped, and says so.
  test('systemd-analyze verify accepts the unit', { skip: hasSystemdAnalyze() ? false : 'systemd-analyze is not installed here' }, async () => {
    const root = newRoot('verify');
    assert.equal((await install(['--root', root])).code, 0);
    const verify = await run('systemd-analyze', ['verify', join(root, UNIT)]);
    assert.equal(verify.code, 0, verify.stderr);
    assert.equal(verify.stderr, '', 'systemd-analyze verify complains');
    // And verify does complain about a unit that is wrong, so the check above means something.
    const broken = join(scratch, 'broken.service');
    writeFileSync(broken, readFileSync(join(root, UNIT), 'utf8').replace('LockPersonality=', 'LockPersonalty='));
    const bad = await run('systemd-analyze', ['verify', broken]);
    assert.match(bad.stderr, /Unknown key.*LockPersonalty/);
  });

  test('a second run changes nothing and says so', async () => {
    const root = newRoot('twice');
    assert.equal((await install(['--root', root])).code, 0);
    const before = ['etc/asterisk/memcached.conf', 'etc/asterisk/extensions_mcd.conf', UNIT].map((p) => statSync(join(root, p)).mtimeMs);
    const again = await install(['--root', root]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /Nothing changed: everything was already installed/);
    assert.doesNotMatch(again.stdout, /^(created|replaced)/m);
    assert.match(again.stdout, new RegExp(`^kept +${join(root, 'etc/asterisk/memcached.conf')} \\(exists, left as it is\\)`, 'm'));
    assert.match(again.stdout, new RegExp(`^unchanged +${join(root, UNIT)}$`, 'm'));
    const afterRun = ['etc/asterisk/memcached.conf', 'etc/asterisk/extensions_mcd.conf', UNIT].map((p) => statSync(join(root, p)).mtimeMs);
    assert.deepEqual(afterRun, before);
    assert.deepEqual(readdirSync(join(root, 'etc/asterisk')).sort(), ['extensions_mcd.conf', 'memcached.conf']);
  });

  test('an existing memcached.conf is never replaced, not even with --force', async () => {
    const root = newRoot('own-config');
    mkdirSync(join(root, 'etc/asterisk'), { recursive: true });
    writeFileSync(join(root, 'etc/asterisk/memcached.conf'), '[general]\nserver=10.0.0.5\n');
    for (const args of [[], ['--force']]) {
      const r = await install(['--root', root, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readFileSync(join(root, 'etc/asterisk/memcached.conf'), 'utf8'), '[general]\nserver=10.0.0.5\n');
    }
    assert.ok(!existsSync(join(root, 'etc/asterisk/memcached.conf.new')));
  });

  test('a changed extensions_mcd.conf stays; the shipped one goes beside it as .new, with a note; --force replaces it', async () => {
    const root = newRoot('changed-extensions');
    mkdirSync(join(root, 'etc/asterisk'), { recursive: true });
    const local = '; my own edits\n[mcd]\n';
    writeFileSync(join(root, 'etc/asterisk/extensions_mcd.conf'), local);
    const r = await install(['--root', root]);
    assert.equal(r.code, 0, r.stderr);
    const path = join(root, 'etc/asterisk/extensions_mcd.conf');
    assert.equal(readFileSync(path, 'utf8'), local);
    assert.deepEqual(readFileSync(`${path}.new`), EXTENSIONS);
    assert.ok(r.stdout.includes(`kept       ${path} (differs from the shipped one: wrote ${path}.new; compare (diff ${path} ${path}.new) and merge`), r.stdout);
    assert.match(r.stdout, /Merge the \.new file above/);

    const again = await install(['--root', root]);
    assert.match(again.stdout, /Nothing changed/);
    assert.ok(again.stdout.includes(`already beside it as ${path}.new`), again.stdout);

    const forced = await install(['--root', root, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, new RegExp(`^replaced +${path} \\(--force\\)`, 'm'));
    assert.deepEqual(readFileSync(path), EXTENSIONS);
  });

  test('with an asterisk user: User=/Group=, the state directory is theirs and memcached.conf readable by their group', async () => {
    const root = newRoot('with-asterisk');
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\nasterisk:x:4321:4322:Asterisk PBX:/var/lib/asterisk:/usr/sbin/nologin\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\npbx:x:4322:\n');
    const r = await install(['--root', root]);
    assert.equal(r.code, 0, r.stderr);
    const unit = parseUnit(readFileSync(join(root, UNIT), 'utf8'));
    assert.equal(one(unit, 'Service', 'User'), 'asterisk');
    assert.equal(one(unit, 'Service', 'Group'), 'pbx');
    assert.equal(one(unit, 'Service', 'DynamicUser'), undefined);
    assert.doesNotMatch(r.stdout, /DynamicUser/);
    assert.equal(statSync(join(root, 'etc/asterisk/memcached.conf')).mode & 0o777, 0o640);
    if (process.getuid?.() === 0) {
      const state = statSync(join(root, 'var/lib/res-memcached'));
      assert.deepEqual([state.uid, state.gid], [4321, 4322]);
      assert.equal(statSync(join(root, 'etc/asterisk/memcached.conf')).gid, 4322);
    }
    // --user names another one, which must exist.
    const other = await install(['--root', root, '--user', 'root', '--force']);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(one(parseUnit(readFileSync(join(root, UNIT), 'utf8')), 'Service', 'User'), 'root');
    const missing = await install(['--root', root, '--user', 'nobody-here']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--user nobody-here: no such user in .*etc\/passwd/);
  });

  test('usage: --help, a root that is not a directory, an argument', async () => {
    const help = await install(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: res-memcached install \[--root DIR\] \[--user NAME\] \[--force\]/);
    const notDir = await install(['--root', join(scratch, 'nowhere')]);
    assert.equal(notDir.code, 2);
    assert.match(notDir.stderr, /--root .*nowhere: not a directory/);
    assert.equal((await install(['extra'])).code, 2);
    assert.equal((await install(['--config', '/x'])).code, 2);
  });
});

describe('the start line', () => {
  test('with no config file it says so and points at res-memcached install; with one, not', async () => {
    const settings = defaultSettings();
    settings.agi.port = 0;
    settings.embeddedSnapshot = null;
    const lines: Array<{ msg: string; config?: string }> = [];
    const daemon = await Daemon.start(settings, pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as { msg: string }) }));
    await daemon.stop(1000, 0);
    const start = lines.find((l) => l.msg.includes('listening for FastAGI'));
    assert.ok(start, JSON.stringify(lines));
    assert.equal(start.config, '(built-in defaults)');
    assert.match(start.msg, /; no \/etc\/asterisk\/memcached\.conf: built-in defaults\. Run `res-memcached install` to put memcached\.conf, extensions_mcd\.conf and a systemd unit in place/);

    const configured = await startDaemon('[general]\n');
    await configured.stop();
    const line = configured.logs.find((l) => l.msg.includes('listening for FastAGI'));
    assert.ok(line);
    assert.doesNotMatch(line.msg, /res-memcached install/);
  });
});

/** The command lines of README's Install section, in order (```sh and bare ``` blocks). */
function readmeInstallLines(): string[] {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Install\n');
  assert.ok(start >= 0, 'README has no ## Install section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const lines: string[] = [];
  for (const block of section.matchAll(/^```(?:sh)?\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1]!.split('\n')) if (line.trim() !== '') lines.push(line.trim());
  }
  return lines;
}

describe("README's Install section, followed word for word in a temporary root", () => {
  test('npm pack, npm install -g, res-memcached install, the unit started, #include, the self-test', { timeout: 120_000 }, async () => {
    const root = newRoot('readme');
    const tarball = 'res-memcached-0.1.0.tgz';
    // Each line of the section, and how it is done here. A README line this test does not know
    // fails it, and so does one it expects that the README lost.
    assert.deepEqual(readmeInstallLines(), [
      'npm ci',
      'npm pack',
      `npm install -g ./${tarball}`,
      'res-memcached install',
      'systemctl daemon-reload && systemctl enable --now res-memcached',
      '#include extensions_mcd.conf',
      'asterisk -rx "dialplan reload"',
      'asterisk -rx "channel originate Local/mcdtest@mcd-selftest-dial application Wait 10"',
    ]);

    // npm ci: done before the tests run (.ci/run is npm ci && npm test).
    // npm pack, into the root: scripts/test.sh has just built dist/, and a second tsc (prepack)
    // would rewrite it under the tests running beside this one.
    const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', root], { cwd: repoRoot() });
    assert.equal(pack.code, 0, pack.stderr);
    assert.equal(pack.stdout.trim(), tarball);

    // npm install -g ./res-memcached-0.1.0.tgz, with the root's /usr as npm's prefix. No warnings.
    const npmInstall = await run('npm', ['install', '-g', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', join(root, 'usr'), `./${tarball}`], { cwd: root });
    assert.equal(npmInstall.code, 0, npmInstall.stderr);
    assert.doesNotMatch(`${npmInstall.stdout}${npmInstall.stderr}`, /warn|ERR/i);
    const bin = join(root, 'usr/bin/res-memcached');
    assert.ok(existsSync(bin), `${bin} is not there`);

    // res-memcached install, into the root.
    const installed = await run(bin, ['install', '--root', root]);
    assert.equal(installed.code, 0, installed.stderr);
    const unitText = readFileSync(join(root, UNIT), 'utf8');
    const unit = parseUnit(unitText);
    // The installed bin, as the target system sees it.
    const execStart = one(unit, 'Service', 'ExecStart')!;
    assert.equal(execStart, '/usr/bin/res-memcached --config /etc/asterisk/memcached.conf');

    // systemctl enable --now: what ExecStart= runs, with the root's paths, StateDirectory= as
    // $STATE_DIRECTORY, and a free port in memcached.conf (as an administrator edits it).
    const port = await freePort();
    const confPath = join(root, 'etc/asterisk/memcached.conf');
    const conf = readFileSync(confPath, 'utf8');
    assert.match(conf, /^port=4573$/m);
    assert.match(conf, /^port=4574$/m);
    // The HTTP listener too: 4574 may be taken on a machine that runs the tests.
    const httpPort = await freePort();
    writeFileSync(confPath, conf.replace(/^port=4573$/m, `port=${port}`).replace(/^port=4574$/m, `port=${httpPort}`));
    const [command, ...args] = execStart.split(' ').map((part) => (part.startsWith('/') ? join(root, part) : part));
    const daemon = spawn(command!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STATE_DIRECTORY: join(root, 'var/lib/res-memcached') } });
    const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
    try {
      let log = '';
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no start line within 10 s:\n${log}`)), 10_000);
        daemon.stdout!.on('data', (chunk: Buffer) => {
          log += chunk.toString();
          if (log.includes('listening for FastAGI')) {
            clearTimeout(t);
            resolve();
          }
        });
        daemon.once('exit', (code) => reject(new Error(`the daemon exited (${code}):\n${log}`)));
      });
      assert.ok(log.includes(`"config":"${confPath}"`), log);
      assert.ok(log.includes(`127.0.0.1:${port}`), log);

      // One FastAGI call through the fake Asterisk.
      const ch = new FakeChannel();
      await ch.agi(`agi://127.0.0.1:${port}/mcdset`, ['installed', 'yes']);
      await ch.agi(`agi://127.0.0.1:${port}/MCD`, ['installed']);
      assert.equal(ch.getVar('MCD'), 'yes');
      assert.equal(ch.getVar('MCDRESULT'), '0');

      // #include extensions_mcd.conf, in the root's extensions.conf (with the daemon's port).
      const extensions = join(root, 'etc/asterisk/extensions.conf');
      writeFileSync(extensions, `[globals]\nMCD_DAEMON=127.0.0.1:${port}\n\n#include extensions_mcd.conf\n`);
      // dialplan reload, and the self-test originated.
      const plan = loadDialplan(extensions);
      const selftest = new FakeChannel();
      const result = await runDialplan(plan, 'mcd-selftest-dial', 'mcdtest', selftest);
      assert.equal(selftest.getVar('MCDSELFTEST'), 'PASS', result.verbose.join('\n'));
      assert.ok(result.verbose.includes('res-memcached self-test: PASS'), result.verbose.join('\n'));
    } finally {
      daemon.kill('SIGTERM');
      await exited;
    }
    // Stopped as systemctl stop does it: the store was saved in the state directory.
    assert.ok(existsSync(join(root, 'var/lib/res-memcached/store.snapshot')));
  });
});
