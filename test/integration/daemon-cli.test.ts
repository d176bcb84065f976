// The daemon as an administrator runs it: the built CLI spawned with no verb or `serve`, pino log
// lines on stdout, a dialplan call through it, SIGHUP reloads (a bad file refused, the old config
// kept), SIGTERM letting a session in flight finish (ARCHITECTURE.md, "The daemon: reload and
// stop"); and `show`.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';

import { errorFields } from '../../src/cli/serve.js';
import { defaultSettings } from '../../src/config/settings.js';
import { Daemon } from '../../src/daemon/daemon.js';

import { CLI, startCli } from '../support/daemon-process.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { freePort } from '../support/memcached.js';

const dir = mkdtempSync(join(tmpdir(), 'res-memcached-daemon-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('the daemon from the command line', () => {
  test('no verb serves: on the embedded store with no server=, says so, answers the dialplan, stops on SIGTERM', async () => {
    const port = await freePort();
    const config = join(dir, 'embedded.conf');
    writeFileSync(config, `[general]\nkeyprefix=cli:\n[agi]\nport=${port}\n[http]\nenabled=no\n`);
    const d = startCli(dir, ['--config', config]);
    try {
      const start = await d.waitFor((l) => String(l.msg).includes('listening'));
      assert.equal(start.backend, 'embedded');
      assert.match(String(start.msg), /embedded store/);
      assert.equal(start.listen, `127.0.0.1:${port}`);
      const ch = new FakeChannel();
      await ch.agi(`agi://127.0.0.1:${port}/mcdset`, ['k', 'from the cli']);
      assert.equal(ch.getVar('MCDRESULT'), '0');
      await ch.agi(`agi://127.0.0.1:${port}/MCD`, ['k']);
      assert.equal(ch.getVar('MCD'), 'from the cli');
    } finally {
      d.child.kill('SIGTERM');
    }
    assert.equal(await d.exited, 0);
    assert.ok(d.lines.some((l) => l.msg === 'stopped'));
  });

  test('SIGHUP reloads without losing the embedded store; an invalid file is refused and the running config kept', async () => {
    const port = await freePort();
    const config = join(dir, 'reload.conf');
    writeFileSync(config, `[general]\n[agi]\nport=${port}\n[http]\nenabled=no\n`);
    const d = startCli(dir, ['serve', '--config', config]);
    try {
      await d.waitFor((l) => String(l.msg).includes('listening'));
      const ch = new FakeChannel();
      await ch.agi(`agi://127.0.0.1:${port}/mcdset`, ['kept', 'yes']);

      writeFileSync(config, `[general]\nresult_format=name\n[agi]\nport=${port}\n[http]\nenabled=no\n`);
      d.child.kill('SIGHUP');
      await d.waitFor((l) => String(l.msg).includes('configuration reloaded'));
      await ch.agi(`agi://127.0.0.1:${port}/MCD`, ['kept']);
      assert.equal(ch.getVar('MCDRESULT'), 'MEMCACHED_SUCCESS', 'the new result_format applies');
      assert.equal(ch.getVar('MCD'), 'yes', 'the embedded store kept its data across the reload');

      writeFileSync(config, `[general]\nttl=forever\n[agi]\nport=${port}\n[http]\nenabled=no\n`);
      d.child.kill('SIGHUP');
      const refused = await d.waitFor((l) => String(l.msg).includes('reload refused'));
      assert.match(String(refused.msg), /reload\.conf:2/);
      // Located, without pino's serialization of a plain object ("type":"Object","stack":"").
      assert.deepEqual([refused.file, refused.line, refused.err], [config, 2, undefined]);
      await ch.agi(`agi://127.0.0.1:${port}/MCD`, ['missing']);
      assert.equal(ch.getVar('MCDRESULT'), 'MEMCACHED_NOTFOUND', 'still serving with the previous config');
    } finally {
      d.child.kill('SIGTERM');
    }
    assert.equal(await d.exited, 0);
  });

  test('SIGTERM with a session in flight: the session finishes, new calls get 47, exit 0', async () => {
    const port = await freePort();
    const config = join(dir, 'term.conf');
    writeFileSync(config, `[general]\n[agi]\nport=${port}\nmax_sessions=1\n[http]\nenabled=no\n`);
    const d = startCli(dir, ['--config', config]);
    await d.waitFor((l) => String(l.msg).includes('listening'));
    // A session that has connected but not yet sent its environment: in flight when SIGTERM lands.
    const ch = new FakeChannel();
    const slow = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    // A connect completes in the kernel before the daemon accepts it; a SIGTERM landing in between
    // made this one a refused newcomer (47, then a reset). With max_sessions=1, a second call that
    // is turned away as over the cap proves the first is a session of the daemon's.
    await ch.agi(`agi://127.0.0.1:${port}/MCD`, ['k']);
    assert.equal(ch.getVar('MCDRESULT'), '47');
    await d.waitFor((l) => String(l.msg).includes('max_sessions reached'));
    d.child.kill('SIGTERM');
    await d.waitFor((l) => String(l.msg).includes('stopping'));
    // While it drains, a new call gets no session: MCDRESULT=47 at once.
    const refused = await ch.agi(`agi://127.0.0.1:${port}/MCD`, ['k']);
    assert.equal(refused.status, 'SUCCESS');
    assert.equal(ch.getVar('MCDRESULT'), '47', 'no new sessions once stopping');
    // The in-flight one completes its command normally.
    let answer = '';
    slow.on('data', (c: Buffer) => {
      answer += c.toString();
      if (answer.endsWith('\n') && !answer.includes('HANGUP')) slow.write(`200 result=1 (${/"([0-9a-f]{16})/.exec(answer)?.[1] ?? ''}0)\n`);
    });
    slow.write('agi_network: yes\nagi_network_script: mcdset\nagi_channel: Local/x;2\nagi_arg_1: k\nagi_arg_2: v\n\n');
    const code = await d.exited;
    assert.equal(code, 0);
    assert.match(answer, /^GET FULL VARIABLE "[0-9a-f]{16}\$\{LEN\(\$\{MCDTTL\}\)\}/);
    assert.match(answer, /MCDRESULT=0/);
    slow.destroy();
  });

  test('a malformed config: exit 1 naming file and line, and nothing listens (never half-configured)', async () => {
    const port = await freePort();
    const config = join(dir, 'broken.conf');
    writeFileSync(config, `[general]\nserver=127.0.0.1:11211\ntimeout=soon\n[agi]\nport=${port}\n[http]\nenabled=no\n`);
    const d = startCli(dir, ['--config', config]);
    assert.equal(await d.exited, 1);
    const fatal = d.lines.find((l) => l.level === 60);
    assert.match(String(fatal?.msg), /broken\.conf:3/);
    const listening = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    assert.equal(listening, false);
  });

  test('SASL with protocol=meta: exit 1 naming the SASL line and the protocol= line, nothing listens', async () => {
    const port = await freePort();
    const config = join(dir, 'sasl-meta.conf');
    writeFileSync(config, `[general]\nserver=127.0.0.1:11211\nsasl_username=u\nsasl_password=p\nprotocol=meta\n[agi]\nport=${port}\n[http]\nenabled=no\n`);
    const d = startCli(dir, ['--config', config]);
    assert.equal(await d.exited, 1);
    const fatal = String(d.lines.find((l) => l.level === 60)?.msg);
    assert.match(fatal, /sasl-meta\.conf:3/, 'the sasl_username= line');
    assert.match(fatal, /protocol=meta at \S*sasl-meta\.conf:5/, 'the protocol= line');
    const listening = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    assert.equal(listening, false);
  });

  test('a port in use: exit 1 with a fatal log line', async () => {
    const port = await freePort();
    const config = join(dir, 'busy.conf');
    writeFileSync(config, `[agi]\nport=${port}\nmax_sesions=5\n[http]\nenabled=no\n`);
    const first = startCli(dir, ['--config', config]);
    await first.waitFor((l) => String(l.msg).includes('listening'));
    try {
      const second = startCli(dir, ['--config', config]);
      assert.equal(await second.exited, 1);
      const fatal = second.lines.find((l) => l.level === 60);
      assert.match(String(fatal?.msg), new RegExp(`^not started: .*busy\\.conf:2: cannot listen for FastAGI on 127\\.0\\.0\\.1:${port} .*EADDRINUSE`));
      assert.equal(fatal?.file, config);
      assert.equal(fatal?.line, 2);
      assert.equal(fatal?.code, 'EADDRINUSE');
      // The config's warnings are logged even though it did not start (a misspelt prot= is why).
      assert.ok(second.lines.some((l) => l.level === 40 && String(l.msg).includes('busy.conf:3: unknown key max_sesions=')), JSON.stringify(second.lines));
    } finally {
      first.child.kill('SIGTERM');
    }
    assert.equal(await first.exited, 0);
  });

  test('startup failures log the message, file, line and code, not an empty error object', async () => {
    const port = await freePort();
    const cases: Array<[string, string, Record<string, unknown>]> = [
      // An address this host does not have (TEST-NET-1): named at the bindaddr= line.
      ['absent-addr.conf', `[agi]\nport=${port}\nbindaddr=192.0.2.1\n[http]\nenabled=no\n`, { line: 3, code: 'EADDRNOTAVAIL' }],
      ['bad-prefix.conf', `[general]\nkeyprefix=café:\n[agi]\nport=${port}\n[http]\nenabled=no\n`, { line: 2 }],
      ['bad-bindaddr.conf', `[agi]\nbindaddr=not-an-ip\nport=${port}\n`, { line: 2 }],
    ];
    for (const [name, text, expected] of cases) {
      const config = join(dir, name);
      writeFileSync(config, text);
      const d = startCli(dir, ['--config', config]);
      const timer = setTimeout(() => d.child.kill('SIGKILL'), 5000);
      assert.equal(await d.exited, 1, name);
      clearTimeout(timer);
      const fatal = d.lines.find((l) => l.level === 60);
      assert.ok(fatal, name);
      assert.equal(fatal.err, undefined, `${name}: ${JSON.stringify(fatal)}`);
      assert.equal(fatal.file, config);
      assert.equal(typeof fatal.error, 'string');
      for (const [k, v] of Object.entries(expected)) assert.equal(fatal[k], v, `${name} ${k}`);
      assert.match(String(fatal.msg), new RegExp(`^not started: ${config.replace(/[.]/g, '\\.')}:${String(expected.line)}: `), name);
    }
  });
});

describe('a listen failure with no config file (built-in defaults)', () => {
  test('says where bindaddr/port come from and logs the socket code, not a stack', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const settings = defaultSettings();
      settings.agi.port = port;
      const error = await Daemon.start(settings, pino({ level: 'silent' })).then(
        () => assert.fail('started on a busy port'),
        (err: unknown) => err as Error,
      );
      assert.match(error.message, new RegExp(`^cannot listen for FastAGI on 127\\.0\\.0\\.1:${port} .*EADDRINUSE.*; set them in memcached\\.conf$`));
      assert.deepEqual(errorFields(error), { error: error.message, code: 'EADDRINUSE' });
    } finally {
      busy.close();
    }
  });
});

