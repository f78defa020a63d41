#!/usr/bin/env bash
# Opening after a crash that left TAIL records past the index (the index as it was before
# they were written, as after a power cut before the index commit) vs a clean open, over a
# store of BASE shards. Each timed run is `list-volumes` (open, recover, list).
#   BASE=100000 TAIL=1000 RUNS=10 bench/recovery_tail.sh
source "$(dirname "$0")/lib.sh"
BASE=${BASE:-100000}
TAIL=${TAIL:-1000}
RUNS=${RUNS:-10}
new_store t 4G
"$BUILD/bench/dfrp-fill-store" --config "$CFG" --count "$BASE" --size 1024 > /dev/null 2>&1
cp "$WORK/t/state/index.sqlite" "$WORK/index-before"
"$BUILD/bench/dfrp-fill-store" --config "$CFG" --count "$TAIL" --size 1024 --batch 10 > /dev/null 2>&1
cp "$WORK/t/state/index.sqlite" "$WORK/index-after"
clean=() tail_t=()
for i in $(seq "$RUNS"); do
  cp "$WORK/index-after" "$WORK/t/state/index.sqlite"
  clean+=("$(seconds "$S" --config "$CFG" list-volumes)")
  cp "$WORK/index-before" "$WORK/t/state/index.sqlite"
  tail_t+=("$(seconds "$S" --config "$CFG" list-volumes)")
done
shards=$("$S" --config "$CFG" --json list-volumes | python3 -c 'import json,sys; print(sum(v["shards"] for v in json.load(sys.stdin)))')
c=$(median "${clean[@]}"); r=$(median "${tail_t[@]}")
machine
echo "open of $shards shards: clean ${c}s (runs ${clean[*]}); with a ${TAIL}-record unindexed tail ${r}s (runs ${tail_t[*]}); recovery costs $(python3 -c "print(f'{($r-$c)*1000:.1f}')") ms, $(ratio "$r" "$c")x a clean open"
