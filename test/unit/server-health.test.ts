// ServerHealth's policy with the clock passed in: failure counting, the retry window, the
// failure limit with and without ejection, revival on an answer, and admitNow's clock-free fast
// path (Date mocked so its slow path reads a known time).

import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';

import { ServerHealth } from '../../src/cluster/health.js';
import type { HealthPolicy } from '../../src/cluster/health.js';
import { Rc } from '../../src/util/errors.js';

const T0 = 5_000_000;
const policy = (over: Partial<HealthPolicy> = {}): HealthPolicy => ({ retryTimeoutMs: 2000, failureLimit: 3, removeFailed: false, ...over });

describe('ServerHealth: a fresh server', () => {
  it('is up, admits requests and has nothing on record', () => {
    const h = new ServerHealth(policy());
    assert.equal(h.failures, 0);
    assert.equal(h.retryAt, 0);
    assert.equal(h.ejected, false);
    assert.equal(h.state(T0), 'up');
    assert.equal(h.admit(T0), Rc.SUCCESS);
    assert.equal(h.admit(0), Rc.SUCCESS);
  });
});

describe('ServerHealth: failures below the limit', () => {
  it('one failure disables the server for retryTimeoutMs with SERVER_TEMPORARILY_DISABLED, then admits again', () => {
    const h = new ServerHealth(policy());
    assert.equal(h.onFailure(T0), false);
    assert.equal(h.failures, 1);
    assert.equal(h.retryAt, T0 + 2000);
    assert.equal(h.state(T0), 'disabled');
    assert.equal(h.admit(T0), Rc.SERVER_TEMPORARILY_DISABLED);
    assert.equal(h.admit(T0 + 1999), Rc.SERVER_TEMPORARILY_DISABLED);
    assert.equal(h.state(T0 + 1999), 'disabled');
    assert.equal(h.admit(T0 + 2000), Rc.SUCCESS, 'the retry is due exactly at retryAt');
    assert.equal(h.state(T0 + 2000), 'up');
    assert.equal(h.failures, 1, 'admitting the retry does not forget the failure');
  });

  it('every failure restarts the retry window from its own time and counts one more', () => {
    const h = new ServerHealth(policy({ failureLimit: 10 }));
    h.onFailure(T0);
    h.onFailure(T0 + 2500);
    assert.equal(h.failures, 2);
    assert.equal(h.retryAt, T0 + 4500);
    assert.equal(h.admit(T0 + 4499), Rc.SERVER_TEMPORARILY_DISABLED);
    assert.equal(h.admit(T0 + 4500), Rc.SUCCESS);
  });

  it('an answer resets the count and the window', () => {
    const h = new ServerHealth(policy());
    h.onFailure(T0);
    h.onFailure(T0 + 10);
    assert.equal(h.onSuccess(), false, 'not ejected, so not a comeback');
    assert.equal(h.failures, 0);
    assert.equal(h.retryAt, 0);
    assert.equal(h.admit(T0 + 11), Rc.SUCCESS);
    // The count starts over: two more failures are not yet the limit of three.
    h.onFailure(T0 + 20);
    h.onFailure(T0 + 30);
    assert.equal(h.admit(T0 + 31), Rc.SERVER_TEMPORARILY_DISABLED);
  });
});

describe('ServerHealth: the failure limit without removeFailed', () => {
  it('failureLimit failures in a row answer SERVER_MARKED_DEAD until the retry is due, never ejecting', () => {
    const h = new ServerHealth(policy({ failureLimit: 3 }));
    assert.equal(h.onFailure(T0), false);
    assert.equal(h.onFailure(T0 + 1), false);
    assert.equal(h.admit(T0 + 2), Rc.SERVER_TEMPORARILY_DISABLED, 'two of three');
    assert.equal(h.onFailure(T0 + 2), false, 'no ejection without removeFailed');
    assert.equal(h.ejected, false);
    assert.equal(h.admit(T0 + 3), Rc.SERVER_MARKED_DEAD);
    assert.equal(h.state(T0 + 3), 'disabled');
    assert.equal(h.admit(T0 + 2 + 2000), Rc.SUCCESS, 'still retried after retryTimeoutMs');
    h.onFailure(T0 + 5000);
    assert.equal(h.failures, 4);
    assert.equal(h.admit(T0 + 5000), Rc.SERVER_MARKED_DEAD, 'beyond the limit stays dead');
  });

  it('a limit of 1 marks the server dead at its first failure', () => {
    const h = new ServerHealth(policy({ failureLimit: 1 }));
    h.onFailure(T0);
    assert.equal(h.admit(T0), Rc.SERVER_MARKED_DEAD);
  });
});

