#!/usr/bin/env bash
# Installs everything dfrp needs to build and test on Debian 12 (bookworm). A no-op when all is
# there. Run as root, or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang-16 libclang-rt-16-dev clang-format clang-tidy
  libssl-dev libsqlite3-dev sqlite3 libsodium-dev
  libfmt-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  xxd python3
  libfuse3-dev fuse3
  liburing-dev
  libhnswlib-dev
  libboost1.81-dev
  chromium fonts-dejavu-core
  wrk nginx-light curl
  iproute2 libcap2-bin
  openmpi-bin libopenmpi-dev bubblewrap
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    missing+=("$p")
  fi
done

# Node.js may come from Debian or from NodeSource (whose nodejs bundles npm and conflicts with
# Debian's npm package): ask for the commands, not the packages.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm-pinned sources (blst), when the project pins any.
if [ -f package-lock.json ] && [ ! -f node_modules/.package-lock.json -o package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci --ignore-scripts" >&2
  npm ci --ignore-scripts --no-audit --no-fund >/dev/null
fi

# Compute jobs never run as root: when the node runs as root it drops each job to this
# unprivileged system user (docs/COMPUTE.md). Created once; a no-op when it exists.
if [ "$(id -u)" = 0 ] && ! id dfrp-job >/dev/null 2>&1; then
  echo "setup: creating the unprivileged user dfrp-job for compute jobs" >&2
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin dfrp-job
fi
