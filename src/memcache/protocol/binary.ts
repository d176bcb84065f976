// memcached's binary protocol (memcached doc/protocol-binary.xml; libmemcached
// src/libmemcached/response.cc for the status → code mapping). Requests carry an opaque that the
// reply echoes; a multi-get is a run of quiet GETQs closed by a NOOP, a batch of sets a run of
// quiet SETQs closed by a NOOP (only the entries not stored answer). No sockets here.

import type { ByteWriter } from '../../util/byte-writer.js';
import { Rc } from '../../util/errors.js';
import { ReadBuffer } from '../../util/read-buffer.js';
import type { Command, Outcome, StoreMode } from './command.js';
import { ProtocolError } from './protocol-error.js';
import { Fold, type Refusal, type WireCodec, type WireRequest } from './wire-codec.js';

export const Opcode = {
  GET: 0x00,
  SET: 0x01,
  ADD: 0x02,
  REPLACE: 0x03,
  DELETE: 0x04,
  INCREMENT: 0x05,
  DECREMENT: 0x06,
  FLUSH: 0x08,
  GETQ: 0x09,
  NOOP: 0x0a,
  VERSION: 0x0b,
  APPEND: 0x0e,
  PREPEND: 0x0f,
  STAT: 0x10,
  SETQ: 0x11,
  TOUCH: 0x1c,
  GAT: 0x1d,
  GATQ: 0x1e,
  SASL_LIST_MECHS: 0x20,
  SASL_AUTH: 0x21,
  SASL_STEP: 0x22,
} as const;

export const Status = {
  NO_ERROR: 0x0000,
  KEY_NOT_FOUND: 0x0001,
  KEY_EXISTS: 0x0002,
  VALUE_TOO_LARGE: 0x0003,
  INVALID_ARGUMENTS: 0x0004,
  ITEM_NOT_STORED: 0x0005,
  NON_NUMERIC: 0x0006,
  AUTH_ERROR: 0x0020,
  AUTH_CONTINUE: 0x0021,
  UNKNOWN_COMMAND: 0x0081,
  OUT_OF_MEMORY: 0x0082,
  NOT_SUPPORTED: 0x0083,
  INTERNAL_ERROR: 0x0084,
  BUSY: 0x0085,
  TEMPORARY_FAILURE: 0x0086,
} as const;

const REQUEST_MAGIC = 0x80;
const RESPONSE_MAGIC = 0x81;
export const HEADER_BYTES = 24;

const STORE_OPCODE: Record<StoreMode, number> = {
  set: Opcode.SET,
  add: Opcode.ADD,
  replace: Opcode.REPLACE,
  append: Opcode.APPEND,
  prepend: Opcode.PREPEND,
  cas: Opcode.SET,
};

/** "Do not create": the expiration an incr/decr without an initial value carries. */
const NO_CREATE = 0xffffffff;

function header(
  w: ByteWriter,
  opcode: number,
  keyLength: number,
  extrasLength: number,
  bodyLength: number,
  opaque: number,
  cas: bigint,
): void {
  const at = w.reserve(HEADER_BYTES);
  const b = w.staging;
  b[at] = REQUEST_MAGIC;
  b[at + 1] = opcode;
  b[at + 2] = keyLength >>> 8;
  b[at + 3] = keyLength & 0xff;
  b[at + 4] = extrasLength;
  b[at + 5] = 0; // data type
  b[at + 6] = 0; // vbucket
  b[at + 7] = 0;
  b.writeUInt32BE(bodyLength, at + 8);
  b.writeUInt32BE(opaque >>> 0, at + 12);
  if (cas === 0n) {
    b.writeUInt32BE(0, at + 16);
    b.writeUInt32BE(0, at + 20);
  } else b.writeBigUInt64BE(cas, at + 16);
}
/**
 * Writes `cmd` with `opaque`. A get of n keys uses opaques opaque-n .. opaque-1 for its GETQs and
 * `opaque` for the closing NOOP (see opaqueSpan).
 */
