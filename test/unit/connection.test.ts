// Connection over an in-memory socket (test/support/memory-socket.ts) with mocked setTimeout and
// Date: the test plays the server byte by byte, so every queue transition, deadline and failure
// path runs deterministically and in milliseconds. Each behaviour is checked over both the text
// and the binary protocol, with replies built by hand (binary ones echo the opaque read back
// from the request bytes the connection wrote).

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';

import { Connection, socketErrorRc } from '../../src/memcache/connection.js';
import type { ConnectionEvents, ConnectionOptions, PendingRequest, Protocol } from '../../src/memcache/connection.js';
import type { Command, Outcome } from '../../src/memcache/protocol/command.js';
import { MemcachedError, Rc } from '../../src/util/errors.js';
import { flagsExtras, parseRequests, response } from '../support/binary-packets.js';
import { MemorySockets, settled } from '../support/memory-socket.js';
import type { MemorySocket } from '../support/memory-socket.js';

const START = 1_000_000;
const TIMEOUT_MS = 500;
const CONNECT_TIMEOUT_MS = 2000;

const key = (k: string): Buffer => Buffer.from(k, 'latin1');
const getCmd = (k: string): Command => ({ op: 'get', keys: [key(k)], withCas: false });
const setCmd = (k: string, v: string): Command => ({ op: 'store', mode: 'set', key: key(k), value: key(v), flags: 0, ttl: 0 });

/** One request as the cluster builds it, with a count of how often it was resolved. */
interface Tracked {
  req: PendingRequest;
  done: Promise<Outcome>;
  /** The outcome once resolved (the first one), else undefined. */
  outcome: Outcome | undefined;
  resolutions: number;
}

/** Builds a PendingRequest in one place, so fields the connection may add later need one change here. */
function track(cmd: Command, deadline = 0): Tracked {
  let resolveDone!: (out: Outcome) => void;
  const t: Tracked = {
    req: undefined as unknown as PendingRequest,
    done: new Promise<Outcome>((r) => (resolveDone = r)),
    outcome: undefined,
    resolutions: 0,
  };
  t.req = {
    cmd,
    opaque: 0,
    deadline,
    out: { rc: Rc.SUCCESS },
    resolve: (out) => {
      t.resolutions++;
      if (t.outcome === undefined) t.outcome = out;
      resolveDone(out);
    },
  };
  return t;
}

interface Failure {
  rc: number;
  error: Error;
  unsent: PendingRequest[];
}

interface Harness {
  conn: Connection;
  net: MemorySockets;
  failures: Failure[];
  healthy: number;
  /** Enqueues `cmd` and tracks it. */
  send(cmd: Command): Tracked;
}

function harness(
  protocol: Protocol,
  options: Partial<ConnectionOptions> = {},
  events: { onFailure?: ConnectionEvents['onFailure'] | null; autoConnect?: boolean } = {},
): Harness {
  const net = new MemorySockets({ autoConnect: events.autoConnect ?? true });
  const h: Harness = {
    conn: undefined as unknown as Connection,
    net,
    failures: [],
    healthy: 0,
    send(cmd) {
      const t = track(cmd);
      h.conn.enqueue(t.req);
      return t;
    },
  };
  const connEvents: ConnectionEvents = { onHealthy: () => h.healthy++ };
  if (events.onFailure !== null) {
    connEvents.onFailure =
      events.onFailure ??
      ((rc, error, unsent) => {
        h.failures.push({ rc, error, unsent });
      });
  }
  h.conn = new Connection(
    {
      address: { kind: 'tcp', host: 'mc.test', port: 11211 },
      protocol,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      timeoutMs: TIMEOUT_MS,
      socketFactory: net.factory,
      ...options,
    },
    connEvents,
  );
  return h;
}

/** What one protocol's server says, built by hand from the requests the connection wrote. */
interface Wire {
  protocol: Protocol;
  /** The bytes a set of `k` to `v` must put on the wire. */
  setBytes(k: string, v: string): Buffer;
  getBytes(k: string): Buffer;
  /** Replies answering the i-th request the socket has carried so far. */
  stored(socket: MemorySocket, i: number): Buffer;
  notStored(socket: MemorySocket, i: number): Buffer;
  hit(socket: MemorySocket, i: number, k: string, v: string, flags?: number): Buffer;
  miss(socket: MemorySocket, i: number): Buffer;
  /** A reply that cannot answer request i, a get (text: STORED; binary: an opaque nobody used). */
  wrongReplyToGet(socket: MemorySocket, i: number): Buffer;
  /** Bytes no server sends. */
  garbage: Buffer;
  garbageRc: number;
}

function binaryRequest(socket: MemorySocket, i: number): { opcode: number; opaque: number } {
  const req = parseRequests(socket.sent)[i];
  assert.ok(req !== undefined, `request ${i} was written`);
  return req;
}

const TEXT: Wire = {
  protocol: 'text',
  setBytes: (k, v) => Buffer.from(`set ${k} 0 0 ${v.length}\r\n${v}\r\n`, 'latin1'),
  getBytes: (k) => Buffer.from(`get ${k}\r\n`, 'latin1'),
  stored: () => Buffer.from('STORED\r\n'),
  notStored: () => Buffer.from('NOT_STORED\r\n'),
  hit: (_s, _i, k, v, flags = 0) => Buffer.from(`VALUE ${k} ${flags} ${v.length}\r\n${v}\r\nEND\r\n`, 'latin1'),
  miss: () => Buffer.from('END\r\n'),
  wrongReplyToGet: () => Buffer.from('STORED\r\n'),
  garbage: Buffer.from('HELLO THERE\r\n'),
  garbageRc: Rc.PROTOCOL_ERROR,
};

