// GET /metrics and GET /health. Counts are kept as they happen only where nothing else keeps
// them (sessions, commands, memcached requests); everything the daemon already knows (the store's
// stats, server health, snapshot and AMI state, leases) is read at scrape time, so serving calls
// costs nothing for them. A private prom-client Registry: a library user's global one is left alone.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestObserver } from '../cluster/client.js';
import { Rc } from '../util/errors.js';
import type { HttpHandler, HttpResponse } from './server.js';

export type ServerState = 'up' | 'failing' | 'dead' | 'ejected';
const SERVER_STATES: readonly ServerState[] = ['up', 'failing', 'dead', 'ejected'];

export interface StoreFigures {
  items: number;
  bytes: number;
  limitBytes: number;
  evictions: number;
  getHits: number;
  getMisses: number;
}

/** What the daemon tells the metrics and health handlers, read at each scrape or probe. */
export interface MonitoredState {
  backend(): 'embedded' | 'memcached';
  /** Each memcached server's state ([] for the embedded store). */
  servers(): Array<{ server: string; state: ServerState }>;
  /** null: not the embedded store. */
  store(): StoreFigures | null;
  /** null: no snapshots are written. */
  snapshot(): { path: string; lastOkAtMs: number | null; lastError: string | null } | null;
  /** null: no [ami] link configured. */
  ami(): { address: string; up: boolean } | null;
  leasesHeld(): number;
}


/** Codes a server answers with when it works (memcached's ordinary replies). */
const ANSWERED = new Set<number>([Rc.SUCCESS, Rc.NOTSTORED, Rc.NOTFOUND, Rc.DATA_EXISTS]);

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #sessions: Counter;
  readonly #running: Gauge;
  readonly #sessionDuration: Histogram;
  readonly #commands: Counter<'command' | 'result'>;
  readonly #requests: Counter<'server' | 'outcome'>;
  readonly #requestDuration: Histogram<'server'>;
  readonly #commandChildren = new Map<string, { inc(): void }>();

  constructor(state: MonitoredState) {
    const registers = [this.registry];
    this.#sessions = new Counter({ name: 'res_memcached_agi_sessions_total', help: 'FastAGI sessions handled', registers });
    this.#running = new Gauge({ name: 'res_memcached_agi_sessions', help: 'FastAGI sessions running', registers });
    this.#sessionDuration = new Histogram({
      name: 'res_memcached_agi_session_duration_seconds',
      help: 'FastAGI session duration, connect to close',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#commands = new Counter({ name: 'res_memcached_commands_total', help: 'Dialplan commands by name and result code (MCDRESULT number)', labelNames: ['command', 'result'], registers });
    this.#requests = new Counter({ name: 'res_memcached_memcached_requests_total', help: 'memcached requests by server and outcome (ok: the server answered; error: failed or timed out; refused: not sent, the server is disabled)', labelNames: ['server', 'outcome'], registers });
    this.#requestDuration = new Histogram({
      name: 'res_memcached_memcached_request_duration_seconds',
      help: 'memcached request latency, queued to settled',
      labelNames: ['server'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    new Gauge({
      name: 'res_memcached_memcached_server_state',
      help: 'memcached server state: 1 for the current one of up, failing, dead, ejected',
      labelNames: ['server', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of state.servers()) for (const st of SERVER_STATES) this.set({ server: s.server, state: st }, s.state === st ? 1 : 0);
      },
    });
    const storeGauge = (name: string, help: string, pick: (s: StoreFigures) => number): void => {
      new Gauge({ name, help, registers, collect() {
        this.reset();
        const s = state.store();
        if (s !== null) this.set(pick(s));
      } });
    };
    const storeCounter = (name: string, help: string, pick: (s: StoreFigures) => number): void => {
      new Counter({ name, help, registers, collect() {
        this.reset();
        const s = state.store();
        if (s !== null) this.inc(pick(s));
      } });
    };
    storeGauge('res_memcached_store_items', 'Embedded store items (expired ones not yet reclaimed included)', (s) => s.items);
    storeGauge('res_memcached_store_bytes', 'Embedded store bytes held', (s) => s.bytes);
    storeGauge('res_memcached_store_limit_bytes', 'Embedded store memory cap (embedded_max_memory)', (s) => s.limitBytes);
    storeCounter('res_memcached_store_evictions_total', 'Embedded store live items evicted to make room', (s) => s.evictions);
    storeCounter('res_memcached_store_hits_total', 'Embedded store get hits', (s) => s.getHits);
    storeCounter('res_memcached_store_misses_total', 'Embedded store get misses', (s) => s.getMisses);
    // Labelled by what they describe, so that with no snapshot or no AMI link the series are
    // absent rather than a 0 that reads as "failing" or "down" (an unlabelled gauge always shows a value).
    new Gauge({ name: 'res_memcached_snapshot_last_success_timestamp_seconds', help: 'When the embedded store was last saved (Unix time)', labelNames: ['path'], registers, collect() {
      this.reset();
      const s = state.snapshot();
      if (s !== null && s.lastOkAtMs !== null) this.set({ path: s.path }, s.lastOkAtMs / 1000);
    } });
    new Gauge({ name: 'res_memcached_snapshot_failing', help: '1 when the last embedded store snapshot failed', labelNames: ['path'], registers, collect() {
      this.reset();
      const s = state.snapshot();
      if (s !== null) this.set({ path: s.path }, s.lastError === null ? 0 : 1);
    } });
    new Gauge({ name: 'res_memcached_ami_up', help: '1 when the AMI link is logged in', labelNames: ['address'], registers, collect() {
      this.reset();
      const ami = state.ami();
      if (ami !== null) this.set({ address: ami.address }, ami.up ? 1 : 0);
    } });
    new Gauge({ name: 'res_memcached_leases_held', help: 'Leases and locks held by channels of this node', registers, collect() {
      this.set(state.leasesHeld());
    } });
    collectDefaultMetrics({ register: this.registry, prefix: 'res_memcached_' });
  }

  sessionStarted(): void {
    this.#running.inc();
  }

  /** A session ended; `command` and `rc` are null when it ended before naming a command. */
  sessionEnded(seconds: number, command: string | null, rc: number | null): void {
    this.#running.dec();
    this.#sessions.inc();
    this.#sessionDuration.observe(seconds);
    if (command === null || rc === null) return;
    this.commandDone(command, rc);
  }

  /** A dialplan command ran (a FastAGI session's, or one through the HTTP door) with this result. */
  commandDone(command: string, rc: number): void {
    const key = `${command}\u0000${rc}`;
    let child = this.#commandChildren.get(key);
    if (child === undefined) {
      child = this.#commands.labels(command, String(rc));
      this.#commandChildren.set(key, child);
    }
    child.inc();
  }

  /**
   * An observer for one Client's servers (by index), its label children made once here: the
   * per-request path builds no label strings.
   */
  requestObserver(servers: readonly string[]): RequestObserver {
    const children = servers.map((server) => ({
      ok: this.#requests.labels(server, 'ok'),
      error: this.#requests.labels(server, 'error'),
      refused: this.#requests.labels(server, 'refused'),
      latency: this.#requestDuration.labels(server),
    }));
    return {
      completed(index, rc, ms) {
        const c = children[index];
        if (c === undefined) return;
        (ANSWERED.has(rc) ? c.ok : c.error).inc();
        c.latency.observe(ms / 1000);
      },
      refused(index) {
        children[index]?.refused.inc();
      },
    };
  }

  /** GET /metrics */
  handler(): HttpHandler {
    return async (request) => {
      if (request.rawPath !== '/metrics') return null;
      if (request.method !== 'GET' && request.method !== 'HEAD') return methodNotAllowed();
      return { status: 200, headers: { 'content-type': this.registry.contentType }, body: await this.registry.metrics() };
    };
  }
}

