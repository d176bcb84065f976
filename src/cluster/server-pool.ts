// The servers behind a Client: one lazily opened, pipelined Connection per server, the Router
// that places a key on one of them, and each server's health (health.ts): failures count,
// disable and (with removeFailed) eject a server, whose keys the Router then places on the
// others until a probe finds it answering again. A request that a failing server never wrote is
// re-placed by the bytes it was placed by (PendingRequest.route) instead of failing.
//
// The pool speaks in server indexes, Commands and Outcomes; keys, prefixes and MemcachedErrors
// are the Client's (client.ts). Server health changes are published on `res-memcached:server`.

import { channel } from 'node:diagnostics_channel';
import { Rc } from '../util/errors.js';
import { Connection, settle, type Address, type PendingRequest, type SaslCredentials, type SocketFactory, type TlsSettings } from '../memcache/connection.js';
import type { Command, Outcome } from '../memcache/protocol/command.js';
import type { Protocol } from '../memcache/protocol/wire-codec.js';
import { ServerHealth, type HealthPolicy } from './health.js';
import type { ServerSpec } from './names.js';
import { Router, type RouterOptions } from './router.js';
import type { ServerAddress } from './server-address.js';

/** Published on `res-memcached:server` when a server's health changes. */
export interface ServerEvent {
  server: string;
  event: 'failure' | 'ejected' | 'revived' | 'recovered';
  rc?: number;
  message?: string;
  failures?: number;
}

/**
 * Told of every request the Client routes to a server (for metrics). Set with
 * Client.observeRequests; without one the request path reads no clock.
 */
export interface RequestObserver {
  /** The request settled with `rc` after `ms`, queued to settled. */
  completed(serverIndex: number, rc: number, ms: number): void;
  /** Answered at once with the server's health code (47, 35), never sent. */
  refused(serverIndex: number): void;
}

export interface ServerPoolOptions {
  /** In placement order. */
  addresses: readonly ServerAddress[];
  /** The Router's view of `addresses`, same order. */
  specs: ServerSpec[];
  router: RouterOptions;
  health: HealthPolicy;
  protocol: Protocol;
  connectTimeoutMs: number;
  timeoutMs: number;
  maxQueuePerServer: number;
  tls: TlsSettings | null;
  sasl: SaslCredentials | null;
  socketFactory?: SocketFactory | undefined;
}

interface Server {
  readonly index: number;
  readonly address: ServerAddress;
  readonly health: ServerHealth;
  readonly conn: Connection;
  probe: NodeJS.Timeout | null;
}

const serverChannel = channel('res-memcached:server');

export class ServerPool {
  readonly #servers: Server[];
  readonly #specs: ServerSpec[];
  readonly #routerOptions: RouterOptions;
  #router: Router;
  #closed = false;
  #observer: RequestObserver | null = null;