const BINARY: Wire = {
  protocol: 'binary',
  setBytes: (k, v) => {
    const header = Buffer.alloc(24);
    header[0] = 0x80;
    header[1] = 0x01;
    header.writeUInt16BE(k.length, 2);
    header[4] = 8;
    header.writeUInt32BE(8 + k.length + v.length, 8);
    // The opaque (bytes 12-15) is compared separately: only its echo matters.
    return Buffer.concat([header, Buffer.alloc(8), key(k), key(v)]);
  },
  getBytes: (k) => {
    const header = Buffer.alloc(24);
    header[0] = 0x80;
    header[1] = 0x00;
    header.writeUInt16BE(k.length, 2);
    header.writeUInt32BE(k.length, 8);
    return Buffer.concat([header, key(k)]);
  },
  stored: (s, i) => response({ opcode: 0x01, opaque: binaryRequest(s, i).opaque, cas: 7n }),
  notStored: (s, i) => response({ opcode: 0x01, opaque: binaryRequest(s, i).opaque, status: 0x0005 }),
  hit: (s, i, _k, v, flags = 0) => response({ opcode: 0x00, opaque: binaryRequest(s, i).opaque, extras: flagsExtras(flags), value: v, cas: 9n }),
  miss: (s, i) => response({ opcode: 0x00, opaque: binaryRequest(s, i).opaque, status: 0x0001, value: 'Not found' }),
  wrongReplyToGet: (s, i) => response({ opcode: 0x00, opaque: (binaryRequest(s, i).opaque + 1000) >>> 0, extras: flagsExtras(0), value: 'x' }),
  garbage: Buffer.alloc(24, 0x47),
  garbageRc: Rc.PROTOCOL_ERROR,
};

/** The request bytes with every binary opaque zeroed, to compare with setBytes/getBytes. */
function withoutOpaques(wire: Wire, bytes: Buffer): Buffer {
  if (wire.protocol === 'text') return bytes;
  const copy = Buffer.from(bytes);
  let at = 0;
  while (at < copy.length) {
    copy.writeUInt32BE(0, at + 12);
    at += 24 + copy.readUInt32BE(at + 8);
  }
  return copy;
}

const resolvedNow = (t: Tracked): boolean => t.outcome !== undefined;

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: START });
});

afterEach(() => {
  mock.timers.reset();
});