describe('ServerHealth: ejection with removeFailed', () => {
  it('reaching the limit ejects once; the server answers SERVER_MARKED_DEAD whatever the time until it answers', () => {
    const h = new ServerHealth(policy({ failureLimit: 2, removeFailed: true }));
    assert.equal(h.onFailure(T0), false);
    assert.equal(h.ejected, false);
    assert.equal(h.admit(T0), Rc.SERVER_TEMPORARILY_DISABLED);
    assert.equal(h.onFailure(T0 + 100), true, 'this failure ejects');
    assert.equal(h.ejected, true);
    assert.equal(h.state(T0 + 100), 'ejected');
    assert.equal(h.admit(T0 + 100), Rc.SERVER_MARKED_DEAD);
    assert.equal(h.admit(T0 + 100 + 2000), Rc.SERVER_MARKED_DEAD, 'no timed retry for ejected servers: the cluster probes');
    assert.equal(h.state(T0 + 1_000_000), 'ejected');
    assert.equal(h.onFailure(T0 + 3000), false, 'a failed probe does not eject again');
    assert.equal(h.failures, 3);
    assert.equal(h.retryAt, T0 + 5000, 'the next probe time moves with each failure');
  });

  it('an answer revives an ejected server, once', () => {
    const h = new ServerHealth(policy({ failureLimit: 1, removeFailed: true }));
    assert.equal(h.onFailure(T0), true);
    assert.equal(h.onSuccess(), true, 'back from ejection');
    assert.equal(h.ejected, false);
    assert.equal(h.failures, 0);
    assert.equal(h.retryAt, 0);
    assert.equal(h.state(T0), 'up');
    assert.equal(h.admit(T0), Rc.SUCCESS);
    assert.equal(h.onSuccess(), false, 'a second answer is no comeback');
    assert.equal(h.onFailure(T0 + 1), true, 'and it can be ejected again');
  });
});

describe('ServerHealth: admitNow', () => {
  afterEach(() => mock.timers.reset());

  it('reads the clock once a failure is on record, with the same codes as admit', () => {
    mock.timers.enable({ apis: ['Date'], now: T0 });
    const h = new ServerHealth(policy({ failureLimit: 2 }));
    assert.equal(h.admitNow(), Rc.SUCCESS);
    h.onFailure(T0);
    assert.equal(h.admitNow(), Rc.SERVER_TEMPORARILY_DISABLED);
    assert.equal(h.admitNow(), 47);
    mock.timers.tick(2000);
    assert.equal(h.admitNow(), Rc.SUCCESS, 'retry due');
    h.onFailure(Date.now());
    assert.equal(h.admitNow(), Rc.SERVER_MARKED_DEAD);
    assert.equal(h.admitNow(), 35);
    mock.timers.tick(1999);
    assert.equal(h.admitNow(), Rc.SERVER_MARKED_DEAD);
    mock.timers.tick(1);
    assert.equal(h.admitNow(), Rc.SUCCESS);
  });

  it('answers SERVER_MARKED_DEAD for an ejected server', () => {
    mock.timers.enable({ apis: ['Date'], now: T0 });
    const h = new ServerHealth(policy({ failureLimit: 1, removeFailed: true }));
    h.onFailure(T0);
    mock.timers.tick(10 * 2000);
    assert.equal(h.admitNow(), Rc.SERVER_MARKED_DEAD);
  });

  it('with nothing on record does not read the clock', () => {
    const h = new ServerHealth(policy());
    const now = mock.method(Date, 'now');
    try {
      assert.equal(h.admitNow(), Rc.SUCCESS);
      assert.equal(now.mock.callCount(), 0);
      h.onFailure(T0);
      h.onSuccess();
      assert.equal(h.admitNow(), Rc.SUCCESS);
      assert.equal(now.mock.callCount(), 0, 'still the fast path after a recovery');
    } finally {
      now.mock.restore();
    }
  });
});
