#!/usr/bin/env bash
# Runs every test. Installs Debian's memcached when it is missing (the tests start their own
# servers on free 127.0.0.1 ports; nothing else is touched).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v memcached >/dev/null 2>&1; then
  echo "test: memcached is missing; installing Debian's package" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached >/dev/null
  fi
fi

rm -rf dist && npx tsc -p tsconfig.json
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-reporter=spec "${files[@]}"
