#!/usr/bin/env bash
# End-to-end tests of the dfrp-storage command line.
#
#   bash tests/cli/storage_cli_test.sh path/to/dfrp-storage
#
# Each check prints "ok - NAME" or "not ok - NAME: details"; the last line is
# "N passed, M failed" and the exit status is non-zero when anything failed.
# Needs only bash, coreutils, python3 and util-linux (flock). Works as root.

set -u
set -o pipefail

if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/dfrp-storage" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-cli-test.XXXXXX")
BG_PIDS=()
cleanup() {
  local p
  touch "$T/release" 2>/dev/null
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$T"
}
trap cleanup EXIT
# shellcheck source=lib.sh
source "$HERE/lib.sh"
isolate_from_caller "$1"

echo "# dfrp-storage CLI tests: $BIN"
echo "# temp folder: $T"

# Input files.
F=$T/files
mkdir -p "$F"
: >"$F/empty"
printf 'x' >"$F/one"
mkfile "$F/leaf" 4096 1      # exactly one leaf at the default LEAF_SIZE
mkfile "$F/leafplus" 4097 2  # one leaf and one byte
mkfile "$F/multi" 3000000 3  # 3 MB, many leaves
mkfile "$F/small" 20000 4

###############################################################################
# 1. init-storage and list-volumes
###############################################################################
S=$T/main
C=$S/dfrp.toml
mkdir -p "$S"
cat >"$C" <<'EOF'
DRIVE_0 = "d0"
QUOTA_0 = "1M"
DRIVE_1 = "d1"
QUOTA_1 = 16777216
STATE_DIR = "state"
VECTOR_DIM = 3
EOF

ds init-storage
expect_err "init-storage refuses missing drive folders without --create" 2 "d0" "create"
check "init-storage without --create made no folders" test ! -e "$S/d0" -a ! -e "$S/d1"

ds init-storage --create
expect_rc "init-storage --create exits 0" 0
check "init-storage --create reports both volumes initialized" \
  grep -q "initialized volume 0" "$T/out"
check "init-storage --create laid out DFRP-VOLUME on each drive" \
  test -s "$S/d0/DFRP-VOLUME" -a -s "$S/d1/DFRP-VOLUME"
check "DFRP-VOLUME is a 64-byte header with magic DFRPVOLM" \
  test "$(stat -c %s "$S/d0/DFRP-VOLUME")" = 64 -a "$(head -c 8 "$S/d0/DFRP-VOLUME")" = DFRPVOLM
check "init-storage --create made the state folder" test -d "$S/state"

ds list-volumes
expect_rc "list-volumes exits 0" 0
if grep -qE '^VOLUME +STATE +QUOTA +USED +FREE +SHARDS +PATH' "$T/out" &&
  grep -qE "^0 +active +1 MiB +0 B +1 MiB +0 +$S/d0\$" "$T/out" &&
  grep -qE "^1 +active +16 MiB +0 B +16 MiB +0 +$S/d1\$" "$T/out"; then
  ok "list-volumes human table shows both volumes"
else
  not_ok "list-volumes human table shows both volumes" "$(last)"
fi

ds --json list-volumes
expect_rc "list-volumes --json exits 0" 0
if jtrue 'len(j) == 2 and all(all(k in v for k in ("index","path","quota","used","free","shards","state")) for v in j)'; then
  ok "list-volumes --json has index, path, quota, used, free, shards, state"
else
  not_ok "list-volumes --json has index, path, quota, used, free, shards, state" "$(last)"
fi
if jtrue "[(v['index'], v['path'], v['quota'], v['used'], v['free'], v['shards'], v['state']) for v in j] == [(0, '$S/d0', 1048576, 0, 1048576, 0, 'active'), (1, '$S/d1', 16777216, 0, 16777216, 0, 'active')]"; then
  ok "list-volumes --json values of a fresh store (relative paths resolved against the config folder)"
else
  not_ok "list-volumes --json values of a fresh store (relative paths resolved against the config folder)" "$(last)"
fi

ds --json init-storage
STORE_ID=$(jget 'j["store_id"]' 2>/dev/null)
ds --json init-storage
expect_rc "init-storage again exits 0" 0
if jtrue "j['store_id'] == '$STORE_ID' and j['new_store'] is False and j['initialized'] == [] and sorted(j['already_initialized']) == [0, 1]"; then
  ok "init-storage is idempotent (same store id, nothing initialized again)"
else
  not_ok "init-storage is idempotent (same store id, nothing initialized again)" "$(last)"
fi
ds init-storage
check "init-storage (human) again says existing store" grep -q "(existing)" "$T/out"

ds --quiet init-storage
if [[ $RC -eq 0 && -z $OUT ]]; then ok "init-storage --quiet exits 0 and prints nothing"; else
  not_ok "init-storage --quiet exits 0 and prints nothing" "$(last)"; fi

###############################################################################
# 2. write-shard / read-shard round trips
###############################################################################
ds write-shard "$F/empty" "$F/one" "$F/leaf" "$F/multi"
expect_rc "write-shard of four files in one call exits 0" 0
LINE_RE="^([0-9a-f-]{36})  ([0-9a-f]{64})  ([0-9]+)  volume ([0-9]+)  (.*)\$"
n=0
human_ok=1
for f in empty one leaf multi; do
  line=$(sed -n "$((n + 1))p" "$T/out")
  if [[ $line =~ $LINE_RE ]]; then
    m=("${BASH_REMATCH[@]}")
    if [[ ! ${m[1]} =~ $UUID7_RE || ${m[3]} != "$(stat -c %s "$F/$f")" || ${m[5]} != "$F/$f" ]] ||
      [[ ${m[2]} != "$(merkle_ref 4096 "$F/$f")" ]]; then
      human_ok=0
    fi
  else
    human_ok=0
  fi
  n=$((n + 1))
done
if [[ $human_ok == 1 && $(wc -l <"$T/out") -eq 4 ]]; then
  ok "write-shard prints id, root, size, volume and file per shard"
else
  not_ok "write-shard prints id, root, size, volume and file per shard" "$(last)"
fi

ds --json write-shard "$F/empty" "$F/one" "$F/leaf" "$F/multi"
expect_rc "write-shard --json exits 0" 0
cp "$T/out" "$T/w.json"
if jtrue 'len(j) == 4 and all(all(k in s for k in ("shard_id","merkle_root","size","leaf_size","volume")) for s in j)'; then
  ok "write-shard --json array has shard_id, merkle_root, size, leaf_size, volume"
else
  not_ok "write-shard --json array has shard_id, merkle_root, size, leaf_size, volume" "$(last)"
fi
if jtrue '[s["size"] for s in j] == [0, 1, 4096, 3000000] and all(s["leaf_size"] == 4096 for s in j)'; then
  ok "write-shard --json sizes and default leaf_size"
else
  not_ok "write-shard --json sizes and default leaf_size" "$(last)"
fi
if jtrue '[s["volume"] for s in j] == [0, 0, 0, 1]'; then
  ok "a 3 MB shard that exceeds QUOTA_0 goes to volume 1, the small ones to volume 0"
else
  not_ok "a 3 MB shard that exceeds QUOTA_0 goes to volume 1, the small ones to volume 0" "$(last)"
