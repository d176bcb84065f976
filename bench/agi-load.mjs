#!/usr/bin/env node
// FastAGI load generator that speaks like Asterisk's res_agi: each virtual channel opens a
// TCP connection, sends the agi_* environment (the lines and order of res_agi.c
// launch_netscript + setup_env, 25 lines with 2 arguments) ending with a blank line, answers
// every command line with `200 result=1`, and counts the session done when the server closes.
// N channels loop concurrently (closed loop: N sessions in flight). One JSON line on stdout.
//
//   node bench/agi-load.mjs --server 127.0.0.1:4573 --concurrency 16 --duration 10
//
// --env-writes lines  writes each env line separately with Nagle on, as Asterisk does
//                     (res_agi.c: one ast_agi_send() per line; launch_netscript sets no
//                     TCP_NODELAY); default `block` sends the env in one write (cheaper for us,
//                     so more of the box is left for the server).
// --args A,B,...      the script's arguments (agi_arg_1..N; `{n}` becomes the session number);
//                     `{n%M}` the session number modulo M (e.g. `key{n%1000}`: preloaded keys);
//                     default: `callerVar,key{n % 1000}` (what mcdget reads).
// --then SCRIPT[,ARG,...]  a second session on the same channel (same agi_uniqueid) after each
//                     first one, as a call's hangup handler runs after its dialplan (e.g.
//                     `--script mcdlimit --args calls,1000 --then mcdrelease,calls`); both
//                     sessions count as sessions, and each pair as a call (callsPerSec, call*Us).
// --then-expect-commands  commands the second session gets (default: --expect-commands).
// --uid-base S        agi_uniqueid is `S.<session number>`, as Asterisk's `<epoch>.<seq>`; a
//                     caller that runs several loads against one daemon gives each its own base,
//                     so channel ids never repeat (a repeated id would find its old lease).
// --tally VAR,...     counts the values the server sets in VAR (SET VARIABLE or ${SET(VAR=...)}),
//                     per script: e.g. how many mcdlimit sessions got MCDLIMIT=OK and FULL.
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Histogram } from './lib/histogram.mjs';
import { parseAddress } from './lib/mcstats.mjs';
import { loadavg, cpuTimes, busyPercent, hostFacts, procCpuSeconds } from './lib/env.mjs';