export interface HealthReport {
  healthy: boolean;
  body: { status: 'ok' | 'unavailable'; backend: 'embedded' | 'memcached'; reasons: string[]; servers?: Array<{ server: string; state: ServerState }> };
}

/** From what the daemon already knows: no memcached round trip. */
export function healthOf(state: MonitoredState): HealthReport {
  const reasons: string[] = [];
  const backend = state.backend();
  const servers = backend === 'memcached' ? state.servers() : undefined;
  if (servers !== undefined && servers.length > 0 && servers.every((s) => s.state === 'dead' || s.state === 'ejected')) {
    reasons.push(`all memcached servers are dead (${servers.map((s) => `${s.server} ${s.state}`).join(', ')})`);
  }
  const snapshot = state.snapshot();
  if (snapshot !== null && snapshot.lastError !== null) reasons.push(`embedded store snapshot failing: ${snapshot.lastError}`);
  return {
    healthy: reasons.length === 0,
    body: { status: reasons.length === 0 ? 'ok' : 'unavailable', backend, reasons, ...(servers !== undefined ? { servers } : {}) },
  };
}

/** GET /health */
export function healthHandler(state: MonitoredState): HttpHandler {
  return async (request) => {
    if (request.rawPath !== '/health') return null;
    if (request.method !== 'GET' && request.method !== 'HEAD') return methodNotAllowed();
    const report = healthOf(state);
    return { status: report.healthy ? 200 : 503, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: `${JSON.stringify(report.body)}\n` };
  };
}

function methodNotAllowed(): HttpResponse {
  return { status: 405, headers: { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }, body: 'method not allowed\n' };
}
