#!/usr/bin/env bash
# End-to-end test of dfrp-market (issue 12): economic.toml found beside the config or by
# ECONOMIC_POLICY, bad policies named by key (exit 2), a quick measurement written to
# STATE_DIR/capacity.json, prices from it, quotes accepted (0) and refused (7) with the reason,
# the seed's context JSON on standard input, and bad requests (exit 2).
#
#   bash tests/cli/market_cli_test.sh path/to/dfrp-market path/to/dfrp-storage
set -u
if [[ $# -lt 2 || ! -x $1 || ! -x $2 ]]; then
  echo "usage: $0 path/to/dfrp-market path/to/dfrp-storage" >&2
  exit 2
fi
M=$(realpath "$1")
S=$(realpath "$2")
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-market-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
unset DFRP_CONFIG STATE_DIR ECONOMIC_POLICY
cd "$T" || exit 2
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1: $2"; }
# run CMD... : sets RC, OUT, ERR
run() {
  "$@" >"$T/out" 2>"$T/err"
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
}
expect() {  # NAME RC [PATTERN on stdout+stderr]
  if [[ $RC -ne $2 ]]; then
    not_ok "$1" "exit $RC, expected $2; stdout=[${OUT:0:300}] stderr=[${ERR:0:300}]"
  elif [[ $# -ge 3 ]] && ! grep -Eq -- "$3" <<<"$OUT$ERR"; then
    not_ok "$1" "no /$3/ in stdout=[${OUT:0:300}] stderr=[${ERR:0:300}]"
  else
    ok "$1"
  fi
}

mkdir -p node
cat >node/dfrp.toml <<'TOML'
DRIVE_0 = "d0"
QUOTA_0 = "64M"
STATE_DIR = "state"
TOML
C=node/dfrp.toml
run "$S" --config "$C" init-storage --create
expect "init-storage" 0

run "$M" --config "$C" --json policy
expect "without economic.toml: the embedded default" 0 '"source": "embedded default"'

cat >node/economic.toml <<'TOML'
[pricing]
epoch_seconds = 30
[pricing.floor]
cpu_sec = "0.00002"
TOML
run "$M" --config "$C" --json policy
expect "economic.toml beside the config is found" 0 '"epoch_seconds": 30'
cat >node/other.toml <<'TOML'
[pricing]
epoch_seconds = 45
TOML
echo 'ECONOMIC_POLICY = "other.toml"' >>"$C"
run "$M" --config "$C" --json policy
expect "ECONOMIC_POLICY (relative to the config file) wins" 0 '"epoch_seconds": 45'

printf '[pricing]\nepoch_secs = 5\n' >node/other.toml
run "$M" --config "$C" policy
expect "an unknown key: exit 2 naming it" 2 'other.toml: pricing.epoch_secs: unknown key'
printf '[policy]\nmargin_bps = 10001\n' >node/other.toml
run "$M" --config "$C" policy
expect "a margin over 100%: exit 2 naming it" 2 'policy.margin_bps'
printf '[pricing.floor]\nread_gib = "9"\n' >node/other.toml
run "$M" --config "$C" policy
expect "a floor above its ceiling: exit 2" 2 'pricing.floor.read_gib: 9 is above its ceiling 0.7'
printf '[pricing.ceiling]\nproof = "0.0000000000000001"\n' >node/other.toml
run "$M" --config "$C" policy
expect "an amount with more decimals than the currency: exit 2" 2 'pricing.ceiling.proof.*more decimals'
sed -i 's/other.toml/missing.toml/' "$C"
run "$M" --config "$C" policy
expect "ECONOMIC_POLICY naming no file: exit 4" 4 'missing.toml does not exist'
sed -i '/ECONOMIC_POLICY/d' "$C"

run "$M" --config "$C" --json measure --quick
expect "measure --quick" 0 '"sha256_per_sec_one_core"'
if [[ -s node/state/capacity.json ]] && ! ls node/d0/.dfrp-measure-* >/dev/null 2>&1; then
  ok "the measurement is kept in STATE_DIR/capacity.json and its test file is gone"
else
  not_ok "the measurement is kept in STATE_DIR/capacity.json and its test file is gone" "$(ls -la node/state node/d0)"
fi

run "$M" --config "$C" --json prices
expect "prices: the current vector" 0 '"cpu_sec": "0\.0000'
if python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert len(j["prices"]) == 6 and j["epoch_seconds"] == 30' "$T/out"; then
  ok "prices has six resources and the policy's epoch"
else
  not_ok "prices has six resources and the policy's epoch" "$OUT"
fi

run "$M" --config "$C" quote --cpu-sec 1.2 --storage-mb 300 --max-fee 0.0042
expect "quote within max_fee: exit 0" 0 'accepted'
run "$M" --config "$C" quote --cpu-sec 1000 --max-fee 0.0001
expect "quote over max_fee: exit 7 with the reason" 7 'refused: total [0-9.]+ over max_fee 0\.0001'
run "$M" --config "$C" quote --cpu-sec 1 --max-price cpu_sec=0.000001
expect "quote over a price cap: exit 7" 7 'cpu_sec price [0-9.]+ over cap 0\.000001'
echo '{"cpu_sec": 1.2, "storage_mb": 300, "max_fee": 0.0042}' >ctx.json
run "$M" --config "$C" --json quote --context ctx.json
expect "the seed's context JSON, as is" 0 '"total_base_units"'
run bash -c "echo '{\"cpu_sec\": 1.2, \"max_fee\": 1e-12}' | '$M' --config '$C' quote --context -"
expect "a max_fee with more decimals than the currency: exit 2" 2 'max_fee.*more decimals'
run bash -c "echo '{\"cpu_sec\": NaN}' | '$M' --config '$C' quote --context -"
expect "NaN: exit 2" 2 'not valid JSON'
run "$M" --config "$C" quote --cpu-sec -1
expect "a negative quantity: exit 2" 2 'cpu_sec.*negative'
run "$M" --config "$C" quote --max-price ram=1 --cpu-sec 1
expect "an unknown resource: exit 2" 2 'max_price.ram: is not a resource'
run "$M" --config "$C" quote
expect "quote of nothing: exit 2 saying what to give" 2 'give --cpu-sec'
# Usage: a shard written by dfrp-storage is counted; a damaged usage.db is refused, never
# zeroed, and `usage --rebuild` recounts the writes from the store.
head -c 10000 /dev/urandom >payload
run "$S" --config "$C" -q write-shard payload
expect "write-shard" 0
run "$M" --config "$C" --json usage
expect "usage counts the write for local" 0 '"bytes_written": 10000'
printf 'this is not a SQLite database, only text standing in for a damaged file....' >node/state/usage.db
rm -f node/state/usage.db-wal node/state/usage.db-shm
run "$M" --config "$C" usage
expect "a damaged usage.db is refused (exit 3) with the way out" 3 'usage.db is damaged.*dfrp-market usage --rebuild'
run "$M" --config "$C" --json usage --rebuild
expect "usage --rebuild recounts the store's writes" 0 '"shards_recounted": 1'
if ls node/state/usage.db.damaged-* >/dev/null 2>&1; then
  ok "the damaged file was moved aside, not deleted"
else
  not_ok "the damaged file was moved aside, not deleted" "$(ls node/state)"
fi
run "$M" --config "$C" --json usage
expect "after the rebuild the write is counted again" 0 '"bytes_written": 10000'

run "$M" --version
expect "--version" 0 '^dfrp-market [0-9]'

echo "# $PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
