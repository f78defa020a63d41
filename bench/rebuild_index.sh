#!/usr/bin/env bash
# rebuild-index of a store of COUNT shards of SIZE bytes: time, and bytes read by the scan
# (record prefixes and commit records) against the payload bytes; warm (page cache) and, when
# the kernel lets us drop caches, cold.
#   COUNT=1000000 SIZE=4096 bench/rebuild_index.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000000}
SIZE=${SIZE:-4096}
new_store r $(( (COUNT * (SIZE + 400)) / 1048576 + 64 ))M
"$BUILD/bench/dfrp-fill-store" --config "$CFG" --count "$COUNT" --size "$SIZE" > /dev/null 2>&1
sync
warm=()
for i in $(seq "$RUNS"); do
  t0=$(date +%s.%N)
  "$S" --config "$CFG" --json rebuild-index > "$WORK/report.json"
  t1=$(date +%s.%N)
  warm+=("$(python3 -c "print(f'{$t1-$t0:.3f}')")")
done
cold="n/a (cannot drop caches)"
if sync && echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
  t0=$(date +%s.%N)
  "$S" --config "$CFG" --json rebuild-index > "$WORK/report.json"
  t1=$(date +%s.%N)
  cold="$(python3 -c "print(f'{$t1-$t0:.3f}')")s"
fi
machine
python3 - "$WORK/report.json" "$COUNT" "$(median "${warm[@]}")" "${warm[*]}" "$cold" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
count, med, runs, cold = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
print(f"rebuild-index of {j['shards']} shards ({j['payload_bytes'] / 2**20:.0f} MiB of payload in "
      f"{j['segments']} segments): warm median {med}s (runs {runs}), cold {cold}; the scan read "
      f"{j['bytes_read'] / 2**20:.1f} MiB = {j['bytes_read'] / j['payload_bytes']:.3f} of the payload bytes "
      f"({j['bytes_read'] / j['shards']:.0f} bytes per shard)")
PY
