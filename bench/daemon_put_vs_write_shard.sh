#!/usr/bin/env bash
# COUNT files of SIZE_KB KiB of random data stored durably: one `write-shard --files-from`
# batch (one process) into a fresh store vs PUT /v1/shards of the same files through dfrpd
# into a fresh store, CONNECTIONS connections from wrk (THREADS threads, each sending its part
# of the files once, bodies loaded before the clock starts). Alternates, RUNS times; medians
# of MB/s. Target (issue 6): dfrpd/write-shard >= 0.8.
#   COUNT=512 SIZE_KB=1024 CONNECTIONS=16 RUNS=3 bench/daemon_put_vs_write_shard.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-512}
SIZE_KB=${SIZE_KB:-1024}
CONNECTIONS=${CONNECTIONS:-16}
# One wrk thread: wrk loads the bodies of its threads one thread after the other, in its main
# thread, while the threads already started are sending, so with two the first thread's clock
# would run while the second's 256 MiB are read and copied on the same two cores.
THREADS=${THREADS:-1}
command -v wrk > /dev/null || { echo "needs wrk" >&2; exit 2; }
total_mb=$(( COUNT * SIZE_KB / 1024 ))
avail_mb=$(df -m --output=avail "$WORK" | tail -1)
[ "$avail_mb" -gt $(( total_mb * 3 + 1024 )) ] || { echo "not enough free disk: ${avail_mb} MB" >&2; exit 2; }
quota=$(( total_mb * 2 + 256 ))M  # room for the records' overhead and the last requests in flight

mkdir -p "$WORK/in"
python3 - "$WORK" "$COUNT" "$SIZE_KB" <<'PY'
import os, sys
work, count, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(f"{work}/list.txt", "w") as lst:
    for i in range(count):
        p = f"{work}/in/f{i:05d}"
        with open(p, "wb") as f:
            f.write(os.urandom(kb * 1024))
        lst.write(p + "\n")
PY
cat "$WORK"/in/* > /dev/null

# wrk: thread k sends files k, k+THREADS, ... once each (requests built in init, before the
# clock), counts the 201s and stops once it has as many answers as files; its clock is
# /proc/uptime (10 ms) from its first request to that answer. Each thread leaves a marker
# file when done, so that the script can end wrk (whose main thread sleeps for -d).
cat > "$WORK/put.lua" <<'LUA'
local threads = {}
local reqs, sent, answers = {}, 0, 0
created, other, t0, t1 = 0, 0, -1, -1
local function uptime()
  local f = io.open("/proc/uptime"); local s = f:read("*n"); f:close(); return s
end
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  local nth, i = tonumber(args[2]), 0
  marker = args[3] .. "/done." .. id
  -- wrk 4.1 calls request() once on the first thread's state before any thread starts, to
  -- count the requests it pipelines (script_verify_request): that call must neither use up a
  -- file nor start the clock.
  verify_call = id == 0
  for path in io.lines(args[1]) do
    if i % nth == id then
      local f = io.open(path, "rb"); local body = f:read("*a"); f:close()
      reqs[#reqs + 1] = wrk.format("PUT", "/v1/shards?name=" .. path:match("[^/]+$"),
        {["Content-Type"] = "application/octet-stream"}, body)
    end
    i = i + 1
  end
end
function request()
  if verify_call then
    verify_call = false
    return wrk.format("GET", "/healthz")
  end
  if t0 < 0 then t0 = uptime() end
  sent = sent + 1
  -- Each file exactly once: a connection that asks for more once all are sent gets a cheap
  -- GET, whose 200 is not counted, so the store holds exactly COUNT shards.
  if sent > #reqs then return wrk.format("GET", "/healthz") end
  return reqs[sent]
end
function response(status, headers, body)
  if status == 200 then return end  -- a /healthz filler
  if answers >= #reqs then return end  -- answers that came after this thread was done
  if status == 201 then created = created + 1 else other = other + 1 end
  answers = answers + 1
  if answers == #reqs then
    t1 = uptime()
    io.open(marker, "w"):close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local c, o, a, b = 0, 0, math.huge, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); o = o + t:get("other")
    a = math.min(a, t:get("t0")); b = math.max(b, t:get("t1"))
  end
  io.write(string.format("RESULT %d %d %.3f\n", c, o, b - a))
end
LUA

# put_run I: one daemon run into a fresh store; sets created, other, secs, shards
put_run() {
  new_store p$1 "$quota"
  start_dfrpd SCRUB_RATE=0
  rm -rf "$WORK/markers"; mkdir -p "$WORK/markers"
  sync; sleep 1
  wrk -t"$THREADS" -c"$CONNECTIONS" -d600s -s "$WORK/put.lua" "$URL" -- \
    "$WORK/list.txt" "$THREADS" "$WORK/markers" > "$WORK/wrk.out" 2>&1 &
  local wpid=$!
  # Shell built-ins only while wrk runs (an `ls | wc` every 50 ms took a quarter of a core).
  local t all
  for (( ; ; )); do
    all=1
    for (( t = 0; t < THREADS; t++ )); do [ -e "$WORK/markers/done.$t" ] || all=0; done
    [ "$all" = 1 ] && break
    kill -0 "$wpid" 2>/dev/null || break
    sleep 0.2
  done
  kill -INT "$wpid" 2>/dev/null || true
  wait "$wpid" || true
  cat "$WORK/wrk.out" >> "$WORK/wrk.log"
  stop_dfrpd  # lets the writes still queued finish
  read -r created other secs < <(sed -n 's/^RESULT //p' "$WORK/wrk.out")
  shards=$(store_shards)
  rm -rf "${WORK:?}/p$1"
}
store_shards() {
  "$S" --config "$CFG" --json list-volumes |
    python3 -c "import json,sys; j=json.load(sys.stdin); print(sum(v['shards'] for v in (j['volumes'] if isinstance(j, dict) else j)))"
}

w_mbs=() d_mbs=() notes=()
for i in $(seq "$RUNS"); do
  new_store w$i "$quota"
  sync; sleep 1
  t=$(seconds "$S" --config "$CFG" -q write-shard --files-from "$WORK/list.txt")
  n=$(store_shards)
  [ "$n" = "$COUNT" ] || { echo "write-shard stored $n shards, not $COUNT" >&2; exit 1; }
  w_mbs+=("$(python3 -c "print(f'{$COUNT*$SIZE_KB*1024/1e6/$t:.1f}')")")
  rm -rf "${WORK:?}/w$i"
  put_run "$i"
  [ "$created" = "$COUNT" ] && [ "$other" = 0 ] && [ "$shards" = "$COUNT" ] ||
    { echo "dfrpd answered $created x 201 and $other others for $COUNT files, and holds $shards shards" >&2; cat "$WORK/wrk.out" >&2; exit 1; }
  d_mbs+=("$(python3 -c "print(f'{$created*$SIZE_KB*1024/1e6/$secs:.1f}')")")
  notes+=("run $i: ${secs}s, $created x 201, $shards shards in the store afterwards;")
done
w=$(median "${w_mbs[@]}"); d=$(median "${d_mbs[@]}")
machine
echo "(dfrpd ${notes[*]})"
echo "$COUNT x $SIZE_KB KiB ($total_mb MiB): write-shard --files-from ${w} MB/s (runs ${w_mbs[*]}), dfrpd PUT x$CONNECTIONS ${d} MB/s (runs ${d_mbs[*]}), ratio dfrpd/write-shard $(ratio "$d" "$w")"
