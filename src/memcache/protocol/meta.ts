// memcached's meta protocol (memcached doc/protocol.txt, "Meta Commands"; behaviour checked
// against memcached 1.6.18, proto_text.c process_mget_command / process_mset_command /
// process_marithmetic_command): an encoder that writes mg/ms/md/ma/mn into a ByteWriter, an
// incremental decoder that turns reply bytes into frames, and the rule that folds a command's
// frames into an Outcome with the same rc the text protocol gives (text.ts acceptText).
//
// Every meta request carries `O<n>`, which the reply echoes, so a reply that is not the head's
// is caught instead of being folded into the wrong request. A multi-get is a run of quiet
// (`q`) mg requests closed by `mn`: hits come back as VA with their key's opaque, misses are
// silent, MN ends the run. A batch of sets is the same shape: quiet `ms` requests closed by
// `mn`, where success is silent and only NS/EX/NF (with their opaque) or an error line come
// back. flush_all / version / stats have no meta form and are sent as
// text commands on the same connection; their replies carry no opaque.
//
// No sockets here.

import type { ByteWriter } from '../../util/byte-writer.js';
import { MemcachedError, Rc } from '../../util/errors.js';
import { ReadBuffer } from '../../util/read-buffer.js';
import type { Command, Outcome, StoreMode } from './command.js';
import { ProtocolError } from './protocol-error.js';
import { parseDigits, parseUint64Digits } from './ascii-numbers.js';
import { acceptServerCommand, parseCounter, serverErrorRc, textReplyWord } from './text.js';
import { Fold, type Refusal, type WireCodec, type WireRequest } from './wire-codec.js';

/** `opaque` when the reply carried no `O` token. */
export const NO_OPAQUE = -1;

export type MetaFrame =
  /** `VA <len> <flags>*` and its data block (the caller may keep it: ReadBuffer.keep). */
  | { kind: 'VA'; opaque: number; flags: number; cas: bigint; data: Buffer }
  /** Meta status lines without data; `cas` is the `c` return flag (0n when absent). */
  | { kind: 'HD' | 'NS' | 'EX' | 'NF' | 'EN'; opaque: number; cas: bigint }
  /** The reply to `mn`: the end of a quiet run. */
  | { kind: 'MN' }
  /** Text replies: flush_all, stats, and ERROR for a command the server does not know. */
  | { kind: 'ok' | 'end' | 'error' }
  | { kind: 'version'; text: string }
  | { kind: 'stat'; name: string; value: string }
  | { kind: 'client_error' | 'server_error'; text: string };

const CRLF = '\r\n';

/**
 * memcached checks the key token's length against KEY_MAX_LENGTH (250) *before* it base64-decodes
 * a `b` key (proto_text.c process_mset_command, _meta_flag_preparse), so the limit is on the
 * encoded token: 250 characters, i.e. at most 186 raw bytes. An ms whose key token is too long
 * is answered CLIENT_ERROR without its data block being swallowed (1.6.18: the data line is then
 * read as a command and answered ERROR), which would desync the connection: refuse() stops it.
 */
export const MAX_TOKEN_BYTES = 250;
export const MAX_BASE64_KEY_BYTES = 186;

/**
 * Whether a key must travel base64-encoded (`b` flag). memcached's tokenizer splits on spaces
 * and ends the line at \n; 1.6.18 also cuts a token at NUL (an ms with a NUL in a plain key is
 * refused, its data then read as a command). Bytes >= 0x80 pass through a plain token (1.6.18
 * stores and returns them unchanged), so only the bytes the text protocols refuse go base64.
 */
export function needsBase64(key: Buffer): boolean {
  for (let i = 0; i < key.length; i++) {
    const b = key[i]!;
    if (b <= 0x20 || b === 0x7f) return true;
  }
  return false;
}

/** Writes the key token, and ` b` right after it when it is base64 (mg, md, ma). */
function writeKey(w: ByteWriter, key: Buffer): void {
  if (writeKeyToken(w, key)) w.latin1(' b');
}

/** Writes the key token; true when it is base64 and the request needs the `b` flag. */
function writeKeyToken(w: ByteWriter, key: Buffer): boolean {
  if (needsBase64(key)) {
    w.latin1(key.toString('base64'));
    return true;
  }
  w.bytes(key);
  return false;
}

const MODE: Record<StoreMode, string> = {
  set: ' MS',
  add: ' ME',
  replace: ' MR',
  append: ' MA',
  prepend: ' MP',
  cas: ' MS',
};

