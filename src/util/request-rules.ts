// Argument rules every cache backend applies the same way (the cluster Client and the embedded
// store refuse the same arguments with the same code, 38 INVALID_ARGUMENTS unless said).

import { MemcachedError, Rc } from './errors.js';

export const UINT64_MAX = 0xffff_ffff_ffff_ffffn;
export const MAX_UINT32 = 0xffffffff;
/** memcached's exptime is a signed 32-bit number (above 30 days it is a Unix time). */
export const MAX_EXPTIME = 2_147_483_647;
/** libmemcached's namespace limit (MEMCACHED_PREFIX_KEY_MAX_SIZE - 1). */
export const MAX_KEY_PREFIX_BYTES = 127;

/**
 * A TTL every protocol means the same way: text and meta exptimes are read as signed 32-bit
 * numbers by memcached 1.6 (2^31 and above wrap negative: the item is stored already expired),
 * binary's as unsigned (kept), so above 2^31-1 the outcome would depend on the protocol.
 */
export function checkTtl(ttl: number): number {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_EXPTIME) {
    throw new MemcachedError(Rc.INVALID_ARGUMENTS, `TTL must be an integer from 0 to ${MAX_EXPTIME} seconds`);
  }
  return ttl;
}

export function checkFlags(flags: number): number {
  if (!Number.isInteger(flags) || flags < 0 || flags > MAX_UINT32) throw new MemcachedError(Rc.INVALID_ARGUMENTS, 'flags must be a 32-bit unsigned integer');
  return flags;
}

/** A bigint 0..2^64-1 or a safe non-negative integer, as a bigint. */
export function toUint64(n: bigint | number, what: string): bigint {
  const v = typeof n === 'bigint' ? n : Number.isSafeInteger(n) ? BigInt(n) : -1n;
  if (v < 0n || v > UINT64_MAX) throw new MemcachedError(Rc.INVALID_ARGUMENTS, `${what} must be an integer from 0 to ${UINT64_MAX}`);
  return v;
}

/**
 * A CAS unique from gets(): 1 .. 2^64-1. 0 means "no CAS" in the binary protocol (a plain set)
 * but is a value in the text one, so it is refused to keep both protocols alike.
 */
export function checkCas(cas: bigint): bigint {
  if (typeof cas !== 'bigint' || cas <= 0n || cas > UINT64_MAX) throw new MemcachedError(Rc.INVALID_ARGUMENTS, 'a CAS value is 1 .. 2^64-1, from gets()');
  return cas;
}

/** libmemcached's namespace rules (src/libmemcached/namespace.cc): printable ASCII, at most 127 bytes. */
export function checkKeyPrefix(prefix: Buffer): Buffer {
  if (prefix.length > MAX_KEY_PREFIX_BYTES) throw new MemcachedError(Rc.KEY_TOO_BIG, `key prefix is longer than ${MAX_KEY_PREFIX_BYTES} bytes (it has ${prefix.length})`);
  for (const b of prefix) {
    if (b <= 0x20 || b >= 0x7f) throw new MemcachedError(Rc.BAD_KEY_PROVIDED, 'key prefix holds a space, control or non-ASCII byte');
  }
  return prefix;
}
