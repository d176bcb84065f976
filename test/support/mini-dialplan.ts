// A small interpreter of Asterisk dialplan (extensions.conf), just enough to run the shipped
// extensions_mcd.conf the way Asterisk 22 would, against a FakeChannel whose AGI() talks to the
// daemon. Each piece follows the Asterisk source it names:
//
//   loading       pbx_config.c   exten => name,prio[(label)],App(data) / same => n,...; numbered,
//                                `n` and `s` priorities; [globals]; the app's data is what lies
//                                between the first '(' and the last ')'
//   substitution  pbx_variables.c  ${VAR}, ${VAR:offset:length}, ${FUNC(args)} and $[expr], nested,
//                                each value cut at 4095 bytes, the whole data at 8191; builtins
//                                EXTEN CONTEXT PRIORITY CHANNEL UNIQUEID EPOCH, then channel
//                                variables, then globals; functions LEN EXISTS ISNULL IF LOCAL GLOBAL
//   expressions   ast_expr2.y/.fl  | & = == != < > <= >= + - * / % unary - and !, ( ), a ? b :: c;
//                                "quoted" strings keep their quotes (so `"a b" = "a b"` is 1 but
//                                `"a" = a` is 0); number results printed like %.18Lg
//   arguments     app.c __ast_app_separate_args  commas outside (), [] and "" separate; with
//                                STANDARD args (AGI, Verbose) quotes are dropped and `\x` is a
//                                literal x; RAW args (Gosub) keep both
//   apps          NoOp, Verbose, Log, Set (also LOCAL(x)= and GLOBAL(x)=), ExecIf, GotoIf, Goto,
//                 Gosub/Return (app_stack.c: ARGn/ARGC pushed as frame-local variables, shadowing
//                 and restored on Return; missing ARGn of an outer frame blanked), Wait (really
//                 waits), Answer, Hangup, AGI (FakeChannel.agi; AGISTATUS=HANGUP ends the run)
//
// Stricter than Asterisk on purpose, so a broken dialplan fails a test loudly instead of logging a
// warning: unknown applications and functions, a syntax error in $[...], a missing '}' or ']', a
// jump to a place that does not exist, a duplicate priority and the unsupported features below
// throw a DialplanError. Arithmetic on non-numbers, division by zero and characters the expression
// lexer skips behave as in Asterisk and are recorded in `warnings`.
//
// Not supported: pattern extensions (_X.), caller-ID matching (exten/cid), include =>, switch =>,
// the regex operators `:` `=~` `~~` and function calls inside $[...], ExecIf's deprecated comma
// syntax, channel variable inheritance beyond what FakeChannel does (it strips leading _ and __).
// Arithmetic uses doubles (Asterisk: long double): exact up to 2^53; fractions are printed with 15
// significant digits where Asterisk prints 18.

import { parseConfigFile, type ParsedConfig } from '../../src/config/asterisk-conf.js';
import { parseConfigText } from './config-text.js';
import type { AgiRun, AgiRunOptions, FakeChannel } from './fake-asterisk.js';
import { separateArgs } from './fake-asterisk.js';

export class DialplanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DialplanError';
  }
}

// ---------------------------------------------------------------------------------------------
// The dialplan

export interface DialplanPriority {
  readonly priority: number;
  readonly label: string | null;
  readonly app: string;
  /** Unsubstituted application data (between the first '(' and the last ')'). */
  readonly data: string;
  readonly file: string;
  readonly line: number;
}

export interface DialplanExtension {
  readonly name: string;
  /** By priority number. */
  readonly priorities: Map<number, DialplanPriority>;
}

export interface DialplanContext {
  readonly name: string;
  /** By extension name (exact match, as Asterisk compares plain extensions). */
  readonly extensions: Map<string, DialplanExtension>;
}

export interface Dialplan {
  /** By context name (case-sensitive, as in Asterisk). */
  readonly contexts: Map<string, DialplanContext>;
  /** [globals] */
  readonly globals: Map<string, string>;
}

/** Parses extensions.conf text with the repo's own Asterisk config parser. */
export function parseDialplan(text: string, file = '/etc/asterisk/extensions.conf'): Dialplan {
  return buildDialplan(parseConfigText(text, file));
}

export function loadDialplan(path: string): Dialplan {
  return buildDialplan(parseConfigFile(path));
}

function buildDialplan(parsed: ParsedConfig): Dialplan {
  const contexts = new Map<string, DialplanContext>();
  const globals = new Map<string, string>();
  for (const section of parsed.sections) {
    const lower = section.name.toLowerCase();
    if (lower === 'general') continue;
    if (lower === 'globals') {
      for (const e of section.entries) globals.set(e.key, e.value);
      continue;
    }
    // A context named twice gets both sets of entries (ast_context_find_or_create).
    let context = contexts.get(section.name);
    if (!context) {
      context = { name: section.name, extensions: new Map() };
      contexts.set(section.name, context);
    }
    let lastExten: string | null = null;
    let lastPri = -2;
    for (const entry of section.entries) {
      const where = `${entry.file}:${entry.line}`;
      const key = entry.key.toLowerCase();
      let value: string;
      if (key === 'exten') value = entry.value;
      else if (key === 'same') {
        if (lastExten === null) throw new DialplanError(`${where}: "same =>" with no "exten =>" before it in [${section.name}]`);
        value = `${lastExten},${entry.value}`;
      } else {
        throw new DialplanError(`${where}: "${entry.key} =>" is not supported by mini-dialplan`);
      }
      const parsedLine = parseExtenLine(value, lastPri, where);
      if (parsedLine === null) continue; // a hint
      lastExten = parsedLine.exten;
      lastPri = parsedLine.priority;
      let ext = context.extensions.get(parsedLine.exten);
      if (!ext) {
        ext = { name: parsedLine.exten, priorities: new Map() };
        context.extensions.set(parsedLine.exten, ext);
      }
      if (ext.priorities.has(parsedLine.priority)) {
        throw new DialplanError(`${where}: priority ${parsedLine.priority} of ${parsedLine.exten}@${section.name} is defined twice`);
      }
      if (parsedLine.label !== null) {
        for (const p of ext.priorities.values()) {
          if (p.label === parsedLine.label) throw new DialplanError(`${where}: label "${parsedLine.label}" used twice in ${parsedLine.exten}@${section.name}`);
        }
      }
      ext.priorities.set(parsedLine.priority, { ...parsedLine, file: entry.file, line: entry.line });
    }
  }
  return { contexts, globals };
}

