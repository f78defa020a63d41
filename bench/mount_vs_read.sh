#!/usr/bin/env bash
# Sequential read of one large shard through the FUSE view (`cat` of /shards/<id>) against
# `read-shard` of the same shard to /dev/null, page cache warm, alternating, median of RUNS.
# Target (issue 4): read-shard time / mount time >= 0.7. Then random 4 KiB reads through the
# mount (POSIX_FADV_RANDOM, distinct leaves, each verified) for SECONDS: reads per second.
# Needs root and /dev/fuse. MOUNT_OPTS are passed to `mount` (--page-cache: the kernel's page
# cache instead of direct I/O).
#   SIZE_MB=1024 RUNS=3 SECONDS_RANDOM=10 [MOUNT_OPTS=--page-cache] bench/mount_vs_read.sh
source "$(dirname "$0")/lib.sh"
SIZE_MB=${SIZE_MB:-1024}
SECONDS_RANDOM=${SECONDS_RANDOM:-10}
MNT=$WORK/mnt
trap 'fusermount3 -u "$MNT" 2>/dev/null; sleep 0.5; rm -rf "$WORK"' EXIT
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/input"
new_store m $((SIZE_MB * 2))M
id=$("$S" --config "$CFG" -q write-shard "$WORK/input")
rm -f "$WORK/input"
mkdir -p "$MNT"
# shellcheck disable=SC2086
"$S" --config "$CFG" -q mount "$MNT" ${MOUNT_OPTS:-} &
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "mount did not come up" >&2; exit 1; }
cat "$WORK"/m/d0/segment-* > /dev/null  # warm the page cache
mount_t=() read_t=()
for i in $(seq "$RUNS"); do
  mount_t+=("$(seconds cat "$MNT/shards/$id")")
  read_t+=("$(seconds "$S" --config "$CFG" read-shard "$id")")
done
m=$(median "${mount_t[@]}"); r=$(median "${read_t[@]}")
machine
echo "mount ${MOUNT_OPTS:-(direct I/O)}; sequential read of ${SIZE_MB} MiB (warm): read-shard > /dev/null ${r}s (runs ${read_t[*]}), cat through the mount ${m}s (runs ${mount_t[*]}), ratio read-shard/mount $(ratio "$r" "$m") ($(python3 -c "print(f'{$SIZE_MB/$m:.0f}')") MiB/s through the mount)"
python3 - "$MNT/shards/$id" "$SECONDS_RANDOM" <<'PY'
import os, random, sys, time
path, secs = sys.argv[1], float(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
leaves = os.fstat(fd).st_size // 4096
order = list(range(leaves)); random.Random(1).shuffle(order)
n, t0 = 0, time.monotonic()
while time.monotonic() - t0 < secs and n < len(order):
    if len(os.pread(fd, 4096, order[n] * 4096)) != 4096: sys.exit("short read")
    n += 1
dt = time.monotonic() - t0
print(f"random 4 KiB reads through the mount (distinct leaves, each verified): {n} in {dt:.1f}s = {n/dt:.0f} reads/s")
PY
