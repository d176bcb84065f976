// What the cluster believes about one server, as plain state with the time passed in (no timers,
// so tests need no clock). The policy (ARCHITECTURE.md, "Failure policy"):
//  - a connection failure (refused, timed out, reset, out of sync) counts one failure and
//    disables the server for retryTimeoutMs: requests to it answer at once with
//    SERVER_TEMPORARILY_DISABLED (47), or SERVER_MARKED_DEAD (35) once failureLimit failures in
//    a row are reached, instead of each waiting for a timeout;
//  - after retryTimeoutMs the next request tries the server again (libmemcached keeps answering
//    47 forever after a refused connect; this does not);
//  - with removeFailed, reaching failureLimit ejects the server: the cluster routes its keys to
//    the others and probes it every retryTimeoutMs; it comes back on the first answer;
//  - any answer from the server resets the count.

import { Rc } from '../util/errors.js';

export interface HealthPolicy {
  retryTimeoutMs: number;
  failureLimit: number;
  removeFailed: boolean;
}

export type HealthState = 'up' | 'disabled' | 'ejected';

export class ServerHealth {
  readonly #policy: HealthPolicy;
  #failures = 0;
  #retryAt = 0;
  #ejected = false;

  constructor(policy: HealthPolicy) {
    this.#policy = policy;
  }

  get failures(): number {
    return this.#failures;
  }

  get retryAt(): number {
    return this.#retryAt;
  }

  get ejected(): boolean {
    return this.#ejected;
  }

  state(now: number): HealthState {
    if (this.#ejected) return 'ejected';
    return now < this.#retryAt ? 'disabled' : 'up';
  }

  /** admit() at the current time; with no failure on record it does not read the clock (the hot path). */
  admitNow(): number {
    return this.#failures === 0 && !this.#ejected ? Rc.SUCCESS : this.admit(Date.now());
  }

  /** 0 when a request may go to the server now, else the code to answer with at once. */
  admit(now: number): number {
    if (this.#ejected) return Rc.SERVER_MARKED_DEAD;
    if (now >= this.#retryAt) return Rc.SUCCESS;
    return this.#failures >= this.#policy.failureLimit ? Rc.SERVER_MARKED_DEAD : Rc.SERVER_TEMPORARILY_DISABLED;
  }

  /** Records a failure; true when it has just ejected the server. */
  onFailure(now: number): boolean {
    this.#failures++;
    this.#retryAt = now + this.#policy.retryTimeoutMs;
    if (this.#policy.removeFailed && !this.#ejected && this.#failures >= this.#policy.failureLimit) {
      this.#ejected = true;
      return true;
    }
    return false;
  }

  /** Records an answer; true when the server was ejected and has just come back. */
  onSuccess(): boolean {
    const wasEjected = this.#ejected;
    this.#failures = 0;
    this.#retryAt = 0;
    this.#ejected = false;
    return wasEjected;
  }
}
