// Asterisk's .conf syntax, read as main/config.c reads it (process_text_line and
// config_text_file_load), so a file that works for an Asterisk module works here:
//
//   [section]              a section; names match case-insensitively, as in Asterisk
//   [name](!)              a template: not a section of its own, only inherited from
//   [name](tpl1,tpl2)      a section that starts with the entries of earlier sections/templates
//   [name](+)              more entries for the earlier section of that name
//   key = value            also `key => value`; key and value are trimmed; repeated keys are kept
//   key += more            appends to the last value of that key in the section (Asterisk's +=)
//   \[odd key = value      a leading backslash takes the next character literally
//   ; comment              to the end of the line; `\;` is a literal `;`
//   ;-- block --;          a comment over any number of lines (nestable)
//   #include file          also "file" or <file>; relative to the including file's directory;
//                          wildcards (* ?) in the file name; #tryinclude skips a missing file
//
// Stricter than Asterisk, which only logs a warning and carries on, on purpose: a line Asterisk
// would skip (no `=`, no key, an unknown #directive, an unterminated block comment) is an error
// naming its file and line, so a typo cannot silently drop a server= line. #exec is refused.
//
// One difference: Asterisk resolves a relative #include against its config directory
// (/etc/asterisk); here it is the directory of the including file, which is the same for
// /etc/asterisk/memcached.conf and also right for a --config file kept elsewhere.

import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';

export interface ConfigEntry {
  /** As written (trimmed); callers compare keys case-insensitively, as Asterisk does. */
  readonly key: string;
  readonly value: string;
  readonly file: string;
  readonly line: number;
}

export interface ConfigSection {
  /** As written between the brackets, trimmed. */
  readonly name: string;
  readonly file: string;
  readonly line: number;
  /** The templates/sections it inherited from, as named in `[name](a,b)`. */
  readonly inherits: readonly string[];
  /** In file order; inherited entries first, keeping the file and line where they were written. */
  readonly entries: readonly ConfigEntry[];
}

export interface ParsedConfig {
  /** The file parsing started from. */
  readonly file: string;
  /** Sections in order of appearance; templates (`(!)`) are left out, as Asterisk hides them. */
  readonly sections: readonly ConfigSection[];
  /** Every file read, in the order read (the top file first). */
  readonly files: readonly string[];
}

/** What the parser may touch on disk; tests pass an in-memory version. */
export interface ConfigFs {
  /** The file's text; throws (with code 'ENOENT' when it does not exist) otherwise. */
  readFile(path: string): string;
  /** File names in a directory, for wildcard #include. Optional: without it wildcards are an error. */
  listDir?(path: string): string[];
}

export interface ParseOptions {
  fs?: ConfigFs;
}

/** A config problem, located: `message` reads `/etc/asterisk/memcached.conf:12: <reason>`. */
export class ConfigError extends Error {
  readonly file: string;
  /** 1-based; 0 when the problem is the file as a whole (missing, unreadable). */
  readonly line: number;
  /** The message without the location. */
  readonly reason: string;

  constructor(file: string, line: number, reason: string, options?: ErrorOptions) {
    super(formatLocation(file, line) + reason, options);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
    this.reason = reason;
  }
}

/** `file:line: ` (or `file: ` for line 0), the prefix of every located message. */
export function formatLocation(file: string, line: number): string {
  return line > 0 ? `${file}:${line}: ` : `${file}: `;
}

/** Asterisk's MAX_INCLUDE_LEVEL. */
export const MAX_INCLUDE_DEPTH = 10;

export const nodeConfigFs: ConfigFs = {
  readFile: (path) => readFileSync(path, 'utf8'),
  listDir: (path) => readdirSync(path),
};

/** Reads and parses `path` and everything it includes. Throws ConfigError. */
export function parseConfigFile(path: string, options: ParseOptions = {}): ParsedConfig {
  const parser = new Parser(options.fs ?? nodeConfigFs);
  parser.parseFile(path, null, []);
  return parser.result(path);
}

