// The five writes (set, add, replace, append, prepend) differ only in the memcached operation and
// in whether a TTL applies: memcached keeps an item's TTL on append/prepend, so those two spare
// Asterisk the MCDTTL read.

import { isRefusal, keyArgument, valueArgument } from '../arguments.js';
import type { CacheBackend } from '../backend.js';
import { refused, type CommandDoc, type DialplanCommand } from '../invocation.js';

export type StoreOperation = 'set' | 'add' | 'replace' | 'append' | 'prepend';

export function storeCommand(op: StoreOperation, doc: Omit<CommandDoc, 'kind' | 'syntax' | 'agiSyntax' | 'arguments'>): DialplanCommand {
  const withTtl = op === 'set' || op === 'add' || op === 'replace';
  const write = (backend: CacheBackend, key: Buffer, value: Buffer, ttl: number): Promise<void> =>
    op === 'append' || op === 'prepend' ? backend[op](key, value) : backend[op](key, value, { ttl });
  return {
    ...doc,
    kind: 'application',
    syntax: `${doc.name}(key,value)`,
    agiSyntax: `${doc.name},key,value`,
    arguments: [
      { name: 'key', required: true, text: 'the key' },
      { name: 'value', required: true, text: 'the value: every argument from here on, joined again with commas; not trimmed' },
    ],
    invoke(args, limits) {
      const key = keyArgument(args, 0, limits);
      if (isRefusal(key)) return refused([], key.rc, key.message);
      const value = valueArgument(args, 1, limits);
      if (isRefusal(value)) return refused([], value.rc, value.message);
      return {
        outputs: [],
        refusal: null,
        ttlDefault: withTtl ? 'ttl' : null,
        mutates: true,
        run: async (backend, ttl) => {
          await write(backend, key, value, ttl);
          return [];
        },
      };
    },
  };
}

export const TTL_NOTE = ' The TTL is ${MCDTTL} when it holds a non-negative integer, else ttl= of memcached.conf; above 30 days it is an absolute Unix time.';
