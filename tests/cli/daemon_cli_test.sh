#!/usr/bin/env bash
# dfrp-storage beside a running dfrpd: every command that goes through the daemon's API prints
# what it prints when it opens the store itself, with the same exit code.
#
#   bash tests/cli/daemon_cli_test.sh path/to/dfrpd path/to/dfrp-storage
#
# The same scenario runs twice on a store at the same paths, configured by environment
# variables: once with no daemon (direct), once with dfrpd serving the store (API_ADDR
# 127.0.0.1:0). The outputs are compared after masking what must differ (shard ids, times,
# durations). Then the daemon-only checks: commands that cannot run beside it exit 6 naming
# it, the daemon holds the store's writer lock so no direct writer could run, and a leftover
# dfrpd.json of a stopped daemon means nothing.

set -u
set -o pipefail

if [[ $# -lt 2 || ! -x $1 || ! -x $2 ]]; then
  echo "usage: $0 path/to/dfrpd path/to/dfrp-storage" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-daemon-cli-test.XXXXXX")
DAEMON_PID=
stop_daemon() {
  if [[ -n $DAEMON_PID ]]; then
    kill "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=
  fi
}
cleanup() {
  stop_daemon
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=lib.sh
source "$HERE/lib.sh"
cp "$1" "$T/dfrpd" || exit 2
isolate_from_caller "$2"

echo "# dfrp-storage beside dfrpd: $BIN, $T/dfrpd"
echo "# temp folder: $T"

S=$T/s
export DRIVE_0=$S/d0 QUOTA_0=2M DRIVE_1=$S/d1 QUOTA_1=16M STATE_DIR=$S/state VECTOR_DIM=3 \
  LEAF_SIZE=4096

F=$T/files
mkdir -p "$F" "$T/o"
mkfile "$F/a" 5000 1
mkfile "$F/b" 9000 2
mkfile "$F/c" 1 3
mkfile "$F/d" 70000 4
mkfile "$F/e" 12345 5
mkfile "$F/multi" 300000 6
mkfile "$F/small" 3000 7
mkfile "$F/x" 100 8
mkfile "$F/y" 200 9
mkfile "$F/big" 6000000 10
truncate -s 40M "$F/huge" # more than every quota: refused before a byte is stored

start_daemon() {
  API_ADDR=127.0.0.1:0 "$T/dfrpd" >"$T/dfrpd.log" 2>&1 &
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

# c NAME ARGS... : runs dfrp-storage, keeping stdout, stderr and the exit code under $R.
c() {
  local name=$1
  shift
  "$BIN" "$@" >"$R/$name.out" 2>"$R/$name.err" </dev/null
  echo $? >"$R/$name.rc"
}
# cin NAME INPUT ARGS... : the same with standard input from INPUT.
cin() {
  local name=$1 input=$2
  shift 2
  "$BIN" "$@" >"$R/$name.out" 2>"$R/$name.err" <"$input"
  echo $? >"$R/$name.rc"
}
id_of() { jget 'j[0]["shard_id"]' "$R/$1.out"; }

UNKNOWN=01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60

# The scenario, the same in both modes. Multi-file writes come last: the direct path writes
# them as one batch, the daemon as one write each, so the offsets after them differ.
scenario() {
  c init_text init-storage
  c init_json --json init-storage
  c vols_text list-volumes
  c vols_json --json list-volumes

  c w_text write-shard "$F/a"
  c w_json --json write-shard --meta project=alpha --meta k=v --vector 0.5,1,-2 \
    --owner dfrp1owner --content-type text/plain "$F/b"
  c w_quiet -q write-shard "$F/c"
  cin w_stdin "$F/d" write-shard -
  cat "$F/e" | "$BIN" write-shard - >"$R/w_pipe.out" 2>"$R/w_pipe.err"
  echo $? >"$R/w_pipe.rc"
  c w_leaf --json write-shard --leaf-size 1024 "$F/multi"
  c a_json --json write-shard "$F/a"
  A=$(id_of a_json)
  B=$(id_of w_json)
  M=$(id_of w_leaf)

  c stat_a stat-shard "$A"
  c stat_b stat-shard "$B"
  c stat_b_json --json stat-shard "$B"
  c read_a read-shard "$A"
  c read_range read-shard "$M" --range 5000:3000
  c read_o --json read-shard "$M" -o "$T/o/m.bin"
  check "$MODE: read-shard -o wrote the payload" cmp -s "$T/o/m.bin" "$F/multi"
  rm -f "$T/o/m.bin"
  # -o to a device or a FIFO: straight through, the same in both modes.
  c read_null --json read-shard "$M" -o /dev/null
  c read_null_range read-shard "$M" --range 5000:3000 -o /dev/null
  via_fifo "$T/o/fifo" c read_fifo read-shard "$M" -o "$T/o/fifo"
  check "$MODE: read-shard -o FIFO streams the payload to its reader" \
    bash -c "[[ -p '$T/o/fifo' ]] && cmp -s '$T/o/fifo.got' '$F/multi'"
  c read_range0 read-shard "$A" --range 0:0
  c read_past read-shard "$A" --range 10:999999
  c verify verify-shard "$A" "$B" "$M"
  c verify_json --json verify-shard "$A" "$B"
  c verify_all verify-shard --all

  c err_stat_unknown stat-shard "$UNKNOWN"
  c err_stat_bad stat-shard not-an-id
  c err_read_unknown read-shard "$UNKNOWN"
  c err_verify_unknown verify-shard "$UNKNOWN" "$A"
  c err_vector write-shard --vector 1,2 "$F/a"
  c err_missing write-shard "$T/no-such-file"
  c err_nospace write-shard "$F/huge"
  c err_prove_unknown prove-shard "$UNKNOWN" --leaf 0

  c prove_text prove-shard "$M" --leaf 3
  c prove_json --json prove-shard "$M" --leaf 5
  c audit_text audit "$M" --seed 5eed01 --challenges 2
  c audit_json --json audit "$M" --seed 5eed0123 --challenges 4

  c pause0 pause 0 --reason maintenance
  c resume0 resume 0
  c pause_json --json pause 1
  c resume_json --json resume 1
  c pause_all pause-storage
  c resume_all resume-storage

  # resume --path: the dd way (copy while paused, then verify and move).
  c pause0b -q pause 0
  cp -a "$S/d0" "$S/d0copy"
  c resume_path resume 0 --path "$S/d0copy"
  c vols_moved list-volumes
  c retire0 retire-source 0

  c migrate migrate 1 --to "$S/d1new"
  c resume1 -q resume 1
  c pause_migrate --json pause-migrate 1 --to "$S/d1b" --delete-source
  c vols_migrated --json list-volumes

  # A damaged shard: verify and read exit 3, nothing on stdout.
  c small_json --json write-shard "$F/small"
  local X
  X=$(id_of small_json)
  "$BIN" --json stat-shard "$X" >"$T/stat.json" 2>/dev/null
  flip_payload "$T/stat.json" 1000
  c corrupt_verify verify-shard "$X"
  c corrupt_read read-shard "$X"
  c corrupt_null read-shard "$X" -o /dev/null
  via_fifo "$T/o/cfifo" c corrupt_fifo read-shard "$X" -o "$T/o/cfifo"
  check "$MODE: read-shard -o FIFO of a corrupt shard: its reader gets no byte" \
    test ! -s "$T/o/cfifo.got"

  # A payload of several MiB streams through in pieces.
  c big_json --json write-shard "$F/big"
  c big_read read-shard "$(id_of big_json)"
  check "$MODE: read-shard of a 6 MB shard prints it whole" cmp -s "$R/big_read.out" "$F/big"
  c big_range read-shard "$(id_of big_json)" --range 1000000:3000000

  # A bad leaf late in a large payload, read to a FIFO: exit 3, and what the reader got is a
  # prefix of the payload that stops before the bad leaf (the daemon streams verified pieces).
  local BIG
  BIG=$(id_of big_json)
  "$BIN" --json stat-shard "$BIG" >"$T/stat.json" 2>/dev/null
  flip_payload "$T/stat.json" 5000000
  via_fifo "$T/o/bfifo" c big_corrupt_fifo read-shard "$BIG" -o "$T/o/bfifo"
  local got
  got=$(stat -c %s "$T/o/bfifo.got")
  if [[ $(cat "$R/big_corrupt_fifo.rc") == 3 && $got -le $((5000000 / 4096 * 4096)) ]] &&
    cmp -s "$T/o/bfifo.got" <(head -c "$got" "$F/big"); then
    ok "$MODE: a bad leaf at 5000000: -o FIFO exits 3 having written only verified bytes ($got)"
  else
    not_ok "$MODE: a bad leaf at 5000000: -o FIFO writes only verified bytes" \
      "rc=$(cat "$R/big_corrupt_fifo.rc") got $got bytes $(head -c 300 "$R/big_corrupt_fifo.err")"
  fi

  c w_multi write-shard "$F/x" "$F/y"
}

run_mode() {
  MODE=$1
  R=$T/res/$MODE
  mkdir -p "$R"
  rm -rf "$S"
  "$BIN" init-storage --create >/dev/null 2>"$T/err" || echo "# init-storage: $(cat "$T/err")"
  [[ $MODE == daemon ]] && start_daemon
  scenario
}

# mask FILE : what must differ between two runs replaced by placeholders (shard ids in order
# of appearance, times, durations, rates).
mask() {
  $PY - "$1" <<'EOF'
import re, sys
text = open(sys.argv[1], "rb").read().decode("latin-1")
ids = {}
def idsub(m):
    return ids.setdefault(m.group(0), "ID%d" % (len(ids) + 1))
text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", idsub, text)
text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", "TIME", text)
text = re.sub(r'"(created_unix_ms|copy_seconds|verify_seconds|total_seconds|copy_mib_per_s)": [0-9.e+-]+',
              r'"\1": N', text)
text = re.sub(r"\d+\.\d s", "N s", text)
text = re.sub(r"\(\d+ MiB/s\)", "(N MiB/s)", text)
sys.stdout.write(text)
EOF
}

# mask_audit FILE : an audit answer masked, less the leaves it proves: the challenged leaves
# follow from the shard id, which differs between the runs (verify-proof checks them below).
mask_audit() {
  mask "$1" | $PY -c '
import json, re, sys
text = sys.stdin.read()
try:
    j = json.loads(text)
    j["proofs"] = len(j["proofs"])
    print(json.dumps(j, indent=2, sort_keys=True))
except ValueError:
    for line in text.splitlines():
        if not re.match(r"^(leaf_index|leaf |path | +[0-9a-f]{64})", line):
            print(line)
'
}

run_mode direct
run_mode daemon
for mode in direct daemon; do
  # Each run's audit answer verifies against its own shard.
  w=$T/res/$mode/w_leaf.out
  if "$BIN" verify-proof "$T/res/$mode/audit_json.out" --root "$(jget 'j[0]["merkle_root"]' "$w")" \
    --seed 5eed0123 --shard "$(jget 'j[0]["shard_id"]' "$w")" --size 300000 --leaf-size 1024 \
    --challenges 4 >/dev/null 2>"$T/err"; then
    ok "$mode: the audit answer verifies"
  else
    not_ok "$mode: the audit answer verifies" "$(cat "$T/err")"
  fi
done

# Daemon-only checks, while it still runs.
check "the daemon wrote STATE_DIR/dfrpd.json" test -s "$STATE_DIR/dfrpd.json"
check "dfrpd holds the store's writer lock (a direct writer would exit 6)" \
  bash -c "! flock -n '$STATE_DIR/LOCK' true"
R=$T/res/extra
mkdir -p "$R"
c lock_write --json write-shard "$F/x"
if [[ $(cat "$R/lock_write.rc") == 0 ]] && jtrue 'len(j) == 1' "$R/lock_write.out"; then
  ok "write-shard succeeds through the daemon while it holds the writer lock"
else
  not_ok "write-shard succeeds through the daemon while it holds the writer lock" \
    "rc=$(cat "$R/lock_write.rc") $(head -c 300 "$R/lock_write.err")"
fi
DPID=$(jget 'j["pid"]' "$STATE_DIR/dfrpd.json")
refused() {
  local name=$1
  shift
  c "$name" "$@"
  local rc
  rc=$(cat "$R/$name.rc")
  if [[ $rc == 6 ]] && grep -q "dfrpd (pid $DPID" "$R/$name.err" &&
    grep -qi "stop dfrpd" "$R/$name.err" && [[ ! -s $R/$name.out ]]; then
    ok "beside dfrpd, $* exits 6 naming the daemon and the way out"
  else
    not_ok "beside dfrpd, $* exits 6 naming the daemon and the way out" \
      "rc=$rc err=$(head -c 300 "$R/$name.err")"
  fi
}
refused add_drive add-drive "$S/d2" 1M --create
check "a refused add-drive laid out nothing" test ! -e "$S/d2"
refused rebuild rebuild-index
refused scrub scrub
mkdir -p "$T/mnt"
refused mount mount "$T/mnt"

# A wrong token: admin requests answer 401, reported as such (exit 2).
cp "$STATE_DIR/api-token" "$T/token.saved"
echo 0000000000000000000000000000000000000000000000000000000000000000 >"$STATE_DIR/api-token"
c bad_token pause 0
if [[ $(cat "$R/bad_token.rc") == 2 ]] && grep -q "dfrpd refused" "$R/bad_token.err" &&
  grep -q "api-token" "$R/bad_token.err"; then
  ok "a wrong api-token: exit 2, 'dfrpd refused ... api-token'"
else
  not_ok "a wrong api-token: exit 2, 'dfrpd refused ... api-token'" \
    "rc=$(cat "$R/bad_token.rc") err=$(head -c 300 "$R/bad_token.err")"
fi
cp "$T/token.saved" "$STATE_DIR/api-token"

# A stopped daemon's leftover dfrpd.json means nothing: the next command opens the store.
cp "$STATE_DIR/dfrpd.json" "$T/dfrpd.json.saved"
stop_daemon
cp "$T/dfrpd.json.saved" "$STATE_DIR/dfrpd.json"
c after_stop --json write-shard "$F/y"
check "with dfrpd stopped (a stale dfrpd.json left), write-shard opens the store directly" \
  test "$(cat "$R/after_stop.rc")" = 0

# The comparison: exit codes, stdout and stderr of every command, after masking.
for rcfile in "$T"/res/direct/*.rc; do
  name=$(basename "$rcfile" .rc)
  d=$T/res/direct/$name
  n=$T/res/daemon/$name
  if [[ ! -e $n.rc ]]; then
    not_ok "$name: same in both modes" "no daemon run"
    continue
  fi
  if [[ $(cat "$d.rc") != "$(cat "$n.rc")" ]]; then
    not_ok "$name: same exit code" "direct $(cat "$d.rc"), daemon $(cat "$n.rc"): $(head -c 300 "$n.err")"
    continue
  fi
  masker=mask
  [[ $name == audit_* ]] && masker=mask_audit
  if diff <($masker "$d.out") <($masker "$n.out") >"$T/diff" 2>&1; then
    ok "$name: same exit code ($(cat "$d.rc")) and stdout"
  else
    not_ok "$name: same stdout" "$(head -c 1500 "$T/diff")"
  fi
  if ! diff <(mask "$d.err") <(mask "$n.err") >"$T/diff" 2>&1; then
    echo "# $name: stderr differs: $(head -c 600 "$T/diff" | tr '\n' '|')"
  fi
done
for name in read_a corrupt_read; do
  check "$name: stdout is what direct prints (payload or nothing)" \
    cmp -s "$T/res/direct/$name.out" "$T/res/daemon/$name.out"
done
check "read-shard ID prints the payload" cmp -s "$T/res/daemon/read_a.out" "$F/a"
for e in err_stat_unknown:4 err_stat_bad:2 err_read_unknown:4 err_verify_unknown:4 \
  err_vector:2 err_missing:2 err_nospace:5 corrupt_verify:3 corrupt_read:3 read_past:2 \
  read_null:0 read_fifo:0 corrupt_null:3 corrupt_fifo:3 big_corrupt_fifo:3; do
  check "${e%%:*} exits ${e##*:} beside dfrpd" test "$(cat "$T/res/daemon/${e%%:*}.rc")" = "${e##*:}"
done

echo "$PASS passed, $FAIL failed"
if [[ $FAIL -gt 0 ]]; then
  printf '#   failed: %s\n' "${FAILED_NAMES[@]}"
  exit 1
fi
exit 0
