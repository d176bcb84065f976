// Config text without files on disk, for tests: an in-memory ConfigFs, and parseConfigText
// (src/config/asterisk-conf.ts, which the benchmarks use too) re-exported where tests look.

import { basename, dirname, resolve } from 'node:path';
import type { ConfigFs } from '../../src/config/asterisk-conf.js';

/** A ConfigFs over a map of absolute path → text. */
export function inMemoryConfigFs(files: Readonly<Record<string, string>>): ConfigFs {
  const byPath = new Map(Object.entries(files).map(([path, text]) => [resolve(path), text]));
  return {
    readFile(path) {
      const text = byPath.get(resolve(path));
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
      return text;
    },
    listDir(path) {
      const dir = resolve(path);
      return [...byPath.keys()].filter((p) => dirname(p) === dir).map((p) => basename(p));
    },
  };
}

export { parseConfigText } from '../../src/config/asterisk-conf.js';