fi
IDS=()
mapfile -t IDS < <(jget '"\n".join(s["shard_id"] for s in j)' "$T/w.json")
all7=1
for id in "${IDS[@]}"; do [[ $id =~ $UUID7_RE ]] || all7=0; done
if [[ $all7 == 1 && ${#IDS[@]} -eq 4 ]]; then ok "shard ids are UUIDv7 (version nibble 7, RFC variant)"; else
  not_ok "shard ids are UUIDv7 (version nibble 7, RFC variant)" "ids: ${IDS[*]}"; fi
HUMAN_IDS=()
"$BIN" --config "$C" --quiet write-shard "$F/one" "$F/one" >"$T/q" 2>/dev/null
mapfile -t HUMAN_IDS <"$T/q"
ALL_IDS=("${IDS[@]}" "${HUMAN_IDS[@]}")
if [[ $(printf '%s\n' "${ALL_IDS[@]}" | sort -u | wc -l) -eq ${#ALL_IDS[@]} ]]; then
  ok "shard ids are distinct (also for the same file twice in one batch)"
else
  not_ok "shard ids are distinct (also for the same file twice in one batch)" "ids: ${ALL_IDS[*]}"
fi

i=0
for f in empty one leaf multi; do
  id=${IDS[$i]:-}
  "$BIN" --config "$C" read-shard "$id" >"$T/rb" 2>"$T/err"
  RC=$?
  if [[ $RC -eq 0 ]] && cmp -s "$T/rb" "$F/$f"; then ok "read-shard to stdout gives back the exact bytes ($f)"; else
    not_ok "read-shard to stdout gives back the exact bytes ($f)" "rc=$RC $(cmp "$T/rb" "$F/$f" 2>&1) $(cat "$T/err")"; fi
  rm -f "$T/ro"
  ds read-shard "$id" -o "$T/ro"
  if [[ $RC -eq 0 && -z $OUT ]] && cmp -s "$T/ro" "$F/$f"; then ok "read-shard -o FILE writes the exact bytes ($f)"; else
    not_ok "read-shard -o FILE writes the exact bytes ($f)" "$(last) $(cmp "$T/ro" "$F/$f" 2>&1)"; fi
  i=$((i + 1))
done
check "read-shard -o leaves no .dfrp-partial-* files" \
  test -z "$(find "$T" -maxdepth 1 -name 'ro.dfrp-partial-*')"

ds --json read-shard "${IDS[3]}" -o "$T/ro2"
if [[ $RC -eq 0 ]] && jtrue "j['shard_id'] == '${IDS[3]}' and j['size'] == 3000000 and j['path'] == '$T/ro2'" &&
  cmp -s "$T/ro2" "$F/multi"; then
  ok "read-shard --json -o prints shard_id, size, path"
else
  not_ok "read-shard --json -o prints shard_id, size, path" "$(last)"
fi

mkdir -p "$T/outdir"
ds read-shard "${IDS[1]}" -o "$T/outdir"
expect_err "read-shard -o FOLDER is refused" 2 "folder"

# -o PATH that is not a regular file (a device, a FIFO) is written straight through: no
# temporary file beside it, nothing renamed over it.
ds read-shard "${IDS[3]}" -o /dev/null
if [[ $RC -eq 0 && -z $OUT && ! -s $T/err ]]; then ok "read-shard -o /dev/null verifies the shard and exits 0"; else
  not_ok "read-shard -o /dev/null verifies the shard and exits 0" "$(last)"; fi
ds --json read-shard "${IDS[3]}" -o /dev/null
if [[ $RC -eq 0 ]] && jtrue "j['size'] == 3000000 and j['path'] == '/dev/null'" && [[ -c /dev/null ]]; then
  ok "read-shard --json -o /dev/null reports the bytes verified; /dev/null is still the device"
else
  not_ok "read-shard --json -o /dev/null reports the bytes verified" "$(last)"
fi
via_fifo "$T/out.fifo" ds read-shard "${IDS[3]}" -o "$T/out.fifo"
if [[ $RC -eq 0 && -p $T/out.fifo ]] && cmp -s "$T/out.fifo.got" "$F/multi"; then
  ok "read-shard -o FIFO streams the exact bytes to its reader and leaves the FIFO in place"
else
  not_ok "read-shard -o FIFO streams the exact bytes to its reader" "$(last) $(cmp "$T/out.fifo.got" "$F/multi" 2>&1)"
fi
check "read-shard -o FIFO leaves no .dfrp-partial-* file" \
  test -z "$(find "$T" -maxdepth 1 -name 'out.fifo.dfrp-partial-*')"
ln -s /dev/null "$T/null.link"
ds read-shard "${IDS[2]}" -o "$T/null.link"
if [[ $RC -eq 0 && -L $T/null.link ]]; then ok "read-shard -o LINK-TO-A-DEVICE writes through the link"; else
  not_ok "read-shard -o LINK-TO-A-DEVICE writes through the link" "$(last)"; fi
ln -s "$T/ro2" "$T/file.link"
ds read-shard "${IDS[2]}" -o "$T/file.link"
expect_err "read-shard -o LINK-TO-A-FILE is refused (a rename would replace the link)" 2 "symbolic link"
check "the refused link still points at its file, unchanged" \
  bash -c "[[ -L '$T/file.link' ]] && cmp -s '$T/ro2' '$F/multi'"
ds read-shard 01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60 -o /dev/null
expect_err "read-shard -o /dev/null of an unknown shard exits 4" 4 "01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60"

# standard input
"$BIN" --config "$C" --quiet write-shard - <"$F/leafplus" >"$T/out" 2>"$T/err"
RC=$?
SID=$(head -n1 "$T/out")
"$BIN" --config "$C" read-shard "$SID" >"$T/rb" 2>/dev/null
if [[ $RC -eq 0 && $SID =~ $UUID7_RE ]] && cmp -s "$T/rb" "$F/leafplus"; then
  ok "write-shard - stores standard input"
else
  not_ok "write-shard - stores standard input" "$(last)"
fi
cat "$F/small" | "$BIN" --config "$C" --json write-shard - "$F/one" >"$T/out" 2>"$T/err"
RC=$?
if [[ $RC -eq 0 ]] && jtrue 'len(j) == 2 and j[0]["size"] == 20000 and j[0]["file"] == "-" and j[1]["size"] == 1'; then
  SID=$(jget 'j[0]["shard_id"]')
  "$BIN" --config "$C" read-shard "$SID" >"$T/rb" 2>/dev/null
  if cmp -s "$T/rb" "$F/small"; then ok "write-shard - FILE mixes standard input (a pipe) and files"; else
    not_ok "write-shard - FILE mixes standard input (a pipe) and files" "read back differs"; fi
else
  not_ok "write-shard - FILE mixes standard input (a pipe) and files" "$(last)"
fi
"$BIN" --config "$C" --quiet write-shard - </dev/null >"$T/out" 2>"$T/err"
RC=$?
SID=$(head -n1 "$T/out")
"$BIN" --config "$C" --json stat-shard "$SID" >"$T/out2" 2>/dev/null
if [[ $RC -eq 0 ]] && jtrue 'j["size"] == 0' "$T/out2"; then ok "write-shard - with empty standard input stores an empty shard"; else
  not_ok "write-shard - with empty standard input stores an empty shard" "rc=$RC $(cat "$T/err")"; fi

printf '%s\n%s\n' "$F/one" "$F/small" >"$T/list"
ds --json write-shard --files-from "$T/list"
if [[ $RC -eq 0 ]] && jtrue "[s['file'] for s in j] == ['$F/one', '$F/small'] and [s['size'] for s in j] == [1, 20000]"; then
  ok "write-shard --files-from LIST"
else
  not_ok "write-shard --files-from LIST" "$(last)"
fi

ds verify-shard "${IDS[@]}"
if [[ $RC -eq 0 ]] && [[ $(grep -c '^ok ' "$T/out") -eq 4 ]] && grep -q "4 shard(s) verified" "$T/out"; then
  ok "verify-shard of healthy shards exits 0 and lists them ok"
else
  not_ok "verify-shard of healthy shards exits 0 and lists them ok" "$(last)"
fi
ds --json verify-shard --all
if [[ $RC -eq 0 ]] && jtrue 'len(j) >= 10 and all(r["ok"] for r in j)'; then
  ok "verify-shard --all --json on a healthy store exits 0, every shard ok"
else
  not_ok "verify-shard --all --json on a healthy store exits 0, every shard ok" "$(last)"
fi

###############################################################################
# 3. Merkle roots against an independent reference
###############################################################################
for sz in 0 1 511 512 513 1024 1025 1536 2048 3000 4095 4096 4097 5000 12289 65536 100003; do
  mkfile "$F/m$sz" "$sz" 7
done
for ls in 512 1024 default; do
  args=()
  [[ $ls != default ]] && args=(--leaf-size "$ls")
  expect_ls=$ls
  [[ $ls == default ]] && expect_ls=4096
  files=()
  for sz in 0 1 511 512 513 1024 1025 1536 2048 3000 4095 4096 4097 5000 12289 65536 100003; do
    files+=("$F/m$sz")
  done
  ds --json write-shard "${args[@]}" "${files[@]}"
  if [[ $RC -ne 0 ]]; then
    not_ok "Merkle roots match the reference (leaf size $ls)" "$(last)"
    continue
  fi
  cp "$T/out" "$T/merkle.json"
  bad=""
  mapfile -t want < <(merkle_ref "$expect_ls" "${files[@]}")
  mapfile -t got < <(jget '"\n".join("%s %s" % (s["merkle_root"], s["leaf_size"]) for s in j)' "$T/merkle.json")
  for k in "${!files[@]}"; do
    [[ ${got[$k]:-} == "${want[$k]} $expect_ls" ]] ||
      bad+=" $(basename "${files[$k]}"): got '${got[$k]:-}' want '${want[$k]} $expect_ls';"
  done
  if [[ -z $bad ]]; then ok "Merkle roots match the reference for 17 sizes (leaf size $ls)"; else
    not_ok "Merkle roots match the reference for 17 sizes (leaf size $ls)" "$bad"; fi
done
EMPTY_ROOT=$(jget "j[0]['merkle_root']" "$T/merkle.json")
check "the empty payload's root is SHA-256 of nothing" \
  test "$EMPTY_ROOT" = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# stat-shard reports the same root, and the on-disk record has the documented layout.
SID=$(jget "j[16]['shard_id']" "$T/merkle.json")  # 100003 bytes, 25 leaves of 4096
ROOT=$(jget "j[16]['merkle_root']" "$T/merkle.json")
ds --json stat-shard "$SID"
SEG=$(jget 'j["segment"]' 2>/dev/null)
OFF=$(jget 'j["offset"]' 2>/dev/null)
if [[ $RC -eq 0 && $(jget 'j["merkle_root"]') == "$ROOT" ]]; then ok "stat-shard --json merkle_root equals the written root"; else
  not_ok "stat-shard --json merkle_root equals the written root" "$(last)"; fi
layout_ok=0
if [[ -f $SEG && -n $OFF ]]; then
  MLEN=$(u32le "$SEG" $((OFF + 12)))
  if [[ $(dd if="$SEG" bs=1 skip="$OFF" count=8 status=none) == DFRPSHRD ]] &&
    [[ $(u64le "$SEG" $((OFF + 32))) == 100003 ]] &&
    [[ $(python3 -c 'import sys; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); print(f.read(32).hex())' "$SEG" $((OFF + 64))) == "$ROOT" ]] &&
    cmp -s <(tail -c +$((OFF + 96 + MLEN + 1)) "$SEG" | head -c 100003) "$F/m100003"; then
    layout_ok=1
  fi
fi
if [[ $layout_ok == 1 ]]; then
  ok "record on disk: DFRPSHRD header at offset, root at +64, payload at +96+metadata_len"
else
  not_ok "record on disk: DFRPSHRD header at offset, root at +64, payload at +96+metadata_len" "segment=$SEG offset=$OFF"
fi

###############################################################################
# 6. stat-shard metadata
###############################################################################
ds --json write-shard --meta project=alpha --meta url=a=b=c --meta empty= --content-type text/plain \
  --vector 0.5,1,-2.25 --leaf-size 1024 --owner 0xabc "$F/small"
SID=$(jget 'j[0]["shard_id"]' 2>/dev/null)
ROOT=$(jget 'j[0]["merkle_root"]' 2>/dev/null)
ds --json stat-shard "$SID"
expect_rc "stat-shard --json exits 0" 0
if jtrue "j['shard_id'] == '$SID' and j['merkle_root'] == '$ROOT' and j['size'] == 20000 and j['leaf_size'] == 1024"; then
  ok "stat-shard --json shard_id, merkle_root, size, leaf_size"
else
  not_ok "stat-shard --json shard_id, merkle_root, size, leaf_size" "$(last)"
fi
if jtrue "j['meta'] == {'project': 'alpha', 'url': 'a=b=c', 'empty': ''}"; then
  ok "stat-shard --json meta holds every --meta key=value (value may contain '=' or be empty)"
else
  not_ok "stat-shard --json meta holds every --meta key=value (value may contain '=' or be empty)" "$(last)"
fi
if jtrue "j['content_type'] == 'text/plain' and j['vector'] == [0.5, 1.0, -2.25] and j['owner'] == '0xabc'"; then
  ok "stat-shard --json content_type, vector, owner"
else
  not_ok "stat-shard --json content_type, vector, owner" "$(last)"
fi
if jtrue "j['segment'].startswith('$S/d%d/segment-' % j['volume']) and isinstance(j['offset'], int) and abs(j['created_unix_ms'] - $(date +%s%3N)) < 600000"; then
  ok "stat-shard --json volume, segment, offset, created"
else
  not_ok "stat-shard --json volume, segment, offset, created" "$(last)"
fi
ds stat-shard "$SID"
if [[ $RC -eq 0 ]] && grep -q "^meta *project=alpha" "$T/out" && grep -q "^content_type *text/plain" "$T/out" &&
  grep -q "^leaf_size *1024" "$T/out" && grep -q "^size *20000" "$T/out"; then
  ok "stat-shard (human) shows size, leaf_size, content type and meta"
else
  not_ok "stat-shard (human) shows size, leaf_size, content type and meta" "$(last)"
fi
# Options before the files: --meta takes one value each time, the rest are files.
ds --json write-shard --meta project=beta "$F/one" "$F/small"
if [[ $RC -eq 0 ]] && jtrue 'len(j) == 2 and j[1]["size"] == 20000'; then
  ok "write-shard --meta k=v FILE FILE: the files after --meta are stored, not taken as metadata"
else
  not_ok "write-shard --meta k=v FILE FILE: the files after --meta are stored, not taken as metadata" "$(last)"
fi
ds --json write-shard "$F/one"
SID=$(jget 'j[0]["shard_id"]' 2>/dev/null)
ds --json stat-shard "$SID"
if jtrue "j['content_type'] == 'application/octet-stream' and j['meta'] == {} and j['vector'] is None and j['owner'] is None and j['leaf_size'] == 4096"; then
  ok "stat-shard --json defaults: octet-stream, no meta, no vector, no owner, LEAF_SIZE"
else
  not_ok "stat-shard --json defaults: octet-stream, no meta, no vector, no owner, LEAF_SIZE" "$(last)"
fi

###############################################################################
# 9. --quiet
###############################################################################
ds --quiet write-shard "$F/one" "$F/small" "$F/empty"
if [[ $RC -eq 0 && -z $ERR && $(wc -l <"$T/out") -eq 3 ]] && ! grep -vqE "$UUID7_RE" "$T/out"; then
  ok "write-shard --quiet exits 0 and prints only the ids, one a line"
else
  not_ok "write-shard --quiet exits 0 and prints only the ids, one a line" "$(last)"
fi
QIDS=()
mapfile -t QIDS <"$T/out"
"$BIN" --config "$C" -q read-shard "${QIDS[1]}" >"$T/rb" 2>"$T/err"
RC=$?
if [[ $RC -eq 0 ]] && cmp -s "$T/rb" "$F/small" && [[ ! -s $T/err ]]; then ok "read-shard -q gives the exact bytes"; else
  not_ok "read-shard -q gives the exact bytes" "rc=$RC"; fi
ds --quiet verify-shard "${QIDS[@]}"
if [[ $RC -eq 0 && -z $OUT && -z $ERR ]]; then ok "verify-shard --quiet of healthy shards exits 0 silently"; else
  not_ok "verify-shard --quiet of healthy shards exits 0 silently" "$(last)"; fi
ds --quiet verify-shard --all
expect_rc "verify-shard --all --quiet exits 0" 0

###############################################################################
# 7. bad input (on the main store): exit code, one-line message naming the thing, nothing
#    changed
###############################################################################
BEFORE=$(snapshot)
unchanged() {
  local name=$1 now
  now=$(snapshot)
  if [[ $now == "$BEFORE" ]]; then ok "$name: store unchanged"; else
    not_ok "$name: store unchanged" "before=[$BEFORE] after=[$now]"; fi
}

UNKNOWN=01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60
for cmd in read-shard stat-shard; do
  ds "$cmd" "$UNKNOWN"
  expect_err "$cmd of an unknown shard id exits 4 naming it" 4 "$UNKNOWN"
done
ds verify-shard "$UNKNOWN"
expect_err "verify-shard of an unknown shard id exits 4" 4 "not found"
check "verify-shard of an unknown shard id names it (MISSING line)" grep -q "^MISSING *$UNKNOWN" "$T/out"
ds read-shard "$UNKNOWN" -o "$T/unknown.out"
check "read-shard -o of an unknown shard leaves no file" \
  test -z "$(find "$T" -maxdepth 1 -name 'unknown.out*')"
for cmd in read-shard stat-shard verify-shard; do
  ds "$cmd" not-a-shard-id
  expect_err "$cmd of a malformed id exits 2 naming it" 2 "not-a-shard-id"
done
ds read-shard "${UNKNOWN:0:35}"
expect_err "read-shard of a 35-character id exits 2" 2 "${UNKNOWN:0:35}"

ds write-shard "$F/one" --vector 1,2
expect_err "write-shard --vector of the wrong dimension exits 2" 2 "vector" "3"
unchanged "wrong vector dimension"
ds write-shard "$F/one" --vector 1,x,3
expect_err "write-shard --vector with a non-number exits 2" 2 "vector" "'x'"
for ls in 1000 256 2097152; do
  ds write-shard "$F/one" --leaf-size "$ls"
  expect_err "write-shard --leaf-size $ls exits 2" 2 "leaf-size" "$ls"
done
unchanged "bad --leaf-size"
python3 -c 'print("big=" + "v" * 70000, end="")' >"$T/bigmeta"
ds write-shard "$F/one" --meta "$(cat "$T/bigmeta")"
expect_err "write-shard with 70000 bytes of metadata exits 2" 2 "metadata"
unchanged "oversized metadata"
ds write-shard "$F/one" --meta novalue
expect_err "write-shard --meta without = exits 2" 2 "novalue"
ds write-shard "$F/one" --meta a=1 --meta a=2
expect_err "write-shard --meta with a key given twice exits 2" 2 "--meta a"
ds write-shard "$F/one" "$F/does-not-exist"
expect_err "write-shard of a nonexistent file exits 2 naming it" 2 "does-not-exist"
unchanged "nonexistent input file (after a good one in the same batch)"
ds write-shard "$F"
expect_err "write-shard of a folder exits 2 naming it" 2 "$F" "folder"
ds write-shard - - </dev/null
expect_err "write-shard - - (stdin twice) exits 2" 2 "standard input"
ds write-shard
expect_err "write-shard without files exits 2" 2 "write-shard"
ds write-shard --files-from "$T/no-such-list"
expect_err "write-shard --files-from of a missing list exits 2 naming it" 2 "no-such-list"
ds verify-shard
expect_err "verify-shard without ids or --all exits 2" 2 "--all"
ds verify-shard --all "$UNKNOWN"
expect_err "verify-shard with ids and --all exits 2" 2 "--all"
ds no-such-command
expect_rc "an unknown subcommand exits 2" 2
dsc "$T/no-such-config.toml" list-volumes
expect_err "--config of a missing file exits 2 naming it" 2 "no-such-config"
unchanged "all the refused writes"

# Config errors. Each config lives in its own folder.
cfg() { # cfg NAME EXT CONTENT -> prints the path
  mkdir -p "$T/cfg/$1"
  printf '%s\n' "$3" >"$T/cfg/$1/dfrp.$2"
  echo "$T/cfg/$1/dfrp.$2"
}
dsc "$(cfg unknown toml 'DRIVE_0 = "d0"
QUOTA_0 = "1M"
STATE_DIR = "s"
BOGUS_KEY = 5')" --json list-volumes
expect_err "an unknown key in a TOML config exits 2 naming the key" 2 "BOGUS_KEY"
dsc "$(cfg unknownenv env 'DRIVE_0=d0
QUOTA_0=1M
STATE_DIR=s
QUOTAS_1=4M')" list-volumes
expect_err "an unknown key in a .env config exits 2 naming the key" 2 "QUOTAS_1"
dsc "$(cfg badquota toml 'DRIVE_0 = "d0"
QUOTA_0 = "12X"
STATE_DIR = "s"')" init-storage --create
expect_err "a malformed quota exits 2 naming it" 2 "QUOTA_0" "12X"
dsc "$(cfg fracquota env 'DRIVE_0=d0
QUOTA_0=1.5G
STATE_DIR=s')" init-storage --create
expect_err "a fractional quota exits 2 naming it" 2 "QUOTA_0"
mkdir -p "$T/cfg/dup/d0"
dsc "$(cfg dup toml 'DRIVE_0 = "d0"
QUOTA_0 = "1M"
DRIVE_1 = "d0"
QUOTA_1 = "1M"
STATE_DIR = "s"')" init-storage --create
expect_err "a duplicated drive path exits 2 naming it" 2 "d0"
check "the duplicated-drive config initialized nothing" test ! -e "$T/cfg/dup/d0/DFRP-VOLUME"
mkdir -p "$T/cfg/dup2/d0"
dsc "$(cfg dup2 env 'DRIVE_0=d0
QUOTA_0=1M
DRIVE_1=./d0/
QUOTA_1=1M
STATE_DIR=s')" init-storage --create
expect_err "the same drive spelled d0 and ./d0/ exits 2" 2 "d0"
dsc "$(cfg gap toml 'DRIVE_0 = "d0"
QUOTA_0 = "1M"
DRIVE_2 = "d2"
QUOTA_2 = "1M"
STATE_DIR = "s"')" init-storage --create
expect_err "drives with a gap (DRIVE_0, DRIVE_2) exit 2" 2 "DRIVE_"
dsc "$(cfg noquota toml 'DRIVE_0 = "d0"
STATE_DIR = "s"')" init-storage --create
expect_err "a drive without a quota exits 2 naming QUOTA_0" 2 "QUOTA_0"
dsc "$(cfg missing toml 'DRIVE_0 = "d0"
QUOTA_0 = "1M"
STATE_DIR = "s"')" init-storage
expect_err "init-storage of a missing drive folder without --create exits 2 naming it" 2 "$T/cfg/missing/d0"
check "init-storage without --create did not create the drive folder" test ! -e "$T/cfg/missing/d0"

# .env config, run from another folder: relative paths resolve against the config's folder.
mkdir -p "$T/envstore"
cat >"$T/envstore/.env" <<'EOF'
# a .env config
export DRIVE_0="d0"
QUOTA_0='64K'
STATE_DIR=state
EOF
(cd / && "$BIN" --config "$T/envstore/.env" --json init-storage --create) >"$T/out" 2>"$T/err"
RC=$?
if [[ $RC -eq 0 ]] && jtrue "j['state_dir'] == '$T/envstore/state' and j['volumes'][0]['path'] == '$T/envstore/d0' and j['volumes'][0]['quota'] == 65536"; then
  ok ".env config (export, quotes, comments) with paths relative to its folder"
else
  not_ok ".env config (export, quotes, comments) with paths relative to its folder" "$(last)"
fi
# The environment overrides the file.
QUOTA_0=128K "$BIN" --config "$T/envstore/.env" --json list-volumes >"$T/out" 2>"$T/err"
RC=$?
if [[ $RC -eq 0 ]] && jtrue "j[0]['quota'] == 131072"; then ok "QUOTA_0 in the environment overrides the config file"; else
  not_ok "QUOTA_0 in the environment overrides the config file" "$(last)"; fi

###############################################################################
# 4. Spill to the next volume; out of capacity
###############################################################################
new_store spill 1M 4M
mkfile "$F/k400" 409600 11
ds --json write-shard "$F/k400" "$F/k400" "$F/k400"
if [[ $RC -eq 0 ]] && jtrue '[s["volume"] for s in j] == [0, 0, 1]'; then
  ok "a batch that outgrows QUOTA_0 spills its later shards to volume 1"
else
  not_ok "a batch that outgrows QUOTA_0 spills its later shards to volume 1" "$(last)"
fi
cp "$T/out" "$T/spill.json"
ds --json write-shard "$F/k400" "$F/small"
if [[ $RC -eq 0 ]] && jtrue '[s["volume"] for s in j] == [1, 0]'; then
  ok "a later small shard still goes to volume 0 when it has room (lowest volume with room)"
else
  not_ok "a later small shard still goes to volume 0 when it has room (lowest volume with room)" "$(last)"
fi
python3 - "$T/spill.json" "$T/out" >"$T/spill_ids" <<'EOF'
import json, sys
for p in sys.argv[1:]:
    for s in json.load(open(p)):
        print(s["shard_id"], s["volume"])
EOF
straddle=""
while read -r id vol; do
  ds --json stat-shard "$id"
  seg=$(jget 'j["segment"]')
  off=$(jget 'j["offset"]')
  sv=$(jget 'j["volume"]')
  size=$(jget 'j["size"]')
  mlen=$(u32le "$seg" $((off + 12)))
  end=$((off + 96 + mlen + size))
  [[ $sv == "$vol" && $seg == "$S/d$vol/"segment-* && $end -le $(stat -c %s "$seg") ]] ||
    straddle+=" $id (volume $sv, $seg, offset $off, end $end);"
  "$BIN" --config "$C" read-shard "$id" >"$T/rb" 2>/dev/null || straddle+=" $id unreadable;"
done <"$T/spill_ids"
[[ $(wc -l <"$T/spill_ids") -eq 5 ]] || straddle+=" expected 5 shards, got $(wc -l <"$T/spill_ids");"
if [[ -z $straddle ]]; then ok "every spilled shard lies whole inside one segment of its volume and reads back"; else
  not_ok "every spilled shard lies whole inside one segment of its volume and reads back" "$straddle"; fi
ds --json list-volumes
if jtrue 'all(v["used"] <= v["quota"] and v["free"] == v["quota"] - v["used"] for v in j) and [v["shards"] for v in j] == [3, 2]'; then
  ok "list-volumes after spilling: used within quota, free = quota - used, shard counts"
else
  not_ok "list-volumes after spilling: used within quota, free = quota - used, shard counts" "$(last)"
fi
USED_SUM=$(find "$S/d0" "$S/d1" -name 'segment-*.dfrp' -printf '%s\n' | awk '{s+=$1} END {print s}')
if jtrue "sum(v['used'] for v in j) == $USED_SUM"; then ok "list-volumes used equals the bytes of the segment files"; else
  not_ok "list-volumes used equals the bytes of the segment files" "segments=$USED_SUM $(last)"; fi

BEFORE=$(snapshot)
mkfile "$F/big5m" 5000000 12
ds write-shard "$F/big5m"
expect_err "a shard bigger than any volume's room exits 5" 5 "(add|another).*drive|quota"
unchanged "out of capacity"
# Room in total (vol 0 ~ 200K + vol 1 ~ 3.2M) but on no single volume: still 5, no straddling.
mkfile "$F/k3500" 3500000 13
ds write-shard "$F/k3500"
expect_err "a shard that fits only across two volumes exits 5 (no straddling)" 5 "drive|quota"
unchanged "out of capacity across volumes"
ds write-shard "$F/small" "$F/big5m"
expect_err "a batch whose last shard does not fit exits 5" 5 "drive|quota"
unchanged "out of capacity in a batch (all or nothing)"
head -c 5000000 "$F/big5m" | "$BIN" --config "$C" write-shard - >"$T/out" 2>"$T/err"
RC=$?
ERR=$(cat "$T/err")
expect_err "standard input bigger than any volume's room exits 5" 5 "drive|quota"
unchanged "out of capacity from standard input"
ds --json write-shard "$F/small"
if [[ $RC -eq 0 ]] && jtrue 'j[0]["volume"] == 0'; then ok "the store still takes shards that fit after an out-of-capacity refusal"; else
  not_ok "the store still takes shards that fit after an out-of-capacity refusal" "$(last)"; fi

# Quota lowered below what a volume holds.
BEFORE=$(snapshot)
sed -i 's/^QUOTA_0 = .*/QUOTA_0 = "100K"/' "$C"
ds list-volumes
if [[ $RC -eq 0 ]] && grep -q "full" <<<"$OUT" && grep -q "raise QUOTA_0" <<<"$OUT"; then
  ok "QUOTA_0 lowered below what volume 0 holds: reads go on, list-volumes shows it full and says to raise QUOTA_0"
else
  not_ok "QUOTA_0 lowered below what volume 0 holds: list-volumes" "$(last)"
fi
ds write-shard "$F/one"
expect_err "write-shard with QUOTA_0 below used exits 2" 2 "QUOTA_0"
sed -i 's/^QUOTA_0 = .*/QUOTA_0 = "1M"/' "$C"
unchanged "quota lowered then restored"
# Raising a quota makes room.
sed -i 's/^QUOTA_1 = .*/QUOTA_1 = "16M"/' "$C"
ds --json write-shard "$F/big5m"
if [[ $RC -eq 0 ]] && jtrue 'j[0]["volume"] == 1'; then ok "raising QUOTA_1 makes room for the big shard"; else
  not_ok "raising QUOTA_1 makes room for the big shard" "$(last)"; fi

###############################################################################
# 5. Corruption: payload, metadata, record header, each in a fresh store
###############################################################################
# corrupt_case NAME WHERE : WHERE is payload|metadata|header|root|tree|magic
corrupt_case() {
  local name=$1 where=$2
  new_store "corrupt-$name"
  ds --json write-shard "$F/small" "$F/m100003" "$F/one" --meta project=alpha --content-type text/plain
  if [[ $RC -ne 0 ]]; then
    not_ok "corruption in $where: setup" "$(last)"
    return
  fi
  local a b c
  a=$(jget 'j[0]["shard_id"]')
  b=$(jget 'j[1]["shard_id"]')
  c=$(jget 'j[2]["shard_id"]')
  ds --json stat-shard "$b"
  local seg off mlen pos
  seg=$(jget 'j["segment"]')
  off=$(jget 'j["offset"]')
  mlen=$(u32le "$seg" $((off + 12)))
  case $where in
    payload) pos=$((off + 96 + mlen + 50000)) ;;
    metadata) pos=$((off + 96 + mlen / 2)) ;;
    header) pos=$((off + 20)) ;;  # a byte of the shard id in the header
    magic) pos=$((off + 3)) ;;
    root) pos=$((off + 64 + 7)) ;;
    tree) pos=$((off + 96 + mlen + 100003 + 40)) ;;
  esac
  flip "$seg" "$pos"

  ds verify-shard "$b"
  expect_rc "corrupt $where: verify-shard ID exits 3" 3
  check "corrupt $where: verify-shard ID names the shard" grep -q "$b" "$T/out" "$T/err"
  ds verify-shard --all
  expect_rc "corrupt $where: verify-shard --all exits 3" 3
  if grep -q "CORRUPT *$b" "$T/out" && grep -q "^ok *$a" "$T/out" && grep -q "^ok *$c" "$T/out"; then
    ok "corrupt $where: verify-shard --all names the corrupt shard and passes the others"
  else
    not_ok "corrupt $where: verify-shard --all names the corrupt shard and passes the others" "$(last)"
  fi
  ds --json verify-shard --all
  if [[ $RC -eq 3 ]] && jtrue "[r['ok'] for r in j if r['shard_id'] == '$b'] == [False] and sum(1 for r in j if r['ok']) == 2"; then
    ok "corrupt $where: verify-shard --all --json marks only that shard not ok"
  else
    not_ok "corrupt $where: verify-shard --all --json marks only that shard not ok" "$(last)"
  fi
  "$BIN" --config "$C" read-shard "$b" >"$T/rb" 2>"$T/err"
  RC=$?
  if [[ $RC -eq 3 && ! -s $T/rb ]]; then ok "corrupt $where: read-shard ID exits 3 and writes no byte to stdout"; else
    not_ok "corrupt $where: read-shard ID exits 3 and writes no byte to stdout" "rc=$RC stdout bytes=$(stat -c %s "$T/rb") $(cat "$T/err")"; fi
  grep -q "$b" "$T/err" && ok "corrupt $where: read-shard message names the shard" ||
    not_ok "corrupt $where: read-shard message names the shard" "stderr: $(cat "$T/err")"
  mkdir -p "$S/rd"
  ds read-shard "$b" -o "$S/rd/out"
  if [[ $RC -eq 3 && -z $(ls -A "$S/rd") ]]; then
    ok "corrupt $where: read-shard ID -o out exits 3, leaves no out and no out.dfrp-partial-*"
  else
    not_ok "corrupt $where: read-shard ID -o out exits 3, leaves no out and no out.dfrp-partial-*" "$(last) files: $(ls -A "$S/rd")"
  fi
  ds read-shard "$b" -o /dev/null
  expect_err "corrupt $where: read-shard ID -o /dev/null exits 3 naming the shard" 3 "$b"
  via_fifo "$S/rd.fifo" ds read-shard "$b" -o "$S/rd.fifo"
  if [[ $RC -eq 3 && -p $S/rd.fifo && ! -s $S/rd.fifo.got ]]; then
    ok "corrupt $where: read-shard ID -o FIFO exits 3 and its reader gets no byte"
  else
    not_ok "corrupt $where: read-shard ID -o FIFO exits 3 and its reader gets no byte" "$(last) got $(stat -c %s "$S/rd.fifo.got") bytes"
  fi
  rm -f "$S/rd.fifo" "$S/rd.fifo.got"
  local good=1
  "$BIN" --config "$C" read-shard "$a" 2>/dev/null | cmp -s - "$F/small" || good=0
  "$BIN" --config "$C" read-shard "$c" 2>/dev/null | cmp -s - "$F/one" || good=0
  "$BIN" --config "$C" --quiet verify-shard "$a" "$c" >/dev/null 2>&1 || good=0
  if [[ $good == 1 ]]; then ok "corrupt $where: the other shards (before and after it) still read and verify"; else
    not_ok "corrupt $where: the other shards (before and after it) still read and verify" "a=$a c=$c"; fi
  ds --json write-shard "$F/leaf"
  local n
  n=$(jget 'j[0]["shard_id"]' 2>/dev/null)
  if [[ $RC -eq 0 ]] && "$BIN" --config "$C" read-shard "$n" 2>/dev/null | cmp -s - "$F/leaf"; then
    ok "corrupt $where: the store still takes and reads new shards"
  else
    not_ok "corrupt $where: the store still takes and reads new shards" "$(last)"
  fi
}
corrupt_case p payload
corrupt_case m metadata
corrupt_case h header
corrupt_case r root
corrupt_case g magic
corrupt_case t tree

