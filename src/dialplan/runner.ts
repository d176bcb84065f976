// One dialplan command over one FastAGI session (ARCHITECTURE.md, "AGI sessions"): route on the script name, check the
// arguments, read MCDTTL if needed, run against the cache, and write the outputs and MCDRESULT
// back — always, whatever failed, and in as few round trips to Asterisk as possible.
//
// Synchronisation. Asterisk does not escape line feeds in arguments, so an argument can end the
// environment block early and smuggle lines that arrive where answers are expected
// (test/fixtures/agi/README.md).
// The first command of every session therefore carries a random nonce: `GET FULL VARIABLE
// "<nonce>…"` answers `200 result=1 (<nonce>…)`, which nothing smuggled can forge, and every line
// before it is dropped (a refusal there ends the session only when Asterisk then falls silent,
// src/agi/session.ts; any other answer that is not the expected one ends it at once). A session
// in which such lines appeared ran with cut arguments: its command is refused with 38
// (INVALID_ARGUMENTS). Commands that change the cache run only after that check; reads run first
// and have their result discarded.
//
// Writing variables. Values that are plain (letters, digits, a few marks) ride in the same
// GET FULL VARIABLE as `${SET(name=value)}` (func_strings: the value is taken whole, trimmed of
// spaces, so plain values exclude edge spaces); anything else goes in its own
// `SET VARIABLE name "value"`, quoted so it arrives byte for byte and never substituted.

import { randomFillSync } from 'node:crypto';
import { AGI_MAX_COMMAND_BYTES, encodeCommand, type AgiEnvironment } from '../agi/codec.js';
import type { AgiAnswer, AgiSession } from '../agi/session.js';
import { Rc, rcName, rcText } from '../util/errors.js';
import { parseTtl } from './arguments.js';
import type { CacheBackend } from './backend.js';
import type { CallContext, Invocation, Limits } from './invocation.js';
import type { LeaseEngine } from '../leases/engine.js';
import { ORDINARY, readCallOptions, runInvocation, type CommandResult } from './execute.js';
import { findCommand } from './registry.js';

export interface DialplanSettings extends Limits {
  /** ttl= of memcached.conf: writes without MCDTTL. */
  readonly ttl: number;
  /** counter_ttl=: mcdcounterset without MCDTTL. */
  readonly counterTtl: number;
  readonly resultFormat: 'number' | 'name';
}

