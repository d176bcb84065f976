// memcached.conf → typed, validated Settings (every key: README.md, "memcached.conf").
//
// [general] keeps every key the C module res_memcached read (ttl, binary_proto, hash, keyprefix,
// server) with the same meaning, and adds the client library's knobs (protocol= names the wire
// protocol; binary_proto= stays as its yes/no spelling); [agi] configures the FastAGI listener. Keys and section names match case-insensitively, as in Asterisk.
//
// Rules: a bad value is a ConfigError naming its file and line; an unknown key or section, a
// repeated single-valued key (the last one wins) and an empty value (the default is used) are
// warnings, never fatal, so a config written for the C module keeps working.

import { hostname } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';

import { DISTRIBUTIONS, HASH_NAMES, type DistributionName, type HashName } from '../cluster/names.js';
import { parseServerAddress, ServerAddressError, type ServerAddress } from '../cluster/server-address.js';
import { ConfigError, parseConfigFile, sectionsNamed, type ConfigEntry, type ParsedConfig, type ParseOptions } from './asterisk-conf.js';
import { CidrError, isLoopback, parseCidr, parseIp, type Cidr } from './cidr.js';

import { CLIENT_DEFAULTS } from '../cluster/defaults.js';
import type { Protocol } from '../memcache/protocol/wire-codec.js';
import { MemcachedError } from '../util/errors.js';
import { MAX_KEY_BYTES } from '../util/keys.js';
import { checkKeyPrefix, MAX_EXPTIME as MAX_TTL, MAX_KEY_PREFIX_BYTES } from '../util/request-rules.js';
export { MAX_EXPTIME as MAX_TTL, MAX_KEY_PREFIX_BYTES } from '../util/request-rules.js';
export { ConfigError } from './asterisk-conf.js';

/** A server= line: the parsed address and where it was written, for messages that name the line. */
export interface ConfiguredServerAddress extends ServerAddress {
  readonly file: string;
  readonly line: number;
}

export type ResultFormat = 'number' | 'name';

/**
 * The tls= lines as the config writes them (files as paths); the daemon reads the files into the
 * connection's TlsSettings (src/memcache/connection.ts) in src/daemon/client-options.ts.
 */
export interface ConfiguredTls {
  enabled: boolean;
  /** Absolute paths (a relative path in the config is taken from the config file's directory). */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Check the server certificate and name (default yes). */
  verify: boolean;
  /** Name sent in SNI and checked against the certificate (default: the server's host). */
  serverName?: string;
}

export interface AclRule {
  readonly action: 'permit' | 'deny';
  readonly cidr: Cidr;
  readonly file: string;
  readonly line: number;
}

export interface AgiSettings {
  bindaddr: string;
  port: number;
  /** The permit= networks, in order (also in `rules`). */
  permit: Cidr[];
  /** The deny= networks, in order (also in `rules`). */
  deny: Cidr[];
  /** permit= and deny= interleaved in file order: what isPermitted evaluates. */
  rules: AclRule[];
  maxSessions: number;
  /** Deadline for Asterisk's AGI environment block after connecting (ms). */
  envTimeoutMs: number;
  /** Longest line accepted from Asterisk (bytes). */
  maxLineLength: number;
  /** Longest wait for Asterisk's answer to one command (ms). */
  answerTimeoutMs: number;
  /** The lines that set bindaddr= and port=, so a listen failure can name them; null: the default. */
  bindaddrAt: ConfigLocation | null;
  portAt: ConfigLocation | null;
}

/** [http]: the HTTP listener for /metrics and /health (src/http/server.ts). */
export interface HttpSettings {
  enabled: boolean;
  bindaddr: string;
  port: number;
  /** permit= and deny= interleaved in file order, evaluated by isPermitted as for [agi]. */
  rules: AclRule[];
  /** Open connections at once; more are cut at accept. */
  maxConnections: number;
  /** Whole request (headers and body) deadline (ms); also bounds a client that trickles headers. */
  requestTimeoutMs: number;
  /** Idle keep-alive connection lifetime between requests (ms). */
  keepAliveTimeoutMs: number;
  bindaddrAt: ConfigLocation | null;
  portAt: ConfigLocation | null;
}

export interface ConfigLocation {
  readonly file: string;
  readonly line: number;
}

/** Where and how often the embedded store is saved (embedded_snapshot=, embedded_snapshot_interval=). */
export interface SnapshotSettings {
  /** Absolute path of the snapshot file. */
  path: string;
  /**
   * False for the built-in default path, which a daemon that may not write there (not run as a
   * service) replaces with one in the user's state directory; true for a path the config names.
   */
  configured: boolean;
  /** Background snapshots this often (ms); 0: only when the daemon stops. */
  intervalMs: number;
}

export interface ConfigWarning {
  file: string;
  line: number;
  message: string;
}