for (const wire of [TEXT, BINARY]) {
  describe(`Connection (${wire.protocol}): lazy connect and batching`, () => {
    it('makes no socket until the first request, then one socket for every request of that tick', async () => {
      const h = harness(wire.protocol, {}, { autoConnect: false });
      assert.equal(h.net.sockets.length, 0);
      assert.equal(h.conn.state, 'idle');
      const a = h.send(setCmd('a', '1'));
      const b = h.send(setCmd('b', '2'));
      const c = h.send(getCmd('c'));
      assert.equal(h.net.sockets.length, 1, 'one connect for three requests');
      assert.equal(h.conn.state, 'connecting');
      assert.equal(h.conn.pending, 3);
      await settled();
      const socket = h.net.last;
      assert.equal(socket.writes.length, 0, 'nothing is written before the socket connects');
      assert.deepEqual(socket.address, { kind: 'tcp', host: 'mc.test', port: 11211 });
      assert.equal(socket.tlsSettings, null);
      socket.connect();
      await settled();
      assert.equal(h.conn.state, 'ready');
      assert.equal(socket.writes.length, 1, 'the three requests go out in one write');
      assert.deepEqual(
        withoutOpaques(wire, socket.writes[0]!),
        Buffer.concat([wire.setBytes('a', '1'), wire.setBytes('b', '2'), wire.getBytes('c')]),
      );
      socket.reply(Buffer.concat([wire.stored(socket, 0), wire.stored(socket, 1), wire.miss(socket, 2)]));
      const outs = await Promise.all([a.done, b.done, c.done]);
      assert.deepEqual(
        outs.map((o) => o.rc),
        [Rc.SUCCESS, Rc.SUCCESS, Rc.SUCCESS],
      );
      assert.equal(outs[2]!.items?.[0], undefined, 'a miss leaves the slot empty');
      assert.equal(h.conn.pending, 0);
      assert.equal(h.net.sockets.length, 1);
      assert.equal(h.healthy, 1, 'onHealthy once per connect');
    });

    it('once connected, the requests of one tick share one write and the next tick gets its own', async () => {
      const h = harness(wire.protocol);
      const first = h.send(getCmd('k0'));
      await settled();
      const socket = h.net.last;
      socket.reply(wire.miss(socket, 0));
      await first.done;
      const batch = [h.send(setCmd('k1', 'a')), h.send(setCmd('k2', 'b')), h.send(setCmd('k3', 'c'))];
      assert.equal(socket.writes.length, 1, 'not written synchronously');
      await settled();
      assert.equal(socket.writes.length, 2);
      assert.deepEqual(
        withoutOpaques(wire, socket.writes[1]!),
        Buffer.concat([wire.setBytes('k1', 'a'), wire.setBytes('k2', 'b'), wire.setBytes('k3', 'c')]),
      );
      const late = h.send(getCmd('k4'));
      await settled();
      assert.equal(socket.writes.length, 3);
      assert.deepEqual(withoutOpaques(wire, socket.writes[2]!), wire.getBytes('k4'));
      socket.reply(Buffer.concat([1, 2, 3].map((i) => wire.stored(socket, i)).concat(wire.hit(socket, 4, 'k4', 'v'))));
      assert.deepEqual((await Promise.all(batch.map((t) => t.done))).map((o) => o.rc), [0, 0, 0]);
      assert.equal((await late.done).items?.[0]?.value.toString(), 'v');
      assert.equal(h.net.sockets.length, 1, 'one socket throughout');
    });

    if (wire.protocol === 'binary') {
      it('gives every request in flight its own opaque', async () => {
        const h = harness('binary');
        for (let i = 0; i < 5; i++) h.send(getCmd(`k${i}`));
        await settled();
        const opaques = parseRequests(h.net.last.sent).map((r) => r.opaque);
        assert.equal(new Set(opaques).size, 5, `distinct opaques, got ${opaques.join(',')}`);
      });
    }
  });

  describe(`Connection (${wire.protocol}): replies`, () => {
    it('matches pipelined replies in order, each request getting its own outcome', async () => {
      const h = harness(wire.protocol);
      const a = h.send(setCmd('a', '1'));
      const b = h.send(getCmd('b'));
      const c = h.send(setCmd('c', '3'));
      const d = h.send(getCmd('d'));
      await settled();
      const s = h.net.last;
      s.reply(Buffer.concat([wire.stored(s, 0), wire.hit(s, 1, 'b', 'bee', 42), wire.notStored(s, 2), wire.miss(s, 3)]));
      const [oa, ob, oc, od] = await Promise.all([a.done, b.done, c.done, d.done]);
      assert.equal(oa.rc, Rc.SUCCESS);
      assert.equal(ob.rc, Rc.SUCCESS);
      assert.equal(ob.items?.length, 1);
      assert.equal(ob.items?.[0]?.value.toString(), 'bee');
      assert.equal(ob.items?.[0]?.flags, 42);
      assert.equal(oc.rc, Rc.NOTSTORED);
      assert.equal(od.rc, Rc.SUCCESS);
      assert.equal(od.items?.[0], undefined);
      for (const t of [a, b, c, d]) assert.equal(t.resolutions, 1);
    });

    it('answers a multi-get slot by slot, misses left empty, with requests after it still in order', async () => {
      const h = harness(wire.protocol);
      const g = h.send({ op: 'get', keys: [key('a'), key('b'), key('c')], withCas: false });
      const after = h.send(setCmd('z', '9'));
      await settled();
      const s = h.net.last;
      if (wire.protocol === 'text') {
        assert.equal(s.sent.toString(), 'get a b c\r\nset z 0 0 1\r\n9\r\n');
        s.reply('VALUE a 1 2\r\nAA\r\nVALUE c 3 2\r\nCC\r\nEND\r\nSTORED\r\n');
      } else {
        const sent = parseRequests(s.sent);
        assert.deepEqual(sent.map((r) => r.opcode), [0x09, 0x09, 0x09, 0x0a, 0x01], 'three GETQs closed by a NOOP, then the set');
        assert.deepEqual(sent.slice(0, 3).map((r) => r.key.toString()), ['a', 'b', 'c']);
        assert.equal(new Set(sent.map((r) => r.opaque)).size, 5);
        s.reply(
          Buffer.concat([
            response({ opcode: 0x09, opaque: sent[0]!.opaque, extras: flagsExtras(1), value: 'AA' }),
            response({ opcode: 0x09, opaque: sent[2]!.opaque, extras: flagsExtras(3), value: 'CC' }),
            response({ opcode: 0x0a, opaque: sent[3]!.opaque }),
            response({ opcode: 0x01, opaque: sent[4]!.opaque }),
          ]),
        );
      }
      const out = await g.done;
      assert.equal(out.rc, Rc.SUCCESS);
      assert.deepEqual(
        Array.from(out.items ?? [], (i) => (i === undefined ? undefined : [i.value.toString(), i.flags])),
        [['AA', 1], undefined, ['CC', 3]],
      );
      assert.equal((await after.done).rc, Rc.SUCCESS);
    });

    it('completes whatever the chunk boundaries: split in two at every position, and byte by byte', async () => {
      // Opaques are the same on every fresh connection, so the transcript's length is too.
      const run = async (split: (bytes: Buffer) => Buffer[]): Promise<{ outs: Outcome[]; length: number }> => {
        const h = harness(wire.protocol);
        const reqs = [h.send(setCmd('a', '1')), h.send(getCmd('b')), h.send(getCmd('c'))];
        await settled();
        const s = h.net.last;
        const transcript = Buffer.concat([wire.stored(s, 0), wire.hit(s, 1, 'b', 'xyz', 3), wire.miss(s, 2)]);
        const chunks = split(transcript);
        for (let i = 0; i < chunks.length; i++) {
          s.reply(chunks[i]!);
          await settled();
          if (i < chunks.length - 1) assert.equal(resolvedNow(reqs[2]!), false, 'the last reply is not complete before its last byte');
        }
        const outs = await Promise.all(reqs.map((t) => t.done));
        assert.equal(s.destroyed, false);
        assert.equal(h.failures.length, 0);
        return { outs, length: transcript.length };
      };
      const expectOutcomes = (outs: Outcome[], how: string): void => {
        assert.deepEqual(outs.map((o) => o.rc), [0, 0, 0], how);
        assert.equal(outs[1]!.items?.[0]?.value.toString(), 'xyz', how);
        assert.equal(outs[1]!.items?.[0]?.flags, 3, how);
        assert.equal(outs[2]!.items?.[0], undefined, how);
      };
      const whole = await run((b) => [b]);
      expectOutcomes(whole.outs, 'whole');
      for (let at = 1; at < whole.length; at++) {
        expectOutcomes((await run((b) => [b.subarray(0, at), b.subarray(at)])).outs, `split at ${at}`);
      }
      expectOutcomes((await run((b) => [...b].map((byte) => Buffer.from([byte])))).outs, 'byte by byte');
    });
  });

  describe(`Connection (${wire.protocol}): out of sync`, () => {
    it('a reply with nothing waiting destroys the socket; the next request reconnects', async () => {
      const h = harness(wire.protocol);
      const a = h.send(setCmd('a', '1'));
      await settled();
      const s = h.net.last;
      const reply = wire.stored(s, 0);
      s.reply(reply);
      assert.equal((await a.done).rc, Rc.SUCCESS);
      s.reply(reply); // the same reply again: nothing is waiting for it
      await settled();
      assert.equal(s.destroyed, true);
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, Rc.UNKNOWN_READ_FAILURE);
      assert.deepEqual(h.failures[0]!.unsent, []);
      assert.equal(h.conn.state, 'idle');
      const b = h.send(getCmd('b'));
      await settled();
      assert.equal(h.net.sockets.length, 2, 'a fresh socket');
      const s2 = h.net.last;
      s2.reply(wire.miss(s2, 0));
      assert.equal((await b.done).rc, Rc.SUCCESS);
    });

    it('a reply that cannot answer the head fails every written request with UNKNOWN_READ_FAILURE and hands over the unsent', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      const b = h.send(setCmd('b', '2'));
      await settled();
      const s = h.net.last;
      s.block();
      // Written, but the write reported a full buffer: the next request stays unsent.
      const c = h.send(setCmd('c', '3'));
      await settled();
      const d = h.send(getCmd('d'));
      await settled();
      assert.equal(s.writes.length, 2, 'c was written (its write returned false), d was not');
      s.reply(wire.wrongReplyToGet(s, 0));
      await settled();
      assert.equal(s.destroyed, true);
      for (const t of [a, b, c]) {
        assert.equal(t.outcome?.rc, Rc.UNKNOWN_READ_FAILURE, 'written requests fail');
        assert.equal(t.resolutions, 1);
      }
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, Rc.UNKNOWN_READ_FAILURE);
      assert.deepEqual(h.failures[0]!.unsent, [d.req], 'the unsent request goes to the owner');
      assert.equal(resolvedNow(d), false, 'and is left for the owner to settle');
      assert.equal(h.conn.pending, 0);
    });

    it('garbage fails the written requests with PROTOCOL_ERROR and destroys the socket', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      const b = h.send(getCmd('b'));
      await settled();
      const s = h.net.last;
      s.reply(wire.garbage);
      await settled();
      assert.equal(s.destroyed, true);
      assert.equal(a.outcome?.rc, wire.garbageRc);
      assert.equal(b.outcome?.rc, wire.garbageRc);
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, wire.garbageRc);
      assert.equal(h.healthy, 0, 'garbage is no sign of health');
    });

    it('without an onFailure handler the unsent requests are failed with the same code', async () => {
      const h = harness(wire.protocol, {}, { onFailure: null });
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      s.block();
      const b = h.send(getCmd('b'));
      await settled();
      const c = h.send(getCmd('c'));
      await settled();
      assert.equal(s.writes.length, 2);
      s.reply(wire.garbage);
      await settled();
      assert.deepEqual([a, b, c].map((t) => t.outcome?.rc), [wire.garbageRc, wire.garbageRc, wire.garbageRc]);
    });
  });

  describe(`Connection (${wire.protocol}): timeouts`, () => {
    it('an unsent request past its deadline while connecting fails with TIMEOUT, nothing else happens', async () => {
      const h = harness(wire.protocol, {}, { autoConnect: false });
      const a = h.send(getCmd('a'));
      await settled();
      mock.timers.tick(TIMEOUT_MS - 1);
      await settled();
      assert.equal(resolvedNow(a), false, 'not a millisecond early');
      mock.timers.tick(1);
      await settled();
      assert.equal(a.outcome?.rc, Rc.TIMEOUT);
      const s = h.net.last;
      assert.equal(s.destroyed, false, 'the socket is still connecting and is kept');
      assert.equal(h.failures.length, 0, 'no failure of the server');
      assert.equal(h.conn.state, 'connecting');
      s.connect();
      await settled();
      assert.equal(s.writes.length, 0, 'the timed-out request is never written');
      const b = h.send(getCmd('b'));
      await settled();
      assert.deepEqual(withoutOpaques(wire, s.sent), wire.getBytes('b'));
      s.reply(wire.miss(s, 0));
      assert.equal((await b.done).rc, Rc.SUCCESS);
    });

    it('an unsent request held back by backpressure fails with TIMEOUT; the socket stays', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      s.block();
      const b = h.send(getCmd('b'));
      await settled();
      assert.equal(s.writes.length, 2, 'b was written; its write reported a full buffer');
      s.reply(Buffer.concat([wire.miss(s, 0), wire.miss(s, 1)]));
      await settled();
      assert.equal(a.outcome?.rc, Rc.SUCCESS);
      assert.equal(b.outcome?.rc, Rc.SUCCESS);
      const c = h.send(getCmd('c'));
      await settled();
      assert.equal(s.writes.length, 2, 'c waits for drain');
      mock.timers.tick(TIMEOUT_MS);
      await settled();
      assert.equal(c.outcome?.rc, Rc.TIMEOUT);
      assert.equal(s.destroyed, false);
      assert.equal(h.failures.length, 0);
      s.unblock();
      await settled();
      assert.equal(s.writes.length, 2, 'the timed-out request is not written after drain');
      assert.equal(h.conn.pending, 0);
    });

    it('a written request past its deadline destroys the socket, fails every written one and hands over the unsent', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      const b = h.send(setCmd('b', '2'));
      await settled();
      const s = h.net.last;
      s.block();
      mock.timers.tick(100);
      const c = h.send(getCmd('c'));
      await settled();
      mock.timers.tick(100);
      const d = h.send(getCmd('d'));
      await settled();
      assert.equal(s.writes.length, 2, 'a, b; then c (write returned false); d unsent');
      mock.timers.tick(TIMEOUT_MS - 200 - 1);
      await settled();
      assert.equal(s.destroyed, false, 'not before the oldest deadline');
      mock.timers.tick(1);
      await settled();
      assert.equal(s.destroyed, true);
      assert.deepEqual([a, b, c].map((t) => t.outcome?.rc), [Rc.TIMEOUT, Rc.TIMEOUT, Rc.TIMEOUT]);
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, Rc.TIMEOUT);
      assert.deepEqual(h.failures[0]!.unsent, [d.req]);
      assert.equal(resolvedNow(d), false);
      assert.equal(h.conn.state, 'idle');
    });

    it('a connect that does not complete within connectTimeoutMs fails the server with TIMEOUT', async () => {
      const h = harness(wire.protocol, { connectTimeoutMs: 100 }, { autoConnect: false });
      const a = h.send(getCmd('a'));
      await settled();
      mock.timers.tick(99);
      await settled();
      assert.equal(h.failures.length, 0);
      mock.timers.tick(1);
      await settled();
      assert.equal(h.net.last.destroyed, true);
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, Rc.TIMEOUT);
      assert.deepEqual(h.failures[0]!.unsent, [a.req]);
      assert.equal(a.req.deadline, START + TIMEOUT_MS, 'the deadline set on acceptance travels with the request');
      assert.equal(h.conn.state, 'idle');
    });

    it('a late connect event after the connect timeout does nothing', async () => {
      const h = harness(wire.protocol, { connectTimeoutMs: 100 }, { autoConnect: false, onFailure: null });
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      mock.timers.tick(100);
      await settled();
      assert.equal(a.outcome?.rc, Rc.TIMEOUT);
      s.connect();
      await settled();
      assert.equal(s.writes.length, 0);
      assert.equal(h.conn.state, 'idle');
    });
  });

  describe(`Connection (${wire.protocol}): backpressure`, () => {
    it('a write that returns false stops further writes until drain; then they go out in one write', async () => {
      const h = harness(wire.protocol);
      const s0 = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      assert.equal(s.writes.length, 1);
      s.block();
      const b = h.send(getCmd('b'));
      await settled();
      assert.equal(s.writes.length, 2, 'written; the write reports a full buffer');
      const c = h.send(getCmd('c'));
      const d = h.send(getCmd('d'));
      await settled();
      await settled();
      assert.equal(s.writes.length, 2, 'nothing more until drain');
      assert.equal(h.conn.pending, 4);
      s.unblock();
      await settled();
      assert.equal(s.writes.length, 3);
      assert.deepEqual(withoutOpaques(wire, s.writes[2]!), Buffer.concat([wire.getBytes('c'), wire.getBytes('d')]));
      s.reply(Buffer.concat([0, 1, 2, 3].map((i) => wire.miss(s, i))));
      assert.deepEqual((await Promise.all([s0, b, c, d].map((t) => t.done))).map((o) => o.rc), [0, 0, 0, 0]);
    });
  });

  describe(`Connection (${wire.protocol}): close and destroy`, () => {
    it('close() waits for the replies in flight, then ends the socket; later requests fail with CONNECTION_FAILURE', async () => {
      const h = harness(wire.protocol);
      const a = h.send(setCmd('a', '1'));
      const b = h.send(getCmd('b'));
      await settled();
      const s = h.net.last;
      let closed = false;
      const closing = h.conn.close().then(() => (closed = true));
      const late = h.send(getCmd('late'));
      await settled();
      assert.equal(late.outcome?.rc, Rc.CONNECTION_FAILURE);
      assert.equal(s.writes.length, 1, 'the request after close() is not written');
      s.reply(wire.stored(s, 0));
      await settled();
      assert.equal(closed, false, 'one reply still in flight');
      assert.equal(s.endCalls, 0);
      s.reply(wire.hit(s, 1, 'b', 'v'));
      await closing;
      assert.equal(a.outcome?.rc, Rc.SUCCESS);
      assert.equal(b.outcome?.items?.[0]?.value.toString(), 'v');
      assert.equal(s.endCalls, 1);
      assert.equal(s.destroyed, true);
      assert.equal(h.conn.state, 'closed');
      assert.equal(h.failures.length, 0);
      const after = h.send(getCmd('after'));
      assert.equal(after.outcome?.rc, Rc.CONNECTION_FAILURE);
      assert.equal(h.net.sockets.length, 1, 'no reconnect after close');
    });

    it('close() with nothing pending ends at once; close() before any request makes no socket', async () => {
      const idle = harness(wire.protocol);
      await idle.conn.close();
      assert.equal(idle.net.sockets.length, 0);
      assert.equal(idle.conn.state, 'closed');
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      s.reply(wire.miss(s, 0));
      await a.done;
      await h.conn.close();
      assert.equal(s.endCalls, 1);
      assert.equal(s.destroyed, true);
    });

    it('destroy() fails written and unsent requests at once with CONNECTION_FAILURE, without onFailure', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      s.block();
      const b = h.send(getCmd('b'));
      await settled();
      const c = h.send(getCmd('c'));
      await settled();
      h.conn.destroy();
      assert.deepEqual([a, b, c].map((t) => t.outcome?.rc), [Rc.CONNECTION_FAILURE, Rc.CONNECTION_FAILURE, Rc.CONNECTION_FAILURE]);
      assert.equal(s.destroyed, true);
      assert.equal(h.failures.length, 0);
      assert.equal(h.conn.pending, 0);
      assert.equal(h.conn.state, 'closed');
      assert.equal(h.send(getCmd('d')).outcome?.rc, Rc.CONNECTION_FAILURE);
    });
  });

  describe(`Connection (${wire.protocol}): the server closing the connection`, () => {
    it('an idle close is no failure: the next request reconnects', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      s.reply(wire.miss(s, 0));
      await a.done;
      s.hangUp();
      await settled();
      assert.equal(h.conn.state, 'idle');
      assert.equal(h.failures.length, 0);
      const b = h.send(getCmd('b'));
      await settled();
      assert.equal(h.net.sockets.length, 2);
      const s2 = h.net.last;
      s2.reply(wire.hit(s2, 0, 'b', 'again'));
      assert.equal((await b.done).items?.[0]?.value.toString(), 'again');
      assert.equal(h.failures.length, 0);
      assert.equal(h.healthy, 2, 'each connect reports health once');
    });

    it('an idle reset (error, then close) is no failure either', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      s.reply(wire.miss(s, 0));
      await a.done;
      s.fail('ECONNRESET');
      await settled();
      assert.equal(h.failures.length, 0);
      assert.equal(h.conn.state, 'idle');
    });

    it('a close with a request in flight fails it with CONNECTION_FAILURE and tells the owner', async () => {
      const h = harness(wire.protocol);
      const a = h.send(getCmd('a'));
      await settled();
      h.net.last.hangUp();
      await settled();
      assert.equal(a.outcome?.rc, Rc.CONNECTION_FAILURE);
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, Rc.CONNECTION_FAILURE);
      assert.equal(h.conn.state, 'idle');
    });
  });

  describe(`Connection (${wire.protocol}): maxQueue`, () => {
    it('the request beyond maxQueue fails at once with TIMEOUT and is never written', async () => {
      const h = harness(wire.protocol, { maxQueue: 2 });
      const a = h.send(getCmd('a'));
      const b = h.send(getCmd('b'));
      const c = h.send(getCmd('c'));
      assert.equal(c.outcome?.rc, Rc.TIMEOUT, 'synchronously');
      assert.equal(h.conn.pending, 2);
      await settled();
      const s = h.net.last;
      assert.deepEqual(withoutOpaques(wire, s.sent), Buffer.concat([wire.getBytes('a'), wire.getBytes('b')]));
      s.reply(Buffer.concat([wire.miss(s, 0), wire.miss(s, 1)]));
      await Promise.all([a.done, b.done]);
      const d = h.send(getCmd('d'));
      assert.equal(resolvedNow(d), false, 'room again once answered');
    });
  });

  describe(`Connection (${wire.protocol}): socket errors`, () => {
    const cases: Array<{ code: string; when: 'connecting' | 'ready'; rc: number }> = [
      { code: 'ECONNREFUSED', when: 'connecting', rc: Rc.CONNECTION_FAILURE },
      { code: 'ENOTFOUND', when: 'connecting', rc: Rc.HOST_LOOKUP_FAILURE },
      { code: 'EAI_AGAIN', when: 'connecting', rc: Rc.HOST_LOOKUP_FAILURE },
      { code: 'ENOENT', when: 'connecting', rc: Rc.FAIL_UNIX_SOCKET },
      { code: 'EACCES', when: 'connecting', rc: Rc.FAIL_UNIX_SOCKET },
      { code: 'ETIMEDOUT', when: 'connecting', rc: Rc.TIMEOUT },
      { code: 'EHOSTUNREACH', when: 'connecting', rc: Rc.CONNECTION_FAILURE },
      { code: 'ECONNRESET', when: 'ready', rc: Rc.CONNECTION_FAILURE },
      { code: 'EPIPE', when: 'ready', rc: Rc.WRITE_FAILURE },
      { code: 'ETIMEDOUT', when: 'ready', rc: Rc.TIMEOUT },
      { code: 'EHOSTUNREACH', when: 'ready', rc: Rc.READ_FAILURE },
    ];
    for (const { code, when, rc } of cases) {
      it(`${code} while ${when} fails the request with ${rc}`, async () => {
        const h = harness(wire.protocol, {}, { autoConnect: when === 'ready' });
        const a = h.send(getCmd('a'));
        await settled();
        const s = h.net.last;
        if (when === 'ready') assert.equal(s.writes.length, 1);
        s.fail(code);
        await settled();
        assert.equal(h.failures.length, 1, 'exactly one failure for an error followed by close');
        assert.equal(h.failures[0]!.rc, rc);
        assert.equal((h.failures[0]!.error as NodeJS.ErrnoException).code, code);
        if (when === 'ready') {
          assert.equal(a.outcome?.rc, rc, 'the written request fails with it');
        } else {
          assert.deepEqual(h.failures[0]!.unsent, [a.req], 'the unsent request is handed over');
        }
        assert.equal(h.conn.state, 'idle');
      });
    }

    it('a socket factory that throws fails with CONNECTION_FAILURE', async () => {
      const h = harness(wire.protocol);
      h.net.throwOnCreate = new Error('no sockets today');
      const a = h.send(getCmd('a'));
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, Rc.CONNECTION_FAILURE);
      assert.deepEqual(h.failures[0]!.unsent, [a.req]);
    });
  });

  describe(`Connection (${wire.protocol}): rerouting on failure`, () => {
    it('unsent requests re-enqueued onto a second connection complete there once, with their deadline kept', async () => {
      const second = harness(wire.protocol, {}, { autoConnect: false });
      const first = harness(
        wire.protocol,
        {},
        {
          autoConnect: false,
          onFailure: (rc, _error, unsent) => {
            first.failures.push({ rc, error: _error, unsent });
            for (const req of unsent) second.conn.enqueue(req);
          },
        },
      );
      const a = first.send(setCmd('a', '1'));
      const b = first.send(getCmd('b'));
      await settled();
      mock.timers.tick(100);
      first.net.last.fail('ECONNREFUSED');
      await settled();
      assert.equal(first.failures.length, 1);
      assert.equal(resolvedNow(a) || resolvedNow(b), false);
      assert.equal(second.conn.pending, 2);
      assert.equal(a.req.deadline, START + TIMEOUT_MS, 'not restarted on the second connection');
      const s = second.net.last;
      s.connect();
      await settled();
      assert.deepEqual(withoutOpaques(wire, s.sent), Buffer.concat([wire.setBytes('a', '1'), wire.getBytes('b')]));
      s.reply(Buffer.concat([wire.stored(s, 0), wire.hit(s, 1, 'b', 'rerouted')]));
      await Promise.all([a.done, b.done]);
      assert.equal(a.outcome?.rc, Rc.SUCCESS);
      assert.equal(b.outcome?.items?.[0]?.value.toString(), 'rerouted');
      mock.timers.tick(CONNECT_TIMEOUT_MS * 2);
      await settled();
      assert.equal(a.resolutions, 1);
      assert.equal(b.resolutions, 1);
      assert.equal(first.net.sockets.length, 1);
    });

    it('a rerouted request times out at its original deadline on the second connection', async () => {
      const second = harness(wire.protocol, {}, { autoConnect: false, onFailure: null });
      const first = harness(
        wire.protocol,
        {},
        {
          autoConnect: false,
          onFailure: (_rc, _error, unsent) => {
            for (const req of unsent) second.conn.enqueue(req);
          },
        },
      );
      const a = first.send(getCmd('a'));
      await settled();
      mock.timers.tick(300);
      first.net.last.fail('ECONNREFUSED');
      await settled();
      mock.timers.tick(TIMEOUT_MS - 300 - 1);
      await settled();
      assert.equal(resolvedNow(a), false);
      mock.timers.tick(1);
      await settled();
      assert.equal(a.outcome?.rc, Rc.TIMEOUT, 'at accepted + timeoutMs, not at rerouted + timeoutMs');
      assert.equal(a.resolutions, 1);
    });
  });
}

