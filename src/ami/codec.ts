// The Asterisk Manager Interface as Asterisk 22 speaks it over TCP (test/fixtures/ami/README.md):
// a pure, incremental decoder of what Asterisk sends — one banner line, then messages of
// `Name: value` lines each ended by an empty line — and an encoder of actions. No sockets here.
//
// What the decoder must survive, from Asterisk's main/manager.c: a message arrives in several
// writes (every astman_append is a write), header names repeat (`Output:`, `Variable:`), values
// hold `: `, and output lines are not limited (a 3000-byte VarSet value on one line). What it must
// not do is grow without bound when the peer lies, so a line, a message's header count and a
// message's bytes each have a cap; passing one is an AmiProtocolError and the connection is done.

import { Rc, ResultError } from '../util/errors.js';
import { ReadBuffer } from '../util/read-buffer.js';

const LF = 0x0a;
const CR = 0x0d;
const COLON = 0x3a;
const SPACE = 0x20;

/** Header pairs in wire order; names as sent (compare them case-insensitively, as manager.c does). */
export type AmiHeaders = ReadonlyArray<readonly [name: string, value: string]>;

export type AmiFrame =
  /** The first line of a session, e.g. `Asterisk Call Manager/11.0.0`, without its line end. */
  | { readonly kind: 'banner'; readonly line: string }
  /** A message whose first line is `Response: …` (Success, Error, Goodbye). */
  | { readonly kind: 'response'; readonly response: string; readonly actionId: string | undefined; readonly headers: AmiHeaders }
  /** A message whose first line is `Event: …`; list items and OriginateResponse included. */
  | { readonly kind: 'event'; readonly event: string; readonly actionId: string | undefined; readonly headers: AmiHeaders }
  /** A message that starts with neither: nothing Asterisk 22 sends, kept for the caller to judge. */
  | { readonly kind: 'other'; readonly headers: AmiHeaders };

/** A failure on the AMI side (Asterisk's manager interface), never the cache's: the code says what, the class where. */
export class AmiError extends ResultError {
  constructor(rc: number, message?: string, options?: { cause?: unknown; serverText?: string }) {
    super(rc, message, options);
    this.name = 'AmiError';
  }
}

export class AmiProtocolError extends AmiError {
  constructor(message: string) {
    super(Rc.PROTOCOL_ERROR, message);
    this.name = 'AmiProtocolError';
  }
}

export interface AmiDecoderOptions {
  /** Longest line accepted, its line end included. Asterisk's output lines are not limited. */
  maxLineBytes?: number;
  /** Most header lines in one message (ListCommands sends one per action, ~60 in a small build). */
  maxHeaders?: number;
  /** Most bytes in one message, line ends included. */
  maxMessageBytes?: number;
  /** Expect a banner line first (true for a client's side of a session). */
  banner?: boolean;
}

export const AMI_DEFAULT_MAX_LINE_BYTES = 64 * 1024;
export const AMI_DEFAULT_MAX_HEADERS = 1024;
export const AMI_DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

export class AmiDecoder {
  readonly #in = new ReadBuffer();
  readonly #maxLine: number;
  readonly #maxHeaders: number;
  readonly #maxMessage: number;
  #wantBanner: boolean;
  #headers: Array<readonly [string, string]> = [];
  #messageBytes = 0;

  constructor(options: AmiDecoderOptions = {}) {
    this.#maxLine = options.maxLineBytes ?? AMI_DEFAULT_MAX_LINE_BYTES;
    this.#maxHeaders = options.maxHeaders ?? AMI_DEFAULT_MAX_HEADERS;
    this.#maxMessage = options.maxMessageBytes ?? AMI_DEFAULT_MAX_MESSAGE_BYTES;
    this.#wantBanner = options.banner ?? true;
  }

