// A memcached that lies (RELIABILITY.md, "A lying memcached"): a fake server on 127.0.0.1 that
// answers garbage, wrong lengths, huge lengths, replies that answer nothing asked, out-of-order
// binary and meta replies (another opaque), and half a reply then silence, in each of the three
// protocols. The client fails those requests with a code, drops the connection
// (the fake sees it close), keeps nothing pending, and works again once the server behaves.

import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { Client } from '../../src/cluster/client.js';
import { Rc } from '../../src/util/errors.js';
import { codeOf, waitFor } from '../support/wait.js';
import { recordRow } from '../support/agi-load.js';

type Reply = (request: Buffer, socket: Socket) => void;

/** A server whose answer to each request chunk is whatever `reply` says; it counts closes. */
class LyingServer {
  readonly #server: Server;
  reply: Reply = () => undefined;
  closes = 0;
  connections = 0;

  constructor() {
    this.#server = createServer((socket) => {
      this.connections++;
      socket.on('data', (chunk: Buffer) => this.reply(chunk, socket));
      socket.on('error', () => undefined);
      socket.on('close', () => this.closes++);
    });
  }

  listen(): Promise<string> {
    return new Promise((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve(`127.0.0.1:${(this.#server.address() as AddressInfo).port}`)));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** A binary response header (+ body) for a request's opaque. */
function binaryReply(opcode: number, opaque: number, body: Buffer, status = 0, extrasLength = 0, declaredBody = body.length): Buffer {
  const h = Buffer.alloc(24);
  h[0] = 0x81;
  h[1] = opcode;
  h[4] = extrasLength;
  h.writeUInt16BE(status, 6);
  h.writeUInt32BE(declaredBody, 8);
  h.writeUInt32BE(opaque, 12);
  return Buffer.concat([h, body]);
}

/** The `O<n>` token of the first meta request in `request`: what an honest reply echoes. */
function metaOpaque(request: Buffer): number {
  const m = /^m[gsdan] [^\r\n]* O(\d+)\r\n/.exec(request.toString('latin1'));
  assert.ok(m, `no O token in ${JSON.stringify(request.toString('latin1').slice(0, 80))}`);
  return Number(m[1]);
}

for (const protocol of ['text', 'binary', 'meta'] as const) {
  describe(`a lying memcached, ${protocol} protocol`, () => {
    const fake = new LyingServer();
    let client: Client;

    before(async () => {
      const address = await fake.listen();
      client = new Client({ servers: [address], protocol, timeoutMs: 300, retryTimeoutMs: 0, serverFailureLimit: 1000 });
    });
    after(async () => {
      await client.close();
      await fake.close();
    });

    /** Runs `get` against the current lie; returns its code and checks the connection was dropped. */
    async function lie(reply: Reply): Promise<number> {
      fake.reply = reply;
      const closesBefore = fake.closes;
      const rc = await codeOf(client.get('k'));
      await waitFor(() => fake.closes > closesBefore);
      assert.equal(client.pendingRequests, 0, 'nothing left pending');
      return rc;
    }

    test('garbage instead of a reply: a protocol error, the connection dropped', async () => {
      const rc = await lie((_, s) => s.write(protocol === 'text' ? 'HELLO THERE\r\n' : 'HELLO THERE, this is not binary at all\r\n'));
      assert.ok([Rc.PROTOCOL_ERROR, Rc.UNKNOWN_READ_FAILURE].includes(rc as 8 | 7), `rc ${rc}`);
      recordRow({ area: 'memcached', case: `garbage reply (${protocol})`, done: 'a fake server answers text garbage', measured: `rc ${rc}; connection dropped`, outcome: 'failed with a code' });
    });

    test('a value longer than its announced length', async () => {
      const rc = await lie((req, s) =>
        s.write(
          protocol === 'text'
            ? 'VALUE k 0 5\r\nabcdefghij\r\nEND\r\n'
            : protocol === 'meta'
              ? `VA 5 f0 O${metaOpaque(req)}\r\nabcdefghij\r\n`
              : binaryReply(0x00, req.readUInt32BE(12), Buffer.from('ab'), 0, 4, 3),
        ),
      );
      assert.ok([Rc.PROTOCOL_ERROR, Rc.UNKNOWN_READ_FAILURE].includes(rc as 8 | 7), `rc ${rc}`);
    });

    if (protocol === 'meta') {
      test('a VA shorter than announced: the next replies are not taken for its data end', async () => {
        // 12 bytes announced, 3 sent, then status lines: the byte after 12 is not CR.
        const rc = await lie((req, s) => s.write(`VA 12 f0 O${metaOpaque(req)}\r\nabc\r\nEN\r\nEN\r\nEN\r\n`));
        assert.equal(rc, Rc.PROTOCOL_ERROR);
      });

      test('a reply not asked for (NS to a get, with the right opaque) and one with no opaque', async () => {
        assert.equal(await lie((req, s) => s.write(`NS O${metaOpaque(req)}\r\n`)), Rc.UNKNOWN_READ_FAILURE);
        assert.equal(await lie((_, s) => s.write('VA 2 f0\r\nok\r\n')), Rc.UNKNOWN_READ_FAILURE);
      });

      test('malformed return flags (opaque, client flags, CAS) and a bare HD to a get', async () => {
        assert.equal(await lie((_, s) => s.write('VA 2 f0 Oxyz\r\nok\r\n')), Rc.PROTOCOL_ERROR, 'O not a number');
        assert.equal(await lie((_, s) => s.write('VA 2 f0 O99999999999\r\nok\r\n')), Rc.PROTOCOL_ERROR, 'O over 2^32');
        assert.equal(await lie((req, s) => s.write(`VA 2 fx O${metaOpaque(req)}\r\nok\r\n`)), Rc.PROTOCOL_ERROR, 'f not a number');
        assert.equal(await lie((req, s) => s.write(`VA 2 f0 c-1 O${metaOpaque(req)}\r\nok\r\n`)), Rc.PROTOCOL_ERROR, 'c not a number');
        assert.equal(await lie((req, s) => s.write(`VA x f0 O${metaOpaque(req)}\r\nok\r\n`)), Rc.PROTOCOL_ERROR, 'VA length not a number');
        assert.equal(await lie((req, s) => s.write(`HD O${metaOpaque(req)}\r\n`)), Rc.UNKNOWN_READ_FAILURE, 'HD is no answer to mg v');
      });

      /** The O tokens of a quiet run of mg requests closed by mn, once the whole run has arrived. */
      function runOpaques(request: string): number[] | null {
        if (!request.endsWith('mn\r\n')) return null;
        return [...request.matchAll(/^mg [^\r\n]* q O(\d+)\r\n/gm)].map((m) => Number(m[1]));
      }

      test('a multi-get: hits out of order are placed by their opaque; one outside the run is a desync', async () => {
        let pending = '';
        fake.reply = (req, s) => {
          pending += req.toString('latin1');
          const o = runOpaques(pending);
          if (o === null) return;
          pending = '';
          s.write(`VA 1 f5 O${o[2]}\r\nc\r\nVA 1 f3 O${o[0]}\r\na\r\nMN\r\n`);
        };
        const got = await client.getMulti(['a', 'b', 'c']);
        assert.deepEqual([...got].map(([k, v]) => [k, v.value.toString(), v.flags]), [['a', 'a', 3], ['c', 'c', 5]]);

        const closesBefore = fake.closes;
        fake.reply = (req, s) => {
          pending += req.toString('latin1');
          const o = runOpaques(pending);
          if (o === null) return;
          pending = '';
          s.write(`VA 1 f0 O${(o[2]! + 1) >>> 0}\r\nx\r\nMN\r\n`);
        };
        assert.equal(await codeOf(client.getMulti(['a', 'b', 'c'])), Rc.UNKNOWN_READ_FAILURE);
        await waitFor(() => fake.closes > closesBefore);
        assert.equal(client.pendingRequests, 0);
      });

      test('a multi-get whose MN never comes: TIMEOUT, nothing left pending', async () => {
        let pending = '';
        fake.reply = (req, s) => {
          pending += req.toString('latin1');
          const o = runOpaques(pending);
          if (o === null) return;
          pending = '';
          s.write(`VA 1 f0 O${o[0]}\r\na\r\n`);
        };
        const closesBefore = fake.closes;
        assert.equal(await codeOf(client.getMulti(['a', 'b'])), Rc.TIMEOUT);
        await waitFor(() => fake.closes > closesBefore);
        assert.equal(client.pendingRequests, 0);
      });
    }

    test('a huge announced length is refused at once, not buffered', async () => {
      const started = Date.now();
      const rc = await lie((req, s) =>
        s.write(
          protocol === 'text'
            ? 'VALUE k 0 4000000000\r\n'
            : protocol === 'meta'
              ? `VA 4000000000 f0 O${metaOpaque(req)}\r\n`
              : binaryReply(0x00, req.readUInt32BE(12), Buffer.alloc(0), 0, 4, 0xfffffff0),
        ),
      );
      assert.equal(rc, Rc.PROTOCOL_ERROR);
      assert.ok(Date.now() - started < 250, 'refused before the timeout');
      recordRow({ area: 'memcached', case: `huge announced length (${protocol})`, done: 'a reply announcing about 4 GB', measured: `rc ${rc} after ${Date.now() - started} ms; nothing buffered`, outcome: 'refused at once' });
    });

    test('a reply that answers something else (out of order / not asked)', async () => {
      const rc = await lie((req, s) =>
        s.write(
          protocol === 'text'
            ? 'STORED\r\n'
            : protocol === 'meta'
              ? `VA 1 f0 O${(metaOpaque(req) + 7) >>> 0}\r\nv\r\n`
              : binaryReply(0x00, (req.readUInt32BE(12) + 7) >>> 0, Buffer.from('xxxxv'), 0, 4),
        ),
      );
      assert.equal(rc, Rc.UNKNOWN_READ_FAILURE);
      recordRow({ area: 'memcached', case: `reply out of order / not asked (${protocol})`, done: protocol === 'text' ? 'STORED in answer to a get' : 'a response with another opaque', measured: `rc ${rc}; connection dropped`, outcome: 'failed with a code' });
    });

    test('half a reply, then silence: TIMEOUT within the configured timeout', async () => {
      const started = Date.now();
      const rc = await lie((req, s) =>
        s.write(
          protocol === 'text'
            ? 'VALUE k 0 10\r\nabc'
            : protocol === 'meta'
              ? `VA 10 f0 O${metaOpaque(req)}\r\nabc`
              : binaryReply(0x00, req.readUInt32BE(12), Buffer.from('abc'), 0, 4, 10),
        ),
      );
      assert.equal(rc, Rc.TIMEOUT);
      assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
      recordRow({ area: 'memcached', case: `half a reply, then silence (${protocol})`, done: 'part of a value, then nothing; timeout 300 ms', measured: `rc ${rc} after ${Date.now() - started} ms`, outcome: 'timed out, connection dropped' });
    });

    test('many lies in a row do not pile up: each request ends with a code and memory stays put', async () => {
      fake.reply = (_, s) => s.write('\x81\x81\x81 garbage\r\n');
      const heapBefore = process.memoryUsage().heapUsed;
      const codes = await Promise.all(Array.from({ length: 500 }, (_, i) => codeOf(client.get(`k${i}`))));
      assert.ok(codes.every((rc) => rc !== Rc.SUCCESS));
      await waitFor(() => client.pendingRequests === 0);
      const grown = process.memoryUsage().heapUsed - heapBefore;
      assert.ok(grown < 50 * 1024 * 1024);
      recordRow({ area: 'memcached', case: `500 lies in a row (${protocol})`, done: '500 concurrent gets against garbage', measured: `500 codes, 0 pending after; heap ${(grown / 1048576).toFixed(1)} MB`, outcome: 'bounded' });
    });

    test('once the server behaves again, the client works (a fresh connection)', async () => {
      fake.reply = (req, s) => {
        if (protocol === 'text') s.write('VALUE k 0 2\r\nok\r\nEND\r\n');
        else if (protocol === 'meta') s.write(`VA 2 f0 O${metaOpaque(req)}\r\nok\r\n`);
        else s.write(binaryReply(0x00, req.readUInt32BE(12), Buffer.from('\0\0\0\0ok', 'latin1'), 0, 4));
      };
      const item = await client.get('k');
      assert.equal(item?.value.toString(), 'ok');
    });
  });
}
