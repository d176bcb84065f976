// The FastAGI listener: Asterisk opens one TCP connection per AGI(agi://...) call. Clients not
// permitted are cut at connect; beyond the session cap a connection gets one fixed command (so the
// dialplan still learns a result) and is ended without reading anything.

import { createServer, type Server, type Socket } from 'node:net';
import { AgiSession, type SessionLimits } from './session.js';
import { admitPeer, closeCutting, listenTcp } from '../util/listen.js';

export type AgiServerEvent =
  | { type: 'refused'; address: string }
  | { type: 'busy'; address: string; sessions: number }
  | { type: 'session-error'; address: string; error: unknown };

export interface AgiServerPolicy {
  limits: SessionLimits;
  maxSessions: number;
  isPermitted(address: string): boolean;
  /** Written, alone, to a connection over the cap; null to just close it. */
  busyCommand: Buffer | null;
}

export interface AgiServerOptions extends AgiServerPolicy {
  host: string;
  port: number;
  /** Runs one session; the server ends the session when it settles (it should not throw). */
  handle(session: AgiSession): Promise<void>;
  onEvent?(event: AgiServerEvent): void;
}

export class AgiServer {
  readonly #server: Server;
  readonly #options: AgiServerOptions;
  #policy: AgiServerPolicy;
  readonly #sessions = new Set<AgiSession>();
  readonly #sockets = new Set<Socket>();
  /** Stopping: new connections get the busy command, not a session. */
  #draining = false;

  constructor(options: AgiServerOptions) {
    this.#options = options;
    this.#policy = options;
    this.#server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
  }

  /** Resolves with the bound address once listening (port 0 picks a free port). */
  listen(): Promise<{ host: string; port: number }> {
    return listenTcp(this.#server, this.#options.host, this.#options.port, 'FastAGI');
  }

  /** Sessions running now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** New limits, ACL and cap for sessions accepted from now on (a reload). */
  setPolicy(policy: AgiServerPolicy): void {
    this.#policy = policy;
  }

  /**
   * Stops taking sessions; sessions in flight finish (each is bounded by its own deadlines), and
   * after `graceMs` whatever is left is cut. For at least `lingerMs` the listener stays open and
   * answers new connections with the busy command: a connection still in the kernel's accept
   * queue when a listener closes is reset, and Asterisk would take that for a script that ended
   * without a result.
   */
  async close(graceMs: number, lingerMs = 500): Promise<void> {
    this.#draining = true;
    const lingered = new Promise<void>((resolve) => setTimeout(resolve, lingerMs));
    const drained = Promise.all([...this.#sessions].map((s) => s.done));
    let cut: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (cut = setTimeout(resolve, graceMs)));
    await Promise.race([Promise.all([drained, lingered]), deadline]);
    clearTimeout(cut);
    // Past the grace period whatever is left is cut (busy refusals still closing, too).
    await closeCutting(this.#server, this.#sockets);
  }

  #accept(socket: Socket): void {
    const policy = this.#policy;
    const address = admitPeer(socket, policy.isPermitted, (refused) => this.#options.onEvent?.({ type: 'refused', address: refused }));
    if (address === null) return;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (this.#draining || this.#sessions.size >= policy.maxSessions) {
      if (!this.#draining) this.#options.onEvent?.({ type: 'busy', address, sessions: this.#sessions.size });
      this.#refuseBusy(socket, policy);
      return;
    }
    const session = new AgiSession(socket, policy.limits);
    this.#sessions.add(session);
    void session.done.then(() => this.#sessions.delete(session));
    // One reaction for each outcome rather than a catch and a finally: two promises fewer a session.
    const end = (): void => void session.end();
    this.#options.handle(session).then(end, (error: unknown) => {
      try {
        this.#options.onEvent?.({ type: 'session-error', address, error });
      } finally {
        end();
      }
    });
  }

  /** Over the cap: one command, then our FIN; what Asterisk sends is read and dropped. */
  #refuseBusy(socket: Socket, policy: AgiServerPolicy): void {
    socket.on('error', () => socket.destroy());
    socket.on('data', () => undefined);
    const cut = setTimeout(() => socket.destroy(), policy.limits.envTimeoutMs + policy.limits.answerTimeoutMs);
    cut.unref();
    socket.once('close', () => clearTimeout(cut));
    if (policy.busyCommand !== null) socket.write(policy.busyCommand);
    socket.end();
  }
}
