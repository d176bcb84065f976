// Locating test fixtures from compiled tests: tests run from dist/test/..., the fixtures stay in
// test/fixtures at the repository root, so walk up from this module to the directory that has
// both a package.json and test/fixtures.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | undefined;

/** The repository root (the first ancestor of this module with package.json and test/fixtures). */
export function repoRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'fixtures'))) {
      cachedRoot = dir;
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json with test/fixtures above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Absolute path of `test/fixtures/<parts...>`. */
export function fixturePath(...parts: string[]): string {
  return join(repoRoot(), 'test', 'fixtures', ...parts);
}

/** Parses `test/fixtures/<parts...>` as JSON. The type is the caller's promise, not checked. */
export function readJsonFixture<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}

/** Bytes of a fixture's `key_hex` (the authoritative form of a key). */
export function hexBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) throw new Error(`bad hex: ${hex}`);
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
