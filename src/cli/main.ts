#!/usr/bin/env node
// res-memcached's command line (README.md, "The command line"). Exit codes: 0 ok, 1 the job failed (a server is down,
// a config is invalid), 2 bad usage.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { runAdmin, type AdminVerb } from './admin.js';
import { runCheck } from './check.js';
import { checkRoot, resolveExecStart, runInstall } from './install.js';
import { runLocate } from './locate.js';
import { runServe } from './serve.js';
import { readSettingsReporting } from './settings-source.js';
import { runShow } from './show.js';
import { UsageError, type Io } from './io.js';

const VERSION = '0.1.0';

const HELP = `Usage: res-memcached [VERB] [--config PATH] [...]

memcached for the Asterisk dialplan (FastAGI), and a libmemcached-compatible client.

Verbs:
  serve              run the FastAGI daemon (the default verb)
  show functions|applications
  show function NAME | show application NAME
                     the dialplan commands and their usage
  locate KEY...      print the server each key maps to, as written in its server= line
  check              reach every server: version, items, hit ratio; exit 1 if one is down
  install            put memcached.conf, extensions_mcd.conf and a systemd unit in place
  get KEY | set KEY VALUE [--ttl S] | delete KEY | incr KEY [N] | stats [--server S] | leases NAME
                     read and write the data: the server= cluster, or with no server= the
                     running daemon's embedded store through its [http] listener

Options:
  --config PATH      memcached.conf to read (default /etc/asterisk/memcached.conf, else
                     /etc/asterisk/memcache.conf, else built-in defaults: the embedded store)
  --log-level LEVEL  serve: fatal, error, warn, info (default), debug (one line per command)
  -h, --help         this text; VERB --help for a verb's own
  --version          print the version
`;

const ADMIN_WHERE = `Against the config's server= lines, as the daemon reaches them (keyprefix applied). With
no server= the data is in the running daemon's embedded store, reached through its HTTP listener
([http] bindaddr:port, 127.0.0.1:4574 by default): the daemon must be running with [http] on.
Exit 0 on success; 1 with the result code on stderr (res-memcached: get k: MEMCACHED_NOTFOUND (16));
2 for bad usage.
`;

const ADMIN_HELP: Record<AdminVerb, string> = {
  get: `Usage: res-memcached get [--config PATH] [--] KEY

Writes KEY's value to stdout byte for byte; a newline is added only when stdout is a terminal.
Through the embedded store's door a value holding CR, LF or NUL is MEMCACHED_BAD_VALUE (122),
as in the dialplan.

${ADMIN_WHERE}`,
  set: `Usage: res-memcached set [--config PATH] [--ttl S] [--] KEY VALUE

Stores VALUE (the argument's UTF-8 bytes) under KEY. --ttl S: seconds to live, 0 = never;
without it the config's ttl= applies, as for mcdset. Through the embedded store's door a value
holding CR, LF or NUL is refused with MEMCACHED_BAD_VALUE (122), as in the dialplan.

${ADMIN_WHERE}`,
  delete: `Usage: res-memcached delete [--config PATH] [--] KEY

Deletes KEY.

${ADMIN_WHERE}`,
  incr: `Usage: res-memcached incr [--config PATH] [--] KEY [N]

Adds N (default 1) to the counter KEY and prints the new value; a negative N decrements
(stopping at 0), as MCDCOUNTER does. A missing counter is MEMCACHED_NOTFOUND (16); create it
with set KEY 0.

${ADMIN_WHERE}`,
  stats: `Usage: res-memcached stats [--config PATH] [--server S]

Prints SERVER<TAB>NAME<TAB>VALUE per figure of each server's stats (--server S: only the server
written S in its server= line); exit 1 if a server does not answer. With no server=, the embedded
store's figures from the daemon's /metrics (items, bytes, limit_bytes, evictions_total,
hits_total, misses_total), SERVER being "embedded".

${ADMIN_WHERE}`,
  leases: `Usage: res-memcached leases [--config PATH] [--] NAME

Prints how many channels hold a lease under NAME (taken with mcdlimit), as MCDLIMITCOUNT.

${ADMIN_WHERE}`,
};

