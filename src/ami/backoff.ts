// When to try the AMI connection again, as a small pure class with an injectable random source
// (the same shape as src/cluster/health.ts: plain state, no timers, so tests need no clock). Exponential from initialMs,
// capped at maxMs, with "equal jitter": each delay lies in [base/2, base], so many daemons that lost
// the same Asterisk do not come back in step, and no delay is ever above maxMs.

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export const AMI_DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };

export class Backoff {
  readonly #policy: BackoffPolicy;
  readonly #random: () => number;
  #attempt = 0;

  constructor(policy: BackoffPolicy = AMI_DEFAULT_BACKOFF, random: () => number = Math.random) {
    if (!(policy.initialMs > 0) || !(policy.maxMs >= policy.initialMs)) throw new RangeError('backoff needs 0 < initialMs <= maxMs');
    this.#policy = policy;
    this.#random = random;
  }

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt (ms); counts one failed attempt. */
  next(): number {
    // 2 ** 30 is far past any cap; stop the exponent there so it never becomes Infinity.
    const base = Math.min(this.#policy.maxMs, this.#policy.initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(base / 2 + (r * base) / 2);
  }

  reset(): void {
    this.#attempt = 0;
  }
}
