#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the unit and end-to-end tests in a
# release build (gcc), the same tests under AddressSanitizer + UndefinedBehaviorSanitizer, the
# daemon's tests under ThreadSanitizer (clang, which also checks the lock annotations), and a
# short run of each libFuzzer target. The sanitizer build is a clang build that also holds the
# fuzz targets (code instrumented for libFuzzer runs as usual outside a fuzz target), so one
# build serves both. Exits non-zero if anything fails.
#
#   scripts/test.sh            everything (what CI runs)
#   SKIP_SANITIZE=1 SKIP_TSAN=1 SKIP_FUZZ=1 scripts/test.sh   the release tests only
#   FUZZ_SECONDS=60 scripts/test.sh               longer fuzz runs
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
# The multi-threaded daemon's tests, run again under ThreadSanitizer.
TSAN_TESTS='^(node_test|node_client_test|mesh_daemon|daemon_api|daemon_hostile|daemon_cli|vector_daemon)$'

# Each step's wall time goes into the last line too, so a CI log's tail shows where the time went.
TIMES=""
LAST_STEP="" LAST_AT=0
step() {
  [ -n "$LAST_STEP" ] && TIMES="$TIMES${TIMES:+, }$LAST_STEP $((SECONDS - LAST_AT))s"
  LAST_STEP=${1%% (*} LAST_AT=$SECONDS
  printf '\n== %s (at %ds)\n' "$*" "$SECONDS"
}

step "setup"
bash scripts/setup.sh

# Sanitizer reports name functions and lines: LLVM's symbolizer if there is one, else binutils'
# addr2line (which clang's sanitizers can drive too).
SYMBOLIZER=$(command -v llvm-symbolizer || command -v addr2line || true)
export ASAN_SYMBOLIZER_PATH=$SYMBOLIZER TSAN_SYMBOLIZER_PATH=$SYMBOLIZER

# Line tables only (-g1): stack traces from sanitizers and crashes keep file and line, and
# the four builds compile in about a third less time than with full debug info (-g).
# Unity builds (8 sources of a target per compiled file): the heavy headers (Boost.Beast,
# nlohmann/json, CLI11, gtest) are parsed once per batch instead of once per source, which
# more than halves the builds' time on two cores. Sources therefore keep their file-local names
# distinct within a target; UNITY=0 builds source by source.
LINES_ONLY=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"
            -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" -DCMAKE_C_FLAGS_DEBUG="-O0 -g1"
            -DCMAKE_UNITY_BUILD="$( [ "${UNITY:-1}" = 1 ] && echo ON || echo OFF )"
            -DCMAKE_UNITY_BUILD_BATCH_SIZE=8)

step "format check"
bash scripts/lint.sh

step "release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${LINES_ONLY[@]}" >/dev/null
cmake --build build -j "$JOBS"
step "release tests"
(cd build && ctest -j "$JOBS" --output-on-failure --timeout 900)
passed=$(cd build && ctest -N | sed -n 's/^Total Tests: //p')

# The ASan+UBSan build (clang-16), with the fuzz targets unless SKIP_FUZZ=1.
FUZZ_IN_ASAN=ON
if [ "${SKIP_FUZZ:-0}" = 1 ] || [ ! -d fuzz ]; then FUZZ_IN_ASAN=OFF; fi
if [ "${SKIP_SANITIZE:-0}" != 1 ] || [ "$FUZZ_IN_ASAN" = ON ]; then
  step "ASan+UBSan build (clang-16; with the libFuzzer targets)"
  CC=clang-16 CXX=clang++-16 cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DDFRP_SANITIZE=ON -DDFRP_FUZZ="$FUZZ_IN_ASAN" -DDFRP_BENCH=OFF "${LINES_ONLY[@]}" >/dev/null
  cmake --build build-asan -j "$JOBS"
fi

if [ "${SKIP_SANITIZE:-0}" != 1 ]; then
  step "ASan+UBSan tests"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:external_symbolizer_path=$SYMBOLIZER \
    ctest -j "$JOBS" --output-on-failure --timeout 1800 -LE slow)
  passed=$((passed + $(cd build-asan && ctest -N -LE slow | sed -n 's/^Total Tests: //p')))
fi

if [ "${SKIP_TSAN:-0}" != 1 ]; then
  # clang-16: ThreadSanitizer, and -Werror=thread-safety checks every lock annotation.
  step "ThreadSanitizer build (clang-16; lock annotations checked)"
  CC=clang-16 CXX=clang++-16 cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDFRP_TSAN=ON -DDFRP_BENCH=OFF "${LINES_ONLY[@]}" >/dev/null
  cmake --build build-tsan -j "$JOBS" --target node_test node_client_test dfrpd dfrp-storage dfrp-ledger dfrp-wallet dfrp-mesh
  step "ThreadSanitizer: the daemon's tests"
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:external_symbolizer_path=$SYMBOLIZER:suppressions=$ROOT/scripts/tsan-suppressions.txt \
    ctest -j "$JOBS" --output-on-failure --timeout 1800 -R "$TSAN_TESTS")
  passed=$((passed + $(cd build-tsan && ctest -N -R "$TSAN_TESTS" | sed -n 's/^Total Tests: //p')))
fi

if [ "$FUZZ_IN_ASAN" = ON ]; then
  step "fuzz runs (${FUZZ_SECONDS}s each, $JOBS at a time)"
  # One target per core at a time; each one's output is printed when it ends, and any target
  # that finds a crash (non-zero exit) fails the step once all have run.
  fuzz_one() {
    local target=$1 name corpus seeds rc=0
    name=$(basename "$target")
    corpus="$ROOT/build-asan/corpus/$name"
    seeds="$ROOT/fuzz/corpus/${name#fuzz_}"
    mkdir -p "$corpus"
    "$target" -max_total_time="$FUZZ_SECONDS" -print_final_stats=0 "$corpus" \
      $( [ -d "$seeds" ] && echo "$seeds" ) > "$corpus.log" 2>&1 || rc=$?
    { echo "-- $name (exit $rc)"; tail -n 3 "$corpus.log"; }
    return "$rc"
  }
  fuzz_failed=0 running=0
  for target in build-asan/fuzz/fuzz_*; do
    [ -x "$target" ] || continue
    fuzz_one "$target" &
    running=$((running + 1)) passed=$((passed + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || fuzz_failed=1; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n || fuzz_failed=1; running=$((running - 1)); done
  if [ "$fuzz_failed" != 0 ]; then
    echo "a fuzz target failed: its log is under build-asan/corpus/ (see the output above)"
    exit 1
  fi
fi
step "all tests passed"
# Every step above stops the script on its first failure, so reaching here means none failed.
echo "summary: $passed passed, 0 failed; $TIMES"
