// Config text without files on disk, for tests: parseConfigText reads `text` as the file `file`
// through src/config/asterisk-conf.ts's parseConfigFile, so a test's config goes through the very
// path the daemon's does; #include still reads through options.fs (the disk by default).

import { basename, dirname, resolve } from 'node:path';
import { nodeConfigFs, parseConfigFile, type ConfigFs, type ParsedConfig, type ParseOptions } from '../../src/config/asterisk-conf.js';

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

/** Parses `text` as if read from `file`; everything else `file` includes is read through options.fs. */
export function parseConfigText(text: string, file: string, options: ParseOptions = {}): ParsedConfig {
  const base = options.fs ?? nodeConfigFs;
  const overlay: ConfigFs = {
    readFile: (path) => (resolve(path) === resolve(file) ? text : base.readFile(path)),
    ...(base.listDir === undefined ? {} : { listDir: (path: string) => base.listDir!(path) }),
  };
  return parseConfigFile(file, { fs: overlay });
}