# A bad leaf past the first 8 MiB (the unit in which a read verifies before it writes): a
# device or FIFO gets exactly the verified bytes before it, and nothing of the bad leaf.
new_store corrupt-late 32M 4M
mkfile "$F/nine" 9437184 11
ds --json write-shard "$F/nine"
NINE=$(jget 'j[0]["shard_id"]' 2>/dev/null)
ds --json stat-shard "$NINE"
flip_payload "$T/out" 9000000
via_fifo "$S/late.fifo" ds read-shard "$NINE" -o "$S/late.fifo"
if [[ $RC -eq 3 ]] && [[ $(stat -c %s "$S/late.fifo.got") -eq 8388608 ]] &&
  cmp -s "$S/late.fifo.got" <(head -c 8388608 "$F/nine"); then
  ok "a bad leaf at 9000000 of 9437184: -o FIFO exits 3 after exactly the 8 MiB that verified"
else
  not_ok "a bad leaf at 9000000: -o FIFO gets only the verified prefix" "$(last) got $(stat -c %s "$S/late.fifo.got") bytes"
fi

###############################################################################
# 7 (cont.). Foreign volume headers, vanished volumes
###############################################################################
new_store other
OTHER=$S
new_store foreign
mkdir -p "$S/d2"
cp "$OTHER/d0/DFRP-VOLUME" "$S/d2/DFRP-VOLUME"
cat >>"$C" <<'EOF'
DRIVE_2 = "d2"
QUOTA_2 = "1M"
EOF
ds init-storage
expect_err "init-storage refuses a new drive holding another store's volume header" 2 "d2"
check "the other store's header on the new drive is left alone" cmp -s "$S/d2/DFRP-VOLUME" "$OTHER/d0/DFRP-VOLUME"
new_store foreign2
ds --quiet write-shard "$F/one"
cp "$OTHER/d1/DFRP-VOLUME" "$S/d1/DFRP-VOLUME"
ds init-storage
expect_err "init-storage refuses when a configured volume's header belongs to another store" 2 "d1"
# Volume header index mismatch: volume 0's header (same store) copied onto drive 1.
new_store swapped
cp "$S/d0/DFRP-VOLUME" "$S/d1/DFRP-VOLUME"
ds init-storage
expect_err "init-storage refuses volume 0's header on DRIVE_1" 2 "d1"

