// Replays the `steps` of a reference scenario (test/fixtures/vectors/README.md, placement-*.json)
// the way libmemcached 1.1.4 executes them, and turns the resulting memcached_st state into a
// Router's inputs. The order-dependent quirks are libmemcached's (src/libmemcached/behavior.cc,
// hosts.cc, csl/parser.yy), e.g.:
//   * setting the hash does not rebuild the continuum: points keep the hash of the last rebuild;
//   * adding a server with weight > 1 while the distribution is consistent turns weighted on;
//   * set_distribution(CONSISTENT or CONSISTENT_KETAMA) turns weighted off, CONSISTENT_WEIGHTED on;
//   * KETAMA_WEIGHTED=1 also sets the key hash to MD5; KETAMA_WEIGHTED=0 means KETAMA=1;
//   * server_add: port 0 → 11211, empty host → localhost, weight 0 stored as 1; a Unix socket
//     has port 0; every add and SORT_HOSTS reruns run_distribution (which sorts when asked).

import type { RouterDistribution, RouterOptions } from '../../src/cluster/router.js';
import { HASH_NAMES } from '../../src/cluster/names.js';
import type { HashName, ServerSpec } from '../../src/cluster/names.js';
import { DEFAULT_PORT } from '../../src/cluster/server-address.js';

/** memcached_server_distribution_t names (without MEMCACHED_DISTRIBUTION_). */
export type LibmemcachedDistribution =
  | 'MODULA'
  | 'CONSISTENT'
  | 'CONSISTENT_KETAMA'
  | 'RANDOM'
  | 'VIRTUAL_BUCKET'
  | 'CONSISTENT_KETAMA_SPY'
  | 'CONSISTENT_WEIGHTED';

const DISTRIBUTIONS: readonly LibmemcachedDistribution[] = [
  'MODULA',
  'CONSISTENT',
  'CONSISTENT_KETAMA',
  'RANDOM',
  'VIRTUAL_BUCKET',
  'CONSISTENT_KETAMA_SPY',
  'CONSISTENT_WEIGHTED',
];

export interface ReplayedServer extends ServerSpec {
  readonly type: 'TCP' | 'SOCKET';
}

/** The parts of a memcached_st that placement depends on, after the steps. */
export interface LibmemcachedState {
  distribution: LibmemcachedDistribution;
  /** base_hash: what MEMCACHED_BEHAVIOR_HASH reports; hashes the keys. */
  keyHash: HashName;
  /** distribution_hash: reported as KETAMA_HASH, never used for placement. */
  distributionHash: HashName;
  /** base_hash at the last continuum rebuild (run_distribution): the hash of its points. */
  pointHash: HashName;
  /** ketama.weighted_ */
  weighted: boolean;
  namespace: string | null;
  hashWithNamespace: boolean;
  sortHosts: boolean;
  servers: ReplayedServer[];
}

export interface Replayed {
  state: LibmemcachedState;
  servers: ServerSpec[];
  options: RouterOptions;
}


function freshState(): LibmemcachedState {
  // memcached.cc _memcached_init: MODULA, one-at-a-time, nothing weighted.
  return {
    distribution: 'MODULA',
    keyHash: 'default',
    distributionHash: 'default',
    pointHash: 'default',
    weighted: false,
    namespace: null,
    hashWithNamespace: false,
    sortHosts: false,
    servers: [],
  };
}

function isConsistent(d: LibmemcachedDistribution): boolean {
  return d === 'CONSISTENT' || d === 'CONSISTENT_KETAMA' || d === 'CONSISTENT_KETAMA_SPY' || d === 'CONSISTENT_WEIGHTED';
}

/** hosts.cc compare_servers: strcmp(hostname), then port. */
function compareServers(a: ReplayedServer, b: ReplayedServer): number {
  const byHost = Buffer.compare(Buffer.from(a.host, 'utf8'), Buffer.from(b.host, 'utf8'));
  return byHost !== 0 ? byHost : a.port - b.port;
}

/** hosts.cc run_distribution: sort if asked, rebuild the continuum with the current base_hash. */
function runDistribution(s: LibmemcachedState): void {
  if (s.sortHosts) s.servers.sort(compareServers);
  s.pointHash = s.keyHash;
}

