// hashKey() against the hash values the real libmemcached 1.1.4 returned
// (test/fixtures/vectors/hashes.json) and, for HSIEH, against hashkit_hsieh() compiled with gcc
// (test/fixtures/hsieh-reference.json).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hashFunction, hashKey, md5Digest, md5Points } from '../../src/cluster/hash.js';
import { HASH_NAMES } from '../../src/cluster/names.js';
import type { HashName } from '../../src/cluster/names.js';
import { hexBytes, readJsonFixture } from '../support/fixtures.js';

interface HashVectors {
  libmemcached_version: string;
  algorithms: Array<{ name: string; value: number; libhashkit_has_algorithm: boolean }>;
  vectors: Array<{ key: string | null; key_hex: string; length: number; hashes: Record<string, number> }>;
}

interface HsiehReference {
  keys: Array<{ key_hex: string; hsieh: number }>;
  extra_keys: Array<{ key_hex: string; hsieh: number }>;
}

interface PlacementFile {
  scenarios: Array<{
    id: string;
    state: { point_string_examples?: Array<{ string: string; md5?: string; points: number[] }> };
  }>;
}

const vectors = readJsonFixture<HashVectors>('vectors', 'hashes.json');
const hsiehRef = readJsonFixture<HsiehReference>('hsieh-reference.json');

/** hashes.json's algorithm names (libmemcached's MEMCACHED_HASH_* without prefix) → ours. */
function hashNameOf(vectorName: string): HashName {
  const name = vectorName === 'DEFAULT' ? 'default' : vectorName.toLowerCase();
  const found = HASH_NAMES.find((n) => n === name);
  if (found === undefined) throw new Error(`hashes.json names an algorithm we do not know: ${vectorName}`);
  return found;
}

describe('hashKey against libmemcached 1.1.4 (vectors/hashes.json)', () => {
  it('the vector file covers every hash we implement, and only those', () => {
    assert.equal(vectors.libmemcached_version, '1.1.4');
    const names = vectors.algorithms.map((a) => hashNameOf(a.name)).sort();
    assert.deepEqual(names, [...HASH_NAMES].sort());
    assert.equal(vectors.vectors.length, 65);
    for (const v of vectors.vectors) assert.equal(hexBytes(v.key_hex).length, v.length, v.key_hex);
  });

  for (const algorithm of vectors.algorithms) {
    if (algorithm.name === 'HSIEH') continue; // Debian's build lacks it: see below
    const name = hashNameOf(algorithm.name);
    it(`${algorithm.name} (${name}): all ${vectors.vectors.length} keys`, () => {
      const fn = hashFunction(name);
      const wrong: string[] = [];
      for (const v of vectors.vectors) {
        const expected = v.hashes[algorithm.name];
        assert.equal(typeof expected, 'number', `${v.key_hex} has no ${algorithm.name} value`);
        const key = hexBytes(v.key_hex);
        const got = hashKey(name, key);
        if (got !== expected) wrong.push(`${v.key_hex}: got ${got}, libmemcached ${String(expected)}`);
        // hashFunction() must be the same function hashKey() uses
        assert.equal(fn(key), got);
      }
      assert.deepEqual(wrong, []);
    });
  }

  it('the vector file says HSIEH is absent from Debian’s libhashkit: 1 for every key', () => {
    const hsiehInfo = vectors.algorithms.find((a) => a.name === 'HSIEH');
    assert.ok(hsiehInfo);
    assert.equal(hsiehInfo.libhashkit_has_algorithm, false);
    for (const v of vectors.vectors) assert.equal(v.hashes['HSIEH'], 1, v.key_hex);
  });
});

describe('hsieh against hashkit_hsieh() compiled with gcc (hsieh-reference.json)', () => {
  it('covers exactly the keys of hashes.json, in order', () => {
    assert.deepEqual(
      hsiehRef.keys.map((k) => k.key_hex),
      vectors.vectors.map((v) => v.key_hex),
    );
  });

  it('matches for every key of hashes.json', () => {
    const wrong = hsiehRef.keys
      .filter((k) => hashKey('hsieh', hexBytes(k.key_hex)) !== k.hsieh)
      .map((k) => k.key_hex);
    assert.deepEqual(wrong, []);
  });

  it('matches for the extra keys (signed third byte of a 3-byte tail, empty key, NUL bytes)', () => {
    assert.ok(hsiehRef.extra_keys.length > 0);
    for (const k of hsiehRef.extra_keys) {
      assert.equal(hashKey('hsieh', hexBytes(k.key_hex)), k.hsieh, k.key_hex);
    }
  });
});

describe('md5Points (weighted ketama point strings)', () => {
  it('gives the digest and the four little-endian points libmemcached used', () => {
    const weighted = readJsonFixture<PlacementFile>('vectors', 'placement-weighted.json');
    let checked = 0;
    for (const scenario of weighted.scenarios) {
      for (const example of scenario.state.point_string_examples ?? []) {
        assert.ok(example.md5, `${scenario.id}: weighted example without md5`);
        assert.equal(md5Digest(example.string).toString('hex'), example.md5, example.string);
        assert.deepEqual(md5Points(example.string), example.points, example.string);
        checked++;
      }
    }
    assert.ok(checked > 0);
  });
});

describe('hashFunction', () => {
  it('rejects names that are not hashes', () => {
    assert.throws(() => hashFunction('sha1' as HashName), RangeError);
  });
});
