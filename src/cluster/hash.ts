// The key hash functions of libmemcached 1.1.4 (src/libhashkit/*.cc), bit for bit, including the
// places where libmemcached reads key bytes through a signed `char` (test/fixtures/vectors/
// ALGORITHMS.md §2). All functions return an unsigned 32-bit integer.
//
// Arithmetic is done in int32 with Math.imul and `| 0`, converted with `>>> 0` at the end; no
// function allocates except md5 (node:crypto).

import * as crypto from 'node:crypto';

import type { HashName } from './names.js';

/** A key hash: bytes in, unsigned 32-bit integer out. */
export type HashFunction = (key: Uint8Array) => number;

/** A byte as C's signed `char` (x86-64) widened to 32 bits: 0x80..0xff become 0xffffff80..0xffffffff. */
function sx(byte: number): number {
  return (byte << 24) >> 24;
}

/** Jenkins one-at-a-time, MEMCACHED_HASH_DEFAULT (`one_at_a_time.cc`). Signed bytes. */
export function oneAtATime(key: Uint8Array): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) {
    h = (h + sx(key[i]!)) | 0;
    h = (h + (h << 10)) | 0;
    h ^= h >>> 6;
  }
  h = (h + (h << 3)) | 0;
  h ^= h >>> 11;
  h = (h + (h << 15)) | 0;
  return h >>> 0;
}

/**
 * The 16-byte MD5 digest of `data` (`libhashkit_md5_signature`). crypto.hash() (Node >= 20.12) is
 * the one-shot form, about a third faster than createHash() on short keys.
 */
export const md5Digest: (data: Uint8Array | string) => Buffer =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('md5', data, 'buffer')
    : (data) => crypto.createHash('md5').update(data).digest();

/** MEMCACHED_HASH_MD5 (`md5.cc` `hashkit_md5`): digest bytes 0..3, little-endian. */
export function md5(key: Uint8Array): number {
  return md5Digest(key).readUInt32LE(0);
}

/**
 * The four continuum points libketama (weighted mode) takes from one point string: the digest's
 * four little-endian 32-bit words (`hosts.cc` `ketama_server_hash`, alignment 0..3). The string is
 * hashed as UTF-8, which is what the C code sees for a host name given in a UTF-8 config.
 */
export function md5Points(pointString: string): [number, number, number, number] {
  const d = md5Digest(pointString);
  return [d.readUInt32LE(0), d.readUInt32LE(4), d.readUInt32LE(8), d.readUInt32LE(12)];
}

const CRC32_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * MEMCACHED_HASH_CRC (`crc32.cc`): zlib's CRC-32, but libmemcached keeps only bits 16..30 of it,
 * so the value is 0..32767.
 */
export function crc(key: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < key.length; i++) c = (c >>> 8) ^ CRC32_TABLE[(c ^ key[i]!) & 0xff]!;
  return (~c >>> 16) & 0x7fff;
}

// FNV (`fnv_64.cc`, `fnv_32.cc`). FNV1_64 runs in 64 bits and returns the low 32; the low 32 bits
// of a product depend only on the low 32 bits of its factors, and the XOR of a sign-extended byte
// only touches the high half with ones, so the low half can be computed on its own:
// h = 0x84222325 (low half of 0xcbf29ce484222325), prime 0x1b3 (low half of 0x100000001b3).
// FNV1A_64 is written in 32 bits in libmemcached itself, with the same truncated constants.
const FNV64_INIT_LOW = 0x84222325 | 0;
const FNV64_PRIME_LOW = 0x1b3;
const FNV32_INIT = 0x811c9dc5 | 0;
const FNV32_PRIME = 0x01000193;

/** MEMCACHED_HASH_FNV1_64: multiply, then XOR the sign-extended byte. */
export function fnv1_64(key: Uint8Array): number {
  let h = FNV64_INIT_LOW;
  for (let i = 0; i < key.length; i++) h = Math.imul(h, FNV64_PRIME_LOW) ^ sx(key[i]!);
  return h >>> 0;
}

/** MEMCACHED_HASH_FNV1A_64: XOR the sign-extended byte, then multiply. */
export function fnv1a_64(key: Uint8Array): number {
  let h = FNV64_INIT_LOW;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ sx(key[i]!), FNV64_PRIME_LOW);
  return h >>> 0;
}

/** MEMCACHED_HASH_FNV1_32. Signed bytes. */
export function fnv1_32(key: Uint8Array): number {
  let h = FNV32_INIT;
  for (let i = 0; i < key.length; i++) h = Math.imul(h, FNV32_PRIME) ^ sx(key[i]!);
  return h >>> 0;
}

/** MEMCACHED_HASH_FNV1A_32. Signed bytes. */
export function fnv1a_32(key: Uint8Array): number {
  let h = FNV32_INIT;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ sx(key[i]!), FNV32_PRIME);
  return h >>> 0;
}

/** Little-endian 32-bit word at `i` (murmur.cc and murmur3.cc memcpy on x86-64). */
function word(key: Uint8Array, i: number): number {
  return key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
}

/**
 * The last `n` (0..4) bytes from `i` as a little-endian word. The C tails add or XOR the bytes one
 * by one (`case 3: h ^= data[2] << 16; case 2: ...`); the bytes occupy distinct bits, so that is
 * this word.
 */
function tailWord(key: Uint8Array, i: number, n: number): number {
  let w = 0;
  for (let j = n - 1; j >= 0; j--) w = (w << 8) | key[i + j]!;
  return w;
}