new_store vanish 1M 4M
ds --json write-shard "$F/k400" "$F/k400" "$F/k400"
V0=$(jget 'j[0]["shard_id"]' 2>/dev/null)
V1=$(jget 'j[2]["shard_id"]' 2>/dev/null)
if [[ $(jget 'j[2]["volume"]' 2>/dev/null) != 1 ]]; then not_ok "vanished volume: setup" "$(last)"; fi
rm "$S/d1/DFRP-VOLUME"
ds --json list-volumes
if [[ $RC -eq 0 ]] && jtrue '[v["state"] for v in j] == ["active", "missing"]'; then
  ok "list-volumes shows state missing for a drive whose DFRP-VOLUME vanished"
else
  not_ok "list-volumes shows state missing for a drive whose DFRP-VOLUME vanished" "$(last)"
fi
ds list-volumes
if [[ $RC -eq 0 ]] && grep -qE '^1 +missing' "$T/out"; then ok "list-volumes (human) shows volume 1 missing"; else
  not_ok "list-volumes (human) shows volume 1 missing" "$(last)"; fi
ds read-shard "$V1"
expect_err "read-shard of a shard on the missing volume exits 4 naming the volume" 4 "volume 1|$S/d1"
ds read-shard "$V1" -o "$S/v1.out"
check "read-shard -o of a shard on the missing volume leaves no file" test -z "$(find "$S" -maxdepth 1 -name 'v1.out*')"
ds verify-shard "$V1"
expect_rc "verify-shard of a shard on the missing volume exits 4" 4
"$BIN" --config "$C" read-shard "$V0" 2>/dev/null | cmp -s - "$F/k400" &&
  ok "shards on the present volume still read while volume 1 is missing" ||
  not_ok "shards on the present volume still read while volume 1 is missing" "id $V0"
