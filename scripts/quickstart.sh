#!/usr/bin/env bash
# Builds dfrp and runs the storage node's main job on the embedded default: the daemon dfrpd
# serving a store under ./dfrp-data (two 64 MiB drives), then uses it: three shards go in
# through the HTTP API, come back verified (whole and a byte range), and the volumes are
# listed. dfrpd then keeps serving (dashboard at its URL) until Ctrl-C; with --no-wait (or
# when standard input is not a terminal) it is stopped at the end. Run it again to add more
# shards to the same store.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WAIT=1
[[ ${1:-} == --no-wait || ! -t 0 ]] && WAIT=0
bash "$ROOT/scripts/setup.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" --target dfrpd dfrp-storage -j "$(nproc)"
S="$ROOT/build/apps/dfrp-storage/dfrp-storage"
D="$ROOT/build/apps/dfrpd/dfrpd"

say() { printf '\n$ %s\n' "$*"; }

# No dfrp.toml or .env here: both programs use the embedded default (./dfrp-data).
say dfrp-storage init-storage
"$S" init-storage
STATE=dfrp-data/state
# 127.0.0.1:7480 unless API_ADDR says otherwise; a free port if 7480 is taken.
if [[ -z ${API_ADDR:-} ]] && (exec 3<>/dev/tcp/127.0.0.1/7480) 2>/dev/null; then
  export API_ADDR=127.0.0.1:0
fi
rm -f "$STATE/dfrpd.json"
say "dfrpd &"
"$D" &
DPID=$!
stop() { kill -TERM "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null; }
trap 'stop; exit 0' INT TERM
trap stop EXIT
for _ in $(seq 100); do [[ -s $STATE/dfrpd.json ]] && break; sleep 0.1; done
URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$STATE/dfrpd.json")

mkdir -p dfrp-data/samples
head -c 3000000 /dev/urandom > dfrp-data/samples/random.bin
printf 'hello from dfrp\n' > dfrp-data/samples/hello.txt
seq 1 20000 > dfrp-data/samples/numbers.txt
# Each sample carries a vector (VECTOR_DIM = 16 in the embedded default), for search-shards.
zeros=$(printf ',0%.0s' $(seq 13))
declare -A VEC=([random.bin]="1,0,0$zeros" [hello.txt]="0,1,0$zeros" [numbers.txt]="0.9,0.1,0.2$zeros")
for f in random.bin hello.txt numbers.txt; do
  say "curl -T dfrp-data/samples/$f '$URL/v1/shards?name=$f&meta=source%3Dquickstart&vector=${VEC[$f]}'"
  curl -sS --fail-with-body -T "dfrp-data/samples/$f" \
    "$URL/v1/shards?name=$f&meta=source%3Dquickstart&vector=${VEC[$f]}" | tee "dfrp-data/samples/$f.json"
done
id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["shard_id"])' "dfrp-data/samples/$1.json"; }
say "curl $URL/v1/shards/$(id hello.txt)"
curl -sS --fail-with-body "$URL/v1/shards/$(id hello.txt)"
curl -sS --fail-with-body "$URL/v1/shards/$(id random.bin)" -o dfrp-data/samples/random.back
cmp dfrp-data/samples/random.bin dfrp-data/samples/random.back && echo "GET: identical bytes, verified"
say "curl -H 'Range: bytes=0-9' $URL/v1/shards/$(id numbers.txt)"
curl -sS --fail-with-body -H 'Range: bytes=0-9' "$URL/v1/shards/$(id numbers.txt)"
say "dfrp-storage stat-shard $(id hello.txt)"
"$S" stat-shard "$(id hello.txt)"
say "dfrp-storage search-shards --near 1,0,0$zeros --k 2"
"$S" search-shards --near "1,0,0$zeros" --k 2
say dfrp-storage list-volumes
"$S" list-volumes
printf '\ndfrpd is serving this store: API %s, dashboard %s/, metrics %s/metrics\n' "$URL" "$URL" "$URL"
if [[ $WAIT == 1 ]]; then
  echo "Ctrl-C stops it."
  wait "$DPID"
fi
