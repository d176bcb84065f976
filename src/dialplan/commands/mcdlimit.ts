// mcdlimit(NAME,MAX) → AGI(agi://HOST/mcdlimit,NAME,MAX): take a lease under NAME if fewer than
// MAX channels hold one (src/leases/engine.ts).

import { MAX_LIMIT_SLOTS } from '../../leases/engine.js';
import { Rc } from '../../util/errors.js';
import { isRefusal } from '../arguments.js';
import type { DialplanCommand } from '../invocation.js';
import { boundedInteger, ERROR_VALUE, holder, nameArgument, refusedAsError } from './lease-command.js';

const OUTPUTS = ['MCDLIMIT', 'MCDLIMITCOUNT'];
const FAILED = [ERROR_VALUE];

export const mcdlimit: DialplanCommand = {
  name: 'mcdlimit',
  kind: 'application',
  synopsis: 'Takes a lease under a name, shared by every PBX, if fewer than MAX channels hold one.',
  description:
    'Sets ${MCDLIMIT} to OK when this channel now holds a lease under NAME (also when it already ' +
    'held one: a channel holds at most one per name), or FULL when MAX channels hold one; ' +
    'MCDRESULT is 0 either way, and ${MCDLIMITCOUNT} is the holders seen while deciding. When the ' +
    'cache fails, ${MCDLIMIT}=ERROR and MCDRESULT has the code. A lease lives lease_ttl seconds ' +
    '(memcached.conf) unless refreshed; release it with mcdrelease (the wrapper in ' +
    'extensions_mcd.conf does at hangup). Use the same MAX for a name everywhere. A NAME with ' +
    'whitespace or control characters gives 33, too long 126; a MAX that is not a whole number ' +
    `from 1 to ${MAX_LIMIT_SLOTS} gives 38.`,
  syntax: 'mcdlimit(name,max)',
  agiSyntax: 'mcdlimit,name,max',
  arguments: [
    { name: 'name', required: true, text: 'what is limited (a customer, trunk, tenant), a key' },
    { name: 'max', required: true, text: `most channels holding a lease at once, 1 to ${MAX_LIMIT_SLOTS}` },
  ],
  sets: OUTPUTS,
  seeAlso: ['mcdrelease', 'MCDLIMITCOUNT', 'mcdlock'],
  invoke(args, limits) {
    const name = nameArgument(args, 0, limits);
    if (isRefusal(name)) return refusedAsError(OUTPUTS, name);
    const given = args[1];
    if (given === undefined || given.length === 0) return refusedAsError(OUTPUTS, { rc: Rc.ARGUMENT_NEEDED, message: 'MAX is needed' });
    const max = boundedInteger(given, 1, MAX_LIMIT_SLOTS);
    if (max === null) return refusedAsError(OUTPUTS, { rc: Rc.INVALID_ARGUMENTS, message: `MAX must be a whole number from 1 to ${MAX_LIMIT_SLOTS}` });
    return {
      outputs: OUTPUTS,
      failed: FAILED,
      refusal: null,
      ttlDefault: null,
      mutates: true,
      run: async (_backend, _ttl, call) => {
        const { leases, uniqueId } = holder(call);
        const r = await leases.acquire(name, uniqueId, max);
        return [Buffer.from(r.outcome === 'ok' ? 'OK' : 'FULL', 'latin1'), Buffer.from(String(r.holders), 'latin1')];
      },
    };
  },
};
