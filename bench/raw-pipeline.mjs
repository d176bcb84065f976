#!/usr/bin/env node
// The ceiling for any Node memcached client on this box: pre-built ASCII commands written
// straight to the socket with N requests outstanding; replies are counted, not parsed into
// objects. All keys have the same length, so a get hit / STORED reply has a fixed size and
// "count replies" is arithmetic; incr replies, and meta replies (their `O<opaque>` echo varies
// in width), are counted by their '\n's. No promises, no per-op allocation: when a chunk
// completes k replies, the next k commands go out as one zero-copy slice of a pre-built
// command ring.
//
//   node bench/raw-pipeline.mjs --server 127.0.0.1:11211 --op get --concurrency 16 --duration 10
//
// --conns C spreads the N outstanding requests over C sockets (N/C each).
// Correctness is checked against memcached's own counters (get_hits, cmd_set, incr_hits).
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Histogram } from './lib/histogram.mjs';
import { fetchStats, fetchVersion, statsDelta, parseAddress } from './lib/mcstats.mjs';
import { loadavg, cpuTimes, busyPercent, hostFacts } from './lib/env.mjs';

const { values: opt } = parseArgs({
  options: {
    server: { type: 'string', default: '127.0.0.1:11211' },
    op: { type: 'string', default: 'get' },               // get | set | incr | mg | ms | ma | bget | bset | bincr
    concurrency: { type: 'string', default: '16' },       // requests outstanding in total
    conns: { type: 'string', default: '1' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    nodelay: { type: 'string', default: 'true' },
    label: { type: 'string', default: '' },
  },
});
const op = opt.op;
// bget/bset/bincr: binary GET, SET and INCREMENT (res-memcached's default protocol).
// mg/ms/ma: the meta protocol, framed as res-memcached's meta codec frames them, so the raw
// ceiling pays for the same bytes: every request carries an `O<opaque>` that the reply echoes
// (here the ring slot's number, 1..keys, so 1-4 digits), a get asks for the value and the
// client flags (`mg key v f O1` -> `VA 100 f0 O1` + data), a set gives flags and TTL
// (`ms key 100 F0 T0 MS O1` -> `HD O1`), an incr asks for the new value
// (`ma key MI D1 v O1` -> `VA 1 O1` + digits). Measured on memcached 1.6.18.
const ops = ['get', 'set', 'incr', 'mg', 'ms', 'ma', 'bget', 'bset', 'bincr'];
if (!ops.includes(op)) throw new Error(`--op must be one of ${ops.join(', ')} (got ${op})`);
const isGet = op === 'get' || op === 'mg' || op === 'bget';
const isSet = op === 'set' || op === 'ms' || op === 'bset';
const isIncr = op === 'incr' || op === 'ma' || op === 'bincr';
const isMeta = op === 'mg' || op === 'ms' || op === 'ma';
const concurrency = Number(opt.concurrency);
const connCount = Math.min(Number(opt.conns), concurrency);
const valueSize = Number(opt['value-size']);
const keyCount = Number(opt.keys);
const { host, port } = parseAddress(opt.server);
const noDelay = opt.nodelay !== 'false';

const pad = (i) => String(i).padStart(6, '0');
const value = 'v'.repeat(valueSize);
const keyOf = (i) => (isIncr ? `bench:c:${pad(i)}` : `bench:k:${pad(i)}`);
function binaryGet(key) {
  const k = Buffer.from(key);
  const h = Buffer.alloc(24);
  h[0] = 0x80; h[1] = 0x00;                 // request magic, GET
  h.writeUInt16BE(k.length, 2);
  h.writeUInt32BE(k.length, 8);             // total body
  return Buffer.concat([h, k]);
}
function binaryRequest(opcode, key, extras, value) {
  const k = Buffer.from(key);
  const h = Buffer.alloc(24);
  h[0] = 0x80; h[1] = opcode;
  h.writeUInt16BE(k.length, 2);
  h[4] = extras.length;
  h.writeUInt32BE(extras.length + k.length + value.length, 8);
  return Buffer.concat([h, extras, k, value]);
}
const binarySet = (key) => binaryRequest(0x01, key, Buffer.alloc(8), Buffer.from(value));     // flags 0, exptime 0
const binaryIncr = (key) => {
  const extras = Buffer.alloc(20);
  extras.writeBigUInt64BE(1n, 0);                           // delta 1, initial 0
  extras.writeUInt32BE(0xffffffff, 16);                      // do not create
  return binaryRequest(0x05, key, extras, Buffer.alloc(0));
};
const opaqueOf = (i) => i + 1;
const commandOf = (i) => (op === 'get' ? Buffer.from(`get ${keyOf(i)}\r\n`)
  : op === 'mg' ? Buffer.from(`mg ${keyOf(i)} v f O${opaqueOf(i)}\r\n`)
  : op === 'ms' ? Buffer.from(`ms ${keyOf(i)} ${valueSize} F0 T0 MS O${opaqueOf(i)}\r\n${value}\r\n`)
  : op === 'ma' ? Buffer.from(`ma ${keyOf(i)} MI D1 v O${opaqueOf(i)}\r\n`)
  : op === 'bget' ? binaryGet(keyOf(i))
  : op === 'bset' ? binarySet(keyOf(i))
  : op === 'bincr' ? binaryIncr(keyOf(i))
  : op === 'set' ? Buffer.from(`set ${keyOf(i)} 0 0 ${valueSize}\r\n${value}\r\n`)
  : Buffer.from(`incr ${keyOf(i)} 1\r\n`));

// Ring of keyCount commands, stored twice so any run of <= keyCount commands starting
// anywhere is one contiguous slice. Meta commands differ in length (the opaque's digits), so
// slices are cut at recorded offsets: at[i] = where command i (of the doubled ring) starts.
const commands = Array.from({ length: keyCount }, (_, i) => commandOf(i));
const oneRing = Buffer.concat(commands);
const ring = Buffer.concat([oneRing, oneRing]);
const at = new Float64Array(2 * keyCount + 1);
for (let i = 0; i < 2 * keyCount; i++) at[i + 1] = at[i] + commands[i % keyCount].length;
const replyLen = op === 'get' ? Buffer.byteLength(`VALUE ${keyOf(0)} 0 ${valueSize}\r\n${value}\r\nEND\r\n`)
  : op === 'bget' ? 24 + 4 + valueSize
  : op === 'bset' ? 24
  : op === 'bincr' ? 24 + 8
  : op === 'set' ? 8 /* STORED\r\n */ : 0;
// Replies of variable size are counted by '\n': an incr reply is one line, a meta get or incr
// hit two (header, data: the values are 'v's and the counters digits, never a '\n'), a meta
// set one. A miss has one line fewer and would skew the count, but misses fail the run anyway.
const linesPerReply = { incr: 1, mg: 2, ms: 1, ma: 2 }[op] ?? 0;
const replyHead = { get: 'VALUE', bget: '\x81', bset: '\x81', bincr: '\x81', set: 'STORED',
  mg: `VA ${valueSize} f0 O`, ms: 'HD O', ma: 'VA ' }[op];
if (concurrency > keyCount) throw new Error('--keys must be >= --concurrency');

async function seed() {
  // Seed through one plain connection: sets for get/set, "0" for counters.
  const sock = net.connect({ host, port });
  await new Promise((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  const body = Array.from({ length: keyCount }, (_, i) => (isIncr
    ? `set ${keyOf(i)} 0 0 1\r\n0\r\n` : `set ${keyOf(i)} 0 0 ${valueSize}\r\n${value}\r\n`)).join('');
  let got = 0;
  await new Promise((res, rej) => {
    sock.on('data', (d) => { got += d.length; if (got >= keyCount * 8) res(); });
    sock.on('error', rej);
    sock.write(body);
  });
  sock.destroy();
}

const hist = new Histogram();
let measuring = false;
let stopping = false;
let replies = 0;
let reads = 0;      // 'data' events while measuring: replies/read shows how well replies batch
let badBytes = null;

function startConnection(outstanding, offset) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, noDelay });
    const sentAt = new Float64Array(outstanding);   // FIFO ring of send times (ns)
    let sendSeq = 0;                                  // requests written
    let recvSeq = 0;                                  // replies received
    let next = offset % keyCount;                     // next key index
    let partial = 0;                                  // bytes (or lines) of an incomplete reply
    let checkedFirst = false;
    const firstOpaque = opaqueOf(next);
    const base = process.hrtime.bigint();
    const now = () => Number(process.hrtime.bigint() - base);

    function send(k) {
      if (k === 0 || stopping) return;
      const t = now();
      for (let i = 0; i < k; i++) sentAt[(sendSeq + i) % outstanding] = t;
      sendSeq += k;
      sock.write(ring.subarray(at[next], at[next + k]));
      next = (next + k) % keyCount;
    }

    sock.on('connect', () => send(outstanding));
    sock.on('error', reject);
    sock.on('data', (chunk) => {
      let done;
      if (!checkedFirst && replyHead) {
        // The first reply proves the framing: its head, and for meta the echo of the first
        // request's opaque (memcached answers in order on one connection).
        checkedFirst = true;
        const line = chunk.toString('latin1', 0, Math.min(chunk.length, 40)).split('\r\n')[0];
        const ok = line.startsWith(replyHead) && (!isMeta || line.split(' ').at(-1) === `O${firstOpaque}`);
        if (!ok) badBytes = line.slice(0, 24);
      }
      if (replyLen) {
        const total = partial + chunk.length;
        done = Math.floor(total / replyLen);
        partial = total % replyLen;
      } else {
        let lines = partial;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
        done = Math.floor(lines / linesPerReply);
        partial = lines % linesPerReply;
      }
      if (done === 0) return;
      const t = now();
      if (measuring) {
        reads++;
        for (let i = 0; i < done; i++) hist.record(t - sentAt[(recvSeq + i) % outstanding]);
        replies += done;
      }
      recvSeq += done;
      if (stopping) { if (recvSeq === sendSeq) { sock.destroy(); resolve(); } return; }
      send(done);
    });
  });
}