describe('Connection: TLS', () => {
  it('hands the TLS settings to the factory and waits for secureConnect, not connect', async () => {
    const tls = { servername: 'cache.example', verify: false };
    const h = harness('text', { tls }, { autoConnect: false });
    const a = h.send(getCmd('a'));
    const s = h.net.last;
    assert.deepEqual(s.tlsSettings, tls);
    s.connect('connect');
    await settled();
    assert.equal(s.writes.length, 0, 'the TCP connect alone is not enough');
    assert.equal(h.conn.state, 'connecting');
    s.connect('secureConnect');
    await settled();
    assert.equal(s.sent.toString(), 'get a\r\n');
    s.reply('END\r\n');
    assert.equal((await a.done).rc, Rc.SUCCESS);
  });
});

describe('Connection (binary): SASL', () => {
  const sasl = { username: 'alice', password: 's3cret' };

  it('authenticates with PLAIN before any request, then sends the requests', async () => {
    const h = harness('binary', { sasl });
    const a = h.send(getCmd('a'));
    await settled();
    const s = h.net.last;
    assert.equal(h.conn.state, 'authenticating');
    const sent = parseRequests(s.sent);
    assert.equal(sent.length, 1, 'only the authentication is written');
    assert.equal(sent[0]!.opcode, 0x21);
    assert.equal(sent[0]!.key.toString(), 'PLAIN');
    assert.deepEqual(sent[0]!.value, Buffer.from('\0alice\0s3cret'));
    s.reply(response({ opcode: 0x21, opaque: sent[0]!.opaque, value: 'Authenticated' }));
    await settled();
    assert.equal(h.conn.state, 'ready');
    const after = parseRequests(s.sent);
    assert.equal(after.length, 2);
    assert.equal(after[1]!.opcode, 0x00);
    assert.equal(after[1]!.key.toString(), 'a');
    s.reply(BINARY.hit(s, 1, 'a', 'secret value'));
    assert.equal((await a.done).items?.[0]?.value.toString(), 'secret value');
    assert.equal(h.failures.length, 0);
  });

  for (const { status, name, rc } of [
    { status: 0x0020, name: 'AUTH_ERROR', rc: Rc.AUTH_FAILURE },
    { status: 0x0083, name: 'NOT_SUPPORTED', rc: Rc.AUTH_PROBLEM },
    { status: 0x0081, name: 'UNKNOWN_COMMAND', rc: Rc.AUTH_PROBLEM },
  ]) {
    it(`an authentication answered ${name} fails the server with ${rc}; no request is written`, async () => {
      const h = harness('binary', { sasl });
      const a = h.send(getCmd('a'));
      await settled();
      const s = h.net.last;
      const auth = parseRequests(s.sent)[0]!;
      s.reply(response({ opcode: 0x21, opaque: auth.opaque, status, value: 'Auth failure' }));
      await settled();
      assert.equal(s.destroyed, true);
      assert.equal(parseRequests(s.sent).length, 1, 'the request never reached an unauthenticated socket');
      assert.equal(h.failures.length, 1);
      assert.equal(h.failures[0]!.rc, rc);
      assert.deepEqual(h.failures[0]!.unsent, [a.req]);
      assert.equal(h.conn.state, 'idle');
    });
  }

  it('SASL with the text protocol is refused when the connection is made, not silently skipped', () => {
    assert.throws(
      () => harness('text', { sasl }),
      (err: unknown) => err instanceof MemcachedError && err.rc === Rc.INVALID_ARGUMENTS && /SASL needs the binary protocol/.test(err.message),
    );
  });
});

