// mcddelete(key) → AGI(agi://HOST/mcddelete,key).

import { isRefusal, keyArgument } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';

export const mcddelete: DialplanCommand = {
  name: 'mcddelete',
  kind: 'application',
  synopsis: 'Deletes a key.',
  description: 'memcached delete: MCDRESULT=16 (NOTFOUND) when the key is missing.',
  syntax: 'mcddelete(key)',
  agiSyntax: 'mcddelete,key',
  arguments: [{ name: 'key', required: true, text: 'the key to delete' }],
  seeAlso: ['MCD', 'mcdadd', 'mcdreplace'],
  invoke(args, limits) {
    const key = keyArgument(args, 0, limits);
    if (isRefusal(key)) return refused([], key.rc, key.message);
    return {
      outputs: [],
      refusal: null,
      ttlDefault: null,
      mutates: true,
      run: async (backend) => {
        await backend.delete(key);
        return [];
      },
    };
  },
};
