// The composition root (ARCHITECTURE.md, "The daemon: reload and stop"): settings → cache backend (memcached cluster, or the embedded
// store when there is no server=, restored from its snapshot) → FastAGI server running the
// dialplan commands. Also reload (SIGHUP) without dropping sessions or data, and a graceful stop
// (SIGTERM) that lets sessions finish and then saves the embedded store.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { AgiServer, type AgiServerEvent, type AgiServerPolicy } from '../agi/server.js';
import type { AgiSession } from '../agi/session.js';
import { Client, type ServerEvent } from '../cluster/client.js';
import { ConfigError, formatWarning, isPermitted, type HttpSettings, type Settings } from '../config/settings.js';
import { doorHandler } from '../http/door.js';
import { DaemonMetrics, healthHandler, type MonitoredState, type ServerState } from '../http/metrics.js';
import { HTTP_BOUNDS, HttpServer, type HttpHandler, type HttpServerEvent, type HttpServerPolicy } from '../http/server.js';
import type { CacheBackend } from '../dialplan/backend.js';
import { busyCommand, runDialplanSession, type DialplanSettings, type SessionOutcome } from '../dialplan/runner.js';
import { LeaseEngine } from '../leases/engine.js';
import { MemoryStore } from '../store/memory-store.js';
import { amiClientOptionsFromSettings } from './ami-options.js';
import { clientOptionsFromSettings } from './client-options.js';
import { LeaseHealing, type LeaseHealingStatus } from './lease-healing.js';
import { openEmbeddedStore, resolveSnapshotPath, StoreSnapshots, type SnapshotStatus } from './snapshots.js';

/** A backend and the sessions using it, so a replaced one is closed only once they are done. */
interface Generation {
  readonly settings: Settings;
  readonly dialplan: DialplanSettings;
  readonly backend: CacheBackend;
  readonly kind: 'embedded' | 'memcached';
  /** Leases and locks held by this node's channels, over this generation's backend. */
  readonly leases: LeaseEngine;
  /** The embedded store's snapshot writer (null: memcached, or embedded_snapshot=no). */
  readonly snapshots: StoreSnapshots | null;
  sessions: number;
  retired: boolean;
}

export class Daemon {
  readonly #log: Logger;
  readonly #server: AgiServer;
  #current: Generation;
  #address: { host: string; port: number } = { host: '', port: 0 };
  #served = 0;
  /** Reloads apply one after the other (one may wait for a snapshot to load). */
  #reloading: Promise<void> = Promise.resolve();
  /** The AMI link that keeps leases true (null without [ami]). */
  #healing: LeaseHealing | null = null;
  /** The HTTP listener and its metrics ([http] enabled=no: both null, and nothing is counted). */
  #http: HttpServer | null = null;
  #httpAddress: { host: string; port: number } | null = null;
  #metrics: DaemonMetrics | null = null;
  readonly #onServerEvent = (message: unknown): void => this.#logServerEvent(message as ServerEvent);

