// Key rules shared by the memcached client and the embedded store, so both refuse the same keys: a key is
// bytes (strings as UTF-8), 1..250 bytes together with its prefix, with no whitespace or
// control byte — so a key coming from a caller can never end a protocol line and inject a
// command. Refusals are MEMCACHED_BAD_KEY_PROVIDED (33), as libmemcached's.

import { MemcachedError, Rc } from './errors.js';

/**
 * memcached's key limit, prefix included (libmemcached's MEMCACHED_MAX_KEY - 1). Also the longest
 * namespace + key libmemcached hashes: the router gives a longer one hash 0, as it does.
 */
export const MAX_KEY_BYTES = 250;

/** A character that is never allowed in a key (UTF-8 never encodes other characters to these bytes). */
const FORBIDDEN = /[\x00-\x20\x7f]/;

/** True when `raw` holds a byte no key may hold: whitespace or a control byte. */
export function hasForbiddenKeyByte(raw: Uint8Array): boolean {
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b <= 0x20 || b === 0x7f) return true;
  }
  return false;
}

/**
 * The key's bytes without the prefix; throws 33 when prefix + key is not a valid key. With
 * `anyByte` (a protocol whose codec encodes every byte safely: meta's base64 keys) whitespace
 * and control bytes are allowed; the length rule stays.
 */
export function keyBytes(key: string | Buffer, prefixLength = 0, anyByte = false): Buffer {
  let raw: Buffer;
  if (anyByte) {
    raw = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  } else if (typeof key === 'string') {
    // Checked on the string (one native scan) before it becomes bytes.
    if (FORBIDDEN.test(key)) throw new MemcachedError(Rc.BAD_KEY_PROVIDED, 'key holds whitespace or a control character');
    raw = Buffer.from(key, 'utf8');
  } else {
    raw = key;
    if (hasForbiddenKeyByte(raw)) throw new MemcachedError(Rc.BAD_KEY_PROVIDED, 'key holds whitespace or a control character');
  }
  if (raw.length === 0) throw new MemcachedError(Rc.BAD_KEY_PROVIDED, 'empty key');
  if (raw.length + prefixLength > MAX_KEY_BYTES) {
    throw new MemcachedError(Rc.BAD_KEY_PROVIDED, `key is longer than ${MAX_KEY_BYTES} bytes with its prefix`);
  }
  return raw;
}