export function encodeBinary(cmd: Command, opaque: number, w: ByteWriter): void {
  switch (cmd.op) {
    case 'get': {
      const n = cmd.keys.length;
      // Get-and-touch is GAT/GATQ: a get whose 4-byte extras carry the new expiration.
      const touch = cmd.touchTtl !== undefined;
      const extras = touch ? 4 : 0;
      if (n === 1) {
        const key = cmd.keys[0]!;
        header(w, touch ? Opcode.GAT : Opcode.GET, key.length, extras, extras + key.length, opaque, 0n);
        if (touch) w.uint32(cmd.touchTtl!);
        w.bytes(key);
        return;
      }
      for (let i = 0; i < n; i++) {
        const key = cmd.keys[i]!;
        header(w, touch ? Opcode.GATQ : Opcode.GETQ, key.length, extras, extras + key.length, (opaque - n + i) >>> 0, 0n);
        if (touch) w.uint32(cmd.touchTtl!);
        w.bytes(key);
      }
      header(w, Opcode.NOOP, 0, 0, 0, opaque, 0n);
      return;
    }
    case 'store': {
      const key = cmd.key;
      const concat = cmd.mode === 'append' || cmd.mode === 'prepend';
      const extras = concat ? 0 : 8;
      header(w, STORE_OPCODE[cmd.mode], key.length, extras, extras + key.length + cmd.value.length, opaque, cmd.mode === 'cas' ? (cmd.cas ?? 0n) : 0n);
      if (!concat) {
        w.uint32(cmd.flags);
        w.uint32(cmd.ttl);
      }
      w.bytes(key);
      w.bytes(cmd.value);
      return;
    }
    case 'storeMany': {
      // Opaques as a multi-get's: opaque-n .. opaque-1 for the SETQs, opaque for the NOOP.
      const n = cmd.keys.length;
      for (let i = 0; i < n; i++) {
        const key = cmd.keys[i]!;
        const value = cmd.values[i]!;
        header(w, Opcode.SETQ, key.length, 8, 8 + key.length + value.length, (opaque - n + i) >>> 0, 0n);
        w.uint32(cmd.flags);
        w.uint32(cmd.ttl);
        w.bytes(key);
        w.bytes(value);
      }
      header(w, Opcode.NOOP, 0, 0, 0, opaque, 0n);
      return;
    }
    case 'delete':
      // A non-zero CAS makes the server delete only an unchanged item (KEY_EXISTS otherwise).
      header(w, Opcode.DELETE, cmd.key.length, 0, cmd.key.length, opaque, cmd.cas ?? 0n);
      w.bytes(cmd.key);
      return;
    case 'incr':
    case 'decr':
      header(w, cmd.op === 'incr' ? Opcode.INCREMENT : Opcode.DECREMENT, cmd.key.length, 20, 20 + cmd.key.length, opaque, 0n);
      w.uint64(cmd.delta);
      w.uint64(cmd.initial ?? 0n);
      w.uint32(cmd.initial === undefined ? NO_CREATE : (cmd.ttl ?? 0));
      w.bytes(cmd.key);
      return;
    case 'touch':
      header(w, Opcode.TOUCH, cmd.key.length, 4, 4 + cmd.key.length, opaque, 0n);
      w.uint32(cmd.ttl);
      w.bytes(cmd.key);
      return;
    case 'flush':
      if (cmd.delay > 0) {
        header(w, Opcode.FLUSH, 0, 4, 4, opaque, 0n);
        w.uint32(cmd.delay);
      } else {
        header(w, Opcode.FLUSH, 0, 0, 0, opaque, 0n);
      }
      return;
    case 'version':
      header(w, Opcode.VERSION, 0, 0, 0, opaque, 0n);
      return;
    case 'noop':
      header(w, Opcode.NOOP, 0, 0, 0, opaque, 0n);
      return;
    case 'stats': {
      const group = Buffer.from(cmd.group ?? '', 'latin1');
      header(w, Opcode.STAT, group.length, 0, group.length, opaque, 0n);
      w.bytes(group);
      return;
    }
    case 'auth': {
      const mech = Buffer.from(cmd.mechanism, 'latin1');
      header(w, Opcode.SASL_AUTH, mech.length, 0, mech.length + cmd.data.length, opaque, 0n);
      w.bytes(mech);
      w.bytes(cmd.data);
      return;
    }
  }
}

/** How many opaques a command uses (its own is the last of them). */
export function opaqueSpan(cmd: Command): number {
  if (cmd.op === 'storeMany') return cmd.keys.length + 1;
  return cmd.op === 'get' && cmd.keys.length > 1 ? cmd.keys.length + 1 : 1;
}

export interface BinaryFrame {
  opcode: number;
  status: number;
  opaque: number;
  cas: bigint;
  /** The first 4 bytes of the extras (a get's item flags); 0 when there are fewer. */
  flags: number;
  key: Buffer;
  value: Buffer;
}

export interface BinaryDecoderOptions {
  /** Largest body a response header may announce. */
  maxBodyBytes?: number;
}

export class BinaryDecoder {
  readonly #rb = new ReadBuffer();
  readonly #maxBody: number;

