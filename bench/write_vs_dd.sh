#!/usr/bin/env bash
# Durable write-shard of one large file vs `dd bs=1M conv=fdatasync` of the same file onto the
# same drive, alternating, RUNS times each. Target (issue 2): ratio dd/dfrp >= 0.85.
#   SIZE_MB=1024 RUNS=3 bench/write_vs_dd.sh
source "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-1024}
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/input"
cat "$WORK/input" > /dev/null
new_store w $((SIZE_MB * (RUNS + 1)))M
dd_t=() dfrp_t=()
for i in $(seq "$RUNS"); do
  sync; sleep 1
  dd_t+=("$(seconds dd if="$WORK/input" of="$WORK/w/d0/dd.out" bs=1M conv=fdatasync)")
  rm -f "$WORK/w/d0/dd.out"; sync; sleep 1
  dfrp_t+=("$(seconds "$S" --config "$CFG" -q write-shard "$WORK/input")")
done
d=$(median "${dd_t[@]}"); f=$(median "${dfrp_t[@]}")
machine
echo "write ${SIZE_MB} MiB: dd conv=fdatasync ${d}s (runs ${dd_t[*]}), dfrp write-shard ${f}s (runs ${dfrp_t[*]}), ratio dd/dfrp $(ratio "$d" "$f")"
