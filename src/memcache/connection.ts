// One memcached server connection: a socket, a wire codec and two queues (ARCHITECTURE.md,
// "A connection").
//   unsent  — accepted, not yet handed to the socket: safe to fail, retry or reroute;
//   written — handed to the socket, outcome unknown until the reply arrives.
// The codec (protocol/wire-codec.ts) writes requests and folds each reply frame into the head of
// `written`; which protocol it speaks is none of this file's business. A reply that cannot
// belong to the head means the stream is out of sync: the connection is destroyed.
//
// Timeouts (one rule, ARCHITECTURE.md "Timeouts"): every request gets deadline = accepted + timeoutMs.
// An unsent request past its deadline is removed with MEMCACHED_TIMEOUT; a written one past its
// deadline means the server went silent: the socket is destroyed, every written request fails
// with MEMCACHED_TIMEOUT and the owner is told, so the server is counted as failing. One timer
// per connection, armed for the oldest deadline.
//
// The connection never throws at its caller and never rejects: every request resolves with an
// Outcome whose rc says what happened. It opens its socket on the first request.

import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { ByteWriter } from '../util/byte-writer.js';
import { MemcachedError, Rc, rcOf } from '../util/errors.js';
import { Fifo } from '../util/fifo.js';
import { createCodec, refusalRule, type RefusalRule } from './protocol/codecs.js';
import type { Command, Outcome } from './protocol/command.js';
import { Fold, type Protocol, type WireCodec, type WireRequest } from './protocol/wire-codec.js';

export type { Protocol } from './protocol/wire-codec.js';
export type Address = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export interface TlsSettings {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  /** Verify the server's certificate (default true). */
  verify?: boolean;
  servername?: string;
}

export interface SaslCredentials {
  username: string;
  password: string;
}

/** Makes the transport; tests inject in-memory duplexes or fault-injecting sockets. */
export type SocketFactory = (address: Address, tlsSettings: TlsSettings | null) => Duplex;

export interface ConnectionOptions {
  address: Address;
  protocol: Protocol;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** Most requests waiting on this connection (unsent + written); more fail at once. */
  maxQueue?: number;
  tls?: TlsSettings | null;
  sasl?: SaslCredentials | null;
  socketFactory?: SocketFactory;
}

export interface ConnectionEvents {
  /** The first reply after a connect: the server is answering. */
  onHealthy?(): void;
  /**
   * The connection failed (connect error, timeout, reset, protocol desync). `unsent` are the
   * requests never handed to the socket: the owner may reroute them with `adopt`, else they
   * are failed with `rc` when this returns.
   */
  onFailure?(rc: number, error: Error, unsent: PendingRequest[]): void;
}

export interface PendingRequest extends WireRequest {
  /** The bytes that place the request on a server, kept so the owner can reroute it unsent; none for multi-key commands. */
  route?: Buffer;
  deadline: number;
  resolve: (out: Outcome) => void;
}

type State = 'idle' | 'connecting' | 'authenticating' | 'ready' | 'closed';

const DEFAULT_MAX_QUEUE = 100_000;
const WRITE_BATCH_BYTES = 256 * 1024;

export const defaultSocketFactory: SocketFactory = (address, tlsSettings) => {
  const base = address.kind === 'unix' ? { path: address.path } : { host: address.host, port: address.port };
  if (tlsSettings !== null) {
    return tls.connect({
      ...base,
      ca: tlsSettings.ca,
      cert: tlsSettings.cert,
      key: tlsSettings.key,
      rejectUnauthorized: tlsSettings.verify ?? true,
      servername: tlsSettings.servername ?? (address.kind === 'tcp' && net.isIP(address.host) === 0 ? address.host : undefined),
    });
  }
  const socket = net.connect(base);
  socket.setNoDelay(true);
  return socket;
};

/** libmemcached's code for a socket error. */
export function socketErrorRc(err: NodeJS.ErrnoException, connecting: boolean): number {
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return Rc.HOST_LOOKUP_FAILURE;
    case 'ETIMEDOUT':
      return Rc.TIMEOUT;
    case 'ENOENT':
    case 'EACCES':
      return Rc.FAIL_UNIX_SOCKET;
    case 'EPIPE':
      return Rc.WRITE_FAILURE;
    default:
      return connecting || err.code === 'ECONNRESET' ? Rc.CONNECTION_FAILURE : Rc.READ_FAILURE;
  }
}

