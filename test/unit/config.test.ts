// memcached.conf: Asterisk's config syntax (src/config/asterisk-conf.ts) and the validated
// settings read from it (src/config/settings.ts), including the C module's own sample.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  ConfigError,
  MAX_INCLUDE_DEPTH,
  parseConfigFile,
  sectionsNamed,
  type ParsedConfig,
} from '../../src/config/asterisk-conf.js';
import { inMemoryConfigFs, parseConfigText } from '../support/config-text.js';
import {
  CONFIG_DEFAULTS,
  defaultSettings,
  formatWarning,
  isPermitted,
  loadSettings,
  settingsFromConfig,
  type Settings,
} from '../../src/config/settings.js';
import { Client } from '../../src/cluster/client.js';
import { amiClientOptionsFromSettings } from '../../src/daemon/ami-options.js';
import { clientOptionsFromSettings } from '../../src/daemon/client-options.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { fixturePath } from '../support/fixtures.js';

const MAIN = '/etc/asterisk/memcached.conf';

/** Parses in-memory files, starting from MAIN (or `top`). */
function parse(files: Record<string, string>, top = MAIN): ParsedConfig {
  return parseConfigFile(top, { fs: inMemoryConfigFs(files) });
}

function parseOne(text: string): ParsedConfig {
  return parse({ [MAIN]: text });
}

function settingsOf(text: string, extraFiles: Record<string, string> = {}): Settings {
  return loadSettings(MAIN, { fs: inMemoryConfigFs({ [MAIN]: text, ...extraFiles }) });
}

/** The section's entries as [key, value, line] triples. */
function entries(parsed: ParsedConfig, index = 0): Array<[string, string, number]> {
  const section = parsed.sections[index];
  assert.ok(section, `no section #${index}`);
  return section.entries.map((e) => [e.key, e.value, e.line]);
}

