// The client's defaults, shared with memcached.conf's (config/settings.ts) so the two never
// drift. Chosen for call flows: a dead server costs a call at most one connect timeout, then
// answers at once with a code until the retry interval has passed.

import type { Protocol } from '../memcache/protocol/wire-codec.js';
import type { DistributionName } from './names.js';

export const CLIENT_DEFAULTS = {
  protocol: 'binary' as Protocol,
  distribution: 'consistent' as DistributionName,
  connectTimeoutMs: 500,
  timeoutMs: 1000,
  retryTimeoutMs: 2000,
  serverFailureLimit: 2,
  removeFailedServers: false,
  maxQueuePerServer: 100_000,
};