/** [ami]: the link to Asterisk's Manager Interface (src/ami/client.ts). */
export interface AmiSettings {
  /** enabled=, by default on once username= is given. */
  enabled: boolean;
  host: string;
  port: number;
  username: string;
  secret: string;
  /** plain sends Secret:; md5 answers a Challenge, so the secret never crosses the wire. */
  auth: 'plain' | 'md5';
  /** TCP connect + banner + Login (ms). */
  connectTimeoutMs: number;
  /** Longest wait between two connection attempts (ms); the first waits 500 ms. */
  reconnectMaxMs: number;
}

export interface Settings {
  ttl: number;
  /** protocol=, or binary_proto= (yes: binary, no: text); default binary. */
  protocol: Protocol;
  /** protocol === 'binary' (the C module's binary_proto=). */
  binaryProto: boolean;
  hash: HashName;
  /** Hash of the consistent continuum's points (continuum_hash=; empty: `hash`). */
  continuumHash: HashName;
  /** Continuum point names of a Unix socket server (ClientOptions.socketPointNames). */
  socketPointNames: 'path' | 'path:0';
  keyPrefix: string;
  servers: ConfiguredServerAddress[];
  distribution: DistributionName;
  hashWithPrefix: boolean;
  connectTimeoutMs: number;
  timeoutMs: number;
  /** From retry_timeout, which is in seconds (fractions allowed). */
  retryTimeoutMs: number;
  serverFailureLimit: number;
  removeFailedServers: boolean;
  maxKeyLength: number;
  maxValueLength: number;
  counterTtl: number;
  resultFormat: ResultFormat;
  /** node_id=: this PBX's name in lease values (src/leases/engine.ts); default the host name. */
  nodeId: string;
  /** lease_ttl=: seconds a lease or lock lives after it was taken or last refreshed. */
  leaseTtl: number;
  /** Memory cap of the embedded store (bytes), used when there is no server=. */
  embeddedMaxBytes: number;
  /** null: the embedded store is not saved (embedded_snapshot=no). */
  embeddedSnapshot: SnapshotSettings | null;
  sasl: { username: string; password: string } | null;
  tls: ConfiguredTls;
  agi: AgiSettings;
  http: HttpSettings;
  ami: AmiSettings;
  warnings: ConfigWarning[];
  /** The file read; null for the built-in defaults. */
  source: string | null;
}

/**
 * Every default, by config key and in config units (retry_timeout in seconds), for docs and
 * `show`. Chosen for call flows: a dead server costs a call at most one connect_timeout, then
 * answers at once with a code until retry_timeout has passed.
 */
export const CONFIG_DEFAULTS = {
  general: {
    ttl: 0,
    protocol: CLIENT_DEFAULTS.protocol,
    binary_proto: true,
    /** md5 when distribution=ketama_weighted and no hash= is given. */
    hash: 'default',
    /** Empty: the key hash (hash=). */
    continuum_hash: '',
    socket_point_names: 'path' as 'path' | 'path:0',
    keyprefix: '',
    distribution: CLIENT_DEFAULTS.distribution,
    hash_with_prefix: false,
    connect_timeout: CLIENT_DEFAULTS.connectTimeoutMs,
    timeout: CLIENT_DEFAULTS.timeoutMs,
    retry_timeout: CLIENT_DEFAULTS.retryTimeoutMs / 1000,
    server_failure_limit: CLIENT_DEFAULTS.serverFailureLimit,
    remove_failed_servers: CLIENT_DEFAULTS.removeFailedServers,
    max_key_length: 64,
    max_value_length: 4096,
    counter_ttl: 0,
    result_format: 'number',
    /**
     * Seconds. Without an AMI link nothing refreshes a lease, so it must outlive the longest call
     * (an hour covers most; raise it for longer calls); a lease whose hangup handler never ran is
     * freed after it.
     */
    lease_ttl: 3600,
    /** MiB. */
    embedded_max_memory: 64,
    /** Where a service keeps its state (systemd's StateDirectory=res-memcached). */
    embedded_snapshot: '/var/lib/res-memcached/store.snapshot',
    /** Seconds. */
    embedded_snapshot_interval: 60,
    tls: false,
    tls_verify: true,
  },
  agi: {
    bindaddr: '127.0.0.1',
    port: 4573,
    max_sessions: 1000,
    env_timeout: 5000,
    max_line_length: 8192,
    answer_timeout: 10_000,
  },
  http: {
    enabled: true,
    bindaddr: '127.0.0.1',
    port: 4574,
    max_connections: 256,
    request_timeout: 10_000,
    keepalive_timeout: 5000,
  },
  ami: {
    host: '127.0.0.1',
    port: 5038,
    /** Empty: no AMI link (unless enabled=yes, which then needs a username). */
    username: '',
    secret: '',
    auth: 'plain' as 'plain' | 'md5',
    connect_timeout: 5000,
    reconnect_max: 30_000,
  },
} as const;