# The whole folder gone (unmounted drive), then back.
mv "$S/d0" "$S/d0.away"
ds --json list-volumes
if [[ $RC -eq 0 ]] && jtrue 'j[0]["state"] == "missing"'; then ok "list-volumes shows state missing for a drive folder that is gone"; else
  not_ok "list-volumes shows state missing for a drive folder that is gone" "$(last)"; fi
ds read-shard "$V0"
expect_err "read-shard of a shard on a drive folder that is gone exits 4" 4 "volume 0|$S/d0"
mv "$S/d0.away" "$S/d0"
"$BIN" --config "$C" read-shard "$V0" 2>/dev/null | cmp -s - "$F/k400" &&
  ok "the shard reads again once the drive folder is back" ||
  not_ok "the shard reads again once the drive folder is back" "id $V0"

###############################################################################
# 8. Busy: another process holds the writer lock
###############################################################################
new_store busy
ds --quiet write-shard "$F/small"
BID=$OUT
BEFORE=$(snapshot)
# util-linux flock takes the same flock(2) lock; the holder lets go once $T/release exists.
flock "$S/state/LOCK" sh -c "touch '$T/locked'; i=0; while [ ! -e '$T/release' ] && [ \$i -lt 400 ]; do sleep 0.05; i=\$((i+1)); done" &
LOCKPID=$!
BG_PIDS+=("$LOCKPID")
for _ in $(seq 100); do [[ -e $T/locked ]] && break; sleep 0.05; done
if [[ -e $T/locked ]]; then
  ds write-shard "$F/one"
  expect_err "write-shard while another process holds the writer lock exits 6 (busy)" 6 "busy"
  unchanged "busy write"
  "$BIN" --config "$C" read-shard "$BID" 2>/dev/null | cmp -s - "$F/small" &&
    ok "read-shard works while the writer lock is held" ||
    not_ok "read-shard works while the writer lock is held" "id $BID"
  ds list-volumes
  expect_rc "list-volumes works while the writer lock is held" 0
  ds verify-shard --all
  expect_rc "verify-shard --all works while the writer lock is held" 0
  ds stat-shard "$BID"
  expect_rc "stat-shard works while the writer lock is held" 0