/** What the runner logs through (pino's signature). */
export interface DialplanLog {
  debug(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  /** Whether `level` is written at all (pino's); absent: assume it is. */
  isLevelEnabled?(level: string): boolean;
}

/** Values that can ride inside `${SET(name=value)}` unchanged. */
const INLINE_SAFE = /^(?:[A-Za-z0-9_.:@+/#*=-](?:[A-Za-z0-9_.:@+/#*= -]*[A-Za-z0-9_.:@+/#*=-])?)?$/;
const MAX_INLINE = 256;

export function resultText(rc: number, format: DialplanSettings['resultFormat']): string {
  return format === 'name' ? rcName(rc) : String(rc);
}

/** The single command a connection over the session cap gets: MCDRESULT=47, nothing read. */
export function busyCommand(format: DialplanSettings['resultFormat']): Buffer {
  return encodeCommand('SET', 'VARIABLE', 'MCDRESULT', resultText(Rc.SERVER_TEMPORARILY_DISABLED, format));
}

/** What a session ran, for metrics: the command's registry name (or the script asked for) and its MCDRESULT code. */
export interface SessionOutcome {
  command: string;
  rc: number;
}

/** Resolves with the command run and its code; null when the session ended before its environment. */
export async function runDialplanSession(session: AgiSession, backend: CacheBackend, settings: DialplanSettings, log: DialplanLog, leases: LeaseEngine | null = null): Promise<SessionOutcome | null> {
  const started = performance.now();
  let env: AgiEnvironment;
  try {
    env = await session.environment();
  } catch (err) {
    log.debug({ address: session.remoteAddress, reason: (err as Error).message }, 'AGI session ended before its environment');
    return null;
  }
  const run = new CommandRun(session, env, settings, leases);
  let fields: Outcome;
  try {
    fields = await run.execute(backend);
  } catch (err) {
    // Asterisk went away, stopped answering or refused a command before MCDRESULT was written.
    fields = { rc: Rc.FAILURE, reason: `session lost: ${(err as Error).message}` };
  }
  const outcome = { command: run.known ? run.commandName : '(unknown)', rc: fields.rc };
  const ordinary = ORDINARY.has(fields.rc) && fields.lost !== true;
  // The usual session ends in a debug line, which a daemon at info or above drops: its fields are
  // not worth building every time.
  if (ordinary && fields.warning === undefined && log.isLevelEnabled?.('debug') === false) return outcome;
  const ms = Math.round((performance.now() - started) * 1000) / 1000;
  const entry = { channel: env.channel, command: run.commandName, rc: fields.rc, code: rcName(fields.rc), ms, ...(fields.reason ? { reason: fields.reason } : {}) };
  if (fields.warning !== undefined) log.warn({ ...entry, warning: fields.warning }, `${run.commandName}: ${fields.warning}`);
  if (ordinary) log.debug(entry, 'command done');
  else log.warn(entry, `${run.commandName}: ${fields.reason ?? rcText(fields.rc)}`);
  return outcome;
}

interface Outcome {
  rc: number;
  /** Why the command failed. */
  reason?: string;
  /** Something the administrator should fix although the command ran (a bad MCDTTL). */
  warning?: string;
  /** The result did not reach Asterisk (it refused a command, or went away): worth a warning. */
  lost?: boolean;
}

class CommandRun {
  readonly #session: AgiSession;
  readonly #env: AgiEnvironment;
  readonly #settings: DialplanSettings;
  readonly #leases: LeaseEngine | null;
  readonly #nonce = nonce();
  #synced = false;
  /** What the outputs are set to when the command fails (by position; default ""). */
  #failed: readonly Buffer[] = [];
  commandName: string;
  /** The script named a registry command (else commandName is whatever was asked: not a metric label). */
  known = false;

  constructor(session: AgiSession, env: AgiEnvironment, settings: DialplanSettings, leases: LeaseEngine | null) {
    this.#session = session;
    this.#env = env;
    this.#settings = settings;
    this.#leases = leases;
    this.commandName = env.script ?? '(none)';
  }

  async execute(backend: CacheBackend): Promise<Outcome> {
    const { name, query } = splitScript(this.#env.script);
    const command = findCommand(name);
    if (command === null) {
      return this.#finish([], Rc.NOT_SUPPORTED, `no command ${JSON.stringify(name)} (script ${JSON.stringify(this.#env.script)})`);
    }
    this.commandName = command.name;
    this.known = true;
    const invocation = command.invoke(this.#env.args, this.#settings);
    this.#failed = invocation.failed ?? [];
    if (this.#env.broken) {
      return this.#finish(invocation.outputs, Rc.INVALID_ARGUMENTS, 'an argument held a line feed: the environment block was cut');
    }
    if (invocation.refusal !== null) return this.#finish(invocation.outputs, invocation.refusal.rc, invocation.refusal.message);

    const options = readOptions(query);
    if (options.error !== null) return this.#finish(invocation.outputs, Rc.INVALID_ARGUMENTS, options.error);

    let ttl = 0;
    let ttlNote: string | undefined;
    if (invocation.ttlDefault !== null) {
      const fallback = invocation.ttlDefault === 'ttl' ? this.#settings.ttl : this.#settings.counterTtl;
      if (options.ttl !== null) ttl = options.ttl;
      else ({ ttl, note: ttlNote } = await this.#readMcdTtl(fallback));
    }
    if (invocation.mutates && !this.#synced) await this.#sync([]);
    if (this.#synced && this.#session.strayLines > 0) return this.#finish(invocation.outputs, Rc.INVALID_ARGUMENTS, this.#smuggledReason());

    const { rc, values, reason } = await this.#run(invocation, backend, ttl);
    const outcome = await this.#finish(invocation.outputs, rc, reason, values);
    return ttlNote === undefined ? outcome : { ...outcome, warning: ttlNote };
  }

  #run(invocation: Invocation, backend: CacheBackend, ttl: number): Promise<CommandResult> {
    const uniqueId = this.#env.vars.get('agi_uniqueid');
    const call: CallContext = { uniqueId: uniqueId === undefined || uniqueId.length === 0 ? null : uniqueId.toString('latin1'), leases: this.#leases };
    return runInvocation(invocation, backend, ttl, call, this.#settings);
  }

  /** MCDTTL read in the synchronising command: `<nonce><LEN>:<digits only>`. */
  async #readMcdTtl(fallback: number): Promise<{ ttl: number; note?: string }> {
    const data = await this.#sync([], '${LEN(${MCDTTL})}:${FILTER(0-9,${MCDTTL})}');
    const m = /^([0-9]+):([0-9]*)$/.exec(data);
    if (m === null || m[1] === '0') return { ttl: fallback };
    const ttl = Number(m[1]) === m[2]!.length ? parseTtl(m[2]) : null;
    if (ttl === null) return { ttl: fallback, note: `MCDTTL is not a non-negative integer; ttl ${fallback} from the config is used` };
    return { ttl };
  }

  /**
   * Sends the nonce command (with inline assignments, and `extra` to evaluate) and waits for its
   * answer; returns what follows the nonce in the answer.
   */
  async #sync(inline: ReadonlyArray<readonly [string, Buffer]>, extra = ''): Promise<string> {
    let expr = this.#nonce;
    for (const [name, value] of inline) expr += `\${SET(${name}=${value.toString('latin1')})}`;
    expr += extra;
    const nonce = this.#nonce;
    const answer = await this.#session.command(
      getFullVariable(expr),
      (a: AgiAnswer) => a.code === 200 && a.data !== null && a.data.toString('latin1', 0, nonce.length) === nonce,
    );
    this.#synced = true;
    return answer.data!.toString('latin1', nonce.length);
  }

  #smuggledReason(): string {
    return `${this.#session.strayLines} stray line(s) after the environment: an argument held a line feed`;
  }

  #resultValue(rc: number): Buffer {
    return Buffer.from(resultText(rc, this.#settings.resultFormat), 'latin1');
  }

  /** Writes the outputs ("" when the command failed) and MCDRESULT. */
  async #finish(outputs: readonly string[], rc: number, reason: string | undefined, values: readonly Buffer[] = []): Promise<Outcome> {
    const wasSynced = this.#synced;
    const cleared = outputs.map((name, i) => [name, this.#failed[i] ?? EMPTY] as const);
    // Each output rides inline in the synchronising command, or needs a SET VARIABLE of its own.
    let inline: Array<readonly [string, Buffer]> = [];
    let quoted: Buffer[] = [];
    if (rc !== Rc.SUCCESS) inline = cleared;
    else {
      outputs.forEach((name, i) => {
        const value = values[i] ?? EMPTY;
        if (isInline(value)) inline.push([name, value]);
        else quoted.push(setVariable(name, value));
      });
      if (quoted.some((line) => line.length > AGI_MAX_COMMAND_BYTES)) {
        rc = Rc.VALUE_TOO_LONG;
        reason = `the value does not fit Asterisk's ${AGI_MAX_COMMAND_BYTES}-byte command line`;
        inline = cleared;
        quoted = [];
      }
    }
    try {
      await this.#sync([...inline, ['MCDRESULT', this.#resultValue(rc)]]);
      if (!wasSynced && this.#session.strayLines > 0) {
        // The read ran on cut arguments: take its result back.
        rc = Rc.INVALID_ARGUMENTS;
        await this.#sync([...cleared, ['MCDRESULT', this.#resultValue(rc)]]);
        return { rc, reason: this.#smuggledReason() };
      }
      for (const line of quoted) await this.#session.command(line);
    } catch (err) {
      return { rc, reason: `${reason ?? rcText(rc)}; and the result could not be written back: ${(err as Error).message}`, lost: true };
    }
    return reason === undefined ? { rc } : { rc, reason };
  }
}

const EMPTY = Buffer.alloc(0);

/** Random bytes drawn in bulk: one system call per 512 sessions instead of one each. */
const noncePool = Buffer.allocUnsafe(4096);
let nonceAt = noncePool.length;

/** 16 hex digits nobody outside can predict: what marks this session's own answer. */
function nonce(): string {
  if (nonceAt + 8 > noncePool.length) {
    randomFillSync(noncePool);
    nonceAt = 0;
  }
  nonceAt += 8;
  return noncePool.toString('hex', nonceAt - 8, nonceAt);
}

function isInline(value: Buffer): boolean {
  return value.length <= MAX_INLINE && INLINE_SAFE.test(value.toString('latin1'));
}

/** Bytes that a quoted AGI word escapes or refuses (src/agi/codec.ts, quoteWord). */
const NEEDS_QUOTING = /[\\"\n\0]/;

/**
 * `GET FULL VARIABLE "<expr>"` for an expression read as latin1. The synchronising command of every
 * session holds only a nonce, variable names and plain values, so it is written straight from the
 * string; anything else goes through encodeCommand, which escapes or refuses it.
 */
function getFullVariable(expr: string): Buffer {
  if (NEEDS_QUOTING.test(expr)) return encodeCommand('GET', 'FULL', 'VARIABLE', Buffer.from(expr, 'latin1'));
  return Buffer.from(`GET FULL VARIABLE "${expr}"\n`, 'latin1');
}

function setVariable(name: string, value: Buffer): Buffer {
  return encodeCommand('SET', 'VARIABLE', name, value);
}

/** `mcdset?ttl=30` → name `mcdset`, query `ttl=30`. A leading path (`memcached/mcdset`) is ignored. */
export function splitScript(script: string | null): { name: string; query: string } {
  if (script === null) return { name: '', query: '' };
  const q = script.indexOf('?');
  const path = q === -1 ? script : script.slice(0, q);
  const query = q === -1 ? '' : script.slice(q + 1);
  const name = path.slice(path.lastIndexOf('/') + 1);
  return { name, query };
}

/** Per-call options on the script path (`agi://host/mcdset?ttl=N,...`): `ttl=N` overrides MCDTTL and spares reading it. */
function readOptions(query: string): { ttl: number | null; error: string | null } {
  if (query === '') return { ttl: null, error: null };
  const { ttl, error } = readCallOptions(new URLSearchParams(query));
  return { ttl, error };
}
