// memcached.conf settings → the client library's options: the one place the two meet.

import { readFileSync } from 'node:fs';
import type { ClientOptions } from '../cluster/client.js';
import type { Settings } from '../config/settings.js';
import type { TlsSettings } from '../memcache/connection.js';

export function clientOptionsFromSettings(settings: Settings): ClientOptions {
  return {
    servers: settings.servers.map((s) => ({ kind: s.kind, host: s.host, port: s.port, weight: s.weight, text: s.text })),
    protocol: settings.binaryProto ? 'binary' : 'text',
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
    tls: tlsFromSettings(settings.tls),
  };
}

function tlsFromSettings(tls: Settings['tls']): TlsSettings | null {
  if (!tls.enabled) return null;
  const out: TlsSettings = { verify: tls.verify };
  if (tls.caFile !== undefined) out.ca = readFileSync(tls.caFile);
  if (tls.certFile !== undefined) out.cert = readFileSync(tls.certFile);
  if (tls.keyFile !== undefined) out.key = readFileSync(tls.keyFile);
  if (tls.serverName !== undefined) out.servername = tls.serverName;
  return out;
}
