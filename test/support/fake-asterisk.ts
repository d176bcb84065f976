// An Asterisk-faithful FastAGI client for tests: it plays Asterisk 22's side of AGI(agi://...)
// the way res_agi.c does, as recorded in test/fixtures/agi/*.log (see README.md there).
//
// Internally every byte string is a latin1 JS string (one char per byte) so that C string
// semantics (NUL ends a string, lengths in bytes) carry over unchanged; the public API takes and
// returns Buffers or utf8 strings.

import * as net from 'node:net';

export type AgiStatus = 'SUCCESS' | 'HANGUP' | 'FAILURE';

export interface ChannelOptions {
  /** agi_channel; default `Local/<ext>@<context>-<8 hex>;2`, unique per channel. */
  name?: string;
  context?: string;
  extension?: string;
  priority?: number;
  /** Caller number; unset = invalid, sent as `unknown` like a Local channel without one. */
  callerId?: string;
  callerIdName?: string;
  /** Initial channel variables. */
  variables?: Record<string, string | Buffer>;
  /** AGISIGHUP (default true = HANGUP lines are sent). Stored as the channel variable. */
  agiSigHup?: boolean;
  /** AGIEXITONHANGUP (default false). Stored as the channel variable. */
  agiExitOnHangup?: boolean;
  // Extras beyond the agreed API (all optional).
  /** Channel language, agi_language and CHANNEL(language); default 'en'. */
  language?: string;
  /** false: channel state Ring (4) until ANSWER; default true: Up (6), as in proto.log. */
  answered?: boolean;
  /** Global variables (GLOBAL(), fallback of ${VAR}); default: a map of this channel's own. */
  globals?: Map<string, Buffer>;
  /** astdb (DATABASE ..., DB()), keyed `/family/key`; default: a map of this channel's own. */
  database?: Map<string, Buffer>;
}

export interface AgiRunOptions {
  /** line-by-line (default) = one socket write per env line, as ast_agi_send does. */
  envWriteMode?: 'line-by-line' | 'one-write';
  /** Default 2000, Asterisk's MAX_AGI_CONNECT. */
  connectTimeoutMs?: number;
  /** Safety net for tests; default 10000; the promise rejects when exceeded. */
  sessionTimeoutMs?: number;
}

export interface AgiRun {
  /** What ${AGISTATUS} becomes; also stored in channel variable AGISTATUS. */
  status: AgiStatus;
  /** Every exchange in order. */
  transcript: TranscriptEntry[];
  /** Each command line Asterisk read (utf8, without the \n), in order. */
  commands: string[];
  durationMs: number;
}

/**
 * `env`: one entry per env line written (without its \n), the last one empty (the blank line).
 * `cmd`: a command line as Asterisk read it (raw bytes, without the \n).
 * `answer`: all bytes written in reply to one command (several ast_agi_send writes joined).
 * `event`: 'connected', 'connect-failed', 'connect-timeout', 'env-sent', 'server-closed' (FIN
 * received), 'socket-error:<code>', 'channel-hangup' (Asterisk noticed the hangup),
 * 'hangup-sent' (a `HANGUP\n` notification was written), 'hangup-write-failed',
 * 'script-completed' (read EOF), 'failure-line', 'unsupported:<command>', 'unknown-app:<app>',
 * 'closed' (our close; 'closed-rst' when unread bytes made it a reset).
 */
export type TranscriptEntry =
  | { dir: 'env'; line: Buffer }
  | { dir: 'cmd'; line: Buffer }
  | { dir: 'answer'; data: Buffer }
  | { dir: 'event'; what: string };

// ---------------------------------------------------------------------------------------------
// Constants (res_agi.c, pbx.c, glibc)

/** run_agi's `char buf[AGI_BUF_LEN]`: 8191 bytes + NUL (long.log, boundary.log). */
const AGI_BUF_LEN = 8192;
/** glibc gives a FILE on a socket a buffer of st_blksize (4096) bytes; fgets reads through it. */
const STDIO_BUFSIZ = 4096;
const MAX_ARGS = 128;
const AGI_PORT = 4573;
const MAX_AGI_CONNECT = 2000;
/** ast_func_read2 buffer for functions that only have a fixed-size `read`. */
const VAR_BUF_SIZE = 4096;
const AST_VERSION = '22.10.1';
const STATE_RING = 4;
const STATE_UP = 6;

const RESULT_SUCCESS = 0;
const RESULT_SHOWUSAGE = 1;
const RESULT_FAILURE = 2;

// The exact texts; 520 blocks from proto.log.
const ANSWER_510 = '510 Invalid or unknown command\n';
const ANSWER_511 = '511 Command Not Permitted on a dead channel or intercept routine\n';
const USAGE_HEAD = '520-Invalid command syntax.  Proper usage follows:\n';
const USAGE_TAIL = '520 End of proper usage.\n';
const USAGE_NONE = '520 Invalid command syntax.  Proper usage not available.\n';

/** Usage texts (xmldoc description, one line per <para>). Verified byte for byte in proto.log. */
const USAGE_GET_VARIABLE =
  'Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns <literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the variable in parentheses.\n' +
  'Example return code: 200 result=1 (testvariable)\n';
const USAGE_SET_VARIABLE = 'Sets a variable to the current channel.\n';
const USAGE_VERBOSE =
  'Sends <replaceable>message</replaceable> to the console via verbose message system. <replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>\n';
/** proto.log shows only its start and end; the middle is res_agi.c's XML, and the whole block is
 * exactly the 700 bytes the log counts. */
const USAGE_GET_FULL_VARIABLE =
  'Evaluates the given <replaceable>expression</replaceable> against the channel specified by <replaceable>channelname</replaceable>, or the current channel if <replaceable>channelname</replaceable> is not provided.\n' +
  'Unlike GET VARIABLE, the <replaceable>expression</replaceable> is processed in a manner similar to dialplan evaluation, allowing complex and built-in variables to be accessed, e.g. <literal>The time is ${EPOCH}</literal>\n' +
  'Returns <literal>0</literal> if no channel matching <replaceable>channelname</replaceable> exists, <literal>1</literal> otherwise.\n' +
  'Example return code: 200 result=1 (The time is 1578493800)\n';
// Not seen in any transcript: built from res_agi.c's XML with the same rule (unverified).
const USAGE_EXEC =
  'Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.\n' +
  'Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> on failure to find <replaceable>application</replaceable>.\n';
const USAGE_DATABASE_GET =
  'Retrieves an entry in the Asterisk database for a given <replaceable>family</replaceable> and <replaceable>key</replaceable>.\n' +
  'Returns <literal>0</literal> if <replaceable>key</replaceable> is not set. Returns <literal>1</literal> if <replaceable>key</replaceable> is set and returns the variable in parenthesis.\n' +
  'Example return code: 200 result=1 (testvariable)\n';
const USAGE_DATABASE_PUT =
  'Adds or updates an entry in the Asterisk database for a given <replaceable>family</replaceable>, <replaceable>key</replaceable>, and <replaceable>value</replaceable>.\n' +
  'Returns <literal>1</literal> if successful, <literal>0</literal> otherwise.\n';
const USAGE_DATABASE_DEL =
  'Deletes an entry in the Asterisk database for a given <replaceable>family</replaceable> and <replaceable>key</replaceable>.\n' +
  'Returns <literal>1</literal> if successful, <literal>0</literal> otherwise.\n';
const USAGE_DATABASE_DELTREE =
  'Deletes a <replaceable>family</replaceable> or specific <replaceable>keytree</replaceable> within a <replaceable>family</replaceable> in the Asterisk database.\n' +
  'Returns <literal>1</literal> if successful, <literal>0</literal> otherwise.\n';
const USAGE_HANGUP = 'Hangs up the specified channel. If no channel name is given, hangs up the current channel\n';

// ---------------------------------------------------------------------------------------------
// Byte-string helpers

type Bytes = string; // latin1: one char per byte