describe('Connection (text): commands only the binary protocol carries', () => {
  for (const { cmd, rc } of [
    { cmd: { op: 'noop' } as Command, rc: Rc.NOT_SUPPORTED },
    { cmd: { op: 'auth', mechanism: 'PLAIN', data: Buffer.from('\0u\0p') } as Command, rc: Rc.NOT_SUPPORTED },
    { cmd: { op: 'incr', key: key('n'), delta: 1n, initial: 5n } as Command, rc: Rc.INVALID_ARGUMENTS },
    { cmd: { op: 'decr', key: key('n'), delta: 1n, initial: 0n } as Command, rc: Rc.INVALID_ARGUMENTS },
  ]) {
    it(`${cmd.op}${'initial' in cmd ? ' with an initial value' : ''} is refused with ${rc}, nothing sent, no socket`, () => {
      const h = harness('text');
      const t = h.send(cmd);
      assert.equal(t.outcome?.rc, rc, 'synchronously');
      assert.equal(h.net.sockets.length, 0);
      assert.equal(h.conn.pending, 0);
      assert.equal(h.conn.state, 'idle');
    });
  }

  it('incr without an initial value is sent', async () => {
    const h = harness('text');
    const t = h.send({ op: 'incr', key: key('n'), delta: 2n });
    await settled();
    const s = h.net.last;
    assert.equal(s.sent.toString(), 'incr n 2\r\n');
    s.reply('7\r\n');
    assert.equal((await t.done).number, 7n);
  });
});