  feed(chunk: Buffer): void {
    this.#in.append(chunk);
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws AmiProtocolError. */
  next(): AmiFrame | undefined {
    for (;;) {
      const line = this.#line();
      if (line === undefined) return undefined;
      if (this.#wantBanner) {
        this.#wantBanner = false;
        this.#messageBytes = 0;
        return { kind: 'banner', line };
      }
      if (line.length === 0) {
        // Empty lines between messages carry nothing; manager.c never sends them, but a bare
        // line end costs nothing to skip.
        if (this.#headers.length === 0) {
          this.#messageBytes = 0;
          continue;
        }
        return this.#finish();
      }
      this.#header(line);
    }
  }

  #line(): string | undefined {
    const at = this.#in.indexOf(LF, this.#maxLine);
    if (at === -1) {
      if (this.#in.available >= this.#maxLine) throw new AmiProtocolError(`a line from AMI is longer than ${this.#maxLine} bytes`);
      return undefined;
    }
    const end = at > 0 && this.#in.byteAt(at - 1) === CR ? at - 1 : at;
    const line = this.#in.peek(end).toString('utf8');
    this.#messageBytes += at + 1;
    this.#in.skip(at + 1);
    if (this.#messageBytes > this.#maxMessage) throw new AmiProtocolError(`an AMI message is longer than ${this.#maxMessage} bytes`);
    return line;
  }

  #header(line: string): void {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new AmiProtocolError(`an AMI line is not "Name: value": ${JSON.stringify(line.slice(0, 80))}`);
    if (this.#headers.length >= this.#maxHeaders) throw new AmiProtocolError(`an AMI message has more than ${this.#maxHeaders} headers`);
    // Asterisk writes exactly one space after the colon; skip any, as its own reader does
    // (__astman_get_header in main/manager.c), and keep trailing spaces.
    let from = colon + 1;
    while (line.charCodeAt(from) === SPACE) from++;
    this.#headers.push([line.slice(0, colon), line.slice(from)]);
  }

  #finish(): AmiFrame {
    const headers = this.#headers;
    this.#headers = [];
    this.#messageBytes = 0;
    const [firstName, firstValue] = headers[0]!;
    const first = firstName.toLowerCase();
    if (first === 'response') return { kind: 'response', response: firstValue, actionId: header(headers, 'ActionID'), headers };
    if (first === 'event') return { kind: 'event', event: firstValue, actionId: header(headers, 'ActionID'), headers };
    return { kind: 'other', headers };
  }
}

/** The first value of `name` (case-insensitive, as main/manager.c matches header names), or undefined. */
export function header(headers: AmiHeaders, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [n, v] of headers) if (n.length === want.length && n.toLowerCase() === want) return v;
  return undefined;
}

// ---- encoding ----

/** Asterisk reads at most 1022 bytes + CRLF per line (`inbuf[1025]`, get_input in main/manager.c). */
export const AMI_MAX_INPUT_LINE_BYTES = 1022;
/** Asterisk takes at most 128 lines per message (AST_MAX_MANHEADERS in include/asterisk/manager.h). */
export const AMI_MAX_INPUT_HEADERS = 128;

const NAME = /^[A-Za-z0-9_-]+$/;

export class AmiEncodeError extends AmiError {
  constructor(message: string) {
    super(Rc.INVALID_ARGUMENTS, message);
    this.name = 'AmiEncodeError';
  }
}

/**
 * One action, its empty line included: `Action`, `ActionID`, then `headers` in order. A name must
 * be a plain token, and a value may hold no CR, LF or NUL: a caller's string can never start a
 * header or an action of its own. A line past Asterisk's 1022 bytes or a message past its 128 lines
 * would be cut or refused over there, so both are refused here.
 */
export function encodeAction(action: string, actionId: string, headers: AmiHeaders = []): Buffer {
  const all: AmiHeaders = [['Action', action], ['ActionID', actionId], ...headers];
  if (all.length > AMI_MAX_INPUT_HEADERS) throw new AmiEncodeError(`an AMI action may have at most ${AMI_MAX_INPUT_HEADERS} lines`);
  let text = '';
  for (const [name, value] of all) {
    if (!NAME.test(name)) throw new AmiEncodeError(`not an AMI header name: ${JSON.stringify(name)}`);
    if (/[\r\n\0]/.test(value)) throw new AmiEncodeError(`the value of ${name} holds CR, LF or NUL`);
    if (name.toLowerCase() === 'action' && value.length === 0) throw new AmiEncodeError('an AMI action needs a name');
    const line = `${name}: ${value}`;
    if (Buffer.byteLength(line, 'utf8') > AMI_MAX_INPUT_LINE_BYTES) throw new AmiEncodeError(`the ${name} line is longer than ${AMI_MAX_INPUT_LINE_BYTES} bytes`);
    text += `${line}\r\n`;
  }
  return Buffer.from(`${text}\r\n`, 'utf8');
}