export class Connection {
  readonly #opts: Required<Pick<ConnectionOptions, 'maxQueue' | 'socketFactory'>> & ConnectionOptions;
  readonly #events: ConnectionEvents;
  readonly #unsent = new Fifo<PendingRequest>();
  readonly #written = new Fifo<PendingRequest>();
  readonly #writer = new ByteWriter();
  #state: State = 'idle';
  #socket: Duplex | null = null;
  /** A fresh one for every socket: no decoder state outlives the bytes it was reading. */
  #codec: WireCodec | null = null;
  /** What the protocol cannot carry, asked before a request is queued (no codec needed yet). */
  readonly #refuse: RefusalRule;
  #connectDeadline = 0;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = 0;
  #flushScheduled = false;
  /** Date.now() of this tick, 0 until read (see #tickNow). */
  #now = 0;
  #blocked = false;
  #answered = false;
  #closing = false;
  /** An unsent request came with a deadline of its own (rerouted): deadlines may be out of order. */
  #adopted = false;
  #closeWaiters: Array<() => void> = [];

  constructor(options: ConnectionOptions, events: ConnectionEvents = {}) {
    this.#opts = {
      maxQueue: DEFAULT_MAX_QUEUE,
      socketFactory: defaultSocketFactory,
      ...options,
    };
    this.#events = events;
    this.#refuse = refusalRule(options.protocol);
    if (options.sasl && this.#refuse(authCommand(options.sasl)) !== null) {
      throw new MemcachedError(Rc.INVALID_ARGUMENTS, `SASL needs the binary protocol, not ${options.protocol}`);
    }
  }

  get state(): State {
    return this.#state;
  }

  /** Requests accepted and not yet answered. */
  get pending(): number {
    return this.#unsent.length + this.#written.length;
  }

  send(cmd: Command): Promise<Outcome> {
    return new Promise<Outcome>((resolve) => {
      this.enqueue({ cmd, opaque: 0, deadline: 0, out: { rc: Rc.SUCCESS }, resolve });
    });
  }

  /** Accepts a request (new, or rerouted from another connection with its deadline kept). */
  enqueue(req: PendingRequest): void {
    if (this.#closing) return settle(req, Rc.CONNECTION_FAILURE, 'client is closed');
    const refusal = this.#refuse(req.cmd);
    if (refusal !== null) return settle(req, refusal.rc, refusal.message);
    if (this.pending >= this.#opts.maxQueue) return settle(req, Rc.TIMEOUT, 'too many requests waiting on this server');
    if (req.deadline === 0) req.deadline = this.#tickNow() + this.#opts.timeoutMs;
    else this.#adopted = true;
    this.#unsent.push(req);
    if (this.#state === 'idle') this.#connect();
    else if (this.#state === 'ready') this.#scheduleFlush();
    this.#armTimer(req.deadline);
  }

  /** Stops taking requests; resolves when those already accepted are answered and the socket is shut. */
  close(): Promise<void> {
    this.#closing = true;
    if (this.pending === 0 || this.#state === 'idle' || this.#state === 'closed') {
      this.#shutdown();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#closeWaiters.push(resolve));
  }

  /** Drops the socket and fails everything at once. */
  destroy(): void {
    this.#closing = true;
    this.#fail(Rc.CONNECTION_FAILURE, new MemcachedError(Rc.CONNECTION_FAILURE, 'connection destroyed'));
  }

  #connect(): void {
    this.#state = 'connecting';
    this.#answered = false;
    this.#connectDeadline = Date.now() + this.#opts.connectTimeoutMs;
    this.#armTimer(this.#connectDeadline);
    this.#codec = createCodec(this.#opts.protocol);
    let socket: Duplex;
    try {
      socket = this.#opts.socketFactory(this.#opts.address, this.#opts.tls ?? null);
    } catch (err) {
      return this.#fail(Rc.CONNECTION_FAILURE, err as Error);
    }
    this.#socket = socket;
    const connectEvent = this.#opts.tls ? 'secureConnect' : 'connect';
    socket.once(connectEvent, () => this.#onConnect());
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => {
      this.#blocked = false;
      this.#flush();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.#state === 'ready' && this.pending === 0) return; // 'close' follows; see there
      this.#fail(socketErrorRc(err, this.#state === 'connecting'), err);
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      if (this.#state === 'ready' && this.pending === 0) {
        // An idle connection closed (server restarted, idle timeout): not a failure of any
        // request; the next one reconnects, and only a failed reconnect counts against the server.
        this.#dropSocket();
        this.#state = 'idle';
        return;
      }
      this.#fail(Rc.CONNECTION_FAILURE, new MemcachedError(Rc.CONNECTION_FAILURE, 'server closed the connection'));
    });
  }

  #onConnect(): void {
    if (this.#state !== 'connecting') return;
    const sasl = this.#opts.sasl;
    if (sasl) {
      this.#state = 'authenticating';
      const auth: PendingRequest = {
        cmd: authCommand(sasl),
        opaque: 0,
        deadline: Date.now() + this.#opts.timeoutMs,
        out: { rc: Rc.SUCCESS },
        resolve: (out) => this.#onAuthenticated(out),
      };
      this.#writeRequests([auth]);
      return;
    }
    this.#state = 'ready';
    this.#flush();
  }

  #onAuthenticated(out: Outcome): void {
    if (out.rc !== Rc.SUCCESS) {
      const rc = out.rc === Rc.NOT_SUPPORTED ? Rc.AUTH_PROBLEM : Rc.AUTH_FAILURE;
      this.#fail(rc, new MemcachedError(rc, `SASL authentication failed${out.text ? `: ${out.text}` : ''}`));
      return;
    }
    this.#state = 'ready';
    this.#flush();
  }

  /**
   * The clock, read once per tick: requests accepted in one tick (and in the promise jobs it
   * runs) are accepted at the same moment, and a busy pipeline saves a clock read per request.
   */
  #tickNow(): number {
    if (this.#now === 0) {
      this.#now = Date.now();
      this.#scheduleFlush();
    }
    return this.#now;
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    // Requests made in the same tick (and in the promise jobs it runs) share one write.
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#now = 0;
      this.#flush();
    });
  }

  #flush(): void {
    if (this.#state !== 'ready') return;
    if (this.#blocked || this.#unsent.length === 0) return;
    const batch: PendingRequest[] = [];
    let bytes = 0;
    while (this.#unsent.length > 0 && bytes < WRITE_BATCH_BYTES) {
      const req = this.#unsent.shift()!;
      batch.push(req);
      bytes += estimateBytes(req.cmd);
    }
    this.#writeRequests(batch);
    if (this.#unsent.length > 0 && !this.#blocked) this.#scheduleFlush();
  }

  #writeRequests(batch: PendingRequest[]): void {
    const w = this.#writer;
    const codec = this.#codec!;
    for (const req of batch) {
      codec.encode(req, w);
      this.#written.push(req);
    }
    const socket = this.#socket!;
    let ok = true;
    for (const chunk of w.take()) ok = socket.write(chunk);
    if (!ok) this.#blocked = true;
  }

  #onData(chunk: Buffer): void {
    const socket = this.#socket;
    try {
      this.#read(chunk, socket);
    } catch (err) {
      this.#fail(rcOf(err), err as Error);
      return;
    }
    // A reply that failed the connection (a refused login) is no sign of health: reporting it
    // would reset the failure count the cluster just raised.
    if (this.#socket !== socket) return;
    if (!this.#answered) {
      this.#answered = true;
      this.#events.onHealthy?.();
    }
    if (this.#closing && this.pending === 0) this.#shutdown();
  }

  #read(chunk: Buffer, socket: Duplex | null): void {
    const codec = this.#codec!;
    codec.feed(chunk);
    for (let frame = codec.next(); frame !== undefined; frame = codec.next()) {
      const head = this.#head();
      if (codec.accept(head, frame) === Fold.DONE) this.#completeHead(head);
      // Completing a request may have failed the connection (a refused login): what is left
      // of this chunk belongs to a socket that is gone.
      if (this.#socket !== socket) return;
    }
  }

  /** The request a reply answers; a reply with nothing waiting means the stream is out of sync. */
  #head(): PendingRequest {
    const head = this.#written.peek();
    if (head === undefined) throw new MemcachedError(Rc.UNKNOWN_READ_FAILURE, 'reply with no request waiting');
    return head;
  }

  #completeHead(head: PendingRequest): void {
    this.#written.shift();
    head.resolve(head.out);
  }

  #armTimer(at: number): void {
    if (this.#timer !== null && this.#timerAt <= at) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, at - Date.now()));
    this.#timer.unref();
  }

  #onTimer(): void {
    this.#timer = null;
    const now = Date.now();
    if (this.#state === 'connecting' && now >= this.#connectDeadline) {
      this.#fail(Rc.TIMEOUT, new MemcachedError(Rc.TIMEOUT, `connect timed out after ${this.#opts.connectTimeoutMs} ms`));
    } else {
      const head = this.#written.peek();
      if (head !== undefined && now >= head.deadline) {
        this.#fail(Rc.TIMEOUT, new MemcachedError(Rc.TIMEOUT, `no reply within ${this.#opts.timeoutMs} ms`));
      }
    }
    const next = Math.min(
      this.#state === 'connecting' ? this.#connectDeadline : Infinity,
      this.#written.peek()?.deadline ?? Infinity,
      this.#expireUnsent(now),
    );
    if (next !== Infinity) this.#armTimer(next);
    if (this.#closing && this.pending === 0) this.#shutdown();
  }

  /**
   * Unsent requests past their deadline leave quietly: nothing of them reached the server. All
   * are looked at, not only the oldest: a request rerouted from a failed connection keeps its
   * own, earlier deadline behind newer ones. Returns the earliest deadline left.
   */
  #expireUnsent(now: number): number {
    if (this.#unsent.length === 0 || (this.#unsent.peek()!.deadline > now && !this.#adopted)) {
      return this.#unsent.peek()?.deadline ?? Infinity;
    }
    let earliest = Infinity;
    for (const req of this.#unsent.drain()) {
      if (now >= req.deadline) {
        settle(req, Rc.TIMEOUT, 'not sent within the timeout');
      } else {
        this.#unsent.push(req);
        earliest = Math.min(earliest, req.deadline);
      }
    }
    this.#adopted = false;
    return earliest;
  }

  /**
   * The socket is gone or unusable: everything written fails with rc; the unsent requests go to
   * the owner, who must settle or re-enqueue every one of them.
   */
  #fail(rc: number, error: Error): void {
    this.#dropSocket();
    this.#state = 'idle';
    this.#blocked = false;
    for (const req of this.#written.drain()) settle(req, rc, error.message);
    const unsent = this.#unsent.drain();
    if (this.#closing || this.#events.onFailure === undefined) {
      for (const req of unsent) settle(req, rc, error.message);
    } else {
      this.#events.onFailure(rc, error, unsent);
    }
    if (this.#closing) this.#shutdown();
  }

  #dropSocket(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const socket = this.#socket;
    this.#socket = null;
    if (socket !== null) {
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
    }
  }

  #shutdown(): void {
    if (this.#socket !== null) this.#socket.end();
    this.#dropSocket();
    this.#state = 'closed';
    for (const req of this.#unsent.drain()) settle(req, Rc.CONNECTION_FAILURE, 'client is closed');
    for (const req of this.#written.drain()) settle(req, Rc.CONNECTION_FAILURE, 'client is closed');
    const waiters = this.#closeWaiters;
    this.#closeWaiters = [];
    for (const w of waiters) w();
  }
}

/** Resolves a request with a failure code (whatever it gathered so far is dropped). */
export function settle(req: PendingRequest, rc: number, text?: string): void {
  req.out = text === undefined ? { rc } : { rc, text };
  req.resolve(req.out);
}

/** SASL PLAIN: the one mechanism memcached's SASL builds offer everywhere. */
function authCommand(sasl: SaslCredentials): Command {
  return { op: 'auth', mechanism: 'PLAIN', data: Buffer.from(`\0${sasl.username}\0${sasl.password}`, 'utf8') };
}

function estimateBytes(cmd: Command): number {
  if (cmd.op === 'store') return cmd.value.length + 64;
  if (cmd.op === 'storeMany') {
    let bytes = 64;
    for (const value of cmd.values) bytes += value.length + 64;
    return bytes;
  }
  return 64;
}