describe('socketErrorRc', () => {
  const err = (code: string): NodeJS.ErrnoException => Object.assign(new Error(code), { code });
  it('maps errno codes to libmemcached codes, by whether the socket was connecting', () => {
    const table: Array<[string, boolean, number]> = [
      ['ENOTFOUND', true, Rc.HOST_LOOKUP_FAILURE],
      ['EAI_AGAIN', false, Rc.HOST_LOOKUP_FAILURE],
      ['EAI_FAIL', true, Rc.HOST_LOOKUP_FAILURE],
      ['ETIMEDOUT', true, Rc.TIMEOUT],
      ['ETIMEDOUT', false, Rc.TIMEOUT],
      ['ENOENT', true, Rc.FAIL_UNIX_SOCKET],
      ['EACCES', false, Rc.FAIL_UNIX_SOCKET],
      ['EPIPE', false, Rc.WRITE_FAILURE],
      ['EPIPE', true, Rc.WRITE_FAILURE],
      ['ECONNREFUSED', true, Rc.CONNECTION_FAILURE],
      ['ECONNRESET', false, Rc.CONNECTION_FAILURE],
      ['ECONNRESET', true, Rc.CONNECTION_FAILURE],
      ['EHOSTUNREACH', true, Rc.CONNECTION_FAILURE],
      ['EHOSTUNREACH', false, Rc.READ_FAILURE],
    ];
    for (const [code, connecting, rc] of table) {
      assert.equal(socketErrorRc(err(code), connecting), rc, `${code} ${connecting ? 'connecting' : 'connected'}`);
    }
    assert.equal(socketErrorRc(new Error('no code'), false), Rc.READ_FAILURE);
    assert.equal(socketErrorRc(new Error('no code'), true), Rc.CONNECTION_FAILURE);
  });
});

