#!/usr/bin/env node
// The client's own CPU per request, without a kernel or a memcached: the Client talks to an
// in-memory server (a Duplex given through `socketFactory`) that answers every request of a
// write at once, on the next turn of the event loop. What is left is the client's JavaScript
// (keys, commands, the promise, encode, decode, outcome), the stream machinery under a socket,
// and the fake's own reply building, which is small and the same for every run. Unlike the
// socket benchmarks it hardly moves with the box's load, so it is the figure to compare before
// and after a change to the request path.
//
//   node bench/client-inproc.mjs [--protocols text,binary,meta] [--ops get,set,incr]
//                                [--concurrency 256] [--requests 500000]
//
// Prints one JSON line per protocol × op: client CPU µs per request (process.cpuUsage over the
// measured requests, GC included) and requests per second. Builds nothing: run `npx tsc` first.
import { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    protocols: { type: 'string', default: 'text,binary,meta' },
    ops: { type: 'string', default: 'get,set,incr' },
    concurrency: { type: 'string', default: '256' },
    requests: { type: 'string', default: '500000' },
  },
});
const { Client } = await import(new URL('../dist/src/index.js', import.meta.url).href);
const VALUE = Buffer.alloc(100, 0x76);
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);

// Reply bytes for every request in `chunk` (the client writes whole requests), per protocol:
// get hits, STORED, counter 1. Built from templates by copying, so the fake costs little and
// about the same per request whatever the protocol.
const CRLF = Buffer.from('\r\n');
const binaryReply = (opcode, body) => {
  const r = Buffer.alloc(24 + body.length);
  r[0] = 0x81;
  r[1] = opcode;
  r[4] = opcode === 0x00 ? 4 : 0;
  r.writeUInt32BE(body.length, 8);
  r.writeUInt32BE(7, 20); // CAS
  body.copy(r, 24);
  return r;
};
const BINARY = {
  0x00: binaryReply(0x00, Buffer.concat([Buffer.alloc(4), VALUE])),
  0x01: binaryReply(0x01, Buffer.alloc(0)),
  0x05: binaryReply(0x05, Buffer.from([0, 0, 0, 0, 0, 0, 0, 1])),
};
const TEXT_VALUE_TAIL = Buffer.concat([Buffer.from(' 0 100\r\n'), VALUE, Buffer.from('\r\nEND\r\n')]);
const META_VA = Buffer.concat([Buffer.from('VA 100 f0 ')]);
const META_VALUE = Buffer.concat([CRLF, VALUE, CRLF]);

/** Each request line of `chunk` (text and meta), with where the line after it (or its data) starts. */
function* lines(chunk) {
  for (let at = 0; at < chunk.length; ) {
    const end = chunk.indexOf(CRLF, at);
    const line = chunk.subarray(at, end);
    at = end + 2;
    // A store's data block follows its line: skip it (its length is token 4 of set, 2 of ms).
    const token = line[0] === 0x73 /* set */ ? 4 : line[0] === 0x6d && line[1] === 0x73 /* ms */ ? 2 : 0;
    if (token > 0) at += lengthToken(line, token) + 2;
    yield line;
  }
}

function lengthToken(line, index) {
  let start = 0;
  for (let i = 0; i < index; i++) start = line.indexOf(0x20, start) + 1;
  let n = 0;
  for (let i = start; i < line.length && line[i] !== 0x20; i++) n = n * 10 + line[i] - 0x30;
  return n;
}

const answer = {
  binary(chunk) {
    const out = [];
    for (let at = 0; at + 24 <= chunk.length; at += 24 + chunk.readUInt32BE(at + 8)) {
      const r = Buffer.from(BINARY[chunk[at + 1]]);
      chunk.copy(r, 12, at + 12, at + 16); // the opaque
      out.push(r);
    }
    return Buffer.concat(out);
  },
  text(chunk) {
    const out = [];
    for (const line of lines(chunk)) {
      if (line[0] === 0x67) out.push(Buffer.from('VALUE '), line.subarray(4), TEXT_VALUE_TAIL);
      else if (line[0] === 0x73) out.push(Buffer.from('STORED\r\n'));
      else out.push(Buffer.from('1\r\n'));
    }
    return Buffer.concat(out);
  },
  meta(chunk) {
    const out = [];
    for (const line of lines(chunk)) {
      const opaque = line.subarray(line.lastIndexOf(0x4f /* O */));
      if (line[1] === 0x67) out.push(META_VA, opaque, META_VALUE);
      else if (line[1] === 0x73) out.push(Buffer.from('HD '), opaque, CRLF);
      else out.push(Buffer.from('VA 1 '), opaque, Buffer.from('\r\n1\r\n'));
    }
    return Buffer.concat(out);
  },
};

function fakeServer(protocol) {
  return () => {
    const socket = new Duplex({
      read() {},
      write(chunk, _encoding, done) {
        const reply = answer[protocol](chunk);
        setImmediate(() => socket.push(reply));
        done();
      },
    });
    setImmediate(() => socket.emit('connect'));
    return socket;
  };
}

async function run(protocol, op, concurrency, requests) {
  const client = new Client({ servers: ['127.0.0.1:1'], protocol, socketFactory: fakeServer(protocol) });
  const keys = Array.from({ length: 1000 }, (_, i) => `bench:k:${String(i).padStart(6, '0')}`);
  const value = 'v'.repeat(100);
  const one = op === 'get' ? (k) => client.get(k) : op === 'set' ? (k) => client.set(k, value) : (k) => client.incr(k, 1);
  let issued = 0;
  const worker = async (n) => {
    for (let k = n; issued < requests; k = (k + 7) % 1000) {
      issued++;
      const got = await one(keys[k]);
      if (op === 'get' && got?.value.length !== 100) throw new Error(`${protocol} get: wrong reply`);
    }
  };
  issued = requests - 20_000; // warm-up
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  issued = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, i) => worker(i)));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await client.close();
  return { protocol, op, concurrency, requests: issued, cpuUsPerRequest: +((cpu.user + cpu.system) / issued).toFixed(3), perSecond: Math.round((issued / ms) * 1000) };
}

for (const protocol of list(opt.protocols)) {
  for (const op of list(opt.ops)) {
    console.log(JSON.stringify(await run(protocol, op, Number(opt.concurrency), Number(opt.requests))));
  }
}
