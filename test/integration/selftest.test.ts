// The shipped dialplan include, extensions_mcd.conf, run the way Asterisk would run it (by
// test/support/mini-dialplan.ts, on a FakeChannel) against the daemon: the [mcd-selftest] port of
// the C module's test macro passes on the embedded store and on real memcached over both
// protocols, with result codes as numbers and as names; every subroutine turns a daemon that does
// not answer (nothing listening, the connection refused by deny=, the session broken) into
// MCDRESULT=3, whatever MCDRESULT held before; the subroutines pass exactly the arguments each
// command takes; README's mcdgets/mcdcas loop, pasted as it stands, keeps 50 racing channels
// exact. And the interpreter itself is tested, so it cannot
// pass these by doing nothing.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { FakeChannel, type AgiRun } from '../support/fake-asterisk.js';
import { startAgiRelay } from '../support/agi-relay.js';
import { startDaemon } from '../support/daemon.js';
import { repoRoot } from '../support/fixtures.js';
import { freePort, startMemcached } from '../support/memcached.js';
import {
  DialplanError,
  evaluateExpression,
  parseDialplan,
  runDialplan,
  separateArgs,
  substituteVariables,
  type RunResult,
} from '../support/mini-dialplan.js';

const CONF_TEXT = readFileSync(join(repoRoot(), 'extensions_mcd.conf'), 'utf8');
const CONF = parseDialplan(CONF_TEXT, join(repoRoot(), 'extensions_mcd.conf'));

