// The HTTP listener (src/http/server.ts) and what it serves (src/http/metrics.ts), through real
// HTTP requests to a daemon on free 127.0.0.1 ports: /metrics after FastAGI sessions, /health up
// and down (a killed memcached, a snapshot that cannot be written), permit/deny, the request
// bounds (431, 413, a slowloris client) and many keep-alive connections at once.

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';

import { defaultSettings } from '../../src/config/settings.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { settingsFromText, startDaemon, type TestDaemon } from '../support/daemon.js';
import { FakeChannel } from '../support/fake-asterisk.js';
import { startMemcached } from '../support/memcached.js';

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface RequestOptions {
  method?: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  localAddress?: string;
  agent?: Agent | false;
}

function httpGet(port: number, path: string, o: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers: o.headers ?? {}, agent: o.agent ?? false, ...(o.localAddress ? { localAddress: o.localAddress } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`no answer to ${path}`)));
    req.end(o.body);
  });
}

function httpPort(d: TestDaemon): number {
  const a = d.daemon.httpAddress;
  assert.ok(a !== null, 'the HTTP listener is up');
  return a.port;
}

async function call(d: TestDaemon, script: string, args: string[]): Promise<string | undefined> {
  const ch = new FakeChannel();
  await ch.agi(d.url(script), args);
  return ch.getVar('MCDRESULT');
}

