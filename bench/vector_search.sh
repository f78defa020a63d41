#!/usr/bin/env bash
# The vector module's speed (issue 14): on N random and N clustered 16-dimensional vectors,
# recall@10 against exact brute force and queries per second on one core at several ef, with
# faiss's HNSW index (IndexHNSWFlat, the same M and ef_construction) built and asked in the
# same run; insert rates and bytes per vector. Then the node index: decisions per second over
# OFFERS offers with a fee filter that PASS of them pass.
#   N=1000000 OFFERS=10000 PASS=0.1 bench/vector_search.sh
# Installs Debian's libfaiss-dev if it is missing (the comparison needs it; the project does
# not) and rebuilds dfrp-vector-bench so that it links faiss.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
if ! dpkg-query -W -f='${Status}' libfaiss-dev 2>/dev/null | grep -q 'ok installed'; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  $SUDO apt-get install -y -qq --no-install-recommends libfaiss-dev >/dev/null
  cmake "$BUILD" >/dev/null
fi
cmake --build "$BUILD" --target dfrp-vector-bench >/dev/null
# faiss's OpenMP threads would spin after its build and steal the core the next queries run on.
export OMP_WAIT_POLICY=PASSIVE
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM"
"$BUILD/bench/dfrp-vector-bench" --n "${N:-1000000}" --queries "${QUERIES:-1000}" \
  --offers "${OFFERS:-10000}" --pass "${PASS:-0.1}" --threads "${THREADS:-2}" "$@"