/** behavior.cc memcached_behavior_set_distribution. */
function setDistribution(s: LibmemcachedState, d: LibmemcachedDistribution): void {
  if (d === 'CONSISTENT' || d === 'CONSISTENT_KETAMA') s.weighted = false;
  if (d === 'CONSISTENT_WEIGHTED') s.weighted = true;
  s.distribution = d;
  runDistribution(s);
}

/** hosts.cc server_add (memcached_server_add_with_weight / _unix_socket_with_weight). */
function serverAdd(s: LibmemcachedState, host: string, port: number, weight: number, type: 'TCP' | 'SOCKET'): void {
  // instance.cc _server_init stores a weight of 0 as 1; the weighted switch looks at the raw value.
  s.servers.push({ host, port, weight: weight === 0 ? 1 : weight, type });
  if (weight > 1 && isConsistent(s.distribution)) s.weighted = true;
  runDistribution(s);
}

/** memcached_server_add_with_weight: port 0 → 11211, no host → localhost. */
function addServer(s: LibmemcachedState, host: string, port: number, weight: number): void {
  serverAdd(s, host === '' ? 'localhost' : host, port === 0 ? DEFAULT_PORT : port, weight, host.startsWith('/') ? 'SOCKET' : 'TCP');
}

function hashByName(name: string): HashName {
  const lower = name.toLowerCase();
  const found = HASH_NAMES.find((h) => h === lower);
  if (found === undefined) throw new Error(`unknown hash ${name}`);
  return found;
}

function parseUint(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`bad ${what}: ${text}`);
  return Number(text);
}

function unquote(text: string): string {
  return text.length >= 2 && text.startsWith('"') && text.endsWith('"') ? text.slice(1, -1) : text;
}

/** Splits a config string on spaces outside double quotes. */
function configOptions(config: string): string[] {
  return config.match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
}

/**
 * memcached(config): a fresh memcached_st, then the options left to right (csl/parser.yy). Only
 * the options that influence placement are understood; protocol-only switches are accepted.
 */
function applyConfig(s: LibmemcachedState, config: string): void {
  for (const option of configOptions(config)) {
    const eq = option.indexOf('=');
    const name = (eq < 0 ? option : option.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? '' : option.slice(eq + 1);
    switch (name) {
      case '--SERVER': {
        // host[:port][/?weight]; no port → 11211, no weight → 1 (parser.yy optional_*)
        const m = /^(\[[^\]]+\]|[^:/?]+)(?::(\d+))?(?:\/\?(\d+))?$/.exec(value);
        if (m === null) throw new Error(`unsupported --SERVER value ${value}`);
        const port = m[2] === undefined ? DEFAULT_PORT : parseUint(m[2], 'port');
        const weight = m[3] === undefined ? 1 : parseUint(m[3], 'weight');
        addServer(s, m[1]!, port, weight);
        break;
      }
      case '--SOCKET': {
        // "path" or path, then an optional /?weight
        const m = /^(?:"([^"]*)"|([^"]+?))(?:\/\?(\d+))?$/.exec(value);
        if (m === null) throw new Error(`unsupported --SOCKET value ${value}`);
        serverAdd(s, m[1] ?? m[2]!, 0, m[3] === undefined ? 1 : parseUint(m[3], 'weight'), 'SOCKET');
        break;
      }
      case '--HASH':
        // --HASH= knows neither DEFAULT nor MURMUR3 (parser.yy `hash:`)
        if (/^(default|murmur3)$/i.test(value)) throw new Error(`--HASH=${value} does not parse`);
        s.keyHash = hashByName(value);
        break;
      case '--DISTRIBUTION': {
        const [dist = '', hash] = value.split(',');
        const d = dist.toUpperCase();
        if (d !== 'CONSISTENT' && d !== 'MODULA' && d !== 'RANDOM') throw new Error(`--DISTRIBUTION=${value}`);
        setDistribution(s, d);
        if (hash !== undefined) s.distributionHash = hashByName(hash);
        break;
      }
      case '--NAMESPACE':
        s.namespace = unquote(value);
        break;
      case '--HASH-WITH-NAMESPACE':
        s.hashWithNamespace = true;
        break;
      case '--SORT-HOSTS':
        s.sortHosts = true;
        runDistribution(s);
        break;
      case '--BINARY-PROTOCOL':
      case '--VERIFY-KEY':
      case '--TCP-NODELAY':
      case '--NOREPLY':
        break;
      default:
        throw new Error(`config option not understood by the test interpreter: ${option}`);
    }
  }
}

