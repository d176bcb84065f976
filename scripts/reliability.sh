#!/usr/bin/env bash
# npm run reliability: runs the fault, hostile-input and security tests (the same ones .ci/run
# runs) with RELIABILITY_OUT set, so each case also writes what was done and measured, then
# builds RELIABILITY.md from those rows. Exit 1 if any test failed (the file is still written).
set -uo pipefail
cd "$(dirname "$0")/.."
rm -rf dist && npx tsc -p tsconfig.json || exit 1
mkdir -p scratch
out="$PWD/scratch/reliability.jsonl"
rm -f "$out"
files=(dist/test/integration/reliability.test.js dist/test/integration/agi-hostile.test.js dist/test/integration/hostile-memcached.test.js
       dist/test/integration/security.test.js dist/test/integration/acl.test.js dist/test/unit/fuzz.test.js dist/test/integration/faults.test.js dist/test/integration/dialplan.test.js
       dist/test/integration/warm-restart.test.js dist/test/integration/lease-processes.test.js dist/test/integration/lease-healing.test.js
       dist/test/integration/ami-client.test.js)
RELIABILITY_OUT="$out" node --test --test-reporter=spec "${files[@]}" > scratch/reliability.log 2>&1
status=$?
grep -E "^ℹ (tests|pass|fail)" scratch/reliability.log
node scripts/reliability-report.mjs "$out" "$status" > RELIABILITY.md
echo "wrote RELIABILITY.md ($(grep -c . "$out") rows)"
exit $status