describe('show', () => {
  test('show functions / applications list every command', async () => {
    const f = await run(['show', 'functions']);
    assert.equal(f.code, 0);
    assert.match(f.stdout, /^Installed Custom Functions:/);
    assert.match(f.stdout, /^MCD {18}/m);
    assert.match(f.stdout, /^MCDCOUNTER {11}/m);
    assert.match(f.stdout, /^MCDLIMITCOUNT {8}/m);
    assert.match(f.stdout, /3 custom functions installed\./);
    const a = await run(['show', 'applications']);
    assert.equal(a.code, 0);
    for (const app of ['mcdget', 'mcdset', 'mcdadd', 'mcdreplace', 'mcdappend', 'mcdprepend', 'mcddelete', 'mcdtouch', 'mcdcounterset', 'mcdgets', 'mcdcas', 'mcdlimit', 'mcdrelease', 'mcdlock', 'mcdunlock']) {
      assert.match(a.stdout, new RegExp(`^ +${app}: `, 'm'), app);
    }
    assert.match(a.stdout, /-= 15 Applications Registered =-/);
  });

  test('show function MCD / show application mcdset print the usage with the FastAGI form', async () => {
    const f = await run(['show', 'function', 'MCD']);
    assert.equal(f.code, 0);
    assert.match(f.stdout, /-= Info about function 'MCD' =-/);
    assert.match(f.stdout, /\[Syntax\]\nMCD\(key\)/);
    assert.match(f.stdout, /AGI\(agi:\/\/127\.0\.0\.1\/MCD,key\)/);
    const a = await run(['show', 'application', 'mcdset']);
    assert.equal(a.code, 0);
    assert.match(a.stdout, /-= Info about application 'mcdset' =-/);
    assert.match(a.stdout, /AGI\(agi:\/\/127\.0\.0\.1\/mcdset,key,value\)/);
    const wrongKind = await run(['show', 'function', 'mcdset']);
    assert.equal(wrongKind.code, 1);
    assert.match(wrongKind.stderr, /No function by that name registered/);
    assert.equal((await run(['show', 'everything'])).code, 2);
  });

  test('show application mcdgets / mcdcas: the FastAGI form, the arguments and what each sets', async () => {
    const gets = await run(['show', 'application', 'mcdgets']);
    assert.equal(gets.code, 0);
    assert.match(gets.stdout, /AGI\(agi:\/\/127\.0\.0\.1\/mcdgets,varname,key\)/);
    assert.match(gets.stdout, /\[Sets\]\nthe variable named by varname, MCDCAS, MCDRESULT\n/);
    const cas = await run(['show', 'application', 'mcdcas']);
    assert.equal(cas.code, 0);
    assert.match(cas.stdout, /AGI\(agi:\/\/127\.0\.0\.1\/mcdcas,key,cas,value\)/);
    assert.match(cas.stdout, /\[Arguments\]\nkey\n.*\ncas\n.*\nvalue\n/);
    assert.match(cas.stdout, /12 \(DATA_EXISTS\)/);
    assert.match(cas.stdout, /\[Sets\]\nMCDRESULT\n/);
  });
});
