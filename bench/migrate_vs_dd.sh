#!/usr/bin/env bash
# pause-migrate of a SIZE_MB volume vs `dd bs=1M conv=fdatasync` of the same segment files to
# the same file system, alternating, RUNS times each. Targets (issue 3): copy phase dd/dfrp
# >= 0.9; copy plus verification dd/dfrp >= 0.6. Both read the source from the page cache
# (the volume was just written or copied) and write durably.
#   SIZE_MB=2048 RUNS=3 bench/migrate_vs_dd.sh
source "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-2048}
new_store m $((SIZE_MB * 2))M
# Shards of 256 MiB (one per segment, as a full volume has).
n=$((SIZE_MB / 256))
for i in $(seq "$n"); do
  head -c $((256 << 20)) /dev/urandom > "$WORK/in"
  "$S" --config "$CFG" -q write-shard "$WORK/in" > /dev/null
done
rm -f "$WORK/in"
dd_t=() copy_t=() total_t=()
src="$WORK/m/d0"
for i in $(seq "$RUNS"); do
  sync; sleep 1
  mkdir -p "$WORK/dd"
  t0=$(date +%s.%N)
  for f in "$src"/segment-*.dfrp; do dd if="$f" of="$WORK/dd/$(basename "$f")" bs=1M conv=fdatasync status=none; done
  t1=$(date +%s.%N)
  dd_t+=("$(python3 -c "print(f'{$t1-$t0:.3f}')")")
  rm -rf "$WORK/dd"; sync; sleep 1
  "$S" --config "$CFG" --json pause-migrate 0 --to "$WORK/move$i" --delete-source > "$WORK/report.json"
  copy_t+=("$(python3 -c "import json; print(f'{json.load(open(\"$WORK/report.json\"))[\"copy_seconds\"]:.3f}')")")
  total_t+=("$(python3 -c "import json; j=json.load(open(\"$WORK/report.json\")); print(f'{j[\"copy_seconds\"] + j[\"verify_seconds\"]:.3f}')")")
  src="$WORK/move$i"
done
d=$(median "${dd_t[@]}"); c=$(median "${copy_t[@]}"); t=$(median "${total_t[@]}")
machine
echo "migrate ${SIZE_MB} MiB in $n segments: dd ${d}s (runs ${dd_t[*]}); pause-migrate copy ${c}s (runs ${copy_t[*]}), copy+verify ${t}s (runs ${total_t[*]}); ratio dd/copy $(ratio "$d" "$c"), dd/(copy+verify) $(ratio "$d" "$t")"
