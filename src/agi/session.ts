// One FastAGI session on its socket: the environment block under a deadline, then one command at
// a time (Asterisk does not pipeline: a second command written before the first is answered
// waits until more bytes arrive, proto.log), `HANGUP` notifications noted wherever they fall,
// and a clean end: we half-close, Asterisk answers with one last `HANGUP` and closes.

import type { Socket } from 'node:net';
import { Rc } from '../util/errors.js';
import { AgiDecoder, AgiError, AgiProtocolError, type AgiEnvironment, type AgiFrame } from './codec.js';

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
export class AgiSessionClosed extends AgiError {
  constructor(readonly reason: string) {
    super(Rc.CONNECTION_FAILURE, `AGI session closed: ${reason}`);
    this.name = 'AgiSessionClosed';
  }
}

/** After our FIN, how long Asterisk gets to send its last HANGUP and close before we cut it. */
const CLOSE_GRACE_MS = 2000;
/** Lines that answer nothing (smuggled by an argument) tolerated before the session is cut. */
const MAX_STRAY_LINES = 1000;
/**
 * Before the first answer, a refusal (510, 511, a 520 block) may be Asterisk's own or a line an
 * argument smuggled past the environment block. Asterisk writes the whole block, its closing
 * empty line last, before it reads a command (res_agi.c, setup_env), so a smuggled line is always
 * followed by more lines straight away, while after its own refusal Asterisk sends nothing until
 * the next command. This long a silence tells them apart: longer than a TCP delayed ACK (at most
 * 200 ms on Linux) that could hold back the rest of the block, far shorter than answer_timeout.
 */
export const REFUSAL_SETTLE_MS = 500;

interface Waiter {
  resolve(answer: AgiAnswer): void;
  reject(err: Error): void;
  accept: (answer: AgiAnswer) => boolean;
  /** The command, to name it when Asterisk refuses it. */
  line: Buffer;
}

const isOk = (answer: AgiAnswer): boolean => answer.code === 200;

export class AgiSession {
  readonly #socket: Socket;
  readonly #limits: SessionLimits;
  readonly #decoder: AgiDecoder;
  #env: AgiEnvironment | null = null;
  #envWaiters: Array<{ resolve(env: AgiEnvironment): void; reject(err: Error): void }> = [];
  #waiter: Waiter | null = null;
  #timer: NodeJS.Timeout | null = null;
  /** A refusal before the first answer, waiting out REFUSAL_SETTLE_MS (see there). */
  #refusal: { answer: AgiAnswer; timer: NodeJS.Timeout } | null = null;
  /** An answer was taken: every byte of the environment block has arrived, nothing is leftover. */
  #answered = false;
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
    let closed!: () => void;
    this.#done = new Promise((resolve) => (closed = resolve));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(`socket error: ${err.message}`));
    socket.on('end', () => {
      // Asterisk closed its side (AGIEXITONHANGUP, or after our FIN): nothing more will come.
      this.#fail('Asterisk closed the connection');
      if (!this.#socket.destroyed && !this.#socket.writableEnded) this.#socket.end();
    });
    // One listener for both: `done` settles first, then whatever still waits is failed.
    socket.on('close', () => {
      closed();
      this.#fail('connection closed');
    });
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
   * Writes one command (a whole line, one write) and resolves with its answer, the one `accept`
   * takes (by default any `200`). Any other answer ends the session at once, but for those that
   * may be lines an argument smuggled past the environment block, which come before the first
   * answer: there a `200` that `accept` refuses is skipped as a stray line (a command whose answer
   * carries a nonce tells its own answer from anything forged), and a refusal ends the session
   * only when nothing follows it (REFUSAL_SETTLE_MS).
   */
  command(line: Buffer, accept: (answer: AgiAnswer) => boolean = isOk): Promise<AgiAnswer> {
    if (this.#closedReason !== null) return Promise.reject(new AgiSessionClosed(this.#closedReason));
    if (this.#waiter !== null) return Promise.reject(new Error('AGI commands cannot be pipelined'));
    if (this.#env === null) return Promise.reject(new Error('AGI command before the environment block'));
    return new Promise<AgiAnswer>((resolve, reject) => {
      this.#waiter = { resolve, reject, accept, line };
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
    // A line after a refusal shows the refusal was a leftover of the environment block. A HANGUP
    // does not: Asterisk sends it whenever the channel hangs up.
    if (this.#refusal !== null && frame.kind !== 'hangup') this.#settleRefusal(false);
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
        if (waiter === null) {
          this.#stray();
          return;
        }
        if (waiter.accept(frame)) {
          this.#waiter = null;
          this.#answered = true;
          this.#disarm();
          waiter.resolve(frame);
          return;
        }
        if (this.#answered) this.#refused(frame, waiter);
        else if (frame.code === 200) this.#stray();
        else this.#refusal = { answer: frame, timer: setTimeout(() => this.#settleRefusal(true), Math.min(REFUSAL_SETTLE_MS, this.#limits.answerTimeoutMs)) };
        return;
      }
    }
  }

  /** The refusal waiting out its settle time was Asterisk's (`silent`), or a leftover line. */
  #settleRefusal(silent: boolean): void {
    const refusal = this.#refusal;
    if (refusal === null) return;
    clearTimeout(refusal.timer);
    this.#refusal = null;
    if (!silent) this.#stray();
    else if (this.#waiter !== null) this.#refused(refusal.answer, this.#waiter);
  }

  /**
   * Asterisk did not answer as expected: waiting longer would only reach answer_timeout, and
   * nothing after this can be trusted to line up, so the session fails now and the caller ends it.
   */
  #refused(answer: AgiAnswer, waiter: Waiter): void {
    // A 520 block is named by its first line.
    const nl = answer.line.indexOf(0x0a);
    const first = (nl === -1 ? answer.line : answer.line.subarray(0, nl)).toString('latin1', 0, 80);
    this.#fail(`Asterisk answered ${JSON.stringify(first)} to ${verbOf(waiter.line)}`);
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
    if (this.#refusal !== null) clearTimeout(this.#refusal.timer);
    this.#refusal = null;
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

/** `GET FULL VARIABLE "…"` → `GET FULL VARIABLE`: the words before the first quoted one. */
function verbOf(line: Buffer): string {
  const quote = line.indexOf(0x22);
  return line.toString('latin1', 0, quote === -1 ? Math.min(line.length, 40) : Math.min(quote, 40)).trim();
}
