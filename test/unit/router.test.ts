// Router against the key placements and continuums the real libmemcached 1.1.4 produced
// (test/fixtures/vectors/placement-*.json, continuum-*.json). Each scenario's steps are replayed
// by test/support/libmemcached-steps.ts into the Router's inputs; then every key's hash and
// server index, the points per server and the continuum head/tail are compared.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hashKey, md5Points } from '../../src/cluster/hash.js';
import { Router, continuumPointString } from '../../src/cluster/router.js';
import { hexBytes, readJsonFixture } from '../support/fixtures.js';
import { replaySteps } from '../support/libmemcached-steps.js';
import type { LibmemcachedState } from '../support/libmemcached-steps.js';

interface KeyVector {
  key: string | null;
  key_hex: string;
  hash: number;
  server_index: number;
  server: string;
  wrapped?: boolean;
  note?: string;
}

interface ContinuumPoint {
  value: number;
  server_index: number;
}

interface ScenarioState {
  distribution: string;
  key_hash: string;
  ketama_hash_behavior: string;
  weighted_ketama: boolean;
  namespace: string | null;
  hash_with_namespace: boolean;
  sort_hosts: boolean;
  servers: Array<{ index: number; hostname: string; port: number; weight: number; type: string }>;
  continuum_points?: number;
  points_per_server?: number[];
  continuum_head?: ContinuumPoint[];
  continuum_tail?: ContinuumPoint[];
  continuum_point_hash?: string;
  point_string_examples?: Array<{ server_index: number; string: string; points: number[] }>;
}

interface Scenario {
  id: string;
  description: string;
  steps: string[];
  state: ScenarioState;
  keys: KeyVector[];
}

interface PlacementFile {
  libmemcached_version: string;
  family: string;
  scenarios: Scenario[];
}

interface ContinuumFile {
  scenario: string;
  steps: string[];
  servers: Array<{ index: number; hostname: string; port: number; weight: number; type: string }>;
  weighted_ketama: boolean;
  points: number;
  continuum: Array<[number, number]>;
}

const PLACEMENT_FILES = ['placement-modula.json', 'placement-consistent.json', 'placement-weighted.json'];
const CONTINUUM_FILES = [
  'continuum-consistent-2.json',
  'continuum-consistent-hostnames-3.json',
  'continuum-php-libketama-compat-3-weights-1-2-3.json',
  'continuum-spy-3.json',
];

const placements = new Map<string, PlacementFile>(
  PLACEMENT_FILES.map((f) => [f, readJsonFixture<PlacementFile>('vectors', f)]),
);
const scenarios = new Map<string, Scenario>();
for (const file of placements.values()) for (const s of file.scenarios) scenarios.set(s.id, s);

function scenario(id: string): Scenario {
  const s = scenarios.get(id);
  if (s === undefined) throw new Error(`no scenario ${id} in the fixtures`);
  return s;
}

function routerFor(s: Scenario, live?: boolean[]): Router {
  const { servers, options } = replaySteps(s.steps);
  return new Router(servers, options, live);
}

/** What libmemcached reported about the state, in the fixture's words, from our replay. */
function describeReplay(state: LibmemcachedState): Record<string, unknown> {
  const upper = (h: string): string => h.toUpperCase();
  return {
    distribution: `MEMCACHED_DISTRIBUTION_${state.distribution}`,
    key_hash: upper(state.keyHash),
    ketama_hash_behavior: upper(state.distributionHash),
    weighted_ketama: state.weighted,
    namespace: state.namespace,
    hash_with_namespace: state.hashWithNamespace,
    sort_hosts: state.sortHosts,
    servers: state.servers.map((s, index) => ({ index, hostname: s.host, port: s.port, weight: s.weight, type: s.type })),
  };
}

function describeFixture(state: ScenarioState): Record<string, unknown> {
  return {
    distribution: state.distribution,
    key_hash: state.key_hash,
    ketama_hash_behavior: state.ketama_hash_behavior,
    weighted_ketama: state.weighted_ketama,
    namespace: state.namespace,
    hash_with_namespace: state.hash_with_namespace,
    sort_hosts: state.sort_hosts,
    servers: state.servers,
  };
}

