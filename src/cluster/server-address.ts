// Server addresses in libmemcached's syntax, as `server=` lines and ClientOptions.servers use it:
//   host            port 11211, weight 1
//   host:port
//   host:port/?3    weight 3 (libmemcached's config-string form)
//   [::1]:11212     IPv6 with a port; a bare IPv6 address takes port 11211
//   /run/mc.sock    Unix socket (port 0 here; its continuum port is the client's socketPointNames);
//                   /run/mc.sock/?2 weighted

import { isIPv6 } from 'node:net';

export interface ServerAddress {
  readonly kind: 'tcp' | 'unix';
  /** Host name or IP as written (IPv6 without brackets), or the socket path. */
  readonly host: string;
  /** 11211 when not given; 0 for a Unix socket. */
  readonly port: number;
  /** >= 1 */
  readonly weight: number;
  /** The address as written: what `locate` prints. */
  readonly text: string;
}

/** MEMCACHED_DEFAULT_PORT; continuum point strings of a server on it carry no `:port` (libmemcached's hosts.cc). */
export const DEFAULT_PORT = 11211;

export class ServerAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerAddressError';
  }
}

export function parseServerAddress(input: string): ServerAddress {
  const text = input.trim();
  if (text === '') throw new ServerAddressError('empty server address');
  let rest = text;
  let weight = 1;
  // Everything after "/?" is the weight, so a wrong one is named as such (not as a bad port or
  // part of a socket path). libmemcached keeps it in a uint32_t.
  const mark = rest.lastIndexOf('/?');
  if (mark !== -1) {
    const weightText = rest.slice(mark + 2);
    if (!/^[0-9]{1,10}$/.test(weightText) || Number(weightText) > 0xffffffff) {
      throw new ServerAddressError(`bad weight ${JSON.stringify(weightText)} in ${JSON.stringify(text)} (a whole number from 0 to 4294967295)`);
    }
    weight = Math.max(1, Number(weightText));
    rest = rest.slice(0, mark);
  }
  if (rest.startsWith('/')) return { kind: 'unix', host: rest, port: 0, weight, text };
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close === -1) throw new ServerAddressError(`unterminated [ in ${JSON.stringify(text)}`);
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw new ServerAddressError(`unexpected ${JSON.stringify(after)} after ]`);
    portText = after === '' ? undefined : after.slice(1);
  } else if (rest.indexOf(':') !== rest.lastIndexOf(':')) {
    // A bare IPv6 address; anything else with two colons (the old `host:port:weight`) is refused.
    if (!isIPv6(rest)) throw new ServerAddressError(`bad server address ${JSON.stringify(text)} (weights are written host:port/?weight)`);
    host = rest;
  } else {
    const colon = rest.indexOf(':');
    host = colon === -1 ? rest : rest.slice(0, colon);
    portText = colon === -1 ? undefined : rest.slice(colon + 1);
  }
  if (host === '') throw new ServerAddressError(`bad host in ${JSON.stringify(text)}`);
  if (!host.includes(':') && !/^[A-Za-z0-9._-]+$/.test(host)) {
    throw new ServerAddressError(`${JSON.stringify(host)} is not a host name or IP address`);
  }
  if (host.includes(':') && !isIPv6(host)) throw new ServerAddressError(`${JSON.stringify(host)} is not an IPv6 address`);
  let port = DEFAULT_PORT;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new ServerAddressError(`bad port in ${JSON.stringify(text)}`);
    }
    port = Number(portText);
  }
  return { kind: 'tcp', host, port, weight, text };
}
