// memcached.conf's [ami] → AmiClient's options: the one place the two meet (as
// src/daemon/client-options.ts is for the memcached client).

import { AMI_DEFAULT_BACKOFF } from '../ami/backoff.js';
import type { AmiClientOptions } from '../ami/client.js';
import type { AmiSettings } from '../config/settings.js';

/** null when the link is off (no username=, or enabled=no). The caller adds its onEvent. */
export function amiClientOptionsFromSettings(ami: AmiSettings): Omit<AmiClientOptions, 'onEvent'> | null {
  if (!ami.enabled) return null;
  return {
    host: ami.host,
    port: ami.port,
    username: ami.username,
    secret: ami.secret,
    authType: ami.auth,
    connectTimeoutMs: ami.connectTimeoutMs,
    backoff: { initialMs: Math.min(AMI_DEFAULT_BACKOFF.initialMs, ami.reconnectMaxMs), maxMs: ami.reconnectMaxMs },
  };
}
