#!/usr/bin/env bash
# End-to-end tests of dfrp-storage's volume commands on the real binary: pause/resume,
# pause-migrate, the dd path (pause, raw copy, resume --path), retire-source, add-drive,
# rebuild-index, a real out-of-space file system (tmpfs), missing and foreign volumes, and
# random bit flips.
#
#   bash tests/cli/volume_cli_test.sh path/to/dfrp-storage
#
# Prints "ok - NAME" or "not ok - NAME: details" per check, then "N passed, M failed".
# Needs bash, coreutils, python3; the tmpfs checks need root (mount), as CI has.

set -u
set -o pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/dfrp-storage" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-volume-test.XXXXXX")
MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib.sh
source "$HERE/lib.sh"
isolate_from_caller "$1"

echo "# dfrp-storage volume tests: $BIN"
F=$T/files
mkdir -p "$F"
for i in 1 2 3 4 5 6; do mkfile "$F/f$i" $((i * 70001)) "$i"; done
mkfile "$F/big" 3000000 9

# ids_of FILE... : writes the files one batch each and prints "id file" lines.
store_files() {
  local f
  for f in "$@"; do
    ds write-shard -q "$f"
    [[ $RC -eq 0 ]] || { echo "write of $f failed: $(last)" >&2; return 1; }
    echo "$OUT $f"
  done
}

# all_read_back LIST : every "id file" line reads back byte for byte.
all_read_back() {
  local id f
  while read -r id f; do
    "$BIN" --config "$C" read-shard "$id" 2>/dev/null | cmp -s - "$f" || return 1
  done <"$1"
}

###############################################################################
# 1. pause, resume, pause-storage, resume-storage
###############################################################################
new_store pr 2M 16M
store_files "$F/f1" >"$T/pr.ids"
ds pause 0 --reason "disk swap"
expect_rc "pause 0 exits 0" 0
ds --json list-volumes
check "a paused volume is listed as paused, with its reason and the way out" \
  jtrue 'j[0]["state"] == "paused" and "disk swap" in j[0]["problem"] and "resume 0" in j[0]["problem"] and j[1]["state"] == "active"'
ds --json write-shard "$F/f2"
check "writes skip a paused volume" jtrue 'j[0]["volume"] == 1'
check "reads of a paused volume go on" all_read_back "$T/pr.ids"
ds pause-storage
ds write-shard "$F/f3"
expect_err "with every volume paused a write exits 5 and says so" 5 "paused|resume"
ds resume-storage
ds --json list-volumes
check "resume-storage resumes every volume" jtrue 'all(v["state"] == "active" for v in j)'
ds --json write-shard "$F/f3"
check "after resume the first volume takes writes again" jtrue 'j[0]["volume"] == 0'
ds pause 9
expect_err "pause of an unknown volume exits 4 naming it" 4 "volume 9" "list-volumes"
ds resume 0 --path
expect_rc "resume --path without a value is a usage error" 2

###############################################################################
# 2. pause-migrate
###############################################################################
new_store mig 2M 16M
store_files "$F/f1" "$F/f2" "$F/big" "$F/f4" >"$T/mig.ids"
ds --json pause-migrate 0 --to "$T/newdrive"
expect_rc "pause-migrate exits 0" 0
check "pause-migrate --json reports the totals" \
  jtrue 'j["volume"] == 0 and j["to"].endswith("newdrive") and j["shards_verified"] == 3 and j["bytes"] > 490000 and j["resumed"] and not j["already_there"]'
ds --json list-volumes
check "the volume lives at the new path, active, and remembers where it came from" \
  jtrue 'j[0]["path"].endswith("newdrive") and j[0]["state"] == "active" and j[0]["moved_from"].endswith("/d0")'
check "every shard reads back after the move" all_read_back "$T/mig.ids"
check "the old folder keeps its segments but no live header" \
  test -e "$S/d0/segment-000000000001.dfrp" -a ! -e "$S/d0/DFRP-VOLUME" -a -e "$S/d0/DFRP-VOLUME.moved"
