#!/usr/bin/env bash
# search-shards on a store of COUNT shards that all carry a 16-dimensional vector (target:
# the search itself under 10 ms beyond opening the store), side by side with --exact (brute
# force over the same vectors) and with list-volumes (opening the store alone).
#   COUNT=1000000 bench/search_shards.sh
# Reports: the first search (it builds the vector index from the drives and saves it), then
# medians of RUNS searches that load the saved index: the whole command's wall time, the
# search's own time (search_ms of --json), the --exact search's, and list-volumes' wall time.
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000000}
new_store v 8G
t0=$(date +%s)
"$BUILD/bench/dfrp-fill-store" --config "$CFG" --count "$COUNT" --size 64 --vectors > /dev/null
fill=$(( $(date +%s) - t0 ))
Q=$(python3 -c "import random; random.seed(5); print(','.join(f'{random.gauss(0,1):.4f}' for _ in range(16)))")
first=$(seconds "$S" --config "$CFG" search-shards --near "$Q")
search_ms() { "$S" --config "$CFG" search-shards --near "$Q" --json "$@" | python3 -c "import json,sys; print(json.load(sys.stdin)['search_ms'])"; }
wall=(); ms=(); exact=(); open=()
for i in $(seq "$RUNS"); do
  wall+=("$(seconds "$S" --config "$CFG" search-shards --near "$Q")")
  ms+=("$(search_ms)")
  exact+=("$(search_ms --exact)")
  open+=("$(seconds "$S" --config "$CFG" list-volumes)")
done
rss=$(/usr/bin/time -f %M "$S" --config "$CFG" search-shards --near "$Q" 2>&1 >/dev/null | tail -1)
idx=$(stat -c %s "$WORK/v/state/vectors.idx")
machine
echo "search-shards over $COUNT shards with vectors: first run (builds and saves the index) ${first}s;"
echo "  then median wall ${wall[*]} -> $(median "${wall[@]}")s, of which the search $(median "${ms[@]}") ms (runs ${ms[*]});"
echo "  --exact (brute force) $(median "${exact[@]}") ms; list-volumes alone $(median "${open[@]}")s;"
echo "  peak RSS ${rss} KiB; vectors.idx $(python3 -c "print(f'{$idx/$COUNT:.0f}')") bytes per shard; filled in ${fill}s"