const b2s = (b: Buffer): Bytes => b.toString('latin1');
const s2b = (s: Bytes): Buffer => Buffer.from(s, 'latin1');
const toBytes = (v: string | Buffer): Bytes => (typeof v === 'string' ? Buffer.from(v, 'utf8').toString('latin1') : v.toString('latin1'));
/** A channel-variable map key: the utf8 view of the name's bytes. */
const keyOf = (name: Bytes): string => s2b(name).toString('utf8');
/** C string: everything before the first NUL. */
function cstr(s: Bytes): Bytes {
  const i = s.indexOf('\0');
  return i < 0 ? s : s.slice(0, i);
}
function asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}
function asciiUpper(s: string): string {
  return s.replace(/[a-z]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 32));
}
const strcasecmpEq = (a: string, b: string): boolean => asciiLower(a) === asciiLower(b);
/** ast_strip: drop bytes < 33 at both ends (ast_skip_blanks / ast_trim_blanks). */
function astStrip(s: Bytes): Bytes {
  let a = 0;
  let b = s.length;
  while (a < b && s.charCodeAt(a) < 33) a++;
  while (b > a && s.charCodeAt(b - 1) < 33) b--;
  return s.slice(a, b);
}
const astTrue = (v: string | undefined): boolean => v !== undefined && /^(yes|true|y|t|1|on)$/i.test(v);
const astFalse = (v: string | undefined): boolean => v !== undefined && /^(no|false|n|f|0|off)$/i.test(v);
/** Up to two leading underscores mark inheritance; lookups compare the name without them. */
function stripInherit(name: Bytes): Bytes {
  if (name.startsWith('__')) return name.slice(2);
  if (name.startsWith('_')) return name.slice(1);
  return name;
}
/** sscanf("%30d"): optional blanks, sign, digits. */
function scanInt(s: string, at: number): { value: number; end: number } | null {
  const m = /^[ \t\n\v\f\r]*([+-]?\d{1,30})/.exec(s.slice(at));
  if (!m) return null;
  const n = Number(m[1]);
  const value = Math.max(-2147483648, Math.min(2147483647, Number.isFinite(n) ? Math.trunc(n) : 0));
  return { value, end: at + m[0].length };
}

// ---------------------------------------------------------------------------------------------
// parse_args (res_agi.c)

const MAX_WORDS = MAX_ARGS - 1;

function parseArgs(line: Bytes): Bytes[] {
  const argv: Bytes[] = [];
  let quoted = false;
  let escaped = false;
  let whitespace = true;
  const s = cstr(line);
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    let normal = false;
    if (c === '"') {
      if (escaped) normal = true;
      else {
        quoted = !quoted;
        // A quote coming off whitespace starts a new word. res_agi.c does not check MAX_ARGS
        // here (it writes past argv); we drop such words like the ordinary ones.
        if (quoted && whitespace && argv.length < MAX_WORDS) {
          argv.push('');
          whitespace = false;
        }
        escaped = false;
      }
    } else if (c === ' ' || c === '\t') {
      if (!quoted && !escaped) whitespace = true;
      else normal = true;
    } else if (c === '\\') {
      if (escaped) normal = true;
      else escaped = true;
    } else {
      normal = true;
    }
    if (!normal) continue;
    if (whitespace) {
      // "Too many arguments, truncating": the 128th and later words are dropped silently.
      if (argv.length >= MAX_WORDS) continue;
      argv.push('');
      whitespace = false;
    }
    argv[argv.length - 1] += c;
    escaped = false;
  }
  return argv;
}

/** Asterisk's parse_args on one command line (no \n): `"` toggles quoting and is removed, `\x` is
 * a literal x anywhere, words split on space/tab, at most 127 words (the rest is dropped). The
 * line ends at a NUL byte as C strings do. */
export function parseAgiCommandLine(line: Buffer): Buffer[] {
  return parseArgs(b2s(line)).map(s2b);
}

// ---------------------------------------------------------------------------------------------
// The channel

let channelSeq = 0;
const registry = new Map<string, WeakRef<FakeChannel>>();

function findChannel(name: Bytes): FakeChannel | undefined {
  // ast_channel_get_by_name: case-insensitive name, or the uniqueid.
  const wanted = asciiLower(keyOf(name));
  for (const [k, ref] of registry) {
    const ch = ref.deref();
    if (!ch) {
      registry.delete(k);
      continue;
    }
    if (asciiLower(ch.name) === wanted || ch.uniqueId === keyOf(name)) return ch;
  }
  return undefined;
}

export class FakeChannel {
  readonly name: string;
  /** Channel variables, raw bytes, keyed by name without inheritance underscores. */
  readonly vars = new Map<string, Buffer>();
  readonly globals: Map<string, Buffer>;
  readonly database: Map<string, Buffer>;
  readonly shared = new Map<string, Buffer>();
  readonly uniqueId: string;
  readonly threadId: string;
  context: string;
  extension: string;
  priority: number;
  language: string;
  callerId: string | undefined;
  callerIdName: string | undefined;
  /** ast_channel_state: 6 Up, 4 Ring. */
  state: number;
  hangupCause = 0;
  private _hungUp = false;
  /** @internal running AGI sessions, woken on hangup. */
  readonly _sessions = new Set<AgiSession>();

  constructor(options: ChannelOptions = {}) {
    channelSeq++;
    this.context = options.context ?? 'test';
    this.extension = options.extension ?? 's';
    this.priority = options.priority ?? 1;
    this.name = options.name ?? `Local/${this.extension}@${this.context}-${channelSeq.toString(16).padStart(8, '0')};2`;
    this.language = options.language ?? 'en';
    this.callerId = options.callerId;
    this.callerIdName = options.callerIdName;
    this.state = options.answered === false ? STATE_RING : STATE_UP;
    this.globals = options.globals ?? new Map();
    this.database = options.database ?? new Map();
    this.uniqueId = `${Math.floor(Date.now() / 1000)}.${channelSeq}`;
    this.threadId = String(140000000000000 + Math.floor(Math.random() * 999999999999));
    for (const [k, v] of Object.entries(options.variables ?? {})) this.setVar(k, v);
    if (options.agiSigHup === false) this.setVar('AGISIGHUP', 'no');
    if (options.agiExitOnHangup === true) this.setVar('AGIEXITONHANGUP', 'yes');
    registry.set(`${channelSeq}`, new WeakRef(this));
  }

  /** A channel variable as utf8. Like ${__X} in Asterisk, '__X' does not find X (funcs.log). */
  getVar(name: string): string | undefined {
    return this.vars.get(name)?.toString('utf8');
  }

  /** Sets a channel variable; leading '_'/'__' (inheritance) are not part of the name. */
  setVar(name: string, value: string | Buffer): void {
    this.vars.set(stripInherit(name), typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value));
  }

  get hungUp(): boolean {
    return this._hungUp;
  }

  /** The caller hangs up now: running sessions notice it as Asterisk does (HANGUP at once when
   * idle, after the answer when a command runs: hangupduringcmd.log). */
  hangup(): void {
    if (this._hungUp) return;
    this._hungUp = true;
    this.hangupCause = 16;
    for (const s of this._sessions) s.kick();
  }

  /** Runs AGI(url,args...) the way app AGI does over FastAGI; resolves when AGI() would return. */
  async agi(url: string, args: ReadonlyArray<string | Buffer> = [], options: AgiRunOptions = {}): Promise<AgiRun> {
    const session = new AgiSession(this, url, args, options);
    const ms = options.sessionTimeoutMs ?? 10000;
    const timer = setTimeout(() => session.abort(new Error(`fake-asterisk: AGI session to ${url} exceeded ${ms} ms`)), ms);
    try {
      return await session.run();
    } finally {
      clearTimeout(timer);
    }
  }

  // --- byte-level variable access used by the AGI emulation ---

  /** @internal */
  _getVarBytes(name: Bytes): Bytes | undefined {
    const v = this.vars.get(keyOf(name));
    return v === undefined ? undefined : b2s(v);
  }

  /** @internal pbx_builtin_setvar_helper: `NAME(args)` writes a function, else sets or unsets. */
  _setVarHelper(name: Bytes, value: Bytes | null): void {
    if (name.endsWith(')')) {
      funcWrite(this, name, value ?? '');
      return;
    }
    const key = keyOf(stripInherit(name));
    if (value === null) this.vars.delete(key);
    else this.vars.set(key, s2b(value));
  }
}

// ---------------------------------------------------------------------------------------------
// Variables and dialplan functions (pbx_variables.c, func_*.c)

