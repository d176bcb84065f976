#!/usr/bin/env node
// res-memcached's command line (SPEC §6). Exit codes: 0 ok, 1 the job failed (a server is down,
// a config is invalid), 2 bad usage.

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { runCheck } from './check.js';
import { runLocate } from './locate.js';
import { runServe } from './serve.js';
import { readSettings } from './settings-source.js';
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

Options:
  --config PATH      memcached.conf to read (default /etc/asterisk/memcached.conf, else
                     /etc/asterisk/memcache.conf, else built-in defaults: the embedded store)
  --log-level LEVEL  serve: fatal, error, warn, info (default), debug (one line per command)
  -h, --help         this text; VERB --help for a verb's own
  --version          print the version
`;

const VERB_HELP: Record<string, string> = {
  locate: `Usage: res-memcached locate [--config PATH] KEY...

Prints one line per key, in order: KEY<TAB>SERVER, SERVER written exactly as in its server= line,
placed as libmemcached places it under the config (distribution, hash, weights, keyprefix with
hash_with_prefix). Nothing is sent to any server.
`,
  check: `Usage: res-memcached check [--config PATH]

Connects to every server= of the config and prints, per server: reachable or not, version,
items, and get hit ratio. Exit 1 if any server is down.
`,
  serve: `Usage: res-memcached [serve] [--config PATH] [--log-level LEVEL]

Runs the FastAGI daemon in the foreground: listens on [agi] bindaddr:port (127.0.0.1:4573 by
default) and serves the dialplan commands from memcached (server= lines) or, with no server=, from
the embedded store. Logs JSON lines to stdout. SIGTERM/SIGINT: stop accepting and let running
sessions finish. SIGHUP: reload the config (an invalid one is refused and the old one kept).
`,
  show: `Usage: res-memcached show functions|applications
       res-memcached show function NAME | show application NAME

Prints the dialplan commands, or one command's usage, as Asterisk's core show function does,
with its FastAGI form.
`,
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export async function main(argv: readonly string[], io: Io): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    io.err(`res-memcached: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [verb, ...rest] = positionals;
  if (values.version) {
    io.out(`${VERSION}\n`);
    return 0;
  }
  if (verb === undefined && values.help) {
    io.out(HELP);
    return 0;
  }
  const verbHelp = VERB_HELP[verb ?? 'serve'];
  if (verbHelp === undefined) {
    io.err(`res-memcached: unknown verb ${JSON.stringify(verb)}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    io.out(verbHelp);
    return 0;
  }
  const configPath = values.config;
  try {
    switch (verb ?? 'serve') {
      case 'serve': {
        if (rest.length > 0) throw new UsageError(`serve takes no arguments`);
        const level = values['log-level'] ?? 'info';
        if (!LOG_LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
        return await runServe(configPath, level);
      }
      case 'show':
        return runShow(rest, readSettings(configPath), io);
      case 'locate':
        return await runLocate(rest, configPath, io);
      case 'check':
        if (rest.length > 0) throw new UsageError(`check takes no arguments`);
        return await runCheck(configPath, io);
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
  const io: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };
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
