// The Asterisk Gateway Interface as FastAGI speaks it (test/fixtures/agi/README.md): a pure,
// incremental decoder of what Asterisk sends — the environment block, then answers, with
// `HANGUP` notifications arriving inline — and an encoder of command lines. No sockets here.

import { Rc, ResultError } from '../util/errors.js';
import { ReadBuffer } from '../util/read-buffer.js';

const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const AGI_ENV_KEY = /^agi_[a-z0-9_]+$/;
const ARG_KEY = /^agi_arg_([1-9][0-9]{0,3})$/;

/** Asterisk reads at most this many bytes of one command line, its `\n` included (long.log). */
export const AGI_MAX_COMMAND_BYTES = 8191;

export interface AgiEnvironment {
  /** Every `agi_*` line, raw bytes after `: `. */
  readonly vars: ReadonlyMap<string, Buffer>;
  /** `agi_network_script`: the path after host[:port]/, with its ?query; null when absent. */
  readonly script: string | null;
  /** agi_arg_1..N, raw bytes. */
  readonly args: readonly Buffer[];
  readonly channel: string;
  /**
   * The block did not have the shape Asterisk gives it: a line that is not `agi_x: value`, or
   * arguments out of sequence. Asterisk does not escape line feeds in arguments, so this means
   * an argument held one and the values here are cut (README: "The environment block").
   */
  readonly broken: boolean;
}

export type AgiFrame =
  | { readonly kind: 'env'; readonly env: AgiEnvironment }
  /** `200 result=N [(data)]`, `510 ...`, `511 ...`, or a whole `520-` … `520 ` usage block. */
  | { readonly kind: 'answer'; readonly code: number; readonly result: string | null; readonly data: Buffer | null; readonly line: Buffer }
  /** `100 result=0 Trying...`: a 200 follows. */
  | { readonly kind: 'trying' }
  /** The channel hung up (or, after our FIN, the session ends). */
  | { readonly kind: 'hangup' }
  /** A line that is none of the above: bytes an argument smuggled past the environment block. */
  | { readonly kind: 'stray'; readonly line: Buffer };

/** A failure on the AGI side (Asterisk's session), never the cache's: the code says what, the class where. */
export class AgiError extends ResultError {
  constructor(rc: number, message?: string, options?: { cause?: unknown; serverText?: string }) {
    super(rc, message, options);
    this.name = 'AgiError';
  }
}

export class AgiProtocolError extends AgiError {
  constructor(message: string) {
    super(Rc.PROTOCOL_ERROR, message);
    this.name = 'AgiProtocolError';
  }
}

export interface AgiDecoderOptions {
  /** Longest line accepted, its `\n` included. */
  maxLineBytes?: number;
  /** Most environment lines (Asterisk sends 22 + one per argument; AGI takes at most 127 arguments). */
  maxEnvLines?: number;
  /** Most lines in one `520-` usage block. */
  maxBlockLines?: number;
}

type Phase = 'env' | 'answers';

export class AgiDecoder {
  readonly #in = new ReadBuffer();
  readonly #maxLine: number;
  readonly #maxEnvLines: number;
  readonly #maxBlockLines: number;
  #phase: Phase = 'env';
  /** The environment lines so far: each one's key (null: not an `agi_x: value` line) and value. */
  #envKeys: Array<string | null> = [];
  #envValues: Buffer[] = [];
  #block: Buffer[] | null = null;

  constructor(options: AgiDecoderOptions = {}) {
    this.#maxLine = options.maxLineBytes ?? 8192;
    this.#maxEnvLines = options.maxEnvLines ?? 512;
    this.#maxBlockLines = options.maxBlockLines ?? 256;
  }

  /** The chunk must not change afterwards: frames may hold views into it. */
  feed(chunk: Buffer): void {
    this.#in.append(chunk);
  }

  /** The next whole frame, or null when more bytes are needed. Throws AgiProtocolError. */
  next(): AgiFrame | null {
    while (this.#phase === 'env') {
      const at = this.#lineEnd();
      if (at === -1) return null;
      const frame = this.#envLine(at);
      if (frame !== null) return frame;
    }
    for (;;) {
      const at = this.#lineEnd();
      if (at === -1) return null;
      const line = this.#in.keep(0, at);
      this.#in.skip(at + 1);
      const frame = this.#answerLine(line);
      if (frame !== null) return frame;
    }
  }

  /** Where the next line's `\n` is (relative to the cursor), or -1 when more bytes are needed. */
  #lineEnd(): number {
    const at = this.#in.indexOf(LF, this.#maxLine);
    if (at === -1 && this.#in.available >= this.#maxLine) throw new AgiProtocolError(`a line from Asterisk is longer than ${this.#maxLine} bytes`);
    return at;
  }

