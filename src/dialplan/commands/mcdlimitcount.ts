// ${MCDLIMITCOUNT(NAME)} → AGI(agi://HOST/MCDLIMITCOUNT,NAME): how many channels hold a lease.

import { isRefusal } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';
import { nameArgument } from './lease-command.js';

export const mcdlimitcount: DialplanCommand = {
  name: 'MCDLIMITCOUNT',
  kind: 'function',
  synopsis: 'Counts the channels holding a lease under a name, on every PBX.',
  description:
    'Sets ${MCDLIMITCOUNT} to the number of live leases under NAME (taken with mcdlimit, not ' +
    'released, not expired), whatever MAX they were taken with; 0 for a name never used.',
  syntax: 'MCDLIMITCOUNT(name)',
  agiSyntax: 'MCDLIMITCOUNT,name',
  arguments: [{ name: 'name', required: true, text: 'the name given to mcdlimit' }],
  seeAlso: ['mcdlimit', 'mcdrelease'],
  invoke(args, limits) {
    const name = nameArgument(args, 0, limits);
    if (isRefusal(name)) return refused(['MCDLIMITCOUNT'], name.rc, name.message);
    return {
      outputs: ['MCDLIMITCOUNT'],
      refusal: null,
      ttlDefault: null,
      mutates: false,
      run: async (_backend, _ttl, call) => {
        if (call.leases === null) return [Buffer.from('0', 'latin1')];
        return [Buffer.from(String(await call.leases.count(name)), 'latin1')];
      },
    };
  },
};
