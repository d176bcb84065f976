// mcdgets(var,key) → AGI(agi://HOST/mcdgets,var,key): mcdget plus the item's CAS token in
// ${MCDCAS}, the first half of a compare-and-set (mcdcas).

import { Rc } from '../../util/errors.js';
import { isRefusal, isVariableName, keyArgument } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';
import { notFound } from './mcd.js';

export const mcdgets: DialplanCommand = {
  name: 'mcdgets',
  kind: 'application',
  synopsis: 'Stores the value of a key in a dialplan variable, and its CAS token in ${MCDCAS}.',
  description:
    'Reads the key like mcdget and sets ${MCDCAS} to the CAS token memcached gave the item, as ' +
    'decimal digits (an unsigned 64-bit number, exact): pass it to mcdcas to store a new value ' +
    'only if nobody changed the key in between. On a miss (MCDRESULT=16) or any error both ' +
    'variables are "". The variable cannot be MCDCAS itself (127).',
  syntax: 'mcdgets(varname,key)',
  agiSyntax: 'mcdgets,varname,key',
  arguments: [
    { name: 'varname', required: true, text: 'the name of the variable to set (letters, digits, _)' },
    { name: 'key', required: true, text: 'the key to read' },
  ],
  seeAlso: ['mcdcas', 'mcdget'],
  invoke(args, limits) {
    const name = args[0];
    if (!isVariableName(name)) return refused(['MCDCAS'], Rc.ARGUMENT_NEEDED, 'the first argument must be a variable name');
    const variable = name!.toString('latin1');
    // Both would be written in one command and which one wins would depend on the value's bytes.
    if (variable.toUpperCase() === 'MCDCAS') return refused(['MCDCAS'], Rc.ARGUMENT_NEEDED, 'the variable cannot be MCDCAS, which receives the token');
    const outputs = [variable, 'MCDCAS'];
    const key = keyArgument(args, 1, limits);
    if (isRefusal(key)) return refused(outputs, key.rc, key.message);
    return {
      outputs,
      refusal: null,
      ttlDefault: null,
      mutates: false,
      run: async (backend) => {
        const item = (await backend.gets(key)) ?? notFound();
        return [item.value, Buffer.from(item.cas.toString(), 'latin1')];
      },
    };
  },
};
