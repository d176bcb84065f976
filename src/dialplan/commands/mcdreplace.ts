// mcdreplace(key,value) → AGI(agi://HOST/mcdreplace,key,value).

import { storeCommand, TTL_NOTE } from './store-command.js';

export const mcdreplace = storeCommand('replace', {
  name: 'mcdreplace',
  synopsis: 'Stores a value only if the key already exists.',
  description: 'memcached replace: MCDRESULT=14 (NOTSTORED) when the key is missing.' + TTL_NOTE,
  seeAlso: ['MCD', 'mcdadd', 'mcddelete'],
});