else
  not_ok "flock took the writer lock" "no $T/locked after 5 s"
fi
touch "$T/release"
wait "$LOCKPID" 2>/dev/null
ds write-shard "$F/one"
expect_rc "write-shard works again once the lock is released" 0

# Two dfrp-storage writers: the first waits on a FIFO for standard input while holding the lock.
mkfifo "$T/fifo"
"$BIN" --config "$C" --quiet write-shard - <"$T/fifo" >"$T/w1.out" 2>"$T/w1.err" &
W1=$!
BG_PIDS+=("$W1")
exec 7>"$T/fifo"
# Wait until the first writer holds the lock: /proc/locks lists a lock on LOCK's inode.
LOCK_INO=$(stat -c %i "$S/state/LOCK")
# (Up to 60 s: a sanitizer build on a loaded machine starts slowly.)
for _ in $(seq 1200); do grep -qE ":$LOCK_INO " /proc/locks && break; sleep 0.05; done
grep -qE ":$LOCK_INO " /proc/locks ||
  echo "# the first writer has not taken the lock after 60 s: $(cat "$T/w1.err")"
ds write-shard "$F/one"
expect_err "a second write-shard while the first one runs exits 6 (busy)" 6 "busy"
cat "$F/leafplus" >&7
exec 7>&-
wait "$W1"
RC=$?
W1ID=$(head -n1 "$T/w1.out")
if [[ $RC -eq 0 ]] && "$BIN" --config "$C" read-shard "$W1ID" 2>/dev/null | cmp -s - "$F/leafplus"; then
  ok "the first writer completes and its shard reads back"
