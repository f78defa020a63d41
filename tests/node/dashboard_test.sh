#!/usr/bin/env bash
# The dashboard end to end: a fresh two-drive store, a real dfrpd on a free loopback port, a
# few shards on volume 0 and volume 1 paused (so the two differ), the node the one authority of
# a committee of one (dfrp-ledger init-committee: its wallet, its economic.toml), then
# dashboard_test.mjs loads the page in chromium and compares it with the API.
#
#   bash tests/node/dashboard_test.sh path/to/dfrpd path/to/dfrp-storage path/to/dfrp-ledger
#
# Prints "PASS name" or "FAIL name: details" per check; exits 1 on any failure. The screenshot
# goes to $TEST_OUTPUT_DIR, else to a temp folder that is kept and printed. Needs bash,
# coreutils, curl, Node.js 20 with playwright-core (`npm ci --ignore-scripts` in the repository
# root) and /usr/bin/chromium (scripts/setup.sh installs all of them). Without one of them the
# test fails: CI installs them, so a missing one is a broken setup, not a reason to skip.

set -u
set -o pipefail

if [[ $# -lt 3 || ! -x $1 || ! -x $2 || ! -x $3 ]]; then
  echo "usage: $0 path/to/dfrpd path/to/dfrp-storage path/to/dfrp-ledger" >&2
  exit 2
fi
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-dashboard-test.XXXXXX")
OUT=${TEST_OUTPUT_DIR:-$T/out}
PID=""
FAILED=0

pass() { echo "PASS $1"; }
fail() {
  FAILED=1
  echo "FAIL $1: $2"
}

stop_daemon() {
  [[ -n $PID ]] || return 0
  kill -TERM "$PID" 2>/dev/null
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$PID" 2>/dev/null; then
    echo "# dfrpd did not stop within 5 s of SIGTERM: SIGKILL"
    kill -KILL "$PID" 2>/dev/null
  fi
  wait "$PID" 2>/dev/null
  PID=""
}

# Keeps the output folder (the screenshot) when it lies inside $T; removes the rest.
cleanup() {
  stop_daemon
  local f
  for f in "$T"/* "$T"/.[!.]*; do
    [[ -e $f && $f != "$OUT" ]] && rm -rf "$f"
  done
  [[ -d $OUT && $OUT == "$T/out" ]] || rmdir "$T" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# die NAME DETAILS : one FAIL line, the daemon's log when there is one, exit 1.
die() {
  fail "$1" "$2"
  if [[ -s $T/dfrpd.log ]]; then
    echo "# last lines of the dfrpd log:"
    tail -n 20 "$T/dfrpd.log" | sed 's/^/#   /'
  fi
  exit 1
}

# json FILE EXPR : evaluates the JavaScript expression EXPR with `j` the parsed FILE.
json() {
  node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
           const v = eval(process.argv[2]); console.log(typeof v === "string" ? v : JSON.stringify(v));' \
    "$1" "$2"
}

###############################################################################
# What the test needs
###############################################################################
command -v node >/dev/null || die "node" "Node.js is missing: install nodejs (scripts/setup.sh)"
command -v curl >/dev/null || die "curl" "curl is missing: apt-get install curl (scripts/setup.sh)"
[[ -x ${CHROMIUM_PATH:-/usr/bin/chromium} ]] ||
  die "chromium" "${CHROMIUM_PATH:-/usr/bin/chromium} is missing: apt-get install chromium (scripts/setup.sh)"
(cd "$ROOT" && node --input-type=module -e "await import('playwright-core')" 2>/dev/null) ||
  die "playwright-core" "cannot import playwright-core from $ROOT: run \`npm ci --ignore-scripts\` there (scripts/setup.sh does)"

# Own copies of the binaries (a rebuild during the run cannot pull them away), no config of
# the caller's, and an empty current folder (no ./dfrp.toml or ./.env picked up by accident).
cp "$1" "$T/dfrpd" && cp "$2" "$T/dfrp-storage" && cp "$3" "$T/dfrp-ledger" ||
  die "setup" "cannot copy the binaries to $T"
while IFS= read -r name; do
  case $name in
    DFRP_CONFIG | LEAF_SIZE | VECTOR_DIM | STATE_DIR | DRIVE_[0-9]* | QUOTA_[0-9]* | API_ADDR | \
      SCRUB_RATE | MAX_CONNECTIONS | MAX_HEADER_BYTES | ROLES | WALLET | WALLET_PASSPHRASE_FILE | \
      ECONOMIC_POLICY) unset "$name" ;;
  esac
done < <(compgen -e)
mkdir -p "$T/cwd" "$T/files" && cd "$T/cwd" || die "setup" "cannot make folders in $T"

###############################################################################
# A store of two drives and its daemon
###############################################################################
# Drive 1's folder name holds markup characters and a space: the page must show them as text.
export DRIVE_0=$T/drive0 QUOTA_0=64M DRIVE_1="$T/drive 1 <b>&amp;" QUOTA_1=64M
export STATE_DIR=$T/state SCRUB_RATE=1M
"$T/dfrp-storage" init-storage --create >"$T/init.log" 2>&1 ||
  die "init-storage" "$(tr '\n' ' ' <"$T/init.log")"
pass "init-storage --create laid out two drives"
# A committee of one whose authority is this node (the committee's URL is the node's: a free
# port now).
PORT=$(node -e "const s = require('net').createServer().listen(0, '127.0.0.1', () => {
  console.log(s.address().port); s.close(); });") || die "free port" "node could not find one"
"$T/dfrp-ledger" init-committee --authorities 1 --dir "$T/committee" --base-port "$PORT" \
  --insecure-test-kdf >"$T/committee.log" 2>&1 ||
  die "init-committee" "$(tr '\n' ' ' <"$T/committee.log")"
export API_ADDR=127.0.0.1:$PORT ROLES=storage,authority ECONOMIC_POLICY=$T/committee/economic.toml
export WALLET=$T/committee/authority-0/wallet.json
export WALLET_PASSPHRASE_FILE=$T/committee/authority-0/passphrase
pass "dfrp-ledger init-committee: this node is the committee of one"

"$T/dfrpd" >"$T/dfrpd.log" 2>&1 &
PID=$!
for ((i = 0; i < 300; i++)); do
  [[ -s $STATE_DIR/dfrpd.json ]] && break
  kill -0 "$PID" 2>/dev/null || die "dfrpd starts" "it exited before it listened"
  sleep 0.1
done
[[ -s $STATE_DIR/dfrpd.json ]] || die "dfrpd starts" "no $STATE_DIR/dfrpd.json after 30 s"
URL=$(json "$STATE_DIR/dfrpd.json" j.url) || die "dfrpd.json" "$(cat "$STATE_DIR/dfrpd.json")"
[[ $URL == http://127.0.0.1:* ]] || die "dfrpd.json" "url is \"$URL\""
pass "dfrpd listens at $URL"
TOKEN=$(tr -d '\n' <"$STATE_DIR/api-token") || die "api-token" "cannot read $STATE_DIR/api-token"

# Volume 1 paused first, so every shard lands on volume 0.
code=$(curl -sS -o "$T/pause.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' --data '{"reason": "dashboard test"}' \
  "$URL/v1/volumes/1/pause") || die "pause volume 1" "curl failed"
[[ $code == 200 ]] || die "pause volume 1" "HTTP $code: $(cat "$T/pause.json")"
pass "POST /v1/volumes/1/pause"

n=0
for size in 100000 300001 1048576; do
  n=$((n + 1))
  f=$T/files/f$n
  head -c "$size" /dev/urandom >"$f"
  code=$(curl -sS -o "$T/put.json" -w '%{http_code}' -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$f" "$URL/v1/shards?name=f$n") || die "PUT shard $n" "curl failed"
  [[ $code == 201 ]] || die "PUT shard $n" "HTTP $code: $(cat "$T/put.json")"
  vol=$(json "$T/put.json" j.volume)
  [[ $vol == 0 ]] || die "PUT shard $n" "landed on volume $vol, not 0: $(cat "$T/put.json")"
done
pass "PUT /v1/shards: $n shards on volume 0"

curl -sS -o "$T/volumes.json" "$URL/v1/volumes" || die "GET /v1/volumes" "curl failed"
states=$(json "$T/volumes.json" 'j.volumes.map((v) => `${v.index}=${v.state}/${v.shards}`).join(" ")')
[[ $states == "0=active/$n 1=paused/0" ]] || die "store state" "volumes are $states"
pass "volume 0 active with $n shards, volume 1 paused"

###############################################################################
# The page in chromium
###############################################################################
echo "# output folder: $OUT"
node "$HERE/dashboard_test.mjs" "$URL" "$OUT" || FAILED=1
kill -0 "$PID" 2>/dev/null || fail "dfrpd" "it died during the test"
stop_daemon
if [[ $FAILED -ne 0 ]]; then
  echo "# last lines of the dfrpd log:"
  tail -n 20 "$T/dfrpd.log" | sed 's/^/#   /'
  exit 1
fi
echo "# screenshot: $OUT/dashboard.png"
exit 0
