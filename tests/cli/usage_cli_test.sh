#!/usr/bin/env bash
# Usage counting (issue 12): the same writes, reads, proofs and audits counted in
# STATE_DIR/usage.db are the same whether dfrp-storage opens the store itself or goes through
# a running dfrpd (which then counts, the command does not); and a dfrpd killed with -9 in the
# middle of PUTs counts every acknowledged shard exactly once when it is started again.
#
#   bash tests/cli/usage_cli_test.sh path/to/dfrpd path/to/dfrp-storage

set -u
set -o pipefail

if [[ $# -lt 2 || ! -x $1 || ! -x $2 ]]; then
  echo "usage: $0 path/to/dfrpd path/to/dfrp-storage" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-usage-test.XXXXXX")
DAEMON_PID=
stop_daemon() {
  if [[ -n $DAEMON_PID ]]; then
    kill "${2:-}" "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
  fi
}
cleanup() {
  [[ -n $DAEMON_PID ]] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib.sh
source "$HERE/lib.sh"
cp "$1" "$T/dfrpd" || exit 2
isolate_from_caller "$2"
command -v sqlite3 >/dev/null || { echo "not ok - sqlite3 is needed"; exit 1; }

F=$T/files
mkdir -p "$F"
mkfile "$F/a" 5000 1
mkfile "$F/b" 70000 2
mkfile "$F/c" 300000 3

start_daemon() {
  rm -f "$STATE_DIR/dfrpd.json"
  API_ADDR=127.0.0.1:0 "$T/dfrpd" >>"$T/dfrpd.log" 2>&1 &
  DAEMON_PID=$!
  local i
  for i in $(seq 150); do
    [[ -s $STATE_DIR/dfrpd.json ]] && return 0
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "# dfrpd did not start: $(tail -5 "$T/dfrpd.log")"
  not_ok "dfrpd starts" "no $STATE_DIR/dfrpd.json"
  exit 1
}

# What usage.db holds, without the shard ids (which differ between two runs).
usage_summary() {
  sqlite3 "$STATE_DIR/usage.db" \
    "SELECT 'writes', who, count(*), sum(bytes) FROM writes GROUP BY who;
     SELECT 'io', who, sum(reads), sum(bytes_read), sum(proofs), sum(leaves) FROM io GROUP BY who;"
}

# scenario NAME: a fresh store, three shards written, each read whole, one read by range,
# one proof, one audit.
scenario() {
  S=$T/$1
  export DRIVE_0=$S/d0 QUOTA_0=16M STATE_DIR=$S/state VECTOR_DIM=3 LEAF_SIZE=4096
  mkdir -p "$S/d0"
  "$BIN" init-storage >/dev/null 2>&1 || not_ok "$1 init" "init-storage failed"
  [[ $1 == daemon ]] && start_daemon
  local ids id
  ids=$("$BIN" -q write-shard "$F/a" "$F/b" "$F/c" 2>"$T/err") || not_ok "$1 write" "$(cat "$T/err")"
  for id in $ids; do "$BIN" read-shard "$id" >/dev/null 2>>"$T/err" || not_ok "$1 read" "$id"; done
  id=$(echo "$ids" | sed -n 2p)
  "$BIN" read-shard --range 4096:100 "$id" >/dev/null 2>>"$T/err" || not_ok "$1 range" "$(cat "$T/err")"
  "$BIN" prove-shard "$id" --leaf 1 >/dev/null 2>>"$T/err" || not_ok "$1 prove" "$(cat "$T/err")"
  "$BIN" audit "$id" --seed 00ff --challenges 3 >/dev/null 2>>"$T/err" ||
    not_ok "$1 audit" "$(cat "$T/err")"
  [[ $1 == daemon ]] && stop_daemon
  usage_summary >"$T/$1.usage"
}

scenario direct
scenario daemon
echo "# direct:"; sed 's/^/#   /' "$T/direct.usage"
echo "# daemon:"; sed 's/^/#   /' "$T/daemon.usage"
check "direct and daemon counts are the same" cmp -s "$T/direct.usage" "$T/daemon.usage"
check "counts: 3 writes of 375000 bytes" grep -qx 'writes|local|3|375000' "$T/direct.usage"
check "counts: 4 reads of 375100 bytes, 2 proofs of 4 leaves" \
  grep -qx 'io|local|4|375100|2|4' "$T/direct.usage"

# kill -9 during PUTs: every acknowledged shard counted exactly once after a restart.
S=$T/kill
export DRIVE_0=$S/d0 QUOTA_0=64M STATE_DIR=$S/state VECTOR_DIM=3 LEAF_SIZE=4096
mkdir -p "$S/d0"
"$BIN" init-storage >/dev/null 2>&1
start_daemon
# The writer stops once the daemon is gone (else it would go on writing directly, 400 times).
DPID=$DAEMON_PID
( for i in $(seq 400); do
  kill -0 "$DPID" 2>/dev/null || break
  "$BIN" -q write-shard "$F/a" 2>/dev/null || break
done ) >"$T/acked" &
WRITER=$!
sleep 3
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
wait "$WRITER" 2>/dev/null
start_daemon
stop_daemon
acked=$(grep -c . "$T/acked")
echo "# acknowledged before the kill: $acked"
missing=0
while read -r id; do
  n=$(sqlite3 "$STATE_DIR/usage.db" "SELECT count(*) FROM writes WHERE lower(hex(shard)) = '${id//-/}'")
  [[ $n == 1 ]] || missing=$((missing + 1))
done <"$T/acked"
check "every acknowledged shard counted once" test "$acked" -gt 0 -a "$missing" -eq 0
stored=$("$BIN" --json list-volumes | python3 -c 'import json,sys; print(sum(v["shards"] for v in json.load(sys.stdin)))')
rows=$(sqlite3 "$STATE_DIR/usage.db" "SELECT count(*) FROM writes")
check "as many write rows ($rows) as shards stored ($stored)" test "$rows" = "$stored"

echo "# $PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
