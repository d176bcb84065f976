// res-memcached's public API: the memcached client library (README.md, "The client library") and what an application
// needs around it. `import { Client } from 'res-memcached'`.

export {
  Client,
  CLIENT_DEFAULTS,
  type ClientOptions,
  type CounterOptions,
  type Item,
  type ServerAddress,
  type ServerEvent,
  type ServerResult,
  type StoreOptions,
} from './cluster/client.js';
export { parseServerAddress, ServerAddressError } from './cluster/server-address.js';
export { HASH_NAMES, DISTRIBUTIONS, type HashName, type DistributionName, type ServerSpec } from './cluster/names.js';
export { hashKey } from './cluster/hash.js';
export { Router, type RouterOptions } from './cluster/router.js';
export type { Protocol, SaslCredentials, SocketFactory, TlsSettings, Address } from './memcache/connection.js';
export { MemcachedError, ResultError, Rc, rcName, rcText, allRcs, type RcName } from './util/errors.js';
export { loadSettings, defaultSettings, ConfigError, CONFIG_DEFAULTS, type Settings } from './config/settings.js';
export { clientOptionsFromSettings } from './daemon/client-options.js';
export { MemoryStore, type MemoryStoreOptions } from './store/memory-store.js';
export { LeaseEngine, MAX_LIMIT_SLOTS, type LeaseBackend, type LeaseEngineOptions, type AcquireResult, type HeldLease, type MaintenanceReport } from './leases/engine.js';
