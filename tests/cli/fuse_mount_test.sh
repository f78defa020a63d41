#!/usr/bin/env bash
# End-to-end test of `dfrp-storage mount`, the read-only FUSE view: mounts for real (needs root
# and /dev/fuse; exits 77, which ctest reports as skipped, when either is missing), compares
# every shard through the mount with the original files, and checks that a flipped byte fails
# the reads of its leaf only, that the failure is logged, and that SIGINT, SIGTERM and
# fusermount3 -u all unmount cleanly.
#
#   bash tests/cli/fuse_mount_test.sh path/to/dfrp-storage
#
# Every command that touches the mount runs under `timeout`, and an EXIT trap unmounts
# (lazily if it must) and kills the server, so a failure cannot leave a mount or hang CI.
set -u
set -o pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/dfrp-storage" >&2
  exit 2
fi
if [[ $(id -u) -ne 0 || ! -c /dev/fuse ]] || ! command -v fusermount3 >/dev/null; then
  echo "SKIP: needs root, /dev/fuse and fusermount3 (apt-get install fuse3)"
  exit 77
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-fuse-test.XXXXXX")
MNT=$T/mnt
SPID=""
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then
    timeout 10 fusermount3 -u "$MNT" 2>/dev/null || timeout 10 fusermount3 -uz "$MNT" 2>/dev/null ||
      umount -l "$MNT" 2>/dev/null
  fi
  if [[ -n $SPID ]]; then
    kill -KILL "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT
cp "$1" "$T/dfrp-storage" || exit 2
BIN=$T/dfrp-storage
while IFS= read -r name; do
  case $name in
    DFRP_CONFIG | DFRP_FUSE_DEVICE | LEAF_SIZE | VECTOR_DIM | STATE_DIR | DRIVE_[0-9]* | QUOTA_[0-9]*) unset "$name" ;;
  esac
done < <(compgen -e)
mkdir -p "$T/cwd" "$MNT"
cd "$T/cwd" || exit 2
# shellcheck source=lib.sh
source "$HERE/lib.sh"

TO="timeout 30"

