// mcdunlock(NAME) → AGI(agi://HOST/mcdunlock,NAME): free the lock this channel holds.

import type { DialplanCommand } from '../invocation.js';
import { releaseInvocation } from './lease-command.js';

export const mcdunlock: DialplanCommand = {
  name: 'mcdunlock',
  kind: 'application',
  synopsis: 'Releases a lock this channel holds.',
  description:
    'Frees the lock NAME taken with mcdlock: MCDRESULT=0, or 16 (NOTFOUND) when this channel does ' +
    'not hold it (another does, or it expired after lease_ttl). Only the holder can free it.',
  syntax: 'mcdunlock(name)',
  agiSyntax: 'mcdunlock,name',
  arguments: [{ name: 'name', required: true, text: 'the lock' }],
  seeAlso: ['mcdlock'],
  invoke(args, limits) {
    return releaseInvocation(args, limits, (leases, name, uniqueId) => leases.unlock(name, uniqueId), 'this channel does not hold that lock');
  },
};
