// The inline door (src/http/door.ts) driven directly with request objects, as the HTTP listener
// would hand them over, on the embedded store and on real memcached: every command, every class
// of refusal, percent-encoding edge cases, POST bodies byte for byte, ?ttl=, ?format=hash as
// func_curl's hashcompat reads it, ?channel= for leases, and parallel counters.

import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import { COMMANDS } from '../../src/dialplan/registry.js';
import type { DialplanLog } from '../../src/dialplan/runner.js';
import { doorHandler } from '../../src/http/door.js';
import type { HttpHandler, HttpResponse } from '../../src/http/types.js';
import { startDaemon, type TestDaemon } from '../support/daemon.js';
import { startMemcached, type MemcachedProcess } from '../support/memcached.js';

let unique = 0;
const n = (label: string): string => `${label}_${process.pid}_${++unique}`;

interface Logged {
  level: 'debug' | 'warn';
  fields: Record<string, unknown>;
  message: string;
}

function door(d: TestDaemon, logged: Logged[] = []): HttpHandler {
  const log: DialplanLog = {
    debug: (fields, message) => void logged.push({ level: 'debug', fields: fields as Record<string, unknown>, message }),
    warn: (fields, message) => void logged.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
  };
  return doorHandler({ current: () => ({ backend: d.daemon.backend, leases: d.daemon.leases, settings: d.daemon.dialplan }), log });
}

/**
 * The door as Asterisk's CURL() reaches it: a real HTTP request to the daemon's listener (keep-alive),
 * the answer turned back into an HttpResponse with the header names as the door wrote them.
 */
function wire(d: TestDaemon, agent: Agent): HttpHandler {
  return (req) =>
    new Promise((resolve, reject) => {
      const address = d.daemon.httpAddress;
      assert.ok(address !== null, 'the HTTP listener is up');
      const query = req.query.toString();
      const r = request({ host: '127.0.0.1', port: address.port, method: req.method, path: req.rawPath + (query === '' ? '' : `?${query}`), agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (let i = 0; i < res.rawHeaders.length; i += 2) headers[res.rawHeaders[i]!] = res.rawHeaders[i + 1]!;
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
        });
        res.on('error', reject);
      });
      r.on('error', reject);
      r.end(req.body);
    });
}

async function send(h: HttpHandler, method: string, target: string, body: Buffer | string = ''): Promise<HttpResponse> {
  const q = target.indexOf('?');
  const response = await h({
    method,
    rawPath: q === -1 ? target : target.slice(0, q),
    query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1)),
    headers: {},
    body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1'),
    remoteAddress: '127.0.0.1',
  });
  assert.ok(response !== null, `${method} ${target}: the door declined it`);
  return response;
}

const get = (h: HttpHandler, target: string): Promise<HttpResponse> => send(h, 'GET', target);
const post = (h: HttpHandler, target: string, body: Buffer | string): Promise<HttpResponse> => send(h, 'POST', target, body);
const bodyOf = (r: HttpResponse): Buffer => (Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'latin1'));
const text = (r: HttpResponse): string => bodyOf(r).toString('latin1');
const code = (r: HttpResponse): string | undefined => r.headers?.['X-MCD-Result'];