const VERB_HELP: Record<string, string> = {
  ...ADMIN_HELP,
  locate: `Usage: res-memcached locate [--config PATH] [--] KEY...

Prints one line per key, in order: KEY<TAB>SERVER, SERVER written exactly as in its server= line,
placed as libmemcached places it under the config (distribution, hash, weights, keyprefix with
hash_with_prefix). Nothing is sent to any server.
`,
  check: `Usage: res-memcached check [--config PATH]

Connects to every server= of the config and prints, per server: reachable or not, version,
items, and get hit ratio; then the protocol (protocol=) they were asked in. Exit 1 if any
server is down.
`,
  serve: `Usage: res-memcached [serve] [--config PATH] [--log-level LEVEL]

Runs the FastAGI daemon in the foreground: listens on [agi] bindaddr:port (127.0.0.1:4573 by
default) and serves the dialplan commands from memcached (server= lines) or, with no server=, from
the embedded store. Logs JSON lines to stdout. SIGTERM/SIGINT: stop accepting and let running
sessions finish. SIGHUP: reload the config (an invalid one is refused and the old one kept).
`,
  install: `Usage: res-memcached install [--root DIR] [--user NAME] [--force]

Installs the daemon as a systemd service, under DIR (default /):
  etc/asterisk/memcached.conf        from memcached.conf.sample; an existing one is never touched
  etc/asterisk/extensions_mcd.conf   the dialplan subroutines and self-test; when the existing one
                                     differs, the shipped one is written beside it as .new
  var/lib/res-memcached/             the embedded store's snapshot (owned by the service user)
  etc/systemd/system/res-memcached.service
                                     User= the asterisk user when it exists, else DynamicUser=yes;
                                     a changed unit is written beside it as .new too
Then prints what to do next. A second run changes nothing and says so.

Options:
  --root DIR     install under DIR instead of / (an image, a test)
  --user NAME    run the service as NAME (must exist) instead of asterisk
  --force        replace a changed extensions_mcd.conf or unit instead of writing .new
                 (memcached.conf is still never replaced)
`,
  show: `Usage: res-memcached show [--config PATH] functions|applications
       res-memcached show [--config PATH] function NAME | application NAME

Prints the dialplan commands, or one command's usage, as Asterisk's core show function does,
with its FastAGI form.
`,
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const COMMON_OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

const SERVE_OPTIONS = { ...COMMON_OPTIONS, 'log-level': { type: 'string' } } as const satisfies ParseArgsConfig['options'];

/** install writes no config of its own to read: no --config. */
const INSTALL_OPTIONS = {
  help: COMMON_OPTIONS.help,
  version: COMMON_OPTIONS.version,
  root: { type: 'string' },
  user: { type: 'string' },
  force: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

const SET_OPTIONS = { ...COMMON_OPTIONS, ttl: { type: 'string' } } as const satisfies ParseArgsConfig['options'];
const STATS_OPTIONS = { ...COMMON_OPTIONS, server: { type: 'string' } } as const satisfies ParseArgsConfig['options'];

/** Every option of every verb, so that firstPositional knows which take a value. */
const ALL_OPTIONS = { ...SERVE_OPTIONS, ...INSTALL_OPTIONS, ...SET_OPTIONS, ...STATS_OPTIONS } as const satisfies ParseArgsConfig['options'];

/** Each verb's options: one a verb does not take is bad usage of that verb, not silently ignored. */
const VERB_OPTIONS: Record<string, ParseArgsConfig['options']> = { serve: SERVE_OPTIONS, show: COMMON_OPTIONS, locate: COMMON_OPTIONS, check: COMMON_OPTIONS, install: INSTALL_OPTIONS,
  get: COMMON_OPTIONS, set: SET_OPTIONS, delete: COMMON_OPTIONS, incr: COMMON_OPTIONS, stats: STATS_OPTIONS, leases: COMMON_OPTIONS,
};

/** A negative N of incr is a number, not an option: carried past parseArgs behind a NUL, which no argv can hold. */
const NEGATIVE = '\u0000';

export async function main(argv: readonly string[], io: Io): Promise<number> {
  // The verb is found first, so that a wrong option gets the usage of the verb it was given to.
  const verb = firstPositional(argv);
  const name = verb ?? 'serve';
  // hasOwn: `res-memcached toString` is an unknown verb, not Object.prototype's.
  const verbOptions = Object.hasOwn(VERB_OPTIONS, name) ? VERB_OPTIONS[name] : undefined;
  const verbHelp = Object.hasOwn(VERB_HELP, name) ? VERB_HELP[name] : undefined;
  if (verbOptions === undefined || verbHelp === undefined) {
    io.err(`res-memcached: unknown verb ${JSON.stringify(verb)}\n\n${HELP}`);
    return 2;
  }
  let parsed;
  try {
    const args = name === 'incr' ? argv.map((a) => (/^-\d+$/.test(a) ? NEGATIVE + a : a)) : [...argv];
    parsed = parseArgs({ args, options: verbOptions, allowPositionals: true, strict: true });
  } catch (err) {
    const who = verb === undefined ? 'res-memcached' : `res-memcached ${verb}`;
    io.err(`${who}: ${usageMessage(err as Error, verb)}\n\n${verb === undefined ? HELP : verbHelp}`);
    return 2;
  }
  const values = parsed.values as { config?: string; help?: boolean; version?: boolean; 'log-level'?: string; root?: string; user?: string; force?: boolean; ttl?: string; server?: string };
  const rest = parsed.positionals.slice(1).map((p) => (p.startsWith(NEGATIVE) ? p.slice(NEGATIVE.length) : p));
  if (values.version) {
    io.out(`${VERSION}\n`);
    return 0;
  }
  if (values.help) {
    io.out(verb === undefined ? HELP : verbHelp);
    return 0;
  }
  const configPath = values.config;
  try {
    switch (name) {
      case 'serve': {
        if (rest.length > 0) throw new UsageError(`serve takes no arguments`);
        const level = values['log-level'] ?? 'info';
        if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
        return await runServe(configPath, level);
      }
      case 'show':
        return runShow(rest, readSettingsReporting(configPath, io), io);
      case 'locate':
        return await runLocate(rest, configPath, io);
      case 'check':
        if (rest.length > 0) throw new UsageError(`check takes no arguments`);
        return await runCheck(configPath, io);
      case 'install': {
        if (rest.length > 0) throw new UsageError(`install takes no arguments`);
        const root = checkRoot(values.root ?? '/');
        return runInstall({ root, user: values.user, force: values.force === true, execStart: resolveExecStart(root) }, io);
      }
      case 'get':
      case 'set':
      case 'delete':
      case 'incr':
      case 'stats':
      case 'leases':
        return await runAdmin(name, rest, { ttl: values.ttl, server: values.server }, configPath, io);
      default:
        throw new UsageError(`unknown verb ${JSON.stringify(verb)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`res-memcached: ${err.message}\n\n${verbHelp}`);
      return 2;
    }
    io.err(`res-memcached: ${(err as Error).message}\n`);
    return 1;
  }
}

/** The first word that is not an option or an option's value: the verb, if any. */
function firstPositional(argv: readonly string[]): string | undefined {
  const { tokens } = parseArgs({ args: [...argv], options: ALL_OPTIONS, allowPositionals: true, strict: false, tokens: true });
  return tokens.find((t) => t.kind === 'positional')?.value;
}

/** parseArgs' message, shorter for an unknown option (its advice on '--' only helps locate). */
function usageMessage(err: Error, verb: string | undefined): string {
  const unknown = /^Unknown option '([^']+)'/.exec(err.message);
  if (unknown === null) return err.message;
  const hint = verb === 'locate' || (verb !== undefined && Object.hasOwn(ADMIN_HELP, verb)) ? ' (a KEY that starts with - goes after --)' : '';
  return `unknown option ${unknown[1]}${hint}`;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    bytes: (b) => process.stdout.write(b),
    isTty: process.stdout.isTTY === true,
  };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`res-memcached: ${String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
