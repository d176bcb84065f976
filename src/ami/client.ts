// One long-lived AMI session to Asterisk: connect, read the banner, log in, then actions matched
// to their answers by ActionID and a stream of events; on any failure the session is dropped with a
// reason a log line can carry, every waiting action fails at once, and the client connects again
// after a bounded, jittered backoff (src/ami/backoff.ts) until close().
//
// Nothing here waits for Asterisk on behalf of anyone else: an action while the link is not up
// fails at once, every action has a timeout, pending actions are capped, and incoming bytes are
// bounded by the decoder (src/ami/codec.ts). A timed-out action drops the session: Asterisk
// answers actions in order (main/manager.c, process_message), so a missing answer means it is
// stuck or the stream is out of step, and a fresh session is the way back. The library logs
// nothing; the caller gets typed events through onEvent and decides what to log (the daemon logs
// with pino, tests assert on them).

import { createHash } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { Rc } from '../util/errors.js';
import { Backoff, AMI_DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import { AmiDecoder, AmiError, encodeAction, header, type AmiDecoderOptions, type AmiFrame, type AmiHeaders } from './codec.js';

export type AmiState = 'idle' | 'connecting' | 'up' | 'down' | 'closed';

/** Why a session ended; `login-refused` is a wrong username or secret (or an ACL) on Asterisk's side. */
export type AmiDownKind = 'connect-failed' | 'login-refused' | 'protocol-error' | 'timeout' | 'closed-by-peer' | 'socket-error' | 'write-stalled';

export interface AmiChannel {
  readonly uniqueid: string;
  readonly linkedid: string;
  readonly channel: string;
  /** Every header of the CoreShowChannel item, in wire order. */
  readonly headers: AmiHeaders;
}

export interface AmiHangup {
  readonly uniqueid: string;
  readonly linkedid: string;
  readonly channel: string;
  /** `Cause` (Q.850 number), undefined when absent or not a number. */
  readonly cause: number | undefined;
}

export interface AmiResponse {
  readonly response: string;
  readonly actionId: string;
  readonly message: string | undefined;
  readonly headers: AmiHeaders;
  /** For list actions (EventList): the item events, without the closing `…Complete` event. */
  readonly items: ReadonlyArray<{ readonly event: string; readonly headers: AmiHeaders }>;
}

export type AmiClientEvent =
  /** Logged in: the daemon should reconcile now (coreShowChannels()). */
  | { readonly type: 'up'; readonly banner: string }
  /** The session ended or could not be made; retryInMs is null after close(). */
  | { readonly type: 'down'; readonly kind: AmiDownKind; readonly reason: string; readonly retryInMs: number | null }
  /** Every event Asterisk sent that is not an item of one of our lists. */
  | { readonly type: 'event'; readonly event: string; readonly headers: AmiHeaders }
  /** `Event: Hangup` with a Uniqueid (also delivered as an 'event'). */
  | { readonly type: 'hangup'; readonly hangup: AmiHangup };

export interface AmiClientOptions {
  host: string;
  port: number;
  username: string;
  secret: string;
  /** 'md5' logs in with Challenge + Key, so the secret never crosses the wire. */
  authType?: 'plain' | 'md5';
  /** The Login `Events:` mask. Hangup is class call; FullyBooted, Reload and Shutdown are system. */
  eventMask?: string;
  /** TCP connect + banner + login must finish within this (ms). */
  connectTimeoutMs?: number;
  /** Default timeout of one action (ms). */
  actionTimeoutMs?: number;
  /** A Ping this often while up (ms), so a silent Asterisk is noticed; 0 = never. */
  pingIntervalMs?: number;
  /** Most actions waiting for an answer; more fail at once. */
  maxPendingActions?: number;
  /** Most items one list action may collect before the session is dropped. */
  maxListItems?: number;
  /** Most bytes queued for Asterisk before the session is dropped as stalled. */
  maxWriteBufferBytes?: number;
  backoff?: BackoffPolicy;
  decoder?: Omit<AmiDecoderOptions, 'banner'>;
  /** For tests of the jitter; Math.random by default. */
  random?: () => number;
  /** Called synchronously for every event; must be quick and must not throw. */
  onEvent?(event: AmiClientEvent): void;
}

/** Asterisk answered `Response: Error`; `serverText` is its `Message:`. */
export class AmiActionError extends AmiError {
  constructor(action: string, message: string) {
    super(Rc.ERROR, `AMI ${action}: ${message}`, { serverText: message });
    this.name = 'AmiActionError';
  }
}

interface Pending {
  readonly action: string;
  readonly list: boolean;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (r: AmiResponse) => void;
  readonly reject: (e: Error) => void;
  /** Runs synchronously on success, before any later frame of the same chunk is handled. */
  readonly onSuccess: ((r: AmiResponse) => void) | undefined;
  response: { response: string; headers: AmiHeaders } | null;
  items: Array<{ event: string; headers: AmiHeaders }>;
}

interface Session {
  readonly socket: Socket;
  readonly decoder: AmiDecoder;
  banner: string | null;
  loggedIn: boolean;
  shuttingDown: boolean;
}

const BANNER_PREFIX = 'Asterisk Call Manager/';

export class AmiClient {
  readonly #o: Required<Omit<AmiClientOptions, 'onEvent' | 'decoder' | 'backoff' | 'random'>>;
  readonly #decoderOptions: Omit<AmiDecoderOptions, 'banner'>;
  readonly #onEvent: (event: AmiClientEvent) => void;
  readonly #backoff: Backoff;
  readonly #pending = new Map<string, Pending>();
  #state: AmiState = 'idle';
  #session: Session | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #pingTimer: NodeJS.Timeout | null = null;
  #lastDown: string | null = null;
  #nextId = 1;
  readonly #idPrefix = `mcd-${process.pid}-${Math.floor(Math.random() * 0xffff).toString(16)}`;

  constructor(options: AmiClientOptions) {
    this.#o = {
      host: options.host,
      port: options.port,
      username: options.username,
      secret: options.secret,
      authType: options.authType ?? 'plain',
      eventMask: options.eventMask ?? 'call,system',
      connectTimeoutMs: options.connectTimeoutMs ?? 5000,
      actionTimeoutMs: options.actionTimeoutMs ?? 10_000,
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
      maxPendingActions: options.maxPendingActions ?? 256,
      maxListItems: options.maxListItems ?? 100_000,
      maxWriteBufferBytes: options.maxWriteBufferBytes ?? 1024 * 1024,
    };
    this.#decoderOptions = options.decoder ?? {};
    this.#onEvent = options.onEvent ?? (() => {});
    this.#backoff = new Backoff(options.backoff ?? AMI_DEFAULT_BACKOFF, options.random);
  }

  get state(): AmiState {
    return this.#state;
  }

  /** The reason the last session ended (or could not be made), for status output; null if none yet. */
  get lastDownReason(): string | null {
    return this.#lastDown;
  }

  /** Actions waiting for an answer now. */
  get pendingActions(): number {
    return this.#pending.size;
  }

  /** Starts connecting (once); later failures reconnect by themselves until close(). */
  start(): void {
    if (this.#state === 'idle') this.#connect();
  }

  /** Stops for good: no reconnect, the session is ended, waiting actions fail. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#clearTimers();
    const session = this.#session;
    this.#session = null;
    this.#state = 'closed';
    this.#failPending(new AmiError(Rc.CONNECTION_FAILURE, 'AMI client closed'));
    session?.socket.destroy();
  }

  /**
   * Sends one action and waits for its answer. Fails at once when the link is not up or too many
   * actions wait; rejects AmiActionError on `Response: Error`, a MEMCACHED_TIMEOUT error after
   * timeoutMs (and the session is dropped). `list: true` collects the EventList items.
   */
  action(action: string, headers: AmiHeaders = [], options: { timeoutMs?: number; list?: boolean } = {}): Promise<AmiResponse> {
    if (this.#state !== 'up') return Promise.reject(new AmiError(Rc.CONNECTION_FAILURE, `AMI is ${this.#state}${this.#lastDown === null ? '' : ` (${this.#lastDown})`}`));
    return this.#send(action, headers, options.timeoutMs ?? this.#o.actionTimeoutMs, options.list ?? false);
  }

  /** The live channels (CoreShowChannels), keyed by nothing: one entry per channel, in Asterisk's order. */
  async coreShowChannels(options: { timeoutMs?: number } = {}): Promise<AmiChannel[]> {
    const r = await this.action('CoreShowChannels', [], { ...options, list: true });
    const channels: AmiChannel[] = [];
    for (const item of r.items) {
      if (item.event.toLowerCase() !== 'coreshowchannel') continue;
      const uniqueid = header(item.headers, 'Uniqueid');
      if (uniqueid === undefined || uniqueid === '') continue;
      channels.push({ uniqueid, linkedid: header(item.headers, 'Linkedid') ?? '', channel: header(item.headers, 'Channel') ?? '', headers: item.headers });
    }
    return channels;
  }

  // ---- session ----

  #connect(): void {
    this.#retryTimer = null;
    this.#state = 'connecting';
    const socket = createConnection({ host: this.#o.host, port: this.#o.port });
    socket.setNoDelay(true);
    const session: Session = { socket, decoder: new AmiDecoder({ ...this.#decoderOptions, banner: true }), banner: null, loggedIn: false, shuttingDown: false };
    this.#session = session;
    this.#connectTimer = setTimeout(() => {
      this.#drop(session, session.banner === null ? 'connect-failed' : 'timeout', `AMI at ${this.#where()} did not ${session.banner === null ? 'send its banner' : 'finish the login'} within ${this.#o.connectTimeoutMs} ms`);
    }, this.#o.connectTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#onData(session, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const kind: AmiDownKind = session.banner === null ? 'connect-failed' : 'socket-error';
      this.#drop(session, kind, `AMI at ${this.#where()}: ${err.code ?? err.message}`);
    });
    socket.on('close', () => {
      const why = session.shuttingDown ? 'Asterisk is shutting down (Event: Shutdown)' : 'AMI closed the connection';
      this.#drop(session, session.banner === null ? 'connect-failed' : 'closed-by-peer', `${why} (${this.#where()})`);
    });
  }

  #where(): string {
    return `${this.#o.host}:${this.#o.port}`;
  }

  #onData(session: Session, chunk: Buffer): void {
    if (this.#session !== session) return;
    session.decoder.feed(chunk);
    for (;;) {
      let frame: AmiFrame | undefined;
      try {
        frame = session.decoder.next();
      } catch (err) {
        this.#drop(session, 'protocol-error', `AMI at ${this.#where()} sent bad data: ${(err as Error).message}`);
        return;
      }
      if (frame === undefined) return;
      // Outside the try: an exception from the caller's onEvent is the caller's bug, not bad data
      // from Asterisk, and must not be reported as such.
      this.#onFrame(session, frame);
      if (this.#session !== session) return;
    }
  }

  #onFrame(session: Session, frame: AmiFrame): void {
    switch (frame.kind) {
      case 'banner':
        if (!frame.line.startsWith(BANNER_PREFIX)) {
          this.#drop(session, 'protocol-error', `${this.#where()} is not AMI: it greeted ${JSON.stringify(frame.line.slice(0, 80))}`);
          return;
        }
        session.banner = frame.line;
        void this.#login(session);
        return;
      case 'response':
        this.#onResponse(frame.actionId, frame.response, frame.headers);
        return;
      case 'event':
        this.#onAmiEvent(session, frame.event, frame.actionId, frame.headers);
        return;
      case 'other':
        this.#drop(session, 'protocol-error', `AMI at ${this.#where()} sent a message that is neither a Response nor an Event (${JSON.stringify(frame.headers[0]?.[0] ?? '')})`);
        return;
    }
  }

  #onResponse(actionId: string | undefined, response: string, headers: AmiHeaders): void {
    // Answers with no or a foreign ActionID (main/manager.c answers stray empty lines that way)
    // belong to no one here: every action we send carries an ActionID.
    const p = actionId === undefined ? undefined : this.#pending.get(actionId);
    if (p === undefined || p.response !== null) return;
    if (response.toLowerCase() === 'error') {
      this.#settle(actionId!, null, new AmiActionError(p.action, header(headers, 'Message') ?? 'Response: Error'));
      return;
    }
    p.response = { response, headers };
    const listStart = (header(headers, 'EventList') ?? '').toLowerCase() === 'start';
    if (!p.list || !listStart) this.#settle(actionId!, p, null);
  }

  #onAmiEvent(session: Session, event: string, actionId: string | undefined, headers: AmiHeaders): void {
    if (actionId !== undefined) {
      const p = this.#pending.get(actionId);
      if (p !== undefined && p.list && p.response !== null) {
        if ((header(headers, 'EventList') ?? '').toLowerCase() === 'complete') {
          this.#settle(actionId, p, null);
          return;
        }
        if (p.items.length >= this.#o.maxListItems) {
          this.#drop(session, 'protocol-error', `AMI ${p.action} sent more than ${this.#o.maxListItems} items`);
          return;
        }
        p.items.push({ event, headers });
        return;
      }
    }
    const name = event.toLowerCase();
    if (name === 'shutdown') session.shuttingDown = true;
    this.#onEvent({ type: 'event', event, headers });
    if (name === 'hangup') {
      const uniqueid = header(headers, 'Uniqueid');
      if (uniqueid !== undefined && uniqueid !== '') {
        const cause = Number(header(headers, 'Cause') ?? 'x');
        this.#onEvent({
          type: 'hangup',
          hangup: { uniqueid, linkedid: header(headers, 'Linkedid') ?? '', channel: header(headers, 'Channel') ?? '', cause: Number.isInteger(cause) ? cause : undefined },
        });
      }
    }
  }

  async #login(session: Session): Promise<void> {
    try {
      const headers: Array<readonly [string, string]> = [];
      if (this.#o.authType === 'md5') {
        const challenge = header((await this.#send('Challenge', [['AuthType', 'MD5']], this.#o.connectTimeoutMs, false)).headers, 'Challenge') ?? '';
        const key = createHash('md5').update(challenge + this.#o.secret, 'utf8').digest('hex');
        headers.push(['AuthType', 'MD5'], ['Username', this.#o.username], ['Key', key]);
      } else {
        headers.push(['Username', this.#o.username], ['Secret', this.#o.secret]);
      }
      headers.push(['Events', this.#o.eventMask]);
      // 'up' must be said before the events that follow the Login answer in the same chunk
      // (FullyBooted, a Hangup), so it is done synchronously, not after an await.
      await this.#send('Login', headers, this.#o.connectTimeoutMs, false, () => this.#up(session));
    } catch (err) {
      if (this.#session !== session) return;
      if (err instanceof AmiActionError) {
        this.#drop(session, 'login-refused', `AMI login refused for user ${JSON.stringify(this.#o.username)} at ${this.#where()}: ${err.serverText ?? err.message}`);
      } else {
        this.#drop(session, 'protocol-error', `AMI login at ${this.#where()} failed: ${(err as Error).message}`);
      }
    }
  }

  #up(session: Session): void {
    if (this.#session !== session) return;
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    session.loggedIn = true;
    this.#state = 'up';
    this.#backoff.reset();
    this.#startPing(session);
    this.#onEvent({ type: 'up', banner: session.banner ?? '' });
  }

  #startPing(session: Session): void {
    if (this.#o.pingIntervalMs <= 0) return;
    this.#pingTimer = setInterval(() => {
      if (this.#session !== session) return;
      // A failed Ping has already dropped the session (timeout) or says why (error); nothing to add.
      this.#send('Ping', [], this.#o.actionTimeoutMs, false).catch(() => {});
    }, this.#o.pingIntervalMs);
  }

  #send(action: string, headers: AmiHeaders, timeoutMs: number, list: boolean, onSuccess?: (r: AmiResponse) => void): Promise<AmiResponse> {
    const session = this.#session;
    if (session === null) return Promise.reject(new AmiError(Rc.CONNECTION_FAILURE, 'AMI is not connected'));
    if (this.#pending.size >= this.#o.maxPendingActions) {
      return Promise.reject(new AmiError(Rc.FAILURE, `AMI: ${this.#pending.size} actions already wait for an answer`));
    }
    const actionId = `${this.#idPrefix}-${this.#nextId++}`;
    let bytes: Buffer;
    try {
      bytes = encodeAction(action, actionId, headers);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AmiResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(actionId, null, new AmiError(Rc.TIMEOUT, `AMI ${action}: no answer within ${timeoutMs} ms`));
        this.#drop(session, 'timeout', `AMI at ${this.#where()} did not answer ${action} within ${timeoutMs} ms`);
      }, timeoutMs);
      this.#pending.set(actionId, { action, list, timer, resolve, reject, onSuccess, response: null, items: [] });
      session.socket.write(bytes);
      if (session.socket.writableLength > this.#o.maxWriteBufferBytes) {
        this.#drop(session, 'write-stalled', `AMI at ${this.#where()} is not reading (${session.socket.writableLength} bytes queued)`);
      }
    });
  }

  /** Resolves (p given) or rejects (error given) the action and forgets it. */
  #settle(actionId: string, p: Pending | null, error: Error | null): void {
    const entry = this.#pending.get(actionId);
    if (entry === undefined) return;
    this.#pending.delete(actionId);
    clearTimeout(entry.timer);
    if (error !== null || p === null || p.response === null) {
      entry.reject(error ?? new AmiError(Rc.PROTOCOL_ERROR, `AMI ${entry.action}: no response`));
      return;
    }
    const r: AmiResponse = { response: p.response.response, actionId, message: header(p.response.headers, 'Message'), headers: p.response.headers, items: p.items };
    entry.onSuccess?.(r);
    entry.resolve(r);
  }

  #failPending(error: Error): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, null, error);
  }

  /** Ends `session` (if it is still the current one) and plans the next attempt. */
  #drop(session: Session, kind: AmiDownKind, reason: string): void {
    if (this.#session !== session) return;
    this.#session = null;
    this.#clearTimers();
    session.socket.destroy();
    this.#lastDown = reason;
    this.#failPending(new AmiError(Rc.CONNECTION_FAILURE, reason));
    if (this.#state === 'closed') return;
    this.#state = 'down';
    const retryInMs = this.#backoff.next();
    this.#retryTimer = setTimeout(() => this.#connect(), retryInMs);
    this.#onEvent({ type: 'down', kind, reason, retryInMs });
  }

  #clearTimers(): void {
    for (const t of [this.#connectTimer, this.#retryTimer]) if (t !== null) clearTimeout(t);
    if (this.#pingTimer !== null) clearInterval(this.#pingTimer);
    this.#connectTimer = this.#retryTimer = this.#pingTimer = null;
  }
}
