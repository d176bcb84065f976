// mcdprepend(key,value) → AGI(agi://HOST/mcdprepend,key,value). Not in the C module.

import { storeCommand } from './store-command.js';

export const mcdprepend = storeCommand('prepend', {
  name: 'mcdprepend',
  synopsis: 'Prepends text to the value of an existing key, atomically.',
  description: 'memcached prepend, done by the server. MCDRESULT=14 (NOTSTORED) when the key is missing. The item keeps its TTL.',
  seeAlso: ['mcdappend', 'mcdset'],
});
