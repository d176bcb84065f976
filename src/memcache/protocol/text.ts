// memcached's classic text protocol (memcached doc/protocol.txt): an encoder that writes
// commands into a ByteWriter, an incremental decoder that turns bytes into reply frames, and
// the rule that folds a command's frames into an Outcome. No sockets here.

import type { ByteWriter } from '../../util/byte-writer.js';
import { Rc } from '../../util/errors.js';
import { ReadBuffer } from '../../util/read-buffer.js';
import type { Command, Outcome } from './command.js';
import { parseDigits, parseUint64Digits } from './ascii-numbers.js';
import { ProtocolError } from './protocol-error.js';
import { Fold, type Refusal, type WireCodec, type WireRequest } from './wire-codec.js';

export { ProtocolError } from './protocol-error.js';

export type TextFrame =
  /** `key` is a view into the read buffer, valid only until the next feed(). */
  | { kind: 'value'; key: Buffer; flags: number; data: Buffer; cas: bigint }
  | { kind: 'end' | 'stored' | 'not_stored' | 'exists' | 'not_found' | 'deleted' | 'touched' | 'ok' | 'error' }
  | { kind: 'number'; value: bigint }
  | { kind: 'version'; text: string }
  | { kind: 'stat'; name: string; value: string }
  | { kind: 'client_error' | 'server_error'; text: string };

const CRLF = '\r\n';

export function encodeText(cmd: Command, w: ByteWriter): void {
  switch (cmd.op) {
    case 'get': {
      // gat/gats (memcached 1.5.3+): the same VALUE replies, and each found item gets the TTL.
      if (cmd.touchTtl !== undefined) w.latin1(cmd.withCas ? `gats ${cmd.touchTtl}` : `gat ${cmd.touchTtl}`);
      else w.latin1(cmd.withCas ? 'gets' : 'get');
      for (const key of cmd.keys) {
        w.byte(0x20);
        w.bytes(key);
      }
      w.latin1(CRLF);
      return;
    }
    case 'store': {
      w.latin1(cmd.mode);
      w.byte(0x20);
      w.bytes(cmd.key);
      w.latin1(` ${cmd.flags >>> 0} ${cmd.ttl} ${cmd.value.length}`);
      if (cmd.mode === 'cas') w.latin1(` ${cmd.cas ?? 0n}`);
      w.latin1(CRLF);
      w.bytes(cmd.value);
      w.latin1(CRLF);
      return;
    }
    case 'delete':
      if (cmd.cas !== undefined) {
        // The text protocol's delete takes no CAS. A cas with a negative exptime stores an
        // empty item that is already expired (proto_text.c process_update_command: exptime < 0
        // becomes REALTIME_MAXDELTA + 1, a moment in 1970), so it is gone for every reader, and
        // only if the CAS still matches: STORED / EXISTS / NOT_FOUND.
        w.latin1('cas ');
        w.bytes(cmd.key);
        w.latin1(` 0 -1 0 ${cmd.cas}${CRLF}${CRLF}`);
        return;
      }
      w.latin1('delete ');
      w.bytes(cmd.key);
      w.latin1(CRLF);
      return;
    case 'incr':
    case 'decr':
      // Refused by refuseText before a request is queued: the text protocol cannot create a
      // counter (the cluster emulates it with add).
      if (cmd.initial !== undefined) throw new ProtocolError('an initial counter value cannot be written in the text protocol', Rc.INVALID_ARGUMENTS);
      w.latin1(cmd.op);
      w.byte(0x20);
      w.bytes(cmd.key);
      w.latin1(` ${cmd.delta}${CRLF}`);
      return;
    case 'touch':
      w.latin1('touch ');
      w.bytes(cmd.key);
      w.latin1(` ${cmd.ttl}${CRLF}`);
      return;
    case 'flush':
      w.latin1(cmd.delay > 0 ? `flush_all ${cmd.delay}${CRLF}` : `flush_all${CRLF}`);
      return;
    case 'version':
      w.latin1(`version${CRLF}`);
      return;
    case 'stats':
      w.latin1(cmd.group ? `stats ${cmd.group}${CRLF}` : `stats${CRLF}`);
      return;
    case 'noop':
    case 'auth':
    case 'storeMany':
      // Refused by refuseText before a request is queued.
      throw new ProtocolError(`${cmd.op} cannot be written in the text protocol`, Rc.NOT_SUPPORTED);
  }
}