/** The value of one sample line of the exposition, e.g. `name{a="b"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('GET /metrics', () => {
  test('sessions, commands by name and code, the duration histogram and the embedded store', async () => {
    const d = await startDaemon('[general]\n');
    try {
      const port = httpPort(d);
      assert.equal(await call(d, 'mcdset', ['k1', 'hello']), '0');
      assert.equal(await call(d, 'MCD', ['k1']), '0');
      assert.equal(await call(d, 'MCD', ['absent']), '16');
      assert.equal(await call(d, 'MCD', ['absent2']), '16');
      assert.equal(await call(d, 'nosuchcommand', ['x']), '28');
      const r = await httpGet(port, '/metrics');
      assert.equal(r.status, 200);
      assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const m = r.body;
      assert.equal(sample(m, 'res_memcached_commands_total{command="mcdset",result="0"}'), 1);
      assert.equal(sample(m, 'res_memcached_commands_total{command="MCD",result="0"}'), 1);
      assert.equal(sample(m, 'res_memcached_commands_total{command="MCD",result="16"}'), 2);
      assert.equal(sample(m, 'res_memcached_commands_total{command="(unknown)",result="28"}'), 1, 'an unknown script is not a label of its own');
      assert.equal(sample(m, 'res_memcached_agi_sessions_total'), 5);
      assert.equal(sample(m, 'res_memcached_agi_sessions'), 0);
      assert.equal(sample(m, 'res_memcached_agi_session_duration_seconds_count'), 5);
      assert.equal(sample(m, 'res_memcached_agi_session_duration_seconds_bucket{le="+Inf"}'), 5);
      assert.ok((sample(m, 'res_memcached_agi_session_duration_seconds_bucket{le="10"}') ?? 0) === 5);
      assert.equal(sample(m, 'res_memcached_store_items'), 1);
      assert.ok((sample(m, 'res_memcached_store_bytes') ?? 0) > 0);
      assert.equal(sample(m, 'res_memcached_store_limit_bytes'), 64 * 1_048_576);
      assert.equal(sample(m, 'res_memcached_store_hits_total'), 1);
      assert.equal(sample(m, 'res_memcached_store_misses_total'), 2);
      assert.equal(sample(m, 'res_memcached_store_evictions_total'), 0);
      assert.equal(sample(m, 'res_memcached_leases_held'), 0);
      assert.match(m, /^# TYPE res_memcached_process_cpu_seconds_total counter$/m, 'process metrics, on the same registry');
      assert.match(m, /^# TYPE res_memcached_agi_session_duration_seconds histogram$/m);
      // No AMI link configured, no memcached: those series are absent, not 0.
      assert.doesNotMatch(m, /^res_memcached_(ami_up|snapshot_failing)\{/m);
    } finally {
      await d.stop();
    }
  });

  test('memcached requests by server with latency; server state follows a killed memcached; /health turns 503', async () => {
    const mc = await startMemcached();
    const d = await startDaemon(`[general]\nserver=${mc.address}\nretry_timeout=0.05\nserver_failure_limit=2\nconnect_timeout=300\ntimeout=500\n`);
    try {
      const port = httpPort(d);
      assert.equal(await call(d, 'mcdset', ['k', 'v']), '0');
      assert.equal(await call(d, 'MCD', ['k']), '0');
      let m = (await httpGet(port, '/metrics')).body;
      assert.ok((sample(m, `res_memcached_memcached_requests_total{server="${mc.address}",outcome="ok"}`) ?? 0) >= 2);
      assert.ok((sample(m, `res_memcached_memcached_request_duration_seconds_count{server="${mc.address}"}`) ?? 0) >= 2);
      assert.equal(sample(m, `res_memcached_memcached_server_state{server="${mc.address}",state="up"}`), 1);
      assert.equal(sample(m, `res_memcached_memcached_server_state{server="${mc.address}",state="dead"}`), 0);
      const ok = await httpGet(port, '/health');
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body), { status: 'ok', backend: 'memcached', reasons: [], servers: [{ server: mc.address, state: 'up' }] });

      await mc.kill();
      await until('the server marked dead', async () => {
        await call(d, 'MCD', ['k']);
        m = (await httpGet(port, '/metrics')).body;
        return sample(m, `res_memcached_memcached_server_state{server="${mc.address}",state="dead"}`) === 1;
      });
      assert.equal(sample(m, `res_memcached_memcached_server_state{server="${mc.address}",state="up"}`), 0);
      assert.ok((sample(m, `res_memcached_memcached_requests_total{server="${mc.address}",outcome="error"}`) ?? 0) >= 1);
      const down = await httpGet(port, '/health');
      assert.equal(down.status, 503);
      const body = JSON.parse(down.body) as { status: string; reasons: string[] };
      assert.equal(body.status, 'unavailable');
      assert.match(body.reasons.join('\n'), /all memcached servers are dead/);
    } finally {
      await d.stop();
      await mc.stop();
    }
  });

  test('follows the daemon across a reload onto a new memcached client', async () => {
    const mc = await startMemcached();
    const d = await startDaemon('[general]\n');
    try {
      const port = httpPort(d);
      await d.daemon.reload(settingsFromText(`[general]\nserver=${mc.address}\n`));
      assert.equal(await call(d, 'mcdset', ['k', 'v']), '0');
      const m = (await httpGet(port, '/metrics')).body;
      assert.ok((sample(m, `res_memcached_memcached_requests_total{server="${mc.address}",outcome="ok"}`) ?? 0) >= 1);
      assert.equal(sample(m, 'res_memcached_store_items'), 0, 'the embedded store is no longer the backend');
    } finally {
      await d.stop();
      await mc.stop();
    }
  });
});

describe('GET /health', () => {
  test('200 on the embedded store; 503 naming the snapshot when it cannot be written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'http-health-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const good = await startDaemon('[general]\n');
    try {
      const r = await httpGet(httpPort(good), '/health');
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { status: 'ok', backend: 'embedded', reasons: [] });
      assert.equal(r.headers['content-type'], 'application/json');
    } finally {
      await good.stop();
    }
    // A path under a regular file: no snapshot can ever be written there.
    const d = await startDaemon(`[general]\nembedded_snapshot=${join(file, 'store.snapshot')}\nembedded_snapshot_interval=0.1\n`);
    try {
      const port = httpPort(d);
      await call(d, 'mcdset', ['k', 'v']);
      let last: Reply | undefined;
      await until('/health 503', async () => (last = await httpGet(port, '/health')).status === 503);
      assert.match((JSON.parse(last!.body) as { reasons: string[] }).reasons.join(), /embedded store snapshot failing/);
      const m = (await httpGet(port, '/metrics')).body;
      assert.equal(sample(m, `res_memcached_snapshot_failing{path="${join(file, 'store.snapshot')}"}`), 1);
    } finally {
      await d.stop().catch(() => undefined);
    }
  });
});

describe('the listener', () => {
  test('404 for what no handler answers; 405 for a POST to /metrics; a mounted handler is asked after them', async () => {
    const d = await startDaemon('[general]\n');
    try {
      const port = httpPort(d);
      assert.equal((await httpGet(port, '/nothing-here')).status, 404);
      assert.equal((await httpGet(port, '/metrics', { method: 'POST', body: 'x' })).status, 405);
      assert.ok(d.daemon.addHttpHandler(async (r) => (r.rawPath === '/echo' ? { status: 200, body: `${r.method} ${r.query.get('a')} ${r.body.toString()}` } : null)));
      assert.equal((await httpGet(port, '/echo?a=1', { method: 'POST', body: 'hi' })).body, 'POST 1 hi');
      assert.equal((await httpGet(port, '/health')).status, 200, 'the built-in handlers still answer');
      d.daemon.addHttpHandler(async (r) => {
        if (r.rawPath === '/boom') throw new Error('handler bug');
        return null;
      });
      assert.equal((await httpGet(port, '/boom')).status, 500);
      assert.ok(d.logs.some((l) => l.msg === 'HTTP handler failed' && l.path === '/boom'));
      assert.equal((await httpGet(port, '/still-404')).status, 404);
    } finally {
      await d.stop();
    }
  });

  test('permit/deny: a refused peer is cut at connect, and a reload changes the rules', async () => {
    const d = await startDaemon('[general]\n[http]\ndeny=127.0.0.3/32\n');
    try {
      const port = httpPort(d);
      assert.equal((await httpGet(port, '/health', { localAddress: '127.0.0.1' })).status, 200);
      await assert.rejects(httpGet(port, '/health', { localAddress: '127.0.0.3' }), /ECONNRESET|socket hang up/);
      assert.ok(d.logs.some((l) => String(l.msg).includes('[http] permit/deny') && l.address === '127.0.0.3'));
      await d.daemon.reload(settingsFromText('[general]\n[http]\ndeny=127.0.0.0/8\npermit=127.0.0.3/32\n'));
      assert.equal((await httpGet(port, '/health', { localAddress: '127.0.0.3' })).status, 200);
      await assert.rejects(httpGet(port, '/health', { localAddress: '127.0.0.1' }), /ECONNRESET|socket hang up/);
    } finally {
      await d.stop();
    }
  });

  test('oversized headers: 431; oversized body: 413 (declared or chunked); a body within the bound is read', async () => {
    const d = await startDaemon('[general]\n');
    try {
      const port = httpPort(d);
      assert.equal((await httpGet(port, '/health', { headers: { 'x-big': 'a'.repeat(20_000) } })).status, 431);
      assert.equal((await httpGet(port, '/health', { method: 'POST', body: Buffer.alloc(70 * 1024, 97) })).status, 413);
      assert.equal((await httpGet(port, '/health', { method: 'POST', body: Buffer.alloc(70 * 1024, 97), headers: { 'transfer-encoding': 'chunked' } })).status, 413);
      let seen = -1;
      d.daemon.addHttpHandler(async (r) => {
        seen = r.body.length;
        return { status: 204, body: '' };
      });
      assert.equal((await httpGet(port, '/body', { method: 'POST', body: Buffer.alloc(64 * 1024, 97) })).status, 204);
      assert.equal(seen, 64 * 1024);
    } finally {
      await d.stop();
    }
  });

  test('a slowloris client (headers a byte at a time, forever) is cut after request_timeout; others are served meanwhile', async () => {
    const d = await startDaemon('[general]\n[http]\nrequest_timeout=1000\n');
    try {
      const port = httpPort(d);
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const started = Date.now();
      const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
      socket.write('GET /health HTTP/1.1\r\nHost: x\r\n');
      let stop = false;
      const drip = (async () => {
        for (let i = 0; !stop && !socket.destroyed; i++) {
          socket.write(i % 2 === 0 ? 'X' : '-');
          await sleep(50);
        }
      })();
      for (let i = 0; i < 5; i++) {
        const t = Date.now();
        assert.equal((await httpGet(port, '/health')).status, 200);
        assert.ok(Date.now() - t < 500, 'served at once beside the slow client');
        await sleep(100);
      }
      const after = await Promise.race([closed, sleep(5000).then(() => -1)]);
      stop = true;
      await drip;
      assert.ok(after >= 900, `cut after the timeout, not before (${after} ms)`);
      assert.ok(after < 2500, `cut within the timeout and its check interval (${after} ms)`);
    } finally {
      await d.stop();
    }
  });

  test('many concurrent keep-alive connections, each with several requests; max_connections cuts the one over', async () => {
    const d = await startDaemon('[general]\n[http]\nmax_connections=64\n');
    try {
      const port = httpPort(d);
      const agent = new Agent({ keepAlive: true, maxSockets: 50 });
      try {
        const replies = await Promise.all(Array.from({ length: 400 }, (_, i) => httpGet(port, i % 2 === 0 ? '/health' : '/metrics', { agent })));
        assert.ok(replies.every((r) => r.status === 200));
        const open = Object.values(agent.freeSockets).reduce((n, list) => n + (list?.length ?? 0), 0);
        assert.ok(open > 1 && open <= 50, `connections were kept alive and reused (${open} free)`);
      } finally {
        agent.destroy();
      }
      const small = await startDaemon('[general]\n[http]\nmax_connections=2\n');
      try {
        const p = httpPort(small);
        const held = [connect({ host: '127.0.0.1', port: p }), connect({ host: '127.0.0.1', port: p })];
        await Promise.all(held.map((s) => new Promise((resolve) => s.once('connect', resolve))));
        await sleep(100);
        await assert.rejects(httpGet(p, '/health'), /ECONNRESET|socket hang up/);
        for (const s of held) s.destroy();
        await until('a slot frees', async () => (await httpGet(p, '/health').catch(() => ({ status: 0 }))).status === 200);
      } finally {
        await small.stop();
      }
    } finally {
      await d.stop();
    }
  });

  test('[http] enabled=no: no listener, nothing mounted', async () => {
    const d = await startDaemon('[general]\n[http]\nenabled=no\n');
    try {
      assert.equal(d.daemon.httpAddress, null);
      assert.equal(d.daemon.metrics, null);
      assert.equal(d.daemon.addHttpHandler(async () => null), false);
    } finally {
      await d.stop();
    }
  });

  test('a busy port stops the start naming [http] port=, and the FastAGI listener is released', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as AddressInfo).port;
    try {
      const settings = defaultSettings();
      settings.agi.port = 0;
      settings.embeddedSnapshot = null;
      settings.http.port = port;
      const error = await Daemon.start(settings, pino({ level: 'silent' })).then(
        () => assert.fail('started on a busy port'),
        (err: unknown) => err as Error,
      );
      assert.match(error.message, new RegExp(`cannot listen for HTTP on 127\\.0\\.0\\.1:${port} \\(\\[http\\] bindaddr=, port=\\).*EADDRINUSE`));
    } finally {
      busy.close();
    }
  });
});

describe('the inline door on the listener', () => {
  test('a dialplan command over real HTTP as CURL() sends it: GET with path arguments, POST with the value, keep-alive; /metrics and /health still answer', async () => {
    const d = await startDaemon('[general]\n');
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    try {
      const port = httpPort(d);
      const set = await httpGet(port, '/mcdset/door%20key', { method: 'POST', body: 'some value, with a comma + plus', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, agent });
      // A space in a key is refused as over FastAGI (33), and nothing is written.
      assert.equal(set.status, 200);
      assert.equal(set.headers['x-mcd-result'], '33');
      const ok = await httpGet(port, '/mcdset/door-key', { method: 'POST', body: 'some value, with a comma + plus', agent });
      assert.equal(ok.headers['x-mcd-result'], '0');
      const got = await httpGet(port, '/MCD/door-key', { agent });
      assert.deepEqual([got.status, got.headers['x-mcd-result'], got.body], [200, '0', 'some value, with a comma + plus']);
      const counts = await Promise.all(Array.from({ length: 20 }, () => httpGet(port, '/MCDCOUNTER/door-calls/1', { agent }).then((r) => r.body)));
      assert.equal(counts.filter((c) => c === '').length, 20, 'a missing counter: 16 and an empty body');
      await httpGet(port, '/mcdcounterset/door-calls/0', { agent });
      const bumped = await Promise.all(Array.from({ length: 20 }, () => httpGet(port, '/MCDCOUNTER/door-calls/1', { agent }).then((r) => Number(r.body))));
      assert.deepEqual(bumped.sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1));
      assert.equal((await httpGet(port, '/health', { agent })).status, 200);
      const metrics = (await httpGet(port, '/metrics', { agent })).body;
      assert.match(metrics, /res_memcached_store_items /);
      // The door's commands are counted like FastAGI's.
      assert.equal(sample(metrics, 'res_memcached_commands_total{command="MCDCOUNTER",result="0"}'), 20);
      assert.equal(sample(metrics, 'res_memcached_commands_total{command="mcdset",result="33"}'), 1);
      assert.equal((await httpGet(port, '/nothing-here', { agent })).status, 404);
    } finally {
      agent.destroy();
      await d.stop();
    }
  });
});