// Known faults: these fail against the connection as it stands and describe what it should do.
describe('Connection: faults found by these tests', () => {
  it('a failed SASL authentication is not reported as health after the failure', async () => {
    // The auth reply is the first reply after connect, so the data handler calls onHealthy after
    // onAuthenticated has already reported the failure. The cluster's onHealthy resets the
    // server's failure count (and revives an ejected server), so a server that refuses our
    // credentials is never disabled, marked dead or kept ejected: every request reconnects.
    const h = harness('binary', { sasl: { username: 'alice', password: 'wrong' } });
    h.send(getCmd('a'));
    await settled();
    const s = h.net.last;
    const auth = parseRequests(s.sent)[0]!;
    s.reply(response({ opcode: 0x21, opaque: auth.opaque, status: 0x0020, value: 'Auth failure' }));
    await settled();
    assert.equal(h.failures.length, 1);
    assert.equal(h.failures[0]!.rc, Rc.AUTH_FAILURE);
    assert.equal(h.healthy, 0, 'onHealthy after onFailure undoes the failure in the cluster');
  });

  for (const wire of [TEXT, BINARY]) {
    it(`(${wire.protocol}) an unsent request rerouted behind a newer one still times out at its own deadline`, async () => {
      // The timer only looks at the head of each queue, assuming deadlines grow along it. A
      // rerouted request keeps its older deadline but joins the tail, so while the second
      // connection is still connecting it outlives its deadline until the newer head expires.
      const second = harness(wire.protocol, {}, { autoConnect: false, onFailure: null });
      const first = harness(
        wire.protocol,
        {},
        {
          autoConnect: false,
          onFailure: (_rc, _error, unsent) => {
            for (const req of unsent) second.conn.enqueue(req);
          },
        },
      );
      const old = first.send(getCmd('old')); // deadline START + 500
      await settled();
      mock.timers.tick(50);
      const newer = second.send(getCmd('newer')); // deadline START + 550
      mock.timers.tick(50);
      first.net.last.fail('ECONNREFUSED');
      await settled();
      assert.equal(second.conn.pending, 2);
      mock.timers.tick(TIMEOUT_MS - 100);
      await settled();
      assert.equal(old.outcome?.rc, Rc.TIMEOUT, `timed out at START + ${TIMEOUT_MS}`);
      assert.equal(resolvedNow(newer), false, 'the newer request has 50 ms left');
    });
  }
});