/** Commands the text protocol cannot carry (the cluster emulates or refuses them first). */
export function refuseText(cmd: Command): Refusal | null {
  if ((cmd.op === 'incr' || cmd.op === 'decr') && cmd.initial !== undefined) {
    return { rc: Rc.INVALID_ARGUMENTS, message: 'an initial counter value needs the binary or meta protocol' };
  }
  if (cmd.op === 'noop' || cmd.op === 'auth') return { rc: Rc.NOT_SUPPORTED, message: `${cmd.op} needs the binary protocol` };
  // noreply would hide the failures too: the cluster sends a batch of sets one by one instead.
  if (cmd.op === 'storeMany') return { rc: Rc.NOT_SUPPORTED, message: 'a quiet run of sets needs the binary or meta protocol' };
  return null;
}

export interface TextDecoderOptions {
  /** Longest reply line accepted without its newline. */
  maxLineBytes?: number;
  /** Largest value a VALUE line may announce. */
  maxValueBytes?: number;
}

const SIMPLE: Record<string, TextFrame> = {
  END: { kind: 'end' },
  STORED: { kind: 'stored' },
  NOT_STORED: { kind: 'not_stored' },
  EXISTS: { kind: 'exists' },
  NOT_FOUND: { kind: 'not_found' },
  DELETED: { kind: 'deleted' },
  TOUCHED: { kind: 'touched' },
  OK: { kind: 'ok' },
  ERROR: { kind: 'error' },
};

export class TextDecoder {
  readonly #rb = new ReadBuffer();
  readonly #maxLine: number;
  readonly #maxValue: number;
  /** A VALUE line whose data block has not fully arrived. */
  #value: { keyStart: number; keyLength: number; flags: number; bytes: number; cas: bigint; lineLength: number } | null =
    null;

  constructor(options: TextDecoderOptions = {}) {
    this.#maxLine = options.maxLineBytes ?? 16 * 1024;
    this.#maxValue = options.maxValueBytes ?? 128 * 1024 * 1024;
  }

  feed(chunk: Buffer): void {
    this.#rb.append(chunk);
  }