/** What went over AGI, readable: for assertion messages. */
function explain(r: RunResult): string {
  const lines: string[] = [];
  for (const run of r.agiRuns) {
    lines.push(`--- ${run.where} AGI(${[run.url, ...run.args].join(',')}) → ${run.status}`);
    for (const e of run.transcript) {
      if (e.dir === 'env') continue;
      if (e.dir === 'event') lines.push(`   (${e.what})`);
      else if (e.dir === 'cmd') lines.push(`   << ${JSON.stringify(e.line.toString('utf8'))}`);
      else lines.push(`   >> ${JSON.stringify(e.data.toString('utf8'))}`);
    }
  }
  lines.push('--- verbose:', ...r.verbose.map((v) => `   ${v}`));
  if (r.warnings.length > 0) lines.push('--- warnings:', ...r.warnings.map((w) => `   ${w}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The interpreter

describe('mini-dialplan: the interpreter', () => {
  test('argument splitting follows __ast_app_separate_args', () => {
    // STANDARD (AGI, Verbose): quotes group and go, a backslash makes the next character literal.
    assert.deepEqual(separateArgs('a,"b,c",d\\,e,x\\\\y', ',', true), ['a', 'b,c', 'd,e', 'x\\y']);
    // RAW (Gosub): the same split, quotes and backslashes kept.
    assert.deepEqual(separateArgs('a,"b,c",d\\,e', ',', false), ['a', '"b,c"', 'd\\,e']);
    // Parentheses and brackets nest; spaces are kept; a trailing comma is one more empty argument.
    assert.deepEqual(separateArgs('Set(x=a,b), y ,[1,2],', ',', true), ['Set(x=a,b)', ' y ', '[1,2]', '']);
    assert.deepEqual(separateArgs('', ',', true), []);
    assert.deepEqual(separateArgs('k,', ',', true), ['k', '']);
    assert.deepEqual(separateArgs(',', ',', true), ['', '']);
    // The last slot takes the raw remainder.
    assert.deepEqual(separateArgs('0,a,"b",c', ',', true, 2), ['0', 'a,"b",c']);
  });

  test('expressions: operators, precedence, and quoted strings compared with their quotes', () => {
    const cases: Array<[string, string]> = [
      ['"a b" = "a b"', '1'],
      ['"a" = a', '0'], // Asterisk keeps the quotes in the token
      ['"" = ""', '1'],
      ['"hello world!" = "hello world!"', '1'],
      ['"x" != "y"', '1'],
      ['abc != abc', '0'],
      ['1 + 2 * 3', '7'],
      ['(1 + 2) * 3', '9'],
      ['678 + -12', '666'],
      ['5 - 3 - 1', '1'],
      ['-3 + 5', '2'],
      ['7 / 2', '3.5'],
      ['7 % 4', '3'],
      ['10 < 9', '0'],
      ['"10" < "9"', '1'], // strings: compared bytewise
      ['1 & 2', '1'],
      ['0 & 1', '0'],
      ['0 | 7', '7'],
      ['3 | 7', '3'],
      ['!0', '1'],
      ['!5', '0'],
      ['1 = 1 & 2 = 3', '0'],
      ['1 ? yes :: no', 'yes'],
      ['0 ? yes :: no', 'no'],
      ['18446744073709551615 = 18446744073709551614', '0'],
      ['0 = 0', '1'],
      ['', ''],
      ['   ', ''],
      ['word', 'word'],
      ['"quoted"', '"quoted"'],
    ];
    for (const [expr, want] of cases) assert.equal(evaluateExpression(expr), want, `$[${expr}]`);
    // Asterisk warns and goes on; so do we, and say so.
    const warnings: string[] = [];
    assert.equal(evaluateExpression('abc + 1', warnings), '1');
    assert.equal(evaluateExpression('1 / 0', warnings), '2147483647');
    assert.equal(warnings.length, 2);
    // Loud where Asterisk would quietly give "0".
    assert.throws(() => evaluateExpression(' + 1'), DialplanError);
    assert.throws(() => evaluateExpression('(1 + 2'), DialplanError);
    assert.throws(() => evaluateExpression('1 2'), DialplanError);
    assert.throws(() => evaluateExpression('abc : a'), /not supported/);
  });

  test('variable substitution: ${VAR}, substrings, nesting, functions, $[...]', () => {
    const ch = new FakeChannel({ variables: { X: 'hello', N: 'X', A: '40', B: '2', EMPTY: '' } });
    ch.globals.set('G', Buffer.from('global'));
    const s = (t: string): string => substituteVariables(t, ch);
    assert.equal(s('<${X}>'), '<hello>');
    assert.equal(s('${UNSET}|${EMPTY}|${G}'), '||global');
    assert.equal(s('${X:1:3} ${X:-2} ${X:2}'), 'ell lo llo');
    assert.equal(s('${${N}}'), 'hello');
    assert.equal(s('${LEN(${X})} ${LEN()} ${LEN(${UNSET})}'), '5 0 0');
    assert.equal(s('$[${A} + ${B}]'), '42');
    assert.equal(s('$[$[${A} + ${B}] * 2]'), '84');
    assert.equal(s('$["${X}" = "hello"]$["${EMPTY}" = ""]'), '11');
    assert.equal(s('cost: $5 $ ${X}$'), 'cost: $5 $ hello$');
    assert.equal(s('${IF($[${A} > 10]?big:small)}'), 'big');
    assert.equal(s('${EXISTS(${X})}${ISNULL(${X})}'), '10');
    // The hazard extensions_mcd.conf avoids: IF() splits its branches at the first ':'.
    assert.equal(s('${IF(1?10.0.0.5:4573:x)}'), '10.0.0.5');
    assert.throws(() => s('${NOSUCHFUNC(1)}'), /NOSUCHFUNC\(\) is not supported/);
    assert.throws(() => s('${X'), /missing '}'/);
    assert.throws(() => s('$[1 + 1'), /missing ']'/);
  });

  test('applications: Set, ExecIf, GotoIf, Goto, Gosub with ARGn scoping, LOCAL(), Return, Verbose', async () => {
    const plan = `
[main]
exten => s,1,Set(ARG1=outer)
 same => n,Set(KEEP=kept)
 same => n,Gosub(sub,s,1(one,"two,2", three ,))
 same => n,Verbose(0,after: ARG1=\${ARG1} ARGC=\${ARGC} KEEP=\${KEEP} RET=\${GOSUB_RETVAL} L=\${L})
 same => n,ExecIf($[1 = 1]?Set(EX=a:b))
 same => n,ExecIf($[1 = 2]?Set(EX2=yes):Set(EX2=no))
 same => n,ExecIf(0?Set(EX3=yes))
 same => n,GotoIf($["\${EX2}" = "no"]?skip)
 same => n,Set(SKIPPED=no)
 same => n(skip),Goto(tail,1)
 same => n,Set(UNREACHED=1)
exten => tail,1,Verbose(2,commas, kept: "as is", \${EX} \${EX2} \${EX3}x \${SKIPPED}x)
 same => n,Hangup()
 same => n,Set(AFTERHANGUP=1)

[sub]
exten => s,1,Verbose(0,in sub: [\${ARG1}] [\${ARG2}] [\${ARG3}] [\${ARG4}] ARGC=\${ARGC})
 same => n,Set(LOCAL(L)=local)
 same => n,Set(LOCAL(KEEP)=shadow)
 same => n,Gosub(inner,s,1(x))
 same => n,Verbose(0,back in sub: [\${ARG1}] [\${ARG2}] L=\${L} KEEP=\${KEEP})
 same => n,Return(done)

[inner]
exten => s,1,Verbose(0,in inner: [\${ARG1}] [\${ARG2}] ARGC=\${ARGC} L=\${L})
 same => n,Return()
`;
    const ch = new FakeChannel();
    const r = await runDialplan(plan, 'main', 's', ch);
    assert.equal(r.end, 'hangup');
    assert.deepEqual(r.verbose, [
      // RAW Gosub arguments: the quotes stay, spaces stay, a trailing comma is an empty ARG4.
      'in sub: [one] ["two,2"] [ three ] [] ARGC=4',
      // An inner Gosub with fewer arguments blanks the outer ones; LOCAL variables are visible.
      'in inner: [x] [] ARGC=1 L=local',
      'back in sub: [one] ["two,2"] L=local KEEP=shadow',
      // After Return the frame's variables are gone and what they shadowed is back.
      'after: ARG1=outer ARGC= KEEP=kept RET=done L=',
      'commas, kept: "as is", a:b no x x',
    ]);
    assert.equal(ch.getVar('SKIPPED'), undefined);
    assert.equal(ch.getVar('UNREACHED'), undefined);
    assert.equal(ch.getVar('AFTERHANGUP'), undefined);
    assert.equal(ch.hungUp, true);
    assert.ok(r.trace.some((l) => l.startsWith('Executing [s@sub:1] Verbose(')));
    assert.deepEqual(r.warnings, []);
  });

  test('loud failures: unknown application, missing label, Return without Gosub, falling off the end', async () => {
    const ch = () => new FakeChannel();
    await assert.rejects(runDialplan('[c]\nexten => s,1,Playback(x)\n', 'c', 's', ch()), /Playback\(\) is not supported/);
    await assert.rejects(runDialplan('[c]\nexten => s,1,Goto(nowhere)\n', 'c', 's', ch()), /no label "nowhere"/);
    await assert.rejects(runDialplan('[c]\nexten => s,1,Gosub(d,s,1)\n', 'c', 's', ch()), /no context \[d\]/);
    await assert.rejects(runDialplan('[c]\nexten => s,1,NoOp\n same => 1,NoOp\n', 'c', 's', ch()), /defined twice/);
    assert.equal((await runDialplan('[c]\nexten => s,1,Return()\n', 'c', 's', ch())).end, 'return-without-gosub');
    assert.equal((await runDialplan('[c]\nexten => s,1,NoOp(a)\n same => n,NoOp(b)\n', 'c', 's', ch())).end, 'fell-off');
  });

  test('Wait() really waits', async () => {
    const started = Date.now();
    await runDialplan('[c]\nexten => s,1,Wait(0.2)\n', 'c', 's', new FakeChannel());
    assert.ok(Date.now() - started >= 190);
  });
});

// ---------------------------------------------------------------------------------------------
// The [mcd] subroutines: what they hand to AGI()

/** A FakeChannel whose AGI() only records the call and answers as a daemon would. */
function recordingChannel(variables: Record<string, string> = {}): { ch: FakeChannel; calls: Array<{ url: string; args: string[] }> } {
  const ch = new FakeChannel({ variables });
  const calls: Array<{ url: string; args: string[] }> = [];
  ch.agi = async (url: string, args: ReadonlyArray<string | Buffer> = []): Promise<AgiRun> => {
    calls.push({ url, args: args.map((a) => a.toString()) });
    ch.setVar('MCDRESULT', '0');
    ch.setVar('AGISTATUS', 'SUCCESS');
    return { status: 'SUCCESS', transcript: [], commands: [], durationMs: 0 };
  };
  return { ch, calls };
}

/** Every subroutine, once, as Gosub(mcd,...) arguments. */
const EVERY_CALL = [
  'MCD,1(k)',
  'mcdget,1(out,k)',
  'mcdset,1(k,v)',
  'mcdadd,1(k,v)',
  'mcdreplace,1(k,v)',
  'mcdappend,1(k,v)',
  'mcdprepend,1(k,v)',
  'mcddelete,1(k)',
  'mcdtouch,1(k)',
  'mcdtouch,1(k,5)',
  'MCDCOUNTER,1(k)',
  'MCDCOUNTER,1(k,3)',
  'mcdcounterset,1(k,5)',
  'mcdgets,1(out,k)',
  'mcdcas,1(k,5,v)',
];

/** CONF plus a [drive] context that runs `steps` and hangs up. */
function driver(...steps: string[]): string {
  return `${CONF_TEXT}\n[drive]\nexten => s,1,NoOp()\n${steps.map((s) => ` same => n,${s}\n`).join('')} same => n,Hangup()\n`;
}

describe('extensions_mcd.conf: the subroutines', () => {
  test('defines one subroutine per command, named like the command', () => {
    const names = [...(CONF.contexts.get('mcd')?.extensions.keys() ?? [])].sort();
    assert.deepEqual(names, ['MCD', 'MCDCOUNTER', 'mcdadd', 'mcdappend', 'mcdcounterset', 'mcddelete', 'mcdget', 'mcdprepend', 'mcdreplace', 'mcdset', 'mcdtouch', 'mcdgets', 'mcdcas', 'mcdlimit', 'mcdrelease', 'MCDLIMITCOUNT', 'mcdlock', 'mcdunlock'].sort());
    for (const ctx of ['mcd-selftest', 'mcd-selftest-check', 'mcd-selftest-dial', 'mcd-hangup']) assert.ok(CONF.contexts.has(ctx), ctx);
  });

  test('each passes exactly the arguments its command takes, quoted commas joined, to 127.0.0.1 by default', async () => {
    const cases: Array<[string, string, string[]]> = [
      ['MCD,1(k)', 'MCD', ['k']],
      ['mcdget,1(out,k)', 'mcdget', ['out', 'k']],
      ['mcdset,1(k,v)', 'mcdset', ['k', 'v']],
      ['mcdset,1(k,"a,b")', 'mcdset', ['k', 'a,b']],
      ['mcdset,1(k, spaced )', 'mcdset', ['k', ' spaced ']],
      ['mcdset,1(k,)', 'mcdset', ['k', '']],
      ['mcdadd,1(k,v)', 'mcdadd', ['k', 'v']],
      ['mcdreplace,1(k,v)', 'mcdreplace', ['k', 'v']],
      ['mcdappend,1(k, world!)', 'mcdappend', ['k', ' world!']],
      ['mcdprepend,1(k,v)', 'mcdprepend', ['k', 'v']],
      ['mcddelete,1(k)', 'mcddelete', ['k']],
      ['mcdtouch,1(k)', 'mcdtouch', ['k']],
      ['mcdtouch,1(k,30)', 'mcdtouch', ['k', '30']],
      ['MCDCOUNTER,1(k)', 'MCDCOUNTER', ['k']],
      ['MCDCOUNTER,1(k,-12)', 'MCDCOUNTER', ['k', '-12']],
      ['mcdcounterset,1(k,5)', 'mcdcounterset', ['k', '5']],
      ['mcdgets,1(out,k)', 'mcdgets', ['out', 'k']],
      ['mcdcas,1(k,18446744073709551615,v)', 'mcdcas', ['k', '18446744073709551615', 'v']],
      ['mcdcas,1(k,5,"a,b")', 'mcdcas', ['k', '5', 'a,b']],
      ['mcdcas,1(k,5, spaced )', 'mcdcas', ['k', '5', ' spaced ']],
      ['mcdcas,1(k,5,)', 'mcdcas', ['k', '5', '']],
      ['mcdlimit,1(k,10)', 'mcdlimit', ['k', '10']],
      ['mcdrelease,1(k)', 'mcdrelease', ['k']],
      ['MCDLIMITCOUNT,1(k)', 'MCDLIMITCOUNT', ['k']],
      ['mcdlock,1(k)', 'mcdlock', ['k']],
      ['mcdlock,1(k,500)', 'mcdlock', ['k', '500']],
      ['mcdunlock,1(k)', 'mcdunlock', ['k']],
    ];
    for (const [call, script, args] of cases) {
      const { ch, calls } = recordingChannel({ MCD: 'stale', MCDCOUNTER: 'stale', MCDCAS: 'stale', out: 'stale' });
      const r = await runDialplan(driver(`Gosub(mcd,${call})`), 'drive', 's', ch);
      assert.equal(r.end, 'hangup', call);
      assert.deepEqual(calls, [{ url: `agi://127.0.0.1/${script}`, args }], call);
      if (script === 'MCD') assert.equal(ch.getVar('MCD'), '', 'MCD cleared first');
      if (script === 'MCDCOUNTER') assert.equal(ch.getVar('MCDCOUNTER'), '', 'MCDCOUNTER cleared first');
      if (script === 'mcdget' || script === 'mcdgets') assert.equal(ch.getVar('out'), '', 'the named variable cleared first');
      if (script === 'mcdgets') assert.equal(ch.getVar('MCDCAS'), '', 'MCDCAS cleared first');
      assert.equal(ch.getVar('ARG1'), undefined, 'Gosub arguments do not outlive the call');
    }
  });

  test('MCD_DAEMON from [globals] or the channel picks the daemon', async () => {
    const viaGlobal = recordingChannel();
    await runDialplan(driver('Gosub(mcd,mcdset,1(k,v))'), 'drive', 's', viaGlobal.ch, { globals: { MCD_DAEMON: '10.0.0.5:4573' } });
    assert.equal(viaGlobal.calls[0]?.url, 'agi://10.0.0.5:4573/mcdset');
    const viaChannel = recordingChannel({ MCD_DAEMON: '[::1]:4600' });
    await runDialplan(driver('Gosub(mcd,MCD,1(k))'), 'drive', 's', viaChannel.ch, { globals: { MCD_DAEMON: '10.0.0.5:4573' } });
    assert.equal(viaChannel.calls[0]?.url, 'agi://[::1]:4600/MCD');
  });

  /**
   * Runs every subroutine once against `daemon` on a channel where MCDRESULT is 0 and the outputs
   * hold stale values; checks the outputs were cleared and returns, per call, the single AGI()
   * run and what MCDRESULT ended as.
   */
  async function everySubroutine(daemon: string, resultFormat: string | null): Promise<Array<{ call: string; run: AgiRun; result: string | undefined }>> {
    const out: Array<{ call: string; run: AgiRun; result: string | undefined }> = [];
    for (const call of EVERY_CALL) {
      const ch = new FakeChannel({ variables: { MCDRESULT: '0', MCD: 'stale', MCDCOUNTER: 'stale', MCDCAS: 'stale', out: 'stale' } });
      const globals: Record<string, string> = { MCD_DAEMON: daemon, ...(resultFormat === null ? {} : { MCD_RESULT_FORMAT: resultFormat }) };
      const r = await runDialplan(driver(`Gosub(mcd,${call})`), 'drive', 's', ch, { globals });
      assert.equal(r.end, 'hangup', call);
      assert.equal(r.agiRuns.length, 1, call);
      assert.equal(ch.getVar('AGISTATUS'), r.agiRuns[0]!.status, call);
      if (call.startsWith('MCD,')) assert.equal(ch.getVar('MCD'), '', call);
      if (call.startsWith('MCDCOUNTER,')) assert.equal(ch.getVar('MCDCOUNTER'), '', call);
      if (call.startsWith('mcdget,') || call.startsWith('mcdgets,')) assert.equal(ch.getVar('out'), '', call);
      if (call.startsWith('mcdgets,')) assert.equal(ch.getVar('MCDCAS'), '', call);
      out.push({ call, run: r.agiRuns[0]!, result: ch.getVar('MCDRESULT') });
    }
    return out;
  }

  for (const [format, expected] of [[null, '3'], ['name', 'MEMCACHED_CONNECTION_FAILURE']] as const) {
    const as = format === null ? '' : ` (MCD_RESULT_FORMAT=${format})`;

    test(`an unreachable daemon gives AGISTATUS=FAILURE and MCDRESULT=${expected}, and the outputs empty, for every subroutine${as}`, async () => {
      // Port 1, where nothing listens: a free port could be taken by another test meanwhile.
      for (const { call, run, result } of await everySubroutine('127.0.0.1:1', format)) {
        assert.equal(run.status, 'FAILURE', call);
        assert.ok(run.transcript.some((e) => e.dir === 'event' && e.what === 'connect-failed'), call);
        assert.equal(result, expected, call);
      }
    });

    test(`a daemon that refuses the connection (deny=) leaves AGISTATUS=SUCCESS and nothing set: MCDRESULT=${expected} all the same${as}`, async () => {
      // What Asterisk 22.10.1 does when the daemon cuts it at connect: AGI() returns SUCCESS
      // and MCDRESULT keeps the value it had, so only an empty MCDRESULT can tell.
      const d = await startDaemon('[general]\n[agi]\ndeny=127.0.0.0/8\n');
      try {
        for (const { call, run, result } of await everySubroutine(`127.0.0.1:${d.port}`, format)) {
          assert.equal(run.status, 'SUCCESS', call);
          assert.deepEqual(run.commands, [], `${call}: the daemon sent nothing`);
          assert.equal(result, expected, call);
        }
        assert.equal(d.logs.filter((l) => String(l.msg).includes('refused by permit/deny')).length, EVERY_CALL.length);
      } finally {
        await d.stop();
      }
    });
  }

  test('a session that breaks before MCDRESULT is written (Asterisk refuses the first command) gives 3', async () => {
    const d = await startDaemon('[general]\n');
    const relay = await startAgiRelay(d.port, (n) => (n === 1 ? Buffer.from('NO SUCH COMMAND\n') : undefined));
    try {
      const ch = new FakeChannel({ variables: { MCDRESULT: '0' } });
      const r = await runDialplan(driver('Gosub(mcd,MCD,1(k))'), 'drive', 's', ch, { globals: { MCD_DAEMON: `127.0.0.1:${relay.port}` } });
      assert.equal(r.agiRuns[0]!.status, 'SUCCESS', explain(r));
      assert.match(r.agiRuns[0]!.transcript.find((e) => e.dir === 'answer')?.data.toString() ?? '', /^510 /, explain(r));
      assert.equal(ch.getVar('MCDRESULT'), '3', explain(r));
    } finally {
      relay.close();
      await d.stop();
    }
  });

  test('through the daemon: a quoted value with commas, spaces and quotes survives the round trip', async () => {
    const d = await startDaemon('[general]\nkeyprefix=sub:\n');
    try {
      const ch = new FakeChannel();
      const r = await runDialplan(
        driver('Gosub(mcd,mcdset,1(k,"a,b, c"))', 'Set(R1=${MCDRESULT})', 'Gosub(mcd,mcdget,1(got,k))', 'Gosub(mcd,mcdprepend,1(k,"x,"))', 'Gosub(mcd,MCD,1(k))'),
        'drive',
        's',
        ch,
        { globals: { MCD_DAEMON: `127.0.0.1:${d.port}` } },
      );
      assert.equal(ch.getVar('R1'), '0', explain(r));
      assert.equal(ch.getVar('got'), 'a,b, c', explain(r));
      assert.equal(ch.getVar('MCD'), 'x,a,b, c', explain(r));
      assert.equal(ch.getVar('MCDRESULT'), '0', explain(r));
      assert.ok(r.agiRuns.every((run) => run.status === 'SUCCESS'), explain(r));
    } finally {
      await d.stop();
    }
  });
});

