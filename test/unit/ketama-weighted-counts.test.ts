// weightedPointCount() against the weighted-ketama point counts libmemcached 1.1.4's own
// expression gives (src/libmemcached/hosts.cc update_continuum, computed in float32) when
// compiled with gcc (test/fixtures/ketama-weighted-counts.json; see its note). The fixture holds
// every case of its grid where the same expression in double precision gives a different count,
// so replacing the Math.fround steps with plain double arithmetic makes this test fail.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { POINTS_PER_SERVER_KETAMA, weightedPointCount } from '../../src/cluster/router.js';
import { readJsonFixture } from '../support/fixtures.js';

interface CountCase {
  weight: number;
  total: number;
  live: number;
  count: number;
}

interface CountFixture {
  note: string[];
  grid_triples: number;
  float_double_differences: number;
  cases: CountCase[];
}

const fixture = readJsonFixture<CountFixture>('ketama-weighted-counts.json');

/** The hosts.cc expression "simplified" to double precision: what must NOT be used. */
function doublePointCount(weight: number, totalWeight: number, liveServers: number): number {
  const pct = weight / totalWeight;
  return Math.floor((pct * POINTS_PER_SERVER_KETAMA) / 4 * liveServers + 0.0000000001) * 4;
}

const label = (c: CountCase): string => `weight ${c.weight} of ${c.total} on ${c.live} servers`;

describe('weightedPointCount vs libmemcached float32 expression (gcc)', () => {
  it('fixture is well formed', () => {
    assert.ok(fixture.cases.length > 1000, `only ${fixture.cases.length} cases`);
    for (const c of fixture.cases) {
      assert.ok(Number.isInteger(c.weight) && c.weight >= 1, label(c));
      assert.ok(Number.isInteger(c.live) && c.live >= 2, label(c));
      assert.ok(Number.isInteger(c.total) && c.total >= c.weight + c.live - 1, label(c));
      assert.ok(Number.isInteger(c.count) && c.count % 4 === 0, label(c));
    }
  });

  it('matches the gcc-computed count for every case', () => {
    const wrong: string[] = [];
    for (const c of fixture.cases) {
      const got = weightedPointCount(c.weight, c.total, c.live);
      if (got !== c.count) wrong.push(`${label(c)}: got ${got}, want ${c.count}`);
    }
    assert.deepEqual(wrong, []);
  });

  it('contains the cases where double precision would give another count', () => {
    const differing = fixture.cases.filter((c) => doublePointCount(c.weight, c.total, c.live) !== c.count);
    assert.ok(differing.length > 0, 'no case tells float32 from double');
    assert.equal(differing.length, fixture.float_double_differences);
    // The known example: 29/60 on 3 servers is 228 points in float32, 232 in double.
    const known = fixture.cases.find((c) => c.weight === 29 && c.total === 60 && c.live === 3);
    assert.ok(known, 'fixture lacks weight 29 of 60 on 3 servers');
    assert.equal(known.count, 228);
    assert.equal(doublePointCount(29, 60, 3), 232);
    assert.equal(weightedPointCount(29, 60, 3), 228);
  });

  it('includes the ALGORITHMS.md section 6b examples', () => {
    const examples: Array<[number[], number[]]> = [
      [[1, 2, 3], [80, 160, 240]],
      [[1, 2], [104, 212]],
      [[1, 1, 2, 3, 5], [64, 64, 132, 200, 332]],
      [[5, 1, 2, 1], [352, 68, 140, 68]],
    ];
    for (const [weights, counts] of examples) {
      const total = weights.reduce((a, b) => a + b, 0);
      weights.forEach((w, i) => {
        const c = fixture.cases.find((x) => x.weight === w && x.total === total && x.live === weights.length);
        assert.ok(c, `fixture lacks weight ${w} of ${total} on ${weights.length} servers`);
        assert.equal(c.count, counts[i]);
      });
    }
  });
});