function pointsPerServer(router: Router): number[] {
  const counts = router.servers.map(() => 0);
  for (const [, index] of router.continuum()) counts[index]! += 1;
  return counts;
}

const asPoints = (c: Array<[number, number]>): ContinuumPoint[] =>
  c.map(([value, server_index]) => ({ value, server_index }));

for (const [fileName, file] of placements) {
  describe(`${fileName} (libmemcached ${file.libmemcached_version})`, () => {
    for (const s of file.scenarios) {
      it(`${s.id}: ${s.steps.join(' → ')}`, () => {
        const replay = replaySteps(s.steps);
        // The interpreter must have reached the state libmemcached reported.
        assert.deepEqual(describeReplay(replay.state), describeFixture(s.state));
        const router = new Router(replay.servers, replay.options);

        const wrong: string[] = [];
        for (const k of s.keys) {
          const key = hexBytes(k.key_hex);
          const hash = router.hashOf(key);
          const index = router.indexFor(key);
          if (hash !== k.hash) wrong.push(`${k.key_hex}: hash ${hash}, libmemcached ${k.hash}`);
          if (index !== k.server_index) wrong.push(`${k.key_hex}: server ${index}, libmemcached ${k.server_index}`);
          if (router.servers.length > 1 && router.indexForHash(k.hash) !== k.server_index) {
            wrong.push(`${k.key_hex}: indexForHash(${k.hash}) disagrees`);
          }
          const server = router.servers[index];
          const label = server === undefined ? 'none' : `${server.host}:${server.port}`;
          if (label !== k.server) wrong.push(`${k.key_hex}: server ${label}, libmemcached ${k.server}`);
        }
        assert.deepEqual(wrong, []);

        const continuum = router.continuum();
        if (s.state.continuum_points === undefined) {
          assert.equal(replay.options.distribution, 'modula');
          assert.deepEqual(continuum, []);
          return;
        }
        assert.equal(continuum.length, s.state.continuum_points);
        assert.deepEqual(pointsPerServer(router), s.state.points_per_server);
        assert.deepEqual(asPoints(continuum.slice(0, s.state.continuum_head?.length ?? 0)), s.state.continuum_head);
        assert.deepEqual(asPoints(continuum.slice(continuum.length - (s.state.continuum_tail?.length ?? 0))), s.state.continuum_tail);

        // The hash the points were made with, and the point strings.
        const spy = replay.options.distribution === 'spy';
        if (replay.options.weighted) {
          assert.match(s.state.continuum_point_hash ?? '', /^MD5 \(weighted/);
        } else {
          assert.equal(s.state.continuum_point_hash, replay.state.pointHash.toUpperCase());
        }
        for (const example of s.state.point_string_examples ?? []) {
          const i = Number(/-(\d+)$/.exec(example.string)?.[1]);
          const server = router.servers[example.server_index];
          assert.ok(server);
          assert.equal(continuumPointString(server, i, spy), example.string);
          const points = replay.options.weighted
            ? md5Points(example.string)
            : [hashKey(replay.state.pointHash, new TextEncoder().encode(example.string))];
          assert.deepEqual(points, example.points, example.string);
        }

        // Keys marked as wrapping lie above the last point and go to the first point's owner.
        const last = continuum[continuum.length - 1];
        const first = continuum[0];
        assert.ok(last && first);
        for (const k of s.keys) {
          if (k.wrapped === true && router.servers.length > 1) {
            assert.ok(k.hash > last[0], `${k.key_hex} should be above the last point`);
            assert.equal(router.indexForHash(k.hash), first[1]);
          }
        }
      });
    }
  });
}

describe('continuum-*.json: the whole continuum, point for point', () => {
  for (const fileName of CONTINUUM_FILES) {
    it(fileName, () => {
      const file = readJsonFixture<ContinuumFile>('vectors', fileName);
      const replay = replaySteps(file.steps);
      assert.deepEqual(
        describeReplay(replay.state).servers,
        file.servers,
      );
      assert.equal(replay.state.weighted, file.weighted_ketama);
      const router = new Router(replay.servers, replay.options);
      const continuum = router.continuum();
      assert.equal(continuum.length, file.points);
      assert.deepEqual(continuum, file.continuum);
      // the continuum of the placement scenario of the same name agrees with this one
      assert.equal(scenario(file.scenario).state.continuum_points, file.points);
    });
  }

  it('lookup is a lower bound: a hash equal to a point goes to the first point of that value', () => {
    // hash.cc dispatch_host; no key of the placement files hits a point exactly, so probe the
    // reference continuums with their own values, and with the values just above each point.
    for (const fileName of CONTINUUM_FILES) {
      const file = readJsonFixture<ContinuumFile>('vectors', fileName);
      const { servers, options } = replaySteps(file.steps);
      const router = new Router(servers, options);
      const points = file.continuum;
      const wrong: string[] = [];
      points.forEach(([value], i) => {
        const first = points.findIndex(([v]) => v === value);
        if (router.indexForHash(value) !== points[first]![1]) wrong.push(`${fileName}: hash ${value}`);
        const next = points.find(([v]) => v > value) ?? points[0]!;
        if (value < 0xffffffff && router.indexForHash(value + 1) !== next[1]) wrong.push(`${fileName}: hash ${value + 1} (point ${i})`);
      });
      assert.equal(router.indexForHash(0), points[0]![1]);
      assert.deepEqual(wrong, []);
    }
  });
});

/** Server index per key of a scenario, as libmemcached placed them. */
function expectedIndexes(s: Scenario): number[] {
  return s.keys.map((k) => k.server_index);
}

function placeAll(router: Router, s: Scenario): number[] {
  return s.keys.map((k) => router.indexFor(hexBytes(k.key_hex)));
}

describe('ejection (live servers)', () => {
  it('consistent: ejecting the last server gives exactly libmemcached’s placement without it', () => {
    // consistent-3 minus 127.0.0.1:11213 is consistent-2 (same servers, same indexes)
    const three = routerFor(scenario('consistent-3'), [true, true, false]);
    const two = scenario('consistent-2');
    assert.deepEqual(placeAll(three, two), expectedIndexes(two));
    assert.deepEqual(three.continuum(), readJsonFixture<ContinuumFile>('vectors', 'continuum-consistent-2.json').continuum);
  });

  for (const id of ['consistent-3', 'consistent-5', 'spy-3', 'consistent-hostnames-3']) {
    it(`${id}: only the keys of the ejected server move; reviving restores libmemcached’s placement`, () => {
      const s = scenario(id);
      const all = routerFor(s);
      const dead = 1;
      const ejected = withLive(all, all.servers.map((_, i) => i !== dead));
      const before = expectedIndexes(s);
      const after = placeAll(ejected, s);
      let moved = 0;
      const moveTargets = new Set<number>();
      s.keys.forEach((k, i) => {
        if (before[i] === dead) {
          assert.notEqual(after[i], dead, k.key_hex);
          assert.ok(after[i]! >= 0, k.key_hex);
          moved++;
          moveTargets.add(after[i]!);
        } else {
          assert.equal(after[i], before[i], `${k.key_hex} moved although its server is live`);
        }
      });
      assert.ok(moved > 0, 'no key of the ejected server in the sample');
      assert.ok(moveTargets.size > 1 || all.servers.length === 2, 'the dead server’s keys should spread');
      assert.equal(pointsPerServer(ejected)[dead], 0);
      assert.deepEqual(placeAll(withLive(ejected, all.servers.map(() => true)), s), before);
    });
  }

  it('weighted: counts are recomputed over the live servers and weights (= libmemcached without it)', () => {
    const cases: Array<[string, string]> = [
      ['php-libketama-compat-3-weights-1-2-3', 'php-libketama-compat-2-weights-1-2'],
      ['php-libketama-compat-3', 'php-libketama-compat-2'],
    ];
    for (const [bigger, smaller] of cases) {
      const router = routerFor(scenario(bigger), [true, true, false]);
      const small = scenario(smaller);
      assert.deepEqual(pointsPerServer(router), [...(small.state.points_per_server ?? []), 0], bigger);
      assert.deepEqual(placeAll(router, small), expectedIndexes(small), bigger);
      assert.deepEqual(placeAll(withLive(router, [true, true, true]), scenario(bigger)), expectedIndexes(scenario(bigger)));
    }
    const full = routerFor(scenario('php-libketama-compat-3-weights-1-2-3'));
    assert.deepEqual(
      withLive(full, [true, true, false]).continuum(),
      routerFor(scenario('php-libketama-compat-2-weights-1-2')).continuum(),
    );
  });

  it('modula: only the dead server’s keys move, spread over the live ones; reviving restores', () => {
    const s = scenario('modula-3');
    const router = routerFor(s, [true, false, true]);
    const before = expectedIndexes(s);
    const after = placeAll(router, s);
    const targets = new Set<number>();
    s.keys.forEach((k, i) => {
      if (before[i] === 1) {
        assert.ok(after[i] === 0 || after[i] === 2, k.key_hex);
        targets.add(after[i]!);
      } else {
        assert.equal(after[i], before[i], k.key_hex);
      }
    });
    assert.deepEqual([...targets].sort(), [0, 2]);
    assert.deepEqual(placeAll(withLive(router, [true, true, true]), s), before);
  });

  it('no live server: -1 for every distribution, also with a single server', () => {
    for (const id of ['modula-3', 'consistent-3', 'spy-3', 'php-libketama-compat-3', 'modula-1', 'consistent-1']) {
      const s = scenario(id);
      const all = routerFor(s);
      const none = withLive(all, all.servers.map(() => false));
      for (const k of s.keys.slice(0, 20)) {
        assert.equal(none.indexFor(hexBytes(k.key_hex)), -1, id);
        assert.equal(none.indexForHash(k.hash), -1, id);
      }
      assert.deepEqual(none.continuum(), []);
    }
  });

  it('a live set must match the server list', () => {
    const s = scenario('consistent-3');
    assert.throws(() => routerFor(s, [true, true]), RangeError);
  });
});

describe('namespace rule (hash.cc _generate_hash_wrapper)', () => {
  it('without hash-with-namespace the namespace does not take part in placement', () => {
    for (const [plain, namespaced] of [
      ['modula-3', 'modula-3-namespace'],
      ['consistent-3', 'consistent-3-namespace'],
      ['php-libketama-compat-3', 'php-libketama-compat-3-namespace'],
    ] as const) {
      assert.deepEqual(expectedIndexes(scenario(namespaced)), expectedIndexes(scenario(plain)));
      assert.deepEqual(placeAll(routerFor(scenario(namespaced)), scenario(plain)), expectedIndexes(scenario(plain)));
    }
  });

  it('with hash-with-namespace, bytes after a NUL in the key are hashed as 0 (strncpy)', () => {
    const router = routerFor(scenario('consistent-3-namespace-hashed'));
    const ns = new TextEncoder().encode('app:');
    const key = Uint8Array.of(0x61, 0x00, 0x62, 0x63);
    const asCopied = Uint8Array.of(...ns, 0x61, 0x00, 0x00, 0x00);
    assert.equal(router.hashOf(key), hashKey('default', asCopied));
    assert.notEqual(router.hashOf(key), hashKey('default', Uint8Array.of(...ns, ...key)));
    // and the scratch buffer does not leak bytes between keys of different lengths
    const long = routerFor(scenario('consistent-3-namespace-hashed'));
    const k1 = new TextEncoder().encode('0123456789');
    const k2 = new TextEncoder().encode('ab');
    long.hashOf(k1);
    assert.equal(long.hashOf(k2), hashKey('default', Uint8Array.of(...ns, ...k2)));
  });
});

/** The same servers and options with another live set (ejected servers = false), as the Client rebuilds it. */
function withLive(router: Router, live: readonly boolean[]): Router {
  return new Router(router.servers, router.options, live);
}
