// What a request asks of one server, and what comes back: shared by the text and binary codecs,
// the connection and the cluster. Keys arrive here already prefixed and validated (bytes).

export type StoreMode = 'set' | 'add' | 'replace' | 'append' | 'prepend' | 'cas';

export type Command =
  | {
      readonly op: 'get';
      readonly keys: readonly Buffer[];
      readonly withCas: boolean;
      /** Get-and-touch: also set each found item's TTL to this (seconds, memcached's rule). */
      readonly touchTtl?: number;
    }
  | {
      readonly op: 'store';
      readonly mode: StoreMode;
      readonly key: Buffer;
      readonly value: Buffer;
      readonly flags: number;
      readonly ttl: number;
      /** Only for mode 'cas'. */
      readonly cas?: bigint;
    }
  | {
      /**
       * Many sets in one quiet run (meta `ms ... q` closed by `mn`, binary SETQs closed by
       * NOOP): the server answers only the entries it did not store, then the closing
       * request. One TTL and flags for all; keys[i] gets values[i].
       */
      readonly op: 'storeMany';
      readonly mode: 'set';
      readonly keys: readonly Buffer[];
      readonly values: readonly Buffer[];
      readonly flags: number;
      readonly ttl: number;
    }
  | {
      readonly op: 'delete';
      readonly key: Buffer;
      /** Delete only while the item still has this CAS unique (see encodeText for the text protocol). */
      readonly cas?: bigint;
    }
  | {
      readonly op: 'incr' | 'decr';
      readonly key: Buffer;
      readonly delta: bigint;
      /** Binary protocol only: create the counter with this value when it is missing. */
      readonly initial?: bigint;
      readonly ttl?: number;
    }
  | { readonly op: 'touch'; readonly key: Buffer; readonly ttl: number }
  | { readonly op: 'flush'; readonly delay: number }
  | { readonly op: 'version' }
  | { readonly op: 'stats'; readonly group?: string }
  | { readonly op: 'noop' }
  | { readonly op: 'auth'; readonly mechanism: string; readonly data: Buffer };

export interface Item {
  readonly value: Buffer;
  readonly flags: number;
  /** 0n when the server did not send one (text `get`). */
  readonly cas: bigint;
}

/**
 * The outcome of one command on one server. `rc` is the libmemcached-compatible code (0 =
 * success), the same for every protocol (the text protocol's code; ARCHITECTURE.md, "Result codes").
 */
export interface Outcome {
  rc: number;
  /** get: one slot per requested key, undefined on a miss. */
  items?: (Item | undefined)[];
  /** incr/decr result; store: the new CAS (binary only). */
  number?: bigint;
  /** version text, or the server's message for ERROR / CLIENT_ERROR / SERVER_ERROR. */
  text?: string;
  stats?: Map<string, string>;
  /**
   * storeMany: one slot per entry, the code of each entry that was not stored (undefined: the
   * server vouched for it by its silence). An entry with no slot here takes `rc`: a connection
   * failure, or an error reply the codec could not pin on an entry.
   */
  rcs?: (number | undefined)[];
  /**
   * storeMany: the slots whose code in `rcs` comes from an error reply without an opaque
   * (meta's SERVER_ERROR lines): the server refused one entry of the run but did not say which,
   * so each of these may or may not have been stored.
   */
  unattributed?: number[];
}

export { UINT64_MAX } from '../../util/request-rules.js';