describe("README's compare-and-set example", () => {
  /** The [bump-visits] block of README.md, as a reader would paste it. */
  function readmeExample(): string {
    const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
    const m = /```\n(\[bump-visits\]\n[^`]*)```/.exec(readme);
    assert.ok(m, 'README.md has the [bump-visits] example');
    return m[1]!;
  }

  test('50 channels running it at once through the daemon leave exactly 50; each ends with MCDRESULT=0', async () => {
    const d = await startDaemon('[general]\nkeyprefix=rmw:\n');
    try {
      const text = `${driver('Gosub(bump-visits,s,1(lobby))')}\n${readmeExample()}`;
      const channels = Array.from({ length: 50 }, () => new FakeChannel());
      const runs = await Promise.all(channels.map((ch) => runDialplan(text, 'drive', 's', ch, { globals: { MCD_DAEMON: `127.0.0.1:${d.port}` } })));
      runs.forEach((r, i) => {
        assert.equal(r.end, 'hangup', explain(r));
        assert.equal(channels[i]!.getVar('MCDRESULT'), '0', explain(r));
        assert.ok(!r.verbose.some((v) => v.includes('not updated')), explain(r));
      });
      assert.equal((await d.daemon.backend.get('visits-lobby'))?.value.toString(), '50');
      const scripts = runs.flatMap((r) => r.agiRuns.map((run) => run.url.slice(run.url.lastIndexOf('/') + 1)));
      assert.ok(scripts.includes('mcdadd'), 'the key was missing: the first ones created it');
      assert.ok(runs.some((r) => r.agiRuns.some((run, j) => run.url.endsWith('/mcdcas') && r.agiRuns[j + 1]?.url.endsWith('/mcdgets'))), 'some mcdcas answered 12 and the loop read again');
    } finally {
      await d.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The self-test on three backends

/** The checks [mcd-selftest] makes, by label, in order. */
const CHECKS = [
  '1 mcdset',
  '1 mcdset then MCD',
  '2 mcdappend',
  '3 mcdadd on an existing key',
  '4 mcdreplace',
  '5 MCD after mcddelete gives NOTFOUND',
  '5 MCD after mcddelete is empty',
  '6 mcdset with MCDTTL',
  '7 the value expired',
  '8 mcdcounterset then MCDCOUNTER',
  '9 MCDCOUNTER with -12',
  '10 the counter expired and reads empty',
  '10 the counter expired and gives NOTFOUND',
];

/** The AGI() calls the self-test makes: script and arguments. */
const SELFTEST_AGI: Array<[string, string[]]> = [
  ['mcdset', ['wrtest', 'hello']],
  ['MCD', ['wrtest']],
  ['mcdappend', ['wrtest', ' world!']],
  ['MCD', ['wrtest']],
  ['mcdadd', ['wrtest', 'something']],
  ['mcdreplace', ['wrtest', 'goodbye world!']],
  ['MCD', ['wrtest']],
  ['mcddelete', ['wrtest']],
  ['MCD', ['wrtest']],
  ['mcdset', ['wrtest', 'hello again']],
  ['MCD', ['wrtest']],
  ['MCD', ['wrtest']],
  ['mcdcounterset', ['counter', '678']],
  ['MCDCOUNTER', ['counter']],
  ['MCDCOUNTER', ['counter', '-12']],
  ['MCDCOUNTER', ['counter']],
];

interface Backend {
  name: string;
  /** memcached.conf [general] lines (null: the embedded store, no server= line). */
  protocol: 'binary' | 'text' | 'meta' | null;
  /** result_format=name in memcached.conf, and MCD_RESULT_FORMAT=name in [globals]. */
  names?: boolean;
}

const BACKENDS: Backend[] = [
  { name: 'the embedded store', protocol: null },
  { name: 'memcached, binary protocol', protocol: 'binary' },
  { name: 'memcached, text protocol', protocol: 'text' },
  { name: 'memcached, meta protocol', protocol: 'meta' },
  { name: 'the embedded store, result codes as names', protocol: null, names: true },
];

describe('[mcd-selftest]: the C module test macro through the daemon', { concurrency: true }, () => {
  for (const backend of BACKENDS) {
    test(`passes on ${backend.name}`, async () => {
      const mc = backend.protocol === null ? null : await startMemcached();
      const prefix = `selftest-${backend.protocol ?? 'embedded'}-${process.pid}:`;
      const config =
        (mc === null
          ? `[general]\nkeyprefix=${prefix}\n`
          : `[general]\nserver=${mc.address}\n${backend.protocol === 'meta' ? 'protocol=meta' : `binary_proto=${backend.protocol === 'binary' ? 'yes' : 'no'}`}\nkeyprefix=${prefix}\n`) + (backend.names === true ? 'result_format=name\n' : '');
      const d = await startDaemon(config);
      try {
        const ch = new FakeChannel({ context: 'mcd-selftest-dial', extension: 'mcdtest' });
        const globals = { MCD_DAEMON: `127.0.0.1:${d.port}`, ...(backend.names === true ? { MCD_RESULT_FORMAT: 'name' } : {}) };
        const r = await runDialplan(CONF, 'mcd-selftest-dial', 'mcdtest', ch, { globals });
        const why = explain(r);
        assert.equal(r.verbose[0], `res-memcached self-test: starting (result codes as ${backend.names === true ? 'names' : 'numbers'})`, why);
        if (backend.names === true) assert.ok(r.agiRuns.every((run) => run.commands.some((c) => c.includes('MCDRESULT=MEMCACHED_'))), why);

        assert.equal(r.end, 'hangup', why);
        assert.deepEqual(r.warnings, [], why);
        // Every check said ok, in order, and nothing failed.
        const checks = r.verbose.filter((v) => v.startsWith('res-memcached self-test ') && !v.startsWith('res-memcached self-test:'));
        assert.deepEqual(
          checks,
          CHECKS.map((label) => `res-memcached self-test ${label}: ok`),
          why,
        );
        assert.deepEqual(new Set(CHECKS.map((c) => c.split(' ')[0])), new Set(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']));
        assert.equal(r.verbose.at(-1), 'res-memcached self-test: PASS', why);
        assert.equal(ch.getVar('MCDSELFTEST'), 'PASS', why);
        assert.equal(ch.getVar('MCDSELFTEST_FAILED'), '0', why);

        // The AGI traffic: one session per command, the right script and arguments, each ended
        // cleanly (AGISTATUS=SUCCESS), all to our daemon.
        assert.deepEqual(
          r.agiRuns.map((run) => [run.url, run.args]),
          SELFTEST_AGI.map(([script, args]) => [`agi://127.0.0.1:${d.port}/${script}`, args]),
          why,
        );
        for (const run of r.agiRuns) {
          assert.equal(run.status, 'SUCCESS', `${run.where} ${run.url}\n${why}`);
          assert.ok(run.commands.length >= 1 && run.commands.length <= 3, `${run.url}: ${run.commands.length} commands\n${why}`);
          assert.ok(run.transcript.some((e) => e.dir === 'event' && e.what === 'server-closed'), `${run.url}: the daemon ended the session\n${why}`);
        }
        // The daemon logged no warning about any command (MCDTTL, arguments, backend).
        const warnings = d.logs.filter((l) => l.level >= 40);
        assert.deepEqual(warnings, [], why);

        // MCDTTL was local to the self-test; the Gosub arguments are gone.
        assert.equal(ch.getVar('MCDTTL'), undefined);
        assert.equal(ch.getVar('ARG1'), undefined);
        assert.equal(ch.getVar('ARGC'), undefined);
        // Left behind in the cache: nothing (both keys expired).
        assert.equal(await d.daemon.backend.get('wrtest'), null);
        assert.equal(await d.daemon.backend.get('counter'), null);
      } finally {
        await d.stop();
        await mc?.stop();
      }
    });
  }

  test('[mcd-selftest-check] counts failures, and a value that split at a comma is one', async () => {
    const ch = new FakeChannel({ variables: { MCDSELFTEST_FAILED: '0' } });
    const r = await runDialplan(
      driver('Gosub(mcd-selftest-check,s,1(same,a b,a b))', 'Gosub(mcd-selftest-check,s,1(empty,,))', 'Gosub(mcd-selftest-check,s,1(differ,x,y))', 'Gosub(mcd-selftest-check,s,1(comma,a,b,a))'),
      'drive',
      's',
      ch,
    );
    assert.deepEqual(r.verbose, [
      'res-memcached self-test same: ok',
      'res-memcached self-test empty: ok',
      "res-memcached self-test differ: FAILED: got 'x', expected 'y'",
      "res-memcached self-test comma: FAILED: got a value with a comma (4 arguments: 'a' 'b' 'a' '')",
    ]);
    assert.equal(ch.getVar('MCDSELFTEST_FAILED'), '2');
  });

  test('a daemon giving names to a dialplan expecting numbers fails the first check, saying so', async () => {
    const d = await startDaemon('[general]\nresult_format=name\n');
    try {
      const ch = new FakeChannel();
      const r = await runDialplan(CONF, 'mcd-selftest-dial', 'mcdtest', ch, { globals: { MCD_DAEMON: `127.0.0.1:${d.port}` } });
      assert.equal(r.verbose[1], "res-memcached self-test 1 mcdset: FAILED: got 'MEMCACHED_SUCCESS', expected '0'", r.verbose.join('\n'));
      assert.equal(ch.getVar('MCDSELFTEST'), 'FAIL');
    } finally {
      await d.stop();
    }
  });

  test('a failing check is reported with what it got, and the verdict is FAIL', async () => {
    // A "daemon" that is not there: every step gets MCDRESULT=3 and empty values. Port 1, not a
    // free port: a free port can be taken by another test's listener during the six seconds.
    const port = 1;
    const ch = new FakeChannel();
    const r = await runDialplan(CONF, 'mcd-selftest-dial', 'mcdtest', ch, { globals: { MCD_DAEMON: `127.0.0.1:${port}` } });
    assert.equal(ch.getVar('MCDSELFTEST'), 'FAIL');
    assert.equal(ch.getVar('MCDSELFTEST_FAILED'), '11');
    assert.ok(r.verbose.includes("res-memcached self-test 1 mcdset then MCD: FAILED: got '', expected 'hello'"), r.verbose.join('\n'));
    assert.ok(r.verbose.includes("res-memcached self-test 3 mcdadd on an existing key: FAILED: got '3', expected '14'"), r.verbose.join('\n'));
    assert.ok(r.verbose.includes('res-memcached self-test 5 MCD after mcddelete is empty: ok'));
    assert.equal(r.verbose.at(-1), 'res-memcached self-test: FAIL (11 checks failed)');
    assert.ok(r.agiRuns.every((run) => run.status === 'FAILURE'));
  });
});