/** v f [c] [T<ttl>]: the value, its flags, its CAS when asked for, and get-and-touch's TTL. */
function writeGetFlags(w: ByteWriter, cmd: Extract<Command, { op: 'get' }>): void {
  w.latin1(cmd.withCas ? ' v f c' : ' v f');
  if (cmd.touchTtl !== undefined) {
    w.latin1(' T');
    w.decimal(cmd.touchTtl);
  }
}

/**
 * Writes `cmd` with opaque `opaque`. A get of n != 1 keys uses opaques opaque .. opaque+n-1
 * (mod 2^32), one per key in order, and closes with `mn`, which echoes none (see
 * metaOpaqueSpan). Commands without a meta form (flush_all, version, stats, mn) carry none.
 */
export function encodeMeta(cmd: Command, opaque: number, w: ByteWriter): void {
  switch (cmd.op) {
    case 'get': {
      const n = cmd.keys.length;
      if (n === 1) {
        w.latin1('mg ');
        writeKey(w, cmd.keys[0]!);
        writeGetFlags(w, cmd);
        w.latin1(' O');
        w.decimal(opaque >>> 0);
        w.latin1(CRLF);
        return;
      }
      for (let i = 0; i < n; i++) {
        w.latin1('mg ');
        writeKey(w, cmd.keys[i]!);
        writeGetFlags(w, cmd);
        w.latin1(' q O');
        w.decimal((opaque + i) >>> 0);
        w.latin1(CRLF);
      }
      w.latin1(`mn${CRLF}`);
      return;
    }
    case 'store': {
      w.latin1('ms ');
      // The data length must be the token after the key (proto_text.c process_mset_command),
      // so `b` goes after it; an ms that fails to parse is answered CLIENT_ERROR and its data
      // block is then read as a command (1.6.18), which would desync the connection.
      const b64 = writeKeyToken(w, cmd.key);
      w.byte(SP);
      w.decimal(cmd.value.length);
      if (b64) w.latin1(' b');
      w.latin1(' F');
      w.decimal(cmd.flags >>> 0);
      w.latin1(' T');
      w.decimal(cmd.ttl);
      w.latin1(MODE[cmd.mode]);
      if (cmd.mode === 'cas') w.latin1(` C${cmd.cas ?? 0n}`);
      // No `c`: nothing reads a store's new CAS, and it would lengthen every reply.
      w.latin1(' O');
      w.decimal(opaque >>> 0);
      w.latin1(CRLF);
      w.bytes(cmd.value);
      w.latin1(CRLF);
      return;
    }
    case 'storeMany': {
      // Opaques as a multi-get's: opaque .. opaque+n-1, one per entry, then `mn`. No `c`: the
      // new CAS would cost a reply per entry, and `q` hides HD anyway. Set is ms's default mode.
      const n = cmd.keys.length;
      for (let i = 0; i < n; i++) {
        const value = cmd.values[i]!;
        w.latin1('ms ');
        const b64 = writeKeyToken(w, cmd.keys[i]!);
        w.byte(SP);
        w.decimal(value.length);
        if (b64) w.latin1(' b');
        w.latin1(' F');
        w.decimal(cmd.flags >>> 0);
        w.latin1(' T');
        w.decimal(cmd.ttl);
        w.latin1(' q O');
        w.decimal((opaque + i) >>> 0);
        w.latin1(CRLF);
        w.bytes(value);
        w.latin1(CRLF);
      }
      w.latin1(`mn${CRLF}`);
      return;
    }
    case 'delete':
      w.latin1('md ');
      writeKey(w, cmd.key);
      w.latin1(cmd.cas !== undefined ? ` C${cmd.cas} O${opaque >>> 0}${CRLF}` : ` O${opaque >>> 0}${CRLF}`);
      return;
    case 'incr':
    case 'decr':
      w.latin1('ma ');
      writeKey(w, cmd.key);
      w.latin1(cmd.op === 'incr' ? ' MI D' : ' MD D');
      w.uint64Decimal(cmd.delta);
      // N: create a missing counter with value J and this TTL (1.6.18 returns J itself on create,
      // as the binary protocol's increment with an initial value does).
      if (cmd.initial !== undefined) {
        w.latin1(' N');
        w.decimal(cmd.ttl ?? 0);
        w.latin1(' J');
        w.uint64Decimal(cmd.initial);
      }
      w.latin1(' v O');
      w.decimal(opaque >>> 0);
      w.latin1(CRLF);
      return;
    case 'touch':
      // mg without v: HD when the item exists (its TTL now set), EN when it does not.
      w.latin1('mg ');
      writeKey(w, cmd.key);
      w.latin1(` T${cmd.ttl} O${opaque >>> 0}${CRLF}`);
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
      w.latin1(`mn${CRLF}`);
      return;
    case 'auth':
      // refuseMeta keeps it from being queued; this is not a broken stream, so no ProtocolError.
      throw new MemcachedError(Rc.NOT_SUPPORTED, 'SASL needs the binary protocol');
  }
}

