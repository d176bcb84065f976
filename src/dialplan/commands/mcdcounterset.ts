// Set(MCDCOUNTER(key)=n) → AGI(agi://HOST/mcdcounterset,key,n).

import { Rc } from '../../util/errors.js';
import { isRefusal, keyArgument, parseSignedInteger } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';

export const mcdcounterset: DialplanCommand = {
  name: 'mcdcounterset',
  kind: 'application',
  synopsis: 'Creates a counter, or forces it, to a value.',
  description:
    'Stores n (0 .. 18446744073709551615) under the key, creating or overwriting it. The TTL is ' +
    '${MCDTTL} when set, else counter_ttl= of memcached.conf (default 0: counters persist). A value ' +
    'that is not such an integer gives MCDRESULT=124 and nothing is stored. (The C module used ' +
    'increment_with_initial, which left an existing counter unchanged; this one sets it, as its ' +
    'documentation promised.)',
  syntax: 'Set(MCDCOUNTER(key)=n)',
  agiSyntax: 'mcdcounterset,key,n',
  arguments: [
    { name: 'key', required: true, text: 'the counter' },
    { name: 'n', required: true, text: 'the value, an unsigned 64-bit integer' },
  ],
  seeAlso: ['MCDCOUNTER', 'mcddelete'],
  invoke(args, limits) {
    const key = keyArgument(args, 0, limits);
    if (isRefusal(key)) return refused([], key.rc, key.message);
    if (args.length < 2) return refused([], Rc.ARGUMENT_NEEDED, 'a counter value is needed');
    const n = args.length === 2 ? parseSignedInteger(args[1]) : null;
    if (n === null || n < 0n) return refused([], Rc.BAD_INCREMENT, 'the counter value must be an integer from 0 to 18446744073709551615');
    return {
      outputs: [],
      refusal: null,
      ttlDefault: 'counter_ttl',
      mutates: true,
      run: async (backend, ttl) => {
        await backend.set(key, n.toString(), { ttl });
        return [];
      },
    };
  },
};
