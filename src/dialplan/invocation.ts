// The contract between one dialplan command module and the session runner (ARCHITECTURE.md,
// "AGI sessions"): a command checks its arguments without any I/O, and says what the runner must
// do around it (read MCDTTL, synchronise before a write), so every command costs Asterisk as few
// round trips as it can: each one holds a channel's dialplan while it waits.

import type { LeaseEngine } from '../leases/engine.js';
import { ResultError } from '../util/errors.js';
import type { CacheBackend } from './backend.js';

/** A dialplan command's own failure (no lease engine, no uniqueid, a miss MCD reports as 16): not the cache's. */
export class CommandError extends ResultError {
  constructor(rc: number, message?: string, options?: { cause?: unknown; serverText?: string }) {
    super(rc, message, options);
    this.name = 'CommandError';
  }
}

export interface ArgumentDoc {
  readonly name: string;
  readonly required: boolean;
  readonly text: string;
}

export interface CommandDoc {
  /** As the C module registered it: functions upper case, applications lower case. */
  readonly name: string;
  readonly kind: 'function' | 'application';
  readonly synopsis: string;
  readonly description: string;
  /** The C module's form, e.g. `MCDCOUNTER(key[,increment])`. */
  readonly syntax: string;
  /** The FastAGI script path and arguments, e.g. `MCDCOUNTER,key[,increment]`. */
  readonly agiSyntax: string;
  readonly arguments: readonly ArgumentDoc[];
  readonly seeAlso: readonly string[];
  /** Variables it sets besides MCDRESULT, for `show` (default: a function's own name, or none). */
  readonly sets?: readonly string[];
}

export interface Limits {
  readonly maxKeyLength: number;
  readonly maxValueLength: number;
  /** Bytes of the configured keyprefix (prefix + key must fit memcached's 250). */
  readonly keyPrefixBytes: number;
}

export interface Refusal {
  readonly rc: number;
  readonly message: string;
}

/** Who is calling, for commands that act on behalf of the channel (leases, locks). */
export interface CallContext {
  /** agi_uniqueid; null when Asterisk did not send one. */
  readonly uniqueId: string | null;
  /** The daemon's lease engine over the same backend; null where there is none. */
  readonly leases: LeaseEngine | null;
}

export interface Invocation {
  /** Variables this call writes besides MCDRESULT; each is set to "" when the call fails... */
  readonly outputs: readonly string[];
  /** ...or to this value (by position) when given, e.g. MCDLIMIT=ERROR. */
  readonly failed?: readonly Buffer[];
  /** The arguments are wrong: nothing is sent to the cache. */
  readonly refusal: Refusal | null;
  /** The TTL setting that applies when MCDTTL (or ?ttl=) is not given; null = no TTL read. */
  readonly ttlDefault: 'ttl' | 'counter_ttl' | null;
  /** Changes the cache, so it runs only once the session is known to be in sync. */
  readonly mutates: boolean;
  /** Runs against the cache; resolves with a value per output; rejects with a MemcachedError. */
  run(backend: CacheBackend, ttl: number, call: CallContext): Promise<readonly Buffer[]>;
}

export interface DialplanCommand extends CommandDoc {
  invoke(args: readonly Buffer[], limits: Limits): Invocation;
}

/** An invocation that does not run: its arguments were refused. */
export function refused(outputs: readonly string[], rc: number, message: string): Invocation {
  return {
    outputs,
    refusal: { rc, message },
    ttlDefault: null,
    mutates: false,
    run: () => Promise.reject(new Error('a refused invocation does not run')),
  };
}