/** How many opaques a command uses, from the one encodeMeta is given. */
export function metaOpaqueSpan(cmd: Command): number {
  return (cmd.op === 'get' || cmd.op === 'storeMany') && cmd.keys.length > 1 ? cmd.keys.length : 1;
}

/**
 * A quiet run closed by mn: a get of any but exactly one key (none is just `mn`), and every
 * storeMany (one entry too: its success is silent all the same).
 */
function isQuietRun(cmd: Command): cmd is Extract<Command, { op: 'get' | 'storeMany' }> {
  return (cmd.op === 'get' && cmd.keys.length !== 1) || cmd.op === 'storeMany';
}

/** Why the meta protocol cannot carry `cmd`, or null. */
export function refuseMeta(cmd: Command): Refusal | null {
  switch (cmd.op) {
    case 'auth':
      return { rc: Rc.NOT_SUPPORTED, message: 'SASL needs the binary protocol' };
    case 'get':
    case 'storeMany':
      for (const key of cmd.keys) {
        const r = refuseKey(key);
        if (r !== null) return r;
      }
      return null;
    case 'store':
    case 'delete':
    case 'incr':
    case 'decr':
    case 'touch':
      return refuseKey(cmd.key);
    default:
      return null;
  }
}

function refuseKey(key: Buffer): Refusal | null {
  if (key.length > MAX_TOKEN_BYTES) return { rc: Rc.BAD_KEY_PROVIDED, message: `key is longer than ${MAX_TOKEN_BYTES} bytes` };
  if (key.length > MAX_BASE64_KEY_BYTES && needsBase64(key)) {
    return {
      rc: Rc.BAD_KEY_PROVIDED,
      message: `a key with whitespace or control bytes travels base64 in the meta protocol, and memcached takes at most ${MAX_BASE64_KEY_BYTES} such bytes`,
    };
  }
  return null;
}

export interface MetaDecoderOptions {
  /** Longest reply line accepted without its newline. */
  maxLineBytes?: number;
  /** Largest value a VA line may announce. */
  maxValueBytes?: number;
}

const MN_FRAME: MetaFrame = { kind: 'MN' };
const OK_FRAME: MetaFrame = { kind: 'ok' };
const END_FRAME: MetaFrame = { kind: 'end' };

/** Two-letter reply codes as (first << 8) | second. */
const code = (s: string): number => (s.charCodeAt(0) << 8) | s.charCodeAt(1);
const VA = code('VA');
const HD = code('HD');
const NS = code('NS');
const EX = code('EX');
const NF = code('NF');
const EN = code('EN');
const MN = code('MN');
const OK = code('OK');

const SP = 0x20;
const FLAG_F = 0x66;
const FLAG_C = 0x63;
const FLAG_O = 0x4f;

export class MetaDecoder {
  readonly #rb = new ReadBuffer();
  readonly #maxLine: number;
  readonly #maxValue: number;
  /** A VA line whose data block has not fully arrived. */
  #value: { opaque: number; flags: number; cas: bigint; bytes: number; lineLength: number } | null = null;
  /** Reused for every reply line's return flags: no object per reply for them. */
  readonly #flags: ReturnFlags = { opaque: NO_OPAQUE, flags: 0, cas: 0n };

  constructor(options: MetaDecoderOptions = {}) {
    this.#maxLine = options.maxLineBytes ?? 16 * 1024;
    this.#maxValue = options.maxValueBytes ?? 128 * 1024 * 1024;
  }

  feed(chunk: Buffer): void {
    this.#rb.append(chunk);
  }

