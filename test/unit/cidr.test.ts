// IP networks of the FastAGI listener's permit=/deny= lines: parsing and matching.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Cidr, CidrError, isLoopback, parseCidr, parseIp } from '../../src/config/cidr.js';

describe('parseIp', () => {
  it('reads IPv4 dotted quads as 32-bit numbers', () => {
    assert.deepEqual(parseIp('0.0.0.0'), { family: 4, value: 0n });
    assert.deepEqual(parseIp('10.1.2.3'), { family: 4, value: 0x0a010203n });
    assert.deepEqual(parseIp('255.255.255.255'), { family: 4, value: 0xffffffffn });
  });

  it('reads every IPv6 text form as a 128-bit number', () => {
    assert.deepEqual(parseIp('::'), { family: 6, value: 0n });
    assert.deepEqual(parseIp('::1'), { family: 6, value: 1n });
    assert.deepEqual(parseIp('1::'), { family: 6, value: 1n << 112n });
    assert.deepEqual(parseIp('1:2:3:4:5:6:7:8'), { family: 6, value: 0x0001000200030004000500060007_0008n });
    assert.deepEqual(parseIp('1:2:3:4:5:6:7::'), { family: 6, value: 0x0001000200030004000500060007_0000n });
    assert.deepEqual(parseIp('::2:3:4:5:6:7:8'), { family: 6, value: 0x0000000200030004000500060007_0008n });
    assert.deepEqual(parseIp('2001:DB8::ff00:42:8329'), { family: 6, value: 0x20010db8000000000000ff0000428329n });
    assert.deepEqual(parseIp('::ffff:127.0.0.1'), { family: 6, value: 0xffff7f000001n });
    assert.deepEqual(parseIp('64:ff9b::192.0.2.33'), { family: 6, value: (0x0064ff9bn << 96n) | 0xc0000221n });
    assert.deepEqual(parseIp('1:2:3:4:5:6:1.2.3.4'), { family: 6, value: (0x000100020003000400050006n << 32n) | 0x01020304n });
  });

  it('refuses what inet_pton refuses', () => {
    for (const bad of [
      '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-4', ' 1.2.3.4', 'localhost',
      ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '::1:2:3:4:5:6:7:8', '12345::',
      'g::1', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:', '::1.2.3.4:5', '1.2.3.4::', '::256.0.0.1', '1:2:3:4:5:6:7:1.2.3.4',
    ]) {
      assert.equal(parseIp(bad), null, bad);
    }
  });
});

describe('parseCidr', () => {
  it('takes a bare address as a single host', () => {
    const c = parseCidr('10.1.2.3');
    assert.equal(c.family, 4);
    assert.equal(c.prefixLength, 32);
    assert.equal(c.network, 0x0a010203n);
    assert.equal(c.mask, 0xffffffffn);
    assert.equal(parseCidr('::1').prefixLength, 128);
  });

  it('takes prefix lengths and dotted masks, as Asterisk configs write them', () => {
    const a = parseCidr('192.168.0.0/16');
    const b = parseCidr('192.168.0.0/255.255.0.0');
    assert.equal(a.mask, 0xffff0000n);
    assert.equal(b.mask, 0xffff0000n);
    assert.equal(b.prefixLength, 16);
    assert.equal(parseCidr('0.0.0.0/0.0.0.0').prefixLength, 0);
    assert.equal(parseCidr('0.0.0.0/0').mask, 0n);
    assert.equal(parseCidr('2001:db8::/32').mask, ((1n << 32n) - 1n) << 96n);
    assert.equal(parseCidr('[2001:db8::]/32').prefixLength, 32);
    assert.equal(parseCidr('[::1]').prefixLength, 128);
  });

  it('keeps the text as written and clears host bits (flagging them)', () => {
    const c = parseCidr(' 10.1.2.3/8 ');
    assert.equal(c.text, '10.1.2.3/8');
    assert.equal(c.network, 0x0a000000n);
    assert.equal(c.hostBitsSet, true);
    assert.equal(parseCidr('10.0.0.0/8').hostBitsSet, false);
    assert.equal(String(c), '10.1.2.3/8');
    assert.equal(JSON.stringify({ c }), '{"c":"10.1.2.3/8"}');
  });

  it('accepts a non-contiguous dotted mask, matching bitwise', () => {
    const c = parseCidr('10.0.0.1/255.0.0.255');
    assert.equal(c.prefixLength, null);
    assert.ok(c.matches('10.200.100.1'));
    assert.ok(!c.matches('10.200.100.2'));
  });

  it('refuses host names, bad masks and bad prefix lengths with a CidrError', () => {
    for (const bad of [
      '', 'localhost', 'pbx.example.com/32', '1.2.3.4/33', '::1/129', '::/255.0.0.0', '1.2.3.4/', '1.2.3.4/8/8',
      '1.2.3.4/abc', '1.2.3.4/-1', '1.2.3.4/1234', 'fe80::1%eth0', '1.2.3.4/255.255.256.0', '[1.2.3.4',
    ]) {
      assert.throws(() => parseCidr(bad), CidrError, bad);
    }
    assert.throws(() => parseCidr('localhost'), /host names are not allowed/);
  });
});