/** 200 (the command ran), the code, and the body. */
function expect(r: HttpResponse, rc: number, body: string | Buffer): void {
  assert.equal(r.status, 200);
  assert.equal(code(r), String(rc), `X-MCD-Result (body ${JSON.stringify(text(r))})`);
  assert.deepEqual(bodyOf(r), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1'));
}

const mcs: MemcachedProcess[] = [];
before(async () => {
  mcs.push(await startMemcached());
});
after(async () => {
  await Promise.all(mcs.map((m) => m.stop()));
});

const backends = [
  { name: 'the embedded store', config: () => '[general]\nkeyprefix=t:\nnode_id=pbx1\n' },
  { name: 'memcached (binary protocol)', config: () => `[general]\nserver=${mcs[0]!.address}\nbinary_proto=yes\nkeyprefix=t:\nnode_id=pbx1\n` },
  { name: 'memcached (meta protocol)', config: () => `[general]\nserver=${mcs[0]!.address}\nprotocol=meta\nkeyprefix=m:\nnode_id=pbx1\n` },
];

for (const backend of backends) {
  describe(`the HTTP door on ${backend.name}`, () => {
    let d: TestDaemon;
    let h: HttpHandler;
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    before(async () => {
      d = await startDaemon(backend.config());
      // Over real HTTP, through the daemon's own listener and the door it mounts.
      h = wire(d, agent);
    });
    after(async () => {
      agent.destroy();
      await d.stop();
    });

    test('every command of the registry is reachable, any case', async () => {
      for (const command of COMMANDS) {
        for (const name of [command.name, command.name.toLowerCase(), command.name.toUpperCase()]) {
          const r = await get(h, `/${name}`);
          assert.equal(r.status, 200, name);
          // No arguments: refused for want of one, never "no such command".
          assert.equal(code(r), '127', name);
        }
      }
    });

    test('MCDCOUNTER counts and answers the counter; a negative increment counts down; a missing counter is 16', async () => {
      const key = n('ctr');
      expect(await get(h, `/MCDCOUNTER/${key}/1`), 16, '');
      expect(await get(h, `/mcdcounterset/${key}/0`), 0, '');
      const r = await get(h, `/MCDCOUNTER/${key}/1`);
      expect(r, 0, '1');
      assert.equal(r.headers?.['X-MCD-Result-Name'], 'MEMCACHED_SUCCESS');
      expect(await get(h, `/mcdcounter/${key}/10`), 0, '11');
      expect(await get(h, `/MCDCOUNTER/${key}/-4`), 0, '7');
      expect(await get(h, `/MCDCOUNTER/${key}/x`), 124, '');
    });

    test('writes answer an empty body; MCD and mcdget read the value; a miss is 16 with an empty body', async () => {
      const key = n('w');
      expect(await get(h, `/mcdset/${key}/hello`), 0, '');
      expect(await get(h, `/MCD/${key}`), 0, 'hello');
      expect(await get(h, `/mcdget/V/${key}`), 0, 'hello');
      expect(await get(h, `/mcdadd/${key}/x`), 14, '');
      expect(await get(h, `/mcdreplace/${key}/world`), 0, '');
      expect(await get(h, `/mcdappend/${key}/!`), 0, '');
      expect(await get(h, `/mcdprepend/${key}/%3E`), 0, '');
      expect(await get(h, `/MCD/${key}`), 0, '>world!');
      expect(await get(h, `/mcdtouch/${key}/100`), 0, '');
      expect(await get(h, `/mcddelete/${key}`), 0, '');
      expect(await get(h, `/mcddelete/${key}`), 16, '');
      expect(await get(h, `/MCD/${key}`), 16, '');
      expect(await get(h, `/mcdreplace/${key}/x`), 14, '');
      expect(await get(h, `/mcdcounterset/${key}/41`), 0, '');
      expect(await get(h, `/MCDCOUNTER/${key}`), 0, '41');
    });

    test('mcdgets answers the value (the CAS token rides in ?format=hash); mcdcas with it stores, with a stale one 12', async () => {
      const key = n('cas');
      await get(h, `/mcdset/${key}/one`);
      expect(await get(h, `/mcdgets/V/${key}`), 0, 'one');
      const hash = text(await get(h, `/mcdgets/V/${key}?format=hash`));
      const m = /^value=one&mcdcas=([0-9]+)&result=0$/.exec(hash);
      assert.ok(m !== null, hash);
      expect(await post(h, `/mcdcas/${key}/${m[1]}`, 'two'), 0, '');
      expect(await post(h, `/mcdcas/${key}/${m[1]}`, 'three'), 12, '');
      expect(await get(h, `/MCD/${key}`), 0, 'two');
      expect(await get(h, `/mcdcas/${key}/0/x`), 38, '');
    });

    test('a POST body is the last argument byte for byte: commas, spaces at the edges, +, %, non-UTF-8 bytes', async () => {
      const key = n('post');
      const value = Buffer.concat([Buffer.from(' a,b + c %20 &x=y ', 'latin1'), Buffer.from([0xff, 0xfe, 0xc3, 0xa9])]);
      expect(await post(h, `/mcdset/${key}`, value), 0, '');
      expect(await get(h, `/MCD/${key}`), 0, value);
      assert.deepEqual((await d.daemon.backend.get(key))?.value, value);
      expect(await post(h, `/mcdset/${key}`, ''), 0, '');
      expect(await get(h, `/MCD/${key}`), 0, '');
    });

    test('a value the dialplan cannot carry (CR, LF, NUL) is refused with 122 and nothing is stored', async () => {
      const key = n('crlf');
      for (const bad of ['a\r\nb', 'a\nb', 'a\rb', 'a\0b']) expect(await post(h, `/mcdset/${key}`, bad), 122, '');
      expect(await get(h, `/mcdset/${key}/a%0Ab`), 122, '');
      expect(await get(h, `/MCD/${key}`), 16, '');
      // Stored by someone else: read back as 122 with an empty body, as FastAGI does.
      await d.daemon.backend.set(key, 'x\ny');
      expect(await get(h, `/MCD/${key}`), 122, '');
    });

    test('keys: %00 and %20 are 33, too long 126, missing 127; %2F is a / inside the key; + is literal; bad escapes are bytes', async () => {
      expect(await get(h, `/mcdset/a%00b/v`), 33, '');
      expect(await get(h, `/mcdset/a%20b/v`), 33, '');
      expect(await get(h, `/mcdset/${'k'.repeat(65)}/v`), 126, '');
      expect(await get(h, `/mcdset//v`), 127, '');
      expect(await get(h, `/mcdset`), 127, '');
      const slash = n('a%2Fb');
      expect(await get(h, `/mcdset/${slash}/s`), 0, '');
      assert.equal((await d.daemon.backend.get(slash.replace('%2F', '/')))?.value.toString(), 's');
      expect(await get(h, `/MCD/${slash.replace('%2F', '%2f')}`), 0, 's');
      const plus = n('p+q');
      expect(await get(h, `/mcdset/${plus}/a+b`), 0, '');
      assert.equal((await d.daemon.backend.get(plus))?.value.toString(), 'a+b');
      // %FF is not UTF-8: the key is the raw byte, as FastAGI passes Asterisk's bytes.
      const raw = n('u');
      expect(await get(h, `/mcdset/${raw}%FF/r`), 0, '');
      assert.equal((await d.daemon.backend.get(Buffer.concat([Buffer.from(raw), Buffer.from([0xff])])))?.value.toString(), 'r');
      // A '%' without two hex digits stays a '%'.
      const pct = n('pct');
      expect(await get(h, `/mcdset/${pct}%G1/v%`), 0, '');
      assert.equal((await d.daemon.backend.get(`${pct}%G1`))?.value.toString(), 'v%');
    });

    test('value limit: max_value_length bytes pass, one more is 125', async () => {
      const key = n('big');
      expect(await post(h, `/mcdset/${key}`, 'v'.repeat(4096)), 0, '');
      expect(await post(h, `/mcdset/${key}`, 'v'.repeat(4097)), 125, '');
      expect(await get(h, `/MCD/${key}`), 0, 'v'.repeat(4096));
    });

    test('?ttl= applies (any case), a bad one and an unknown option are 38 and nothing is written', async () => {
      const key = n('ttl');
      expect(await get(h, `/mcdset/${key}/v?ttl=x`), 38, '');
      expect(await get(h, `/mcdset/${key}/v?tll=5`), 38, '');
      expect(await get(h, `/MCD/${key}`), 16, '');
      expect(await get(h, `/mcdset/${key}/v?TTL=1`), 0, '');
      expect(await get(h, `/MCD/${key}`), 0, 'v');
      await sleep(2100);
      expect(await get(h, `/MCD/${key}`), 16, '');
    });

    test('?format=hash: value and result percent-encoded with %20, never +; a miss and a refusal too; another format is 38', async () => {
      const key = n('hash');
      const value = Buffer.from('a b+c&d=e,\u00e9~', 'utf8');
      await post(h, `/mcdset/${key}`, value);
      const r = await get(h, `/MCD/${key}?format=hash`);
      expect(r, 0, 'value=a%20b%2Bc%26d%3De%2C%C3%A9~&result=0');
      assert.equal(r.headers?.['Content-Type'], 'application/x-www-form-urlencoded');
      expect(await get(h, `/MCD/${n('none')}?format=hash`), 16, 'value=&result=16');
      expect(await get(h, `/mcdset/${key}/v?format=hash`), 0, 'value=&result=0');
      expect(await get(h, `/mcdset/a%00/v?format=HASH`), 33, 'value=&result=33');
      expect(await get(h, `/MCD/${key}?format=xml`), 38, '');
    });

    test('leases and locks take the channel from ?channel=; without it they answer 127 (ERROR for mcdlimit/mcdlock)', async () => {
      const name = n('lim');
      expect(await get(h, `/mcdlimit/${name}/1?channel=1700000000.1`), 0, 'OK');
      expect(await get(h, `/mcdlimit/${name}/1?channel=1700000000.2`), 0, 'FULL');
      expect(await get(h, `/MCDLIMITCOUNT/${name}`), 0, '1');
      expect(await get(h, `/mcdlimit/${name}/1?channel=1700000000.1&format=hash`), 0, 'value=OK&mcdlimitcount=1&result=0');
      expect(await get(h, `/mcdlimit/${name}/1`), 127, 'ERROR');
      expect(await get(h, `/mcdlimit/${name}/1?channel=`), 127, 'ERROR');
      expect(await get(h, `/mcdrelease/${name}`), 127, '');
      expect(await get(h, `/mcdrelease/${name}?channel=1700000000.2`), 16, '');
      expect(await get(h, `/mcdrelease/${name}?channel=1700000000.1`), 0, '');
      expect(await get(h, `/MCDLIMITCOUNT/${name}`), 0, '0');
      expect(await get(h, `/mcdlimit/${name}/0?channel=1700000000.1`), 38, 'ERROR');

      const lock = n('lock');
      expect(await get(h, `/mcdlock/${lock}?channel=1700000000.1`), 0, 'OK');
      expect(await get(h, `/mcdlock/${lock}/0?channel=1700000000.2`), 0, 'TIMEOUT');
      expect(await get(h, `/mcdunlock/${lock}?channel=1700000000.2`), 16, '');
      expect(await get(h, `/mcdunlock/${lock}?channel=1700000000.1`), 0, '');
      expect(await get(h, `/mcdlock/${lock}/0?channel=1700000000.2`), 0, 'OK');
    });

    test('100 parallel MCDCOUNTER increments: every count from 1 to 100 once', async () => {
      const key = n('par');
      expect(await get(h, `/mcdcounterset/${key}/0`), 0, '');
      const answers = await Promise.all(Array.from({ length: 100 }, () => get(h, `/MCDCOUNTER/${key}/1`)));
      assert.ok(answers.every((r) => code(r) === '0'));
      assert.deepEqual(answers.map((r) => Number(text(r))).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
      expect(await get(h, `/MCDCOUNTER/${key}/0`), 0, '100');
    });
  });
}

describe('the HTTP door around its commands', () => {
  let d: TestDaemon;
  before(async () => {
    d = await startDaemon('[general]\nresult_format=name\n');
  });
  after(async () => {
    await d.stop();
  });

  test('paths outside the mcd* commands are not its own (null); an unknown mcd* command is 404 with 28', async () => {
    const h = door(d);
    for (const path of ['/', '/metrics', '/health', '', 'MCD/x']) {
      assert.equal(await h({ method: 'GET', rawPath: path, query: new URLSearchParams(), headers: {}, body: Buffer.alloc(0), remoteAddress: '127.0.0.1' }), null, path);
    }
    const r = await get(h, '/mcdnothing/x');
    assert.equal(r.status, 404);
    assert.equal(code(r), '28');
    assert.equal(r.headers?.['X-MCD-Result-Name'], 'MEMCACHED_NOT_SUPPORTED');
  });

  test('a method other than GET or POST is 405 with 38', async () => {
    const r = await send(door(d), 'PUT', '/mcdset/k/v');
    assert.equal(r.status, 405);
    assert.equal(code(r), '38');
    assert.equal(r.headers?.['Allow'], 'GET, POST');
  });

  test('result_format=name: the hash result is the name; X-MCD-Result stays the number', async () => {
    const r = await get(door(d), `/MCD/${n('miss')}?format=hash`);
    expect(r, 16, 'value=&result=MEMCACHED_NOTFOUND');
  });

  test('ordinary codes are logged at debug, refusals as warnings with the reason', async () => {
    const logged: Logged[] = [];
    const h = door(d, logged);
    await get(h, `/MCD/${n('miss')}`);
    await get(h, '/mcdset/a%00/v');
    assert.deepEqual(logged.map((l) => [l.level, l.fields['command'], l.fields['rc']]), [['debug', 'MCD', 16], ['warn', 'mcdset', 33]]);
    assert.equal(logged[1]!.fields['via'], 'http');
  });

  test('each request uses the generation current then: a reload to another keyprefix applies to the next request', async () => {
    const h = door(d);
    const key = n('gen');
    await get(h, `/mcdset/${key}/before`);
    const original = d.daemon.settings;
    await d.daemon.reload({ ...original, keyPrefix: 'other:' });
    expect(await get(h, `/MCD/${key}`), 16, '');
    await d.daemon.reload(original);
    expect(await get(h, `/MCD/${key}`), 0, 'before');
  });
});