check "the copy is byte for byte" cmp -s "$S/d0/segment-000000000001.dfrp" "$T/newdrive/segment-000000000001.dfrp"
ds --json pause-migrate 0 --to "$T/newdrive"
check "the same command again says it is already done" jtrue 'j["already_there"]'
ds --json write-shard "$F/f5"
check "new writes land at the new path" jtrue 'j[0]["volume"] == 0'
echo "$(jget 'j[0]["shard_id"]') $F/f5" >>"$T/mig.ids"
ds retire-source 0
expect_rc "retire-source exits 0" 0
check "retire-source deleted the old segments" test ! -e "$S/d0/segment-000000000001.dfrp"
check "every shard still reads back" all_read_back "$T/mig.ids"
mkdir -p "$T/occupied"
echo "photos" >"$T/occupied/holiday.txt"
before=$(snapshot)
ds pause-migrate 1 --to "$T/occupied"
expect_err "migrating into a non-empty folder exits 2 naming what is there" 2 "not empty" "holiday.txt"
check "a refused migration changed nothing" test "$before" == "$(snapshot)"
ds pause-migrate 1 --to "$S/d1/sub"
expect_err "migrating into the volume itself exits 2" 2 "inside"
check "... and created nothing there" test ! -e "$S/d1/sub"
ds pause-migrate 1 --to "$T/newdrive"
expect_err "migrating onto another volume's folder exits 2" 2 "volume 0"
ds pause-migrate 0 --to "$S/nonexist/../d1"
expect_err "another volume's folder spelled with '..' is refused (exit 2)" 2 "volume 1"
ln -s "$S/d1" "$T/alias-d1"
ds pause-migrate 0 --to "$T/alias-d1"
expect_err "a symlink to another volume's folder is refused (exit 2)" 2 "volume 1"
check "... and nothing was created or changed" test "$before" == "$(snapshot)" -a ! -e "$S/nonexist"
mv "$S/state" "$S/state-lost"
ds init-storage
expect_err "with STATE_DIR lost after a move, init-storage refuses the old folder and names the new one" \
  2 "moved to" "newdrive"
check "... and does not lay out an empty volume there" test ! -e "$S/d0/DFRP-VOLUME"
rm -rf "$S/state"
mv "$S/state-lost" "$S/state"

###############################################################################
# 2b. kill -9 in the middle of pause-migrate, then the same command again
###############################################################################
mig_S=$S mig_C=$C
new_store k9 256M 16M
for i in 1 2 3; do mkfile "$F/k$i" $((24 << 20)) $((i + 50)); done
store_files "$F/k1" "$F/k2" "$F/k3" "$F/f1" >"$T/k9.ids"
killed_ok=0
for i in 1 2 3 4 5; do
  "$BIN" --config "$C" -q pause-migrate 0 --to "$T/k9dest$i" >/dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 250 + 10))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  ds --json list-volumes
  path=$(jget 'j[0]["path"]')
  all_read_back "$T/k9.ids" || { not_ok "kill -9 during pause-migrate, round $i" "a shard does not read back (volume at $path)"; continue; }
  ds --json pause-migrate 0 --to "$T/k9dest$i"
  if [[ $RC -eq 0 ]] && jtrue 'j["to"].endswith("k9dest'"$i"'")' && all_read_back "$T/k9.ids"; then
    killed_ok=$((killed_ok + 1))
  else
    not_ok "pause-migrate run again after kill -9, round $i" "$(last)"
  fi
done
check "after kill -9 at a random moment of pause-migrate, every shard read back and the same command finished the move (5 rounds)" \
  test "$killed_ok" -eq 5
ds --json list-volumes
check "the volume ends active at the last destination" \
  jtrue 'j[0]["path"].endswith("k9dest5") and j[0]["state"] == "active"'
S=$mig_S C=$mig_C

