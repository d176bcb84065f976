// mcdset(key,value) and Set(MCD(key)=value) → AGI(agi://HOST/mcdset,key,value).

import { storeCommand, TTL_NOTE } from './store-command.js';

export const mcdset = storeCommand('set', {
  name: 'mcdset',
  synopsis: 'Stores a value under a key, creating or overwriting it.',
  description: 'memcached set.' + TTL_NOTE,
  seeAlso: ['MCD', 'mcdadd', 'mcdreplace', 'mcddelete'],
});