const GENERAL_KEYS = new Set([
  'ttl', 'protocol', 'binary_proto', 'hash', 'keyprefix', 'server', 'distribution', 'hash_with_prefix',
  'continuum_hash', 'socket_point_names',
  'connect_timeout', 'timeout', 'retry_timeout', 'server_failure_limit', 'remove_failed_servers',
  'max_key_length', 'max_value_length', 'counter_ttl', 'result_format', 'node_id', 'lease_ttl', 'sasl_username',
  'sasl_password', 'embedded_max_memory', 'embedded_snapshot', 'embedded_snapshot_interval', 'tls', 'tls_ca', 'tls_cert', 'tls_key', 'tls_verify', 'tls_servername',
]);
const AGI_KEYS = new Set(['bindaddr', 'port', 'permit', 'deny', 'max_sessions', 'env_timeout', 'max_line_length', 'answer_timeout']);
const HTTP_KEYS = new Set(['enabled', 'bindaddr', 'port', 'permit', 'deny', 'max_connections', 'request_timeout', 'keepalive_timeout']);
const AMI_KEYS = new Set(['enabled', 'host', 'port', 'username', 'secret', 'auth', 'connect_timeout', 'reconnect_max']);
const REPEATABLE_KEYS = new Set(['server', 'permit', 'deny']);

/** Hash spellings of the C module's sample, mapped to the names libmemcached uses. */
const HASH_ALIASES: Readonly<Record<string, HashName>> = { fnv1_64a: 'fnv1a_64', fnv1_32a: 'fnv1a_32' };

/** Parse + validate. Throws ConfigError (missing file, malformed line, bad value). */
export function loadSettings(path: string, options: ParseOptions = {}): Settings {
  return settingsFromConfig(parseConfigFile(path, options));
}

/** The settings with no config file: no server= (the embedded store), the listener on 127.0.0.1. */
export function defaultSettings(): Settings {
  return { ...settingsFromConfig({ file: '(defaults)', sections: [], files: [] }), source: null };
}

/** Validates a parsed memcached.conf. Throws ConfigError on a bad value. */
export function settingsFromConfig(parsed: ParsedConfig): Settings {
  const warnings: ConfigWarning[] = [];
  warnUnknownSections(parsed, warnings);
  const general = new SectionReader(parsed, 'general', GENERAL_KEYS, AGI_KEYS, warnings);
  const agi = new SectionReader(parsed, 'agi', AGI_KEYS, GENERAL_KEYS, warnings);
  const ami = new SectionReader(parsed, 'ami', AMI_KEYS, new Set(), warnings);
  const http = new SectionReader(parsed, 'http', HTTP_KEYS, new Set(), warnings);

  const protocol = readProtocol(general);
  const distribution = general.choice('distribution', CONFIG_DEFAULTS.general.distribution, DISTRIBUTIONS);
  const keyPrefix = readKeyPrefix(general);
  const maxKeyLength = general.int('max_key_length', CONFIG_DEFAULTS.general.max_key_length, 1, MAX_KEY_BYTES);
  warnKeyRoom(general, keyPrefix, maxKeyLength);
  const ttl = general.int('ttl', CONFIG_DEFAULTS.general.ttl, 0, MAX_TTL);
  const hash = readHash(general, distribution);

  const settings: Settings = {
    ttl,
    protocol: protocol.name,
    binaryProto: protocol.name === 'binary',
    hash,
    continuumHash: readContinuumHash(general, hash),
    socketPointNames: general.choice('socket_point_names', CONFIG_DEFAULTS.general.socket_point_names, ['path', 'path:0'] as const),
    keyPrefix,
    servers: readServers(general),
    distribution,
    hashWithPrefix: general.bool('hash_with_prefix', CONFIG_DEFAULTS.general.hash_with_prefix),
    connectTimeoutMs: general.int('connect_timeout', CONFIG_DEFAULTS.general.connect_timeout, 1, 600_000),
    timeoutMs: general.int('timeout', CONFIG_DEFAULTS.general.timeout, 1, 600_000),
    retryTimeoutMs: general.secondsAsMs('retry_timeout', CONFIG_DEFAULTS.general.retry_timeout, 0, 86_400),
    serverFailureLimit: general.int('server_failure_limit', CONFIG_DEFAULTS.general.server_failure_limit, 1, 1_000_000),
    removeFailedServers: general.bool('remove_failed_servers', CONFIG_DEFAULTS.general.remove_failed_servers),
    maxKeyLength,
    maxValueLength: general.int('max_value_length', CONFIG_DEFAULTS.general.max_value_length, 1, 1_048_576),
    counterTtl: general.int('counter_ttl', CONFIG_DEFAULTS.general.counter_ttl, 0, MAX_TTL),
    resultFormat: general.choice('result_format', CONFIG_DEFAULTS.general.result_format, ['number', 'name'] as const),
    nodeId: readNodeId(general),
    // At most 30 days: memcached reads a larger exptime as an absolute Unix time.
    leaseTtl: general.int('lease_ttl', CONFIG_DEFAULTS.general.lease_ttl, 1, 2_592_000),
    embeddedMaxBytes: general.int('embedded_max_memory', CONFIG_DEFAULTS.general.embedded_max_memory, 1, 1_048_576) * 1_048_576,
    embeddedSnapshot: readSnapshot(general),
    sasl: readSasl(general, protocol),
    tls: readTls(general),
    agi: readAgi(agi),
    http: readHttp(http),
    ami: readAmi(ami),
    warnings,
    source: parsed.file,
  };
  warnDuplicateServers(settings.servers, warnings);
  return settings;
}

