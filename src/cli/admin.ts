// The admin verbs: get, set, delete, incr, stats, leases. Against the config's server= lines
// through the Client, as the daemon reaches them; with no server= the data lives in the running
// daemon's embedded store, reachable from outside only through its HTTP listener's inline door
// (src/http/door.ts), so the verbs speak the door's GET /<command>/<arg> there.

import { request } from 'node:http';
import { Client } from '../cluster/client.js';
import type { Settings } from '../config/settings.js';
import { clientOptionsFromSettings } from '../daemon/client-options.js';
import { LeaseEngine } from '../leases/engine.js';
import { MemcachedError, Rc, rcName, rcText, ResultError } from '../util/errors.js';
import { UsageError, type Io } from './io.js';
import { readSettingsReporting } from './settings-source.js';

export type AdminVerb = 'get' | 'set' | 'delete' | 'incr' | 'stats' | 'leases';

export interface AdminOptions {
  ttl?: string;
  server?: string;
}

/** What each verb needs of a store, whichever side of the door it is on. */
interface AdminStore {
  get(key: string): Promise<Buffer>;
  set(key: string, value: Buffer, ttl: number | undefined): Promise<void>;
  delete(key: string): Promise<void>;
  incr(key: string, delta: bigint): Promise<bigint>;
  /** One row per figure: [where, name, value]. */
  stats(server: string | undefined): Promise<{ rows: string[][]; failures: string[] }>;
  leases(name: string): Promise<number>;
  close(): Promise<void>;
}