describe('Cidr.matches', () => {
  it('matches IPv4 clients inside the network, and only those', () => {
    const c = parseCidr('10.1.0.0/16');
    assert.ok(c.matches('10.1.0.0'));
    assert.ok(c.matches('10.1.255.255'));
    assert.ok(!c.matches('10.2.0.0'));
    assert.ok(!c.matches('10.0.255.255'));
    assert.ok(c.matches('10.1.2.3'));
  });

  it('sees IPv4-mapped IPv6 remote addresses as the IPv4 client they are', () => {
    const c = parseCidr('127.0.0.0/8');
    assert.ok(c.matches('::ffff:127.0.0.1'));
    assert.ok(c.matches('::FFFF:127.9.9.9'));
    assert.ok(!c.matches('::ffff:128.0.0.1'));
    assert.ok(!c.matches('::127.0.0.1'), 'IPv4-compatible is not IPv4-mapped');
    assert.ok(!c.matches('::1'));
  });

  it('0.0.0.0/0 covers every IPv4 client but no native IPv6 one; ::/0 covers all', () => {
    const v4all = parseCidr('0.0.0.0/0');
    assert.ok(v4all.matches('8.8.8.8'));
    assert.ok(v4all.matches('::ffff:8.8.8.8'));
    assert.ok(!v4all.matches('::1'));
    const all = parseCidr('::/0');
    assert.ok(all.matches('::1'));
    assert.ok(all.matches('8.8.8.8'));
  });

  it('an IPv6 network sees an IPv4 client as its mapped address', () => {
    const mapped = parseCidr('::ffff:10.0.0.0/104');
    assert.ok(mapped.matches('10.9.8.7'));
    assert.ok(!mapped.matches('11.0.0.1'));
    assert.ok(!parseCidr('::/96').matches('10.0.0.1'));
  });

  it('matches IPv6 networks, ignoring a zone on the address', () => {
    const c = parseCidr('2001:db8:1::/48');
    assert.ok(c.matches('2001:db8:1:ffff::1'));
    assert.ok(c.matches('2001:DB8:1::'));
    assert.ok(!c.matches('2001:db8:2::1'));
    assert.ok(parseCidr('fe80::/10').matches('fe80::1%eth0'));
    assert.ok(parseCidr('::1').matches('::1'));
    assert.ok(parseCidr('::1').matches(' ::1 '));
  });

  it('never matches an address that is not one', () => {
    const all = parseCidr('::/0');
    for (const bad of ['', 'localhost', 'undefined', '1.2.3', '::g']) assert.ok(!all.matches(bad), bad);
  });

  it('is a Cidr instance with readonly data', () => {
    assert.ok(parseCidr('1.2.3.4') instanceof Cidr);
  });
});

describe('isLoopback', () => {
  it('knows 127.0.0.0/8, ::1 and their mapped form', () => {
    for (const yes of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopback(yes), yes);
    for (const no of ['0.0.0.0', '::', '10.0.0.1', '::2', 'localhost']) assert.ok(!isLoopback(no), no);
  });
});