else
  not_ok "the first writer completes and its shard reads back" "rc=$RC $(cat "$T/w1.err")"
fi

###############################################################################
# Index is a cache: losing it loses nothing
###############################################################################
new_store reindex
ds --json write-shard "$F/small" "$F/multi"
R0=$(jget 'j[0]["shard_id"]' 2>/dev/null)
R1=$(jget 'j[1]["shard_id"]' 2>/dev/null)
rm -f "$S/state/index.sqlite"*
good=1
"$BIN" --config "$C" read-shard "$R0" 2>/dev/null | cmp -s - "$F/small" || good=0
"$BIN" --config "$C" read-shard "$R1" 2>/dev/null | cmp -s - "$F/multi" || good=0
if [[ $good == 1 ]]; then ok "shards still read after index.sqlite is deleted (rebuilt from the segments)"; else
  not_ok "shards still read after index.sqlite is deleted (rebuilt from the segments)" "ids $R0 $R1"; fi
ds --json list-volumes
if jtrue 'sum(v["shards"] for v in j) == 2'; then ok "list-volumes counts the shards after the index is rebuilt"; else
  not_ok "list-volumes counts the shards after the index is rebuilt" "$(last)"; fi

###############################################################################
# A torn last record (a crash mid-append) is cut; acknowledged shards are untouched
###############################################################################
new_store torn
ds --json write-shard "$F/small" "$F/leafplus"
TA=$(jget 'j[0]["shard_id"]' 2>/dev/null)
TB=$(jget 'j[1]["shard_id"]' 2>/dev/null)
TSEG=$(ls "$S"/d0/segment-*.dfrp 2>/dev/null | head -n1)
TSIZE=$(stat -c %s "$TSEG" 2>/dev/null)
# The start of a record that never finished: a header with the magic, then garbage.
$PY - "$TSEG" <<'EOF'
import sys, random
with open(sys.argv[1], "ab") as f:
    f.write(b"DFRPSHRD" + random.Random(5).randbytes(142))