/** Every non-template section called `name` (case-insensitive), in order. */
export function sectionsNamed(parsed: ParsedConfig, name: string): ConfigSection[] {
  const wanted = name.toLowerCase();
  return parsed.sections.filter((s) => s.name.toLowerCase() === wanted);
}

interface MutableEntry {
  key: string;
  value: string;
  file: string;
  line: number;
}

interface MutableSection {
  name: string;
  file: string;
  line: number;
  template: boolean;
  inherits: string[];
  entries: MutableEntry[];
}

/** A line's text with comments removed, and where it is. */
interface Located {
  text: string;
  file: string;
  line: number;
}

class Parser {
  readonly sections: MutableSection[] = [];
  readonly files: string[] = [];

  constructor(private readonly fs: ConfigFs) {}

  result(file: string): ParsedConfig {
    return {
      file,
      sections: this.sections
        .filter((s) => !s.template)
        .map((s) => ({ name: s.name, file: s.file, line: s.line, inherits: [...s.inherits], entries: s.entries.map((e) => ({ ...e })) })),
      files: [...this.files],
    };
  }

  /** `stack`: resolved paths of the files including this one, for loop detection. */
  parseFile(path: string, section: MutableSection | null, stack: readonly string[], from?: Located): void {
    const text = this.read(path, from);
    this.files.push(path);
    this.parseText(text, path, section, [...stack, resolve(path)]);
  }

  /**
   * Parses one file's text. `section` is the section of the including line: entries at the top of
   * an included file belong to it (Asterisk: the current category carries into #include).
   */
  parseText(text: string, file: string, section: MutableSection | null, stack: readonly string[]): void {
    let current = section;
    for (const line of stripComments(text, file)) {
      if (line.text.startsWith('[')) current = this.header(line);
      else if (line.text.startsWith('#')) this.directive(line, current, stack);
      else this.entry(line, current);
    }
  }

  private read(path: string, from?: Located): string {
    try {
      return this.fs.readFile(path).replace(/^\uFEFF/, '');
    } catch (err) {
      const why = describeReadError(err);
      if (from) throw located(from, `cannot read included file ${path}: ${why}`);
      throw new ConfigError(path, 0, `cannot read: ${why}`);
    }
  }

  private header(at: Located): MutableSection {
    const { name, options } = parseHeader(at);
    const append = options.includes('+');
    const section = append ? this.existingSection(name, at) : this.newSection(name, at);
    for (const option of options) {
      if (option === '!') section.template = true;
      else if (option !== '+') this.inherit(section, option, at);
    }
    return section;
  }

  private newSection(name: string, at: Located): MutableSection {
    const section: MutableSection = { name, file: at.file, line: at.line, template: false, inherits: [], entries: [] };
    this.sections.push(section);
    return section;
  }

  private existingSection(name: string, at: Located): MutableSection {
    const found = this.find(name);
    if (!found) throw located(at, `[${name}](+) adds to a section, but there is no earlier [${name}]`);
    return found;
  }

  private inherit(section: MutableSection, baseName: string, at: Located): void {
    const base = this.find(baseName, section);
    if (!base) throw located(at, `[${section.name}] inherits from "${baseName}", but no earlier section or template has that name`);
    section.inherits.push(baseName);
    section.entries.push(...base.entries.map((e) => ({ ...e })));
  }

  /** First section or template with that name (Asterisk's ast_category_get). */
  private find(name: string, except?: MutableSection): MutableSection | undefined {
    const wanted = name.toLowerCase();
    return this.sections.find((s) => s !== except && s.name.toLowerCase() === wanted);
  }

  private directive(at: Located, section: MutableSection | null, stack: readonly string[]): void {
    const match = /^#(\S*)\s*(.*)$/.exec(at.text);
    const name = (match?.[1] ?? '').toLowerCase();
    const argument = match?.[2] ?? '';
    if (name === 'exec') throw located(at, '#exec is refused: res-memcached never runs programs named in its config');
    if (name !== 'include' && name !== 'tryinclude') {
      throw located(at, `unknown directive "#${match?.[1] ?? ''}" (only #include and #tryinclude are understood)`);
    }
    if (argument === '') throw located(at, `#${name} needs a file name`);
    const target = includeTarget(at, dequote(argument, at));
    const paths = hasWildcard(basename(target)) ? this.expand(target, at) : [target];
    if (name === 'include' && paths.length === 0) throw located(at, `#include ${target} matches no file`);
    for (const path of paths) {
      if (name === 'tryinclude' && !this.exists(path)) continue;
      this.include(path, section, stack, at);
    }
  }