# start_mount [OPTION...] : runs the server in the background (stderr to $T/mount.err), waits
# until the view is mounted (at most 15 s). Sets SPID.
start_mount() {
  : >"$T/mount.err"
  "$BIN" --config "$C" mount "$MNT" "$@" 2>"$T/mount.err" &
  SPID=$!
  local i
  for i in $(seq 150); do
    mountpoint -q "$MNT" && return 0
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# stop_server : waits (at most 15 s) for the server to exit; sets RC to its exit status.
stop_server() {
  local i
  for i in $(seq 150); do
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  local hung=0 rc
  if kill -0 "$SPID" 2>/dev/null; then
    hung=1
    kill -KILL "$SPID"
  fi
  wait "$SPID" 2>/dev/null
  rc=$?
  RC=$rc
  cp "$T/mount.err" "$T/err"  # what expect_rc shows when the exit status is not the one expected
  [[ $hung -eq 0 ]] || RC=124
  SPID=""
}

F=$T/files
mkdir -p "$F"
mkfile "$F/a" 200003 41    # 49 leaves at 4 KiB
mkfile "$F/b" 1500000 42   # spills onto volume 1
mkfile "$F/c" 4096 43      # one leaf exactly
: >"$F/empty"
mkfile "$F/d" 100000 44
new_store m 1M 8M
ds -q write-shard "$F/a" "$F/b" "$F/c" "$F/empty" "$F/d"
expect_rc "write-shard of five files" 0
mapfile -t IDS <<<"$OUT"
NAMES=(a b c empty d)

###############################################################################
# A missing FUSE device is a clear error, and nothing is mounted
###############################################################################
DFRP_FUSE_DEVICE=$T/no-such-device $TO "$BIN" --config "$C" mount "$MNT" >"$T/out" 2>"$T/err"
RC=$?
ERR=$(cat "$T/err")
expect_err "mount with a missing FUSE device exits 4" 4 "cannot open the FUSE device" "no-such-device" "modprobe fuse"
check "nothing was mounted" bash -c "! mountpoint -q '$MNT'"
ds mount "$T/not-a-folder"
expect_err "mount on a missing folder exits 2" 2 "not a folder"

###############################################################################
# Contents
###############################################################################
if ! start_mount; then
  not_ok "mount comes up" "$(cat "$T/mount.err")"
  echo "$PASS passed, $FAIL failed"
  exit 1
fi
ok "mount comes up"
check "the mount point lists shards, meta and volumes" \
  test "$($TO ls "$MNT" | tr '\n' ' ')" = "meta shards volumes "
check "/shards lists every shard" \
  test "$($TO ls "$MNT/shards" | sort)" = "$(printf '%s\n' "${IDS[@]}" | sort)"
for i in "${!IDS[@]}"; do
  id=${IDS[$i]} f=$F/${NAMES[$i]}
  check "cmp through the mount: ${NAMES[$i]}" $TO cmp "$MNT/shards/$id" "$f"
  check "sha256sum through the mount: ${NAMES[$i]}" test \
    "$($TO sha256sum <"$MNT/shards/$id" | cut -d' ' -f1)" = "$(sha256sum <"$f" | cut -d' ' -f1)"
  check "stat size through the mount: ${NAMES[$i]}" test "$(stat -c %s "$MNT/shards/$id")" = "$(stat -c %s "$f")"
  ds --json stat-shard "$id"
  vol=$(jget "j['volume']")
  root=$(jget "j['merkle_root']")
  check "/meta/${NAMES[$i]}.json is the shard's metadata" \
    jtrue "j['shard_id']=='$id' and j['merkle_root']=='$root' and j['size']==$(stat -c %s "$f")" \
    "$MNT/meta/$id.json"
  check "/volumes/$vol holds ${NAMES[$i]} with the same bytes" $TO cmp "$MNT/volumes/$vol/$id" "$f"
done
check "/volumes lists both volumes" test "$($TO ls "$MNT/volumes" | tr '\n' ' ')" = "0 1 "
check "a shard is listed under its own volume only" \
  test "$(ls "$MNT/volumes/0" "$MNT/volumes/1" | grep -c "${IDS[1]}")" = 1
check "the view is read-only" bash -c "! $TO touch '$MNT/shards/new' 2>/dev/null"
check "an existing file cannot be opened for writing" \
  bash -c "! $TO dd if=/dev/zero of='$MNT/shards/${IDS[0]}' bs=1 count=1 conv=notrunc status=none 2>/dev/null"
check "an unknown name is not there" bash -c "! $TO stat '$MNT/shards/nope' 2>/dev/null"

###############################################################################
# A flipped byte in leaf 20 of shard a: EIO for that leaf only
###############################################################################
A=${IDS[0]}
ds --json stat-shard "$A"
SEG=$(jget "j['segment']")
OFF=$(jget "j['offset']")
MLEN=$(u32le "$SEG" $((OFF + 12)))
flip "$SEG" $((OFF + 96 + MLEN + 20 * 4096 + 1234))
leaf() { $TO dd if="$MNT/shards/$A" bs=4096 skip="$1" count="${2:-1}" status=none 2>"$T/dd.err"; }
leaf 20 >"$T/leaf20"
RC=$?
check "reading the damaged leaf fails" test $RC -ne 0
check "the failure is EIO" grep -q "Input/output error" "$T/dd.err"
check "no byte of the damaged leaf came out" test ! -s "$T/leaf20"
check "the server logged the shard and the leaf" grep -q "$A.*leaf 20 " "$T/mount.err"
leaf 0 20 >"$T/before"
check "the leaves before it still read, exactly" cmp -s "$T/before" <(head -c $((20 * 4096)) "$F/a")
leaf 21 100 >"$T/after"
check "the leaves after it still read, exactly" cmp -s "$T/after" <(tail -c +$((21 * 4096 + 1)) "$F/a")
leaf 19 >"$T/l19"
check "the leaf just before it reads again after the failure" \
  cmp -s "$T/l19" <(tail -c +$((19 * 4096 + 1)) "$F/a" | head -c 4096)
check "cat of the whole damaged file fails" bash -c "! $TO cat '$MNT/shards/$A' >/dev/null 2>&1"
for i in 1 2 4; do
  check "the other shards still read: ${NAMES[$i]}" $TO cmp "$MNT/shards/${IDS[$i]}" "$F/${NAMES[$i]}"
done
flip "$SEG" $((OFF + 96 + MLEN + 20 * 4096 + 1234))  # repair
check "once repaired, the leaf reads again" bash -c "cmp -s <($TO dd if='$MNT/shards/$A' bs=4096 skip=20 count=1 status=none) <(tail -c +$((20 * 4096 + 1)) '$F/a' | head -c 4096)"

###############################################################################
# Unmounting: fusermount3 -u, SIGTERM, SIGINT
###############################################################################
$TO fusermount3 -u "$MNT"
stop_server
expect_rc "after fusermount3 -u the server exits 0" 0
check "fusermount3 -u unmounted it" bash -c "! mountpoint -q '$MNT'"
for sig in TERM INT; do
  if start_mount; then
    check "remounted for SIG$sig" $TO cmp "$MNT/shards/${IDS[2]}" "$F/c"
    kill -"$sig" "$SPID"
    stop_server
    expect_rc "after SIG$sig the server exits 0" 0
    check "SIG$sig unmounted it" bash -c "! mountpoint -q '$MNT'"
  else
    not_ok "remount for SIG$sig" "$(cat "$T/mount.err")"
  fi
done

###############################################################################
# Direct I/O (the default) and --page-cache: what a program that maps a shard gets
###############################################################################
MAPS='import mmap, sys
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, flags=int(sys.argv[3]), prot=mmap.PROT_READ)
sys.exit(0 if m[:] == open(sys.argv[2], "rb").read() else 1)'
PRIVATE=$(python3 -c 'import mmap; print(mmap.MAP_PRIVATE)')
SHARED=$(python3 -c 'import mmap; print(mmap.MAP_SHARED)')
# bytes_read SHARD : the verified bytes read from SHARD that usage.db counts (all wallets).
bytes_read() {
  python3 -c 'import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT coalesce(sum(bytes_read), 0) FROM io WHERE shard = ?",
                 (uuid.UUID(sys.argv[2]).bytes,)).fetchone()[0])' "$S/state/usage.db" "$1"
}
READ_BEFORE=$(bytes_read "${IDS[4]}")
if start_mount; then
  check "reads of 1 MiB through the default mount: d" $TO dd if="$MNT/shards/${IDS[4]}" bs=1M status=none of="$T/d.back"
  check "... are the file's bytes" cmp -s "$T/d.back" "$F/d"
  check "a shard maps MAP_PRIVATE through the default mount" $TO python3 -c "$MAPS" "$MNT/shards/${IDS[0]}" "$F/a" "$PRIVATE"
  check "MAP_SHARED is refused with direct I/O (use --page-cache)" bash -c "! $TO python3 -c '$MAPS' '$MNT/shards/${IDS[0]}' '$F/a' $SHARED 2>/dev/null"
  $TO fusermount3 -u "$MNT"
  stop_server
  READ_AFTER=$(bytes_read "${IDS[4]}")
  check "usage.db counts the bytes the mount served from d (before $READ_BEFORE, after $READ_AFTER)" \
    test "$((READ_AFTER - READ_BEFORE))" -eq 100000
else
  not_ok "remount for mmap" "$(cat "$T/mount.err")"
fi
if start_mount --page-cache; then
  check "--page-cache: cmp through the mount" $TO cmp "$MNT/shards/${IDS[1]}" "$F/b"
  check "--page-cache: a shard maps MAP_SHARED" $TO python3 -c "$MAPS" "$MNT/shards/${IDS[0]}" "$F/a" "$SHARED"
  $TO fusermount3 -u "$MNT"
  stop_server
  expect_rc "--page-cache: after fusermount3 -u the server exits 0" 0
else
  not_ok "mount --page-cache comes up" "$(cat "$T/mount.err")"
fi

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
