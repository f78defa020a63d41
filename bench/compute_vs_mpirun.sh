#!/usr/bin/env bash
# A job through dfrp-compute against the same app under bare mpirun (issue 16): matmul N SEED
# on 1, 2 and 4 ranks, RUNS times each, alternating, medians of the wall time. Bare mpirun
# gets the same flags dfrp-jobrun passes and, when this runs as root, the same user (setpriv
# to dfrp-job), so the difference is dfrp-compute's own work: the launcher, limits, the
# job folder, moving and hashing the outputs, run.json. Target: dfrp-compute ≤ 1.10 × bare
# + 0.3 s.
#   N=1024 RUNS=5 bench/compute_vs_mpirun.sh
source "$(dirname "$0")/lib.sh"
N=${N:-1024}
SEED=${SEED:-7}
RUNS=${RUNS:-5}
C=$BUILD/apps/dfrp-compute/dfrp-compute
APP=$BUILD/libexec/dfrp-app-matmul
[ -x "$C" ] && [ -x "$APP" ] || { echo "build first (dfrp-compute and the MPI apps)" >&2; exit 2; }
chmod 711 "$WORK"
printf 'STATE_DIR=%s/state\n' "$WORK" > "$WORK/dfrp.env"
AS=()
if [ "$(id -u)" = 0 ]; then AS=(setpriv --reuid=dfrp-job --regid=dfrp-job --clear-groups); fi
mkdir -p "$WORK/bare"
bare() {
  local d=$WORK/bare/$1
  mkdir -p "$d/out" "$d/tmp"
  [ ${#AS[@]} -gt 0 ] && chown -R dfrp-job: "$d"
  (cd "$d" && env -i PATH=/usr/bin:/bin HOME="$d" TMPDIR="$d/tmp" DFRP_OUT_DIR="$d/out" \
    "${AS[@]}" mpirun -np "$2" --oversubscribe --bind-to none --mca btl self,vader,tcp \
    --mca btl_vader_single_copy_mechanism none -x DFRP_OUT_DIR "$APP" "$N" "$SEED")
}
machine
echo "matmul N=$N, $RUNS runs each, medians"
printf '%-6s %10s %14s %8s %10s\n' ranks "bare s" "dfrp-compute s" ratio "target s"
k=0
for ranks in 1 2 4; do
  b=()
  c=()
  for r in $(seq "$RUNS"); do
    k=$((k + 1))
    b+=("$(seconds bare "$k" "$ranks")")
    c+=("$(seconds "$C" --config "$WORK/dfrp.env" run matmul "$N" "$SEED" --ranks "$ranks")")
  done
  mb=$(median "${b[@]}")
  mc=$(median "${c[@]}")
  printf '%-6s %10s %14s %8s %10s\n' "$ranks" "$mb" "$mc" "$(ratio "$mc" "$mb")" \
    "$(python3 -c "print(f'{1.10*$mb+0.3:.3f}')")"
done
# The runs agree with bare mpirun's bytes.
last=$(ls "$WORK/state/compute/runs" | tail -1)
cat "$WORK"/bare/$k/out/rank-{0,1,2,3}.out | cmp -s - <(cat "$WORK/state/compute/runs/$last/job/results"/rank-{0,1,2,3}.out) &&
  echo "outputs: identical to bare mpirun's" || { echo "outputs differ from bare mpirun's" >&2; exit 1; }
