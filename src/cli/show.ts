// `show functions|applications|function NAME|application NAME`: the usage texts, laid out as
// Asterisk's `core show functions` / `core show function MCD` print them, so they read as
// Asterisk's own.

import type { Settings } from '../config/settings.js';
import type { DialplanCommand } from '../dialplan/invocation.js';
import { COMMANDS } from '../dialplan/registry.js';
import { UsageError, type Io } from './io.js';

const RULE = '-'.repeat(80);

export function runShow(words: readonly string[], settings: Settings, io: Io): number {
  const [what, name, ...extra] = words;
  if (extra.length > 0) throw new UsageError(`show takes at most two words`);
  const host = agiHost(settings);
  switch (what) {
    case 'functions':
    case 'applications': {
      if (name !== undefined) throw new UsageError(`show ${what} takes no name`);
      io.out(what === 'functions' ? listFunctions() : listApplications());
      return 0;
    }
    case 'function':
    case 'application': {
      if (name === undefined) throw new UsageError(`show ${what} needs a name`);
      const kind = what;
      const command = COMMANDS.find((c) => c.kind === kind && c.name.toLowerCase() === name.toLowerCase());
      if (command === undefined) {
        io.err(`No ${kind} by that name registered.\n`);
        return 1;
      }
      io.out(describe(command, host));
      return 0;
    }
    default:
      throw new UsageError(`show what? functions, applications, function NAME or application NAME`);
  }
}

function listFunctions(): string {
  const functions = COMMANDS.filter((c) => c.kind === 'function');
  const lines = functions.map((c) => `${c.name.padEnd(20)}  ${c.syntax.padEnd(35)}  ${c.synopsis}`);
  return `Installed Custom Functions:\n${RULE}\n${lines.join('\n')}\n${RULE}\n${functions.length} custom functions installed.\n`;
}

function listApplications(): string {
  const apps = COMMANDS.filter((c) => c.kind === 'application');
  const lines = apps.map((c) => `${c.name.padStart(20)}: ${c.synopsis}`);
  return `    -= Registered Asterisk Applications =-\n${lines.join('\n')}\n    -= ${apps.length} Applications Registered =-\n`;
}

function describe(c: DialplanCommand, host: string): string {
  const args = c.arguments.map((a) => `${a.name}${a.required ? '' : ' (optional)'}\n    ${a.text}`).join('\n');
  const seeAlso = c.seeAlso.map((n) => `${n}()`).join(', ');
  return [
    '',
    `  -= Info about ${c.kind} '${c.name}' =- `,
    '',
    '[Synopsis]',
    c.synopsis,
    '',
    '[Description]',
    c.description,
    '',
    '[Syntax]',
    c.syntax,
    '',
    '[FastAGI]',
    `AGI(agi://${host}/${c.agiSyntax})`,
    '',
    '[Arguments]',
    args,
    '',
    '[Sets]',
    sets(c),
    '',
    '[See Also]',
    seeAlso,
    '',
  ].join('\n');
}

function sets(c: DialplanCommand): string {
  if (c.sets !== undefined) return [...c.sets.map((v) => `\${${v}}`), 'MCDRESULT'].join(', ');
  if (c.kind === 'function') return `\${${c.name}}, MCDRESULT`;
  if (c.name === 'mcdget') return 'the variable named by varname, MCDRESULT';
  if (c.name === 'mcdgets') return 'the variable named by varname, MCDCAS, MCDRESULT';
  return 'MCDRESULT';
}

function agiHost(settings: Settings): string {
  const { bindaddr, port } = settings.agi;
  const host = bindaddr.includes(':') ? `[${bindaddr}]` : bindaddr === '0.0.0.0' || bindaddr === '::' ? 'HOST' : bindaddr;
  return port === 4573 ? host : `${host}:${port}`;
}
