// Decimal numbers in reply bytes, read where they lie (no string made per reply): lengths,
// flags, opaques, CAS uniques and counters of the text and meta protocols.

import { UINT64_MAX } from './command.js';

/**
 * The decimal digits in [start, end) of `buf`, at most `maxDigits` (15 or fewer, so the number
 * is exact) of them, as a number; -1 when there are none, too many, or a non-digit.
 */
export function parseDigits(buf: Uint8Array, start: number, end: number, maxDigits: number): number {
  if (end <= start || end - start > maxDigits) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/**
 * 1 to 20 decimal digits in [start, end) as an unsigned 64-bit number; -1n when malformed or
 * above 2^64-1. CAS uniques and counters are usually small: a Number first, and a BigInt of a
 * string only for the long ones.
 */
export function parseUint64Digits(buf: Uint8Array, start: number, end: number): bigint {
  const length = end - start;
  if (length <= 15) {
    const n = parseDigits(buf, start, end, 15);
    return n < 0 ? -1n : BigInt(n);
  }
  if (length > 20 || parseDigits(buf, start, start + 10, 10) < 0 || parseDigits(buf, start + 10, end, 10) < 0) return -1n;
  const n = BigInt(Buffer.from(buf.buffer, buf.byteOffset + start, length).toString('latin1'));
  return n > UINT64_MAX ? -1n : n;
}
