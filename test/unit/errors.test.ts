// The code table is libmemcached's (test/fixtures/vectors/return-codes.json, from
// libmemcached 1.1.4 itself) plus the C module's own codes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allRcs, MemcachedError, Rc, rcName, rcOf, rcText } from '../../src/util/errors.js';
import { readJsonFixture } from '../support/fixtures.js';

interface Code {
  code: number;
  name: string;
  strerror: string;
}

const table = readJsonFixture<{ codes: Code[] }>('vectors', 'return-codes.json').codes;

test("every memcached_return_t: libmemcached's number, name and strerror text", () => {
  let checked = 0;
  for (const c of table) {
    if (c.name === 'MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE') continue; // an alias of 11
    assert.equal(rcName(c.code), c.name, `name of ${c.code}`);
    assert.equal(rcText(c.code), c.strerror, `text of ${c.code}`);
    assert.equal((Rc as Record<string, number>)[c.name.replace(/^MEMCACHED_/, '')], c.code, c.name);
    checked++;
  }
  assert.equal(checked, 50);
});

test("the module's own codes count down from 127 (SPEC §3)", () => {
  assert.deepEqual(
    allRcs().filter((r) => r.code >= 122).map((r) => [r.code, r.name]),
    [
      [122, 'MEMCACHED_BAD_VALUE'],
      [123, 'MEMCACHED_BINARY_PROTO_NEEDED'],
      [124, 'MEMCACHED_BAD_INCREMENT'],
      [125, 'MEMCACHED_VALUE_TOO_LONG'],
      [126, 'MEMCACHED_KEY_TOO_LONG'],
      [127, 'MEMCACHED_ARGUMENT_NEEDED'],
    ],
  );
});

test('MemcachedError carries number, name, text and cause', () => {
  const cause = new Error('socket hang up');
  const err = new MemcachedError(Rc.TIMEOUT, undefined, { cause, serverText: 'x' });
  assert.equal(err.rc, 31);
  assert.equal(err.code, 'MEMCACHED_TIMEOUT');
  assert.equal(err.message, 'A TIMEOUT OCCURRED');
  assert.equal(err.cause, cause);
  assert.equal(err.serverText, 'x');
  assert.equal(rcOf(err), 31);
  assert.equal(rcOf(new Error('other')), Rc.FAILURE);
  assert.equal(rcName(9999), 'MEMCACHED_MAXIMUM_RETURN');
});