describe('extensions_mcd.conf: leases and locks released by the hangup handler', () => {
  test('mcdlimit and mcdlock push [mcd-hangup] handlers: the lease and lock are free once the channel hangs up; none with MCD_LEASE_HANGUP_HANDLER=no', async () => {
    const d = await startDaemon('[general]\nnode_id=pbx1\n');
    try {
      const globals = { MCD_DAEMON: `127.0.0.1:${d.port}` };
      const name = `hh_${process.pid}`;
      const count = async (): Promise<number> => d.daemon.leases.count(name);
      const a = new FakeChannel();
      const r = await runDialplan(driver(`Gosub(mcd,mcdlimit,1(${name},1))`, `Gosub(mcd,mcdlock,1(${name},0))`, 'Verbose(0,${MCDLIMIT} ${MCDLIMITCOUNT} ${MCDLOCK} ${MCDRESULT})'), 'drive', 's', a, { globals });
      assert.deepEqual(r.verbose.at(-1), 'OK 1 OK 0');
      // Both handlers ran after the hangup, each one AGI(): mcdunlock (pushed last) first.
      assert.deepEqual(r.agiRuns.map((x) => x.url.replace(/^.*\//, '')), ['mcdlimit', 'mcdlock', 'mcdunlock', 'mcdrelease']);
      assert.equal(await count(), 0);
      assert.equal(await d.daemon.leases.lock(name, 'other'), 'ok');
      assert.equal(await d.daemon.leases.unlock(name, 'other'), true);
      // A FULL pushes nothing; with the switch off, an OK pushes nothing either.
      const b = new FakeChannel();
      const off = await runDialplan(driver(`Gosub(mcd,mcdlimit,1(${name},1))`), 'drive', 's', b, { globals: { ...globals, MCD_LEASE_HANGUP_HANDLER: 'no' } });
      assert.deepEqual(off.agiRuns.map((x) => x.url.replace(/^.*\//, '')), ['mcdlimit']);
      assert.equal(await count(), 1);
      const c = new FakeChannel();
      const full = await runDialplan(driver(`Gosub(mcd,mcdlimit,1(${name},1))`, 'Verbose(0,${MCDLIMIT})'), 'drive', 's', c, { globals });
      assert.deepEqual([full.verbose.at(-1), full.agiRuns.length], ['FULL', 1]);
      assert.equal(await d.daemon.leases.release(name, b.uniqueId), true);
    } finally {
      await d.stop();
    }
  });
});
