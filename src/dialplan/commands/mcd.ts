// ${MCD(key)} → AGI(agi://HOST/MCD,key): reads a key into ${MCD} ("" on a miss, 16).

import { Rc } from '../../util/errors.js';
import { isRefusal, keyArgument } from '../arguments.js';
import { CommandError, refused, type DialplanCommand } from '../invocation.js';

export const mcd: DialplanCommand = {
  name: 'MCD',
  kind: 'function',
  synopsis: 'Gets the value stored in memcached for a key.',
  description:
    'Reads the key (with the configured keyprefix) and sets ${MCD} to its value, byte for byte; ' +
    '${MCD} is "" on a miss (MCDRESULT=16) or any error. The write form of the C module, ' +
    'Set(MCD(key)=value), is the mcdset application here.',
  syntax: 'MCD(key)',
  agiSyntax: 'MCD,key',
  arguments: [{ name: 'key', required: true, text: 'the key to read' }],
  seeAlso: ['mcdget', 'mcdset', 'mcdadd', 'mcdreplace', 'mcddelete'],
  invoke(args, limits) {
    const key = keyArgument(args, 0, limits);
    if (isRefusal(key)) return refused(['MCD'], key.rc, key.message);
    return {
      outputs: ['MCD'],
      refusal: null,
      ttlDefault: null,
      mutates: false,
      run: async (backend) => [(await backend.get(key))?.value ?? notFound()],
    };
  },
};

/** One instance for every miss: a miss is common, and only its code is read. */
const NOT_FOUND = new CommandError(Rc.NOTFOUND, 'NOT FOUND');

/** A miss is a failure for the dialplan (MCDRESULT=16), as libmemcached's memcached_get reports it. */
export function notFound(): never {
  throw NOT_FOUND;
}
