// Names shared by the config and the routing code: the hash functions and distributions of
// libmemcached that this package reproduces (test/fixtures/vectors/ALGORITHMS.md).

/** Key hash functions, as libmemcached's MEMCACHED_HASH_* (`default` = one-at-a-time). */
export const HASH_NAMES = [
  'default',
  'md5',
  'crc',
  'fnv1_64',
  'fnv1a_64',
  'fnv1_32',
  'fnv1a_32',
  'hsieh',
  'murmur',
  'jenkins',
  'murmur3',
] as const;
export type HashName = (typeof HASH_NAMES)[number];

/** Distributions a config may name (distribution= in memcached.conf). */
export const DISTRIBUTIONS = ['consistent', 'modula', 'ketama_weighted', 'ketama_spy'] as const;
export type DistributionName = (typeof DISTRIBUTIONS)[number];

/**
 * One server as the continuum sees it. `host` is verbatim as configured (never resolved: the
 * continuum hashes the text); a Unix socket has its path as host and the port libmemcached
 * recorded for it (11211 or 0, see router.ts continuumPointString).
 */
export interface ServerSpec {
  readonly host: string;
  readonly port: number;
  /** >= 1 (libmemcached stores a weight of 0 as 1). */
  readonly weight: number;
}
