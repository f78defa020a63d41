#!/usr/bin/env bash
# verify-shard of one large shard, page cache warm, vs sha256sum of the same bytes.
# Target (issue 2): ratio sha256sum/dfrp >= 1.5 on 2 cores. Also times read-shard > /dev/null.
#   SIZE_MB=1024 RUNS=3 bench/verify_vs_sha256sum.sh
source "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-1024}
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/input"
new_store v $((SIZE_MB * 2))M
id=$("$S" --config "$CFG" -q write-shard "$WORK/input")
cat "$WORK/input" "$WORK"/v/d0/segment-* > /dev/null  # warm the page cache
sha_t=() ver_t=() read_t=()
for i in $(seq "$RUNS"); do
  sha_t+=("$(seconds sha256sum "$WORK/input")")
  ver_t+=("$(seconds "$S" --config "$CFG" -q verify-shard "$id")")
  read_t+=("$(seconds "$S" --config "$CFG" read-shard "$id")")
done
s=$(median "${sha_t[@]}"); v=$(median "${ver_t[@]}"); r=$(median "${read_t[@]}")
machine
echo "verify ${SIZE_MB} MiB (warm): sha256sum ${s}s, dfrp verify-shard ${v}s, ratio sha256sum/dfrp $(ratio "$s" "$v"); read-shard to /dev/null ${r}s ($(python3 -c "print(f'{$SIZE_MB/$r:.0f}')") MiB/s)"
