// mcdget(var,key) → AGI(agi://HOST/mcdget,var,key): reads a key into a variable of your choice.

import { Rc } from '../../util/errors.js';
import { isRefusal, isVariableName, keyArgument } from '../arguments.js';
import { refused, type DialplanCommand } from '../invocation.js';
import { notFound } from './mcd.js';

export const mcdget: DialplanCommand = {
  name: 'mcdget',
  kind: 'application',
  synopsis: 'Stores the value of a key in a dialplan variable.',
  description:
    'Reads the key and sets the variable named by the first argument (the name, not its contents) ' +
    'to the value; the variable is "" on a miss (MCDRESULT=16) or any error.',
  syntax: 'mcdget(varname,key)',
  agiSyntax: 'mcdget,varname,key',
  arguments: [
    { name: 'varname', required: true, text: 'the name of the variable to set (letters, digits, _)' },
    { name: 'key', required: true, text: 'the key to read' },
  ],
  seeAlso: ['MCD'],
  invoke(args, limits) {
    const name = args[0];
    if (!isVariableName(name)) return refused([], Rc.ARGUMENT_NEEDED, 'the first argument must be a variable name');
    const variable = name!.toString('latin1');
    const key = keyArgument(args, 1, limits);
    if (isRefusal(key)) return refused([variable], key.rc, key.message);
    return {
      outputs: [variable],
      refusal: null,
      ttlDefault: null,
      mutates: false,
      run: async (backend) => [(await backend.get(key))?.value ?? notFound()],
    };
  },
};