/** memcached_behavior_set(NAME, VALUE) for the behaviours that matter to placement. */
function applyBehavior(s: LibmemcachedState, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq < 0) throw new Error(`bad behavior step ${assignment}`);
  const name = assignment.slice(0, eq);
  const value = assignment.slice(eq + 1);
  const flag = (): boolean => parseUint(value, name) !== 0;
  switch (name) {
    case 'DISTRIBUTION': {
      const d = DISTRIBUTIONS.find((x) => x === value);
      if (d === undefined) throw new Error(`unknown distribution ${value}`);
      setDistribution(s, d);
      break;
    }
    case 'HASH':
      s.keyHash = hashByName(value); // no rebuild: the continuum keeps its point hash
      break;
    case 'KETAMA_HASH':
      s.distributionHash = hashByName(value);
      break;
    case 'KETAMA':
      setDistribution(s, flag() ? 'CONSISTENT_KETAMA' : 'MODULA');
      break;
    case 'KETAMA_WEIGHTED':
      if (!flag()) {
        setDistribution(s, 'CONSISTENT_KETAMA'); // = behavior_set(KETAMA, true); hash unchanged
      } else {
        s.keyHash = 'md5';
        s.distributionHash = 'md5';
        setDistribution(s, 'CONSISTENT_WEIGHTED');
      }
      break;
    case 'HASH_WITH_PREFIX_KEY':
      s.hashWithNamespace = flag();
      break;
    case 'SORT_HOSTS':
      s.sortHosts = flag();
      runDistribution(s);
      break;
    case 'BINARY_PROTOCOL':
    case 'VERIFY_KEY':
    case 'TCP_NODELAY':
    case 'NO_BLOCK':
    case 'NOREPLY':
      break;
    default:
      throw new Error(`behavior not understood by the test interpreter: ${name}`);
  }
}

/** Replays `steps` and returns the state and what a Router needs to reproduce it. */
export function replaySteps(steps: readonly string[]): Replayed {
  let s: LibmemcachedState | null = null;
  const need = (step: string): LibmemcachedState => {
    if (s === null) throw new Error(`step before create/config: ${step}`);
    return s;
  };
  for (const step of steps) {
    const colon = step.indexOf(':');
    const verb = colon < 0 ? step : step.slice(0, colon);
    const arg = colon < 0 ? '' : step.slice(colon + 1);
    switch (verb) {
      case 'create':
        s = freshState();
        break;
      case 'config':
        s = freshState();
        applyConfig(s, arg);
        break;
      case 'behavior':
        applyBehavior(need(step), arg);
        break;
      case 'add': {
        // HOST:PORT:WEIGHT, split from the right (the host may be an IPv6 address)
        const m = /^(.*):(\d+):(\d+)$/.exec(arg);
        if (m === null) throw new Error(`bad add step ${step}`);
        addServer(need(step), m[1]!, parseUint(m[2]!, 'port'), parseUint(m[3]!, 'weight'));
        break;
      }
      case 'socket': {
        const m = /^(.*):(\d+)$/.exec(arg);
        if (m === null) throw new Error(`bad socket step ${step}`);
        serverAdd(need(step), m[1]!, 0, parseUint(m[2]!, 'weight'), 'SOCKET');
        break;
      }
      case 'namespace':
        need(step).namespace = arg;
        break;
      default:
        throw new Error(`step not understood by the test interpreter: ${step}`);
    }
  }
  if (s === null) throw new Error('no create/config step');
  const state: LibmemcachedState = s;
  return { state, servers: state.servers.map(({ host, port, weight }) => ({ host, port, weight })), options: routerOptions(state) };
}

function routerDistribution(d: LibmemcachedDistribution): RouterDistribution {
  switch (d) {
    case 'MODULA':
      return 'modula';
    case 'CONSISTENT':
    case 'CONSISTENT_KETAMA':
    case 'CONSISTENT_WEIGHTED':
      return 'consistent';
    case 'CONSISTENT_KETAMA_SPY':
      return 'spy';
    default:
      throw new Error(`distribution ${d} has no Router equivalent`);
  }
}

function routerOptions(s: LibmemcachedState): RouterOptions {
  const options: RouterOptions = {
    distribution: routerDistribution(s.distribution),
    weighted: s.weighted,
    keyHash: s.keyHash,
    pointHash: s.pointHash,
    hashWithNamespace: s.hashWithNamespace,
  };
  if (s.namespace !== null) options.namespace = new TextEncoder().encode(s.namespace);
  return options;
}