  /**
   * One environment line, `at` bytes long, read in place: the key as a string and the value
   * only, a view into the chunk when it arrived whole in one. Every session sends some 25 of
   * these, so no copy of the whole line is made first.
   */
  #envLine(at: number): AgiFrame | null {
    const input = this.#in;
    if (at === 0) {
      input.skip(1);
      this.#phase = 'answers';
      const env = environmentOf(this.#envKeys, this.#envValues);
      this.#envKeys = [];
      this.#envValues = [];
      return { kind: 'env', env };
    }
    if (this.#envKeys.length >= this.#maxEnvLines) throw new AgiProtocolError(`more than ${this.#maxEnvLines} environment lines`);
    const colon = input.indexOf(0x3a, at);
    const key = colon > 0 && input.byteAt(colon + 1) === 0x20 ? input.latin1(colon) : '';
    if (AGI_ENV_KEY.test(key)) {
      this.#envKeys.push(key);
      this.#envValues.push(input.keep(colon + 2, at - colon - 2));
    } else {
      this.#envKeys.push(null);
      this.#envValues.push(EMPTY);
    }
    input.skip(at + 1);
    return null;
  }

  #answerLine(line: Buffer): AgiFrame | null {
    if (this.#block !== null) {
      this.#block.push(line);
      if (startsWith(line, '520 ')) {
        const whole = Buffer.concat(this.#block.flatMap((l) => [l, Buffer.of(LF)]));
        this.#block = null;
        return { kind: 'answer', code: 520, result: null, data: null, line: whole };
      }
      if (this.#block.length > this.#maxBlockLines) throw new AgiProtocolError(`a 520 usage block longer than ${this.#maxBlockLines} lines`);
      return null;
    }
    if (line.length === 6 && line.toString('latin1') === 'HANGUP') return { kind: 'hangup' };
    if (startsWith(line, '520-')) {
      this.#block = [line];
      return null;
    }
    if (startsWith(line, '100 ')) return { kind: 'trying' };
    const head = /^([2-5][0-9]{2})(?: |$)/.exec(line.toString('latin1', 0, 4));
    if (head === null) return { kind: 'stray', line };
    const code = Number(head[1]);
    if (code !== 200) return { kind: 'answer', code, result: null, data: null, line };
    return parse200(line);
  }
}

/** `200 result=N` or `200 result=N (data)`; data runs to the last `)` (it is never escaped). */
function parse200(line: Buffer): AgiFrame {
  const text = line.toString('latin1');
  const m = /^200 result=(-?[0-9]*)(?: \(|$)/.exec(text);
  if (m === null) return { kind: 'answer', code: 200, result: null, data: null, line };
  const open = m[0].endsWith('(') ? m[0].length : -1;
  const close = line.lastIndexOf(0x29);
  const data = open > 0 && close >= open ? line.subarray(open, close) : null;
  return { kind: 'answer', code: 200, result: m[1] ?? '', data, line };
}

/** `keys[i]` and `values[i]` are one line's; a null key is a line that was not `agi_x: value`. */
function environmentOf(keys: ReadonlyArray<string | null>, values: readonly Buffer[]): AgiEnvironment {
  const vars = new Map<string, Buffer>();
  const args: Buffer[] = [];
  let broken = false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key === null || key === undefined) {
      broken = true;
      continue;
    }
    const value = values[i]!;
    const seen = vars.has(key);
    const arg = key.startsWith('agi_arg_') ? ARG_KEY.exec(key) : null;
    if (arg !== null) {
      // agi_arg_N arrive in order from 1; anything else means a line feed broke an argument.
      if (Number(arg[1]) !== args.length + 1) broken = true;
      else args.push(value);
    } else if (seen || args.length > 0) {
      broken = true;
    }
    if (!seen) vars.set(key, value);
  }
  const script = vars.get('agi_network_script');
  return {
    vars,
    script: script === undefined ? null : script.toString('utf8'),
    args,
    channel: vars.get('agi_channel')?.toString('utf8') ?? '',
    broken,
  };
}

function startsWith(line: Buffer, prefix: string): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

// ---- encoding ----

const BACKSLASH = 0x5c;
const DQUOTE = 0x22;

/**
 * A word Asterisk's parser gives back byte for byte: wrapped in `"…"`, with only `\` and `"`
 * escaped (quoting.log). It cannot carry LF (it ends the command line) or NUL.
 */
export function quoteWord(value: Buffer | string): Buffer {
  const raw = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const out = Buffer.allocUnsafe(raw.length + quotingExtra(raw));
  writeQuoted(raw, out, 0);
  return out;
}

/**
 * One command line, `\n` included: bare words are ASCII tokens the caller vouches for, Buffers are
 * quoted. Every session writes at least one, so the line is measured first and written into one
 * buffer, with no buffer per word.
 */
export function encodeCommand(...words: ReadonlyArray<string | Buffer>): Buffer {
  // The spaces between the words, and the newline.
  let length = Math.max(words.length - 1, 0) + 1;
  for (const w of words) length += typeof w === 'string' ? w.length : w.length + quotingExtra(w);
  const out = Buffer.allocUnsafe(length);
  let o = 0;
  for (let i = 0; i < words.length; i++) {
    if (i > 0) out[o++] = SPACE;
    const w = words[i]!;
    o = typeof w === 'string' ? o + out.write(w, o, 'latin1') : writeQuoted(w, out, o);
  }
  out[o] = LF;
  return out;
}

const SPACE = 0x20;

/** Bytes quoting adds to `raw`: the two quotes and one `\` per `\` or `"`. Throws on LF or NUL. */
function quotingExtra(raw: Buffer): number {
  let extra = 2;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === BACKSLASH || b === DQUOTE) extra++;
    else if (b === LF || b === 0) throw new RangeError('an AGI word cannot hold LF or NUL');
  }
  return extra;
}

/** Writes `raw` quoted into `out` at `o` (room measured by quotingExtra); returns the end. */
function writeQuoted(raw: Buffer, out: Buffer, o: number): number {
  out[o++] = DQUOTE;
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === BACKSLASH || b === DQUOTE) out[o++] = BACKSLASH;
    out[o++] = b;
  }
  out[o++] = DQUOTE;
  return o;
}
