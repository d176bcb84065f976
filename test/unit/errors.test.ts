// The code table is libmemcached's (test/fixtures/vectors/return-codes.json, from
// libmemcached 1.1.4 itself) plus the C module's own codes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgiError, AgiProtocolError } from '../../src/agi/codec.js';
import { AgiSessionClosed } from '../../src/agi/session.js';
import { AmiActionError } from '../../src/ami/client.js';
import { AmiEncodeError, AmiError, AmiProtocolError } from '../../src/ami/codec.js';
import { CommandError } from '../../src/dialplan/invocation.js';
import { LeaseError } from '../../src/leases/engine.js';
import { ProtocolError } from '../../src/memcache/protocol/text.js';
import { allRcs, MemcachedError, Rc, rcName, rcOf, rcText, ResultError } from '../../src/util/errors.js';
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

test("the module's own codes count down from 127 (README.md, \"Result codes\")", () => {
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

test('ResultError is the base: same shape, and rcOf reads its rc without a MemcachedError', () => {
  const cause = new Error('reset');
  const err = new ResultError(Rc.AUTH_FAILURE, undefined, { cause, serverText: 'no' });
  assert.equal(err.rc, 41);
  assert.equal(err.code, 'MEMCACHED_AUTH_FAILURE');
  assert.equal(err.message, 'AUTHENTICATION FAILURE');
  assert.equal(err.cause, cause);
  assert.equal(err.serverText, 'no');
  assert.equal(err.name, 'ResultError');
  assert.ok(!(err instanceof MemcachedError));
  assert.equal(rcOf(err), 41);
  assert.ok(new MemcachedError(Rc.NOTFOUND) instanceof ResultError);
  assert.equal(new MemcachedError(Rc.NOTFOUND).name, 'MemcachedError');
});

test('AGI, AMI, lease and dialplan-command errors are ResultErrors, never MemcachedErrors', () => {
  const notTheCache: Array<[ResultError, Function, number]> = [
    [new AgiProtocolError('long line'), AgiError, Rc.PROTOCOL_ERROR],
    [new AgiSessionClosed('peer closed'), AgiError, Rc.CONNECTION_FAILURE],
    [new AmiProtocolError('bad frame'), AmiError, Rc.PROTOCOL_ERROR],
    [new AmiEncodeError('CR in a value'), AmiError, Rc.INVALID_ARGUMENTS],
    [new AmiActionError('Ping', 'Permission denied'), AmiError, Rc.ERROR],
    [new AmiError(Rc.TIMEOUT, 'AMI Ping: no answer'), AmiError, Rc.TIMEOUT],
    [new LeaseError(Rc.INVALID_ARGUMENTS, 'bad MAX'), LeaseError, Rc.INVALID_ARGUMENTS],
    [new CommandError(Rc.NOT_SUPPORTED, 'no lease engine'), CommandError, Rc.NOT_SUPPORTED],
  ];
  for (const [err, kind, rc] of notTheCache) {
    assert.ok(err instanceof kind, `${err.name} is a ${kind.name}`);
    assert.ok(err instanceof ResultError, `${err.name} is a ResultError`);
    assert.ok(!(err instanceof MemcachedError), `${err.name} must not be a MemcachedError`);
    assert.equal(rcOf(err), rc, `rcOf(${err.name})`);
    assert.equal(err.code, rcName(rc));
  }
  // The memcached codecs' framing error is a cache failure.
  assert.ok(new ProtocolError('bad reply') instanceof MemcachedError);
});