/** parse_variable_name: cut at the first ':' outside parentheses into offset:length. */
function parseVariableName(v: Bytes): { name: Bytes; offset: number; length: number; isFunc: boolean; substring: boolean } {
  let parens = 0;
  let isFunc = false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charAt(i);
    if (c === '(') {
      isFunc = true;
      parens++;
    } else if (c === ')') {
      parens--;
    } else if (c === ':' && parens === 0) {
      let offset = 0;
      let length = 2147483647;
      const a = scanInt(v, i + 1);
      if (a) {
        offset = a.value;
        if (v.charAt(a.end) === ':') {
          const b = scanInt(v, a.end + 1);
          if (b) length = b.value;
        }
      }
      return { name: v.slice(0, i), offset, length, isFunc, substring: true };
    }
  }
  return { name: v, offset: 0, length: 2147483647, isFunc, substring: false };
}

/** ast_str_substring. */
function substring(value: Bytes, offset: number, length: number): Bytes {
  let lr = value.length;
  if (offset === 0 && length >= lr) return value;
  if (offset < 0) {
    offset = lr + offset;
    if (offset < 0) offset = 0;
  }
  if (offset >= lr) return '';
  value = value.slice(offset);
  lr -= offset;
  if (length >= 0 && length < lr) return value.slice(0, length);
  if (length < 0) return lr > -length ? value.slice(0, lr + length) : '';
  return value;
}

/** ast_str_retrieve_variable: builtins, then channel variables, then globals. */
function retrieveVariable(chan: FakeChannel, v: Bytes): Bytes | null {
  const parsed = parseVariableName(v); // the lookups below still use `v`, as pbx_variables.c does
  let s: Bytes | null | undefined;
  if (v === 'CALLINGPRES') s = String(chan.callerId === undefined ? 67 : 0);
  else if (v === 'CALLINGANI2' || v === 'CALLINGTON' || v === 'CALLINGTNS') s = '0';
  else if (v === 'EXTEN') s = toBytes(chan.extension);
  else if (v === 'CONTEXT') s = toBytes(chan.context);
  else if (v === 'PRIORITY') s = String(chan.priority);
  else if (v === 'CHANNEL') s = toBytes(chan.name);
  else if (v === 'UNIQUEID') s = toBytes(chan.uniqueId);
  else if (v === 'HANGUPCAUSE') s = String(chan.hangupCause);
  else if (v === 'HINT' || v === 'HINTNAME') s = null;
  else if (v === 'EPOCH') s = String(Math.floor(Date.now() / 1000));
  else if (v === 'SYSTEMNAME') s = '';
  if (s === undefined) {
    s = chan._getVarBytes(v);
    if (s === undefined) {
      const g = chan.globals.get(keyOf(v));
      s = g === undefined ? undefined : b2s(g);
    }
  }
  if (s === undefined || s === null) return null;
  s = cstr(s);
  return parsed.substring ? substring(s, parsed.offset, parsed.length) : s;
}

/** __ast_app_separate_args: split on delim outside (), [] and quotes; the last array slot gets
 * the raw remainder. remove: drop quotes and backslashes (STANDARD_APP_ARGS) or keep (RAW). */
export function separateArgs(input: Bytes | null, delim: string, remove: boolean, arraylen = 128): Bytes[] {
  if (input === null) return [];
  const out: Bytes[] = [];
  const s = input;
  let i = 0;
  let paren = 0;
  let bracket = 0;
  let quote = false;
  let wasDelim = -1;
  while (i < s.length && out.length < arraylen - 1) {
    let cur = '';
    for (; i < s.length; i++) {
      const ch = s.charAt(i);
      if (ch === '(') paren++;
      else if (ch === ')') {
        if (paren) paren--;
      } else if (ch === '[') bracket++;
      else if (ch === ']') {
        if (bracket) bracket--;
      } else if (ch === '"' && delim !== '"') {
        quote = !quote;
        if (remove) continue;
      } else if (ch === '\\') {
        if (!remove) cur += ch;
        i++;
        if (i < s.length) cur += s.charAt(i);
        continue;
      } else if (ch === delim && !paren && !quote && !bracket) {
        wasDelim = i;
        i++;
        break;
      }
      cur += ch;
    }
    out.push(cur);
  }
  if (i < s.length || (i > 0 && i - 1 === wasDelim)) out.push(s.slice(i));
  return out;
}

/** ast_get_encoded_char: \n \r \t \xHH \0ooo or \c; -1 on a bad \x. */
function getEncodedChar(s: Bytes, at: number): { ch: number; consumed: number } | null {
  if (s.charAt(at) !== '\\') return { ch: at < s.length ? s.charCodeAt(at) : 0, consumed: 1 };
  const n = s.charAt(at + 1);
  if (n === 'n') return { ch: 10, consumed: 2 };
  if (n === 'r') return { ch: 13, consumed: 2 };
  if (n === 't') return { ch: 9, consumed: 2 };
  if (n === 'x') {
    const h1 = s.charAt(at + 2);
    if (!/^[0-9A-Fa-f]$/.test(h1)) return null;
    const h2 = s.charAt(at + 3);
    if (/^[0-9A-Fa-f]$/.test(h2)) return { ch: parseInt(h1 + h2, 16), consumed: 4 };
    return { ch: parseInt(h1, 16), consumed: 3 };
  }
  if (n === '0') {
    let v = 0;
    let i = at + 2;
    while (/^[0-7]$/.test(s.charAt(i))) v = ((v << 3) + Number(s.charAt(i++))) & 0xff;
    return { ch: v, consumed: i - at };
  }
  return { ch: at + 1 < s.length ? s.charCodeAt(at + 1) : 0, consumed: 2 };
}

interface FuncDef {
  /** null = the read failed (-1). `len` is the C buffer size; Infinity for read2 calls. */
  read?: (chan: FakeChannel, data: Bytes | null, len: number) => Bytes | null;
  /** Has read2: no fixed buffer when substituted. */
  read2?: boolean;
  readMax?: number;
  write?: (chan: FakeChannel, data: Bytes | null, value: Bytes) => boolean;
}

const dbKey = (family: Bytes, key: Bytes): string => keyOf(`/${family}/${key}`);

function dbArgs(data: Bytes | null): { family: Bytes; key: Bytes } | null {
  if (!data) return null;
  const a = separateArgs(data, '/', true, 2);
  if (a.length < 2) return null;
  return { family: a[0]!, key: a[1]! };
}

function filterFunc(_chan: FakeChannel, data: Bytes | null, len: number): Bytes | null {
  const args = separateArgs(data, ',', false, 2);
  const allowedSpec = args[0];
  const str = args[1];
  if (allowedSpec === undefined || str === undefined) return null;
  const bits = new Array<boolean>(256).fill(false);
  let p = 0;
  while (p < allowedSpec.length) {
    const c1 = getEncodedChar(allowedSpec, p);
    if (!c1) return null;
    p += c1.consumed;
    if (allowedSpec.charAt(p) === '-') {
      // A bad second char counts as c1 (and skips "\\x" plus one, like the C code).
      const c2r = getEncodedChar(allowedSpec, p + 1);
      const c2 = c2r ? c2r.ch : c1.ch;
      p += (c2r ? c2r.consumed : 2) + 1;
      // Unsigned char loop: a reversed range wraps through 255 and 0.
      let ac = c1.ch;
      while (ac !== c2) {
        bits[ac] = true;
        ac = (ac + 1) & 0xff;
      }
      bits[ac] = true;
    } else {
      bits[c1.ch] = true;
    }
  }
  let out = '';
  for (let i = 0; i < str.length && out.length < len - 1; i++) {
    const code = str.charCodeAt(i);
    if (code !== 0 && bits[code]) out += str.charAt(i);
  }
  return out;
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return '';
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(15)));
}