function parseExtenLine(value: string, lastPri: number, where: string): { exten: string; priority: number; label: string | null; app: string; data: string } | null {
  const c1 = value.indexOf(',');
  if (c1 < 0) throw new DialplanError(`${where}: no priority in "${value}"`);
  const exten = value.slice(0, c1).trim();
  if (exten === '') throw new DialplanError(`${where}: empty extension name`);
  if (exten.startsWith('_')) throw new DialplanError(`${where}: pattern extensions (${exten}) are not supported by mini-dialplan`);
  if (exten.includes('/')) throw new DialplanError(`${where}: caller-ID matching (${exten}) is not supported by mini-dialplan`);
  const rest = value.slice(c1 + 1);
  const c2 = rest.indexOf(',');
  let pri = (c2 < 0 ? rest : rest.slice(0, c2)).trim();
  const appl = c2 < 0 ? '' : rest.slice(c2 + 1);
  let label: string | null = null;
  const lp = pri.indexOf('(');
  if (lp >= 0) {
    const rp = pri.indexOf(')', lp);
    if (rp < 0) throw new DialplanError(`${where}: label missing its ')' in "${pri}"`);
    label = pri.slice(lp + 1, rp);
    pri = pri.slice(0, lp).trim();
  }
  let priority: number;
  if (pri === 'hint') return null;
  if (pri === 'n' || pri === 'next') {
    if (lastPri < -1) throw new DialplanError(`${where}: "n" priority on the first entry`);
    priority = lastPri + 1;
  } else if (pri === 's' || pri === 'same') {
    if (lastPri < -1) throw new DialplanError(`${where}: "s" priority on the first entry`);
    priority = lastPri;
  } else if (/^[0-9]+$/.test(pri) && Number(pri) > 0) {
    priority = Number(pri);
  } else {
    throw new DialplanError(`${where}: invalid priority "${pri}"`);
  }
  const { app, data } = splitApp(appl.replace(/^[ \t]+/, ''));
  if (app === '') throw new DialplanError(`${where}: no application`);
  return { exten, priority, label, app, data };
}

/** `App(data)` → name before the first '(', data up to the last ')' (pbx_config.c, app_exec.c). */
function splitApp(s: string): { app: string; data: string } {
  const p = s.indexOf('(');
  if (p < 0) return { app: s, data: '' };
  const rest = s.slice(p + 1);
  const q = rest.lastIndexOf(')');
  return { app: s.slice(0, p), data: q < 0 ? rest : rest.slice(0, q) };
}

// ---------------------------------------------------------------------------------------------
// Argument splitting (main/app.c)

// __ast_app_separate_args lives with the fake Asterisk (it splits function arguments there too).
export { separateArgs };

