#!/usr/bin/env bash
# The bank test (tests/node/bank_test.py) for longer than CI runs it: four authorities, one of
# them Byzantine, twenty accounts, concurrent clients, equivocations, kill -9 of authorities,
# then conservation, one certificate per (sender, seq), every confirmed order everywhere and
# the audit. Builds the release tree first if needed.
#
#   scripts/bank_soak.sh                 ten minutes
#   BANK_SECONDS=3600 scripts/bank_soak.sh
#   BANK_SEED=12345 scripts/bank_soak.sh  the same random choices again
set -euo pipefail
cd "$(dirname "$0")/.."
export BANK_SECONDS=${BANK_SECONDS:-600}
[ -d build ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target dfrpd dfrp-storage dfrp-ledger dfrp-wallet dfrp-byzantine-signer
B=$(pwd)/build
exec python3 tests/node/bank_test.py "$B/apps/dfrpd/dfrpd" "$B/apps/dfrp-storage/dfrp-storage" \
  "$B/apps/dfrp-ledger/dfrp-ledger" "$B/apps/dfrp-wallet/dfrp-wallet" \
  "$B/tests/dfrp-byzantine-signer"
