#!/usr/bin/env bash
# Style and static checks: clang-format (fails on any difference) and, with TIDY=1,
# clang-tidy over the compiled sources (needs build/compile_commands.json).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cc' '*.h')
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
if [ "${TIDY:-0}" = 1 ]; then
  mapfile -t sources < <(git ls-files 'src/*.cc' 'apps/*.cc' | grep -v _test.cc)
  clang-tidy -p build --quiet "${sources[@]}"
fi
# Time and files only through core::Clock and core::FileSystem outside core/ (ARCHITECTURE.md).
python3 scripts/lint_io.py
