// The inline door: every dialplan command over HTTP, for Asterisk's CURL() function
// (funcs/func_curl.c), which works inside any expression where AGI() cannot:
// `GotoIf($[${CURL(http://127.0.0.1:4574/MCDCOUNTER/calls-acme/1)} > 10]?busy)`.
//
// `GET /<command>/<arg1>/<arg2>...`: the FastAGI arguments in their order, each a percent-decoded
// path segment (so %2F is a '/' inside an argument, and escapes that are not UTF-8 stay the raw
// bytes, as FastAGI passes Asterisk's bytes through). A POST body is appended as the last
// argument, byte for byte: CURL(url,postdata) sends postdata as CURLOPT_POSTFIELDS, raw and
// unencoded, under libcurl's default `Content-Type: application/x-www-form-urlencoded`, so the
// body is never form-decoded here. Arguments go through the commands' own invoke() (the same
// checks, limits and codes as FastAGI) and run through src/dialplan/execute.ts, as the FastAGI
// runner does. What differs is only the transport: no MCDTTL (the config's ttl applies unless
// ?ttl= is given) and the channel comes as ?channel=${UNIQUEID} instead of agi_uniqueid.
//
// The answer is 200 whenever the command ran, whatever its code: func_curl hands the dialplan the
// body only, so the code travels in headers (X-MCD-Result, X-MCD-Result-Name) and, with
// ?format=hash, in the body as `value=...&result=...` for CURLOPT(hashcompat)=yes, which splits
// on '&' and '=' and decodes %XX but not '+' (main/utils.c ast_uri_decode with ast_uri_http):
// every byte but the unreserved ones is written %XX, a space %20.

import type { CacheBackend } from '../dialplan/backend.js';
import { ORDINARY, readCallOptions, runInvocation, type CommandResult } from '../dialplan/execute.js';
import type { CallContext } from '../dialplan/invocation.js';
import { findCommand } from '../dialplan/registry.js';
import { resultText, type DialplanLog, type DialplanSettings } from '../dialplan/runner.js';
import type { LeaseEngine } from '../leases/engine.js';
import { Rc, rcName, rcText } from '../util/errors.js';
import type { HttpHandler, HttpRequest, HttpResponse } from './types.js';

/** What one request runs against: the daemon's current generation (it changes on reload). */
export interface DoorGeneration {
  readonly backend: CacheBackend;
  readonly leases: LeaseEngine | null;
  readonly settings: DialplanSettings;
}

export interface DoorDeps {
  /** Read once per request, so a reload applies to the next request. */
  readonly current: () => DoorGeneration;
  readonly log: DialplanLog;
  /** Told of every command the door answered, as the metrics count FastAGI's. */
  readonly counted?: (command: string, rc: number) => void;
}

const EMPTY = Buffer.alloc(0);
const OPTIONS = ['channel', 'format'] as const;

