#!/usr/bin/env bash
# Builds dfrp and runs the storage node's main job on the embedded default: the daemon dfrpd
# serving a store under ./dfrp-data (two 64 MiB drives), then uses it: three shards go in
# through the HTTP API, come back verified (whole and a byte range), and the volumes are
# listed. Then a small paid mesh on loopback under ./dfrp-data/mesh (made afresh each run):
# a committee of one authority, three storage nodes with wallets that find each other, and a
# client wallet with genesis funds that stores a file as two paid copies through the market
# (dfrp-mesh put), reads it back verified, and watches proof periods pay the providers and
# the owner's margin, while the two holders' storage price rises with their load; and it
# sends a signed MPI job, paid through a compute escrow, to the nearest compute node, which
# runs it under mpirun and signs its result, checked by the client against that claim and by
# another node's run; the escrow then settles and pays the provider its quote. Every
# dfrpd then keeps serving (dashboards at their URLs) until Ctrl-C; with --no-wait (or when
# standard input is not a terminal) they are stopped at the end. --no-mesh skips the mesh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WAIT=1
MESH=1
[[ ! -t 0 ]] && WAIT=0
for a in "$@"; do
  case $a in
    --no-wait) WAIT=0 ;;
    --no-mesh) MESH=0 ;;
    *) echo "quickstart.sh: unknown option $a (known: --no-wait, --no-mesh)" >&2; exit 2 ;;
  esac
done
bash "$ROOT/scripts/setup.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" --target dfrpd dfrp-storage dfrp-wallet dfrp-ledger dfrp-mesh \
  dfrp-compute dfrp-jobrun dfrp-app-matmul dfrp-app-montecarlo dfrp-app-knn -j "$(nproc)"
S="$ROOT/build/apps/dfrp-storage/dfrp-storage"
D="$ROOT/build/apps/dfrpd/dfrpd"
W="$ROOT/build/apps/dfrp-wallet/dfrp-wallet"
L="$ROOT/build/apps/dfrp-ledger/dfrp-ledger"
MC="$ROOT/build/apps/dfrp-mesh/dfrp-mesh"
CC="$ROOT/build/apps/dfrp-compute/dfrp-compute"

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
PIDS=("$DPID")
stop() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
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
[[ $MESH == 1 ]] && source "$ROOT/scripts/quickstart_mesh.sh"
if [[ $WAIT == 1 ]]; then
  echo "Ctrl-C stops them."
  wait "$DPID"
fi
