// mcdrelease(NAME) → AGI(agi://HOST/mcdrelease,NAME): free this channel's lease under NAME.

import type { DialplanCommand } from '../invocation.js';
import { releaseInvocation } from './lease-command.js';

export const mcdrelease: DialplanCommand = {
  name: 'mcdrelease',
  kind: 'application',
  synopsis: 'Releases the lease this channel holds under a name.',
  description:
    'Frees the lease mcdlimit gave this channel under NAME: MCDRESULT=0, or 16 (NOTFOUND) when it ' +
    'held none (never taken, released already, or expired after lease_ttl). Only the holder can ' +
    'free its lease: the slot is deleted only while it still carries this channel and is unchanged.',
  syntax: 'mcdrelease(name)',
  agiSyntax: 'mcdrelease,name',
  arguments: [{ name: 'name', required: true, text: 'the name given to mcdlimit' }],
  seeAlso: ['mcdlimit', 'MCDLIMITCOUNT'],
  invoke(args, limits) {
    return releaseInvocation(args, limits, (leases, name, uniqueId) => leases.release(name, uniqueId), 'this channel holds no lease under that name');
  },
};
