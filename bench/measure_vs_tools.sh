#!/usr/bin/env bash
# Compares the capacity measurement (bench/measure_main.cc, target measure_tool) with fio and
# `openssl speed` running the same jobs, and prints each pair with ours/theirs; a ratio outside
# 0.85..1.15 is flagged. The jobs match MeasureCapacity's full mode exactly:
#   write     1 MiB blocks, O_DIRECT, 512 MiB, fdatasync at the end (timed), into a new file
#             that is not preallocated (fio's default fallocate=native is turned off)
#   read      1 MiB blocks, O_DIRECT, the same 512 MiB file
#   randread  4 KiB blocks, O_DIRECT, queue depth 1, 5 s over the same file
#   sha256    64-byte inputs, 3 s, one thread and one per core, timed two ways by our harness:
#             EVP_Digest per input (the loop openssl speed times: the like-for-like pair, held
#             to +-15%) and the node's own path (what capacity.json reports; faster, because
#             it sets up no EVP context per input; its ratio is shown, not held to +-15%)
#
# usage: bench/measure_vs_tools.sh FOLDER [MEASURE_TOOL]
#   FOLDER        where both test files go (removed afterwards); pick the disk to measure
#   MEASURE_TOOL  default build/bench/measure_tool (configure with -DDFRP_BENCH=ON and
#                 `cmake --build build --target measure_tool`)
# Installs fio with apt-get when it is missing.
set -euo pipefail

folder=${1:?usage: bench/measure_vs_tools.sh FOLDER [MEASURE_TOOL]}
tool=${2:-build/bench/measure_tool}
[[ -d $folder ]] || { echo "no folder $folder: create it first" >&2; exit 2; }
[[ -x $tool ]] || { echo "no $tool: build it with cmake --build build --target measure_tool (DFRP_BENCH=ON)" >&2; exit 2; }
if ! command -v fio >/dev/null; then
  echo "+ apt-get install -y fio   (fio is missing)" >&2
  # apt-get update only when the plain install cannot find the package.
  apt-get install -y fio >/dev/null || { apt-get update >/dev/null && apt-get install -y fio >/dev/null; }
fi
cores=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work" "$folder/fio.tmp"' EXIT

run() { echo "+ $*" >&2; "$@"; }

run "$tool" "$folder" >"$work/ours.json"

fio_common=(--filename="$folder/fio.tmp" --size=512M --direct=1 --ioengine=psync
            --output-format=json)
run fio --name=w --rw=write --bs=1M --end_fsync=1 --fallocate=none "${fio_common[@]}" >"$work/fio_w.json"
run fio --name=r --rw=read --bs=1M "${fio_common[@]}" >"$work/fio_r.json"
run fio --name=rr --rw=randread --bs=4k --iodepth=1 --runtime=5 --time_based \
  "${fio_common[@]}" >"$work/fio_rr.json"

run openssl speed -seconds 3 -bytes 64 sha256 >"$work/ossl_1.txt" 2>/dev/null
run openssl speed -seconds 3 -bytes 64 -multi "$cores" sha256 >"$work/ossl_n.txt" 2>/dev/null

python3 - "$work" "$cores" <<'PY'
import json, re, sys
work, cores = sys.argv[1], sys.argv[2]
ours = json.load(open(f"{work}/ours.json"))
vol = ours["volumes"][0]
if vol["error"]:
    sys.exit(f"measure_tool could not measure the folder: {vol['error']}")

def fio(name, kind):
    job = json.load(open(f"{work}/fio_{name}.json"))["jobs"][0][kind]
    return job

def openssl(name):
    # Its table is in 1000s of bytes per second; a 64-byte input is one hash.
    for line in reversed(open(f"{work}/ossl_{name}.txt").read().splitlines()):
        m = re.match(r"^sha256\s+([\d.]+)k\s*$", line)
        if m:
            return float(m.group(1)) * 1000 / 64
    sys.exit(f"no sha256 line in openssl's output ({work}/ossl_{name}.txt)")

rows = [
    ("seq write MB/s (1 MiB, O_DIRECT, fdatasync)", vol["write_mb_per_sec"], fio("w", "write")["bw_bytes"] / 1e6, "fio"),
    ("seq read MB/s (1 MiB, O_DIRECT)", vol["read_mb_per_sec"], fio("r", "read")["bw_bytes"] / 1e6, "fio"),
    ("4 KiB random read IOPS (QD1, O_DIRECT)", vol["read_iops_4k"], fio("rr", "read")["iops"], "fio"),
    ("sha256/s 64 B, one core, EVP_Digest per input", ours["evp_sha256_per_sec_one_core"], openssl("1"), "openssl"),
    (f"sha256/s 64 B, {cores} cores, EVP_Digest per input", ours["evp_sha256_per_sec_all_cores"], openssl("n"), "openssl"),
]
# The node's own path against the same openssl figures: shown, not held to +-15%.
shown = [
    ("sha256/s 64 B, one core, node path", ours["sha256_per_sec_one_core"], openssl("1"), "openssl"),
    (f"sha256/s 64 B, {cores} cores, node path", ours["sha256_per_sec_all_cores"], openssl("n"), "openssl"),
]
print(f"direct_io={vol['direct_io']}  cores={ours['cores']}  gpu: "
      f"{ours['gpu_tflops'] if ours['gpu_tflops'] is not None else ours['gpu_reason']}")
print(f"{'figure':52} {'ours':>14} {'tool':>14} {'ours/tool':>9}")
bad = 0
for name, a, b, tool in rows:
    ratio = a / b if b else float("inf")
    flag = "" if 0.85 <= ratio <= 1.15 else f"  <-- outside +-15% of {tool}"
    bad += bool(flag)
    print(f"{name:52} {a:14.1f} {b:14.1f} {ratio:9.3f}{flag}")
for name, a, b, tool in shown:
    print(f"{name:52} {a:14.1f} {b:14.1f} {a / b if b else float('inf'):9.3f}  (the node's path; see docs/BENCHMARKS.md)")
sys.exit(1 if bad else 0)
PY