/** func_math: `a op b` or a number; type int truncates, float prints "%f". */
function mathFunc(_chan: FakeChannel, data: Bytes | null): Bytes | null {
  const a = separateArgs(data, ',', true, 2);
  const expr = a[0];
  if (!expr) return null;
  const type = asciiLower(a[1] ?? 'float');
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(?:(\+|-|\*|\/|%|\^|<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*)?$/.exec(expr);
  if (!m) return null;
  const x = Number(m[1]);
  const y = m[3] === undefined ? 0 : Number(m[3]);
  let r: number;
  switch (m[2]) {
    case undefined: r = x; break;
    case '+': r = x + y; break;
    case '-': r = x - y; break;
    case '*': r = x * y; break;
    case '/': if (y === 0) return null; r = x / y; break;
    case '%': if (y === 0) return null; r = Math.trunc(x) % Math.trunc(y); break;
    case '^': r = x ** y; break;
    case '<': r = x < y ? 1 : 0; break;
    case '>': r = x > y ? 1 : 0; break;
    case '<=': r = x <= y ? 1 : 0; break;
    case '>=': r = x >= y ? 1 : 0; break;
    default: r = x === y ? 1 : 0;
  }
  if (type === 'i' || type === 'int') return String(Math.trunc(r));
  if (type === 'h' || type === 'hex') return Math.trunc(r).toString(16);
  if (type === 'c' || type === 'char') return String.fromCharCode(Math.trunc(r) & 0xff);
  return r.toFixed(6); // unverified: func_math's default float print
}

function cutFunc(chan: FakeChannel, data: Bytes | null): Bytes | null {
  const a = separateArgs(data, ',', true, 3);
  if (a.length < 3) return null;
  const d = a[1] ? getEncodedChar(a[1], 0) : null;
  const delim = d && d.ch !== 0 ? String.fromCharCode(d.ch) : '-';
  const value = substitute(chan, `\${${a[0]}}`);
  const fields = value.split(delim);
  const picked: string[] = [];
  for (const spec of a[2]!.split('&')) {
    const m = /^(\d*)(-?)(\d*)$/.exec(spec);
    if (!m) return null;
    const from = m[1] ? Number(m[1]) : 1;
    const to = m[2] ? (m[3] ? Number(m[3]) : fields.length) : from;
    for (let i = from; i <= to && i <= fields.length; i++) picked.push(fields[i - 1]!);
  }
  return picked.join(delim);
}

function callerIdAll(chan: FakeChannel): Bytes {
  // ast_callerid_merge with "" for invalid parts (funcs.log: "Bob Smith" <>).
  const name = toBytes(chan.callerIdName ?? '').replace(/["\\]/g, '\\$&');
  return `"${name}" <${toBytes(chan.callerId ?? '')}>`;
}

function checkCondition(s: Bytes): boolean {
  if (!s) return false;
  const n = scanInt(s, 0);
  return n ? n.value !== 0 : true;
}

const FUNCTIONS: Record<string, FuncDef> = {
  LEN: { readMax: 12, read: (_c, data) => String(cstr(data ?? '').length) },
  FILTER: { read: filterFunc },
  // func_logic.c set(): name up to the first '=', value the rest, both ast_strip'ed.
  SET: {
    read2: true,
    read: (chan, data) => {
      if (data === null) return null;
      const eq = data.indexOf('=');
      const rawName = eq < 0 ? data : data.slice(0, eq);
      if (rawName === '' || eq < 0) return null;
      const name = astStrip(rawName);
      const value = astStrip(data.slice(eq + 1));
      chan._setVarHelper(name, value);
      return value;
    },
  },
  EXISTS: { readMax: 2, read: (_c, data) => (data ? '1' : '0') },
  ISNULL: { readMax: 2, read: (_c, data) => (data ? '0' : '1') },
  IF: {
    read: (_c, data) => {
      const a1 = separateArgs(data, '?', true, 2);
      const a2 = separateArgs(a1[1] ?? null, ':', true, 2);
      const expr = a1[0];
      if (!expr || (a2[0] === undefined && a2[1] === undefined)) return null;
      return checkCondition(astStrip(expr)) ? astStrip(a2[0] ?? '') : astStrip(a2[1] ?? '');
    },
  },
  DB: {
    read: (chan, data, len) => {
      const a = dbArgs(data);
      if (!a) return null;
      const v = chan.database.get(dbKey(a.family, a.key));
      if (v === undefined) return ''; // func_db: a miss is not an error (funcs.log)
      const s = cstr(b2s(v)).slice(0, Math.max(0, len - 2)); // ast_db_get(..., len - 1)
      chan._setVarHelper('DB_RESULT', s);
      return s;
    },
    write: (chan, data, value) => {
      const a = dbArgs(data);
      if (!a) return false;
      chan.database.set(dbKey(a.family, a.key), s2b(value));
      return true;
    },
  },
  DB_EXISTS: {
    read: (chan, data) => {
      const a = dbArgs(data);
      if (!a) return null;
      const v = chan.database.get(dbKey(a.family, a.key));
      if (v === undefined) return '0';
      chan._setVarHelper('DB_RESULT', cstr(b2s(v)));
      return '1';
    },
  },
  DB_DELETE: {
    read: (chan, data) => {
      const a = dbArgs(data);
      if (!a) return null;
      const k = dbKey(a.family, a.key);
      const v = chan.database.get(k);
      if (v === undefined) return '';
      chan.database.delete(k);
      return cstr(b2s(v));
    },
  },
  GLOBAL: {
    read: (chan, data) => {
      const g = chan.globals.get(keyOf(data ?? ''));
      return g === undefined ? '' : cstr(b2s(g));
    },
    write: (chan, data, value) => {
      chan.globals.set(keyOf(stripInherit(data ?? '')), s2b(value));
      return true;
    },
  },
  SHARED: {
    read: (chan, data) => {
      const a = separateArgs(data, ',', true, 2);
      const target = a[1] ? findChannel(a[1]) : chan;
      if (!target) return null;
      const v = target.shared.get(keyOf(a[0] ?? ''));
      return v === undefined ? '' : cstr(b2s(v));
    },
    write: (chan, data, value) => {
      const a = separateArgs(data, ',', true, 2);
      const target = a[1] ? findChannel(a[1]) : chan;
      if (!target) return false;
      target.shared.set(keyOf(a[0] ?? ''), s2b(value));
      return true;
    },
  },
  HASH: {
    read: (chan, data) => {
      const a = separateArgs(data, ',', true, 2);
      if (a.length !== 2) return '';
      return chan._getVarBytes(`~HASH~${a[0]}~${a[1]}~`) ?? '';
    },
    write: (chan, data, value) => {
      const a = separateArgs(data, ',', true, 2);
      if (a.length !== 2) return false;
      const h = a[0]!;
      const prefix = h.startsWith('__') ? '__' : h.startsWith('_') ? '_' : '';
      chan._setVarHelper(`${prefix}~HASH~${h.slice(prefix.length)}~${a[1]}~`, value);
      return true;
    },
  },
  CALLERID: {
    read: (chan, data) => {
      const item = asciiLower(separateArgs(data, ',', true, 2)[0] ?? '');
      if (item === 'name') return toBytes(chan.callerIdName ?? '');
      if (item === 'num' || item === 'number') return toBytes(chan.callerId ?? '');
      if (item === 'all') return callerIdAll(chan);
      return null;
    },
    write: (chan, data, value) => {
      const item = asciiLower(separateArgs(data, ',', true, 2)[0] ?? '');
      const v = s2b(value).toString('utf8');
      if (item === 'name') chan.callerIdName = v;
      else if (item === 'num' || item === 'number') chan.callerId = v;
      else if (item === 'all') {
        const m = /^\s*(?:"((?:[^"\\]|\\.)*)"|([^<]*?))\s*(?:<([^>]*)>)?\s*$/.exec(v);
        chan.callerIdName = (m?.[1] ?? m?.[2] ?? '').replace(/\\(.)/g, '$1');
        chan.callerId = m?.[3] ?? '';
      } else return false;
      return true;
    },
  },
  CHANNEL: {
    read: (chan, data) => {
      const item = asciiLower(data ?? '');
      if (item === 'language') return toBytes(chan.language);
      if (item === 'name') return toBytes(chan.name);
      if (item === 'uniqueid') return toBytes(chan.uniqueId);
      if (item === 'state') return chan.state === STATE_UP ? 'Up' : 'Ring';
      if (item === 'context') return toBytes(chan.context);
      if (item === 'exten') return toBytes(chan.extension);
      return null;
    },
    write: (chan, data, value) => {
      if (asciiLower(data ?? '') !== 'language') return false;
      chan.language = s2b(value).toString('utf8');
      return true;
    },
  },
  CUT: { read2: true, read: cutFunc },
  MATH: { read: mathFunc },
  BASE64_ENCODE: { read2: true, read: (_c, data) => (data ? s2b(data).toString('base64') : null) },
  BASE64_DECODE: { read2: true, read: (_c, data) => (data ? cstr(b2s(Buffer.from(data, 'base64'))) : null) },
  TOUPPER: { read2: true, read: (_c, data) => asciiUpper(data ?? '') },
  TOLOWER: { read2: true, read: (_c, data) => asciiLower(data ?? '') },
};

/** ast_custom_function_find: names are case-insensitive. */
function lookupFunction(fname: Bytes): FuncDef | undefined {
  const k = asciiUpper(fname);
  return Object.hasOwn(FUNCTIONS, k) ? FUNCTIONS[k] : undefined;
}

/** func_args: name before the first '(', args up to the last ')'. */
function splitFunction(expr: Bytes): { fname: Bytes; args: Bytes | null } {
  const p = expr.indexOf('(');
  if (p < 0) return { fname: expr, args: null };
  const rest = expr.slice(p + 1);
  const q = rest.lastIndexOf(')');
  return { fname: expr.slice(0, p), args: q < 0 ? rest : rest.slice(0, q) };
}

/** ast_func_read/ast_func_read2. len: the caller's buffer (GET VARIABLE: 1024), or null for
 * ast_func_read2(..., 0) in substitution, where read-only functions get VAR_BUF_SIZE. */
function funcRead(chan: FakeChannel, expr: Bytes, len: number | null): Bytes | null {
  const { fname, args } = splitFunction(expr);
  const f = lookupFunction(fname);
  if (!f?.read) return null;
  const size = len ?? (f.read2 ? Infinity : (f.readMax ?? VAR_BUF_SIZE));
  const r = f.read(chan, args, size);
  if (r === null) return null;
  const s = cstr(r);
  return Number.isFinite(size) ? s.slice(0, Math.max(0, size - 1)) : s;
}

function funcWrite(chan: FakeChannel, expr: Bytes, value: Bytes): boolean {
  const { fname, args } = splitFunction(expr);
  const f = lookupFunction(fname);
  if (!f?.write) return false;
  return f.write(chan, args, value);
}

/** $[...] (ast_str_expr): integers/decimals with | & comparisons + - * / % ! and parentheses;
 * a lone operand is returned as is. Partial: no regex (=~, :), no ?: , no functions. */
function evalExpression(src: Bytes): Bytes {
  const toks: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|<=|>=|!=|==|[|&=<>+\-*/%!()]|[^\s|&=<>+\-*/%!()"]+)/y;
  let at = 0;
  while (at < src.length) {
    re.lastIndex = at;
    const m = re.exec(src);
    if (!m) break;
    toks.push(m[1]!);
    at = re.lastIndex;
  }
  if (src.slice(at).trim() !== '') return '';
  let i = 0;
  const num = (s: string): number | null => (/^-?\d+(\.\d+)?$/.test(s) ? Number(s) : null);
  const truthy = (s: string): boolean => s !== '' && s !== '0';
  const fail = (): never => {
    throw new Error('expr');
  };
  const primary = (): string => {
    const t = toks[i++];
    if (t === undefined) fail();
    if (t === '(') {
      const v = orExpr();
      if (toks[i++] !== ')') fail();
      return v;
    }
    if (t === '-') {
      const v = num(primary());
      return v === null ? fail() : formatNumber(-v);
    }
    if (t === '!') return truthy(primary()) ? '0' : '1';
    if (/^[|&=<>+*/%)]$|^(<=|>=|!=|==)$/.test(t!)) fail();
    return t!.startsWith('"') ? t!.slice(1, -1).replace(/\\(.)/g, '$1') : t!;
  };
  const mul = (): string => {
    let l = primary();
    while (toks[i] === '*' || toks[i] === '/' || toks[i] === '%') {
      const op = toks[i++];
      const a = num(l);
      const b = num(primary());
      if (a === null || b === null || ((op === '/' || op === '%') && b === 0)) fail();
      l = formatNumber(op === '*' ? a! * b! : op === '/' ? a! / b! : a! % b!);
    }
    return l;
  };
  const add = (): string => {
    let l = mul();
    while (toks[i] === '+' || toks[i] === '-') {
      const op = toks[i++];
      const a = num(l);
      const b = num(mul());
      if (a === null || b === null) fail();
      l = formatNumber(op === '+' ? a! + b! : a! - b!);
    }
    return l;
  };
  const cmp = (): string => {
    let l = add();
    while (['=', '==', '!=', '<', '>', '<=', '>='].includes(toks[i] ?? '')) {
      const op = toks[i++];
      const r = add();
      const a = num(l);
      const b = num(r);
      const c = a !== null && b !== null ? a - b : l < r ? -1 : l > r ? 1 : 0;
      const ok = op === '=' || op === '==' ? c === 0 : op === '!=' ? c !== 0 : op === '<' ? c < 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c >= 0;
      l = ok ? '1' : '0';
    }
    return l;
  };
  const andExpr = (): string => {
    let l = cmp();
    while (toks[i] === '&') {
      i++;
      const r = cmp();
      l = truthy(l) && truthy(r) ? l : '0';
    }
    return l;
  };
  function orExpr(): string {
    let l = andExpr();
    while (toks[i] === '|') {
      i++;
      const r = andExpr();
      l = truthy(l) ? l : truthy(r) ? r : '0';
    }
    return l;
  }
  try {
    if (toks.length === 0) return '';
    const v = orExpr();
    return i === toks.length ? v : '';
  } catch {
    return '';
  }
}

/** ast_str_substitute_variables_full on a byte string (no length limit). */
function substitute(chan: FakeChannel, templ: Bytes): Bytes {
  const t = cstr(templ);
  let out = '';
  let w = 0;
  while (w < t.length) {
    const d = t.indexOf('$', w);
    let kind: '{' | '[' | null = null;
    let pos: number;
    if (d < 0) pos = t.length - w;
    else {
      pos = d - w;
      const n = t.charAt(d + 1);
      if (n === '{' || n === '[') kind = n;
      else pos++; // a '$' that starts nothing is copied too
    }
    out += t.slice(w, w + pos);
    w += pos;
    if (kind === null) continue;
    const open = kind;
    const close = kind === '{' ? '}' : ']';
    const other = kind === '{' ? '[' : '{';
    const vars = w + 2;
    let vare = vars;
    let brackets = 1;
    let needsub = false;
    while (brackets && vare < t.length) {
      const c = t.charAt(vare);
      const c1 = t.charAt(vare + 1);
      if (c === '$' && c1 === open) {
        needsub = true;
        brackets++;
        vare++;
      } else if (c === open) brackets++;
      else if (c === close) brackets--;
      else if (c === '$' && c1 === other) {
        needsub = true;
        vare++;
      }
      vare++;
    }
    let len = vare - vars;
    if (!brackets) len--; // missing '}' keeps the whole rest as the name
    w = vare;
    const substr1 = t.slice(vars, vars + len);
    const finalvars = needsub ? substitute(chan, substr1) : substr1;
    if (kind === '[') {
      out += evalExpression(finalvars);
      continue;
    }
    const p = parseVariableName(finalvars);
    let value: Bytes | null;
    if (p.isFunc) value = funcRead(chan, p.name, null);
    else value = retrieveVariable(chan, p.name) ?? '';
    if (value !== null) out += substring(value, p.offset, p.length);
  }
  return out;
}

/** GET FULL VARIABLE's substitution of `expr` against `channel` (ast_str_substitute_variables):
 * ${VAR}, ${VAR:offset:length}, nested ${FUNC(${X})}, $[...] partly; unknown names give "".
 * Functions may change the channel (SET). Returns the raw bytes. */
export function substituteFull(expr: string | Buffer, channel: FakeChannel): Buffer {
  return s2b(substitute(channel, toBytes(expr)));
}

// ---------------------------------------------------------------------------------------------
// The environment block (launch_netscript + setup_env)

interface AgiTarget {
  host: string;
  port: number;
  script: Bytes;
}

function parseAgiUrl(url: Bytes): AgiTarget {
  if (!/^agi:\/\//i.test(url)) throw new Error(`fake-asterisk: only agi:// URLs are supported, got ${JSON.stringify(url)}`);
  let host = url.slice(6);
  let script = '';
  const slash = host.indexOf('/');
  if (slash >= 0) {
    script = host.slice(slash + 1);
    host = host.slice(0, slash);
  }
  let port = AGI_PORT;
  const m = /^\[([^\]]*)\](?::(\d*))?$/.exec(host) ?? /^([^:]*)(?::(\d*))?$/.exec(host);
  if (m) {
    host = m[1]!;
    const p = Number.parseInt(m[2] ?? '', 10);
    if (p > 0) port = p; // port 0 or none: AGI_PORT
  }
  return { host, port, script };
}

/** The env lines Asterisk writes, each without its \n, ending with the empty line. An argument
 * holding LF is written raw (it breaks the framing, as README.md says); past 127 arguments the
 * remainder is joined with ',' into the last, as AST_STANDARD_APP_ARGS leaves it. */
export function buildEnvironment(channel: FakeChannel, url: string, args: ReadonlyArray<string | Buffer> = []): Buffer[] {
  const request = toBytes(url);
  const target = parseAgiUrl(request);
  let argv = args.map(toBytes);
  if (argv.length > MAX_ARGS - 1) argv = [...argv.slice(0, MAX_ARGS - 2), argv.slice(MAX_ARGS - 2).join(',')];
  const lines: Bytes[] = ['agi_network: yes'];
  if (target.script !== '') lines.push(`agi_network_script: ${target.script}`);
  const c = channel;
  lines.push(
    `agi_request: ${request}`,
    `agi_channel: ${toBytes(c.name)}`,
    `agi_language: ${toBytes(c.language)}`,
    `agi_type: ${toBytes(c.name.split('/')[0] ?? '')}`,
    `agi_uniqueid: ${toBytes(c.uniqueId)}`,
    `agi_version: ${AST_VERSION}`,
    `agi_callerid: ${toBytes(c.callerId ?? 'unknown')}`,
    `agi_calleridname: ${toBytes(c.callerIdName ?? 'unknown')}`,
    `agi_callingpres: ${c.callerId === undefined ? 67 : 0}`,
    'agi_callingani2: 0',
    'agi_callington: 0',
    'agi_callingtns: 0',
    'agi_dnid: unknown',
    'agi_rdnis: unknown',
    `agi_context: ${toBytes(c.context)}`,
    `agi_extension: ${toBytes(c.extension)}`,
    `agi_priority: ${c.priority}`,
    'agi_enhanced: 0.0',
    'agi_accountcode: ',
    `agi_threadid: ${c.threadId}`,
  );
  argv.forEach((a, i) => lines.push(`agi_arg_${i + 1}: ${a}`));
  lines.push('');
  return lines.map(s2b);
}

// ---------------------------------------------------------------------------------------------
// AGI commands (res_agi.c commands[], agi_handle_command)

interface CmdCtx {
  chan: FakeChannel;
  session: AgiSession;
  send(s: Bytes): void;
}
type Handler = (ctx: CmdCtx, argv: Bytes[]) => number | Promise<number>;
interface AgiCommand {
  cmda: string[];
  dead: boolean;
  handler?: Handler;
  usage?: string;
}

async function execApp(ctx: CmdCtx, app: Bytes, data: Bytes): Promise<number> {
  const { chan } = ctx;
  switch (asciiLower(app)) {
    case 'noop':
    case 'verbose':
    case 'log':
      return 0;
    case 'set': {
      // pbx_builtin_setvar: name up to the first '=', no quote removal.
      const eq = data.indexOf('=');
      if (data === '' || eq < 0) return 0;
      chan._setVarHelper(data.slice(0, eq), data.slice(eq + 1));
      return 0;
    }
    case 'wait': {
      // ast_safe_sleep: -1 when the channel hangs up (hangupduringcmd.log: 200 result=-1).
      const secs = Number.parseFloat(data);
      if (chan.hungUp) return -1;
      return (await ctx.session.sleep(Number.isFinite(secs) && secs > 0 ? secs * 1000 : 0)) ? 0 : -1;
    }
    case 'answer':
      if (chan.state !== STATE_UP && !chan.hungUp) chan.state = STATE_UP;
      return chan.hungUp ? -1 : 0;
    case 'hangup':
      chan.hangup();
      return -1;
    default:
      ctx.session.event(`unknown-app:${keyOf(app)}`);
      return -2;
  }
}

const unsupported: Handler = (ctx, argv) => {
  // Not emulated: answer like a harmless success and say so in the transcript.
  ctx.session.event(`unsupported:${keyOf(argv.join(' '))}`);
  ctx.send('200 result=0\n');
  return RESULT_SUCCESS;
};

/** The registered commands in res_agi.c order, with their "runs dead" flags. */
const COMMANDS: AgiCommand[] = [
  {
    cmda: ['answer'],
    dead: false,
    handler: ({ chan, send }) => {
      let res = 0;
      if (chan.state !== STATE_UP) {
        if (chan.hungUp) res = -1;
        else chan.state = STATE_UP;
      }
      send(`200 result=${res}\n`);
      return res >= 0 ? RESULT_SUCCESS : RESULT_FAILURE;
    },
  },
  { cmda: ['asyncagi', 'break'], dead: true, handler: ({ send }) => (send('200 result=0\n'), RESULT_SUCCESS) },
  {
    cmda: ['channel', 'status'],
    dead: false,
    handler: ({ chan, send }, argv) => {
      if (argv.length === 2) send(`200 result=${chan.state}\n`);
      else if (argv.length === 3) {
        const other = findChannel(argv[2]!);
        send(other ? `200 result=${other.state}\n` : '200 result=-1\n');
      } else return RESULT_SHOWUSAGE;
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['database', 'del'],
    dead: true,
    usage: USAGE_DATABASE_DEL,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 4) return RESULT_SHOWUSAGE;
      send(`200 result=${chan.database.delete(dbKey(argv[2]!, argv[3]!)) ? 1 : 0}\n`);
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['database', 'deltree'],
    dead: true,
    usage: USAGE_DATABASE_DELTREE,
    handler: ({ chan, send }, argv) => {
      if (argv.length < 3 || argv.length > 4) return RESULT_SHOWUSAGE;
      const prefix = keyOf(argv.length === 4 ? `/${argv[2]}/${argv[3]}` : `/${argv[2]}`);
      for (const k of [...chan.database.keys()]) if (k === prefix || k.startsWith(`${prefix}/`)) chan.database.delete(k);
      send('200 result=1\n');
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['database', 'get'],
    dead: true,
    usage: USAGE_DATABASE_GET,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 4) return RESULT_SHOWUSAGE;
      const v = chan.database.get(dbKey(argv[2]!, argv[3]!));
      send(v === undefined ? '200 result=0\n' : `200 result=1 (${cstr(b2s(v))})\n`);
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['database', 'put'],
    dead: true,
    usage: USAGE_DATABASE_PUT,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 5) return RESULT_SHOWUSAGE;
      chan.database.set(dbKey(argv[2]!, argv[3]!), s2b(argv[4]!));
      send('200 result=1\n');
      return RESULT_SUCCESS;
    },
  },
  {
    // Runs dead: agihangup.log answers EXEC after HANGUP with 200, not 511.
    cmda: ['exec'],
    dead: true,
    usage: USAGE_EXEC,
    handler: async (ctx, argv) => {
      if (argv.length < 2) return RESULT_SHOWUSAGE;
      let data = argv.length === 2 ? '' : argv[2]!;
      // Only with AGIEXECFULL are the options substituted (quoting.log, NL3).
      if (argv.length > 2 && astTrue(ctx.chan.getVar('AGIEXECFULL'))) data = substitute(ctx.chan, data);
      const res = await execApp(ctx, argv[1]!, data);
      ctx.send(`200 result=${res}\n`);
      return res; // "Even though this is wrong, users are depending upon this result."
    },
  },
  { cmda: ['get', 'data'], dead: false, handler: unsupported },
  {
    cmda: ['get', 'full', 'variable'],
    dead: true,
    usage: USAGE_GET_FULL_VARIABLE,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 4 && argv.length !== 5) return RESULT_SHOWUSAGE;
      const target = argv.length === 5 ? findChannel(argv[4]!) : chan;
      // No length cut here (long.log); an unknown channel gives result=0 (proto.log).
      send(target ? `200 result=1 (${substitute(target, argv[3]!)})\n` : '200 result=0\n');
      return RESULT_SUCCESS;
    },
  },
  { cmda: ['get', 'option'], dead: false, handler: unsupported },
  {
    cmda: ['get', 'variable'],
    dead: true,
    usage: USAGE_GET_VARIABLE,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 3) return RESULT_SHOWUSAGE;
      const name = argv[2]!;
      // A name ending in ')' is a function read; no ${} substitution (funcs.log). The value
      // goes through char tempstr[1024]: cut at 1023 bytes (long.log).
      let ret: Bytes | null;
      if (name !== '' && name.endsWith(')')) ret = funcRead(chan, name, 1024);
      else {
        const v = retrieveVariable(chan, name);
        ret = v === null ? null : v.slice(0, 1023);
      }
      send(ret === null ? '200 result=0\n' : `200 result=1 (${ret})\n`);
      return RESULT_SUCCESS;
    },
  },
  { cmda: ['gosub'], dead: false, handler: unsupported },
  {
    cmda: ['hangup'],
    dead: false,
    usage: USAGE_HANGUP,
    handler: ({ chan, send }, argv) => {
      if (argv.length === 1) {
        chan.hangup(); // the HANGUP notification follows the answer (agihangup.log)
        send('200 result=1\n');
      } else if (argv.length === 2) {
        const other = findChannel(argv[1]!);
        other?.hangup();
        send(other ? '200 result=1\n' : '200 result=-1\n');
      } else return RESULT_SHOWUSAGE;
      return RESULT_SUCCESS;
    },
  },
  { cmda: ['noop'], dead: true, handler: ({ send }) => (send('200 result=0\n'), RESULT_SUCCESS) },
  { cmda: ['receive', 'char'], dead: false, handler: unsupported },
  { cmda: ['receive', 'text'], dead: false, handler: unsupported },
  { cmda: ['record', 'file'], dead: false, handler: unsupported },
  { cmda: ['say', 'alpha'], dead: false, handler: unsupported },
  { cmda: ['say', 'digits'], dead: false, handler: unsupported },
  { cmda: ['say', 'number'], dead: false, handler: unsupported },
  { cmda: ['say', 'phonetic'], dead: false, handler: unsupported },
  { cmda: ['say', 'date'], dead: false, handler: unsupported },
  { cmda: ['say', 'time'], dead: false, handler: unsupported },
  { cmda: ['say', 'datetime'], dead: false, handler: unsupported },
  { cmda: ['send', 'image'], dead: false, handler: unsupported },
  { cmda: ['send', 'text'], dead: false, handler: unsupported },
  { cmda: ['set', 'autohangup'], dead: false, handler: ({ send }, argv) => (argv.length !== 3 ? RESULT_SHOWUSAGE : (send('200 result=0\n'), RESULT_SUCCESS)) },
  {
    cmda: ['set', 'callerid'],
    dead: false,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 3) return RESULT_SHOWUSAGE;
      FUNCTIONS.CALLERID!.write!(chan, 'all', argv[2]!);
      send('200 result=1\n');
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['set', 'context'],
    dead: false,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 3) return RESULT_SHOWUSAGE;
      chan.context = s2b(argv[2]!).toString('utf8');
      send('200 result=0\n');
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['set', 'extension'],
    dead: false,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 3) return RESULT_SHOWUSAGE;
      chan.extension = s2b(argv[2]!).toString('utf8');
      send('200 result=0\n');
      return RESULT_SUCCESS;
    },
  },
  { cmda: ['set', 'music'], dead: false, handler: unsupported },
  {
    cmda: ['set', 'priority'],
    dead: false,
    handler: ({ chan, send }, argv) => {
      if (argv.length !== 3) return RESULT_SHOWUSAGE;
      const n = scanInt(argv[2]!, 0);
      if (n) chan.priority = n.value;
      send('200 result=0\n');
      return RESULT_SUCCESS;
    },
  },
  {
    cmda: ['set', 'variable'],
    dead: true,
    usage: USAGE_SET_VARIABLE,
    handler: ({ chan, send }, argv) => {
      // Exactly 4 words; always result=1, even when a function write fails (funcs.log).
      if (argv.length !== 4) return RESULT_SHOWUSAGE;
      chan._setVarHelper(argv[2]!, argv[3]!);
      send('200 result=1\n');
      return RESULT_SUCCESS;
    },
  },
  { cmda: ['stream', 'file'], dead: false, handler: unsupported },
  { cmda: ['control', 'stream', 'file'], dead: false, handler: unsupported },
  { cmda: ['tdd', 'mode'], dead: false, handler: unsupported },
  {
    cmda: ['verbose'],
    dead: true,
    usage: USAGE_VERBOSE,
    handler: ({ send }, argv) => (argv.length < 2 ? RESULT_SHOWUSAGE : (send('200 result=1\n'), RESULT_SUCCESS)),
  },
  { cmda: ['wait', 'for', 'digit'], dead: false, handler: unsupported },
  { cmda: ['speech', 'create'], dead: false, handler: unsupported },
  { cmda: ['speech', 'set'], dead: false, handler: unsupported },
  { cmda: ['speech', 'destroy'], dead: true, handler: unsupported },
  { cmda: ['speech', 'load', 'grammar'], dead: false, handler: unsupported },
  { cmda: ['speech', 'unload', 'grammar'], dead: true, handler: unsupported },
  { cmda: ['speech', 'activate', 'grammar'], dead: false, handler: unsupported },
  { cmda: ['speech', 'deactivate', 'grammar'], dead: false, handler: unsupported },
  { cmda: ['speech', 'recognize'], dead: false, handler: unsupported },
];

