# Helpers for the dfrp-storage CLI tests (sourced by storage_cli_test.sh and
# volume_cli_test.sh).
#
# Needs: bash, coreutils, python3, util-linux (flock). Expects T (the test's temp folder) to
# be set by the caller; isolate_from_caller sets BIN.

# Debian's own python3 starts much faster than a version-manager shim.
PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3

# isolate_from_caller BINARY : copies the binary into $T (so a rebuild during the run cannot
# pull it from under us), sets BIN, unsets the caller's dfrp config variables, and moves into
# an empty folder (so no ./dfrp.toml or ./.env is picked up by accident).
isolate_from_caller() {
  cp "$1" "$T/dfrp-storage" || exit 2
  BIN=$T/dfrp-storage
  local name
  while IFS= read -r name; do
    case $name in
      DFRP_CONFIG | LEAF_SIZE | VECTOR_DIM | STATE_DIR | DRIVE_[0-9]* | QUOTA_[0-9]*) unset "$name" ;;
    esac
  done < <(compgen -e)
  mkdir -p "$T/cwd"
  cd "$T/cwd" || exit 2
}

PASS=0
FAIL=0
FAILED_NAMES=()

ok() {
  PASS=$((PASS + 1))
  echo "ok - $1"
}

not_ok() {
  FAIL=$((FAIL + 1))
  FAILED_NAMES+=("$1")
  echo "not ok - $1: $2"
}

# check NAME CONDITION-COMMAND... : ok when the command succeeds.
check() {
  local name=$1
  shift
  if "$@"; then ok "$name"; else not_ok "$name" "condition failed: $*"; fi
}

# Runs the binary with the current store's config; stdout -> $T/out, stderr -> $T/err.
# Sets RC, OUT, ERR.
ds() {
  "$BIN" --config "$C" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
  return 0
}

# Same with an explicit config file.
dsc() {
  local cfg=$1
  shift
  "$BIN" --config "$cfg" "$@" >"$T/out" 2>"$T/err"
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
  return 0
}

# via_fifo FIFO COMMAND... : makes FIFO afresh, starts a reader that copies what comes out of
# it to FIFO.got (for at most 60 s), runs COMMAND (which is to write to FIFO), and waits for
# the reader.
via_fifo() {
  local fifo=$1
  shift
  rm -f "$fifo" "$fifo.got"
  mkfifo "$fifo"
  timeout 60 cat "$fifo" >"$fifo.got" &
  local reader=$!
  "$@"
  wait "$reader"
}

# A short description of the last run, for failure details.
last() {
  printf 'rc=%s stdout=[%s] stderr=[%s]' "$RC" "$(head -c 300 "$T/out" | tr '\n' '|')" \
    "$(head -c 400 "$T/err" | tr '\n' '|')"
}

# expect_rc NAME CODE : the last run exited CODE.
expect_rc() {
  if [[ $RC -eq $2 ]]; then ok "$1"; else not_ok "$1" "expected exit $2, $(last)"; fi
}

# expect_err NAME CODE PATTERN... : the last run exited CODE with exactly one line on stderr
# ("dfrp-storage: ...") that contains every PATTERN (extended regex, case-insensitive).
expect_err() {
  local name=$1 code=$2
  shift 2
  local why=""
  [[ $RC -eq $code ]] || why+="expected exit $code; "
  local lines
  lines=$(wc -l <"$T/err")
  [[ $lines -eq 1 ]] || why+="expected one line on stderr, got $lines; "
  [[ $ERR == dfrp-storage:* ]] || why+="stderr does not start with 'dfrp-storage:'; "
  local p
  for p in "$@"; do
    grep -qiE -- "$p" "$T/err" || why+="stderr lacks /$p/; "
  done
  if [[ -z $why ]]; then ok "$name"; else not_ok "$name" "${why}$(last)"; fi
}

# jget EXPR [FILE] : evaluates a python expression over the JSON in FILE ($T/out by default),
# bound to j. Strings print raw, other values as JSON.
jget() {
  $PY - "$1" "${2:-$T/out}" <<'EOF'
import json, sys
expr, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    j = json.load(f)
v = eval(expr)
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
EOF
}