EOF
ds verify-shard --all
if [[ $RC -eq 0 ]] && grep -q "^ok *$TA" "$T/out" && grep -q "^ok *$TB" "$T/out"; then
  ok "a torn tail after the last record: verify-shard --all still passes every shard"
else
  not_ok "a torn tail after the last record: verify-shard --all still passes every shard" "$(last)"
fi
ds --json write-shard "$F/one"
TC=$(jget 'j[0]["shard_id"]' 2>/dev/null)
good=1
"$BIN" --config "$C" read-shard "$TA" 2>/dev/null | cmp -s - "$F/small" || good=0
"$BIN" --config "$C" read-shard "$TB" 2>/dev/null | cmp -s - "$F/leafplus" || good=0
"$BIN" --config "$C" read-shard "$TC" 2>/dev/null | cmp -s - "$F/one" || good=0
"$BIN" --config "$C" -q verify-shard --all >/dev/null 2>&1 || good=0
if [[ $RC -eq 0 && $good == 1 ]]; then ok "a torn tail: new shards are written after the cut and everything reads back"; else
  not_ok "a torn tail: new shards are written after the cut and everything reads back" "$(last)"; fi
ds --json stat-shard "$TC"
if [[ $(jget 'j["offset"]' 2>/dev/null) == "$TSIZE" ]]; then ok "a torn tail: the next record starts where the last good one ended"; else
  not_ok "a torn tail: the next record starts where the last good one ended" "segment was $TSIZE bytes; $(last)"; fi

###############################################################################
# STATE_DIR lost: init-storage adopts the store from its drives
###############################################################################
new_store adopt
ds --json init-storage
AID=$(jget 'j["store_id"]' 2>/dev/null)
ds --json write-shard "$F/small" "$F/multi"
A0=$(jget 'j[0]["shard_id"]' 2>/dev/null)
A1=$(jget 'j[1]["shard_id"]' 2>/dev/null)
rm -rf "$S/state"
ds list-volumes
expect_rc "list-volumes without STATE_DIR's store exits 2 (run init-storage)" 2
ds --json init-storage
if [[ $RC -eq 0 ]] && jtrue "j['store_id'] == '$AID' and j['adopted'] is True and j['new_store'] is False"; then
  ok "init-storage after STATE_DIR was lost adopts the same store id from the drives"
else
  not_ok "init-storage after STATE_DIR was lost adopts the same store id from the drives" "$(last)"
fi
good=1
"$BIN" --config "$C" read-shard "$A0" 2>/dev/null | cmp -s - "$F/small" || good=0
"$BIN" --config "$C" read-shard "$A1" 2>/dev/null | cmp -s - "$F/multi" || good=0
if [[ $good == 1 ]]; then ok "shards read back after adoption"; else not_ok "shards read back after adoption" "ids $A0 $A1"; fi

###############################################################################
# Global flags after the command; extreme leaf sizes
###############################################################################
new_store flags 1M 8M
ds list-volumes --json
if [[ $RC -eq 0 ]] && jtrue 'len(j) == 2'; then ok "--json after the command works"; else
  not_ok "--json after the command works" "$(last)"; fi
ds write-shard "$F/one" --quiet
if [[ $RC -eq 0 && $OUT =~ $UUID7_RE ]]; then ok "--quiet after the command works"; else
  not_ok "--quiet after the command works" "$(last)"; fi
ds --json write-shard "$F/multi" "$F/m100003" --leaf-size 1048576
if [[ $RC -eq 0 ]] && [[ $(jget '"\n".join(s["merkle_root"] for s in j)') == "$(merkle_ref 1048576 "$F/multi" "$F/m100003")" ]] &&
  jtrue 'all(s["leaf_size"] == 1048576 for s in j)'; then
  ok "--leaf-size 1048576 (the largest) is accepted and the roots match the reference"
else
  not_ok "--leaf-size 1048576 (the largest) is accepted and the roots match the reference" "$(last)"
fi

###############################################################################
echo "$PASS passed, $FAIL failed"
if [[ $FAIL -gt 0 ]]; then
  exit 1
fi
exit 0
