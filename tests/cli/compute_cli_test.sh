#!/usr/bin/env bash
# End-to-end test of dfrp-compute (issue 16) with a real mpirun: the catalog (reference apps
# and a COMPUTE_APPS file, bad entries named), runs of the three reference apps, verify-job
# (a re-run gives the same root: exit 0; an output changed after the run: exit 3), result
# (each rank checked against the root with its proof, copied with -o; a changed one: exit 3),
# a job over its wall time (exit 1, the run kept as wall-time), and bad arguments (exit 2, 4).
#
#   bash tests/cli/compute_cli_test.sh path/to/dfrp-compute
set -u
if [[ $# -lt 1 || ! -x $1 ]]; then
  echo "usage: $0 path/to/dfrp-compute" >&2
  exit 2
fi
B=$(realpath "$1")
T=$(mktemp -d "${TMPDIR:-/tmp}/dfrp-compute-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
# The job user (dfrp-job, when this runs as root) must reach the run folders.
chmod 711 "$T"
unset DFRP_CONFIG STATE_DIR COMPUTE_APPS COMPUTE_JOB_USER COMPUTE_HOSTFILE COMPUTE_RSH_AGENT
cd "$T" || exit 2
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); echo "not ok - $1: $2"; }
run() {
  "$@" >"$T/out" 2>"$T/err"
  RC=$?
  OUT=$(cat "$T/out")
  ERR=$(cat "$T/err")
}
expect() {  # NAME RC [PATTERN on stdout+stderr]
  if [[ $RC -ne $2 ]]; then
    not_ok "$1" "exit $RC, expected $2; stdout=[${OUT:0:400}] stderr=[${ERR:0:400}]"
  elif [[ $# -ge 3 ]] && ! grep -Eq -- "$3" <<<"$OUT$ERR"; then
    not_ok "$1" "no /$3/ in stdout=[${OUT:0:400}] stderr=[${ERR:0:400}]"
  else
    ok "$1"
  fi
}
json() { python3 -c "import json,sys; d=json.load(open('$T/out')); print($1)"; }

cat >dfrp.toml <<TOML
STATE_DIR = "state"
TOML

run "$B" apps
expect "apps lists the reference apps" 0 'matmul.*reference, deterministic'
run "$B" --json apps
expect "apps --json" 0
[[ $(json 'len(d["apps"])') == 3 && $(json 'all(a["present"] for a in d["apps"])') == True ]] &&
  ok "three reference apps, all built" || not_ok "three reference apps, all built" "$OUT"

# The operator's catalog.
cat >apps.toml <<TOML
[[app]]
name = "hog"
path = "$(dirname "$(json 'd["apps"][0]["path"]')")/dfrp-app-hog"
description = "a test app"
args = [ { name = "MODE", type = "enum", values = ["sleep", "spin"] },
         { name = "SECONDS", type = "uint", min = 0, max = 100 } ]
TOML
echo 'COMPUTE_APPS = "apps.toml"' >>dfrp.toml
run "$B" --json apps
expect "a COMPUTE_APPS catalog adds its apps" 0 '"name": "hog"'
cp apps.toml apps.good
printf '[[app]]\nname = "matmul"\npath = "/bin/true"\n' >apps.toml
run "$B" apps
expect "a reference app's name cannot be taken" 2 "apps.toml: app 'matmul': the name of a reference app"
printf '[[app]]\nname = "x"\npath = "bin/x"\n' >apps.toml
run "$B" apps
expect "a relative path is refused, naming the field" 2 "app 'x': 'path' is not absolute"
cp apps.good apps.toml

# Runs of the reference apps.
run "$B" --json run matmul 96 5 --ranks 3
expect "matmul on 3 ranks" 0 '"end": "exited"'
MM=$(json 'd["id"]')
MM_ROOT=$(json 'd["result_root"]')
[[ $(json 'len(d["outputs"])') == 3 && $(json 'sum(o["size"] for o in d["outputs"])') == $((96 * 96 * 8)) ]] &&
  ok "three outputs holding all of C" || not_ok "three outputs holding all of C" "$OUT"
if [[ $(id -u) == 0 ]]; then
  [[ $(json 'd["user"]') == dfrp-job ]] && ok "ran as dfrp-job, not root" || not_ok "ran as dfrp-job" "$OUT"
fi
run "$B" --json run matmul 96 5 --ranks 3
[[ $(json 'd["result_root"]') == "$MM_ROOT" ]] && ok "the same job twice: the same result root" ||
  not_ok "the same job twice: the same result root" "$OUT"
run "$B" run montecarlo 100000 3 -n 2
expect "montecarlo on 2 ranks" 0 'result root [0-9a-f]{64}'
run "$B" run knn 2000 8 4 3 9 -n 4
expect "knn on 4 ranks" 0 'exited'
run "$B" runs
expect "runs lists them" 0 'knn'

run "$B" verify-job "$MM"
expect "verify-job: a re-run gives the same root" 0 'verified'
run "$B" result "$MM" -o copies
expect "result: every rank verified" 0 'rank 2: verified'
cmp -s copies/rank-1.out "state/compute/runs/$MM/job/results/rank-1.out" && ok "result -o copies the outputs" ||
  not_ok "result -o copies the outputs" "$(ls copies)"
printf 'x' | dd of="state/compute/runs/$MM/job/results/rank-1.out" bs=1 seek=100 conv=notrunc status=none
run "$B" result "$MM"
expect "result: a changed output does not verify (exit 3)" 3 'rank 1 does not verify'
run "$B" verify-job "$MM"
expect "verify-job: a changed output is caught (exit 3)" 3 'rank 1 no longer matches'

# A provider that claims a result its job did not produce: the re-run catches it.
run "$B" --json run montecarlo 20000 4 -n 2
MC=$(json 'd["id"]')
python3 - "state/compute/runs/$MC/run.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["result_root"] = "ab" * 32
json.dump(d, open(p, "w"))
PY
run "$B" verify-job "$MC"
expect "verify-job: a claimed root the re-run does not give (exit 3)" 3 'another result root'

# Failures and bad input.
run "$B" run hog sleep 30 --wall-seconds 1
expect "a job over its wall time fails (exit 1)" 1 'stopped at its wall-time limit'
run "$B" --json runs
[[ $(json '[r["end"] for r in d["runs"]].count("wall-time")') == 1 ]] && ok "the run is kept as wall-time" ||
  not_ok "the run is kept as wall-time" "$OUT"
run "$B" run matmul 9000 1
expect "an argument outside its range (exit 2)" 2 'N = 9000 is outside 1..8192'
run "$B" run hog fly 1
expect "an enum argument outside its values (exit 2)" 2 "MODE = 'fly' is not one of sleep, spin"
run "$B" run nosuch 1
expect "an unknown app (exit 4)" 4 "no app 'nosuch'"
run "$B" status 01234567-0000-7000-8000-000000000000
expect "an unknown run (exit 4)" 4 'no run'
run "$B" run matmul 8 1 --memory 1k
expect "a bad --memory (exit 2)" 2 'at least 16M'
run "$B" run
expect "run without an app (exit 2)" 2 'app is required'
run "$B" submit-job matmul 8 1 --max-fee 1 --node http://127.0.0.1:9 --wallet nowallet.json
expect "submit-job names a missing wallet and the way out (exit 4)" 4 'nowallet.json does not exist: create it'
run "$B" submit-job matmul 8 1 --node http://127.0.0.1:9 --wallet nowallet.json
expect "submit-job without --max-fee (exit 2)" 2 'max-fee is required'

echo "# $PASS passed, $FAIL failed"
[[ $FAIL -eq 0 ]]
