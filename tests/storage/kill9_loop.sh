#!/usr/bin/env bash
# The kill -9 loop: a writer storing shards in a loop (dfrp-crash-writer) is killed with
# SIGKILL at a random moment, ROUNDS times (200 by default); after each kill every shard it
# acknowledged must read back intact, and the store must take writes again.
#
#   bash tests/storage/kill9_loop.sh path/to/dfrp-crash-writer path/to/dfrp-storage [ROUNDS]
#
# Each round checks the shards acknowledged in that round and a sample of the older ones;
# every 25th round and the last check all of them, through dfrp-crash-writer and through
# `dfrp-storage verify-shard --all`.
set -u
set -o pipefail
if [[ $# -lt 2 || ! -x $1 || ! -x $2 ]]; then
  echo "usage: $0 path/to/dfrp-crash-writer path/to/dfrp-storage [ROUNDS]" >&2
  exit 2
fi
WRITER=$1
CLI=$2
ROUNDS=${3:-200}
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-kill9.XXXXXX")
trap 'rm -rf "$T"' EXIT
cat >"$T/dfrp.toml" <<'CONF'
DRIVE_0 = "d0"
QUOTA_0 = "96M"
DRIVE_1 = "d1"
QUOTA_1 = "4G"
STATE_DIR = "state"
CONF
C=$T/dfrp.toml
"$CLI" --config "$C" init-storage --create -q || exit 1
: >"$T/acks"
fails=0
for round in $(seq 1 "$ROUNDS"); do
  before=$(grep -c '^ACK' "$T/acks")
  # Small segments so that segments are created (and cut short) often.
  "$WRITER" write --config "$C" --seed "$round" --segment-size 4194304 >>"$T/acks" 2>"$T/writer.err" &
  pid=$!
  # 5 to 300 ms: sometimes during open and recovery, mostly mid-batch.
  sleep "$(printf '0.%03d' $((RANDOM % 296 + 5)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if [[ -s $T/writer.err ]]; then
    echo "not ok - round $round: the writer failed before it was killed: $(cat "$T/writer.err")"
    fails=$((fails + 1))
    break
  fi
  # A torn last line (killed while printing) was never an acknowledgement; drop it so the
  # next round's lines start on a fresh line.
  if [[ -s $T/acks && $(tail -c 1 "$T/acks" | od -An -c | tr -d ' ') != '\n' ]]; then
    sed -i '$ d' "$T/acks"
  fi
  after=$(grep -c '^ACK' "$T/acks")
  sample=$((after - before > 20 ? after - before : 20))
  if ((round % 25 == 0 || round == ROUNDS)); then sample=0; fi
  if ! out=$("$WRITER" check --config "$C" --acks "$T/acks" --sample "$sample" 2>&1); then
    echo "not ok - round $round: $out"
    fails=$((fails + 1))
    break
  fi
  if ((round % 25 == 0 || round == ROUNDS)); then
    if ! "$CLI" --config "$C" verify-shard --all -q >/dev/null 2>"$T/verify.err"; then
      echo "not ok - round $round: verify-shard --all failed: $(cat "$T/verify.err")"
      fails=$((fails + 1))
      break
    fi
    echo "ok - round $round: $out; verify-shard --all clean"
  fi
done
total=$(grep -c '^ACK' "$T/acks")
quarantined=$(find "$T/d0" "$T/d1" -path '*quarantine*' -type f 2>/dev/null | wc -l)
echo "# $total shards acknowledged over $ROUNDS kills; $quarantined interrupted write(s) moved to quarantine"
if [[ $total -lt $ROUNDS ]]; then
  echo "not ok - too few acknowledged shards ($total): the writer was killed before it wrote"
  fails=$((fails + 1))
fi
if [[ $fails -eq 0 ]]; then
  echo "ok - every acknowledged shard read back intact after each of $ROUNDS kills"
  exit 0
fi
exit 1