/** pbx_checkcondition: "" is false, a leading integer is its truth, any other string is true. */
export function checkCondition(s: string): boolean {
  if (s === '') return false;
  const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(s);
  if (m) return Number(m[1]) !== 0;
  return true;
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Cuts to at most `max` UTF-8 bytes (a character cut in two is dropped whole). */
function cutBytes(s: string, max: number): string {
  if (s.length <= max / 3 || utf8Length(s) <= max) return s;
  const b = Buffer.from(s, 'utf8').subarray(0, max).toString('utf8');
  return b.endsWith('\uFFFD') && !s.startsWith(b) ? b.slice(0, -1) : b;
}

// ---------------------------------------------------------------------------------------------
// Expressions ($[...], main/ast_expr2.y and ast_expr2.fl)

type Val = { t: 'num'; n: number } | { t: 'numstr'; s: string } | { t: 'str'; s: string };

type Tok = { k: 'tok'; v: Val } | { k: 'op'; op: string };

const OPS2 = ['||', '&&', '==', '=~', '~~', '>=', '<=', '!=', '::'];
const OPS1 = ['|', '&', '=', '>', '<', '+', ',', '-', '*', '/', '%', '?', '!', ':', '(', ')'];
const TRAIL_STOP = new Set([...'-\t\r \n$():?%/+=*<>!|&']);
const isGenericChar = (c: string): boolean => /[a-zA-Z0-9.';\\_^#@]/.test(c) || c.charCodeAt(0) >= 0x80;

function lex(src: string, warnings: string[]): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  /** After `${`: to the matching '}', then trailing non-operator characters (the var/trail states). */
  const gatherVar = (start: number): number => {
    let j = start;
    for (;;) {
      // j is at "${"
      let depth = 0;
      j += 2;
      while (j < src.length) {
        const c = src[j]!;
        j++;
        if (c === '{') depth++;
        else if (c === '}') {
          if (depth === 0) break;
          depth--;
        }
      }
      while (j < src.length && !TRAIL_STOP.has(src[j]!)) {
        if (src[j] === '$' && src[j + 1] === '{') break;
        j++;
      }
      if (!(src[j] === '$' && src[j + 1] === '{')) return j;
    }
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === '$' && src[i + 1] === '{') {
      const end = gatherVar(i);
      toks.push({ k: 'tok', v: { t: 'str', s: src.slice(i, end) } });
      i = end;
      continue;
    }
    if (c === '"') {
      const close = src.indexOf('"', i + 1);
      if (close >= 0) {
        toks.push({ k: 'tok', v: { t: 'str', s: src.slice(i, close + 1) } });
        i = close + 1;
        continue;
      }
    }
    // Longest match between the number rule and the generic token rule; a tie goes to the number.
    let num = 0;
    const mNum = /^[0-9]+(?:\.[0-9]+)?/.exec(src.slice(i));
    if (mNum) num = mNum[0].length;
    let j = i;
    while (j < src.length) {
      if (isGenericChar(src[j]!)) j++;
      else if (src[j] === '$' && j + 1 < src.length && src[j + 1] !== '{') j += 2;
      else break;
    }
    const gen = j - i;
    if (num > 0 || gen > 0) {
      if (gen > num && src[i + gen] === '$' && src[i + gen + 1] === '{') {
        const end = gatherVar(i + gen);
        toks.push({ k: 'tok', v: { t: 'str', s: src.slice(i, end) } });
        i = end;
      } else if (num >= gen) {
        toks.push({ k: 'tok', v: { t: 'numstr', s: src.slice(i, i + num) } });
        i += num;
      } else {
        toks.push({ k: 'tok', v: { t: 'str', s: src.slice(i, i + gen) } });
        i += gen;
      }
      continue;
    }
    const op = OPS2.find((o) => src.startsWith(o, i)) ?? OPS1.find((o) => src.startsWith(o, i));
    if (op !== undefined) {
      toks.push({ k: 'op', op });
      i += op.length;
      continue;
    }
    // flex's default rule: the character is echoed and skipped.
    warnings.push(`expression lexer skipped ${JSON.stringify(c)} in $[${src}]`);
    i++;
  }
  return toks;
}

