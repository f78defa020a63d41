#!/usr/bin/env bash
# Memory of an idle dfrpd over a store of COUNT shards of SIZE bytes (filled fast by
# dfrp-fill-store, as bench/rebuild_index.sh does): VmRSS and VmHWM after IDLE seconds with the
# scrubber off (SCRUB_RATE=0), then again after one GET /v1/volumes and one GET /v1/status;
# then the same with the default scrubber running. RUNS daemon starts each; medians.
#   COUNT=1000000 SIZE=4096 IDLE=10 RUNS=3 bench/daemon_idle_memory.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-1000000}
SIZE=${SIZE:-4096}
IDLE=${IDLE:-10}
FILL=$BUILD/bench/dfrp-fill-store
[ -x "$FILL" ] || { echo "build first: cmake --build $BUILD --target dfrp-fill-store" >&2; exit 2; }
need_mb=$(( COUNT * (SIZE + 400) / 1048576 + 64 ))
avail_mb=$(df -m --output=avail "$WORK" | tail -1)
[ "$avail_mb" -gt $(( need_mb + 2048 )) ] || { echo "not enough free disk: ${avail_mb} MB" >&2; exit 2; }
new_store m "${need_mb}M"
t0=$(date +%s)
"$FILL" --config "$CFG" --count "$COUNT" --size "$SIZE" > /dev/null 2>&1
fill=$(( $(date +%s) - t0 ))
sync

kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mib() { python3 -c "print(f'{$1/1024:.1f}')"; }
# one_run SCRUB_LINE...: sets rss hwm rss2 hwm2 (KiB) for one daemon start
one_run() {
  start_dfrpd "$@"
  sleep "$IDLE"
  rss=$(kib "$DPID" VmRSS); hwm=$(kib "$DPID" VmHWM)
  curl -sf -o "$WORK/volumes.json" "$URL/v1/volumes"
  curl -sf -o "$WORK/status.json" "$URL/v1/status"
  rss2=$(kib "$DPID" VmRSS); hwm2=$(kib "$DPID" VmHWM)
  threads=$(awk '$1 == "Threads:" {print $2}' "/proc/$DPID/status")
  stop_dfrpd
}
report() {  # LABEL: the medians of the runs in R_RSS R_HWM R2_RSS R2_HWM
  echo "$1: idle ${IDLE}s VmRSS $(mib "$(median "${R_RSS[@]}")") MiB, VmHWM $(mib "$(median "${R_HWM[@]}")") MiB; after /v1/volumes and /v1/status VmRSS $(mib "$(median "${R2_RSS[@]}")") MiB, VmHWM $(mib "$(median "${R2_HWM[@]}")") MiB (VmRSS KiB per run: ${R_RSS[*]} / ${R2_RSS[*]}; $threads threads)"
}
R_RSS=() R_HWM=() R2_RSS=() R2_HWM=()
for i in $(seq "$RUNS"); do
  one_run SCRUB_RATE=0
  R_RSS+=("$rss"); R_HWM+=("$hwm"); R2_RSS+=("$rss2"); R2_HWM+=("$hwm2")
done
shards=$(python3 -c "import json; print(json.load(open('$WORK/status.json'))['shards'])")
[ "$shards" = "$COUNT" ] || { echo "the daemon sees $shards shards, not $COUNT" >&2; exit 1; }
machine
echo "store: $shards shards of $SIZE bytes, filled in ${fill}s"
report "scrubber off (SCRUB_RATE=0)"
off_rss=$(median "${R2_RSS[@]}")
R_RSS=() R_HWM=() R2_RSS=() R2_HWM=()
for i in $(seq "$RUNS"); do
  one_run  # the default SCRUB_RATE
  R_RSS+=("$rss"); R_HWM+=("$hwm"); R2_RSS+=("$rss2"); R2_HWM+=("$hwm2")
done
scrubbed=$(python3 -c "import json; s=json.load(open('$WORK/status.json'))['scrub']; print(s['bytes_verified'], s['rate_bytes_per_sec'])")
report "default scrubber (rate ${scrubbed#* } B/s, ${scrubbed% *} bytes verified by the last /v1/status)"
echo "$COUNT shards: idle dfrpd VmRSS $(mib "$off_rss") MiB with the scrubber off = $(python3 -c "print(f'{$off_rss*1024/$COUNT:.1f}')") bytes per shard; $(mib "$(median "${R2_RSS[@]}")") MiB with the default scrubber"