/** Asserts that `fn` throws a ConfigError located at file:line whose reason matches. */
function throwsAt(fn: () => unknown, file: string, line: number, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${String(err)}`);
    assert.equal(err.file, file);
    assert.equal(err.line, line);
    const prefix = line > 0 ? `${file}:${line}: ` : `${file}: `;
    assert.ok(err.message.startsWith(prefix), `message ${JSON.stringify(err.message)} does not start with ${prefix}`);
    assert.match(err.reason, reason);
    return true;
  });
}

/** Settings in a [general] section. */
const general = (...lines: string[]): Settings => settingsOf(['[general]', ...lines].join('\n'));

describe('Asterisk config syntax', () => {
  it('reads sections and entries in order, keeping repeated keys and their lines', () => {
    const parsed = parseOne('[general]\nserver=a\nttl=5\nserver=b\n\n[agi]\nport=1\n');
    assert.deepEqual(
      parsed.sections.map((s) => [s.name, s.line]),
      [['general', 1], ['agi', 6]],
    );
    assert.deepEqual(entries(parsed), [['server', 'a', 2], ['ttl', '5', 3], ['server', 'b', 4]]);
    assert.deepEqual(entries(parsed, 1), [['port', '1', 7]]);
    assert.equal(parsed.sections[0]?.entries[0]?.file, MAIN);
    assert.equal(parsed.file, MAIN);
    assert.deepEqual(parsed.files, [MAIN]);
  });

  it('takes key => value as key = value, trimming blanks around both', () => {
    const parsed = parseOne('[s]\n  a => 1\nb=>2\n\tc =  three words  \nd=\ne =>\n');
    assert.deepEqual(entries(parsed), [['a', '1', 2], ['b', '2', 3], ['c', 'three words', 4], ['d', '', 5], ['e', '', 6]]);
  });

  it('keeps = and > inside the value', () => {
    assert.deepEqual(entries(parseOne('[s]\na=b=c\nd = >x\ne=>>y\n')), [['a', 'b=c', 2], ['d', '>x', 3], ['e', '>y', 4]]);
  });

  it('ends a line at ; and reads \\; as a literal semicolon', () => {
    const parsed = parseOne(
      [
        '; a comment line',
        '[s] ; header comment',
        'a=1 ; trailing',
        'b=x\\;y',
        'c=\\;start',
        'd=two\\;\\;semis ; comment',
        '   ; indented comment',
        'e=end\\;',
        'f=;nothing',
      ].join('\n'),
    );
    assert.deepEqual(entries(parsed), [['a', '1', 3], ['b', 'x;y', 4], ['c', ';start', 5], ['d', 'two;;semis', 6], ['e', 'end;', 8], ['f', '', 9]]);
  });

  it('skips ;-- block comments --; over lines, on one line, and nested', () => {
    const text = [
      '[s]', //                        1
      'a=1 ;-- opens here', //         2
      'b=hidden', //                   3
      ';-- nested ;-- inner --; still hidden --;', // 4 (opens two more, closes two)
      'c=hidden', //                   5
      'ends --; d=4', //               6
      'e=5 ;-- inline --; ; rest', //  7
      'f=6 ;--- not a block start', // 8
      'g=7', //                        9
    ].join('\n');
    assert.deepEqual(entries(parseOne(text)), [['a', '1', 2], ['d', '4', 6], ['e', '5', 7], ['f', '6', 8], ['g', '7', 9]]);
  });

  it('does not take \\;-- as a block comment', () => {
    assert.deepEqual(entries(parseOne('[s]\na=x\\;--y\nb=2\n')), [['a', 'x;--y', 2], ['b', '2', 3]]);
  });

  it('refuses a block comment that is never closed, at the line that opened it', () => {
    throwsAt(() => parseOne('[s]\na=1\n;-- forgot\nserver=x\n'), MAIN, 3, /never closed/);
  });

  it('reads CRLF files, a byte-order mark and blank lines with spaces', () => {
    const parsed = parseOne('\uFEFF[s]\r\na=1\r\n   \r\n\t\r\nb = 2 \r\n');
    assert.deepEqual(entries(parsed), [['a', '1', 2], ['b', '2', 5]]);
  });

  it('appends with += to the last value of the key, as Asterisk does', () => {
    assert.deepEqual(entries(parseOne('[s]\na=one\na=two\na += three\nb+=new\n')), [['a', 'one', 2], ['a', 'two three', 3], ['b', 'new', 5]]);
  });

  it('takes the character after a leading backslash literally', () => {
    assert.deepEqual(entries(parseOne('[s]\n\\[odd]=1\n\\#hash = 2\n')), [['[odd]', '1', 2], ['#hash', '2', 3]]);
  });

  it('matches section names case-insensitively and trims them', () => {
    const parsed = parseOne('[ General ]\na=1\n[AGI]\nb=2\n[general]\nc=3\n');
    assert.deepEqual(parsed.sections.map((s) => s.name), ['General', 'AGI', 'general']);
    assert.deepEqual(sectionsNamed(parsed, 'general').map((s) => s.line), [1, 5]);
    assert.deepEqual(sectionsNamed(parsed, 'agi').map((s) => s.line), [3]);
  });

  describe('templates', () => {
    const text = [
      '[base](!)', //            1
      'server=tpl1', //          2
      'ttl=10', //               3
      '[extra](!)', //           4
      'hash=md5', //             5
      '[general](base,extra)', // 6
      'ttl=20', //               7
      '[plain]', //              8
      'x=1', //                  9
      '[child](plain)', //       10
      'y=2', //                  11
    ].join('\n');

    it('hides (!) templates and gives inheriting sections their entries first', () => {
      const parsed = parseOne(text);
      assert.deepEqual(parsed.sections.map((s) => s.name), ['general', 'plain', 'child']);
      assert.deepEqual(parsed.sections[0]?.inherits, ['base', 'extra']);
      assert.deepEqual(entries(parsed), [['server', 'tpl1', 2], ['ttl', '10', 3], ['hash', 'md5', 5], ['ttl', '20', 7]]);
      assert.deepEqual(entries(parsed, 2), [['x', '1', 9], ['y', '2', 11]]);
    });

    it('lets settings read inherited entries, the later own line winning', () => {
      const settings = settingsOf(text);
      assert.equal(settings.ttl, 20);
      assert.equal(settings.hash, 'md5');
      assert.deepEqual(settings.servers.map((s) => [s.host, s.line]), [['tpl1', 2]]);
    });

    it('adds to an earlier section with (+), and refuses (+) with none', () => {
      const parsed = parseOne('[general]\na=1\n[agi]\nb=2\n[general](+)\nc=3\n');
      assert.deepEqual(parsed.sections.map((s) => s.name), ['general', 'agi']);
      assert.deepEqual(entries(parsed), [['a', '1', 2], ['c', '3', 6]]);
      throwsAt(() => parseOne('[general]\n[nope](+)\n'), MAIN, 2, /no earlier \[nope\]/);
    });

    it('takes (!) with a base: a template built from a template', () => {
      const parsed = parseOne('[a](!)\nx=1\n[b](!,a)\ny=2\n[c](b)\nz=3\n');
      assert.deepEqual(parsed.sections.map((s) => s.name), ['c']);
      assert.deepEqual(entries(parsed), [['x', '1', 2], ['y', '2', 4], ['z', '3', 6]]);
    });

    it('refuses an unknown template, naming file and line', () => {
      throwsAt(() => parseOne('[general]\na=1\n[agi](missing)\n'), MAIN, 3, /inherits from "missing"/);
      throwsAt(() => parseOne('[general](, )\n'), MAIN, 1, /empty name/);
      throwsAt(() => parseOne('[general](+filter=x)\n'), MAIN, 1, /not supported/);
    });
  });

  describe('malformed lines name their file and line', () => {
    const cases: Array<[string, string, number, RegExp]> = [
      ['entry before any section', 'ttl=1\n[general]\n', 1, /before any \[section\]/],
      ['no =', '[general]\nttl=1\n\nserver localhost\n', 4, /no "="/],
      ['no key', '[general]\n = value\n', 2, /no key/],
      ['unterminated [', '[general]\n[agi\nport=1\n', 2, /no closing '\]'/],
      ['empty section name', '[ ]\n', 1, /empty section name/],
      ['text after ]', '[general] extra\n', 1, /unexpected "extra"/],
      ['text after )', '[a](!) extra\n', 1, /unexpected "extra"/],
      ['unterminated (', '[a](!\n', 1, /no closing '\)'/],
      ['bad escape', '[general]\n\\ x=1\n', 2, /invalid escape/],
      ['lone backslash', '[general]\n\\\n', 2, /invalid escape/],
      ['unknown directive', '[general]\n#includ x.conf\n', 2, /unknown directive "#includ"/],
      ['hash comment', '[general]\n# a comment\n', 2, /unknown directive/],
      ['#include without file', '[general]\n#include\n', 2, /needs a file name/],
      ['#include with open quote', '[general]\n#include "x.conf\n', 2, /unterminated "/],
      ['#include with empty quotes', '[general]\n#include ""\n', 2, /empty file name/],
      ['#exec', '[general]\n#exec /bin/echo server=evil\n', 2, /#exec is refused/],
      ['#EXEC', '[general]\n#EXEC "/bin/true"\n', 2, /#exec is refused/],
    ];
    for (const [name, text, line, reason] of cases) {
      it(name, () => throwsAt(() => parseOne(text), MAIN, line, reason));
    }

    it('in an included file, the included file and its line', () => {
      const files = { [MAIN]: '[general]\n#include servers.conf\n', '/etc/asterisk/servers.conf': 'server=a\nbroken line\n' };
      throwsAt(() => parse(files), '/etc/asterisk/servers.conf', 2, /no "="/);
    });

    it('a missing top file: the file, line 0', () => {
      throwsAt(() => parse({}), MAIN, 0, /cannot read: no such file/);
      assert.throws(() => parse({}), { message: `${MAIN}: cannot read: no such file` });
    });

    it('parseConfigText locates errors in the file it is given', () => {
      throwsAt(() => parseConfigText('[s]\nnope\n', '/tmp/x.conf', { fs: inMemoryConfigFs({}) }), '/tmp/x.conf', 2, /no "="/);
    });
  });

  describe('#include (in-memory files)', () => {
    it('puts header-less entries of an included file in the including section, and goes on in it afterwards', () => {
      const parsed = parse({
        [MAIN]: '[general]\nttl=1\n#include servers.conf\nhash=md5\n#include "agi.conf"\nkeyprefix=x\n',
        '/etc/asterisk/servers.conf': 'server=a:1\nserver=b:2\n',
        '/etc/asterisk/agi.conf': '[agi]\nport=4574\n',
      });
      assert.deepEqual(parsed.sections.map((s) => s.name), ['general', 'agi']);
      assert.deepEqual(
        parsed.sections[0]?.entries.map((e) => [e.key, e.file, e.line]),
        [
          ['ttl', MAIN, 2],
          ['server', '/etc/asterisk/servers.conf', 1],
          ['server', '/etc/asterisk/servers.conf', 2],
          ['hash', MAIN, 4],
          ['keyprefix', MAIN, 6],
        ],
      );
      assert.deepEqual(parsed.files, [MAIN, '/etc/asterisk/servers.conf', '/etc/asterisk/agi.conf']);
    });

    it('may open the first section from an included file', () => {
      const parsed = parse({ [MAIN]: '#include <head.conf>\n', '/etc/asterisk/head.conf': '[general]\nttl=3\n' });
      assert.deepEqual(parsed.sections.map((s) => s.name), ['general']);
      assert.deepEqual(entries(parsed), [['ttl', '3', 2]]);
      // As in Asterisk, the header does not carry back: the including file still has no section.
      throwsAt(() => parse({ [MAIN]: '#include head.conf\nttl=3\n', '/etc/asterisk/head.conf': '[general]\n' }), MAIN, 2, /before any \[section\]/);
    });

    it('refuses a missing #include at its line, and lets #tryinclude skip it', () => {
      throwsAt(() => parse({ [MAIN]: '[general]\nttl=1\n#include nothere.conf\n' }), MAIN, 3, /cannot read included file \/etc\/asterisk\/nothere.conf: no such file/);
      const parsed = parse({ [MAIN]: '[general]\n#tryinclude nothere.conf\nttl=1\n' });
      assert.deepEqual(entries(parsed), [['ttl', '1', 3]]);
    });

    it('detects include loops, naming the chain and the line that closes it', () => {
      const files = {
        [MAIN]: '[general]\n#include a.conf\n',
        '/etc/asterisk/a.conf': 'ttl=1\n#include b.conf\n',
        '/etc/asterisk/b.conf': '\n\n#include a.conf\n',
      };
      throwsAt(() => parse(files), '/etc/asterisk/b.conf', 3, /#include loop: \/etc\/asterisk\/a\.conf -> \/etc\/asterisk\/b\.conf -> \/etc\/asterisk\/a\.conf/);
      throwsAt(() => parse({ [MAIN]: '[general]\n#include memcached.conf\n' }), MAIN, 2, /#include loop/);
      throwsAt(() => parse({ [MAIN]: '[general]\n#include ./../asterisk/memcached.conf\n' }), MAIN, 2, /#include loop/);
    });

    it('allows the same file twice when it is not a loop', () => {
      const parsed = parse({ [MAIN]: '[general]\n#include s.conf\n#include s.conf\n', '/etc/asterisk/s.conf': 'server=a\n' });
      assert.deepEqual(entries(parsed), [['server', 'a', 1], ['server', 'a', 1]]);
    });

    it(`stops nesting at ${MAX_INCLUDE_DEPTH} levels`, () => {
      const files: Record<string, string> = { [MAIN]: '[general]\n#include f1.conf\n' };
      for (let i = 1; i <= MAX_INCLUDE_DEPTH + 1; i++) files[`/etc/asterisk/f${i}.conf`] = `#include f${i + 1}.conf\n`;
      files[`/etc/asterisk/f${MAX_INCLUDE_DEPTH + 2}.conf`] = 'ttl=1\n';
      throwsAt(() => parse(files), `/etc/asterisk/f${MAX_INCLUDE_DEPTH - 1}.conf`, 1, /nested more than/);
    });
  });

  describe('#include (real files in a temp dir)', () => {
    let dir = '';
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'res-memcached-conf-'));
      mkdirSync(join(dir, 'sub'));
      mkdirSync(join(dir, 'conf.d'));
      mkdirSync(join(dir, 'empty.d'));
      writeFileSync(join(dir, 'main.conf'), '[general]\n#include sub/one.conf\n#include "with space.conf"\n#include conf.d/*.conf\n#tryinclude empty.d/*.conf\nttl=9\n');
      // Relative to the including file: sub/one.conf's "two.conf" is sub/two.conf, not ./two.conf.
      writeFileSync(join(dir, 'sub', 'one.conf'), 'server=one\n#include two.conf\n');
      writeFileSync(join(dir, 'sub', 'two.conf'), 'server=sub-two\n');
      writeFileSync(join(dir, 'two.conf'), 'server=WRONG-top-two\n');
      writeFileSync(join(dir, 'with space.conf'), `#include ${join(dir, 'abs.conf')}\n`);
      writeFileSync(join(dir, 'abs.conf'), 'server=absolute\n');
      writeFileSync(join(dir, 'conf.d', 'b.conf'), 'server=glob-b\n');
      writeFileSync(join(dir, 'conf.d', 'a.conf'), 'server=glob-a\n');
      writeFileSync(join(dir, 'conf.d', '.hidden.conf'), 'server=hidden\n');
      writeFileSync(join(dir, 'conf.d', 'c.conf.bak'), 'server=backup\n');
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('resolves relative to the including file, absolute as is, wildcards sorted', () => {
      const parsed = parseConfigFile(join(dir, 'main.conf'));
      assert.deepEqual(
        parsed.sections[0]?.entries.map((e) => e.value),
        ['one', 'sub-two', 'absolute', 'glob-a', 'glob-b', '9'],
      );
      assert.equal(parsed.sections[0]?.entries[1]?.file, join(dir, 'sub', 'two.conf'));
      assert.deepEqual(parsed.files, [
        join(dir, 'main.conf'),
        join(dir, 'sub', 'one.conf'),
        join(dir, 'sub', 'two.conf'),
        join(dir, 'with space.conf'),
        join(dir, 'abs.conf'),
        join(dir, 'conf.d', 'a.conf'),
        join(dir, 'conf.d', 'b.conf'),
      ]);
    });

    it('refuses an #include wildcard that matches nothing', () => {
      writeFileSync(join(dir, 'nomatch.conf'), '[general]\n#include empty.d/*.conf\n');
      throwsAt(() => parseConfigFile(join(dir, 'nomatch.conf')), join(dir, 'nomatch.conf'), 2, /matches no file/);
    });

    it('detects a loop through real files', () => {
      writeFileSync(join(dir, 'loop1.conf'), '[general]\n#include sub/loop2.conf\n');
      writeFileSync(join(dir, 'sub', 'loop2.conf'), '#include ../loop1.conf\n');
      throwsAt(() => parseConfigFile(join(dir, 'loop1.conf')), join(dir, 'sub', 'loop2.conf'), 1, /#include loop/);
    });

    it('loadSettings reads the real files too', () => {
      const settings = loadSettings(join(dir, 'main.conf'));
      assert.equal(settings.source, join(dir, 'main.conf'));
      assert.deepEqual(settings.servers.map((s) => s.host), ['one', 'sub-two', 'absolute', 'glob-a', 'glob-b']);
      assert.equal(settings.ttl, 9);
    });
  });
});

