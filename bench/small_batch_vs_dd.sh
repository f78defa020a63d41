#!/usr/bin/env bash
# 100,000 shards of 4 KiB in one write-shard batch vs dd conv=fdatasync of the same 400 MB as
# one file. Target (issue 2): ratio dd/dfrp >= 0.5.
#   COUNT=100000 RUNS=3 bench/small_batch_vs_dd.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-100000}
mkdir -p "$WORK/in"
python3 - "$WORK" "$COUNT" <<'PY'
import os, sys
work, count = sys.argv[1], int(sys.argv[2])
data = os.urandom(4096 * count)
with open(f"{work}/list.txt", "w") as lst:
    for i in range(count):
        p = f"{work}/in/f{i:07d}"
        with open(p, "wb") as f:
            f.write(data[i * 4096:(i + 1) * 4096])
        lst.write(p + "\n")
with open(f"{work}/all.bin", "wb") as f:
    f.write(data)
PY
find "$WORK/in" -type f -exec cat {} + > /dev/null
dd_t=() dfrp_t=()
for i in $(seq "$RUNS"); do
  new_store s$i 2G
  sync; sleep 1
  dd_t+=("$(seconds dd if="$WORK/all.bin" of="$WORK/s$i/d0/dd.out" bs=1M conv=fdatasync)")
  rm -f "$WORK/s$i/d0/dd.out"; sync; sleep 1
  dfrp_t+=("$(seconds "$S" --config "$CFG" -q write-shard --files-from "$WORK/list.txt")")
  rm -rf "$WORK/s$i"
done
d=$(median "${dd_t[@]}"); f=$(median "${dfrp_t[@]}")
machine
echo "$COUNT x 4 KiB in one batch: dd conv=fdatasync ${d}s (runs ${dd_t[*]}), dfrp ${f}s (runs ${dfrp_t[*]}), ratio dd/dfrp $(ratio "$d" "$f")"
