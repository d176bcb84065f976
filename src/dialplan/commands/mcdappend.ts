// mcdappend(key,value) → AGI(agi://HOST/mcdappend,key,value).

import { storeCommand } from './store-command.js';

export const mcdappend = storeCommand('append', {
  name: 'mcdappend',
  synopsis: 'Appends text to the value of an existing key, atomically.',
  description:
    'memcached append, done by the server: no get-then-set race with other callers. MCDRESULT=14 ' +
    '(NOTSTORED) when the key is missing. The value is not trimmed: mcdappend(k, world!) appends " world!". ' +
    'The item keeps its TTL.',
  seeAlso: ['mcdprepend', 'mcdset'],
});
