// The composition root (STYLE.md): settings → cache backend (memcached cluster, or the embedded
// store when there is no server=) → FastAGI server running the dialplan commands. Also reload
// (SIGHUP) without dropping sessions, and a graceful stop (SIGTERM) that lets sessions finish.

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import { AgiServer, type AgiServerEvent, type AgiServerPolicy } from '../agi/server.js';
import type { AgiSession } from '../agi/session.js';
import { Client, type ServerEvent } from '../cluster/client.js';
import { ConfigError, formatWarning, isPermitted, type Settings } from '../config/settings.js';
import type { CacheBackend } from '../dialplan/backend.js';
import { busyCommand, runDialplanSession, type DialplanSettings } from '../dialplan/runner.js';
import { MemoryStore } from '../store/memory-store.js';
import { clientOptionsFromSettings } from './client-options.js';

/** A backend and the sessions using it, so a replaced one is closed only once they are done. */
interface Generation {
  readonly settings: Settings;
  readonly dialplan: DialplanSettings;
  readonly backend: CacheBackend;
  readonly kind: 'embedded' | 'memcached';
  sessions: number;
  retired: boolean;
}

export class Daemon {
  readonly #log: Logger;
  readonly #server: AgiServer;
  #current: Generation;
  #address: { host: string; port: number } = { host: '', port: 0 };
  #served = 0;
  readonly #onServerEvent = (message: unknown): void => this.#logServerEvent(message as ServerEvent);