  private constructor(first: Generation, log: Logger) {
    const settings = first.settings;
    this.#log = log;
    this.#current = first;
    this.#server = new AgiServer({
      host: settings.agi.bindaddr,
      port: settings.agi.port,
      ...policyOf(settings),
      handle: (session) => this.#handle(session),
      onEvent: (event) => this.#logAgiEvent(event),
    });
  }

  /** Starts listening; resolves once the port is bound. Rejects (and starts nothing) if it cannot bind. */
  static async start(settings: Settings, log: Logger): Promise<Daemon> {
    // Before listening: a misspelt prot= leaves the default port, whose failure would hide why.
    for (const w of settings.warnings) log.warn({ config: settings.source }, formatWarning(w));
    // The snapshot is loaded before the listener opens: no session sees a half-restored store.
    const first = settings.servers.length === 0 ? await embeddedGeneration(settings, log) : memcachedGeneration(settings);
    const daemon = new Daemon(first, log);
    subscribe('res-memcached:server', daemon.#onServerEvent);
    try {
      daemon.#address = await daemon.#server.listen();
    } catch (err) {
      unsubscribe('res-memcached:server', daemon.#onServerEvent);
      await daemon.#current.backend.close();
      throw listenError(settings, 'agi', err);
    }
    if (settings.http.enabled) {
      try {
        await daemon.#startHttp(settings.http);
      } catch (err) {
        await daemon.#server.close(0, 0);
        unsubscribe('res-memcached:server', daemon.#onServerEvent);
        await daemon.#current.backend.close();
        throw listenError(settings, 'http', err);
      }
    }
    log.info(
      { listen: `${daemon.#address.host}:${daemon.#address.port}`, config: settings.source ?? '(built-in defaults)', ...describeBackend(daemon.#current) },
      `res-memcached listening for FastAGI on ${daemon.#address.host}:${daemon.#address.port}, ${backendLine(daemon.#current)}${settings.source === null ? DEFAULTS_HINT : ''}`,
    );
    first.snapshots?.start();
    daemon.#startHealing(settings);
    return daemon;
  }

  get address(): { host: string; port: number } {
    return this.#address;
  }

  /** Where the HTTP listener is bound; null with [http] enabled=no. */
  get httpAddress(): { host: string; port: number } | null {
    return this.#httpAddress;
  }

  /** The Prometheus registry behind GET /metrics; null with [http] enabled=no. */
  get metrics(): DaemonMetrics | null {
    return this.#metrics;
  }

  /**
   * Mounts a handler on the HTTP listener, asked after /metrics, /health and those added before
   * it. False (and nothing mounted) with [http] enabled=no.
   */
  addHttpHandler(handler: HttpHandler): boolean {
    if (this.#http === null) return false;
    this.#http.addHandler(handler);
    return true;
  }

  async #startHttp(http: HttpSettings): Promise<void> {
    const state = this.#monitoredState();
    const metrics = new DaemonMetrics(state);
    const server = new HttpServer(
      {
        host: http.bindaddr,
        port: http.port,
        ...httpPolicyOf(http),
        requestTimeoutMs: http.requestTimeoutMs,
        headersTimeoutMs: http.requestTimeoutMs,
        keepAliveTimeoutMs: http.keepAliveTimeoutMs,
        maxHeaderBytes: HTTP_BOUNDS.maxHeaderBytes,
        maxBodyBytes: HTTP_BOUNDS.maxBodyBytes,
        // Node checks request deadlines on this tick: a tenth of the timeout keeps a cut within 10 % late.
        checkIntervalMs: Math.max(50, Math.min(1000, Math.floor(http.requestTimeoutMs / 10))),
        onEvent: (event) => this.#logHttpEvent(event),
      },
      [
        metrics.handler(),
        healthHandler(state),
        // The inline door for CURL(): the dialplan commands over HTTP, on the current generation.
        doorHandler({
          current: () => ({ backend: this.#current.backend, leases: this.#current.leases, settings: this.#current.dialplan }),
          log: this.#log,
          counted: (command, rc) => metrics.commandDone(command, rc),
        }),
      ],
    );
    this.#httpAddress = await server.listen();
    this.#http = server;
    this.#metrics = metrics;
    this.#instrument(this.#current);
    this.#log.info({ listen: `${this.#httpAddress.host}:${this.#httpAddress.port}` }, `HTTP listener on ${this.#httpAddress.host}:${this.#httpAddress.port} (GET /metrics, GET /health, the dialplan commands for CURL())`);
  }

  /** The daemon as the metrics and /health see it: always the current generation. */
  #monitoredState(): MonitoredState {
    return {
      backend: () => this.#current.kind,
      servers: () => {
        if (this.#current.kind !== 'memcached') return [];
        const limit = this.#current.settings.serverFailureLimit;
        return (this.#current.backend as Client).health().map((h) => ({ server: h.server, state: serverState(h.state, h.failures, limit) }));
      },
      store: () => (this.#current.kind === 'embedded' ? (this.#current.backend as MemoryStore).stats() : null),
      snapshot: () => this.#current.snapshots?.status ?? null,
      ami: () => (this.#healing === null ? null : { address: `${this.#current.settings.ami.host}:${this.#current.settings.ami.port}`, up: this.#healing.status.ami === 'up' }),
      leasesHeld: () => this.#current.leases.held().length,
    };
  }

  /** A memcached generation reports its requests to the metrics (label children made once, here). */
  #instrument(generation: Generation): void {
    if (this.#metrics === null || generation.kind !== 'memcached') return;
    const client = generation.backend as Client;
    client.observeRequests(this.#metrics.requestObserver(client.servers.map((a) => a.text)));
  }

  get settings(): Settings {
    return this.#current.settings;
  }

  /** The cache new sessions use (the embedded store or the memcached client): for tooling and tests. */
  get backend(): CacheBackend {
    return this.#current.backend;
  }

  /** The dialplan limits, TTLs and result format new sessions use (for the HTTP door, src/http/door.ts). */
  get dialplan(): DialplanSettings {
    return this.#current.dialplan;
  }

  /**
   * The lease engine new sessions use: releaseChannel(), refresh() and reconcile() are for
   * whatever learns which channels are up (a reload makes a new one over the new backend).
   */
  get leases(): LeaseEngine {
    return this.#current.leases;
  }

  /** How the embedded store's snapshots go; null when none are written. */
  get snapshotStatus(): SnapshotStatus | null {
    return this.#current.snapshots?.status ?? null;
  }

  /** The AMI link and its last reconciliation; null without [ami]. */
  get leaseHealing(): LeaseHealingStatus | null {
    return this.#healing?.status ?? null;
  }

  /** Reconciles the leases with Asterisk's live channels now (AMI must be up). */
  async reconcileLeases(): Promise<void> {
    await this.#healing?.reconcileNow();
  }

  /** Sessions running now. */
  get sessions(): number {
    return this.#server.sessions;
  }

  /** Sessions handled since start (for monitoring and the soak benchmark). */
  get sessionsServed(): number {
    return this.#served;
  }

  /**
   * Applies new settings to sessions that start from now on; running sessions finish on the old
   * backend, which is closed after them. The listener's address cannot move without a restart.
   * The embedded store keeps its items: a new keyprefix or memory cap is applied to the same
   * store (a smaller cap evicts least recently used items, logged with their count). Resolves
   * once the new settings serve.
   */
  reload(settings: Settings): Promise<void> {
    this.#server.setPolicy(policyOf(settings));
    this.#http?.setPolicy(httpPolicyOf(settings.http));
    const applied = this.#reloading.then(() => this.#apply(settings));
    // A failed reload does not stop later ones; its caller hears of it.
    this.#reloading = applied.catch(() => undefined);
    return applied;
  }

  async #apply(settings: Settings): Promise<void> {
    const old = this.#current;
    for (const w of settings.warnings) this.#log.warn({ config: settings.source }, formatWarning(w));
    if (settings.agi.bindaddr !== old.settings.agi.bindaddr || settings.agi.port !== old.settings.agi.port) {
      this.#log.warn(
        { listen: `${this.#address.host}:${this.#address.port}` },
        `bindaddr/port changed to ${settings.agi.bindaddr}:${settings.agi.port}: that takes a restart; still listening on ${this.#address.host}:${this.#address.port}`,
      );
    }
    const h = settings.http;
    const was = old.settings.http;
    if (h.enabled !== was.enabled || h.bindaddr !== was.bindaddr || h.port !== was.port || h.requestTimeoutMs !== was.requestTimeoutMs || h.keepAliveTimeoutMs !== was.keepAliveTimeoutMs) {
      this.#log.warn({ http: this.#httpAddress }, '[http] enabled=, bindaddr=, port= and timeouts take a restart; permit=/deny= and max_connections apply now');
    }
    if (settings.servers.length > 0) this.#current = memcachedGeneration(settings);
    else if (old.kind === 'embedded') this.#current = this.#keepEmbedded(old, settings);
    // Back from memcached: the embedded store's snapshot (written when it was retired) has its data.
    else this.#current = await embeddedGeneration(settings, this.#log);
    if (this.#current.backend !== old.backend) {
      this.#instrument(this.#current);
      this.#retire(old);
    }
    this.#current.snapshots?.start();
    if (!sameAmi(old.settings, settings)) {
      await this.#healing?.close();
      this.#startHealing(settings);
    } else if (this.#current.leases !== old.leases) {
      // A new engine knows its leases only from the node index: reconcile now, not a third of lease_ttl later.
      void this.#healing?.reconcileNow();
    }
    this.#log.info({ config: settings.source, ...describeBackend(this.#current) }, `configuration reloaded, ${backendLine(this.#current)}`);
  }

  /** The same embedded store under the new settings. */
  #keepEmbedded(old: Generation, settings: Settings): Generation {
    const store = old.backend as MemoryStore;
    const evicted = store.reconfigure({ keyPrefix: settings.keyPrefix, maxBytes: settings.embeddedMaxBytes });
    if (evicted > 0) {
      this.#log.warn(
        { evicted, maxMemoryBytes: settings.embeddedMaxBytes },
        `embedded_max_memory is now ${settings.embeddedMaxBytes / 1_048_576} MiB: evicted the ${evicted} least recently used items to fit`,
      );
    }
    let snapshots = old.snapshots;
    const path = settings.embeddedSnapshot === null ? null : resolveSnapshotPath(settings.embeddedSnapshot, this.#log);
    if (path === null) {
      snapshots?.cancel();
      snapshots = null;
    } else if (snapshots === null) {
      snapshots = new StoreSnapshots(store, path, settings.embeddedSnapshot!.intervalMs, this.#log);
    } else {
      snapshots.reconfigure(path, settings.embeddedSnapshot!.intervalMs);
    }
    return makeGeneration(settings, store, 'embedded', snapshots, old.leases);
  }

  #startHealing(settings: Settings): void {
    const options = amiClientOptionsFromSettings(settings.ami);
    if (options === null) {
      this.#healing = null;
      return;
    }
    this.#healing = new LeaseHealing(options, () => this.#current.leases, this.#log);
    this.#healing.start();
  }

  /**
   * Stops taking sessions (new connections get MCDRESULT=47 for at least `lingerMs`, then the
   * listener closes), lets running sessions finish (at most `graceMs`), closes the backend.
   */
  async stop(graceMs: number, lingerMs = 500): Promise<void> {
    this.#log.info({ sessions: this.#server.sessions }, 'stopping: no new sessions; letting running ones finish');
    await this.#server.close(graceMs, lingerMs);
    await this.#http?.close();
    unsubscribe('res-memcached:server', this.#onServerEvent);
    await this.#reloading;
    // Leases keep their TTL through a restart: the next daemon finds them in its node index.
    await this.#healing?.close();
    // Every session has finished: this snapshot has every write they made.
    await this.#current.snapshots?.close('stop');
    await this.#current.backend.close();
    this.#log.info({}, 'stopped');
  }

  async #handle(session: AgiSession): Promise<void> {
    const generation = this.#current;
    const metrics = this.#metrics;
    generation.sessions++;
    metrics?.sessionStarted();
    const started = metrics === null ? 0 : performance.now();
    let outcome: SessionOutcome | null = null;
    try {
      outcome = await runDialplanSession(session, generation.backend, generation.dialplan, this.#log, generation.leases);
    } finally {
      metrics?.sessionEnded((performance.now() - started) / 1000, outcome?.command ?? null, outcome?.rc ?? null);
      this.#served++;
      generation.sessions--;
      if (generation.retired && generation.sessions === 0) void this.#closeBackend(generation);
    }
  }

  #retire(generation: Generation): void {
    generation.retired = true;
    if (generation.sessions === 0) void this.#closeBackend(generation);
  }

  async #closeBackend(generation: Generation): Promise<void> {
    try {
      // Switched to memcached: the embedded store's data waits in its snapshot for a switch back.
      await generation.snapshots?.close('retired');
      await generation.backend.close();
    } catch (err) {
      this.#log.warn({ err }, 'closing the previous backend failed');
    }
  }

  #logAgiEvent(event: AgiServerEvent): void {
    switch (event.type) {
      case 'refused':
        this.#log.warn({ address: event.address }, 'FastAGI connection refused by permit/deny');
        return;
      case 'busy':
        this.#log.warn({ address: event.address, sessions: event.sessions }, 'max_sessions reached: connection answered MCDRESULT=47 and closed');
        return;
      case 'session-error':
        this.#log.error({ address: event.address, err: event.error }, 'AGI session failed');
        return;
    }
  }

  #logHttpEvent(event: HttpServerEvent): void {
    switch (event.type) {
      case 'refused':
        this.#log.warn({ address: event.address }, 'HTTP connection refused by [http] permit/deny');
        return;
      case 'busy':
        this.#log.warn({ address: event.address, connections: event.connections }, '[http] max_connections reached: connection closed');
        return;
      case 'handler-error':
        this.#log.error({ address: event.address, path: event.path, err: event.error }, 'HTTP handler failed');
        return;
    }
  }

  #logServerEvent(event: ServerEvent): void {
    const fields = { server: event.server, event: event.event, ...(event.rc !== undefined ? { rc: event.rc } : {}), ...(event.failures !== undefined ? { failures: event.failures } : {}) };
    if (event.event === 'failure' || event.event === 'ejected') this.#log.warn(fields, `memcached ${event.server}: ${event.event}${event.message ? ` (${event.message})` : ''}`);
    else this.#log.info(fields, `memcached ${event.server}: ${event.event}`);
  }
}

/** `previousLeases` is kept when it serves the same backend under the same node_id and lease_ttl (it knows what this node holds). */
function makeGeneration(settings: Settings, backend: CacheBackend, kind: Generation['kind'], snapshots: StoreSnapshots | null, previousLeases?: LeaseEngine): Generation {
  const dialplan: DialplanSettings = {
    maxKeyLength: settings.maxKeyLength,
    maxValueLength: settings.maxValueLength,
    keyPrefixBytes: Buffer.byteLength(settings.keyPrefix, 'utf8'),
    ttl: settings.ttl,
    counterTtl: settings.counterTtl,
    resultFormat: settings.resultFormat,
  };
  const leases =
    previousLeases !== undefined && previousLeases.nodeId === settings.nodeId && previousLeases.leaseTtl === settings.leaseTtl
      ? previousLeases
      : new LeaseEngine(backend, { nodeId: settings.nodeId, leaseTtl: settings.leaseTtl });
  return { settings, dialplan, backend, kind, leases, snapshots, sessions: 0, retired: false };
}

function memcachedGeneration(settings: Settings): Generation {
  return makeGeneration(settings, new Client(clientOptionsFromSettings(settings)), 'memcached', null);
}

/** An embedded store restored from its snapshot (when there is one), with its snapshot writer. */
async function embeddedGeneration(settings: Settings, log: Logger): Promise<Generation> {
  const path = settings.embeddedSnapshot === null ? null : resolveSnapshotPath(settings.embeddedSnapshot, log);
  const store = await openEmbeddedStore(settings, path, log);
  const snapshots = path === null ? null : new StoreSnapshots(store, path, settings.embeddedSnapshot!.intervalMs, log);
  return makeGeneration(settings, store, 'embedded', snapshots);
}

function policyOf(settings: Settings): AgiServerPolicy {
  const agi = settings.agi;
  return {
    limits: { envTimeoutMs: agi.envTimeoutMs, answerTimeoutMs: agi.answerTimeoutMs, maxLineBytes: agi.maxLineLength },
    maxSessions: agi.maxSessions,
    isPermitted: (address) => isPermitted(address, agi),
    busyCommand: busyCommand(settings.resultFormat),
  };
}

function httpPolicyOf(http: HttpSettings): HttpServerPolicy {
  return { isPermitted: (address) => isPermitted(address, http), maxConnections: http.maxConnections };
}

/**
 * libmemcached's words for ServerHealth (src/cluster/health.ts): failing while failures are
 * below server_failure_limit, dead at it (answered 35 at once), ejected when removed from placement.
 */
function serverState(state: 'up' | 'disabled' | 'ejected', failures: number, limit: number): ServerState {
  if (state === 'ejected') return 'ejected';
  if (failures === 0) return 'up';
  return failures >= limit ? 'dead' : 'failing';
}

function describeBackend(g: Generation): object {
  const s = g.settings;
  if (g.kind === 'embedded') return { backend: 'embedded', maxMemoryBytes: s.embeddedMaxBytes, keyPrefix: s.keyPrefix, snapshot: g.snapshots?.status.path ?? null };
  return {
    backend: 'memcached',
    servers: s.servers.map((x) => x.text),
    protocol: s.protocol,
    distribution: s.distribution,
    hash: s.hash,
    keyPrefix: s.keyPrefix,
    tls: s.tls.enabled,
    sasl: s.sasl !== null,
  };
}

/**
 * Said at start when no config file was found (src/cli/settings-source.ts looks for it): a new
 * user's first run, so the line says how to make it a service.
 */
const DEFAULTS_HINT = '; no /etc/asterisk/memcached.conf: built-in defaults. Run `res-memcached install` to put memcached.conf, extensions_mcd.conf and a systemd unit in place (README, Install)';

function backendLine(g: Generation): string {
  const s = g.settings;
  if (g.kind === 'embedded') {
    const snapshot = g.snapshots === null ? 'not saved: embedded_snapshot=no' : `saved to ${g.snapshots.status.path}${s.embeddedSnapshot!.intervalMs > 0 ? ` every ${s.embeddedSnapshot!.intervalMs / 1000} s` : ''} and at stop`;
    return `no server= configured: serving from the embedded store (${Math.round(s.embeddedMaxBytes / 1_048_576)} MiB, ${snapshot})`;
  }
  return `memcached: ${s.servers.map((x) => x.text).join(', ')} (${s.protocol} protocol, ${s.distribution})`;
}

/**
 * A listen failure named at the [agi] (or [http]) line behind it: port= for a port in use or refused
 * (EADDRINUSE, EACCES), else bindaddr= (an address this host does not have), else whichever is
 * set. With neither set, the config file (or the built-in defaults) is named instead.
 */
function listenError(settings: Settings, section: 'agi' | 'http', err: unknown): Error {
  const { bindaddr, port, bindaddrAt, portAt } = settings[section];
  const code = (err as NodeJS.ErrnoException).code;
  const at = code === 'EADDRINUSE' || code === 'EACCES' ? (portAt ?? bindaddrAt) : (bindaddrAt ?? portAt);
  const where = bindaddr.includes(':') ? `[${bindaddr}]:${port}` : `${bindaddr}:${port}`;
  const what = section === 'agi' ? 'FastAGI' : 'HTTP';
  const reason = `cannot listen for ${what} on ${where} ([${section}] bindaddr=, port=): ${(err as Error).message}`;
  if (at !== null) return new ConfigError(at.file, at.line, reason, { cause: err });
  if (settings.source !== null) return new ConfigError(settings.source, 0, reason, { cause: err });
  return new Error(`${reason}; set them in memcached.conf`, { cause: err });
}

function sameAmi(a: Settings, b: Settings): boolean {
  return JSON.stringify(a.ami) === JSON.stringify(b.ami) && a.leaseTtl === b.leaseTtl;
}
