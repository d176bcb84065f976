// Small async helpers shared by the integration tests.

import assert from 'node:assert/strict';
import { MemcachedError, Rc } from '../../src/util/errors.js';

/** The code a cache call settled with: 0 on success, else its MemcachedError's rc (anything else fails the test). */
export async function codeOf(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof MemcachedError, `a MemcachedError, got ${String(err)}`);
    return err.rc;
  }
  return Rc.SUCCESS;
}

/** Polls `check` every 10 ms; throws naming `what` when it is still false after `ms`. */
export async function waitFor(check: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`${what}: not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