  /** The next complete frame, or undefined when more bytes are needed. Throws ProtocolError. */
  next(): TextFrame | undefined {
    const rb = this.#rb;
    if (this.#value !== null) return this.#valueData();
    const nl = rb.indexOf(0x0a, this.#maxLine + 1);
    if (nl === -1) {
      if (rb.available > this.#maxLine) throw new ProtocolError(`reply line longer than ${this.#maxLine} bytes`);
      return undefined;
    }
    if (nl === 0 || rb.byteAt(nl - 1) !== 0x0d) throw new ProtocolError('reply line does not end in CRLF');
    const lineLength = nl - 1;
    const first = rb.byteAt(0);
    if (first >= 0x30 && first <= 0x39) {
      const frame: TextFrame = { kind: 'number', value: parseCounter(rb.buffer, rb.offset, rb.offset + lineLength) };
      rb.skip(nl + 1);
      return frame;
    }
    // The two lines of every get reply are told by their bytes, with no string or view made.
    const buf = rb.buffer;
    const at = rb.offset;
    if (first === 0x56 /* V */ && lineLength > 6 && startsWith(buf, at, VALUE_WORD)) {
      this.#value = parseValueHeader(buf, at, at + lineLength, this.#maxValue);
      return this.#valueData();
    }
    if (lineLength === 3 && startsWith(buf, at, END_WORD)) {
      rb.skip(nl + 1);
      return END_FRAME;
    }
    const line = rb.latin1(lineLength);
    rb.skip(nl + 1);
    const simple = SIMPLE[line];
    if (simple !== undefined) return simple;
    return textReplyWord(line);
  }

  #valueData(): TextFrame | undefined {
    const v = this.#value!;
    const rb = this.#rb;
    const total = v.lineLength + 2 + v.bytes + 2;
    if (rb.available < total) return undefined;
    const dataStart = v.lineLength + 2;
    if (rb.byteAt(dataStart + v.bytes) !== 0x0d || rb.byteAt(dataStart + v.bytes + 1) !== 0x0a) {
      throw new ProtocolError('value data is not followed by CRLF');
    }
    const key = rb.peek(v.keyStart + v.keyLength).subarray(v.keyStart);
    const data = rb.keep(dataStart, v.bytes);
    this.#value = null;
    rb.skip(total);
    return { kind: 'value', key, flags: v.flags, data, cas: v.cas };
  }
}

/** The reply lines textReplyWord frames: the same shapes in TextFrame and in meta's frames. */
export type TextWordFrame =
  | { kind: 'error' }
  | { kind: 'version'; text: string }
  | { kind: 'stat'; name: string; value: string }
  | { kind: 'client_error' | 'server_error'; text: string };

const ERROR_WORD: TextWordFrame = { kind: 'error' };

/**
 * A reply line that starts with a word and carries text: VERSION, STAT, ERROR, CLIENT_ERROR,
 * SERVER_ERROR, as the text protocol and a meta connection (for flush_all, version, stats and
 * errors) both see them. Anything else cannot be framed: ProtocolError.
 */
export function textReplyWord(line: string): TextWordFrame {
  const space = line.indexOf(' ');
  const word = space === -1 ? line : line.slice(0, space);
  const rest = space === -1 ? '' : line.slice(space + 1);
  switch (word) {
    case 'VERSION':
      return { kind: 'version', text: rest };
    case 'STAT': {
      const sp = rest.indexOf(' ');
      return sp === -1 ? { kind: 'stat', name: rest, value: '' } : { kind: 'stat', name: rest.slice(0, sp), value: rest.slice(sp + 1) };
    }
    case 'ERROR':
      return ERROR_WORD;
    case 'CLIENT_ERROR':
      return { kind: 'client_error', text: rest };
    case 'SERVER_ERROR':
      return { kind: 'server_error', text: rest };
    default:
      throw new ProtocolError(`unexpected reply line ${JSON.stringify(line.slice(0, 80))}`);
  }
}

/**
 * An incr/decr reply line in [start, end) of `buf`; memcached may pad a shrunken counter with
 * spaces, which are not ours.
 */
export function parseCounter(buf: Buffer, start: number, end: number): bigint {
  let digitsEnd = end;
  while (digitsEnd > start && buf[digitsEnd - 1] === 0x20) digitsEnd--;
  const n = parseUint64Digits(buf, start, digitsEnd);
  if (n >= 0n) return n;
  const line = buf.toString('latin1', start, Math.min(end, start + 40));
  throw new ProtocolError(/^[0-9]{20}$/.test(line.trimEnd()) ? 'counter reply above 2^64-1' : `bad counter reply ${JSON.stringify(line)}`);
}

const VALUE_WORD = Buffer.from('VALUE ', 'latin1');
const END_WORD = Buffer.from('END', 'latin1');
const END_FRAME: TextFrame = SIMPLE['END']!;

function startsWith(buf: Buffer, at: number, word: Buffer): boolean {
  for (let i = 0; i < word.length; i++) if (buf[at + i] !== word[i]) return false;
  return true;
}

/** The next space in [from, end) of `buf`, or -1. */
function spaceAt(buf: Buffer, from: number, end: number): number {
  for (let i = from; i < end; i++) if (buf[i] === 0x20) return i;
  return -1;
}

/**
 * `VALUE <key> <flags> <bytes> [<cas unique>]`, the line [start, end) of `buf`; the key's place
 * and the line's length come back relative to `start`.
 */
function parseValueHeader(buf: Buffer, start: number, end: number, maxValue: number) {
  const keyStart = start + 6;
  const keyEnd = spaceAt(buf, keyStart, end);
  if (keyEnd <= keyStart) throw new ProtocolError('malformed VALUE line');
  const flagsEnd = spaceAt(buf, keyEnd + 1, end);
  if (flagsEnd === -1) throw new ProtocolError('malformed VALUE line');
  let bytesEnd = spaceAt(buf, flagsEnd + 1, end);
  let cas = 0n;
  if (bytesEnd === -1) {
    bytesEnd = end;
  } else {
    cas = parseUint64Digits(buf, bytesEnd + 1, end);
    if (cas < 0n) {
      const casText = buf.toString('latin1', bytesEnd + 1, end);
      throw new ProtocolError(/^[0-9]{20}$/.test(casText) ? 'CAS in VALUE line above 2^64-1' : 'malformed CAS in VALUE line');
    }
  }
  const flags = parseDigits(buf, keyEnd + 1, flagsEnd, 10);
  const bytes = parseDigits(buf, flagsEnd + 1, bytesEnd, 10);
  if (flags < 0 || flags > 0xffffffff) throw new ProtocolError('malformed flags in VALUE line');
  if (bytes < 0) throw new ProtocolError('malformed length in VALUE line');
  if (bytes > maxValue) throw new ProtocolError(`VALUE of ${bytes} bytes is over the ${maxValue}-byte limit`);
  return { keyStart: 6, keyLength: keyEnd - keyStart, flags, bytes, cas, lineLength: end - start };
}

/** SERVER_ERROR texts that libmemcached turns into their own codes. */
export function serverErrorRc(text: string): number {
  if (text.startsWith('object too large')) return Rc.E2BIG;
  if (text.startsWith('out of memory')) return Rc.SERVER_MEMORY_ALLOCATION_FAILURE;
  return Rc.SERVER_ERROR;
}

/**
 * Folds one reply frame into the outcome of the command at the head of the queue. Returns true
 * when the command is complete; throws ProtocolError when the frame cannot belong to it (the
 * stream is out of sync).
 */
export function acceptText(cmd: Command, out: Outcome, frame: TextFrame, search: KeySearch): boolean {
  switch (frame.kind) {
    case 'error':
      out.rc = Rc.ERROR;
      return true;
    case 'client_error':
      out.rc = Rc.CLIENT_ERROR;
      out.text = frame.text;
      return true;
    case 'server_error':
      out.rc = serverErrorRc(frame.text);
      out.text = frame.text;
      return true;
    default:
      break;
  }
  switch (cmd.op) {
    case 'get': {
      if (frame.kind === 'end') return true;
      if (frame.kind !== 'value') break;
      const slot = findKeySlot(cmd.keys, search, frame.key);
      if (slot === -1) throw new ProtocolError('VALUE for a key that was not asked for', Rc.UNKNOWN_READ_FAILURE);
      (out.items ??= new Array(cmd.keys.length))[slot] = { value: frame.data, flags: frame.flags, cas: frame.cas };
      return false;
    }
    case 'store':
      if (frame.kind === 'stored') return true;
      if (frame.kind === 'not_stored') return fail(out, Rc.NOTSTORED);
      if (frame.kind === 'exists') return fail(out, Rc.DATA_EXISTS);
      if (frame.kind === 'not_found') return fail(out, Rc.NOTFOUND);
      break;
    case 'delete':
      if (frame.kind === 'deleted' && cmd.cas === undefined) return true;
      if (frame.kind === 'stored' && cmd.cas !== undefined) return true;
      if (frame.kind === 'exists' && cmd.cas !== undefined) return fail(out, Rc.DATA_EXISTS);
      if (frame.kind === 'not_found') return fail(out, Rc.NOTFOUND);
      break;
    case 'incr':
    case 'decr':
      if (frame.kind === 'number') {
        out.number = frame.value;
        return true;
      }
      if (frame.kind === 'not_found') return fail(out, Rc.NOTFOUND);
      break;
    case 'touch':
      if (frame.kind === 'touched') return true;
      if (frame.kind === 'not_found') return fail(out, Rc.NOTFOUND);
      break;
    default: {
      const done = acceptServerCommand(cmd, out, frame);
      if (done !== undefined) return done;
      break;
    }
  }
  throw new ProtocolError(`reply ${frame.kind} does not answer ${cmd.op}`, Rc.UNKNOWN_READ_FAILURE);
}

/** The replies of the commands every text-based protocol sends as text (meta too). */
export type ServerCommandFrame =
  | { kind: 'ok' | 'end' }
  | { kind: 'version'; text: string }
  | { kind: 'stat'; name: string; value: string };

/**
 * flush_all, version and stats, whose replies are the same text lines in the text and meta
 * protocols: true/false as acceptText, undefined when `frame` cannot answer `cmd`.
 */
export function acceptServerCommand(cmd: Command, out: Outcome, frame: { kind: string }): boolean | undefined {
  const f = frame as ServerCommandFrame;
  switch (cmd.op) {
    case 'flush':
      return f.kind === 'ok' ? true : undefined;
    case 'version':
      if (f.kind !== 'version') return undefined;
      out.text = f.text;
      return true;
    case 'stats':
      if (f.kind === 'end') return true;
      if (f.kind !== 'stat') return undefined;
      (out.stats ??= new Map()).set(f.name, f.value);
      return false;
    default:
      return undefined;
  }
}

function fail(out: Outcome, rc: number): true {
  out.rc = rc;
  return true;
}

/** Where the search for a multi-get's next VALUE key starts: one per request being answered. */
export interface KeySearch {
  from: number;
}

/** memcached answers a multi-get in request order, skipping misses: scan forward from the last hit. */
function findKeySlot(keys: readonly Buffer[], search: KeySearch, key: Buffer): number {
  for (let i = search.from; i < keys.length; i++) {
    if (keys[i]!.equals(key)) {
      search.from = i + 1;
      return i;
    }
  }
  return -1;
}

/** The text protocol behind the wire seam: replies are matched to requests by order alone. */
export class TextCodec implements WireCodec<TextFrame> {
  readonly #decoder: TextDecoder;
  /** The multi-get search of the request at the head of the queue; reset when it completes. */
  readonly #search: KeySearch = { from: 0 };

  constructor(options: TextDecoderOptions = {}) {
    this.#decoder = new TextDecoder(options);
  }

  refuse(cmd: Command): Refusal | null {
    return refuseText(cmd);
  }

  encode(req: WireRequest, w: ByteWriter): void {
    encodeText(req.cmd, w);
  }

  feed(chunk: Buffer): void {
    this.#decoder.feed(chunk);
  }

  next(): TextFrame | undefined {
    return this.#decoder.next();
  }

  accept(head: WireRequest, frame: TextFrame): Fold {
    if (!acceptText(head.cmd, head.out, frame, this.#search)) return Fold.MORE;
    this.#search.from = 0;
    return Fold.DONE;
  }
}
