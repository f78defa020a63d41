# Shared helpers for the whole-command benchmarks. Source it; needs BUILD (default ../build).
set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$BENCH_ROOT/build}
S=$BUILD/apps/dfrp-storage/dfrp-storage
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d /var/tmp/dfrp-bench-XXXXXX)}
# Servers a script started (dfrpd, nginx): stopped before $WORK goes.
BG_PIDS=()
bench_exit() {
  local p
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap bench_exit EXIT

D=$BUILD/apps/dfrpd/dfrpd
[ -x "$S" ] || { echo "build first: cmake --build $BUILD" >&2; exit 2; }

# seconds COMMAND... : wall-clock seconds of one run, to stdout
seconds() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1-$t0:.3f}')"
}
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.3f}')" "$@"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

# new_store NAME QUOTA: a fresh one-drive store under $WORK/NAME; sets CFG
new_store() {
  rm -rf "${WORK:?}/$1"
  mkdir -p "$WORK/$1"
  printf 'DRIVE_0=d0\nQUOTA_0=%s\nSTATE_DIR=state\n' "$2" > "$WORK/$1/store.env"
  CFG="$WORK/$1/store.env"
  "$S" --config "$CFG" -q init-storage --create
}

machine() {
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM, fs $(df -T "$WORK" | awk 'NR==2{print $2}')"
}

# start_dfrpd: serves the store of $CFG (new_store) on a free loopback port, with the extra
# config lines given as arguments (SCRUB_RATE=0, ...); waits for STATE_DIR/dfrpd.json and
# sets DPID and URL. stop_dfrpd: SIGTERM, and waits for it to finish what is in flight.
start_dfrpd() {
  local dir state i
  dir=$(dirname "$CFG")
  state=$dir/state
  sed -i '/^API_ADDR=/d; /^SCRUB_RATE=/d' "$CFG"
  printf '%s\n' API_ADDR=127.0.0.1:0 "$@" >> "$CFG"
  rm -f "$state/dfrpd.json"
  "$D" --config "$CFG" > "$dir/dfrpd.log" 2>&1 &
  DPID=$!
  BG_PIDS+=("$DPID")
  for i in $(seq 600); do
    [ -s "$state/dfrpd.json" ] && break
    kill -0 "$DPID" 2>/dev/null || { cat "$dir/dfrpd.log" >&2; echo "dfrpd died" >&2; exit 1; }
    sleep 0.05
  done
  [ -s "$state/dfrpd.json" ] || { echo "dfrpd did not start in 30 s" >&2; exit 1; }
  URL=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['url'])" "$state/dfrpd.json")
}
stop_dfrpd() {
  kill -TERM "$DPID" 2>/dev/null || true
  wait "$DPID" 2>/dev/null || true
}
# free_port: a TCP port on 127.0.0.1 that nothing listens on now
free_port() {
  python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"
}
