// mcdtouch(key[,ttl]) → AGI(agi://HOST/mcdtouch,key[,ttl]). Not in the C module.

import { Rc } from '../../util/errors.js';
import { isRefusal, keyArgument, parseTtl } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';

export const mcdtouch: DialplanCommand = {
  name: 'mcdtouch',
  kind: 'application',
  synopsis: 'Gives an existing key a new time to live.',
  description:
    'memcached touch: MCDRESULT=16 (NOTFOUND) when the key is missing. Without a ttl argument the ' +
    'TTL is ${MCDTTL}, else ttl= of memcached.conf; 0 makes the key permanent. A ttl that is not a ' +
    'non-negative integer gives MCDRESULT=38 (INVALID_ARGUMENTS).',
  syntax: 'mcdtouch(key[,ttl])',
  agiSyntax: 'mcdtouch,key[,ttl]',
  arguments: [
    { name: 'key', required: true, text: 'the key' },
    { name: 'ttl', required: false, text: 'seconds; above 30 days an absolute Unix time' },
  ],
  seeAlso: ['mcdset'],
  invoke(args, limits) {
    const key = keyArgument(args, 0, limits);
    if (isRefusal(key)) return refused([], key.rc, key.message);
    const given = args[1];
    const explicit = given === undefined ? null : parseTtl(given);
    if (given !== undefined && explicit === null) return refused([], Rc.INVALID_ARGUMENTS, 'the ttl must be a non-negative integer of seconds');
    return {
      outputs: [],
      refusal: null,
      ttlDefault: explicit === null ? 'ttl' : null,
      mutates: true,
      run: async (backend, ttl) => {
        await backend.touch(key, explicit ?? ttl);
        return [];
      },
    };
  },
};
