// What running a dialplan command means apart from how it arrived: the per-call options of the
// script path and one invocation run against the cache, with the same refusal of stored values
// the dialplan cannot carry. Shared by the FastAGI runner (src/dialplan/runner.ts) and the HTTP
// door (src/http/door.ts) so both apply one set of rules.

import { Rc, ResultError } from '../util/errors.js';
import { canTravel, parseTtl } from './arguments.js';
import type { CacheBackend } from './backend.js';
import type { CallContext, Invocation, Limits } from './invocation.js';

/** Codes that are ordinary answers, not trouble: logged at debug, not as warnings. */
export const ORDINARY = new Set<number>([Rc.SUCCESS, Rc.NOTSTORED, Rc.NOTFOUND, Rc.DATA_EXISTS]);

export interface CommandResult {
  rc: number;
  values: readonly Buffer[];
  reason?: string;
}

/** Runs an accepted invocation; a stored value with CR/LF/NUL is 122, one over max_value_length 125. */
export async function runInvocation(invocation: Invocation, backend: CacheBackend, ttl: number, call: CallContext, limits: Limits): Promise<CommandResult> {
  try {
    const values = await invocation.run(backend, ttl, call);
    for (const value of values) {
      if (!canTravel(value)) return { rc: Rc.BAD_VALUE, values: [], reason: 'the stored value holds CR, LF or NUL' };
      if (value.length > limits.maxValueLength) {
        return { rc: Rc.VALUE_TOO_LONG, values: [], reason: `the stored value is ${value.length} bytes, over max_value_length=${limits.maxValueLength}` };
      }
    }
    return { rc: Rc.SUCCESS, values };
  } catch (err) {
    if (err instanceof ResultError) return { rc: err.rc, values: [], ...(ORDINARY.has(err.rc) ? {} : { reason: err.message }) };
    return { rc: Rc.FAILURE, values: [], reason: `unexpected: ${String(err)}` };
  }
}

export interface CallOptions {
  /** ?ttl=N: overrides MCDTTL (and the config's ttl). */
  ttl: number | null;
  /** Values of the `extra` options the caller allowed (last one given wins). */
  extra: Map<string, string>;
  error: string | null;
}

/**
 * Per-call options (the query of a FastAGI script path or of a door URL): `ttl=N`, plus the option names in `extra` (lower case) the caller
 * knows; any other name is an error (38), so a misspelt option never passes silently.
 */
export function readCallOptions(params: URLSearchParams, extra: readonly string[] = []): CallOptions {
  let ttl: number | null = null;
  const found = new Map<string, string>();
  for (const [key, value] of params) {
    const name = key.toLowerCase();
    if (name === 'ttl') {
      ttl = parseTtl(value);
      if (ttl === null) return { ttl: null, extra: found, error: `?ttl=${value} is not a non-negative integer` };
    } else if (extra.includes(name)) found.set(name, value);
    else return { ttl: null, extra: found, error: `unknown option ?${key}= (known: ${['ttl', ...extra].join(', ')})` };
  }
  return { ttl, extra: found, error: null };
}