export function doorHandler(deps: DoorDeps): HttpHandler {
  return async (request) => {
    const segments = request.rawPath.split('/');
    if (segments[0] !== '' || segments.length < 2) return null;
    const name = decodeSegment(segments[1]!).toString('latin1');
    const command = findCommand(name);
    if (command === null) {
      // Paths outside the commands' mcd* namespace belong to the listener's other handlers.
      if (!name.toLowerCase().startsWith('mcd')) return null;
      return answer(deps, request, name, 404, Rc.NOT_SUPPORTED, EMPTY, `no command ${JSON.stringify(name)}`, null);
    }
    if (request.method !== 'GET' && request.method !== 'POST') {
      return answer(deps, request, command.name, 405, Rc.INVALID_ARGUMENTS, EMPTY, `method ${request.method}: GET or POST`, null, { Allow: 'GET, POST' });
    }
    const started = performance.now();
    const generation = deps.current();
    const settings = generation.settings;
    const args = segments.slice(2).map(decodeSegment);
    if (request.method === 'POST') args.push(request.body);

    const invocation = command.invoke(args, settings);
    const failed = (i: number): Buffer => invocation.failed?.[i] ?? EMPTY;
    const reply = (result: CommandResult, format: 'plain' | 'hash', channel: string | null): HttpResponse => {
      const values = invocation.outputs.map((_, i) => (result.rc === Rc.SUCCESS ? (result.values[i] ?? EMPTY) : failed(i)));
      const body = format === 'hash' ? hashBody(invocation.outputs, values, resultText(result.rc, settings.resultFormat)) : (values[0] ?? EMPTY);
      const ms = Math.round((performance.now() - started) * 1000) / 1000;
      return answer(deps, request, command.name, 200, result.rc, body, result.reason, channel, format === 'hash' ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}, ms);
    };

    const options = readCallOptions(request.query, OPTIONS);
    // Which body shape to answer in is read first, so even a refusal comes back as a hash.
    const formatText = options.extra.get('format')?.toLowerCase() ?? 'plain';
    const format = formatText === 'hash' ? 'hash' : 'plain';
    const channelText = options.extra.get('channel');
    const channel = channelText === undefined || channelText.length === 0 ? null : channelText;
    if (invocation.refusal !== null) return reply({ rc: invocation.refusal.rc, values: [], reason: invocation.refusal.message }, format, channel);
    if (options.error !== null) return reply({ rc: Rc.INVALID_ARGUMENTS, values: [], reason: options.error }, format, channel);
    if (formatText !== 'plain' && formatText !== 'hash') return reply({ rc: Rc.INVALID_ARGUMENTS, values: [], reason: `?format=${formatText}: plain or hash` }, format, channel);

    let ttl = 0;
    if (invocation.ttlDefault !== null) ttl = options.ttl ?? (invocation.ttlDefault === 'ttl' ? settings.ttl : settings.counterTtl);
    // Without ?channel= a lease or lock command has no holder: src/dialplan/commands/lease-command.ts
    // holder() answers 127, as FastAGI does for a session without agi_uniqueid.
    const call: CallContext = { uniqueId: channel, leases: generation.leases };
    return reply(await runInvocation(invocation, generation.backend, ttl, call, settings), format, channel);
  };
}

function answer(
  deps: DoorDeps,
  request: HttpRequest,
  command: string,
  status: number,
  rc: number,
  body: Buffer | string,
  reason: string | undefined,
  channel: string | null,
  headers: Record<string, string> = {},
  ms?: number,
): HttpResponse {
  const entry = { via: 'http', address: request.remoteAddress, channel, command, rc, code: rcName(rc), ...(ms !== undefined ? { ms } : {}), ...(reason !== undefined ? { reason } : {}) };
  deps.counted?.(command, rc);
  if (ORDINARY.has(rc)) deps.log.debug(entry, 'command done');
  else deps.log.warn(entry, `${command}: ${reason ?? rcText(rc)}`);
  return {
    status,
    headers: {
      'Content-Type': 'text/plain',
      'Cache-Control': 'no-store',
      ...headers,
      'X-MCD-Result': String(rc),
      'X-MCD-Result-Name': rcName(rc),
    },
    body,
  };
}

/** Percent-escapes to bytes; a '%' not followed by two hex digits stays a literal '%'. */
export function decodeSegment(segment: string): Buffer {
  if (!segment.includes('%')) return Buffer.from(segment, 'latin1');
  const out = Buffer.alloc(segment.length);
  let n = 0;
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25 && i + 2 < segment.length && isHex(segment.charCodeAt(i + 1)) && isHex(segment.charCodeAt(i + 2))) {
      out[n++] = parseInt(segment.slice(i + 1, i + 3), 16);
      i += 2;
    } else out[n++] = c & 0xff;
  }
  return out.subarray(0, n);
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** `value=<first output>&<other outputs, lower case>=...&result=<code>`; `value` is always there. */
function hashBody(outputs: readonly string[], values: readonly Buffer[], result: string): string {
  const fields: Array<[string, Buffer]> = [['value', values[0] ?? EMPTY]];
  for (let i = 1; i < outputs.length; i++) fields.push([outputs[i]!.toLowerCase(), values[i]!]);
  fields.push(['result', Buffer.from(result, 'latin1')]);
  return fields.map(([k, v]) => `${k}=${percentEncode(v)}`).join('&');
}

/** Every byte but A-Z a-z 0-9 - . _ ~ as %XX (a space is %20, never '+'). */
export function percentEncode(value: Buffer): string {
  let out = '';
  for (const b of value) {
    if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e) out += String.fromCharCode(b);
    else out += '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
  }
  return out;
}
