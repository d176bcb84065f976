// Argument rules shared by every command (README.md, "The dialplan"): arguments arrive as agi_arg_1..N; a value is
// everything from its position on, rejoined with ',' (Asterisk split it on commas); nothing is
// trimmed; keys are checked here so a caller-supplied key never reaches the cache when it could
// not be a single memcached word.

import { Rc } from '../util/errors.js';
import { hasForbiddenKeyByte, MAX_KEY_BYTES } from '../util/keys.js';
import { MAX_EXPTIME, UINT64_MAX } from '../util/request-rules.js';
import type { Limits, Refusal } from './invocation.js';


const COMMA = Buffer.from(',');

export function refusal(rc: number, message: string): Refusal {
  return { rc, message };
}

/** The key at `index`, or why it is refused: 127 missing, 126 too long, 33 whitespace/control. */
export function keyArgument(args: readonly Buffer[], index: number, limits: Limits): Buffer | Refusal {
  const key = args[index];
  if (key === undefined || key.length === 0) return refusal(Rc.ARGUMENT_NEEDED, 'a key is needed');
  if (key.length > limits.maxKeyLength) return refusal(Rc.KEY_TOO_LONG, `the key is ${key.length} bytes, longer than max_key_length=${limits.maxKeyLength}`);
  if (key.length + limits.keyPrefixBytes > MAX_KEY_BYTES) return refusal(Rc.KEY_TOO_LONG, `keyprefix + key is longer than memcached's ${MAX_KEY_BYTES} bytes`);
  if (hasForbiddenKeyByte(key)) return refusal(Rc.BAD_KEY_PROVIDED, 'the key holds whitespace or a control character');
  return key;
}

/** Arguments index.. joined with ',' (one value the dialplan split); 127 when absent, 125 too long, 122 CR/LF/NUL. */
export function valueArgument(args: readonly Buffer[], index: number, limits: Limits): Buffer | Refusal {
  if (args.length <= index) return refusal(Rc.ARGUMENT_NEEDED, 'a value is needed');
  const parts: Buffer[] = [];
  for (let i = index; i < args.length; i++) {
    if (i > index) parts.push(COMMA);
    parts.push(args[i]!);
  }
  const value = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  if (value.length > limits.maxValueLength) return refusal(Rc.VALUE_TOO_LONG, `the value is ${value.length} bytes, longer than max_value_length=${limits.maxValueLength}`);
  if (!canTravel(value)) return refusal(Rc.BAD_VALUE, 'the value holds CR, LF or NUL, which cannot be read back into the dialplan');
  return value;
}

/** A value Asterisk can receive intact in a quoted AGI word: no CR, LF or NUL. */
export function canTravel(value: Buffer): boolean {
  return value.indexOf(0x0a) === -1 && value.indexOf(0x0d) === -1 && value.indexOf(0x00) === -1;
}

/** A signed decimal integer (surrounding spaces allowed, as atoi did), |n| <= 2^64-1; null otherwise. */
export function parseSignedInteger(text: Buffer | undefined): bigint | null {
  if (text === undefined) return null;
  const m = /^[ \t]*([+-]?)([0-9]{1,20})[ \t]*$/.exec(text.toString('latin1'));
  if (m === null) return null;
  const magnitude = BigInt(m[2]!);
  if (magnitude > UINT64_MAX) return null;
  return m[1] === '-' ? -magnitude : magnitude;
}

/**
 * A CAS token as mcdgets wrote it: decimal digits only, 1 .. 2^64-1, read as a bigint so every
 * token is exact; null otherwise. 0 is never a token (src/util/request-rules.ts checkCas).
 */
export function parseCasToken(text: Buffer | undefined): bigint | null {
  if (text === undefined || !/^[0-9]{1,20}$/.test(text.toString('latin1'))) return null;
  const token = BigInt(text.toString('latin1'));
  return token === 0n || token > UINT64_MAX ? null : token;
}

/** A TTL in seconds (0..2^31-1), or null. */
export function parseTtl(text: string | Buffer | undefined): number | null {
  if (text === undefined) return null;
  const s = typeof text === 'string' ? text : text.toString('latin1');
  if (!/^[0-9]{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n <= MAX_EXPTIME ? n : null;
}

/** A dialplan variable name this module will write: letters, digits, '_' (a leading '_'/'__' makes it inherited). */
export function isVariableName(name: Buffer | undefined): boolean {
  return name !== undefined && /^[A-Za-z0-9_]{1,80}$/.test(name.toString('latin1')) && /[A-Za-z0-9]/.test(name.toString('latin1'));
}

export function isRefusal(x: Buffer | Refusal): x is Refusal {
  return !Buffer.isBuffer(x);
}