/** find_command(argv, 0): every command word must match case-insensitively; extra words are the
 * command's arguments. */
function findCommand(argv: Bytes[]): AgiCommand | undefined {
  for (const e of COMMANDS) {
    let match = true;
    let y = 0;
    for (; match && y < argv.length; y++) {
      const w = e.cmda[y];
      if (w === undefined) break;
      if (!strcasecmpEq(w, argv[y]!)) match = false;
    }
    if (e.cmda[y] !== undefined) match = false;
    if (match) return e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The session (launch_netscript + run_agi)

class AgiSession {
  readonly transcript: TranscriptEntry[] = [];
  readonly commands: string[] = [];
  private socket: net.Socket | null = null;
  /** Bytes received but not yet read() by stdio: what poll() sees. */
  private kernel: Buffer[] = [];
  private kernelLen = 0;
  private peerEof = false;
  private peerError = false;
  /** glibc's FILE buffer and its sticky EOF flag. */
  private stdio: Buffer = Buffer.alloc(0);
  private stdioPos = 0;
  private eofSeen = false;
  private waiter: (() => void) | null = null;
  private aborted: Error | null = null;
  private answerParts: Buffer[] | null = null;

  constructor(
    private readonly chan: FakeChannel,
    private readonly url: string,
    private readonly args: ReadonlyArray<string | Buffer>,
    private readonly options: AgiRunOptions,
  ) {}

  event(what: string): void {
    this.transcript.push({ dir: 'event', what });
  }

  kick(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  abort(err: Error): void {
    this.aborted = err;
    this.socket?.destroy();
    this.kick();
  }

  private async waitUntil(pred: () => boolean): Promise<void> {
    for (;;) {
      if (this.aborted) throw this.aborted;
      if (pred()) return;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** For app Wait: true when the time passed, false when the channel hung up first. */
  async sleep(ms: number): Promise<boolean> {
    let done = false;
    const t = setTimeout(() => {
      done = true;
      this.kick();
    }, ms);
    try {
      await this.waitUntil(() => done || this.chan.hungUp);
    } finally {
      clearTimeout(t);
    }
    return !this.chan.hungUp;
  }

  private fdReadable(): boolean {
    return this.kernelLen > 0 || this.peerEof || this.peerError;
  }

  private takeKernel(max: number): Buffer {
    const all = this.kernel.length === 1 ? this.kernel[0]! : Buffer.concat(this.kernel);
    const n = Math.min(max, all.length);
    const rest = all.subarray(n);
    this.kernel = rest.length ? [rest] : [];
    this.kernelLen = rest.length;
    return all.subarray(0, n);
  }

  /** glibc fgets on the non-blocking socket: at most n-1 bytes, stops after \n; reads the kernel
   * in STDIO_BUFSIZ pieces only when its buffer is empty. */
  private fgets(buf: Buffer, off: number, n: number): { eagain: boolean; error: boolean } {
    let count = 0;
    let eagain = false;
    let error = false;
    while (count < n - 1) {
      if (this.stdioPos >= this.stdio.length) {
        if (this.eofSeen) break;
        if (this.kernelLen === 0) {
          if (this.peerError) error = true;
          else if (this.peerEof) this.eofSeen = true;
          else eagain = true;
          break;
        }
        this.stdio = this.takeKernel(STDIO_BUFSIZ);
        this.stdioPos = 0;
      }
      const c = this.stdio[this.stdioPos++]!;
      buf[off + count++] = c;
      if (c === 0x0a) break;
    }
    if (count > 0) buf[off + count] = 0;
    return { eagain, error };
  }

  /** run_agi's read loop: fgets until \n, 8191 bytes, EOF or an error; a line without its \n
   * waits (spins, in Asterisk) for more bytes. Returns the C string in buf. */
  private async readCommandLine(): Promise<Bytes> {
    const buf = Buffer.alloc(AGI_BUF_LEN);
    const strlen = (): number => {
      const z = buf.indexOf(0);
      return z < 0 ? AGI_BUF_LEN : z;
    };
    let buflen = 0;
    let len = AGI_BUF_LEN;
    while (len > 1) {
      const r = this.fgets(buf, buflen, len);
      if (this.eofSeen) break;
      if (r.error) break;
      buflen = strlen();
      if (buflen && buf[buflen - 1] === 0x0a) break;
      len = AGI_BUF_LEN - buflen;
      if (r.eagain) await this.waitUntil(() => this.fdReadable());
    }
    return b2s(buf.subarray(0, strlen()));
  }

  private rawWrite(data: Buffer): boolean {
    const s = this.socket;
    if (!s || s.destroyed || !s.writable || this.peerError) return false;
    s.write(data);
    return true;
  }

  /** ast_agi_send: one write per call. */
  private send(s: Bytes): void {
    const b = s2b(s);
    this.answerParts?.push(b);
    this.rawWrite(b);
  }

  private sendHangup(): void {
    this.event(this.rawWrite(Buffer.from('HANGUP\n')) ? 'hangup-sent' : 'hangup-write-failed');
  }

  private connect(target: AgiTarget): Promise<boolean> {
    const timeoutMs = this.options.connectTimeoutMs ?? MAX_AGI_CONNECT;
    return new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
      this.socket = socket;
      let settled = false;
      const finish = (ok: boolean, what?: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (what) this.event(what);
        resolve(ok);
      };
      const timer = setTimeout(() => {
        socket.destroy();
        finish(false, 'connect-timeout');
      }, timeoutMs);
      socket.on('error', (err: NodeJS.ErrnoException) => {
        this.event(`socket-error:${err.code ?? err.message}`);
        if (!settled) {
          finish(false);
          return;
        }
        this.peerError = true;
        this.kick();
      });
      socket.on('connect', () => finish(true, 'connected'));
      socket.on('data', (chunk: Buffer) => {
        this.kernel.push(chunk);
        this.kernelLen += chunk.length;
        this.kick();
      });
      socket.on('end', () => {
        this.peerEof = true;
        this.event('server-closed');
        this.kick();
      });
      socket.on('close', () => {
        finish(false);
        if (!this.peerEof) this.peerError = true;
        this.kick();
      });
    });
  }

  private close(): void {
    const s = this.socket;
    if (!s || s.destroyed) return;
    if (this.kernelLen > 0) {
      // close() with unread bytes in the receive queue makes the kernel send RST.
      s.resetAndDestroy();
      this.event('closed-rst');
    } else {
      s.destroySoon();
      this.event('closed');
    }
  }

  private async handleCommand(line: Bytes, dead: boolean): Promise<'SUCCESS' | 'FAILURE'> {
    const argv = parseArgs(line);
    const c = findCommand(argv);
    this.answerParts = [];
    const ctx: CmdCtx = { chan: this.chan, session: this, send: (s) => this.send(s) };
    let outcome: 'SUCCESS' | 'FAILURE' = 'SUCCESS';
    try {
      if (c && (!dead || c.dead)) {
        const res = await c.handler!(ctx, argv);
        if (res === RESULT_SHOWUSAGE) {
          if (!c.usage) this.send(USAGE_NONE);
          else {
            this.send(USAGE_HEAD);
            this.send(c.usage);
            this.send(USAGE_TAIL);
          }
        } else if (res === RESULT_FAILURE) outcome = 'FAILURE';
      } else if (c) this.send(ANSWER_511);
      else this.send(ANSWER_510);
    } finally {
      this.transcript.push({ dir: 'answer', data: Buffer.concat(this.answerParts) });
      this.answerParts = null;
    }
    return outcome;
  }

  private async loop(env: Buffer[]): Promise<AgiStatus> {
    const chan = this.chan;
    // agi_exec: a channel already hung up runs AGI in dead mode from the start.
    let dead = chan.hungUp;
    let needhup = false;
    let status: AgiStatus = 'SUCCESS';
    const sendSighup = !astFalse(chan.getVar('AGISIGHUP'));
    const exitOnHangup = astTrue(chan.getVar('AGIEXITONHANGUP'));

    if (this.options.envWriteMode === 'one-write') this.rawWrite(Buffer.concat(env.map((l) => Buffer.concat([l, Buffer.from('\n')]))));
    for (const l of env) {
      if (this.options.envWriteMode !== 'one-write') this.rawWrite(Buffer.concat([l, Buffer.from('\n')]));
      this.transcript.push({ dir: 'env', line: l });
    }
    this.event('env-sent');

    for (;;) {
      if (needhup) {
        needhup = false;
        dead = true;
        if (sendSighup) this.sendHangup();
        if (exitOnHangup) break; // exitonhangup.log: HANGUP, then the final HANGUP, then FIN
      }
      // ast_waitfor_nandfds: the channel wins over the socket; a dead channel is not watched.
      if (!dead && !chan.hungUp) await this.waitUntil(() => chan.hungUp || this.fdReadable());
      else if (dead) await this.waitUntil(() => this.fdReadable());
      if (!dead && chan.hungUp) {
        this.event('channel-hangup');
        needhup = true;
        if (status === 'SUCCESS') status = 'HANGUP';
        continue;
      }
      const line = await this.readCommandLine();
      if (line === '') {
        this.event('script-completed');
        break;
      }
      if (/^failure/i.test(line)) {
        // "Special case for inability to execute child process": ends AGI with FAILURE.
        this.event('failure-line');
        status = 'FAILURE';
        break;
      }
      const cmd = line.endsWith('\n') ? line.slice(0, -1) : line;
      this.transcript.push({ dir: 'cmd', line: s2b(cmd) });
      this.commands.push(keyOf(cmd));
      const r = await this.handleCommand(cmd, dead);
      if (r === 'FAILURE' && (dead || !chan.hungUp)) status = 'FAILURE';
    }
    // Every session ends with one more HANGUP (unless AGISIGHUP=no), then close.
    if (sendSighup) this.sendHangup();
    this.close();
    return status;
  }

  async run(): Promise<AgiRun> {
    const started = Date.now();
    const env = buildEnvironment(this.chan, this.url, this.args);
    const target = parseAgiUrl(toBytes(this.url));
    this.chan._sessions.add(this);
    let status: AgiStatus;
    try {
      if (await this.connect(target)) status = await this.loop(env);
      else {
        if (this.aborted) throw this.aborted;
        this.event('connect-failed');
        status = 'FAILURE';
      }
    } catch (err) {
      this.socket?.destroy();
      throw err;
    } finally {
      this.chan._sessions.delete(this);
    }
    this.chan.setVar('AGISTATUS', status);
    return { status, transcript: this.transcript, commands: this.commands, durationMs: Date.now() - started };
  }
}