  private include(path: string, section: MutableSection | null, stack: readonly string[], at: Located): void {
    const key = resolve(path);
    if (stack.includes(key)) {
      const loop = [...stack.slice(stack.indexOf(key)), key].join(' -> ');
      throw located(at, `#include loop: ${loop}`);
    }
    if (stack.length >= MAX_INCLUDE_DEPTH) throw located(at, `#include nested more than ${MAX_INCLUDE_DEPTH} deep`);
    this.parseFile(path, section, stack, at);
  }

  private exists(path: string): boolean {
    try {
      this.fs.readFile(path);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT';
    }
  }

  /** Wildcards in the file name only (`conf.d/*.conf`), sorted like glob(3); dot files need a literal dot. */
  private expand(target: string, at: Located): string[] {
    const dir = dirname(target);
    if (hasWildcard(dir)) throw located(at, `wildcards are only allowed in the file name, not in ${dir}`);
    if (!this.fs.listDir) throw located(at, 'wildcard #include is not available here');
    let names: string[];
    try {
      names = this.fs.listDir(dir);
    } catch {
      return [];
    }
    const pattern = wildcardRegExp(basename(target));
    return names
      .filter((n) => pattern.test(n))
      .sort()
      .map((n) => join(dir, n));
  }

  private entry(at: Located, section: MutableSection | null): void {
    if (!section) throw located(at, `"${at.text}" comes before any [section] header`);
    const { key, value, append } = parseEntry(at);
    const previous = append ? findLast(section.entries, (e) => e.key === key) : undefined;
    if (previous) {
      // Asterisk: old value + everything after "+=", then trimmed.
      previous.value = trimBlanks(previous.value + rawAfterEquals(at.text));
      return;
    }
    section.entries.push({ key, value, file: at.file, line: at.line });
  }
}

/**
 * Splits a file into its non-blank lines with comments removed, the way config_text_file_load
 * does: `;` ends the line unless escaped as `\;` (the backslash goes); `;--` opens a block comment
 * (`;---` does not) and `--;` closes it; block comments nest.
 */
function* stripComments(text: string, file: string): Generator<Located> {
  let depth = 0;
  let openedAt = 0;
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const line = index + 1;
    let kept = '';
    let i = 0;
    for (;;) {
      const semi = raw.indexOf(';', i);
      const escaped = semi > i && raw[semi - 1] === '\\';
      const opens = semi !== -1 && !escaped && raw.startsWith(';--', semi) && raw[semi + 3] !== '-';
      if (depth > 0) {
        if (semi === -1) break;
        if (opens) {
          depth++;
          i = semi + 3;
        } else {
          if (!escaped && semi >= i + 2 && raw.startsWith('--', semi - 2)) depth--;
          i = semi + 1;
        }
        continue;
      }
      if (semi === -1) {
        kept += raw.slice(i);
        break;
      }
      if (escaped) {
        kept += raw.slice(i, semi - 1) + ';';
        i = semi + 1;
      } else if (opens) {
        kept += raw.slice(i, semi);
        depth = 1;
        openedAt = line;
        i = semi + 3;
      } else {
        kept += raw.slice(i, semi);
        break;
      }
    }
    const stripped = trimBlanks(kept);
    if (stripped !== '') yield { text: stripped, file, line };
  }
  if (depth > 0) throw new ConfigError(file, openedAt, 'block comment ";--" is never closed with "--;"');
}