/**
 * Whether a FastAGI client at `address` (a socket's remoteAddress) may connect.
 *
 * - No permit= and no deny= line: everyone may (the listener binds 127.0.0.1 unless bindaddr says
 *   otherwise).
 * - Otherwise Asterisk's ACL rule (manager.conf, sip.conf): the rules are read in file order and
 *   the last one that matches the address decides.
 * - An address that no rule matches is let in only if there is no permit= line at all. So a
 *   deny-only list shuts out just the networks it names (as in Asterisk), and the usual Asterisk
 *   idiom `deny=0.0.0.0/0.0.0.0` + `permit=10.0.0.0/255.0.0.0` works as there, but a permit-only
 *   list means "only these" (Asterisk would let everyone in, which nobody writing permit= wants).
 * - `0.0.0.0/0` covers IPv4 clients, also seen as `::ffff:a.b.c.d`; `::/0` covers every client.
 * - With rules, an address that is not an IP address (a closed socket's undefined) is refused.
 */
export function isPermitted(address: string, agi: Pick<AgiSettings, 'rules'>): boolean {
  if (agi.rules.length === 0) return true;
  if (parseIp(address.trim().replace(/%.*$/, '')) === null) return false;
  let verdict: boolean | null = null;
  for (const rule of agi.rules) {
    if (rule.cidr.matches(address)) verdict = rule.action === 'permit';
  }
  return verdict ?? !agi.rules.some((r) => r.action === 'permit');
}

/** `file:line: message`, as the daemon logs a warning. */
export function formatWarning(warning: ConfigWarning): string {
  return warning.line > 0 ? `${warning.file}:${warning.line}: ${warning.message}` : `${warning.file}: ${warning.message}`;
}

/** The entries of every [name] section (case-insensitive), with typed readers for them. */
class SectionReader {
  private readonly byKey = new Map<string, ConfigEntry[]>();
  /** Known entries in reading order (permit=/deny= are evaluated interleaved). */
  private readonly sequence: ConfigEntry[] = [];
  private readonly warnedRepeats = new Set<string>();

  constructor(
    parsed: ParsedConfig,
    readonly section: string,
    known: ReadonlySet<string>,
    otherSection: ReadonlySet<string>,
    private readonly warnings: ConfigWarning[],
  ) {
    // Several [general] sections are read as one (the C module only saw the first: a trap).
    for (const s of sectionsNamed(parsed, section)) {
      for (const entry of s.entries) {
        const key = entry.key.toLowerCase();
        if (known.has(key)) {
          this.byKey.set(key, [...(this.byKey.get(key) ?? []), entry]);
          this.sequence.push(entry);
        } else this.warn(entry, unknownKeyMessage(entry, key, section, known, otherSection));
      }
    }
  }

  warn(at: { file: string; line: number }, message: string): void {
    this.warnings.push({ file: at.file, line: at.line, message });
  }

  /** Every line of a repeatable key. */
  all(key: string): ConfigEntry[] {
    return this.byKey.get(key) ?? [];
  }

  /** Every line of any of `keys`, in reading order. */
  allOf(keys: readonly string[]): ConfigEntry[] {
    return this.sequence.filter((e) => keys.includes(e.key.toLowerCase()));
  }

  /** The last line of a single-valued key (earlier ones get a warning, once), or undefined. */
  last(key: string): ConfigEntry | undefined {
    const entries = this.all(key);
    const winner = entries[entries.length - 1];
    if (winner && !REPEATABLE_KEYS.has(key) && !this.warnedRepeats.has(key)) {
      this.warnedRepeats.add(key);
      for (const earlier of entries.slice(0, -1)) {
        this.warn(earlier, `${key}= is set again at ${winner.file}:${winner.line}; that later line wins`);
      }
    }
    return winner;
  }

  /** The last non-empty value; an empty one gets a warning and means the default. */
  value(key: string, defaultText: string): ConfigEntry | undefined {
    const entry = this.last(key);
    if (entry && entry.value === '') {
      this.warn(entry, `${key}= is empty; using the default (${defaultText})`);
      return undefined;
    }
    return entry;
  }

