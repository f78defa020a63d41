#!/usr/bin/env python3
"""The I/O rule of docs/ARCHITECTURE.md, checked: production code outside src/dfrp/core reads
the time only through core::Clock and touches files only through core::FileSystem, both
passed in from the edge (a main, a command's entry). It refuses, outside core/:

  clock        std::chrono::{steady,system,high_resolution}_clock, time(), gettimeofday,
               clock_gettime
  stream       std::ifstream / ofstream / fstream, std::filesystem, fopen
  fs-call      direct POSIX file calls: ::open, ::stat, ::lstat, ::unlink, ::rename, ::mkdir,
               ::rmdir, opendir, ::statvfs, ::truncate, ::fsync
  default-fs   core::DefaultFileSystem() (only an edge picks the real file system)
  default-clock core::SystemClock() (likewise)

Tests (*_test.cc, *_test_util.h, tests/), benchmarks, fuzz targets and tools are not
production code. A place that must break the rule is listed in scripts/lint_io_allow.txt as
`path rule  # why`; an entry that no longer matches anything is itself an error, so the list
only shrinks with the code.
"""
import re
import subprocess
import sys
from pathlib import Path

RULES = {
    "clock": re.compile(
        r"std::chrono::(steady_clock|system_clock|high_resolution_clock)|"
        r"(?<![\w:.])::time\(|(?<![\w:.>])time\(nullptr\)|\bgettimeofday\(|\bclock_gettime\("),
    "stream": re.compile(r"std::(i|o)?fstream\b|std::filesystem\b|(?<![\w:])fopen\("),
    "fs-call": re.compile(
        r"(?<![\w.>])::(open|stat|lstat|unlink|rename|mkdir|rmdir|statvfs|truncate|fsync)\(|"
        r"(?<![\w:.>])opendir\("),
    "default-fs": re.compile(r"\bDefaultFileSystem\(\)"),
    "default-clock": re.compile(r"\bSystemClock\(\)"),
}


def production_files(root):
    out = subprocess.run(["git", "ls-files", "src", "apps"], cwd=root, check=True,
                         capture_output=True, text=True).stdout.split()
    for f in out:
        if not (f.endswith(".cc") or f.endswith(".h")):
            continue
        if f.startswith("src/dfrp/core/"):
            continue
        name = Path(f).name
        if name.endswith("_test.cc") or name.endswith("_test_util.h"):
            continue
        yield f


def strip_comment(line):
    # Good enough for this code base: no "//" inside the string literals these rules match.
    in_str = False
    for i, c in enumerate(line):
        if c == '"' and (i == 0 or line[i - 1] != "\\"):
            in_str = not in_str
        elif not in_str and line.startswith("//", i):
            return line[:i]
    return line


def main():
    root = Path(__file__).resolve().parent.parent
    allow = {}
    allow_file = root / "scripts" / "lint_io_allow.txt"
    for n, raw in enumerate(allow_file.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in RULES:
            sys.exit(f"{allow_file}:{n}: write entries as `path rule  # why` with a rule of "
                     f"{', '.join(RULES)}")
        allow[(parts[0], parts[1])] = 0
    bad = []
    for f in production_files(root):
        for n, raw in enumerate((root / f).read_text().splitlines(), 1):
            line = strip_comment(raw)
            for rule, rx in RULES.items():
                if rx.search(line):
                    if (f, rule) in allow:
                        allow[(f, rule)] += 1
                    else:
                        bad.append(f"{f}:{n}: [{rule}] {raw.strip()}")
    for (f, rule), hits in allow.items():
        if hits == 0:
            bad.append(f"scripts/lint_io_allow.txt: '{f} {rule}' matches nothing any more: "
                       f"remove the entry")
    if bad:
        print("\n".join(bad))
        print(f"lint_io: {len(bad)} problem(s). Read the time through core::Clock and files "
              "through core::FileSystem passed in from the edge, or (rarely) add the place to "
              "scripts/lint_io_allow.txt with the reason.", file=sys.stderr)
        return 1
    print(f"lint_io: clean ({len(allow)} allowed places)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