# jtrue EXPR [FILE] : succeeds when the python expression over the JSON is true.
jtrue() {
  $PY - "$1" "${2:-$T/out}" <<'EOF' >/dev/null 2>&1
import json, sys
expr, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    j = json.load(f)
sys.exit(0 if eval(expr) else 1)
EOF
}

# mkfile PATH SIZE [SEED] : deterministic pseudo-random content.
mkfile() {
  $PY - "$1" "$2" "${3:-1}" <<'EOF'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed * 1000003 + size)
with open(path, "wb") as f:
    f.write(r.randbytes(size))
EOF
}

# flip FILE OFFSET : XORs the byte at OFFSET with 0xFF in place.
flip() {
  $PY - "$1" "$2" <<'EOF'
import sys
path, off = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    assert len(b) == 1, "offset past the end"
    f.seek(off)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
}

# flip_payload STAT_JSON OFFSET : flips the byte at OFFSET of the payload of the shard whose
# stat-shard --json is in STAT_JSON, in its segment file (the record's 96-byte header, its
# metadata, then the payload).
flip_payload() {
  local seg off
  seg=$(jget 'j["segment"]' "$1")
  off=$(jget 'j["offset"]' "$1")
  flip "$seg" $((off + 96 + $(u32le "$seg" $((off + 12))) + $2))
}

# u32le FILE OFFSET : prints the little-endian u32 at OFFSET.
u32le() {
  $PY -c 'import sys,struct; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); print(struct.unpack("<I", f.read(4))[0])' "$1" "$2"
}
u64le() {
  $PY -c 'import sys,struct; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); print(struct.unpack("<Q", f.read(8))[0])' "$1" "$2"
}

# merkle_ref LEAF_SIZE FILE... : the reference Merkle root (hex) of each file, one a line,
# RFC 9162 style: leaf H(0x00||chunk), node H(0x01||left||right), split at the largest power
# of two below n, empty payload H("").
merkle_ref() {
  $PY - "$@" <<'EOF'
import hashlib, sys
H = lambda b: hashlib.sha256(b).digest()
def mth(leaves):
    n = len(leaves)
    if n == 1:
        return H(b"\x00" + leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return H(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))
leaf = int(sys.argv[1])
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    if not data:
        print(H(b"").hex())
    else:
        print(mth([data[i:i + leaf] for i in range(0, len(data), leaf)]).hex())
EOF
}

# Snapshot of what a store holds on disk and in its index, to show a failed command changed
# nothing: list-volumes --json (used, shards, segments, payload_bytes) plus every drive file's
# size.
snapshot() {
  local vols
  vols=$("$BIN" --config "$C" --json list-volumes 2>/dev/null |
    $PY -c 'import json,sys
for v in json.load(sys.stdin): print(v["index"], v["used"], v["shards"], v["segments"], v["payload_bytes"], v["state"])')
  printf '%s\n' "$vols"
  (cd "$S" && find d0 d1 -type f -printf '%p %s\n' 2>/dev/null | sort)
}

# new_store NAME [QUOTA_0] [QUOTA_1] [extra config lines] : a fresh store under $T/NAME with a
# TOML config (two drives d0 and d1, relative paths, its own state folder), initialized.
# Sets S (its folder) and C (its config).
new_store() {
  S=$T/$1
  C=$S/dfrp.toml
  mkdir -p "$S"
  cat >"$C" <<EOF
# test store $1
DRIVE_0 = "d0"
QUOTA_0 = "${2:-1M}"
DRIVE_1 = "d1"
QUOTA_1 = "${3:-4M}"
STATE_DIR = "state"
VECTOR_DIM = 3
LEAF_SIZE = 4096
${4:-}
EOF
  "$BIN" --config "$C" init-storage --create >/dev/null 2>"$T/err" ||
    echo "# new_store $1: init-storage failed: $(cat "$T/err")"
}

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
UUID7_RE='^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