  int(key: string, defaultValue: number, min: number, max: number): number {
    const entry = this.value(key, String(defaultValue));
    if (!entry) return defaultValue;
    if (!/^[0-9]+$/.test(entry.value) || Number(entry.value) < min || Number(entry.value) > max) {
      throw bad(entry, `a whole number from ${min} to ${max}`);
    }
    return Number(entry.value);
  }

  /** Seconds, fractions allowed (retry_timeout=0.5), returned in whole milliseconds. */
  secondsAsMs(key: string, defaultSeconds: number, min: number, max: number): number {
    const entry = this.value(key, String(defaultSeconds));
    const seconds = entry ? Number(entry.value) : defaultSeconds;
    if (entry && (!/^[0-9]+(\.[0-9]+)?$/.test(entry.value) || seconds < min || seconds > max)) {
      throw bad(entry, `a number of seconds from ${min} to ${max} (fractions allowed)`);
    }
    return Math.round(seconds * 1000);
  }

  /** Asterisk's ast_true()/ast_false() spellings. */
  bool(key: string, defaultValue: boolean): boolean {
    const entry = this.value(key, defaultValue ? 'yes' : 'no');
    if (!entry) return defaultValue;
    const word = entry.value.toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    throw bad(entry, 'yes or no (also true/false, on/off, 1/0, y/n, t/f)');
  }

  choice<T extends string>(key: string, defaultValue: T, allowed: readonly T[]): T {
    const entry = this.value(key, defaultValue);
    if (!entry) return defaultValue;
    const found = allowed.find((a) => a === entry.value.toLowerCase());
    if (found === undefined) throw bad(entry, `one of ${allowed.join(', ')}`);
    return found;
  }

  /** A free-text value; empty means "not set". */
  text(key: string): ConfigEntry | undefined {
    const entry = this.last(key);
    return entry && entry.value !== '' ? entry : undefined;
  }
}

const TRUE_WORDS = new Set(['yes', 'true', 'y', 't', '1', 'on']);
const FALSE_WORDS = new Set(['no', 'false', 'n', 'f', '0', 'off']);

function bad(entry: ConfigEntry, expected: string): ConfigError {
  return new ConfigError(entry.file, entry.line, `${entry.key}=${entry.value}: expected ${expected}`);
}

function unknownKeyMessage(entry: ConfigEntry, key: string, section: string, known: ReadonlySet<string>, otherSection: ReadonlySet<string>): string {
  if (key === 'prefixkey') {
    // The C module's sample says prefixkey=, but the module only ever read keyprefix=: honouring
    // the sample's spelling now would change the keys of boxes migrating from the C module.
    return 'prefixkey= is ignored, as the C module ignored it (its sample misspelled keyprefix); write keyprefix= to set a key prefix';
  }
  const other = section === 'general' ? 'agi' : 'general';
  if (otherSection.has(key)) return `${entry.key}= belongs in [${other}], not [${section}]; ignored`;
  // A misspelt key is ignored and its default used, which can move every key (distribtion=).
  const near = nearestKey(key, known);
  return `unknown key ${entry.key}= in [${section}]; ignored${near === undefined ? '' : ` (did you mean ${near}=?)`}`;
}

