// memcached.conf settings → the client library's options: the one place the two meet.

import { readFileSync } from 'node:fs';
import type { ClientOptions } from '../cluster/client.js';
import { describeReadError } from '../config/asterisk-conf.js';
import { ConfigError, type Settings } from '../config/settings.js';
import type { TlsSettings } from '../memcache/connection.js';

export function clientOptionsFromSettings(settings: Settings): ClientOptions {
  return {
    servers: settings.servers.map((s) => ({ kind: s.kind, host: s.host, port: s.port, weight: s.weight, text: s.text })),
    protocol: settings.protocol,
    distribution: settings.distribution,
    hash: settings.hash,
    continuumHash: settings.continuumHash,
    socketPointNames: settings.socketPointNames,
    keyPrefix: settings.keyPrefix,
    hashWithPrefix: settings.hashWithPrefix,
    connectTimeoutMs: settings.connectTimeoutMs,
    timeoutMs: settings.timeoutMs,
    retryTimeoutMs: settings.retryTimeoutMs,
    serverFailureLimit: settings.serverFailureLimit,
    removeFailedServers: settings.removeFailedServers,
    sasl: settings.sasl,
    tls: tlsFromSettings(settings.tls, settings.source),
  };
}

function tlsFromSettings(tls: Settings['tls'], source: string | null): TlsSettings | null {
  if (!tls.enabled) return null;
  const out: TlsSettings = { verify: tls.verify };
  if (tls.caFile !== undefined) out.ca = readTlsFile('tls_ca', tls.caFile, source);
  if (tls.certFile !== undefined) out.cert = readTlsFile('tls_cert', tls.certFile, source);
  if (tls.keyFile !== undefined) out.key = readTlsFile('tls_key', tls.keyFile, source);
  if (tls.serverName !== undefined) out.servername = tls.serverName;
  return out;
}

/** A certificate or key named in the config; one that cannot be read is a ConfigError naming the key and the file. */
function readTlsFile(key: string, path: string, source: string | null): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(source ?? '(defaults)', 0, `${key}=${path}: cannot read: ${describeReadError(err)}`, { cause: err });
  }
}