/** MEMCACHED_HASH_MURMUR (`murmur.cc`): MurmurHash2, seed 0xdeadbeef * length. Unsigned bytes. */
export function murmur(key: Uint8Array): number {
  const m = 0x5bd1e995;
  const len = key.length;
  let h = Math.imul(0xdeadbeef, len) ^ len;
  let i = 0;
  for (; len - i >= 4; i += 4) {
    let k = Math.imul(word(key, i), m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  if (len > i) h = Math.imul(h ^ tailWord(key, i, len - i), m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h >>> 0;
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/**
 * MEMCACHED_HASH_JENKINS (`jenkins.cc`): Bob Jenkins' lookup3 hashlittle() with initval 13.
 * Unsigned bytes; the aligned word reads of the C code give the same result on little-endian.
 */
export function jenkins(key: Uint8Array): number {
  let length = key.length;
  let a = (0xdeadbeef + length + 13) | 0;
  let b = a;
  let c = a;
  let o = 0;
  while (length > 12) {
    a = (a + word(key, o)) | 0;
    b = (b + word(key, o + 4)) | 0;
    c = (c + word(key, o + 8)) | 0;
    // mix(a, b, c)
    a = (a - c) | 0; a ^= rotl(c, 4); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rotl(a, 6); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rotl(b, 8); b = (b + a) | 0;
    a = (a - c) | 0; a ^= rotl(c, 16); c = (c + b) | 0;
    b = (b - a) | 0; b ^= rotl(a, 19); a = (a + c) | 0;
    c = (c - b) | 0; c ^= rotl(b, 4); b = (b + a) | 0;
    length -= 12;
    o += 12;
  }
  if (length === 0) return c >>> 0; // no final mixing for an empty last block
  a = (a + tailWord(key, o, Math.min(length, 4))) | 0;
  if (length > 4) b = (b + tailWord(key, o + 4, Math.min(length - 4, 4))) | 0;
  if (length > 8) c = (c + tailWord(key, o + 8, length - 8)) | 0;
  // final(a, b, c)
  c ^= b; c = (c - rotl(b, 14)) | 0;
  a ^= c; a = (a - rotl(c, 11)) | 0;
  b ^= a; b = (b - rotl(a, 25)) | 0;
  c ^= b; c = (c - rotl(b, 16)) | 0;
  a ^= c; a = (a - rotl(c, 4)) | 0;
  b ^= a; b = (b - rotl(a, 14)) | 0;
  c ^= b; c = (c - rotl(b, 24)) | 0;
  return c >>> 0;
}

/** MEMCACHED_HASH_MURMUR3 (`murmur3_api.cc`, `murmur3.cc`): MurmurHash3_x86_32, seed 0xdeadbeef * length. */
export function murmur3(key: Uint8Array): number {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  const len = key.length;
  let h = Math.imul(0xdeadbeef, len);
  const tail = len & ~3;
  for (let i = 0; i < tail; i += 4) {
    let k = Math.imul(word(key, i), c1);
    k = Math.imul(rotl(k, 15), c2);
    h ^= k;
    h = (Math.imul(rotl(h, 13), 5) + 0xe6546b64) | 0;
  }
  if (len & 3) h ^= Math.imul(rotl(Math.imul(tailWord(key, tail, len & 3), c1), 15), c2);
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MEMCACHED_HASH_HSIEH (`hsieh.cc`): Paul Hsieh's SuperFastHash as libmemcached compiles it with
 * HAVE_HSIEH_HASH. Debian's libhashkit is built without it (its vectors say 1 for every key), so
 * test/fixtures/hsieh-reference.json holds values of the C function compiled with gcc instead.
 * Bytes are unsigned except the third byte of a 3-byte tail, which hsieh.cc reads as `char`.
 */
export function hsieh(key: Uint8Array): number {
  const len = key.length;
  if (len === 0) return 0;
  let h = 0;
  let i = 0;
  for (const end = len & ~3; i < end; i += 4) {
    h = (h + (key[i]! | (key[i + 1]! << 8))) | 0;
    const tmp = ((key[i + 2]! | (key[i + 3]! << 8)) << 11) ^ h;
    h = (h << 16) ^ tmp;
    h = (h + (h >>> 11)) | 0;
  }
  switch (len & 3) {
    case 3:
      h = (h + (key[i]! | (key[i + 1]! << 8))) | 0;
      h ^= h << 16;
      h ^= sx(key[i + 2]!) << 18; // `(uint32_t) key[2] << 18` on a signed char
      h = (h + (h >>> 11)) | 0;
      break;
    case 2:
      h = (h + (key[i]! | (key[i + 1]! << 8))) | 0;
      h ^= h << 11;
      h = (h + (h >>> 17)) | 0;
      break;
    case 1:
      h = (h + key[i]!) | 0;
      h ^= h << 10;
      h = (h + (h >>> 1)) | 0;
      break;
  }
  h ^= h << 3;
  h = (h + (h >>> 5)) | 0;
  h ^= h << 4;
  h = (h + (h >>> 17)) | 0;
  h ^= h << 25;
  h = (h + (h >>> 6)) | 0;
  return h >>> 0;
}

const HASH_FUNCTIONS: Readonly<Record<HashName, HashFunction>> = {
  default: oneAtATime,
  md5,
  crc,
  fnv1_64,
  fnv1a_64,
  fnv1_32,
  fnv1a_32,
  hsieh,
  murmur,
  jenkins,
  murmur3,
};

/** The function for a hash name; resolve once and keep it when hashing many keys. */
export function hashFunction(name: HashName): HashFunction {
  const fn = HASH_FUNCTIONS[name];
  if (fn === undefined) throw new RangeError(`unknown hash: ${String(name)}`);
  return fn;
}

/** `memcached_generate_hash_value(key, len, name)`: the key's hash as an unsigned 32-bit integer. */
export function hashKey(name: HashName, key: Uint8Array): number {
  return hashFunction(name)(key);
}