  constructor(options: BinaryDecoderOptions = {}) {
    this.#maxBody = options.maxBodyBytes ?? 128 * 1024 * 1024;
  }

  feed(chunk: Buffer): void {
    this.#rb.append(chunk);
  }

  next(): BinaryFrame | undefined {
    const rb = this.#rb;
    if (rb.available < HEADER_BYTES) return undefined;
    if (rb.byteAt(0) !== RESPONSE_MAGIC) throw new ProtocolError(`bad response magic 0x${rb.byteAt(0).toString(16)}`);
    const keyLength = rb.readUInt16BE(2);
    const extrasLength = rb.readUInt8(4);
    const bodyLength = rb.readUInt32BE(8);
    if (bodyLength > this.#maxBody) throw new ProtocolError(`response body of ${bodyLength} bytes is over the limit`);
    if (keyLength + extrasLength > bodyLength) throw new ProtocolError('response key and extras longer than its body');
    if (rb.available < HEADER_BYTES + bodyLength) return undefined;
    const opcode = rb.byteAt(1);
    const status = rb.readUInt16BE(6);
    const opaque = rb.readUInt32BE(12);
    // CAS uniques are small counters: one BigInt from a number is cheaper than a 64-bit read.
    const casHigh = rb.readUInt32BE(16);
    const cas = casHigh === 0 ? BigInt(rb.readUInt32BE(20)) : rb.readBigUInt64BE(16);
    // Only the flags are ever read from extras (a get's 4 bytes), so no view of them is made:
    // every Buffer made per reply costs more than the fields it holds.
    const flags = extrasLength >= 4 ? rb.readUInt32BE(HEADER_BYTES) : 0;
    const valueAt = HEADER_BYTES + extrasLength + keyLength;
    const valueLength = HEADER_BYTES + bodyLength - valueAt;
    const key = keyLength === 0 ? EMPTY : rb.copyAt(HEADER_BYTES + extrasLength, keyLength);
    const value = valueLength === 0 ? EMPTY : rb.keep(valueAt, valueLength);
    rb.skip(HEADER_BYTES + bodyLength);
    return { opcode, status, opaque, cas, flags, key, value };
  }
}

const EMPTY = Buffer.alloc(0);

/** A big-endian unsigned 64-bit number; one BigInt when it fits 32 bits, as counters mostly do. */
function uint64At(b: Buffer, at: number): bigint {
  const high = b.readUInt32BE(at);
  return high === 0 ? BigInt(b.readUInt32BE(at + 4)) : b.readBigUInt64BE(at);
}

/**
 * The text protocol's code for a binary status, so that one outcome has one code whatever the
 * protocol (ARCHITECTURE.md, "Result codes"): add on an existing key is 14 as in text (libmemcached's binary path says
 * 12), replace of a missing key 14 (binary path: 16), a non-numeric incr 9 (binary path: 7).
 */
export function statusRc(cmd: Command, status: number): number {
  switch (status) {
    case Status.NO_ERROR:
      return Rc.SUCCESS;
    case Status.KEY_NOT_FOUND:
      if ((cmd.op === 'store' && cmd.mode !== 'cas') || cmd.op === 'storeMany') return Rc.NOTSTORED;
      return Rc.NOTFOUND;
    case Status.KEY_EXISTS:
      if (cmd.op === 'store' && cmd.mode === 'add') return Rc.NOTSTORED;
      return Rc.DATA_EXISTS;
    case Status.VALUE_TOO_LARGE:
      return Rc.E2BIG;
    case Status.INVALID_ARGUMENTS:
      return Rc.INVALID_ARGUMENTS;
    case Status.ITEM_NOT_STORED:
      return Rc.NOTSTORED;
    case Status.NON_NUMERIC:
      return Rc.CLIENT_ERROR;
    case Status.AUTH_ERROR:
      return Rc.AUTH_FAILURE;
    case Status.AUTH_CONTINUE:
      return Rc.AUTH_CONTINUE;
    case Status.UNKNOWN_COMMAND:
    case Status.NOT_SUPPORTED:
      return Rc.NOT_SUPPORTED;
    case Status.OUT_OF_MEMORY:
      return Rc.SERVER_MEMORY_ALLOCATION_FAILURE;
    default:
      return Rc.SERVER_ERROR;
  }
}

/**
 * Folds one response into the outcome of `cmd` (whose own opaque is `opaque`). Returns true
 * when the command is complete; throws ProtocolError for a response that cannot be its.
 */
export function acceptBinary(cmd: Command, opaque: number, out: Outcome, frame: BinaryFrame): boolean {
  if (cmd.op === 'get' && cmd.keys.length > 1 && frame.opaque !== opaque) {
    const n = cmd.keys.length;
    const slot = (frame.opaque - (opaque - n)) >>> 0;
    if (slot >= n || (frame.opcode !== Opcode.GETQ && frame.opcode !== Opcode.GATQ)) throw desync(cmd, frame);
    if (frame.status === Status.NO_ERROR) {
      (out.items ??= new Array(n))[slot] = itemOf(frame);
    } else if (frame.status !== Status.KEY_NOT_FOUND) {
      // A key the server could not serve fails the whole get (as in the text protocol), not a miss.
      out.rc = statusRc(cmd, frame.status);
    }
    return false;
  }
  if (cmd.op === 'storeMany') return acceptSetRun(cmd, opaque, out, frame);
  if (frame.opaque !== opaque) throw desync(cmd, frame);
  if (frame.status !== Status.NO_ERROR) {
    // A miss in a get is not a failure of the command: the slot stays empty.
    if (cmd.op === 'get' && frame.status === Status.KEY_NOT_FOUND) return true;
    out.rc = statusRc(cmd, frame.status);
    if (frame.value.length > 0) out.text = frame.value.toString('latin1');
    return true;
  }
  switch (cmd.op) {
    case 'get':
      if (cmd.keys.length === 1) (out.items ??= new Array(1))[0] = itemOf(frame);
      return true;
    case 'store':
      out.number = frame.cas;
      return true;
    case 'incr':
    case 'decr':
      if (frame.value.length !== 8) throw new ProtocolError('counter response is not 8 bytes');
      out.number = uint64At(frame.value, 0);
      return true;
    case 'version':
      out.text = frame.value.toString('latin1');
      return true;
    case 'stats':
      if (frame.key.length === 0) return true;
      (out.stats ??= new Map()).set(frame.key.toString('latin1'), frame.value.toString('latin1'));
      return false;
    default:
      return true;
  }
}

/** A reply to a run of SETQs: a failed entry (by its opaque), or the NOOP that ends the run. */
function acceptSetRun(cmd: Extract<Command, { op: 'storeMany' }>, opaque: number, out: Outcome, frame: BinaryFrame): boolean {
  if (frame.opaque === opaque) {
    if (frame.opcode !== Opcode.NOOP) throw desync(cmd, frame);
    return true;
  }
  const n = cmd.keys.length;
  const slot = (frame.opaque - (opaque - n)) >>> 0;
  if (slot >= n || frame.opcode !== Opcode.SETQ) throw desync(cmd, frame);
  // memcached answers a SETQ only when it fails; a success sent anyway still means stored.
  if (frame.status !== Status.NO_ERROR) (out.rcs ??= new Array(n))[slot] = statusRc(cmd, frame.status);
  return false;
}

function itemOf(frame: BinaryFrame): { value: Buffer; flags: number; cas: bigint } {
  return { value: frame.value, flags: frame.flags, cas: frame.cas };
}

function desync(cmd: Command, frame: BinaryFrame): ProtocolError {
  return new ProtocolError(
    `response opcode 0x${frame.opcode.toString(16)} opaque ${frame.opaque} does not answer ${cmd.op}`,
    Rc.UNKNOWN_READ_FAILURE,
  );
}

/** The binary protocol carries every command (SASL included). */
export function refuseBinary(_cmd: Command): Refusal | null {
  return null;
}

/** The binary protocol behind the wire seam: every request gets the next opaques, replies echo them. */
export class BinaryCodec implements WireCodec<BinaryFrame> {
  readonly #decoder: BinaryDecoder;
  #opaque = 0;

  constructor(options: BinaryDecoderOptions = {}) {
    this.#decoder = new BinaryDecoder(options);
  }

  refuse(cmd: Command): Refusal | null {
    return refuseBinary(cmd);
  }

  encode(req: WireRequest, w: ByteWriter): void {
    this.#opaque = (this.#opaque + opaqueSpan(req.cmd)) >>> 0;
    req.opaque = this.#opaque;
    encodeBinary(req.cmd, req.opaque, w);
  }

  feed(chunk: Buffer): void {
    this.#decoder.feed(chunk);
  }

  next(): BinaryFrame | undefined {
    return this.#decoder.next();
  }

  accept(head: WireRequest, frame: BinaryFrame): Fold {
    return acceptBinary(head.cmd, head.opaque, head.out, frame) ? Fold.DONE : Fold.MORE;
  }
}
