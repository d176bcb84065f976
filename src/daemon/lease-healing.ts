// Leases that heal: the AMI link tells the lease engine which of this PBX's channels are alive.
//
// - A `Hangup` event frees that channel's leases and locks at once (no hangup handler needed).
// - On every (re)connect and then every lease_ttl / 3 while the link is up, the live channels are
//   asked for (CoreShowChannels) and the engine reconciles against them: leases of live channels
//   get their TTL back, leases of channels Asterisk no longer has are freed. That covers what the
//   events cannot: a Hangup missed while the link was down, a daemon restarted mid-call (the
//   engine finds its leases in its node index), a lease taken by a channel that hung up while its
//   AGI session was still running.
// - While the link is down nothing is refreshed and nothing is released: the daemon cannot tell
//   live channels from dead ones, so the leases fall back to their TTL.

import type { Logger } from 'pino';

import { AmiClient, type AmiClientEvent, type AmiClientOptions } from '../ami/client.js';
import type { LeaseEngine, MaintenanceReport } from '../leases/engine.js';

/** The shortest pause between two reconciliations, whatever lease_ttl says. */
const MIN_RECONCILE_MS = 1000;

export interface LeaseHealingStatus {
  readonly ami: AmiClient['state'];
  readonly lastReconcileAtMs: number | null;
  readonly lastError: string | null;
}

export class LeaseHealing {
  readonly #client: AmiClient;
  readonly #engine: () => LeaseEngine;
  readonly #log: Logger;
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | null = null;
  /** A reconciliation under way; ticks while it runs are skipped. */
  #running: Promise<void> | null = null;
  #lastReconcileAtMs: number | null = null;
  #lastError: string | null = null;
  /** Why the link is down, while it stays down: a retry that fails the same way is not news. */
  #downKind: string | null = null;

  /** `engine` gives the engine sessions use now (a reload may replace it). */
  constructor(options: Omit<AmiClientOptions, 'onEvent'>, engine: () => LeaseEngine, log: Logger) {
    this.#engine = engine;
    this.#log = log;
    this.#everyMs = Math.max(MIN_RECONCILE_MS, Math.floor((engine().leaseTtl * 1000) / 3));
    this.#client = new AmiClient({ ...options, onEvent: (event) => this.#onEvent(event) });
  }

  get status(): LeaseHealingStatus {
    return { ami: this.#client.state, lastReconcileAtMs: this.#lastReconcileAtMs, lastError: this.#lastError };
  }

  start(): void {
    this.#client.start();
  }

  /** Stops the link and the timer; leases keep their TTL (nothing is released at a stop). */
  async close(): Promise<void> {
    this.#stopTimer();
    this.#client.close();
    await this.#running;
  }

  /** Reconciles now (after a reconcile already under way); resolves when done. For tests and reloads. */
  async reconcileNow(): Promise<void> {
    while (this.#running !== null) await this.#running;
    await this.#tick();
  }

  #onEvent(event: AmiClientEvent): void {
    switch (event.type) {
      case 'up':
        this.#downKind = null;
        this.#log.info({ ami: event.banner }, 'AMI link up: reconciling leases with the live channels');
        this.#startTimer();
        void this.#tick();
        return;
      case 'down': {
        this.#stopTimer();
        const again = this.#downKind === event.kind;
        this.#downKind = event.kind;
        (again ? this.#log.debug.bind(this.#log) : this.#log.warn.bind(this.#log))(
          { kind: event.kind, retryInMs: event.retryInMs },
          `AMI link down (${event.reason}): leases are not refreshed and not released until it is back; they keep their lease_ttl`,
        );
        return;
      }
      case 'hangup': {
        const { uniqueid, channel } = event.hangup;
        this.#engine()
          .releaseChannel(uniqueid)
          .then(
            (report) => {
              if (report.released > 0 || report.failed > 0) this.#log.info({ uniqueid, channel, ...report }, `hangup of ${channel}: ${report.released} lease(s) freed`);
            },
            (err: unknown) => this.#log.warn({ uniqueid, channel, err: { message: (err as Error).message } }, `hangup of ${channel}: freeing its leases failed; they expire with lease_ttl`),
          );
        return;
      }
      case 'event':
        return;
    }
  }

  #tick(): Promise<void> {
    if (this.#running !== null) return this.#running;
    this.#running = this.#reconcile().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #reconcile(): Promise<void> {
    const engine = this.#engine();
    // A channel born after Asterisk listed its channels may take a lease before the engine
    // reconciles: whoever holds a lease now that did not before the list is alive.
    const before = new Set(engine.held().map((h) => h.uniqueId));
    let report: MaintenanceReport;
    try {
      const channels = await this.#client.coreShowChannels();
      const live = new Set(channels.map((c) => c.uniqueid));
      // (Entries the engine restores from its node index during reconcile() are not new.)
      for (const h of engine.held()) if (!h.restored && !before.has(h.uniqueId)) live.add(h.uniqueId);
      report = await engine.reconcile(live);
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#log.warn({ err: { message: (err as Error).message } }, `reconciling leases failed (${(err as Error).message}); trying again in ${this.#everyMs} ms`);
      return;
    }
    this.#lastReconcileAtMs = Date.now();
    this.#lastError = null;
    const fields = { ...report, held: engine.held().length };
    if (report.released > 0 || report.lost > 0 || report.failed > 0) this.#log.info(fields, `leases reconciled: ${report.kept} kept, ${report.released} of dead channels freed, ${report.lost} no longer ours, ${report.failed} failed`);
    else this.#log.debug(fields, `leases reconciled: ${report.kept} kept`);
  }

  #startTimer(): void {
    this.#stopTimer();
    this.#timer = setInterval(() => void this.#tick(), this.#everyMs);
    this.#timer.unref();
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
