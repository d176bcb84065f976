// Every dialplan command, by FastAGI script name (case-insensitive, as Asterisk's own application names).

import type { DialplanCommand } from './invocation.js';
import { mcd } from './commands/mcd.js';
import { mcdadd } from './commands/mcdadd.js';
import { mcdappend } from './commands/mcdappend.js';
import { mcdcas } from './commands/mcdcas.js';
import { mcdcounter } from './commands/mcdcounter.js';
import { mcdcounterset } from './commands/mcdcounterset.js';
import { mcddelete } from './commands/mcddelete.js';
import { mcdget } from './commands/mcdget.js';
import { mcdgets } from './commands/mcdgets.js';
import { mcdlimit } from './commands/mcdlimit.js';
import { mcdlimitcount } from './commands/mcdlimitcount.js';
import { mcdlock } from './commands/mcdlock.js';
import { mcdrelease } from './commands/mcdrelease.js';
import { mcdunlock } from './commands/mcdunlock.js';
import { mcdprepend } from './commands/mcdprepend.js';
import { mcdreplace } from './commands/mcdreplace.js';
import { mcdset } from './commands/mcdset.js';
import { mcdtouch } from './commands/mcdtouch.js';

export const COMMANDS: readonly DialplanCommand[] = [
  mcd, mcdcounter, mcdget, mcdset, mcdadd, mcdreplace, mcdappend, mcdprepend, mcddelete, mcdtouch, mcdcounterset,
  mcdgets, mcdcas,
  mcdlimit, mcdrelease, mcdlimitcount, mcdlock, mcdunlock,
];

const BY_NAME = new Map(COMMANDS.map((c) => [c.name.toLowerCase(), c]));

/** The command for a script name, any case; null when there is none. */
export function findCommand(name: string): DialplanCommand | null {
  return BY_NAME.get(name.toLowerCase()) ?? null;
}
