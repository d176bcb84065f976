// mcdcas(key,cas,value) → AGI(agi://HOST/mcdcas,key,cas,value): memcached cas, the second half
// of a compare-and-set after mcdgets.

import { Rc } from '../../util/errors.js';
import { isRefusal, keyArgument, parseCasToken, valueArgument } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';
import { TTL_NOTE } from './store-command.js';

export const mcdcas: DialplanCommand = {
  name: 'mcdcas',
  kind: 'application',
  synopsis: 'Stores a value under a key only if the key is unchanged since mcdgets read it.',
  description:
    'memcached cas with the token mcdgets left in ${MCDCAS}: MCDRESULT=0 when stored, 12 ' +
    '(DATA_EXISTS) when the key was written since (read it again and retry), 16 when it is gone. ' +
    'A cas that is not a token — anything but decimal digits from 1 to 18446744073709551615 — ' +
    'gives 38 (INVALID_ARGUMENTS, as the client library answers a cas of 0) and nothing is sent; ' +
    'an empty one gives 127.' + TTL_NOTE,
  syntax: 'mcdcas(key,cas,value)',
  agiSyntax: 'mcdcas,key,cas,value',
  arguments: [
    { name: 'key', required: true, text: 'the key' },
    { name: 'cas', required: true, text: 'the CAS token from mcdgets (${MCDCAS})' },
    { name: 'value', required: true, text: 'the value: every argument from here on, joined again with commas; not trimmed' },
  ],
  seeAlso: ['mcdgets', 'mcdset'],
  invoke(args, limits) {
    const key = keyArgument(args, 0, limits);
    if (isRefusal(key)) return refused([], key.rc, key.message);
    const text = args[1];
    if (text === undefined || text.length === 0) return refused([], Rc.ARGUMENT_NEEDED, 'a CAS token is needed (mcdgets leaves ${MCDCAS} empty on a miss)');
    const token = parseCasToken(text);
    if (token === null) return refused([], Rc.INVALID_ARGUMENTS, 'the CAS token must be decimal digits from 1 to 18446744073709551615');
    const value = valueArgument(args, 2, limits);
    if (isRefusal(value)) return refused([], value.rc, value.message);
    return {
      outputs: [],
      refusal: null,
      ttlDefault: 'ttl',
      mutates: true,
      run: async (backend, ttl) => {
        await backend.cas(key, value, token, { ttl });
        return [];
      },
    };
  },
};