export async function runAdmin(verb: AdminVerb, args: readonly string[], options: AdminOptions, configPath: string | undefined, io: Io): Promise<number> {
  const call = parseCall(verb, args, options);
  const settings = readSettingsReporting(configPath, io);
  if (call.server !== undefined && settings.servers.length === 0) throw new UsageError('--server needs server= lines in the config');
  const store = settings.servers.length === 0 ? new DoorStore(settings, configPath) : new ClusterStore(settings);
  try {
    switch (verb) {
      case 'get':
        writeValue(io, await store.get(call.key));
        return 0;
      case 'set':
        await store.set(call.key, call.value, call.ttl);
        return 0;
      case 'delete':
        await store.delete(call.key);
        return 0;
      case 'incr':
        writeValue(io, Buffer.from(String(await store.incr(call.key, call.delta)), 'latin1'));
        return 0;
      case 'leases':
        writeValue(io, Buffer.from(String(await store.leases(call.key)), 'latin1'));
        return 0;
      case 'stats': {
        const { rows, failures } = await store.stats(call.server);
        if (rows.length > 0) io.out(rows.map((r) => r.join('\t')).join('\n') + '\n');
        for (const f of failures) io.err(`res-memcached: stats ${f}\n`);
        return failures.length > 0 ? 1 : 0;
      }
    }
  } catch (err) {
    if (!(err instanceof ResultError)) throw err;
    const detail = err.message !== rcText(err.rc) && err.message.length > 0 ? `: ${err.message}` : '';
    const subject = verb === 'stats' ? 'stats' : `${verb} ${call.key}`;
    io.err(`res-memcached: ${subject}: ${err.code} (${err.rc})${detail}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

/** A value as stored: byte-exact, with a newline only for a person at a terminal. */
function writeValue(io: Io, value: Buffer): void {
  io.bytes(value);
  if (io.isTty) io.out('\n');
}

interface Call {
  key: string;
  value: Buffer;
  ttl: number | undefined;
  delta: bigint;
  server: string | undefined;
}

function parseCall(verb: AdminVerb, args: readonly string[], options: AdminOptions): Call {
  const want = (min: number, max: number, shape: string): void => {
    if (args.length < min || args.length > max) throw new UsageError(`${verb} takes ${shape}`);
  };
  const call: Call = { key: args[0] ?? '', value: Buffer.alloc(0), ttl: undefined, delta: 1n, server: options.server };
  switch (verb) {
    case 'get':
    case 'delete':
      want(1, 1, 'one KEY');
      break;
    case 'leases':
      want(1, 1, 'one NAME');
      break;
    case 'set':
      want(2, 2, 'KEY VALUE');
      call.value = Buffer.from(args[1]!, 'utf8');
      if (options.ttl !== undefined) {
        if (!/^\d{1,10}$/.test(options.ttl)) throw new UsageError(`--ttl ${JSON.stringify(options.ttl)}: seconds, 0 or more`);
        call.ttl = Number(options.ttl);
      }
      break;
    case 'incr':
      want(1, 2, 'KEY [N]');
      if (args[1] !== undefined) {
        if (!/^-?\d{1,20}$/.test(args[1])) throw new UsageError(`incr N ${JSON.stringify(args[1])}: a whole number (negative decrements)`);
        call.delta = BigInt(args[1]);
      }
      break;
    case 'stats':
      want(0, 0, 'no arguments');
      break;
  }
  return call;
}

class ClusterStore implements AdminStore {
  readonly #client: Client;
  readonly #settings: Settings;

  constructor(settings: Settings) {
    this.#settings = settings;
    this.#client = new Client(clientOptionsFromSettings(settings));
  }

  async get(key: string): Promise<Buffer> {
    const item = await this.#client.get(key);
    if (item === null) throw new MemcachedError(Rc.NOTFOUND);
    return item.value;
  }

  async set(key: string, value: Buffer, ttl: number | undefined): Promise<void> {
    // The config's ttl= when --ttl is not given, as the dialplan's mcdset and the door do.
    await this.#client.set(key, value, { ttl: ttl ?? this.#settings.ttl });
  }

  async delete(key: string): Promise<void> {
    await this.#client.delete(key);
  }

  async incr(key: string, delta: bigint): Promise<bigint> {
    return delta < 0n ? this.#client.decr(key, -delta) : this.#client.incr(key, delta);
  }

  async stats(server: string | undefined): Promise<{ rows: string[][]; failures: string[] }> {
    const all = await this.#client.stats();
    const chosen = server === undefined ? all : all.filter((s) => s.server === server);
    if (chosen.length === 0) throw new UsageError(`--server ${server}: not one of the config's server= lines (${all.map((s) => s.server).join(', ')})`);
    const rows: string[][] = [];
    const failures: string[] = [];
    for (const s of chosen) {
      if (s.rc !== Rc.SUCCESS) {
        failures.push(`${s.server}: ${rcName(s.rc)} (${s.rc})${s.error !== undefined ? `: ${s.error}` : ''}`);
        continue;
      }
      for (const [name, value] of Object.entries(s.value ?? {})) rows.push([s.server, name, value]);
    }
    return { rows, failures };
  }

  async leases(name: string): Promise<number> {
    // Counting reads the shared slots only; this engine takes no lease of its own.
    const engine = new LeaseEngine(this.#client, { nodeId: this.#settings.nodeId, leaseTtl: this.#settings.leaseTtl });
    return engine.count(name);
  }

  async close(): Promise<void> {
    await this.#client.close();
  }
}

/** The embedded store's figures on /metrics (src/http/metrics.ts), named as stats shows them. */
const STORE_METRIC = /^res_memcached_store_([a-z_]+) (\S+)$/;

class DoorStore implements AdminStore {
  readonly #host: string;
  readonly #port: number;
  readonly #enabled: boolean;
  readonly #configName: string;

  constructor(settings: Settings, configPath: string | undefined) {
    // A listener on every address answers on loopback too; the CLI runs on the daemon's host.
    const wildcard = settings.http.bindaddr === '0.0.0.0' || settings.http.bindaddr === '::';
    this.#host = wildcard ? '127.0.0.1' : settings.http.bindaddr;
    this.#port = settings.http.port;
    this.#enabled = settings.http.enabled;
    this.#configName = configPath ?? settings.source ?? 'the config';
  }

  async get(key: string): Promise<Buffer> {
    return this.#door('GET', ['MCD', key]);
  }

  async set(key: string, value: Buffer, ttl: number | undefined): Promise<void> {
    await this.#door('POST', ['mcdset', key], value, ttl === undefined ? '' : `?ttl=${ttl}`);
  }

  async delete(key: string): Promise<void> {
    await this.#door('GET', ['mcddelete', key]);
  }

  async incr(key: string, delta: bigint): Promise<bigint> {
    return BigInt((await this.#door('GET', ['MCDCOUNTER', key, String(delta)])).toString('latin1'));
  }

  async stats(): Promise<{ rows: string[][]; failures: string[] }> {
    // /metrics rather than /health: it carries the store's items, bytes, hits and misses.
    const { status, body } = await this.#fetch('GET', '/metrics');
    if (status !== 200) throw new ResultError(Rc.FAILURE, `GET /metrics answered HTTP ${status}`);
    const rows: string[][] = [];
    for (const line of body.toString('utf8').split('\n')) {
      const m = STORE_METRIC.exec(line);
      if (m !== null) rows.push(['embedded', m[1]!, m[2]!]);
    }
    return { rows, failures: [] };
  }

  async leases(name: string): Promise<number> {
    return Number((await this.#door('GET', ['MCDLIMITCOUNT', name])).toString('latin1'));
  }

  async close(): Promise<void> {}

  async #door(method: 'GET' | 'POST', segments: string[], body?: Buffer, query = ''): Promise<Buffer> {
    const path = '/' + segments.map(percentEncode).join('/') + query;
    const res = await this.#fetch(method, path, body);
    const rcText = res.headers['x-mcd-result'];
    if (typeof rcText !== 'string' || !/^\d+$/.test(rcText)) {
      throw new ResultError(Rc.FAILURE, `${this.#host}:${this.#port} answered HTTP ${res.status} without X-MCD-Result: not the res-memcached door?`);
    }
    const rc = Number(rcText);
    if (rc !== Rc.SUCCESS) throw new ResultError(rc);
    return res.body;
  }

  #fetch(method: string, path: string, body?: Buffer): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const where = `${this.#host}:${this.#port}`;
    const unreachable = `no server= in ${this.#configName} and no daemon answering on ${where} ([http])`;
    if (!this.#enabled) return Promise.reject(new Error(`no server= in ${this.#configName} and [http] enabled=no: the embedded store is reachable only through the HTTP listener; enable it or add server= lines`));
    return new Promise((resolve, reject) => {
      const req = request({ host: this.#host, port: this.#port, method, path, agent: false, headers: body === undefined ? {} : { 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.setTimeout(10_000, () => req.destroy(new Error(`${where}: no answer in 10 s`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ECONNREFUSED') reject(new Error(`${unreachable}: start it or add server= lines`));
        else reject(new Error(`${unreachable}: ${err.message}`));
      });
      req.end(body);
    });
  }
}

/** Every byte escaped: a key may hold '/', '?', '%' or bytes that are not UTF-8 text. */
function percentEncode(segment: string): string {
  let out = '';
  for (const byte of Buffer.from(segment, 'utf8')) out += `%${byte.toString(16).padStart(2, '0').toUpperCase()}`;
  return out;
}
