#!/usr/bin/env bash
# npm run bench: builds, runs the project matrix (client vs raw pipeline vs memjs vs memcached;
# FastAGI daemon vs the bare responder), the embedded store in process, and writes
# BENCHMARKS.md + bench/results/. Knobs: ROUNDS (default 2), DURATION seconds per run (4).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v memcached >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null
fi
npx tsc -p tsconfig.json
mkdir -p scratch bench/results
rm -f scratch/project.jsonl
node bench/run-matrix.mjs --suite project --rounds "${ROUNDS:-2}" --duration "${DURATION:-4}" --warmup 1 --out scratch/project.jsonl
node bench/store-bench.mjs > scratch/store.jsonl
cp scratch/project.jsonl bench/results/project.jsonl
cp scratch/store.jsonl bench/results/store.jsonl
node bench/report.mjs --matrix bench/results/project.jsonl --store bench/results/store.jsonl --out BENCHMARKS.md
