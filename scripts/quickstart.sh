#!/usr/bin/env bash
# Builds dfrp and runs the storage node's main job on the embedded default: a store under
# ./dfrp-data with two small drives; a few shards are written, read back, verified and
# listed. Run it again to add more shards to the same store.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/setup.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" --target dfrp-storage -j "$(nproc)"
S="$ROOT/build/apps/dfrp-storage/dfrp-storage"

run() { printf '\n$ dfrp-storage %s\n' "$*"; "$S" "$@"; }

# No dfrp.toml or .env here: dfrp-storage uses its embedded default (./dfrp-data).
run init-storage
mkdir -p dfrp-data/samples
head -c 3000000 /dev/urandom > dfrp-data/samples/random.bin
printf 'hello from dfrp\n' > dfrp-data/samples/hello.txt
seq 1 20000 > dfrp-data/samples/numbers.txt
printf '\n$ dfrp-storage --json write-shard --meta source=quickstart dfrp-data/samples/*\n'
ids=$("$S" --json write-shard --meta source=quickstart dfrp-data/samples/random.bin \
  dfrp-data/samples/hello.txt dfrp-data/samples/numbers.txt)
echo "$ids"
first=$(printf '%s' "$ids" | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["shard_id"])')
run read-shard "$first"
random=$(printf '%s' "$ids" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["shard_id"])')
"$S" read-shard "$random" -o dfrp-data/samples/random.back
cmp dfrp-data/samples/random.bin dfrp-data/samples/random.back && echo "read-shard -o: identical bytes"
run stat-shard "$first"
run verify-shard --all
run list-volumes