function parseHeader(at: Located): { name: string; options: string[] } {
  const close = at.text.indexOf(']');
  if (close === -1) throw located(at, `no closing ']' in section header "${at.text}"`);
  const name = trimBlanks(at.text.slice(1, close));
  if (name === '') throw located(at, 'empty section name "[]"');
  const rest = trimBlanks(at.text.slice(close + 1));
  if (rest === '') return { name, options: [] };
  if (!rest.startsWith('(')) throw located(at, `unexpected "${rest}" after [${name}]`);
  const paren = rest.indexOf(')');
  if (paren === -1) throw located(at, `no closing ')' in section header "${at.text}"`);
  const after = trimBlanks(rest.slice(paren + 1));
  if (after !== '') throw located(at, `unexpected "${after}" after the section header`);
  const options = rest.slice(1, paren).split(',').map(trimBlanks);
  for (const option of options) {
    if (option === '') throw located(at, `empty name in "(${rest.slice(1, paren)})"`);
    if (option.startsWith('+') && option !== '+') throw located(at, `filtered additions "(${option})" are not supported`);
  }
  return { name, options };
}

function parseEntry(at: Located): { key: string; value: string; append: boolean } {
  let text = at.text;
  let from = 0;
  if (text.startsWith('\\')) {
    // Asterisk: a leading backslash escapes the first character of the key ([, #, ...).
    if (text.length < 2 || text.charCodeAt(1) < 33) throw located(at, 'invalid escape: "\\" must be followed by a visible character');
    text = text.slice(1);
    from = 1;
  }
  const equals = text.indexOf('=', from);
  if (equals === -1) throw located(at, `no "=" in "${at.text}" (expected key=value or key => value)`);
  const append = equals > from && text[equals - 1] === '+';
  const key = trimBlanks(text.slice(0, append ? equals - 1 : equals));
  const valueStart = !append && text[equals + 1] === '>' ? equals + 2 : equals + 1;
  if (key === '') throw located(at, `no key before "=" in "${at.text}"`);
  return { key, value: trimBlanks(text.slice(valueStart)), append };
}

/** What follows the first `=` (for +=, untrimmed at the start as Asterisk appends it). */
function rawAfterEquals(text: string): string {
  return text.slice(text.indexOf('=', text.startsWith('\\') ? 2 : 0) + 1);
}

function dequote(argument: string, at: Located): string {
  const first = argument[0];
  const closing = first === '"' ? '"' : first === '<' ? '>' : undefined;
  if (closing === undefined) return argument;
  if (argument.length < 2 || !argument.endsWith(closing)) throw located(at, `unterminated ${first} in "${argument}"`);
  const inner = argument.slice(1, -1);
  if (inner === '') throw located(at, 'empty file name');
  return inner;
}

function includeTarget(at: Located, name: string): string {
  return isAbsolute(name) ? name : join(dirname(at.file), name);
}

function hasWildcard(text: string): boolean {
  return /[*?]/.test(text);
}

function wildcardRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  // glob(3): a leading dot is never matched by a wildcard.
  return new RegExp(pattern.startsWith('.') ? `^${body}$` : `^(?!\\.)${body}$`);
}

/** Why a file could not be read, in a few words (no such file, permission denied, is a directory). */
export function describeReadError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err instanceof Error ? err.message : String(err);
}

function located(at: Located, reason: string): ConfigError {
  return new ConfigError(at.file, at.line, reason);
}

/** Asterisk's ast_strip: every byte below 33 (spaces, tabs, CR, control bytes) counts as blank. */
function trimBlanks(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) < 33) start++;
  while (end > start && text.charCodeAt(end - 1) < 33) end--;
  return text.slice(start, end);
}

function findLast<T>(items: readonly T[], test: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) {
    const item = items[i];
    if (item !== undefined && test(item)) return item;
  }
  return undefined;
}

/**
 * Parses `text` as if read from `file`, through parseConfigFile: a config made in code (the
 * benchmarks', the tests') goes through the very path the daemon's does; whatever `file`
 * includes is still read through options.fs (the disk by default).
 */
export function parseConfigText(text: string, file: string, options: ParseOptions = {}): ParsedConfig {
  const base = options.fs ?? nodeConfigFs;
  const overlay: ConfigFs = {
    readFile: (path) => (resolve(path) === resolve(file) ? text : base.readFile(path)),
    ...(base.listDir === undefined ? {} : { listDir: (path: string) => base.listDir!(path) }),
  };
  return parseConfigFile(file, { fs: overlay });
}
