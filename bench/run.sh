#!/usr/bin/env bash
# npm run bench: builds, runs the project matrix (client vs raw pipeline vs memjs vs memcached;
# FastAGI daemon vs the bare responder), the embedded store in process, and writes
# BENCHMARKS.md + bench/results/; then the client over 1-3 servers, a 60 s daemon soak at 128
# sessions, session latency while the embedded store (64 MiB, full) is snapshotted (~3 min), and
# call limits (mcdlimit/mcdrelease/MCDLIMITCOUNT) against MCDCOUNTER through the daemon (~3 min),
# FastAGI sessions/s with [http] off vs on and /metrics scraped every second (~1 min), and the
# HTTP door's GET /MCD/key beside FastAGI MCD sessions at 1, 16 and 128 connections (~3 min).
# The client per protocol beside the raw pipeline of its framing (--suite protocols): text,
# binary and meta in one interleaved suite (~12 min at the defaults; PROTOCOLS picks fewer, and
# the report then takes binary from the project matrix).
# Knobs: ROUNDS (default 2), DURATION seconds per run (4), SOAK seconds (60), PROTOCOLS (text,binary,meta).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v memcached >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null
fi
npx tsc -p tsconfig.json
mkdir -p scratch bench/results
rm -f scratch/project.jsonl
node bench/run-matrix.mjs --suite project --rounds "${ROUNDS:-2}" --duration "${DURATION:-4}" --warmup 1 --out scratch/project.jsonl
rm -f scratch/protocols.jsonl
node bench/run-matrix.mjs --suite protocols --protocols "${PROTOCOLS:-text,binary,meta}" --rounds "${ROUNDS:-2}" --duration "${DURATION:-4}" --warmup 1 --out scratch/protocols.jsonl
node bench/store-bench.mjs > scratch/store.jsonl
node bench/cluster-bench.mjs --duration "${DURATION:-4}" > scratch/cluster.jsonl
node bench/soak.mjs --duration "${SOAK:-60}" --concurrency 128 > scratch/soak.jsonl
node bench/snapshot-bench.mjs > scratch/snapshot.jsonl
node bench/limit-bench.mjs --rounds 3 > scratch/limit.jsonl
node bench/metrics-bench.mjs --rounds 3 > scratch/metrics.jsonl
node bench/door-bench.mjs --rounds 3 --phase-seconds 3 > scratch/door.jsonl
for f in project protocols store cluster soak snapshot limit metrics door; do cp "scratch/$f.jsonl" "bench/results/$f.jsonl"; done
node bench/report.mjs --matrix bench/results/project.jsonl --protocols bench/results/protocols.jsonl --store bench/results/store.jsonl \
  --cluster bench/results/cluster.jsonl --soak bench/results/soak.jsonl --snapshot bench/results/snapshot.jsonl \
  --limit bench/results/limit.jsonl --metrics bench/results/metrics.jsonl --door bench/results/door.jsonl --out BENCHMARKS.md
