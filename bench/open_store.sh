#!/usr/bin/env bash
# Opens a store holding COUNT shards and lists its volumes (target: under 1 s), and reports
# the peak memory of that command and the index's bytes per shard (aim: 64 or less).
#   COUNT=1000000 bench/open_store.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000000}
new_store o 8G
t0=$(date +%s)
"$BUILD/bench/dfrp-fill-store" --config "$CFG" --count "$COUNT" --size 64 > "$WORK/o/last-id"
fill=$(( $(date +%s) - t0 ))
list_t=()
for i in $(seq "$RUNS"); do list_t+=("$(seconds "$S" --config "$CFG" list-volumes)"); done
rss=$(/usr/bin/time -f %M "$S" --config "$CFG" list-volumes 2>&1 >/dev/null | tail -1)
index_bytes=$(du -cb "$WORK"/o/state/index.sqlite* | tail -1 | cut -f1)
read_rss=$(/usr/bin/time -f %M "$S" --config "$CFG" stat-shard "$(cat "$WORK/o/last-id")" 2>&1 >/dev/null | tail -1)
machine
echo "open + list-volumes with $COUNT shards: median $(median "${list_t[@]}")s (runs ${list_t[*]}); peak RSS ${rss} KiB = $(python3 -c "print(f'{$rss*1024/$COUNT:.1f}')") bytes per shard; stat-shard peak RSS ${read_rss} KiB; index on disk $(python3 -c "print(f'{$index_bytes/$COUNT:.0f}')") bytes per shard; filled in ${fill}s"
