#!/usr/bin/env bash
# Runs every test. Installs the Debian packages the tests use when they are missing (the tests
# start their own servers on free 127.0.0.1 ports and temp dirs; nothing else is touched).
set -euo pipefail
cd "$(dirname "$0")/.."

# Installs Debian packages quietly and without questions (CI runs as root, or with sudo).
install_packages() {
  echo "test: installing $*" >&2
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# memcached for the integration tests; SASL tests make their SASL database with saslpasswd2
# (Debian's sasl2-bin); TLS tests make their certificates with openssl. The interop tests
# (test/integration/neighbours.test.ts) run libmemcached's other users against the client: PHP
# Memcached, pylibmc (for Debian's /usr/bin/python3) and libmemcached-tools (memccp, memccat).
missing=()
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v saslpasswd2 >/dev/null 2>&1 || missing+=(sasl2-bin)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
php -r 'exit(class_exists("Memcached") ? 0 : 1);' >/dev/null 2>&1 || missing+=(php-cli php-memcached)
/usr/bin/python3 -c 'import pylibmc' >/dev/null 2>&1 || missing+=(python3-pylibmc)
command -v memccp >/dev/null 2>&1 || missing+=(libmemcached-tools)
if [ ${#missing[@]} -gt 0 ]; then
  install_packages "${missing[@]}"
fi

rm -rf dist && npx tsc -p tsconfig.json
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-reporter=spec "${files[@]}"