/** The known key nearest `key`, if it is at most two edits away (one for a short key). */
function nearestKey(key: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = key.length <= 4 ? 2 : 3;
  for (const candidate of known) {
    const d = editDistance(key, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Optimal string alignment distance (Levenshtein plus adjacent swaps). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

function warnUnknownSections(parsed: ParsedConfig, warnings: ConfigWarning[]): void {
  for (const section of parsed.sections) {
    const name = section.name.toLowerCase();
    if (name !== 'general' && name !== 'agi' && name !== 'http' && name !== 'ami') {
      warnings.push({ file: section.file, line: section.line, message: `unknown section [${section.name}]; ignored (known: [general], [agi], [http], [ami])` });
    }
  }
}

function readHash(general: SectionReader, distribution: DistributionName): HashName {
  // PHP Memcached's OPT_LIBKETAMA_COMPATIBLE = ketama_weighted + MD5 key hashing.
  const fallback: HashName = distribution === 'ketama_weighted' ? 'md5' : 'default';
  const entry = general.value('hash', fallback);
  return entry ? hashNamed(general, entry) : fallback;
}

/**
 * continuum_hash= models a libmemcached user that changed the key hash after adding its servers
 * (PHP Memcached: setOption(OPT_HASH) after addServers()): libmemcached keeps the continuum it
 * built with the earlier hash (src/libmemcached/behavior.cc, MEMCACHED_BEHAVIOR_HASH). Empty, as
 * in the sample, means the key hash.
 */
function readContinuumHash(general: SectionReader, hash: HashName): HashName {
  const entry = general.last('continuum_hash');
  return entry === undefined || entry.value === '' ? hash : hashNamed(general, entry);
}

function hashNamed(general: SectionReader, entry: ConfigEntry): HashName {
  const word = entry.value.toLowerCase();
  const alias = HASH_ALIASES[word];
  if (alias) {
    general.warn(entry, `${entry.key}=${entry.value} is read as ${alias} (the C module's sample spelling; note the C module itself did not recognise it and used "default")`);
    return alias;
  }
  const found = HASH_NAMES.find((h) => h === word);
  if (found === undefined) throw bad(entry, `one of ${HASH_NAMES.join(', ')}`);
  return found;
}

function readKeyPrefix(general: SectionReader): string {
  const entry = general.last('keyprefix');
  if (!entry) return CONFIG_DEFAULTS.general.keyprefix;
  // The client and the embedded store refuse such a prefix when they are made; checked here with
  // their own rule, so the refusal names this line instead of stopping the daemon at start.
  try {
    checkKeyPrefix(Buffer.from(entry.value, 'utf8'));
  } catch (err) {
    if (!(err instanceof MemcachedError)) throw err;
    throw bad(entry, `a prefix of printable ASCII without spaces, at most ${MAX_KEY_PREFIX_BYTES} bytes (${err.message})`);
  }
  return entry.value;
}

/** Printable ASCII without spaces, at most 64 bytes: it is written into every lease's value. */
const NODE_ID = /^[\x21-\x7e]{1,64}$/;

/** node_id=, else the host name (made to fit NODE_ID: a host name rarely needs it). */
function readNodeId(general: SectionReader): string {
  const entry = general.last('node_id');
  if (entry === undefined) return defaultNodeId();
  if (!NODE_ID.test(entry.value)) throw bad(entry, 'a name of printable ASCII without spaces, at most 64 bytes');
  return entry.value;
}

export function defaultNodeId(): string {
  const name = hostname().replace(/[^\x21-\x7e]/g, '_').slice(0, 64);
  return name === '' ? 'localhost' : name;
}

/** The prefix and the longest allowed key must fit memcached's 250 bytes together. */
function warnKeyRoom(general: SectionReader, keyPrefix: string, maxKeyLength: number): void {
  const room = MAX_KEY_BYTES - Buffer.byteLength(keyPrefix, 'utf8');
  if (maxKeyLength <= room) return;
  const at = general.all('max_key_length').at(-1) ?? general.all('keyprefix').at(-1);
  if (at) general.warn(at, `keyprefix + max_key_length exceed memcached's ${MAX_KEY_BYTES} bytes: keys longer than ${room} will be refused`);
}

/**
 * server= lines, libmemcached's syntax (src/cluster/server-address.ts):
 *   host | host:port | host:port/?weight | [ipv6]:port[/?weight] | bare-ipv6 | /unix/socket[/?weight]
 * The port defaults to 11211, the weight to 1 (0 also means 1).
 */
function readServers(general: SectionReader): ConfiguredServerAddress[] {
  return general.all('server').map((entry) => {
    if (entry.value === '') throw new ConfigError(entry.file, entry.line, 'server= needs an address (host[:port][/?weight] or /path/to/socket)');
    let address: ServerAddress;
    try {
      address = parseServerAddress(entry.value);
    } catch (err) {
      if (!(err instanceof ServerAddressError)) throw err;
      throw new ConfigError(entry.file, entry.line, `server=${entry.value}: ${err.message}`);
    }
    return { ...address, file: entry.file, line: entry.line };
  });
}

function warnDuplicateServers(servers: readonly ConfiguredServerAddress[], warnings: ConfigWarning[]): void {
  const seen = new Map<string, ConfiguredServerAddress>();
  for (const server of servers) {
    const id = `${server.kind} ${server.host.toLowerCase()} ${server.port}`;
    const first = seen.get(id);
    if (first) {
      warnings.push({ file: server.file, line: server.line, message: `server=${server.text} repeats ${first.file}:${first.line}; it gets a second share of the keys` });
    } else {
      seen.set(id, server);
    }
  }
}

const PROTOCOLS: readonly Protocol[] = ['binary', 'text', 'meta'];

/**
 * protocol=, or the C module's binary_proto= (yes: binary, no: text). Both may be given if they
 * agree; when they do not, neither line can be trusted to be the one meant.
 */
function readProtocol(general: SectionReader): { name: Protocol; at: ConfigEntry | undefined } {
  const binaryProto = general.bool('binary_proto', CONFIG_DEFAULTS.general.binary_proto);
  const legacy = general.text('binary_proto');
  const implied: Protocol = binaryProto ? 'binary' : 'text';
  const name = general.choice('protocol', implied, PROTOCOLS);
  const entry = general.text('protocol');
  if (entry !== undefined && legacy !== undefined && name !== implied) {
    throw new ConfigError(
      entry.file,
      entry.line,
      `protocol=${entry.value} disagrees with binary_proto=${legacy.value} at ${legacy.file}:${legacy.line} (which means protocol=${implied}); keep one of the two lines`,
    );
  }
  return { name, at: entry ?? legacy };
}

function readSasl(general: SectionReader, protocol: { name: Protocol; at: ConfigEntry | undefined }): Settings['sasl'] {
  const username = general.text('sasl_username');
  const password = general.text('sasl_password');
  if (!username && !password) return null;
  if (!username || !password) {
    const given = (username ?? password) as ConfigEntry;
    throw new ConfigError(given.file, given.line, 'SASL needs both sasl_username= and sasl_password=');
  }
  // memcached speaks SASL only in the binary protocol (the connection authenticates only there:
  // src/memcache/connection.ts), so SASL over text or meta would silently go unauthenticated.
  if (protocol.name !== 'binary') {
    const at = protocol.at === undefined ? '' : ` (${protocol.at.key}=${protocol.at.value} at ${protocol.at.file}:${protocol.at.line})`;
    throw new ConfigError(username.file, username.line, `SASL needs the binary protocol: protocol=binary or binary_proto=yes; memcached has no SASL in the ${protocol.name} protocol${at}`);
  }
  return { username: username.value, password: password.value };
}

function readTls(general: SectionReader): ConfiguredTls {
  const enabled = general.bool('tls', CONFIG_DEFAULTS.general.tls);
  const verify = general.bool('tls_verify', CONFIG_DEFAULTS.general.tls_verify);
  const ca = general.text('tls_ca');
  const cert = general.text('tls_cert');
  const key = general.text('tls_key');
  const serverName = general.text('tls_servername');
  if (!enabled) {
    for (const entry of [ca, cert, key, serverName]) {
      if (entry) general.warn(entry, `${entry.key}= has no effect while tls=no`);
    }
    return { enabled, verify };
  }
  if (Boolean(cert) !== Boolean(key)) {
    const given = (cert ?? key) as ConfigEntry;
    throw new ConfigError(given.file, given.line, 'a client certificate needs both tls_cert= and tls_key=');
  }
  const tls: ConfiguredTls = { enabled, verify };
  if (ca) tls.caFile = pathFrom(ca);
  if (cert) tls.certFile = pathFrom(cert);
  if (key) tls.keyFile = pathFrom(key);
  if (serverName) tls.serverName = serverName.value;
  return tls;
}

function readSnapshot(general: SectionReader): SnapshotSettings | null {
  const intervalMs = general.secondsAsMs('embedded_snapshot_interval', CONFIG_DEFAULTS.general.embedded_snapshot_interval, 0, 86_400);
  const entry = general.value('embedded_snapshot', CONFIG_DEFAULTS.general.embedded_snapshot);
  const word = entry?.value.toLowerCase();
  if (entry === undefined || TRUE_WORDS.has(word as string)) return { path: CONFIG_DEFAULTS.general.embedded_snapshot, configured: false, intervalMs };
  if (FALSE_WORDS.has(word as string)) return null;
  if (entry.value.endsWith('/')) throw bad(entry, 'a file path (not a directory), yes for the default, or no');
  return { path: pathFrom(entry), configured: true, intervalMs };
}

/** A path in the config, relative to the file it is written in. */
function pathFrom(entry: ConfigEntry): string {
  return isAbsolute(entry.value) ? entry.value : resolve(dirname(entry.file), entry.value);
}

function readAgi(agi: SectionReader): AgiSettings {
  const rules = agi.allOf(['permit', 'deny']).map((entry) => readRule(agi, entry));
  const settings: AgiSettings = {
    bindaddr: readBindaddr(agi),
    port: agi.int('port', CONFIG_DEFAULTS.agi.port, 1, 65_535),
    permit: rules.filter((r) => r.action === 'permit').map((r) => r.cidr),
    deny: rules.filter((r) => r.action === 'deny').map((r) => r.cidr),
    rules,
    maxSessions: agi.int('max_sessions', CONFIG_DEFAULTS.agi.max_sessions, 1, 100_000),
    envTimeoutMs: agi.int('env_timeout', CONFIG_DEFAULTS.agi.env_timeout, 1, 600_000),
    maxLineLength: agi.int('max_line_length', CONFIG_DEFAULTS.agi.max_line_length, 1024, 1_048_576),
    answerTimeoutMs: agi.int('answer_timeout', CONFIG_DEFAULTS.agi.answer_timeout, 1, 600_000),
    bindaddrAt: locationOf(agi.text('bindaddr')),
    portAt: locationOf(agi.text('port')),
  };
  if (rules.length === 0 && !isLoopbackBind(settings.bindaddr)) {
    const at = agi.all('bindaddr').at(-1);
    if (at) agi.warn(at, `the FastAGI listener on ${settings.bindaddr} accepts every client: add permit= lines for your Asterisk servers`);
  }
  return settings;
}

/** Same bindaddr= and permit=/deny= rules as [agi] (readBindaddr, readRule). */
function readHttp(http: SectionReader): HttpSettings {
  const rules = http.allOf(['permit', 'deny']).map((entry) => readRule(http, entry));
  const settings: HttpSettings = {
    enabled: http.bool('enabled', CONFIG_DEFAULTS.http.enabled),
    bindaddr: readBindaddr(http),
    port: http.int('port', CONFIG_DEFAULTS.http.port, 1, 65_535),
    rules,
    maxConnections: http.int('max_connections', CONFIG_DEFAULTS.http.max_connections, 1, 100_000),
    requestTimeoutMs: http.int('request_timeout', CONFIG_DEFAULTS.http.request_timeout, 100, 600_000),
    keepAliveTimeoutMs: http.int('keepalive_timeout', CONFIG_DEFAULTS.http.keepalive_timeout, 100, 600_000),
    bindaddrAt: locationOf(http.text('bindaddr')),
    portAt: locationOf(http.text('port')),
  };
  if (settings.enabled && rules.length === 0 && !isLoopbackBind(settings.bindaddr)) {
    const at = http.all('bindaddr').at(-1);
    if (at) http.warn(at, `the HTTP listener on ${settings.bindaddr} accepts every client: add permit= lines for your monitoring hosts`);
  }
  return settings;
}

function locationOf(entry: ConfigEntry | undefined): ConfigLocation | null {
  return entry ? { file: entry.file, line: entry.line } : null;
}

function readAmi(ami: SectionReader): AmiSettings {
  const user = ami.text('username');
  const secret = ami.last('secret');
  const enabledAt = ami.value('enabled', 'yes once username= is given');
  const enabled = enabledAt === undefined ? user !== undefined : ami.bool('enabled', false);
  // Checked here, at the line that asks for the link, rather than as a refused Login at run time.
  if (enabled && user === undefined) throw new ConfigError(enabledAt!.file, enabledAt!.line, `${enabledAt!.key}=${enabledAt!.value} needs username= (and secret=) in [ami]`);
  if (enabled && (secret === undefined || secret.value === '')) {
    const at = secret ?? user!;
    throw new ConfigError(at.file, at.line, 'the AMI link needs secret= (the secret of this username in manager.conf)');
  }
  return {
    enabled,
    host: ami.text('host')?.value ?? CONFIG_DEFAULTS.ami.host,
    port: ami.int('port', CONFIG_DEFAULTS.ami.port, 1, 65_535),
    username: user?.value ?? CONFIG_DEFAULTS.ami.username,
    secret: secret?.value ?? CONFIG_DEFAULTS.ami.secret,
    auth: ami.choice('auth', CONFIG_DEFAULTS.ami.auth, ['plain', 'md5'] as const),
    connectTimeoutMs: ami.int('connect_timeout', CONFIG_DEFAULTS.ami.connect_timeout, 1, 600_000),
    reconnectMaxMs: ami.int('reconnect_max', CONFIG_DEFAULTS.ami.reconnect_max, 500, 3_600_000),
  };
}

function readRule(agi: SectionReader, entry: ConfigEntry): AclRule {
  const action = entry.key.toLowerCase() === 'permit' ? 'permit' : 'deny';
  if (entry.value === '') throw new ConfigError(entry.file, entry.line, `${action}= needs a network (10.0.0.0/8, 192.168.1.0/255.255.255.0, ::1, ...)`);
  let cidr: Cidr;
  try {
    cidr = parseCidr(entry.value);
  } catch (err) {
    if (!(err instanceof CidrError)) throw err;
    throw new ConfigError(entry.file, entry.line, `${entry.key}=${entry.value}: ${err.message}`);
  }
  if (cidr.hostBitsSet) agi.warn(entry, `${entry.key}=${entry.value} has host bits set; it means the whole network`);
  return { action, cidr, file: entry.file, line: entry.line };
}

/**
 * An IP address (IPv6 with or without brackets, with a %zone for link-local) or `localhost`.
 * Asterisk's own bindaddr= takes IP addresses only (ast_sockaddr_parse in main/netsock2.c asks
 * getaddrinfo for AI_NUMERICHOST); a name would be resolved only at listen, to one of its
 * addresses, and a typo would surface there with no line, so names other than localhost are refused.
 */
function readBindaddr(agi: SectionReader): string {
  const entry = agi.value('bindaddr', CONFIG_DEFAULTS.agi.bindaddr);
  if (!entry) return CONFIG_DEFAULTS.agi.bindaddr;
  const host = entry.value.startsWith('[') && entry.value.endsWith(']') ? entry.value.slice(1, -1) : entry.value;
  if (host.toLowerCase() === 'localhost') return host;
  const zone = host.includes(':') ? /%[A-Za-z0-9._-]+$/.exec(host) : null;
  if (parseIp(zone ? host.slice(0, zone.index) : host) === null) {
    throw bad(entry, 'an IP address to listen on (0.0.0.0, 127.0.0.1, ::, [::1], ...) or localhost; host names are not resolved');
  }
  return host;
}

function isLoopbackBind(bindaddr: string): boolean {
  return bindaddr.toLowerCase() === 'localhost' || isLoopback(bindaddr);
}
