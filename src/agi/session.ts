// One FastAGI session on its socket: the environment block under a deadline, then one command at
// a time (Asterisk does not pipeline: a second command written before the first is answered
// waits until more bytes arrive, proto.log), `HANGUP` notifications noted wherever they fall,
// and a clean end: we half-close, Asterisk answers with one last `HANGUP` and closes.

import type { Socket } from 'node:net';
import { MemcachedError, Rc } from '../util/errors.js';
import { AgiDecoder, AgiProtocolError, type AgiEnvironment, type AgiFrame } from './codec.js';

export interface SessionLimits {
  /** Deadline for the whole environment block, from connect (ms). */
  envTimeoutMs: number;
  /** Longest wait for Asterisk's answer to one command (ms). */
  answerTimeoutMs: number;
  /** Longest line accepted from Asterisk, `\n` included. */
  maxLineBytes: number;
}

export type AgiAnswer = Extract<AgiFrame, { kind: 'answer' }>;

/** The session ended before the thing awaited: peer closed, deadline, or a protocol breach. */
export class AgiSessionClosed extends MemcachedError {
  constructor(readonly reason: string) {
    super(Rc.CONNECTION_FAILURE, `AGI session closed: ${reason}`);
    this.name = 'AgiSessionClosed';
  }
}

/** After our FIN, how long Asterisk gets to send its last HANGUP and close before we cut it. */
const CLOSE_GRACE_MS = 2000;
/** Lines that answer nothing (smuggled by an argument) tolerated before the session is cut. */
const MAX_STRAY_LINES = 1000;

interface Waiter {
  resolve(answer: AgiAnswer): void;
  reject(err: Error): void;
  accept: ((answer: AgiAnswer) => boolean) | null;
}

export class AgiSession {
  readonly #socket: Socket;
  readonly #limits: SessionLimits;
  readonly #decoder: AgiDecoder;
  #env: AgiEnvironment | null = null;
  #envWaiters: Array<{ resolve(env: AgiEnvironment): void; reject(err: Error): void }> = [];
  #waiter: Waiter | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** Why the session closed; null while open. The error object is made only when someone waits. */
  #closedReason: string | null = null;
  #hungUp = false;
  #strays = 0;
  #ending = false;
  readonly #done: Promise<void>;
  readonly remoteAddress: string;

  constructor(socket: Socket, limits: SessionLimits) {
    this.#socket = socket;
    this.#limits = limits;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.#decoder = new AgiDecoder({ maxLineBytes: limits.maxLineBytes });
    this.#done = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(`socket error: ${err.message}`));
    socket.on('end', () => {
      // Asterisk closed its side (AGIEXITONHANGUP, or after our FIN): nothing more will come.
      this.#fail('Asterisk closed the connection');
      if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.end();
    });
    socket.on('close', () => this.#fail('connection closed'));
    this.#arm(limits.envTimeoutMs, 'no complete AGI environment within the deadline');
  }

  /** The channel hung up (a `HANGUP` notification arrived). Variable commands still work. */
  get hungUp(): boolean {
    return this.#hungUp;
  }

  /** Lines that answered no command: what an argument holding a line feed smuggles in. */
  get strayLines(): number {
    return this.#strays;
  }

  /** Resolves when the socket is closed. */
  get done(): Promise<void> {
    return this.#done;
  }

  environment(): Promise<AgiEnvironment> {
    if (this.#env !== null) return Promise.resolve(this.#env);
    if (this.#closedReason !== null) return Promise.reject(new AgiSessionClosed(this.#closedReason));
    return new Promise((resolve, reject) => this.#envWaiters.push({ resolve, reject }));
  }

  /**
   * Writes one command (a whole line, one write) and resolves with its answer. With `accept`,
   * answers it rejects are counted as stray lines and skipped: a command whose answer carries a
   * nonce can tell its own answer from anything smuggled before it.
   */
  command(line: Buffer, accept: ((answer: AgiAnswer) => boolean) | null = null): Promise<AgiAnswer> {
    if (this.#closedReason !== null) return Promise.reject(new AgiSessionClosed(this.#closedReason));
    if (this.#waiter !== null) return Promise.reject(new Error('AGI commands cannot be pipelined'));
    if (this.#env === null) return Promise.reject(new Error('AGI command before the environment block'));
    return new Promise<AgiAnswer>((resolve, reject) => {
      this.#waiter = { resolve, reject, accept };
      this.#arm(this.#limits.answerTimeoutMs, 'no answer from Asterisk within the deadline');
      this.#socket.write(line);
    });
  }

  /** Ends the session as a script does: half-close, let Asterisk send its HANGUP and close. */
  end(): Promise<void> {
    if (!this.#ending && !this.#socket.destroyed) {
      this.#ending = true;
      this.#socket.end();
      const cut = setTimeout(() => this.#socket.destroy(), CLOSE_GRACE_MS);
      cut.unref();
      void this.#done.then(() => clearTimeout(cut));
    }
    return this.#done;
  }

  /** Cuts the session at once (a breach of the protocol or of a bound). */
  destroy(reason: string): void {
    this.#fail(reason);
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#closedReason !== null) return;
    this.#decoder.feed(chunk);
    try {
      for (let frame = this.#decoder.next(); frame !== null; frame = this.#decoder.next()) this.#onFrame(frame);
    } catch (err) {
      this.destroy(err instanceof AgiProtocolError ? err.message : String(err));
    }
  }

  #onFrame(frame: AgiFrame): void {
    switch (frame.kind) {
      case 'env':
        this.#env = frame.env;
        this.#disarm();
        for (const w of this.#envWaiters) w.resolve(frame.env);
        this.#envWaiters = [];
        return;
      case 'hangup':
        this.#hungUp = true;
        return;
      case 'trying':
        return;
      case 'stray':
        this.#stray();
        return;
      case 'answer': {
        const waiter = this.#waiter;
        if (waiter === null || (waiter.accept !== null && !waiter.accept(frame))) {
          this.#stray();
          return;
        }
        this.#waiter = null;
        this.#disarm();
        waiter.resolve(frame);
        return;
      }
    }
  }

  #stray(): void {
    if (++this.#strays > MAX_STRAY_LINES) this.destroy(`more than ${MAX_STRAY_LINES} lines that answer nothing`);
  }

  #arm(ms: number, reason: string): void {
    this.#disarm();
    this.#timer = setTimeout(() => this.destroy(reason), ms);
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #fail(reason: string): void {
    if (this.#closedReason !== null) return;
    this.#closedReason = reason;
    this.#disarm();
    // Every session ends through here, so no error object (and its stack) unless one is awaited.
    if (this.#envWaiters.length === 0 && this.#waiter === null) return;
    const error = new AgiSessionClosed(reason);
    for (const w of this.#envWaiters) w.reject(error);
    this.#envWaiters = [];
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(error);
  }
}