/** %.18Lg, approximately (see the file comment). */
function formatNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (!Number.isFinite(n)) return n > 0 ? 'inf' : '-inf';
  if (Number.isInteger(n) && Math.abs(n) < 1e18) return (Object.is(n, -0) ? '-' : '') + BigInt(n).toString();
  const [mant, expText] = n.toExponential(Number.isInteger(n) ? 17 : 14).split('e') as [string, string];
  const exp = Number(expText);
  const strip = (s: string): string => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= 18) return `${strip(mant)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return strip(n.toFixed(Math.max(0, 14 - exp)));
}

const INT_MAX = 2147483647;

class ExprEval {
  #i = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly src: string,
    private readonly warnings: string[],
  ) {}

  run(): string {
    if (this.toks.length === 0) return '';
    const v = this.expr(0);
    if (this.#i !== this.toks.length) this.fail(`unexpected ${this.describe(this.toks[this.#i])}`);
    return v.t === 'num' ? formatNumber(v.n) : v.s;
  }

  private fail(why: string): never {
    throw new DialplanError(`syntax error in $[${this.src}]: ${why}`);
  }

  private describe(t: Tok | undefined): string {
    if (t === undefined) return 'end of expression';
    return t.k === 'op' ? `'${t.op}'` : `"${t.v.t === 'num' ? t.v.n : t.v.s}"`;
  }

  private peekOp(): string | null {
    const t = this.toks[this.#i];
    return t?.k === 'op' ? t.op : null;
  }

  /** Binary precedence (ast_expr2.y %left lines, low to high); unary ! and - sit at 8. */
  private static prec(op: string): number {
    switch (op) {
      case '?':
        return 2;
      case '|':
      case '||':
        return 3;
      case '&':
      case '&&':
        return 4;
      case '=':
      case '==':
      case '>':
      case '<':
      case '>=':
      case '<=':
      case '!=':
        return 5;
      case '+':
      case '-':
        return 6;
      case '*':
      case '/':
      case '%':
        return 7;
      case ':':
      case '=~':
      case '~~':
        return 9;
      default:
        return -1;
    }
  }

  private expr(minPrec: number): Val {
    let left = this.unary();
    for (;;) {
      const op = this.peekOp();
      if (op === null) {
        if (this.#i < this.toks.length) this.fail(`unexpected ${this.describe(this.toks[this.#i])}`);
        return left;
      }
      const p = ExprEval.prec(op);
      if (p < 0 || p < minPrec) return left;
      this.#i++;
      if (p === 9) this.fail(`the regex operator '${op}' is not supported by mini-dialplan`);
      if (op === '?') {
        const mid = this.expr(p + 1);
        if (this.peekOp() !== '::') this.fail(`'?' without '::'`);
        this.#i++;
        const right = this.expr(p + 1);
        left = opCond(left, mid, right);
        continue;
      }
      const right = this.expr(p + 1);
      left = this.binary(op, left, right);
    }
  }

  private unary(): Val {
    const t = this.toks[this.#i];
    if (t === undefined) this.fail('unexpected end of expression');
    if (t.k === 'op') {
      if (t.op === '(') {
        this.#i++;
        const v = this.expr(0);
        if (this.peekOp() !== ')') this.fail(`expected ')' but found ${this.describe(this.toks[this.#i])}`);
        this.#i++;
        return v;
      }
      if (t.op === '-' || t.op === '!') {
        this.#i++;
        const v = this.expr(9);
        return t.op === '-' ? this.negate(v) : opCompl(v);
      }
      this.fail(`unexpected ${this.describe(t)}`);
    }
    this.#i++;
    if (this.peekOp() === '(') this.fail(`function calls in $[...] (${t.v.t === 'num' ? '' : t.v.s}(...)) are not supported by mini-dialplan`);
    return t.v;
  }

  private warn(what: string): void {
    this.warnings.push(`${what} in $[${this.src}]`);
  }

  private negate(v: Val): Val {
    const n = toNumber(v);
    if (n === null) {
      this.warn('non-numeric argument');
      return { t: 'num', n: 0 };
    }
    return { t: 'num', n: -n };
  }

  private binary(op: string, a: Val, b: Val): Val {
    switch (op) {
      case '|':
      case '||':
        return isZeroOrNull(a) ? b : a;
      case '&':
      case '&&':
        return isZeroOrNull(a) || isZeroOrNull(b) ? { t: 'num', n: 0 } : a;
      case '=':
      case '==':
      case '!=':
      case '<':
      case '>':
      case '<=':
      case '>=': {
        const c = compare(a, b);
        const r = op === '=' || op === '==' ? c === 0 : op === '!=' ? c !== 0 : op === '<' ? c < 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c >= 0;
        return { t: 'num', n: r ? 1 : 0 };
      }
      case '+': {
        const x = toNumber(a);
        const y = toNumber(b);
        if (x === null || y === null) {
          this.warn('non-numeric argument');
          if (x === null && y === null) return { t: 'num', n: 0 };
          return x === null ? { t: 'num', n: y! } : { t: 'num', n: x };
        }
        return { t: 'num', n: x + y };
      }
      case '-': {
        const x = toNumber(a);
        const y = toNumber(b);
        if (x === null || y === null) {
          this.warn('non-numeric argument');
          if (x === null && y === null) return { t: 'num', n: 0 };
          return x === null ? { t: 'num', n: -y! } : { t: 'num', n: x };
        }
        return { t: 'num', n: x - y };
      }
      case '*': {
        const x = toNumber(a);
        const y = toNumber(b);
        if (x === null || y === null) {
          this.warn('non-numeric argument');
          return { t: 'num', n: 0 };
        }
        return { t: 'num', n: x * y };
      }
      case '/': {
        const x = toNumber(a);
        const y = toNumber(b);
        if (x === null) {
          this.warn('non-numeric argument');
          return { t: 'num', n: 0 };
        }
        if (y === null) {
          this.warn('non-numeric argument');
          return { t: 'num', n: INT_MAX };
        }
        if (y === 0) {
          this.warn('division by zero');
          return { t: 'num', n: INT_MAX };
        }
        return { t: 'num', n: x / y };
      }
      case '%': {
        const x = toNumber(a);
        const y = toNumber(b);
        if (x === null || y === null) {
          this.warn('non-numeric argument');
          return { t: 'num', n: 0 };
        }
        if (y === 0) {
          this.warn('division by zero');
          return { t: 'num', n: INT_MAX };
        }
        return { t: 'num', n: x % y };
      }
      default:
        this.fail(`operator '${op}' is not supported by mini-dialplan`);
    }
  }
}

/** to_number: numbers and numeric strings convert; strings ("quoted" or words) do not. */
function toNumber(v: Val): number | null {
  if (v.t === 'num') return v.n;
  if (v.t === 'str') return null;
  return Number.parseFloat(v.s);
}

function toStr(v: Val): string {
  return v.t === 'num' ? formatNumber(v.n) : v.s;
}

/** op_eq & co: strings compare bytewise (strcoll in the C locale) when either side is a string. */
function compare(a: Val, b: Val): number {
  if (a.t === 'str' || b.t === 'str') {
    const x = toStr(a);
    const y = toStr(b);
    const bx = Buffer.from(x, 'utf8');
    const by = Buffer.from(y, 'utf8');
    return Math.sign(Buffer.compare(bx, by));
  }
  // Two integer strings compare exactly (long double holds 64-bit integers; a double does not).
  if (a.t === 'numstr' && b.t === 'numstr' && /^[0-9]+$/.test(a.s) && /^[0-9]+$/.test(b.s)) {
    const x = BigInt(a.s);
    const y = BigInt(b.s);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = toNumber(a)!;
  const y = toNumber(b)!;
  return x < y ? -1 : x > y ? 1 : 0;
}

function isZeroOrNull(v: Val): boolean {
  if (v.t === 'num') return v.n === 0;
  if (v.s === '') return true;
  const n = toNumber(v);
  return n !== null && n === 0;
}

/** op_compl: note that `!word` is 1 (atoi("word") is 0), as in Asterisk. */
function opCompl(v: Val): Val {
  let v1: number;
  if (v.t === 'num') v1 = v.n === 0 ? 0 : 1;
  else if (v.s === '' || v.s === '0') v1 = 0;
  else {
    const m = /^[ \t\n\v\f\r]*([+-]?[0-9]+)/.exec(v.s);
    v1 = m ? Number(m[1]) : 0;
  }
  return { t: 'num', n: v1 === 0 ? 1 : 0 };
}

function opCond(a: Val, b: Val, c: Val): Val {
  if (a.t === 'str') return a.s !== '' && a.s !== '""' && a.s !== '0' ? b : c;
  const n = toNumber(a) ?? 0;
  return n !== 0 ? b : c;
}

/** ast_expr on an already substituted expression. Returns the result as Asterisk prints it. */
export function evaluateExpression(expr: string, warnings: string[] = []): string {
  return new ExprEval(lex(expr, warnings), expr, warnings).run();
}

// ---------------------------------------------------------------------------------------------
// Running

export interface DialplanAgiRun extends AgiRun {
  /** The URL and arguments AGI() was given, after argument parsing. */
  readonly url: string;
  readonly args: string[];
  /** `exten@context:priority` of the AGI() call. */
  readonly where: string;
}

export interface RunOptions {
  /** Global variables, on top of [globals] of the dialplan (they go in channel.globals). */
  globals?: Record<string, string>;
  /** Priority to start at (default 1). */
  priority?: number;
  /** Safety net against loops (default 10000 applications). */
  maxSteps?: number;
  /** Passed to every FakeChannel.agi(). */
  agiOptions?: AgiRunOptions;
}

export type RunEnd =
  /** Hangup(), or the channel was hung up. */
  | 'hangup'
  /** AGI() returned with AGISTATUS=HANGUP (the application returns -1). */
  | 'agi-hangup'
  /** No next priority: Asterisk's auto fallthrough hangs up. */
  | 'fell-off'
  /** Return() with no Gosub frame (Asterisk logs an error and hangs up). */
  | 'return-without-gosub';

export interface RunResult {
  /** Verbose() messages, in order. */
  readonly verbose: string[];
  /** Log() lines, `LEVEL: message`. */
  readonly log: string[];
  readonly agiRuns: DialplanAgiRun[];
  /** One line per application run, like Asterisk's `Executing [s@ctx:1] App("chan", "data")`. */
  readonly trace: string[];
  /** What Asterisk would have logged as warnings without stopping (see the file comment). */
  readonly warnings: string[];
  readonly end: RunEnd;
}

interface Location {
  context: string;
  exten: string;
  priority: number;
}

interface Frame {
  readonly returnTo: Location;
  /** Variables pushed by this frame, with what they shadow (undefined: nothing). */
  readonly saved: Map<string, Buffer | undefined>;
  readonly argCount: number;
}

type AppResult = { k: 'next' } | { k: 'jump'; to: Location } | { k: 'end'; why: RunEnd };

const NEXT: AppResult = { k: 'next' };
const VAR_VALUE_MAX = 4095;
const DATA_MAX = 8191;

/** Runs `exten@context` from priority 1 on `channel` until it hangs up or falls off the end. */
export async function runDialplan(conf: string | Dialplan, context: string, exten: string, channel: FakeChannel, opts: RunOptions = {}): Promise<RunResult> {
  const dialplan = typeof conf === 'string' ? parseDialplan(conf) : conf;
  const pbx = new Pbx(dialplan, channel, opts);
  return pbx.run({ context, exten, priority: opts.priority ?? 1 });
}

/** Substitutes `${...}` and `$[...]` in `text` against `channel` (outside any Gosub). */
export function substituteVariables(text: string, channel: FakeChannel, warnings: string[] = []): string {
  const pbx = new Pbx({ contexts: new Map(), globals: new Map() }, channel, {});
  const s = pbx.substitute(text);
  warnings.push(...pbx.warnings);
  return s;
}

class Pbx {
  readonly verbose: string[] = [];
  readonly log: string[] = [];
  readonly agiRuns: DialplanAgiRun[] = [];
  readonly trace: string[] = [];
  readonly warnings: string[] = [];
  readonly #frames: Frame[] = [];
  /** CHANNEL(hangup_handler_push) values, run last first after the channel hangs up. */
  readonly #hangupHandlers: string[] = [];
  #at: Location = { context: '', exten: '', priority: 0 };

  constructor(
    private readonly dialplan: Dialplan,
    private readonly channel: FakeChannel,
    private readonly opts: RunOptions,
  ) {
    for (const [k, v] of dialplan.globals) channel.globals.set(k, Buffer.from(v, 'utf8'));
    for (const [k, v] of Object.entries(opts.globals ?? {})) channel.globals.set(k, Buffer.from(v, 'utf8'));
  }

  async run(start: Location): Promise<RunResult> {
    this.#checkExists(start, 'start');
    this.#at = { ...start };
    const maxSteps = this.opts.maxSteps ?? 10000;
    let end: RunEnd | null = null;
    for (let steps = 0; end === null; steps++) {
      if (steps >= maxSteps) throw new DialplanError(`more than ${maxSteps} applications run: a loop? (at ${where(this.#at)})`);
      const p = this.#find(this.#at);
      if (!p) {
        end = 'fell-off';
        break;
      }
      this.channel.context = this.#at.context;
      this.channel.extension = this.#at.exten;
      this.channel.priority = this.#at.priority;
      const data = cutBytes(this.substitute(p.data), DATA_MAX);
      this.trace.push(`Executing [${this.#at.exten}@${this.#at.context}:${this.#at.priority}] ${p.app}("${this.channel.name}", "${data}")`);
      let r: AppResult;
      try {
        r = await this.#exec(p.app, data);
      } catch (err) {
        if (err instanceof DialplanError) throw new DialplanError(`${p.file}:${p.line} (${where(this.#at)}): ${err.message}`);
        throw err;
      }
      if (r.k === 'end') end = r.why;
      else if (r.k === 'jump') this.#at = { ...r.to };
      else this.#at = { ...this.#at, priority: this.#at.priority + 1 };
      if (end === null && this.channel.hungUp) end = 'hangup';
    }
    if (this.#hangupHandlers.length > 0) {
      this.channel.hangup();
      await this.#runHangupHandlers(maxSteps);
    }
    return { verbose: this.verbose, log: this.log, agiRuns: this.agiRuns, trace: this.trace, warnings: this.warnings, end };
  }

  /** Each pushed handler as a Gosub on the hung-up channel, until it returns (or ends). */
  async #runHangupHandlers(maxSteps: number): Promise<void> {
    for (let handler = this.#hangupHandlers.pop(); handler !== undefined; handler = this.#hangupHandlers.pop()) {
      const depth = this.#frames.length;
      const first = this.#gosub(handler);
      if (first.k !== 'jump') continue;
      this.#at = { ...first.to };
      for (let steps = 0; this.#frames.length > depth; steps++) {
        if (steps >= maxSteps) throw new DialplanError(`hangup handler ${handler}: more than ${maxSteps} applications run`);
        const p = this.#find(this.#at);
        if (!p) break;
        const data = cutBytes(this.substitute(p.data), DATA_MAX);
        this.trace.push(`Executing [${this.#at.exten}@${this.#at.context}:${this.#at.priority}] ${p.app}("${this.channel.name}", "${data}")`);
        const r = await this.#exec(p.app, data);
        if (r.k === 'end') break;
        this.#at = r.k === 'jump' ? { ...r.to } : { ...this.#at, priority: this.#at.priority + 1 };
      }
    }
  }

  #find(at: Location): DialplanPriority | undefined {
    return this.dialplan.contexts.get(at.context)?.extensions.get(at.exten)?.priorities.get(at.priority);
  }

  #checkExists(at: Location, what: string): void {
    const context = this.dialplan.contexts.get(at.context);
    if (!context) throw new DialplanError(`${what}: no context [${at.context}]`);
    const ext = context.extensions.get(at.exten);
    if (!ext) throw new DialplanError(`${what}: no extension ${at.exten} in [${at.context}]`);
    if (!ext.priorities.has(at.priority)) throw new DialplanError(`${what}: no priority ${at.priority} in ${at.exten}@${at.context}`);
  }

  // --- variables ------------------------------------------------------------------------------

  #getVar(name: string): string | undefined {
    switch (name) {
      case 'EXTEN':
        return this.#at.exten;
      case 'CONTEXT':
        return this.#at.context;
      case 'PRIORITY':
        return String(this.#at.priority);
      case 'CHANNEL':
        return this.channel.name;
      case 'UNIQUEID':
        return this.channel.uniqueId;
      case 'EPOCH':
        return String(Math.floor(Date.now() / 1000));
      default:
    }
    const v = this.channel.getVar(name);
    if (v !== undefined) return v;
    return this.channel.globals.get(name)?.toString('utf8');
  }

  /** pbx_builtin_setvar_helper, with LOCAL() and GLOBAL() writes. */
  #setVar(name: string, value: string): void {
    if (name.endsWith(')')) {
      const { app: fname, data: arg } = splitApp(name);
      switch (fname.toUpperCase()) {
        case 'LOCAL': {
          const frame = this.#frames.at(-1);
          if (!frame) throw new DialplanError(`Set(LOCAL(${arg})=...) outside a Gosub`);
          this.#frameSetVar(frame, arg, value);
          return;
        }
        case 'GLOBAL':
          this.channel.globals.set(arg, Buffer.from(value, 'utf8'));
          return;
        case 'CHANNEL':
          // main/pbx_hangup_handler.c: pushed handlers run last pushed first once the channel
          // has hung up, each as a Gosub of `[[context,]exten,]priority[(args)]`.
          if (arg.toLowerCase() === 'hangup_handler_push') {
            this.#hangupHandlers.push(value);
            return;
          }
          throw new DialplanError(`writing CHANNEL(${arg}) is not supported by mini-dialplan`);
        default:
          throw new DialplanError(`writing the function ${fname}() is not supported by mini-dialplan`);
      }
    }
    if (name === '') throw new DialplanError('Set() with an empty variable name');
    this.channel.setVar(name, value);
  }

  #frameSetVar(frame: Frame, name: string, value: string): void {
    const key = name.replace(/^_{1,2}/, ''); // FakeChannel keys variables without _ / __
    if (!frame.saved.has(key)) {
      const old = this.channel.vars.get(key);
      frame.saved.set(key, old === undefined ? undefined : Buffer.from(old));
    }
    this.channel.setVar(name, value);
  }

  #popFrame(frame: Frame): void {
    for (const [name, old] of frame.saved) {
      if (old === undefined) this.channel.vars.delete(name);
      else this.channel.vars.set(name, old);
    }
  }

  #readFunction(expr: string): string {
    const { app: fname, data: arg } = splitApp(expr);
    switch (fname.toUpperCase()) {
      case 'LEN':
        return String(utf8Length(arg));
      case 'EXISTS':
        return arg === '' ? '0' : '1';
      case 'ISNULL':
        return arg === '' ? '1' : '0';
      case 'IF': {
        // func_logic.c acf_if: '?' then ':' (STANDARD args: the false branch is the raw rest).
        const a1 = separateArgs(arg, '?', true, 2);
        const a2 = separateArgs(a1[1] ?? '', ':', true, 2);
        const cond = (a1[0] ?? '').trim();
        if (cond === '' || a2.length === 0) throw new DialplanError(`IF(${arg}): usage IF(expr?[true][:false])`);
        return checkCondition(cond) ? (a2[0] ?? '').trim() : (a2[1] ?? '').trim();
      }
      case 'LOCAL':
      case 'GLOBAL':
        return (fname.toUpperCase() === 'GLOBAL' ? this.channel.globals.get(arg)?.toString('utf8') : this.#getVar(arg)) ?? '';
      default:
        throw new DialplanError(`the function ${fname}() is not supported by mini-dialplan`);
    }
  }

  /** pbx_substitute_variables_helper_full. */
  substitute(t: string): string {
    let out = '';
    let w = 0;
    while (w < t.length) {
      const d = t.indexOf('$', w);
      if (d < 0) {
        out += t.slice(w);
        break;
      }
      const kind = t[d + 1];
      if (kind !== '{' && kind !== '[') {
        out += t.slice(w, d + 1);
        w = d + 1;
        continue;
      }
      out += t.slice(w, d);
      const start = d + 2;
      let vare = start;
      let brackets = 1;
      let needsub = false;
      if (kind === '{') {
        while (brackets && vare < t.length) {
          const c = t[vare]!;
          if (c === '$' && (t[vare + 1] === '{' || t[vare + 1] === '[')) needsub = true;
          else if (c === '{') brackets++;
          else if (c === '}') brackets--;
          vare++;
        }
      } else {
        while (brackets && vare < t.length) {
          const c = t[vare]!;
          if (c === '$' && t[vare + 1] === '[') {
            needsub = true;
            brackets++;
            vare++;
          } else if (c === '[') brackets++;
          else if (c === ']') brackets--;
          else if (c === '$' && t[vare + 1] === '{') {
            needsub = true;
            vare++;
          }
          vare++;
        }
      }
      if (brackets) throw new DialplanError(`missing '${kind === '{' ? '}' : ']'}' in "${t}"`);
      const inner = t.slice(start, vare - 1);
      w = vare;
      const finalvars = needsub ? this.substitute(inner) : inner;
      if (kind === '[') {
        out += evaluateExpression(finalvars, this.warnings);
        continue;
      }
      const { name, offset, length, isFunc } = parseVariableName(finalvars);
      const value = cutBytes(isFunc ? this.#readFunction(name) : (this.#getVar(name) ?? ''), VAR_VALUE_MAX);
      out += substring(value, offset, length);
    }
    return out;
  }

  // --- applications ---------------------------------------------------------------------------

  async #exec(app: string, data: string): Promise<AppResult> {
    switch (app.toLowerCase()) {
      case 'noop':
        return NEXT;
      case 'verbose': {
        if (data === '') return NEXT;
        const a = separateArgs(data, ',', true, 2);
        this.verbose.push(a.length === 1 ? a[0]! : (a[1] ?? ''));
        return NEXT;
      }
      case 'log': {
        const a = separateArgs(data, ',', true, 2);
        this.log.push(`${(a[0] ?? '').toUpperCase()}: ${a[1] ?? ''}`);
        return NEXT;
      }
      case 'set': {
        if (data === '') throw new DialplanError('Set requires one variable name/value pair');
        const eq = data.indexOf('=');
        if (eq < 0) throw new DialplanError(`Set requires an '=' (got "${data}")`);
        this.#setVar(data.slice(0, eq), data.slice(eq + 1));
        return NEXT;
      }
      case 'execif':
        return this.#execIf(data);
      case 'gotoif': {
        // pbx_builtin_gotoif: strsep on '?' then ':' (no quote or parenthesis awareness).
        const q = data.indexOf('?');
        const cond = q < 0 ? data : data.slice(0, q);
        const rest = q < 0 ? null : data.slice(q + 1);
        const c = rest === null ? -1 : rest.indexOf(':');
        const branch1 = rest === null ? null : c < 0 ? rest : rest.slice(0, c);
        const branch2 = rest === null || c < 0 ? null : rest.slice(c + 1);
        const branch = checkCondition(cond) ? branch1 : branch2;
        if (!branch) return NEXT;
        return { k: 'jump', to: this.#parseableGoto(branch, 'GotoIf') };
      }
      case 'goto':
        return { k: 'jump', to: this.#parseableGoto(data, 'Goto') };
      case 'gosub':
        return this.#gosub(data);
      case 'return': {
        const frame = this.#frames.pop();
        if (!frame) return { k: 'end', why: 'return-without-gosub' };
        this.#popFrame(frame);
        this.channel.setVar('GOSUB_RETVAL', data);
        return { k: 'jump', to: frame.returnTo };
      }
      case 'wait': {
        const seconds = Number(data);
        if (data.trim() === '' || !Number.isFinite(seconds) || seconds < 0) throw new DialplanError(`Wait(${data}): not a number of seconds`);
        await new Promise((r) => setTimeout(r, seconds * 1000));
        return NEXT;
      }
      case 'answer':
        this.channel.state = 6;
        return NEXT;
      case 'hangup':
        this.channel.hangup();
        return { k: 'end', why: 'hangup' };
      case 'agi':
        return this.#agi(data);
      default:
        throw new DialplanError(`the application ${app}() is not supported by mini-dialplan`);
    }
  }

  async #execIf(data: string): Promise<AppResult> {
    const firstComma = data.indexOf(',');
    const firstQuestion = data.indexOf('?');
    if (firstQuestion < 0 || (firstComma >= 0 && firstComma < firstQuestion)) {
      throw new DialplanError(`ExecIf(${data}): the deprecated comma syntax is not supported by mini-dialplan`);
    }
    const expr = separateArgs(data, '?', true, 2);
    const remainder = expr[1] ?? '';
    if (remainder === '') throw new DialplanError('Usage: ExecIf(<expr>?<appiftrue>(<args>)[:<appiffalse>(<args)])');
    const apps = separateArgs(remainder, ':', false, 2);
    const truth = checkCondition(expr[0] ?? '');
    const chosen = truth ? apps[0] : apps[1];
    if (chosen === undefined || chosen === '') {
      if (truth) throw new DialplanError(`ExecIf: no application for the true branch in "${data}"`);
      return NEXT;
    }
    const { app, data: appData } = splitApp(chosen);
    return this.#exec(app, appData);
  }

  /** pbx_parseable_goto: [[context,]exten,]priority|label, priority may be +n/-n. */
  #parseableGoto(spec: string, app: string): Location {
    const parts = spec.split(',');
    let context: string | undefined;
    let exten: string | undefined;
    let pri: string;
    if (parts.length === 1) pri = parts[0]!;
    else if (parts.length === 2) [exten, pri] = parts as [string, string];
    else [context, exten, pri] = parts as [string, string, string];
    const target: Location = { context: context ?? this.#at.context, exten: exten ?? this.#at.exten, priority: 0 };
    let mode = 0;
    if (pri.startsWith('+')) {
      mode = 1;
      pri = pri.slice(1);
    } else if (pri.startsWith('-')) {
      mode = -1;
      pri = pri.slice(1);
    }
    const m = /^[ \t]*([+-]?[0-9]+)/.exec(pri);
    if (m) {
      const n = Number(m[1]);
      target.priority = mode === 0 ? n : this.#at.priority + n * mode;
    } else {
      const ext = this.dialplan.contexts.get(target.context)?.extensions.get(target.exten);
      const found = ext ? [...ext.priorities.values()].find((p) => p.label === pri) : undefined;
      if (!found) throw new DialplanError(`${app}(${spec}): no label "${pri}" in ${target.exten}@${target.context}`);
      target.priority = found.priority;
    }
    this.#checkExists(target, `${app}(${spec})`);
    return target;
  }

  /** app_stack.c gosub_exec. */
  #gosub(data: string): AppResult {
    if (data === '') throw new DialplanError('Gosub requires an argument: Gosub([[context,]exten,]priority[(arg1[,...][,argN])])');
    const p = data.indexOf('(');
    let label = data;
    let args: string[] = [];
    if (p >= 0) {
      label = data.slice(0, p);
      let inner = data.slice(p + 1);
      const q = inner.lastIndexOf(')');
      if (q < 0) throw new DialplanError(`Gosub(${data}): no closing parenthesis`);
      inner = inner.slice(0, q);
      args = separateArgs(inner, ',', false, 100);
    }
    const target = this.#parseableGoto(label, 'Gosub');
    const outer = this.#frames.at(-1);
    const maxArgc = Math.max(args.length, outer?.argCount ?? 0);
    const frame: Frame = { returnTo: { ...this.#at, priority: this.#at.priority + 1 }, saved: new Map(), argCount: maxArgc };
    for (let i = 0; i < maxArgc; i++) this.#frameSetVar(frame, `ARG${i + 1}`, args[i] ?? '');
    this.#frameSetVar(frame, 'ARGC', String(args.length));
    this.#frames.push(frame);
    return { k: 'jump', to: target };
  }

  async #agi(data: string): Promise<AppResult> {
    const argv = separateArgs(data, ',', true, 128);
    const url = argv[0];
    if (url === undefined || url === '') throw new DialplanError('AGI requires an argument (the script)');
    const args = argv.slice(1);
    const run = await this.channel.agi(url, args, this.opts.agiOptions ?? {});
    this.channel.setVar('AGISTATUS', run.status);
    this.agiRuns.push({ ...run, url, args, where: where(this.#at) });
    return run.status === 'HANGUP' ? { k: 'end', why: 'agi-hangup' } : NEXT;
  }
}

function where(at: Location): string {
  return `${at.exten}@${at.context}:${at.priority}`;
}

/** parse_variable_name: `name:offset:length` with the ':' outside parentheses. */
function parseVariableName(v: string): { name: string; offset: number; length: number; isFunc: boolean } {
  let parens = 0;
  let isFunc = false;
  for (let i = 0; i < v.length; i++) {
    const c = v[i];
    if (c === '(') {
      isFunc = true;
      parens++;
    } else if (c === ')') parens--;
    else if (c === ':' && parens === 0) {
      const m = /^[ \t]*([+-]?[0-9]+)(?::[ \t]*([+-]?[0-9]+))?/.exec(v.slice(i + 1));
      return { name: v.slice(0, i), offset: m ? Number(m[1]) : 0, length: m?.[2] !== undefined ? Number(m[2]) : INT_MAX, isFunc };
    }
  }
  return { name: v, offset: 0, length: INT_MAX, isFunc };
}

/** ast_str_substring (characters, not bytes). */
function substring(value: string, offset: number, length: number): string {
  const lr = value.length;
  if (offset === 0 && length >= lr) return value;
  if (offset < 0) offset = Math.max(0, lr + offset);
  if (offset >= lr) return '';
  const rest = value.slice(offset);
  if (length >= 0) return rest.slice(0, length);
  return lr > offset - length ? rest.slice(0, lr + length - offset) : '';
}
