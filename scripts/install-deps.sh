#!/usr/bin/env bash
# Installs every build and test dependency on a fresh Debian 12 machine (idempotent).
# Debian packages only; the panel's npm packages are installed by `npm ci` in web/.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libboost1.81-dev libboost-json1.81-dev libssl-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libcli11-dev libhowardhinnant-date-dev tzdata
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 redis-server clang libclang-rt-14-dev chromium openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all Debian packages present"
fi

# Node.js + npm build the panel (web/). The machine image ships them; Debian's are the fallback.
if ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: installing nodejs npm"
  ${SUDO:-} apt-get install -y -qq --no-install-recommends nodejs npm
fi
