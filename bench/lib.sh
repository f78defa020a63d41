# Shared helpers for the whole-command benchmarks. Source it; needs BUILD (default ../build).
set -euo pipefail
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$BENCH_ROOT/build}
S=$BUILD/apps/dfrp-storage/dfrp-storage
RUNS=${RUNS:-3}
WORK=${WORK:-$(mktemp -d /var/tmp/dfrp-bench-XXXXXX)}
trap 'rm -rf "$WORK"' EXIT

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