describe('settings', () => {
  it('defaults: the C module\'s, plus call-flow-safe timeouts; no servers (embedded store)', () => {
    const d = defaultSettings();
    assert.deepEqual(d, {
      ttl: 0,
      protocol: 'binary',
      binaryProto: true,
      hash: 'default',
      continuumHash: 'default',
      socketPointNames: 'path',
      keyPrefix: '',
      servers: [],
      distribution: 'consistent',
      hashWithPrefix: false,
      connectTimeoutMs: 500,
      timeoutMs: 1000,
      retryTimeoutMs: 2000,
      serverFailureLimit: 2,
      removeFailedServers: false,
      maxKeyLength: 64,
      maxValueLength: 4096,
      counterTtl: 0,
      resultFormat: 'number',
      nodeId: hostname(),
      leaseTtl: 3600,
      embeddedMaxBytes: 64 * 1_048_576,
      embeddedSnapshot: { path: '/var/lib/res-memcached/store.snapshot', configured: false, intervalMs: 60_000 },
      sasl: null,
      tls: { enabled: false, verify: true },
      agi: { bindaddr: '127.0.0.1', port: 4573, permit: [], deny: [], rules: [], maxSessions: 1000, envTimeoutMs: 5000, maxLineLength: 8192, answerTimeoutMs: 10_000, bindaddrAt: null, portAt: null },
      http: { enabled: true, bindaddr: '127.0.0.1', port: 4574, rules: [], maxConnections: 256, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 5000, bindaddrAt: null, portAt: null },
      ami: { enabled: false, host: '127.0.0.1', port: 5038, username: '', secret: '', auth: 'plain', connectTimeoutMs: 5000, reconnectMaxMs: 30_000 },
      warnings: [],
      source: null,
    });
    assert.equal(CONFIG_DEFAULTS.general.retry_timeout * 1000, d.retryTimeoutMs);
    assert.equal(CONFIG_DEFAULTS.agi.port, d.agi.port);
  });

  it('an empty file and an empty [general] give the defaults, with the file as source', () => {
    const { source, ...rest } = settingsOf('');
    const { source: none, ...defaults } = defaultSettings();
    assert.equal(source, MAIN);
    assert.equal(none, null);
    assert.deepEqual(rest, defaults);
    assert.deepEqual({ ...general(), source: null }, defaultSettings());
  });

  it('reads the C module\'s sample config unchanged', () => {
    const file = fixturePath('memcached.conf.sample');
    const settings = loadSettings(file);
    assert.equal(settings.ttl, 0);
    assert.equal(settings.binaryProto, true);
    assert.equal(settings.hash, 'default');
    assert.equal(settings.keyPrefix, '');
    assert.deepEqual(settings.servers, [{ kind: 'tcp', host: 'localhost', port: 11211, weight: 1, text: 'localhost:11211', file, line: 11 }]);
    // The sample's prefixkey= is the one thing worth telling the admin about.
    assert.equal(settings.warnings.length, 1);
    assert.equal(settings.warnings[0]?.line, 9);
    assert.match(settings.warnings[0]?.message ?? '', /prefixkey= is ignored.*keyprefix/);
    assert.equal(settings.source, file);
  });

  describe('[general] keys', () => {
    it('ttl and counter_ttl: seconds, 0 to 2^31-1', () => {
      assert.equal(general('ttl=300').ttl, 300);
      assert.equal(general('counter_ttl=86400').counterTtl, 86400);
      assert.equal(general('ttl=2147483647').ttl, 2147483647);
      for (const bad of ['-1', 'abc', '1.5', '2147483648', '10s', '0x10']) {
        throwsAt(() => general(`ttl=${bad}`), MAIN, 2, /ttl=.*expected a whole number from 0 to 2147483647/);
        throwsAt(() => general(`counter_ttl=${bad}`), MAIN, 2, /counter_ttl=/);
      }
    });

    it('binary_proto and the other switches: every ast_true/ast_false spelling', () => {
      for (const yes of ['yes', 'YES', 'true', 'on', '1', 'y', 't']) assert.equal(general(`binary_proto=${yes}`).binaryProto, true, yes);
      for (const no of ['no', 'No', 'false', 'off', '0', 'n', 'f']) assert.equal(general(`binary_proto=${no}`).binaryProto, false, no);
      throwsAt(() => general('binary_proto=maybe'), MAIN, 2, /binary_proto=maybe: expected yes or no/);
      assert.equal(general('binary_proto=yes').protocol, 'binary');
      assert.equal(general('binary_proto=no').protocol, 'text');
      assert.equal(general('hash_with_prefix=yes').hashWithPrefix, true);
      assert.equal(general('remove_failed_servers=on').removeFailedServers, true);
      throwsAt(() => general('remove_failed_servers=2'), MAIN, 2, /expected yes or no/);
    });

    it('hash: every libmemcached name, case-insensitive, and the sample\'s spellings with a warning', () => {
      for (const name of ['default', 'md5', 'crc', 'fnv1_64', 'fnv1a_64', 'fnv1_32', 'fnv1a_32', 'jenkins', 'hsieh', 'murmur', 'murmur3']) {
        assert.equal(general(`hash=${name}`).hash, name);
        assert.equal(general(`hash=${name.toUpperCase()}`).hash, name);
      }
      const a64 = general('hash=fnv1_64a');
      assert.equal(a64.hash, 'fnv1a_64');
      assert.match(a64.warnings[0]?.message ?? '', /fnv1a_64/);
      assert.equal(general('hash=FNV1_32A').hash, 'fnv1a_32');
      throwsAt(() => general('', 'hash=sha1'), MAIN, 3, /hash=sha1: expected one of default, md5/);
    });

    it('continuum_hash: the key hash unless given; every hash name; a bad one names its line', () => {
      assert.equal(general('hash=md5').continuumHash, 'md5');
      assert.equal(general('hash=md5', 'continuum_hash=').continuumHash, 'md5');
      assert.deepEqual(general('hash=md5', 'continuum_hash=').warnings, []);
      assert.equal(general('hash=md5', 'continuum_hash=default').continuumHash, 'default');
      assert.equal(general('continuum_hash=FNV1A_32').continuumHash, 'fnv1a_32');
      assert.equal(general('continuum_hash=fnv1_64a').continuumHash, 'fnv1a_64');
      throwsAt(() => general('', 'continuum_hash=sha1'), MAIN, 3, /continuum_hash=sha1: expected one of default, md5/);
    });

    it('socket_point_names: path (the default) or path:0', () => {
      assert.equal(general('').socketPointNames, 'path');
      assert.equal(general('socket_point_names=path:0').socketPointNames, 'path:0');
      throwsAt(() => general('socket_point_names=port'), MAIN, 2, /socket_point_names=port: expected one of path, path:0/);
    });

    it('hash defaults to md5 under ketama_weighted only when hash= is not given', () => {
      assert.equal(general('distribution=ketama_weighted').hash, 'md5');
      assert.equal(general('distribution=ketama_weighted', 'hash=crc').hash, 'crc');
      assert.equal(general('distribution=ketama_weighted', 'hash=default').hash, 'default');
      assert.equal(general('distribution=modula').hash, 'default');
    });

    it('distribution: consistent, modula, ketama_weighted, ketama_spy', () => {
      for (const d of ['consistent', 'modula', 'ketama_weighted', 'ketama_spy']) assert.equal(general(`distribution=${d}`).distribution, d);
      assert.equal(general('distribution=Modula').distribution, 'modula');
      throwsAt(() => general('distribution=ketama'), MAIN, 2, /expected one of consistent, modula, ketama_weighted, ketama_spy/);
    });

    it('keyprefix: printable ASCII up to 127 bytes, as the client and the store take it', () => {
      assert.equal(general('keyprefix=pbx1:').keyPrefix, 'pbx1:');
      assert.equal(general('keyprefix=  spaced  ').keyPrefix, 'spaced');
      assert.equal(general('keyprefix=').keyPrefix, '');
      assert.equal(general(`keyprefix=${'p'.repeat(127)}`).keyPrefix.length, 127);
      throwsAt(() => general(`keyprefix=${'p'.repeat(128)}`), MAIN, 2, /at most 127 bytes .*\(it has 128\)/);
      throwsAt(() => general('ttl=1', 'keyprefix=two words'), MAIN, 3, /without spaces/);
      throwsAt(() => general('keyprefix=a\tb'), MAIN, 2, /without spaces/);
      throwsAt(() => general('keyprefix=a\x01b'), MAIN, 2, /control/);
      throwsAt(() => general('keyprefix=a\x7fb'), MAIN, 2, /control/);
    });

    it('keyprefix with bytes the key rules refuse is an error at its line, not at start', () => {
      // café: passed the config once and then stopped the daemon with no file or line.
      throwsAt(() => general('ttl=1', 'keyprefix=café:'), MAIN, 3, /printable ASCII.*non-ASCII/);
      throwsAt(() => general(`keyprefix=${'é'.repeat(64)}`), MAIN, 2, /printable ASCII/);
      // Whatever the config takes, the client and the embedded store take too.
      for (const prefix of ['pbx1:', '~!@#$%^&*()', 'p'.repeat(127)]) {
        const s = general(`keyprefix=${prefix}`, 'server=127.0.0.1:1');
        void new Client(clientOptionsFromSettings(s)).close();
        new MemoryStore({ keyPrefix: s.keyPrefix });
      }
    });

    it('warns when keyprefix + max_key_length cannot fit 250 bytes', () => {
      const s = general(`keyprefix=${'p'.repeat(100)}`, 'max_key_length=200');
      assert.equal(s.maxKeyLength, 200);
      assert.ok(s.warnings.some((w) => w.line === 3 && /keys longer than 150/.test(w.message)));
      assert.deepEqual(general(`keyprefix=${'p'.repeat(100)}`, 'max_key_length=150').warnings, []);
    });

    it('timeouts: connect_timeout and timeout in ms, retry_timeout in (fractional) seconds', () => {
      const s = general('connect_timeout=250', 'timeout=750', 'retry_timeout=0.5');
      assert.equal(s.connectTimeoutMs, 250);
      assert.equal(s.timeoutMs, 750);
      assert.equal(s.retryTimeoutMs, 500);
      assert.equal(general('retry_timeout=30').retryTimeoutMs, 30000);
      assert.equal(general('retry_timeout=0').retryTimeoutMs, 0);
      assert.equal(general('retry_timeout=0.0015').retryTimeoutMs, 2);
      for (const bad of ['0', '-5', '1.5', 'fast', '600001']) {
        throwsAt(() => general(`connect_timeout=${bad}`), MAIN, 2, /connect_timeout=.*from 1 to 600000/);
        throwsAt(() => general(`timeout=${bad}`), MAIN, 2, /timeout=/);
      }
      for (const bad of ['-1', '1.', '.5', 'two', '86401', '1e3']) {
        throwsAt(() => general(`retry_timeout=${bad}`), MAIN, 2, /retry_timeout=.*seconds from 0 to 86400/);
      }
    });

    it('server_failure_limit: 1 or more', () => {
      assert.equal(general('server_failure_limit=5').serverFailureLimit, 5);
      throwsAt(() => general('server_failure_limit=0'), MAIN, 2, /from 1 to/);
    });

    it('max_key_length 1..250 and max_value_length 1..1048576', () => {
      assert.equal(general('max_key_length=250').maxKeyLength, 250);
      assert.equal(general('max_key_length=1').maxKeyLength, 1);
      assert.equal(general('max_value_length=1048576').maxValueLength, 1048576);
      throwsAt(() => general('max_key_length=251'), MAIN, 2, /from 1 to 250/);
      throwsAt(() => general('max_key_length=0'), MAIN, 2, /from 1 to 250/);
      throwsAt(() => general('max_value_length=1048577'), MAIN, 2, /from 1 to 1048576/);
      throwsAt(() => general('max_value_length=0'), MAIN, 2, /from 1 to 1048576/);
    });

    it('embedded_snapshot: a path (relative to the config file), yes for the default, no for none; the interval in seconds', () => {
      assert.deepEqual(general('embedded_snapshot=/srv/mcd/store.bin').embeddedSnapshot, { path: '/srv/mcd/store.bin', configured: true, intervalMs: 60_000 });
      assert.deepEqual(general('embedded_snapshot=state/store.bin').embeddedSnapshot, { path: '/etc/asterisk/state/store.bin', configured: true, intervalMs: 60_000 });
      assert.equal(general('embedded_snapshot=no').embeddedSnapshot, null);
      assert.equal(general('embedded_snapshot=off').embeddedSnapshot, null);
      assert.deepEqual(general('embedded_snapshot=yes').embeddedSnapshot, defaultSettings().embeddedSnapshot);
      assert.deepEqual(general('embedded_snapshot_interval=5').embeddedSnapshot?.intervalMs, 5000);
      assert.deepEqual(general('embedded_snapshot_interval=0.5').embeddedSnapshot?.intervalMs, 500);
      assert.deepEqual(general('embedded_snapshot_interval=0').embeddedSnapshot?.intervalMs, 0);
      throwsAt(() => general('embedded_snapshot_interval=often'), MAIN, 2, /embedded_snapshot_interval/);
      throwsAt(() => general('embedded_snapshot_interval=100000'), MAIN, 2, /from 0 to 86400/);
      throwsAt(() => general('embedded_snapshot=/var/lib/res-memcached/'), MAIN, 2, /not a directory/);
    });

    it('embedded_max_memory: MiB for the embedded store', () => {
      assert.equal(general('embedded_max_memory=8').embeddedMaxBytes, 8 * 1_048_576);
      throwsAt(() => general('embedded_max_memory=0'), MAIN, 2, /from 1 to/);
      throwsAt(() => general('embedded_max_memory=lots'), MAIN, 2, /embedded_max_memory/);
    });

    it('node_id: printable ASCII without spaces, default the host name; lease_ttl: 1 s to 30 days', () => {
      assert.equal(general('node_id=pbx-a.example').nodeId, 'pbx-a.example');
      assert.equal(defaultSettings().nodeId, hostname());
      for (const bad of ['"a b"', 'x'.repeat(65), 'é']) throwsAt(() => general(`node_id=${bad}`), MAIN, 2, /node_id=/);
      assert.equal(general('lease_ttl=30').leaseTtl, 30);
      for (const bad of ['0', '-1', '2592001', 'soon']) throwsAt(() => general(`lease_ttl=${bad}`), MAIN, 2, /lease_ttl=/);
    });

    it('result_format: number or name', () => {
      assert.equal(general('result_format=name').resultFormat, 'name');
      assert.equal(general('result_format=NUMBER').resultFormat, 'number');
      throwsAt(() => general('result_format=text'), MAIN, 2, /one of number, name/);
    });

    it('protocol=: binary, text or meta; binary_proto= is its yes/no spelling, and the two must agree', () => {
      for (const name of ['binary', 'text', 'meta'] as const) {
        const s = general(`protocol=${name}`);
        assert.equal(s.protocol, name);
        assert.equal(s.binaryProto, name === 'binary');
        assert.equal(clientOptionsFromSettings(s).protocol, name);
      }
      assert.equal(general('protocol=META').protocol, 'meta');
      throwsAt(() => general('ttl=1', 'protocol=ascii'), MAIN, 3, /protocol=ascii: expected one of binary, text, meta/);
      // Agreeing lines are fine, in either order.
      assert.equal(general('binary_proto=no', 'protocol=text').protocol, 'text');
      assert.equal(general('protocol=binary', 'binary_proto=yes').protocol, 'binary');
      // Disagreeing ones name both lines: binary_proto=no means text, not meta.
      throwsAt(() => general('binary_proto=no', 'ttl=1', 'protocol=meta'), MAIN, 4, new RegExp(`^protocol=meta disagrees with binary_proto=no at ${MAIN}:2 \\(which means protocol=text\\)`));
      throwsAt(() => general('protocol=text', 'binary_proto=yes'), MAIN, 2, new RegExp(`binary_proto=yes at ${MAIN}:3`));
      throwsAt(
        () => settingsOf('[general]\nprotocol=binary\n#include "more.conf"\n', { '/etc/asterisk/more.conf': 'binary_proto=off\n' }),
        MAIN,
        2,
        /binary_proto=off at \/etc\/asterisk\/more\.conf:1/,
      );
      // An empty protocol= falls back to binary_proto=, with a warning.
      const empty = general('binary_proto=no', 'protocol=');
      assert.equal(empty.protocol, 'text');
      assert.deepEqual(empty.warnings.map((w) => [w.line, w.message]), [[3, 'protocol= is empty; using the default (text)']]);
    });

    it('SASL: both names, binary protocol only', () => {
      assert.deepEqual(general('sasl_username=asterisk', 'sasl_password=s3cr;t').sasl, { username: 'asterisk', password: 's3cr' });
      assert.deepEqual(general('sasl_username=asterisk', 'sasl_password=s3c\\;r3t').sasl, { username: 'asterisk', password: 's3c;r3t' });
      throwsAt(() => general('sasl_username=asterisk'), MAIN, 2, /both sasl_username= and sasl_password=/);
      throwsAt(() => general('ttl=1', 'sasl_password=x'), MAIN, 3, /both/);
      throwsAt(() => general('binary_proto=no', 'sasl_username=u', 'sasl_password=p'), MAIN, 3, /binary_proto=yes/);
      for (const name of ['text', 'meta']) {
        throwsAt(() => general('sasl_username=u', 'sasl_password=p', `protocol=${name}`), MAIN, 2, new RegExp(`^SASL needs the binary protocol.* no SASL in the ${name} protocol \\(protocol=${name} at ${MAIN}:4\\)`));
      }
      assert.deepEqual(general('protocol=binary', 'sasl_username=u', 'sasl_password=p').sasl, { username: 'u', password: 'p' });
      assert.equal(general('sasl_username=', 'sasl_password=').sasl, null);
    });

    it('TLS: off by default; paths relative to the config file; cert and key go together', () => {
      const on = general('tls=yes', 'tls_ca=certs/ca.pem', 'tls_cert=/etc/ssl/c.pem', 'tls_key=/etc/ssl/k.pem', 'tls_verify=no', 'tls_servername=mc.example.com');
      assert.deepEqual(on.tls, {
        enabled: true,
        caFile: '/etc/asterisk/certs/ca.pem',
        certFile: '/etc/ssl/c.pem',
        keyFile: '/etc/ssl/k.pem',
        verify: false,
        serverName: 'mc.example.com',
      });
      assert.deepEqual(general('tls=yes').tls, { enabled: true, verify: true });
      throwsAt(() => general('tls=yes', 'tls_cert=/c.pem'), MAIN, 3, /both tls_cert= and tls_key=/);
      throwsAt(() => general('tls=yes', 'tls_key=/k.pem'), MAIN, 3, /both tls_cert= and tls_key=/);
      throwsAt(() => general('tls=sometimes'), MAIN, 2, /yes or no/);
      const off = general('tls_ca=/ca.pem');
      assert.deepEqual(off.tls, { enabled: false, verify: true });
      assert.match(off.warnings[0]?.message ?? '', /tls_ca= has no effect while tls=no/);
    });
  });

  describe('server=', () => {
    const server = (text: string) => {
      const s = general(`server=${text}`).servers[0];
      assert.ok(s);
      const { file, line, ...rest } = s;
      assert.equal(file, MAIN);
      assert.equal(line, 2);
      return rest;
    };

    it('takes libmemcached\'s forms: host, host:port, /?weight, [IPv6]:port, bare IPv6, Unix sockets', () => {
      assert.deepEqual(server('localhost'), { kind: 'tcp', host: 'localhost', port: 11211, weight: 1, text: 'localhost' });
      assert.deepEqual(server('10.0.0.5:11212'), { kind: 'tcp', host: '10.0.0.5', port: 11212, weight: 1, text: '10.0.0.5:11212' });
      assert.deepEqual(server('mc1.example.com:11211/?3'), { kind: 'tcp', host: 'mc1.example.com', port: 11211, weight: 3, text: 'mc1.example.com:11211/?3' });
      assert.deepEqual(server('mc1/?2'), { kind: 'tcp', host: 'mc1', port: 11211, weight: 2, text: 'mc1/?2' });
      assert.deepEqual(server('[::1]:11212'), { kind: 'tcp', host: '::1', port: 11212, weight: 1, text: '[::1]:11212' });
      assert.deepEqual(server('[2001:db8::5]:11213/?4'), { kind: 'tcp', host: '2001:db8::5', port: 11213, weight: 4, text: '[2001:db8::5]:11213/?4' });
      assert.deepEqual(server('[::1]'), { kind: 'tcp', host: '::1', port: 11211, weight: 1, text: '[::1]' });
      assert.deepEqual(server('2001:db8::5'), { kind: 'tcp', host: '2001:db8::5', port: 11211, weight: 1, text: '2001:db8::5' });
      assert.deepEqual(server('/var/run/memcached.sock'), { kind: 'unix', host: '/var/run/memcached.sock', port: 0, weight: 1, text: '/var/run/memcached.sock' });
      assert.deepEqual(server('/var/run/memcached.sock/?5'), { kind: 'unix', host: '/var/run/memcached.sock', port: 0, weight: 5, text: '/var/run/memcached.sock/?5' });
      assert.deepEqual(server('host:11211/?0'), { kind: 'tcp', host: 'host', port: 11211, weight: 1, text: 'host:11211/?0' });
      assert.deepEqual(server('host:11211/?4294967295'), { kind: 'tcp', host: 'host', port: 11211, weight: 4294967295, text: 'host:11211/?4294967295' });
      assert.deepEqual(server('  spaced:1  ; comment'), { kind: 'tcp', host: 'spaced', port: 1, weight: 1, text: 'spaced:1' });
    });

    it('keeps every server= in order, with its line', () => {
      const s = general('server=a', 'ttl=1', 'server=b:2', 'server=/s.sock');
      assert.deepEqual(s.servers.map((x) => [x.text, x.line]), [['a', 2], ['b:2', 4], ['/s.sock', 5]]);
    });

    it('refuses bad addresses at their line', () => {
      const cases: Array<[string, RegExp]> = [
        ['', /server= needs an address/],
        ['host:', /bad port/],
        ['host:0', /bad port/],
        ['host:65536', /bad port/],
        ['host:port', /bad port/],
        ['host:11211:2', /bad server address/],
        ['[::1', /unterminated \[/],
        ['[::1]x', /unexpected/],
        ['[::1]:', /bad port/],
        ['bad_host!', /not a host name/],
        ['host:11211/?x', /bad weight "x"/],
        ['host:11211/?abc', /bad weight "abc"/],
        ['host/?', /bad weight ""/],
        ['host:11211/?-1', /bad weight/],
        ['host:11211/?4294967296', /bad weight/],
        ['/run/mc.sock/?x', /bad weight "x"/],
      ];
      for (const [text, reason] of cases) throwsAt(() => general('ttl=0', `server=${text}`), MAIN, 3, reason);
    });

    it('warns about a server listed twice', () => {
      const s = general('server=a:11211', 'server=A', 'server=a:11212');
      assert.equal(s.servers.length, 3);
      assert.equal(s.warnings.length, 1);
      assert.equal(s.warnings[0]?.line, 3);
      assert.match(s.warnings[0]?.message ?? '', /repeats .*memcached\.conf:2/);
    });
  });

  describe('[agi]', () => {
    const agi = (...lines: string[]): Settings => settingsOf(['[agi]', ...lines].join('\n'));

    it('reads every key', () => {
      const s = agi('bindaddr=0.0.0.0', 'port=4574', 'permit=10.0.0.0/8', 'deny=10.9.0.0/255.255.0.0', 'max_sessions=50', 'env_timeout=2000', 'max_line_length=16384', 'answer_timeout=3000');
      assert.equal(s.agi.bindaddr, '0.0.0.0');
      assert.equal(s.agi.port, 4574);
      assert.deepEqual(s.agi.permit.map(String), ['10.0.0.0/8']);
      assert.deepEqual(s.agi.deny.map(String), ['10.9.0.0/255.255.0.0']);
      assert.deepEqual(s.agi.rules.map((r) => [r.action, r.cidr.text, r.line]), [['permit', '10.0.0.0/8', 4], ['deny', '10.9.0.0/255.255.0.0', 5]]);
      assert.equal(s.agi.maxSessions, 50);
      assert.equal(s.agi.envTimeoutMs, 2000);
      assert.equal(s.agi.maxLineLength, 16384);
      assert.equal(s.agi.answerTimeoutMs, 3000);
      assert.deepEqual(s.warnings, []);
    });

    it('takes IP addresses (IPv6 without brackets) and localhost for bindaddr', () => {
      assert.equal(agi('bindaddr=[::1]').agi.bindaddr, '::1');
      assert.equal(agi('bindaddr=::').agi.bindaddr, '::');
      assert.equal(agi('bindaddr=fe80::1%eth0').agi.bindaddr, 'fe80::1%eth0');
      assert.equal(agi('bindaddr=localhost').agi.bindaddr, 'localhost');
      assert.equal(agi('bindaddr=LocalHost').agi.bindaddr, 'LocalHost');
      throwsAt(() => agi('bindaddr=not an address'), MAIN, 2, /an IP address to listen on/);
    });

    it('refuses a bindaddr that is no IP address at its line, as Asterisk\'s bindaddr does', () => {
      // Such a value was taken and only failed at listen (getaddrinfo ENOTFOUND), with no line.
      for (const bad of ['not-an-ip', 'pbx.example.com', '10.0.0', '10.0.0.256', '1.2.3.4:4573', '[::1', '::1%', '10.0.0.1%eth0']) {
        throwsAt(() => agi('port=4574', `bindaddr=${bad}`), MAIN, 3, /an IP address to listen on .* host names are not resolved/);
      }
    });

    it('keeps the lines of bindaddr= and port= for a listen failure to name', () => {
      const s = agi('max_sessions=5', 'port=4574', 'bindaddr=10.1.1.1');
      assert.deepEqual(s.agi.bindaddrAt, { file: MAIN, line: 4 });
      assert.deepEqual(s.agi.portAt, { file: MAIN, line: 3 });
      assert.equal(agi('max_sessions=5').agi.portAt, null);
    });

    it('validates numbers and networks at their line', () => {
      throwsAt(() => agi('port=0'), MAIN, 2, /from 1 to 65535/);
      throwsAt(() => agi('port=65536'), MAIN, 2, /from 1 to 65535/);
      throwsAt(() => agi('max_sessions=0'), MAIN, 2, /from 1 to/);
      throwsAt(() => agi('env_timeout=0'), MAIN, 2, /from 1 to/);
      throwsAt(() => agi('max_line_length=100'), MAIN, 2, /from 1024 to/);
      throwsAt(() => agi('answer_timeout=none'), MAIN, 2, /answer_timeout/);
      throwsAt(() => agi('permit=10.0.0.0/8', 'deny=pbx.example.com'), MAIN, 3, /deny=pbx\.example\.com: .*host names are not allowed/);
      throwsAt(() => agi('permit=10.0.0.0/33'), MAIN, 2, /prefix length/);
      throwsAt(() => agi('permit='), MAIN, 2, /permit= needs a network/);
    });

    it('warns about host bits in a network, and about an open listener with no rules', () => {
      assert.match(agi('permit=10.1.2.3/8').warnings[0]?.message ?? '', /host bits/);
      const open = agi('bindaddr=0.0.0.0');
      assert.equal(open.warnings.length, 1);
      assert.match(open.warnings[0]?.message ?? '', /accepts every client/);
      assert.deepEqual(agi('bindaddr=127.0.0.2').warnings, []);
      assert.deepEqual(agi('bindaddr=::1').warnings, []);
      assert.deepEqual(agi('bindaddr=0.0.0.0', 'permit=10.0.0.0/8').warnings, []);
    });
  });

  describe('warnings', () => {
    it('an unknown key that is a misspelt known one says which (distribtion= silently moved keys)', () => {
      const s = settingsOf('[general]\ndistribtion=modula\nkeyprefx=a:\nserver=a\n[agi]\nprot=4574\nbindadr=0.0.0.0\nmax_session=5\nfrobnicate=1\n');
      assert.deepEqual(s.warnings.map((w) => [w.line, w.message]), [
        [2, 'unknown key distribtion= in [general]; ignored (did you mean distribution=?)'],
        [3, 'unknown key keyprefx= in [general]; ignored (did you mean keyprefix=?)'],
        [6, 'unknown key prot= in [agi]; ignored (did you mean port=?)'],
        [7, 'unknown key bindadr= in [agi]; ignored (did you mean bindaddr=?)'],
        [8, 'unknown key max_session= in [agi]; ignored (did you mean max_sessions=?)'],
        [9, 'unknown key frobnicate= in [agi]; ignored'],
      ]);
      assert.equal(s.distribution, 'consistent');
    });

    it('unknown keys and sections are warnings with file and line, never errors', () => {
      const s = settingsOf('[general]\nttl=5\ncolour=blue\n[extensions]\nexten=>s,1,NoOp\n[agi]\nfoo=1\n');
      assert.equal(s.ttl, 5);
      assert.deepEqual(
        s.warnings.map((w) => [w.line, w.message]),
        [
          [4, 'unknown section [extensions]; ignored (known: [general], [agi], [http], [ami])'],
          [3, 'unknown key colour= in [general]; ignored'],
          [7, 'unknown key foo= in [agi]; ignored'],
        ],
      );
      assert.equal(formatWarning(s.warnings[0]!), `${MAIN}:4: unknown section [extensions]; ignored (known: [general], [agi], [http], [ami])`);
    });

    it('a key in the wrong section says where it belongs', () => {
      const s = settingsOf('[general]\nport=4574\n[agi]\nserver=a\n');
      assert.equal(s.agi.port, 4573);
      assert.deepEqual(s.servers, []);
      assert.deepEqual(s.warnings.map((w) => [w.line, w.message]), [
        [2, 'port= belongs in [agi], not [general]; ignored'],
        [4, 'server= belongs in [general], not [agi]; ignored'],
      ]);
    });

    it('a repeated single-valued key: the last wins, the earlier lines are warned about', () => {
      const s = general('ttl=1', 'ttl=2', 'ttl=3');
      assert.equal(s.ttl, 3);
      assert.deepEqual(s.warnings.map((w) => w.line), [2, 3]);
      assert.match(s.warnings[0]?.message ?? '', /ttl= is set again at .*memcached\.conf:4; that later line wins/);
    });

    it('an empty value means the default, with a warning', () => {
      const s = general('ttl=', 'hash=', 'binary_proto=');
      assert.equal(s.ttl, 0);
      assert.equal(s.hash, 'default');
      assert.equal(s.binaryProto, true);
      assert.deepEqual(s.warnings.map((w) => [w.line, w.message]), [
        [4, 'binary_proto= is empty; using the default (yes)'],
        [2, 'ttl= is empty; using the default (0)'],
        [3, 'hash= is empty; using the default (default)'],
      ]);
    });

    it('keys and section names are case-insensitive; several [general] sections are read as one', () => {
      const s = settingsOf('[GENERAL]\nTTL=7\nServer=a\n[agi]\nPort=4000\n[General]\nserver=b\n');
      assert.equal(s.ttl, 7);
      assert.deepEqual(s.servers.map((x) => x.host), ['a', 'b']);
      assert.equal(s.agi.port, 4000);
      assert.deepEqual(s.warnings, []);
    });

    it('settingsFromConfig validates an already parsed config', () => {
      const parsed = parseConfigText('[general]\nttl=12\n', '/x/memcached.conf', { fs: inMemoryConfigFs({}) });
      const s = settingsFromConfig(parsed);
      assert.equal(s.ttl, 12);
      assert.equal(s.source, '/x/memcached.conf');
    });
  });
});

describe('[ami] (the link to Asterisk\'s Manager Interface)', () => {
  it('is off by default, with Asterisk\'s own defaults for host and port', () => {
    const s = settingsOf('[general]\n');
    assert.deepEqual(s.ami, { enabled: false, host: '127.0.0.1', port: 5038, username: '', secret: '', auth: 'plain', connectTimeoutMs: 5000, reconnectMaxMs: 30_000 });
  });

  it('is on once a username is given, and takes every key', () => {
    const s = settingsOf('[ami]\nhost=127.0.0.1\nport=5039\nusername=bar\nsecret=bar-secret\nauth=md5\nconnect_timeout=2000\nreconnect_max=10000\n');
    assert.deepEqual(s.ami, { enabled: true, host: '127.0.0.1', port: 5039, username: 'bar', secret: 'bar-secret', auth: 'md5', connectTimeoutMs: 2000, reconnectMaxMs: 10_000 });
    assert.deepEqual(s.warnings, []);
  });

  it('enabled=no keeps a configured link off', () => {
    assert.equal(settingsOf('[ami]\nusername=bar\nsecret=x\nenabled=no\n').ami.enabled, false);
  });

  it('enabled=yes without a username is an error at its line', () => {
    throwsAt(() => settingsOf('[ami]\nhost=127.0.0.1\nenabled=yes\n'), MAIN, 3, /enabled=yes needs username=/);
  });

  it('a username without a secret is an error at the username line', () => {
    throwsAt(() => settingsOf('[general]\n[ami]\nusername=bar\n'), MAIN, 3, /needs secret=/);
  });

  it('becomes AmiClient options only when enabled, with reconnect_max as the backoff cap', () => {
    assert.equal(amiClientOptionsFromSettings(settingsOf('[general]\n').ami), null);
    const options = amiClientOptionsFromSettings(settingsOf('[ami]\nport=5039\nusername=bar\nsecret=s\nauth=md5\nreconnect_max=8000\n').ami);
    assert.ok(options !== null);
    assert.deepEqual(options, { host: '127.0.0.1', port: 5039, username: 'bar', secret: 's', authType: 'md5', connectTimeoutMs: 5000, backoff: { initialMs: 500, maxMs: 8000 } });
  });

  it('bad values and unknown keys name their line', () => {
    throwsAt(() => settingsOf('[ami]\nusername=bar\nsecret=s\nport=70000\n'), MAIN, 4, /port=70000: expected a whole number from 1 to 65535/);
    throwsAt(() => settingsOf('[ami]\nauth=sha1\n'), MAIN, 2, /auth=sha1: expected one of plain, md5/);
    const s = settingsOf('[ami]\nusername=bar\nsecret=s\nusrname=x\n');
    assert.deepEqual(s.warnings.map((w) => [w.line, w.message]), [[4, 'unknown key usrname= in [ami]; ignored (did you mean username=?)']]);
  });
});

describe('isPermitted (FastAGI access rules)', () => {
  const rules = (...lines: string[]) => settingsOf(['[agi]', 'bindaddr=0.0.0.0', ...lines].join('\n')).agi;

  it('with no permit= or deny=, everyone may connect', () => {
    const agi = defaultSettings().agi;
    for (const a of ['127.0.0.1', '10.1.2.3', '::1', '::ffff:8.8.8.8']) assert.ok(isPermitted(a, agi), a);
  });

  it('deny-only: those denied are out, everyone else in (as in Asterisk)', () => {
    const agi = rules('deny=10.0.0.0/8');
    assert.ok(!isPermitted('10.1.2.3', agi));
    assert.ok(!isPermitted('::ffff:10.1.2.3', agi));
    assert.ok(isPermitted('192.168.1.1', agi));
    assert.ok(isPermitted('::1', agi));
  });

  it('permit-only: only those permitted', () => {
    const agi = rules('permit=192.168.1.0/24', 'permit=::1');
    assert.ok(isPermitted('192.168.1.20', agi));
    assert.ok(isPermitted('::ffff:192.168.1.20', agi));
    assert.ok(isPermitted('::1', agi));
    assert.ok(!isPermitted('192.168.2.20', agi));
    assert.ok(!isPermitted('127.0.0.1', agi));
  });

  it('the Asterisk idiom deny-all then permit works as in manager.conf', () => {
    const agi = rules('deny=0.0.0.0/0.0.0.0', 'permit=10.0.0.0/255.0.0.0', 'permit=127.0.0.1/255.255.255.255');
    assert.ok(isPermitted('10.20.30.40', agi));
    assert.ok(isPermitted('::ffff:127.0.0.1', agi));
    assert.ok(!isPermitted('172.16.0.1', agi));
  });

  it('the last matching rule wins', () => {
    const agi = rules('permit=10.0.0.0/8', 'deny=10.1.0.0/16', 'permit=10.1.2.3');
    assert.ok(isPermitted('10.2.0.1', agi));
    assert.ok(!isPermitted('10.1.0.1', agi));
    assert.ok(isPermitted('10.1.2.3', agi));
    assert.ok(!isPermitted('11.0.0.1', agi), 'no rule matches and there are permit lines');
    const reversed = rules('permit=10.1.2.3', 'deny=10.0.0.0/8');
    assert.ok(!isPermitted('10.1.2.3', reversed));
  });

  it('keeps file order across #include', () => {
    const agi = settingsOf('[agi]\nbindaddr=0.0.0.0\ndeny=0.0.0.0/0\n#include acl.conf\ndeny=10.6.6.6\n', {
      '/etc/asterisk/acl.conf': 'permit=10.0.0.0/8\n',
    }).agi;
    assert.deepEqual(agi.rules.map((r) => r.cidr.text), ['0.0.0.0/0', '10.0.0.0/8', '10.6.6.6']);
    assert.ok(isPermitted('10.1.1.1', agi));
    assert.ok(!isPermitted('10.6.6.6', agi));
  });

  it('IPv4 rules do not cover native IPv6 clients; ::/0 covers everyone', () => {
    assert.ok(isPermitted('2001:db8::1', rules('deny=0.0.0.0/0')));
    assert.ok(!isPermitted('2001:db8::1', rules('deny=::/0')));
    assert.ok(!isPermitted('10.0.0.1', rules('deny=::/0')));
  });

  it('refuses an address that is not one when there are rules', () => {
    const agi = rules('deny=10.0.0.0/8');
    assert.ok(!isPermitted('', agi));
    assert.ok(!isPermitted('undefined', agi));
    assert.ok(isPermitted('', defaultSettings().agi));
  });
});

describe('memcached.conf.sample (shipped)', () => {
  it('loads without a warning and every value it shows is the default', async () => {
    const { loadSettings, defaultSettings } = await import('../../src/config/settings.js');
    const { join } = await import('node:path');
    const { repoRoot } = await import('../support/fixtures.js');
    const sample = loadSettings(join(repoRoot(), 'memcached.conf.sample'));
    assert.deepEqual(sample.warnings, []);
    // Where bindaddr= and port= were read is not a value: the defaults have none.
    assert.deepEqual(
      { ...sample, source: null, agi: { ...sample.agi, bindaddrAt: null, portAt: null }, http: { ...sample.http, bindaddrAt: null, portAt: null } },
      defaultSettings(),
    );
  });
});

describe('[http]', () => {
  it('defaults: on, 127.0.0.1:4574, no rules', () => {
    const d = settingsOf('').http;
    assert.deepEqual([d.enabled, d.bindaddr, d.port, d.rules.length, d.maxConnections], [true, '127.0.0.1', 4574, 0, 256]);
  });
  it('reads its own keys and permit=/deny= as [agi] does', () => {
    const h = settingsOf('[http]\nenabled=no\nbindaddr=::1\nport=9100\ndeny=0.0.0.0/0\npermit=127.0.0.1\nmax_connections=5\nrequest_timeout=2000\nkeepalive_timeout=300\n').http;
    assert.deepEqual([h.enabled, h.bindaddr, h.port, h.maxConnections, h.requestTimeoutMs, h.keepAliveTimeoutMs], [false, '::1', 9100, 5, 2000, 300]);
    assert.ok(isPermitted('127.0.0.1', h));
    assert.ok(!isPermitted('10.1.2.3', h));
    assert.equal(h.portAt?.line, 4);
  });
  it('a bad port names its line', () => {
    throwsAt(() => settingsOf('[http]\nport=70000\n'), MAIN, 2, /port=70000/);
  });
});