const { values: opt } = parseArgs({
  options: {
    server: { type: 'string', default: '127.0.0.1:4573' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    script: { type: 'string', default: 'mcdget' },
    'env-writes': { type: 'string', default: 'block' },
    'expect-commands': { type: 'string', default: '2' },
    'session-timeout': { type: 'string', default: '10' },
    'server-pid': { type: 'string', default: '' },       // to report the server's CPU per session
    label: { type: 'string', default: '' },
    args: { type: 'string', default: '' },
    then: { type: 'string', default: '' },
    'then-expect-commands': { type: 'string', default: '' },
    'uid-base': { type: 'string', default: '1700000000' },
    tally: { type: 'string', default: '' },
  },
});
const { host, port } = parseAddress(opt.server, 4573);
const concurrency = Number(opt.concurrency);
const expectCommands = Number(opt['expect-commands']);
const sessionTimeoutMs = Number(opt['session-timeout']) * 1000;
const splitEnv = opt['env-writes'] === 'lines';
const uidBase = opt['uid-base'];
const tallied = opt.tally === '' ? [] : opt.tally.split(',');
// A session's script, its arguments (null: the default ones) and how many commands it gets.
const first = { script: opt.script, args: opt.args === '' ? null : opt.args.split(','), expect: expectCommands };
const second = opt.then === '' ? null : (() => {
  const [script, ...args] = opt.then.split(',');
  return { script, args, expect: opt['then-expect-commands'] === '' ? expectCommands : Number(opt['then-expect-commands']) };
})();

function argLines(step, n) {
  const args = step.args ?? ['callerVar', `key${n % 1000}`];
  return args.map((a, i) => `agi_arg_${i + 1}: ${a.replace(/\{n%(\d+)\}/g, (_, m) => String(n % Number(m))).replaceAll('{n}', String(n))}`);
}

function envLines(n, step) {
  const uid = `${uidBase}.${n}`;
  return [
    'agi_network: yes',
    `agi_network_script: ${step.script}`,
    `agi_request: agi://${host}:${port}/${step.script}`,
    `agi_channel: PJSIP/alice-${(n & 0xffffff).toString(16).padStart(8, '0')}`,
    'agi_language: en',
    'agi_type: PJSIP',
    `agi_uniqueid: ${uid}`,
    'agi_version: 20.5.2',
    'agi_callerid: 1001',
    'agi_calleridname: Alice',
    'agi_callingpres: 0',
    'agi_callingani2: 0',
    'agi_callington: 0',
    'agi_callingtns: 0',
    'agi_dnid: 2000',
    'agi_rdnis: unknown',
    'agi_context: default',
    'agi_extension: 2000',
    'agi_priority: 3',
    'agi_enhanced: 0.0',
    'agi_accountcode: ',
    'agi_threadid: 139872345663232',
    ...argLines(step, n),
    '',
  ].map((l) => l + '\n');
}

const hist = new Histogram();
const callHist = new Histogram();
const stepHists = [new Histogram(), new Histogram()];
const tally = {};   // script -> VAR -> value -> count
let calls = 0;
let measuring = false;
let stopping = false;
let sessions = 0;
let errors = 0;
let badSessions = 0;
let firstError = null;
let seq = 0;

function countSet(script, name, value) {
  if (!measuring || !tallied.includes(name)) return;
  const perVar = ((tally[script] ??= {})[name] ??= {});
  perVar[value] = (perVar[value] ?? 0) + 1;
}

function oneSession(n, step, stepIndex) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    let commands = 0;
    let pending = '';
    let finished = false;
    const sock = net.connect({ host, port, noDelay: !splitEnv });
    const timer = setTimeout(() => fail(new Error('session timeout')), sessionTimeoutMs);
    function finish(ok) {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (measuring) {
        if (ok) { const ns = Number(process.hrtime.bigint() - t0); hist.record(ns); stepHists[stepIndex].record(ns); sessions++; } else badSessions++;
      }
      resolve(ok);
    }
    function fail(err) {
      firstError ??= err.message;
      if (measuring) errors++;
      sock.destroy();
      if (!finished) { finished = true; clearTimeout(timer); resolve(false); }
    }
    sock.on('connect', () => {
      const lines = envLines(n, step);
      if (splitEnv) for (const l of lines) sock.write(l);
      else sock.write(lines.join(''));
    });
    sock.on('data', (d) => {
      pending += d.toString('latin1');
      let nl;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!/^[A-Z]+ /.test(line)) { fail(new Error(`unexpected line from server: ${line.slice(0, 60)}`)); return; }
        commands++;
        // GET FULL VARIABLE "x${...}": Asterisk answers with the expression substituted. The
        // literal text is what a server checks (res-memcached's nonce); ${...} parts read unset
        // variables or set ones (SET()) and are dropped here.
        const full = /^GET FULL VARIABLE "(.*)"$/.exec(line);
        if (tallied.length > 0) {
          if (full) for (const m of full[1].matchAll(/\$\{SET\(([A-Za-z0-9_]+)=([^)]*)\)\}/g)) countSet(step.script, m[1], m[2]);
          const set = /^SET VARIABLE (\S+) "(.*)"$/.exec(line);
          if (set) countSet(step.script, set[1], set[2]);
        }
        if (full) sock.write(`200 result=1 (${stripSubstitutions(full[1])})\n`);
        else sock.write('200 result=1\n');
      }
    });
    sock.on('end', () => {
      const ok = commands === step.expect;
      if (!ok) firstError ??= `${step.script} session ended after ${commands} commands, expected ${step.expect}`;
      finish(ok);
    });
    sock.on('error', fail);
  });
}