const result = { tool: 'raw-pipeline', label: opt.label || undefined, client: 'raw-pipeline', op, concurrency,
  conns: connCount, valueSize, keys: keyCount, server: `${host}:${port}`, noDelay, ...hostFacts(), loadBefore: loadavg() };
result.serverVersion = await fetchVersion(host, port);
await seed();

const perConn = Array.from({ length: connCount }, (_, i) => Math.floor(concurrency / connCount) + (i < concurrency % connCount ? 1 : 0));
const conns = perConn.map((n, i) => startConnection(n, i * Math.floor(keyCount / connCount)));
await new Promise((r) => setTimeout(r, Number(opt.warmup) * 1000));

const statsBefore = await fetchStats(host, port);
const cpuBefore = process.cpuUsage();
const sysBefore = cpuTimes();
hist.reset(); replies = 0; reads = 0;
const tStart = process.hrtime.bigint();
measuring = true;
await new Promise((r) => setTimeout(r, Number(opt.duration) * 1000));
measuring = false;
const tEnd = process.hrtime.bigint();
const cpu = process.cpuUsage(cpuBefore);
const sysBusy = busyPercent(sysBefore, cpuTimes());
const statsAfter = await fetchStats(host, port);
stopping = true;
const drained = await Promise.race([Promise.all(conns).then(() => true), new Promise((r) => setTimeout(() => r(false), 5000).unref())]);

const seconds = Number(tEnd - tStart) / 1e9;
const server = statsDelta(statsBefore, statsAfter);
// memcached's count of the same work, over a window a few ms wider than ours.
const serverOps = isGet ? server.get_hits : isSet ? server.cmd_set : server.incr_hits;
const serverMisses = isGet ? server.get_misses : isIncr ? server.incr_misses : 0;
const ok = drained && badBytes === null && serverMisses === 0 && serverOps >= replies * 0.98;
process.stdout.write(JSON.stringify({
  ...result,
  ok,
  durationS: Math.round(seconds * 100) / 100,
  ops: replies,
  opsPerSec: Math.round(replies / seconds),
  repliesPerRead: Math.round((replies / reads) * 10) / 10,
  serverOpsRatio: Math.round((serverOps / replies) * 1000) / 1000,
  badBytes,
  ...hist.summaryUs(),
  clientCpuUsPerOp: Math.round(((cpu.user + cpu.system) / replies) * 100) / 100,
  serverCpuUsPerOp: Math.round((server.cpuS * 1e6 / replies) * 100) / 100,
  machineBusyPct: sysBusy,
  serverStats: server,
  loadAfter: loadavg(),
}) + '\n');
process.exit(ok ? 0 : 1);
