#!/usr/bin/env bash
# COUNT files of SIZE_KB KiB each, one command per file, one after the other:
#   baseline  curl -X PUT --data-binary @FILE  to a local dfrpd on loopback (no wallet)
#   mesh      dfrp-mesh put FILE --replicas 1 --periods 1  through one remote provider on
#             loopback: offers, the upload, the receipt's Merkle root checked against the
#             client's own, the provider's acceptance, an escrow certified by a committee of
#             one authority, the manifest synced
# Alternates, RUNS times; medians of files per second. Target (issue 15): mesh/baseline >= 0.8.
# The wallets use the test KDF profile: a wallet with the default KDF adds its unlock time to
# every dfrp-mesh command (docs/BENCHMARKS.md, "Wallet").
#   COUNT=20 SIZE_KB=1024 RUNS=3 bench/mesh_put_vs_put.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-20}
SIZE_KB=${SIZE_KB:-1024}
W=$BUILD/apps/dfrp-wallet/dfrp-wallet
L=$BUILD/apps/dfrp-ledger/dfrp-ledger
MC=$BUILD/apps/dfrp-mesh/dfrp-mesh
for b in "$W" "$L" "$MC" "$D"; do [ -x "$b" ] || { echo "build first: missing $b" >&2; exit 2; }; done
command -v curl > /dev/null || { echo "needs curl" >&2; exit 2; }
export DFRP_PASSPHRASE=bench DFRP_KDF_PROFILE=test
echo bench > "$WORK/pw"

mkdir -p "$WORK/in"
for i in $(seq "$COUNT"); do head -c $((SIZE_KB * 1024)) /dev/urandom > "$WORK/in/f$i"; done
cat "$WORK"/in/* > /dev/null

json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A ADDR
for w in alice owner prov; do
  ADDR[$w]=$("$W" --insecure-test-kdf --wallet "$WORK/$w.json" --json new | json_get 'd["address"]')
done
"$L" init-committee --authorities 1 --dir "$WORK/committee" --base-port "$(free_port)" \
  --genesis "${ADDR[alice]}=1000" --order-fee 0.001 --insecure-test-kdf > /dev/null
POLICY=$WORK/committee/economic.toml
cat >> "$POLICY" <<EOF
owner = "${ADDR[owner]}"
margin_bps = 500

[storage]
period_seconds = 3600

[gossip]
interval_ms = 500
EOF
A=$WORK/committee/authority-0
env -u API_ADDR "$D" --config "$A/dfrp.toml" > "$A/dfrpd.log" 2>&1 &
BG_PIDS+=($!)
for _ in $(seq 200); do [ -s "$A/state/dfrpd.json" ] && break; sleep 0.1; done

quota=$(( COUNT * SIZE_KB * (RUNS + 1) / 1024 + 256 ))M
new_store prov "$quota"
printf 'WALLET=%s\nWALLET_PASSPHRASE_FILE=%s\nECONOMIC_POLICY=%s\n' "$WORK/prov.json" "$WORK/pw" \
  "$POLICY" >> "$CFG"
start_dfrpd SCRUB_RATE=0
PROV=$URL
new_store local "$quota"
start_dfrpd SCRUB_RATE=0
LOCAL=$URL

baseline() {
  local i
  for i in $(seq "$COUNT"); do
    curl -sS -f -X PUT --data-binary "@$WORK/in/f$i" "$LOCAL/v1/shards" > /dev/null
  done
}
mesh_puts() {
  local i
  for i in $(seq "$COUNT"); do
    "$MC" --node "$PROV" --policy "$POLICY" --puts-dir "$WORK/puts" -q put "$WORK/in/f$i" \
      --wallet "$WORK/alice.json" --passphrase-file "$WORK/pw" --replicas 1 --max-fee 1 \
      --periods 1 > /dev/null
  done
}
mesh_puts_checked() {  # one put, output shown: fails loudly if the mesh is not set up
  "$MC" --node "$PROV" --policy "$POLICY" --puts-dir "$WORK/puts" put "$WORK/in/f1" \
    --wallet "$WORK/alice.json" --passphrase-file "$WORK/pw" --replicas 1 --max-fee 1 --periods 1
}
mesh_puts_checked > "$WORK/first.txt" 2>&1 || { cat "$WORK/first.txt" >&2; exit 1; }

machine
echo "files: $COUNT x $SIZE_KB KiB, one command each; runs: $RUNS"
b=() m=()
for r in $(seq "$RUNS"); do
  tb=$(seconds baseline)
  tm=$(seconds mesh_puts)
  b+=("$(python3 -c "print(f'{$COUNT/$tb:.2f}')")")
  m+=("$(python3 -c "print(f'{$COUNT/$tm:.2f}')")")
  echo "run $r: PUT to a local dfrpd ${b[-1]} files/s, dfrp-mesh put ${m[-1]} files/s"
done
mb=$(median "${b[@]}")
mm=$(median "${m[@]}")
echo "median: PUT $mb files/s, dfrp-mesh put $mm files/s, ratio $(ratio "$mm" "$mb") (target >= 0.8)"