  private constructor(settings: Settings, log: Logger) {
    this.#log = log;
    this.#current = makeGeneration(settings, null);
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
    const daemon = new Daemon(settings, log);
    // Before listening: a misspelt prot= leaves the default port, whose failure would hide why.
    for (const w of settings.warnings) log.warn({ config: settings.source }, formatWarning(w));
    subscribe('res-memcached:server', daemon.#onServerEvent);
    try {
      daemon.#address = await daemon.#server.listen();
    } catch (err) {
      unsubscribe('res-memcached:server', daemon.#onServerEvent);
      await daemon.#current.backend.close();
      throw listenError(settings, err);
    }
    log.info(
      { listen: `${daemon.#address.host}:${daemon.#address.port}`, config: settings.source ?? '(built-in defaults)', ...describeBackend(daemon.#current) },
      `res-memcached listening for FastAGI on ${daemon.#address.host}:${daemon.#address.port}, ${backendLine(daemon.#current)}`,
    );
    return daemon;
  }

  get address(): { host: string; port: number } {
    return this.#address;
  }

  get settings(): Settings {
    return this.#current.settings;
  }

  /** The cache new sessions use (the embedded store or the memcached client): for tooling and tests. */
  get backend(): CacheBackend {
    return this.#current.backend;
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
   */
  reload(settings: Settings): void {
    const old = this.#current;
    for (const w of settings.warnings) this.#log.warn({ config: settings.source }, formatWarning(w));
    if (settings.agi.bindaddr !== old.settings.agi.bindaddr || settings.agi.port !== old.settings.agi.port) {
      this.#log.warn(
        { listen: `${this.#address.host}:${this.#address.port}` },
        `bindaddr/port changed to ${settings.agi.bindaddr}:${settings.agi.port}: that takes a restart; still listening on ${this.#address.host}:${this.#address.port}`,
      );
    }
    this.#current = makeGeneration(settings, old);
    this.#server.setPolicy(policyOf(settings));
    if (this.#current.backend !== old.backend) this.#retire(old);
    this.#log.info({ config: settings.source, ...describeBackend(this.#current) }, `configuration reloaded, ${backendLine(this.#current)}`);
  }

  /**
   * Stops taking sessions (new connections get MCDRESULT=47 for at least `lingerMs`, then the
   * listener closes), lets running sessions finish (at most `graceMs`), closes the backend.
   */
  async stop(graceMs: number, lingerMs = 500): Promise<void> {
    this.#log.info({ sessions: this.#server.sessions }, 'stopping: no new sessions; letting running ones finish');
    await this.#server.close(graceMs, lingerMs);
    unsubscribe('res-memcached:server', this.#onServerEvent);
    await this.#current.backend.close();
    this.#log.info({}, 'stopped');
  }

  async #handle(session: AgiSession): Promise<void> {
    const generation = this.#current;
    generation.sessions++;
    try {
      await runDialplanSession(session, generation.backend, generation.dialplan, this.#log);
    } finally {
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

  #logServerEvent(event: ServerEvent): void {
    const fields = { server: event.server, event: event.event, ...(event.rc !== undefined ? { rc: event.rc } : {}), ...(event.failures !== undefined ? { failures: event.failures } : {}) };
    if (event.event === 'failure' || event.event === 'ejected') this.#log.warn(fields, `memcached ${event.server}: ${event.event}${event.message ? ` (${event.message})` : ''}`);
    else this.#log.info(fields, `memcached ${event.server}: ${event.event}`);
  }
}

function makeGeneration(settings: Settings, previous: Generation | null): Generation {
  const dialplan: DialplanSettings = {
    maxKeyLength: settings.maxKeyLength,
    maxValueLength: settings.maxValueLength,
    keyPrefixBytes: Buffer.byteLength(settings.keyPrefix, 'utf8'),
    ttl: settings.ttl,
    counterTtl: settings.counterTtl,
    resultFormat: settings.resultFormat,
  };
  if (settings.servers.length === 0) {
    // Keep the embedded store's data across a reload unless what it is keyed by changed.
    const keep =
      previous !== null &&
      previous.kind === 'embedded' &&
      previous.settings.keyPrefix === settings.keyPrefix &&
      previous.settings.embeddedMaxBytes === settings.embeddedMaxBytes;
    const backend = keep ? previous.backend : new MemoryStore({ keyPrefix: settings.keyPrefix, maxBytes: settings.embeddedMaxBytes });
    return { settings, dialplan, backend, kind: 'embedded', sessions: 0, retired: false };
  }
  return { settings, dialplan, backend: new Client(clientOptionsFromSettings(settings)), kind: 'memcached', sessions: 0, retired: false };
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

function describeBackend(g: Generation): object {
  const s = g.settings;
  if (g.kind === 'embedded') return { backend: 'embedded', maxMemoryBytes: s.embeddedMaxBytes, keyPrefix: s.keyPrefix };
  return {
    backend: 'memcached',
    servers: s.servers.map((x) => x.text),
    protocol: s.binaryProto ? 'binary' : 'text',
    distribution: s.distribution,
    hash: s.hash,
    keyPrefix: s.keyPrefix,
    tls: s.tls.enabled,
    sasl: s.sasl !== null,
  };
}

function backendLine(g: Generation): string {
  const s = g.settings;
  if (g.kind === 'embedded') return `no server= configured: serving from the embedded store (${Math.round(s.embeddedMaxBytes / 1_048_576)} MiB)`;
  return `memcached: ${s.servers.map((x) => x.text).join(', ')} (${s.binaryProto ? 'binary' : 'text'} protocol, ${s.distribution})`;
}

/**
 * A listen failure named at the [agi] line behind it: port= for a port in use or refused
 * (EADDRINUSE, EACCES), else bindaddr= (an address this host does not have), else whichever is
 * set. With neither set, the config file (or the built-in defaults) is named instead.
 */
function listenError(settings: Settings, err: unknown): Error {
  const { bindaddr, port, bindaddrAt, portAt } = settings.agi;
  const code = (err as NodeJS.ErrnoException).code;
  const at = code === 'EADDRINUSE' || code === 'EACCES' ? (portAt ?? bindaddrAt) : (bindaddrAt ?? portAt);
  const where = bindaddr.includes(':') ? `[${bindaddr}]:${port}` : `${bindaddr}:${port}`;
  const reason = `cannot listen for FastAGI on ${where} ([agi] bindaddr=, port=): ${(err as Error).message}`;
  if (at !== null) return new ConfigError(at.file, at.line, reason, { cause: err });
  if (settings.source !== null) return new ConfigError(settings.source, 0, reason, { cause: err });
  return new Error(`${reason}; set them in memcached.conf`, { cause: err });
}