function stripSubstitutions(expr) {
  let out = '';
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    if (expr[i] === '$' && expr[i + 1] === '{') { depth++; i++; continue; }
    if (depth > 0) { if (expr[i] === '{') depth++; else if (expr[i] === '}') depth--; continue; }
    out += expr[i];
  }
  return out;
}

async function channel() {
  while (!stopping) {
    const n = seq++;
    const t0 = process.hrtime.bigint();
    const wasMeasuring = measuring;
    let ok = await oneSession(n, first, 0);
    // The second session runs even when stopping: a call that took a lease gives it back.
    if (ok && second !== null) {
      ok = await oneSession(n, second, 1);
      if (ok && wasMeasuring && measuring) { callHist.record(Number(process.hrtime.bigint() - t0)); calls++; }
    }
    if (!ok && !stopping) await new Promise((r) => setTimeout(r, 5));   // no hot loop on a dead server
  }
}

const result = { tool: 'agi-load', label: opt.label || undefined, concurrency, envWrites: opt['env-writes'],
  server: `${host}:${port}`, ...hostFacts(), loadBefore: loadavg() };
const channels = Array.from({ length: concurrency }, () => channel());
await new Promise((r) => setTimeout(r, Number(opt.warmup) * 1000));
const serverPid = Number(opt['server-pid']) || null;
const serverCpuBefore = serverPid ? procCpuSeconds(serverPid) : NaN;
const cpuBefore = process.cpuUsage();
const sysBefore = cpuTimes();
hist.reset(); callHist.reset(); for (const h of stepHists) h.reset(); sessions = 0; calls = 0; errors = 0; badSessions = 0;
for (const k of Object.keys(tally)) delete tally[k];
const tStart = process.hrtime.bigint();
measuring = true;
// A parent that started us with an IPC channel (bench/snapshot-bench.mjs) lines its own
// measurements up with this window.
process.send?.({ measuring: true });
await new Promise((r) => setTimeout(r, Number(opt.duration) * 1000));
measuring = false;
process.send?.({ measuring: false });
const seconds = Number(process.hrtime.bigint() - tStart) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
const sysBusy = busyPercent(sysBefore, cpuTimes());
const serverCpuS = serverPid ? procCpuSeconds(serverPid) - serverCpuBefore : NaN;
stopping = true;
const drained = await Promise.race([Promise.all(channels).then(() => true),
  new Promise((r) => setTimeout(() => r(false), sessionTimeoutMs + 1000).unref())]);
process.stdout.write(JSON.stringify({
  ...result,
  ok: drained && errors === 0 && badSessions === 0,
  durationS: Math.round(seconds * 100) / 100,
  sessions,
  sessionsPerSec: Math.round(sessions / seconds),
  opsPerSec: Math.round(sessions / seconds),
  errors,
  badSessions,
  firstError,
  ...hist.summaryUs(),
  ...(second === null ? {} : {
    calls, callsPerSec: Math.round(calls / seconds), call: callHist.summaryUs(),
    steps: [first, second].map((st, i) => ({ script: st.script, args: st.args, sessions: stepHists[i].total, ...stepHists[i].summaryUs() })),
  }),
  ...(tallied.length > 0 ? { tally } : {}),
  clientCpuUsPerSession: sessions ? Math.round(((cpu.user + cpu.system) / sessions) * 10) / 10 : null,
  serverCpuUsPerSession: sessions && Number.isFinite(serverCpuS) ? Math.round((serverCpuS * 1e6 / sessions) * 10) / 10 : null,
  machineBusyPct: sysBusy,
  hung: !drained,
  loadAfter: loadavg(),
}) + '\n');
process.exit(drained ? 0 : 3);
