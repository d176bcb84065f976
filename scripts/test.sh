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

# SASL tests make their SASL database with saslpasswd2 (Debian's sasl2-bin); TLS tests make
# their certificates with openssl.
missing=()
command -v saslpasswd2 >/dev/null 2>&1 || missing+=(sasl2-bin)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing ${missing[*]}" >&2
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

rm -rf dist && npx tsc -p tsconfig.json
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-reporter=spec "${files[@]}"
