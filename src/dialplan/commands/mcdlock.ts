// mcdlock(NAME[,WAIT_MS]) → AGI(agi://HOST/mcdlock,NAME[,WAIT_MS]): a mutex shared by every PBX,
// held by this channel (a lease with one slot, src/leases/engine.ts).

import { Rc } from '../../util/errors.js';
import { isRefusal } from '../arguments.js';
import type { DialplanCommand } from '../invocation.js';
import { boundedInteger, ERROR_VALUE, holder, nameArgument, refusedAsError } from './lease-command.js';

/** Longest wait: the channel sits in AGI() meanwhile, and a stopping daemon waits for it. */
export const MAX_LOCK_WAIT_MS = 60_000;
const OUTPUTS = ['MCDLOCK'];
const FAILED = [ERROR_VALUE];

export const mcdlock: DialplanCommand = {
  name: 'mcdlock',
  kind: 'application',
  synopsis: 'Takes a lock shared by every PBX, waiting up to WAIT_MS for it.',
  description:
    'Sets ${MCDLOCK} to OK when this channel holds the lock NAME (also when it already did), or ' +
    'TIMEOUT when another channel held it for the whole wait (MCDRESULT 0 either way; ERROR and ' +
    'the code when the cache fails). The lock is freed by mcdunlock, at hangup by the wrapper in ' +
    'extensions_mcd.conf, or lease_ttl seconds after it was taken. WAIT_MS: 0 (the default) tries ' +
    `once; at most ${MAX_LOCK_WAIT_MS}; another value gives 38.`,
  syntax: 'mcdlock(name[,wait_ms])',
  agiSyntax: 'mcdlock,name[,wait_ms]',
  arguments: [
    { name: 'name', required: true, text: 'the lock, a key' },
    { name: 'wait_ms', required: false, text: `milliseconds to wait for it, 0 to ${MAX_LOCK_WAIT_MS}` },
  ],
  sets: OUTPUTS,
  seeAlso: ['mcdunlock', 'mcdlimit'],
  invoke(args, limits) {
    const name = nameArgument(args, 0, limits);
    if (isRefusal(name)) return refusedAsError(OUTPUTS, name);
    const given = args[1];
    const waitMs = given === undefined || given.length === 0 ? 0 : boundedInteger(given, 0, MAX_LOCK_WAIT_MS);
    if (waitMs === null) return refusedAsError(OUTPUTS, { rc: Rc.INVALID_ARGUMENTS, message: `WAIT_MS must be a whole number from 0 to ${MAX_LOCK_WAIT_MS}` });
    return {
      outputs: OUTPUTS,
      failed: FAILED,
      refusal: null,
      ttlDefault: null,
      mutates: true,
      run: async (_backend, _ttl, call) => {
        const { leases, uniqueId } = holder(call);
        return [Buffer.from((await leases.lock(name, uniqueId, waitMs)) === 'ok' ? 'OK' : 'TIMEOUT', 'latin1')];
      },
    };
  },
};
