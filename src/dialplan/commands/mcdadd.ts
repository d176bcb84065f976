// mcdadd(key,value) → AGI(agi://HOST/mcdadd,key,value).

import { storeCommand, TTL_NOTE } from './store-command.js';

export const mcdadd = storeCommand('add', {
  name: 'mcdadd',
  synopsis: 'Stores a value only if the key does not exist yet.',
  description: 'memcached add: MCDRESULT=14 (NOTSTORED) when the key exists.' + TTL_NOTE,
  seeAlso: ['MCD', 'mcdreplace', 'mcddelete'],
});
