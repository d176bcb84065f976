// The package as a user imports it: `import { Client } from 'res-memcached'` resolves through
// package.json "exports" to the built entry point and works against a real memcached.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startMemcached } from '../support/memcached.js';

test("import { Client, MemcachedError, Rc } from 'res-memcached' works end to end", async () => {
  const pkg = (await import('res-memcached' as string)) as typeof import('../../src/index.js');
  assert.equal(typeof pkg.Client, 'function');
  assert.equal(pkg.Rc.NOTSTORED, 14);
  assert.equal(pkg.rcName(16), 'MEMCACHED_NOTFOUND');
  const mc = await startMemcached();
  const client = new pkg.Client({ servers: [mc.address] });
  try {
    await client.set('from-the-root', 'yes');
    assert.equal((await client.get('from-the-root'))?.value.toString(), 'yes');
    await assert.rejects(client.add('from-the-root', 'no'), (err: unknown) => err instanceof pkg.MemcachedError && err.rc === 14 && err.code === 'MEMCACHED_NOTSTORED');
  } finally {
    await client.close();
    await mc.stop();
  }
});