  constructor(o: ServerPoolOptions) {
    this.#specs = o.specs;
    this.#routerOptions = o.router;
    this.#router = new Router(this.#specs, this.#routerOptions);
    this.#servers = o.addresses.map((address, index) => ({
      index,
      address,
      health: new ServerHealth(o.health),
      probe: null,
      conn: new Connection(
        {
          address: toConnectAddress(address),
          protocol: o.protocol,
          connectTimeoutMs: o.connectTimeoutMs,
          timeoutMs: o.timeoutMs,
          maxQueue: o.maxQueuePerServer,
          tls: o.tls,
          sasl: o.sasl,
          ...(o.socketFactory ? { socketFactory: o.socketFactory } : {}),
        },
        {
          // The connection reports only after the servers list exists, so indexing it is safe.
          onHealthy: () => this.#onHealthy(this.#servers[index]!),
          onFailure: (rc, error, unsent) => this.#onFailure(this.#servers[index]!, rc, error, unsent),
        },
      ),
    }));
  }

  get size(): number {
    return this.#servers.length;
  }

  /** The servers in placement order, as given. */
  get addresses(): ServerAddress[] {
    return this.#servers.map((s) => s.address);
  }

  /** The server as written in its `server=` line or options. */
  name(index: number): string {
    return this.#servers[index]!.address.text;
  }

  observeRequests(observer: RequestObserver | null): void {
    this.#observer = observer;
  }

  /** Requests accepted and not yet answered, over all servers. */
  get pendingRequests(): number {
    let n = 0;
    for (const s of this.#servers) n += s.conn.pending;
    return n;
  }

  health(): Array<{ server: string; state: 'up' | 'disabled' | 'ejected'; failures: number }> {
    const now = Date.now();
    return this.#servers.map((s) => ({ server: s.address.text, state: s.health.state(now), failures: s.health.failures }));
  }

  /** The index of the live server `route` places on; -1 when none is live. */
  pick(route: Buffer): number {
    if (this.#servers.length === 1) return this.#servers[0]!.health.ejected ? -1 : 0;
    return this.#router.indexFor(route);
  }

  /**
   * Sends `cmd` to server `index` and settles with `finish(outcome)` (or its throw): one promise
   * per request, the hot path of every operation. `route` (the bytes `index` was picked by) lets
   * the request follow its key to another server if this one is ejected before writing it;
   * without one it fails with the server's code.
   */
  request<T>(index: number, cmd: Command, route: Buffer | undefined, finish: (out: Outcome) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const observer = this.#observer;
      const server = index < 0 ? undefined : this.#servers[index];
      const refusal = this.#closed
        ? Rc.CONNECTION_FAILURE
        : server === undefined
          ? this.#servers.length === 0
            ? Rc.NO_SERVERS
            : Rc.SERVER_MARKED_DEAD
          : server.health.admitNow();
      if (refusal === Rc.SUCCESS) {
        server!.conn.enqueue(
          observer === null
            ? new PoolRequest(cmd, route, finish, resolve, reject)
            : new ObservedRequest(cmd, route, finish, resolve, reject, observer, index),
        );
        return;
      }
      // Never sent: the observer hears of a health refusal, not of a completed request.
      if (server !== undefined && !this.#closed) observer?.refused(index);
      settle(new PoolRequest(cmd, route, finish, resolve, reject), refusal, this.#closed ? 'client is closed' : undefined);
    });
  }

  /** Answers what is in flight, then closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of this.#servers) {
      if (s.probe !== null) clearTimeout(s.probe);
      s.probe = null;
    }
    await Promise.all(this.#servers.map((s) => s.conn.close()));
  }

  #onHealthy(server: Server): void {
    const wasFailing = server.health.failures > 0;
    if (server.health.onSuccess()) {
      this.#rebuildRouter();
      publish({ server: server.address.text, event: 'revived' });
    } else if (wasFailing) {
      publish({ server: server.address.text, event: 'recovered' });
    }
  }

  #onFailure(server: Server, rc: number, error: Error, unsent: PendingRequest[]): void {
    const ejected = server.health.onFailure(Date.now());
    publish({ server: server.address.text, event: 'failure', rc, message: error.message, failures: server.health.failures });
    if (ejected) {
      this.#rebuildRouter();
      publish({ server: server.address.text, event: 'ejected', rc, failures: server.health.failures });
      this.#scheduleProbe(server);
    } else if (server.health.ejected) {
      this.#scheduleProbe(server);
    }
    for (const req of unsent) {
      // Never written: with the server ejected its keys have a new home, so nothing is lost.
      const target = ejected && req.route !== undefined ? this.pick(req.route) : -1;
      if (target >= 0 && target !== server.index && this.#servers[target]!.health.admitNow() === Rc.SUCCESS) {
        this.#servers[target]!.conn.enqueue(req);
      } else {
        settle(req, rc, error.message);
      }
    }
  }

  #rebuildRouter(): void {
    const live = this.#servers.map((s) => !s.health.ejected);
    this.#router = live.every(Boolean) ? new Router(this.#specs, this.#routerOptions) : new Router(this.#specs, this.#routerOptions, live);
  }

  /** An ejected server gets no traffic, so it is probed with `version` every retry interval. */
  #scheduleProbe(server: Server): void {
    if (this.#closed || server.probe !== null) return;
    const delay = Math.max(0, server.health.retryAt - Date.now());
    server.probe = setTimeout(() => {
      server.probe = null;
      if (this.#closed) return;
      // The probe bypasses admit(): it is the retry.
      void server.conn.send({ op: 'version' }).then((out) => {
        if (out.rc !== Rc.SUCCESS && server.health.ejected) this.#scheduleProbe(server);
      });
    }, delay);
    server.probe.unref();
  }
}

function publish(event: ServerEvent): void {
  if (serverChannel.hasSubscribers) serverChannel.publish(event);
}

function toConnectAddress(a: ServerAddress): Address {
  return a.kind === 'unix' ? { kind: 'unix', path: a.host } : { kind: 'tcp', host: a.host, port: a.port };
}

/**
 * One request on its way: the connection's PendingRequest, and what turns its outcome into the
 * caller's value or error. A class, not closures: it is made once per request, on the hot path.
 */
class PoolRequest<T> implements PendingRequest {
  opaque = 0;
  deadline = 0;
  out: Outcome = { rc: Rc.SUCCESS };

  constructor(
    readonly cmd: Command,
    readonly route: Buffer | undefined,
    private readonly finish: (out: Outcome) => T,
    private readonly fulfil: (value: T) => void,
    private readonly fail: (err: unknown) => void,
  ) {}

  resolve(out: Outcome): void {
    let value: T;
    try {
      value = this.finish(out);
    } catch (err) {
      this.fail(err);
      return;
    }
    this.fulfil(value);
  }
}

/** A request whose code and latency, accepted to settled, go to the pool's RequestObserver. */
class ObservedRequest<T> extends PoolRequest<T> {
  readonly #started = performance.now();

  constructor(
    cmd: Command,
    route: Buffer | undefined,
    finish: (out: Outcome) => T,
    fulfil: (value: T) => void,
    fail: (err: unknown) => void,
    private readonly observer: RequestObserver,
    private readonly index: number,
  ) {
    super(cmd, route, finish, fulfil, fail);
  }

  override resolve(out: Outcome): void {
    this.observer.completed(this.index, out.rc, performance.now() - this.#started);
    super.resolve(out);
  }
}