###############################################################################
# 3. the dd path: pause, raw copy, resume --path
###############################################################################
ds pause 1
mkdir -p "$T/ddcopy"
for f in "$S/d1"/*; do
  dd if="$f" of="$T/ddcopy/$(basename "$f")" bs=1M conv=fsync status=none
done
cp -a "$T/ddcopy" "$T/badcopy"
seg=$(ls "$T/badcopy"/segment-* | head -1)
flip "$seg" 5000
ds resume 1 --path "$T/badcopy"
expect_err "resume --path refuses a copy with a flipped byte (exit 3) and keeps the old path" 3 \
  "refused" "stays at"
ds --json list-volumes
check "after the refusal volume 1 is still paused at its old path" \
  jtrue 'j[1]["path"].endswith("/d1") and j[1]["state"] == "paused"'
ds resume 1 --path "$T/ddcopy"
expect_rc "resume --path takes a good dd copy" 0
ds --json list-volumes
check "volume 1 now lives at the dd copy and takes writes" \
  jtrue 'j[1]["path"].endswith("ddcopy") and j[1]["state"] == "active"'
check "every shard reads back after the dd path" all_read_back "$T/mig.ids"

###############################################################################
# 4. rebuild-index and a damaged index
###############################################################################
ds --json rebuild-index
check "rebuild-index reads far less than the payload" \
  jtrue 'j["shards"] == 5 and j["bytes_read"] * 100 < j["payload_bytes"] and j["damage"] == []'
rm -f "$S/state/index.sqlite" "$S/state/index.sqlite-wal" "$S/state/index.sqlite-shm"
check "with the index deleted every shard reads back" all_read_back "$T/mig.ids"
head -c 20000 /dev/urandom >"$S/state/index.sqlite"
rm -f "$S/state/index.sqlite-wal" "$S/state/index.sqlite-shm"
ds verify-shard --all
expect_rc "with the index overwritten by garbage verify-shard --all passes" 0
check "... and every shard reads back" all_read_back "$T/mig.ids"

###############################################################################
# 5. add-drive
###############################################################################
new_store add 256K 512K
ds add-drive "$S/d2" 8M
expect_err "add-drive of a missing folder exits 2 and suggests --create" 2 "--create"
check "a refused add-drive leaves the config alone" bash -c "! grep -q DRIVE_2 '$C'"
ds add-drive "$S/d2" 8M --create
expect_rc "add-drive --create exits 0" 0
check "add-drive wrote DRIVE_2 and QUOTA_2 to the config" grep -q 'DRIVE_2 = ' "$C"
ds --json write-shard "$F/f1" "$F/f2" "$F/f3" "$F/f4" "$F/f5" "$F/f6"
check "new writes spill onto the added drive once the others are full" \
  jtrue 'sorted(set(s["volume"] for s in j)) == [0, 1, 2]'
ds add-drive "$S/d2" 8M
expect_err "adding the same folder twice exits 2" 2 "already DRIVE_2"

###############################################################################
# 6. missing and foreign volumes
###############################################################################
new_store miss 2M 16M
store_files "$F/f1" >"$T/miss.ids"
read -r miss_id _ <"$T/miss.ids"
mv "$S/d0" "$S/d0-unplugged"
ds read-shard "$miss_id"
expect_err "a shard on a missing volume is unavailable (exit 4) naming the volume" 4 "volume 0" "missing"
ds --json write-shard "$F/f2"
check "writes go to another volume, never to the missing path" \
  jtrue 'j[0]["volume"] == 1'
check "nothing was created at the missing path" test ! -e "$S/d0"
ds rebuild-index
check "rebuild-index with a volume missing keeps its entries and says so" \
  grep -q "volume 0 was not scanned" "$T/err"
mv "$S/d0-unplugged" "$S/d0"
check "... and once the drive is back its shard reads" all_read_back "$T/miss.ids"
mv "$S/d0" "$S/d0-unplugged"
new_store other 2M 2M
mv "$S/d0" "$T/miss/d0"  # the other store's volume where volume 0 of "miss" should be
S=$T/miss
C=$S/dfrp.toml
ds read-shard "$miss_id"
expect_err "a folder holding another store's volume reads as missing (exit 4)" 4 "volume 0"
ds --json list-volumes
check "list-volumes shows it missing with the reason" \
  jtrue 'j[0]["state"] == "missing" and "another store" in j[0]["problem"]'

###############################################################################
# 7. a real out-of-space file system (tmpfs)
###############################################################################
mkdir -p "$T/tmpfs"
if mount -t tmpfs -o size=16m,nr_inodes=2 tmpfs "$T/tmpfs" 2>/dev/null; then
  MOUNTS+=("$T/tmpfs")
  S=$T/enospc
  C=$S/dfrp.toml
  mkdir -p "$S/d1"
  cat >"$C" <<EOF
DRIVE_0 = "$T/tmpfs"
QUOTA_0 = "64M"
DRIVE_1 = "d1"
QUOTA_1 = "64M"
STATE_DIR = "state"
EOF
  ds init-storage
  expect_rc "init-storage on a tmpfs with two inodes (the root and the volume header)" 0
  ds write-shard "$F/f1"
  expect_err "a write the file system refuses (ENOSPC: no inode left) exits 5 naming the volume" 5 \
    "volume 0" "space" "marked full"
  ds --json list-volumes
  check "the volume is marked full, with the way out" \
    jtrue 'j[0]["state"] == "full" and "resume 0" in j[0]["problem"] and j[0]["shards"] == 0'
  check "nothing was left on the full file system" bash -c "[[ \$(ls -A '$T/tmpfs') == DFRP-VOLUME ]]"
  ds --json write-shard "$F/f1"
  check "the next write goes to the next volume" jtrue 'j[0]["volume"] == 1'
  ds verify-shard --all
  expect_rc "the store verifies after ENOSPC" 0
  umount "$T/tmpfs"
  # Bytes instead of inodes: a file system smaller than the quota is never overfilled.
  mount -t tmpfs -o size=1m tmpfs "$T/tmpfs"
  S=$T/small
  C=$S/dfrp.toml
  mkdir -p "$S/d1"
  sed -e "s|enospc|small|" "$T/enospc/dfrp.toml" >"$C"
  ds init-storage
  ds --json write-shard "$F/f1" "$F/big"
  check "a shard larger than the file system's free space goes to the next volume" \
    jtrue '[s["volume"] for s in j] == [0, 1]'
else
  echo "# SKIP tmpfs checks: mount is not permitted here (needs root)"
fi

###############################################################################
# 8. random bit flips
###############################################################################
new_store flips 16M 16M
: >"$T/flips.ids"
for i in $(seq 1 24); do
  mkfile "$F/r$i" $((i * 7919 % 50000 + 1)) $((i + 100))
  ds write-shard -q "$F/r$i" --leaf-size 1024
  echo "$OUT $F/r$i" >>"$T/flips.ids"
done
: >"$T/flips.places"
while read -r id f; do
  ds --json stat-shard "$id"
  echo "$id $(jget 'j["offset"]') $(jget 'j["record_len"]') $f" >>"$T/flips.places"
done <"$T/flips.ids"
seg=$S/d0/segment-000000000001.dfrp
flip "$S/d0/DFRP-VOLUME" 30  # the volume header too: the segments still identify the volume
# Flip 12 random bytes anywhere in the segment (headers, metadata, payloads, trees, commits).
$PY - "$seg" "$T/flips.places" "$T/flips.expected" <<'EOF'
import random, sys
seg, places, out = sys.argv[1:4]
data = bytearray(open(seg, "rb").read())
r = random.Random(20261126)
hit = set()
rows = [l.split() for l in open(places)]
for _ in range(12):
    at = r.randrange(len(data))
    data[at] ^= 1 << r.randrange(8)
    for sid, off, ln, _f in rows:
        if int(off) <= at < int(off) + int(ln):
            hit.add(sid)
open(seg, "wb").write(data)
open(out, "w").write("".join(s + "\n" for s in sorted(hit)))
EOF
ds verify-shard --all
reported=$(grep '^CORRUPT' "$T/out" | awk '{print $2}' | sort)
check "verify-shard --all exits 3 after bit flips" test "$RC" -eq 3
check "verify-shard --all reports exactly the shards whose bytes were flipped ($(wc -l <"$T/flips.expected"))" \
  test "$reported" == "$(cat "$T/flips.expected")"
bad_reads=0
wrong=0
while read -r id off len f; do
  "$BIN" --config "$C" read-shard "$id" >"$T/got" 2>/dev/null
  rc=$?
  if grep -qx "$id" "$T/flips.expected"; then
    [[ $rc -eq 3 ]] || bad_reads=$((bad_reads + 1))
    # Whatever came out before the failure is a prefix of the original: never a wrong byte.
    cmp -s "$T/got" <(head -c "$(stat -c %s "$T/got")" "$f") || wrong=$((wrong + 1))
  else
    [[ $rc -eq 0 ]] && cmp -s "$T/got" "$f" || bad_reads=$((bad_reads + 1))
  fi
done <"$T/flips.places"
check "reads of flipped shards exit 3 and the others read back intact" test "$bad_reads" -eq 0
check "no read returned a wrong byte" test "$wrong" -eq 0
ds write-shard "$F/f1"
check "a writer rewrites the damaged volume header from the segment headers" \
  grep -q "rewrote the damaged volume header of volume 0" "$T/err"
check "... and it decodes again" bash -c "$BIN --config '$C' --json list-volumes | grep -q '\"state\": \"active\"'"

echo "$PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
