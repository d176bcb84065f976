// ${MCDCOUNTER(key[,inc])} → AGI(agi://HOST/MCDCOUNTER,key[,inc]): one atomic incr/decr.

import { Rc } from '../../util/errors.js';
import { isRefusal, keyArgument, parseSignedInteger } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';

export const mcdcounter: DialplanCommand = {
  name: 'MCDCOUNTER',
  kind: 'function',
  synopsis: 'Adds to a counter and reads it, atomically.',
  description:
    'Sets ${MCDCOUNTER} to the counter after adding the increment (default 0: just read it), in one ' +
    'memcached incr (or decr for a negative increment) on the server, so concurrent calls on every ' +
    'PBX of a cluster never lose a count. Counters are unsigned 64-bit: decr stops at 0, incr wraps ' +
    'at 2^64. A missing counter gives MCDRESULT=16 and ${MCDCOUNTER}="" (create it with ' +
    'mcdcounterset); an increment that is not an integer gives 124. Works with both protocols.',
  syntax: 'MCDCOUNTER(key[,increment])',
  agiSyntax: 'MCDCOUNTER,key[,increment]',
  arguments: [
    { name: 'key', required: true, text: 'the counter' },
    { name: 'increment', required: false, text: 'an integer, may be negative; 0 or absent reads the counter' },
  ],
  seeAlso: ['mcdcounterset', 'mcddelete'],
  invoke(args, limits) {
    const key = keyArgument(args, 0, limits);
    if (isRefusal(key)) return refused(['MCDCOUNTER'], key.rc, key.message);
    const given = args[1];
    const increment = given === undefined || given.length === 0 ? 0n : parseSignedInteger(given);
    if (increment === null) return refused(['MCDCOUNTER'], Rc.BAD_INCREMENT, 'the increment must be an integer');
    return {
      outputs: ['MCDCOUNTER'],
      refusal: null,
      ttlDefault: null,
      // An increment of 0 changes nothing, so it needs no synchronisation first.
      mutates: increment !== 0n,
      run: async (backend) => {
        const now = increment >= 0n ? await backend.incr(key, increment) : await backend.decr(key, -increment);
        return [Buffer.from(now.toString(), 'latin1')];
      },
    };
  },
};