  /** The next complete frame, or undefined when more bytes are needed. Throws ProtocolError. */
  next(): MetaFrame | undefined {
    if (this.#value !== null) return this.#valueData();
    const rb = this.#rb;
    const nl = rb.indexOf(0x0a, this.#maxLine + 1);
    if (nl === -1) {
      if (rb.available > this.#maxLine) throw new ProtocolError(`reply line longer than ${this.#maxLine} bytes`);
      return undefined;
    }
    if (nl === 0 || rb.byteAt(nl - 1) !== 0x0d) throw new ProtocolError('reply line does not end in CRLF');
    const lineLength = nl - 1;
    // Parse in place: the line is bytes [at, stop) of the read buffer, valid until skip/append.
    const buf = rb.buffer;
    const at = rb.offset;
    const stop = at + lineLength;
    if (lineLength >= 2 && (lineLength === 2 || buf[at + 2] === SP)) {
      const c = (buf[at]! << 8) | buf[at + 1]!;
      switch (c) {
        case VA: {
          const lenEnd = tokenEnd(buf, at + 3, stop);
          const bytes = parseDigits(buf, at + 3, lenEnd, 10);
          if (bytes < 0) throw new ProtocolError('malformed length in VA line');
          if (bytes > this.#maxValue) throw new ProtocolError(`VA of ${bytes} bytes is over the ${this.#maxValue}-byte limit`);
          const f = parseReturnFlags(buf, lenEnd, stop, this.#flags);
          this.#value = { opaque: f.opaque, flags: f.flags, cas: f.cas, bytes, lineLength };
          return this.#valueData();
        }
        case HD:
        case NS:
        case EX:
        case NF:
        case EN: {
          const f = parseReturnFlags(buf, at + 2, stop, this.#flags);
          rb.skip(nl + 1);
          return { kind: STATUS[c]!, opaque: f.opaque, cas: f.cas };
        }
        case MN:
          if (lineLength !== 2) throw new ProtocolError('MN with trailing bytes');
          rb.skip(nl + 1);
          return MN_FRAME;
        case OK:
          if (lineLength !== 2) break;
          rb.skip(nl + 1);
          return OK_FRAME;
        default:
          break;
      }
    }
    return this.#textLine(lineLength, nl);
  }

  /** The text replies a meta connection can see (flush_all, version, stats, errors). */
  #textLine(lineLength: number, nl: number): MetaFrame {
    const rb = this.#rb;
    const line = rb.latin1(lineLength);
    rb.skip(nl + 1);
    return line === 'END' ? END_FRAME : textReplyWord(line);
  }

  #valueData(): MetaFrame | undefined {
    const v = this.#value!;
    const rb = this.#rb;
    const dataStart = v.lineLength + 2;
    const total = dataStart + v.bytes + 2;
    if (rb.available < total) return undefined;
    if (rb.byteAt(dataStart + v.bytes) !== 0x0d || rb.byteAt(dataStart + v.bytes + 1) !== 0x0a) {
      throw new ProtocolError('value data is not followed by CRLF');
    }
    const data = rb.keep(dataStart, v.bytes);
    this.#value = null;
    rb.skip(total);
    return { kind: 'VA', opaque: v.opaque, flags: v.flags, cas: v.cas, data };
  }
}

const STATUS: Record<number, 'HD' | 'NS' | 'EX' | 'NF' | 'EN'> = { [HD]: 'HD', [NS]: 'NS', [EX]: 'EX', [NF]: 'NF', [EN]: 'EN' };

function tokenEnd(buf: Buffer, from: number, stop: number): number {
  let i = from;
  while (i < stop && buf[i] !== SP) i++;
  return i;
}

/** Up to 20 digits, 0 .. 2^64-1. */
function parseCas(buf: Buffer, start: number, end: number): bigint {
  const cas = parseUint64Digits(buf, start, end);
  if (cas >= 0n) return cas;
  throw new ProtocolError(end - start === 20 && parseDigits(buf, start, start + 10, 10) >= 0 && parseDigits(buf, start + 10, end, 10) >= 0 ? 'c (CAS) return flag above 2^64-1' : 'malformed c (CAS) return flag');
}

interface ReturnFlags {
  opaque: number;
  flags: number;
  cas: bigint;
}

/**
 * The return flags after a reply code, ` <flag><token>` each, told apart by their first byte.
 * We use f (client flags), c (CAS) and O (our opaque); t (TTL, -1 for none), s (size), k (key:
 * raw bytes, or base64 followed by a bare `b`) and flags a newer memcached may add are skipped,
 * so an unknown flag never breaks the stream.
 */
function parseReturnFlags(buf: Buffer, from: number, stop: number, out: ReturnFlags): ReturnFlags {
  out.opaque = NO_OPAQUE;
  out.flags = 0;
  out.cas = 0n;
  let i = from;
  while (i < stop) {
    if (buf[i] === SP) {
      i++;
      continue;
    }
    const end = tokenEnd(buf, i + 1, stop);
    switch (buf[i]) {
      case FLAG_F: {
        const f = parseDigits(buf, i + 1, end, 10);
        if (f < 0 || f > 0xffffffff) throw new ProtocolError('malformed f (flags) return flag');
        out.flags = f;
        break;
      }
      case FLAG_C:
        out.cas = parseCas(buf, i + 1, end);
        break;
      case FLAG_O: {
        // We only ever send a uint32 in decimal, so anything else is not our reply.
        const o = parseDigits(buf, i + 1, end, 10);
        if (o < 0 || o > 0xffffffff) throw new ProtocolError('malformed O (opaque) return flag');
        out.opaque = o;
        break;
      }
      default:
        break;
    }
    i = end;
  }
  return out;
}

/**
 * Folds one reply frame into the outcome of `cmd`, whose opaque (the first, for a multi-get) is
 * `opaque`. Returns true when the command is complete; throws ProtocolError (rc
 * UNKNOWN_READ_FAILURE) when the frame cannot belong to it.
 */
export function acceptMeta(cmd: Command, opaque: number, out: Outcome, frame: MetaFrame): boolean {
  const multi = isQuietRun(cmd);
  switch (frame.kind) {
    case 'error':
      out.rc = Rc.ERROR;
      // In a quiet run the server goes on with the other keys and still answers the closing mn:
      // the whole get fails with this code (as a text multi-get does), but ends only at MN.
      return !multi;
    case 'client_error':
    case 'server_error':
      out.rc = frame.kind === 'client_error' ? Rc.CLIENT_ERROR : serverErrorRc(frame.text);
      out.text = frame.text;
      return !multi;
    case 'VA':
    case 'HD':
    case 'NS':
    case 'EX':
    case 'NF':
    case 'EN':
      if (multi) return cmd.op === 'get' ? acceptMultiGet(cmd, opaque, out, frame) : acceptStoreRun(cmd, opaque, out, frame);
      if (frame.opaque !== (opaque >>> 0)) throw desync(cmd, frame);
      break;
    default:
      break;
  }
  switch (cmd.op) {
    case 'get':
      if (multi) {
        if (frame.kind === 'MN') return true;
        break;
      }
      if (frame.kind === 'VA') {
        (out.items ??= new Array(1))[0] = { value: frame.data, flags: frame.flags, cas: frame.cas };
        return true;
      }
      if (frame.kind === 'EN') return true; // a miss: the slot stays empty
      break;
    case 'storeMany':
      if (frame.kind === 'MN') {
        if (out.rc !== Rc.SUCCESS) blameSilent(cmd, out);
        return true;
      }
      break;
    case 'store':
      if (frame.kind === 'HD') {
        // A new CAS only when the server sent one (`c`, which encodeMeta does not ask for).
        if (frame.cas !== 0n) out.number = frame.cas;
        return true;
      }
      if (frame.kind === 'NS') return fail(out, Rc.NOTSTORED);
      if (frame.kind === 'EX') return fail(out, Rc.DATA_EXISTS);
      // 1.6.18 says NS for append/prepend/replace of a missing key, NF only for a cas of one;
      // text says NOT_STORED and NOT_FOUND for those, so NF maps like text for either.
      if (frame.kind === 'NF') return fail(out, cmd.mode === 'cas' ? Rc.NOTFOUND : Rc.NOTSTORED);
      break;
    case 'delete':
      if (frame.kind === 'HD') return true;
      if (frame.kind === 'NF') return fail(out, Rc.NOTFOUND);
      if (frame.kind === 'EX') return fail(out, Rc.DATA_EXISTS);
      break;
    case 'incr':
    case 'decr':
      if (frame.kind === 'VA') {
        out.number = parseCounter(frame.data, 0, frame.data.length);
        return true;
      }
      if (frame.kind === 'NF') return fail(out, Rc.NOTFOUND);
      break;
    case 'touch':
      if (frame.kind === 'HD') return true;
      if (frame.kind === 'EN') return fail(out, Rc.NOTFOUND);
      break;
    case 'noop':
      if (frame.kind === 'MN') return true;
      break;
    default: {
      const done = acceptServerCommand(cmd, out, frame);
      if (done !== undefined) return done;
      break;
    }
  }
  throw desync(cmd, frame);
}

/** A reply inside a quiet run: its opaque says which key it answers. */
function acceptMultiGet(cmd: Extract<Command, { op: 'get' }>, opaque: number, out: Outcome, frame: MetaFrame & { opaque: number }): false {
  const n = cmd.keys.length;
  const slot = (frame.opaque - opaque) >>> 0;
  if (frame.opaque === NO_OPAQUE || slot >= n) throw desync(cmd, frame);
  if (frame.kind === 'VA') {
    (out.items ??= new Array(n))[slot] = { value: frame.data, flags: frame.flags, cas: frame.cas };
    return false;
  }
  // q hides EN; a server that sends it anyway still means a miss.
  if (frame.kind === 'EN') return false;
  throw desync(cmd, frame);
}

/** A reply inside a quiet run of sets: only the entries not stored answer, with their opaque. */
function acceptStoreRun(cmd: Extract<Command, { op: 'storeMany' }>, opaque: number, out: Outcome, frame: MetaFrame & { opaque: number }): false {
  const n = cmd.keys.length;
  const slot = (frame.opaque - opaque) >>> 0;
  if (frame.opaque === NO_OPAQUE || slot >= n) throw desync(cmd, frame);
  switch (frame.kind) {
    case 'HD':
      // q hides HD; a server that sends it anyway still means stored.
      return false;
    case 'NS':
      (out.rcs ??= new Array(n))[slot] = Rc.NOTSTORED;
      return false;
    case 'EX':
      (out.rcs ??= new Array(n))[slot] = Rc.DATA_EXISTS;
      return false;
    case 'NF':
      (out.rcs ??= new Array(n))[slot] = Rc.NOTSTORED;
      return false;
    default:
      throw desync(cmd, frame);
  }
}

/**
 * At the end of a quiet run of sets that met an error line without an opaque (1.6.18 answers an
 * ms over the item size limit with `SERVER_ERROR object too large for cache`, swallows its data
 * and goes on with the run): any silent entry may be the one refused, so none of them is
 * reported stored. Each gets the error's code and is listed in `unattributed`.
 */
function blameSilent(cmd: Extract<Command, { op: 'storeMany' }>, out: Outcome): void {
  const n = cmd.keys.length;
  const rcs = (out.rcs ??= new Array(n));
  const unattributed: number[] = [];
  for (let i = 0; i < n; i++) {
    if (rcs[i] !== undefined) continue;
    rcs[i] = out.rc;
    unattributed.push(i);
  }
  out.unattributed = unattributed;
}

/** ma's VA data: decimal digits (memcached may pad a shrunken counter with spaces). */

function fail(out: Outcome, rc: number): true {
  out.rc = rc;
  return true;
}

function desync(cmd: Command, frame: MetaFrame): ProtocolError {
  const o = 'opaque' in frame && frame.opaque !== NO_OPAQUE ? ` O${frame.opaque}` : '';
  return new ProtocolError(`reply ${frame.kind}${o} does not answer ${cmd.op}`, Rc.UNKNOWN_READ_FAILURE);
}

export interface MetaCodecOptions extends MetaDecoderOptions {
  /** The first opaque this codec hands out (tests; wraps at 2^32). */
  firstOpaque?: number;
}

/** The meta protocol behind the WireCodec seam (wire-codec.ts). */
export class MetaCodec implements WireCodec<MetaFrame> {
  readonly #decoder: MetaDecoder;
  #opaque: number;

  constructor(options: MetaCodecOptions = {}) {
    this.#decoder = new MetaDecoder(options);
    this.#opaque = (options.firstOpaque ?? 0) >>> 0;
  }

  refuse(cmd: Command): Refusal | null {
    return refuseMeta(cmd);
  }

  encode(req: WireRequest, w: ByteWriter): void {
    const opaque = this.#opaque;
    this.#opaque = (opaque + metaOpaqueSpan(req.cmd)) >>> 0;
    req.opaque = opaque;
    encodeMeta(req.cmd, opaque, w);
  }

  feed(chunk: Buffer): void {
    this.#decoder.feed(chunk);
  }

  next(): MetaFrame | undefined {
    return this.#decoder.next();
  }

  accept(head: WireRequest, frame: MetaFrame): Fold {
    return acceptMeta(head.cmd, head.opaque, head.out, frame) ? Fold.DONE : Fold.MORE;
  }
}
