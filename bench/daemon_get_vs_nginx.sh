#!/usr/bin/env bash
# Random GETs of COUNT shards of 4 KiB through dfrpd vs nginx serving the same bytes as static
# files (sendfile on), on the same machine: wrk, CONNECTIONS connections, THREADS threads,
# DURATION seconds, one random path of the COUNT per request. Alternates nginx and dfrpd RUNS
# times; medians of requests/s and p99. Target (issue 6): dfrpd/nginx requests/s >= 0.5.
#   COUNT=10000 DURATION=30 RUNS=3 bench/daemon_get_vs_nginx.sh
source "$(dirname "$0")/lib.sh"
COUNT=${COUNT:-10000}
DURATION=${DURATION:-30}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
command -v wrk > /dev/null && [ -x /usr/sbin/nginx ] || { echo "needs wrk and nginx" >&2; exit 2; }

# The same random bytes as static files and as shards (written before the daemon starts).
mkdir -p "$WORK/www"
python3 - "$WORK" "$COUNT" <<'PY'
import os, sys
work, count = sys.argv[1], int(sys.argv[2])
with open(f"{work}/list.txt", "w") as lst, open(f"{work}/nginx-paths.txt", "w") as np:
    for i in range(count):
        name = f"f{i:07d}"
        with open(f"{work}/www/{name}", "wb") as f:
            f.write(os.urandom(4096))
        lst.write(f"{work}/www/{name}\n")
        np.write(f"/{name}\n")
PY
new_store g $(( COUNT * 5 / 1024 + 64 ))M
"$S" --config "$CFG" --json write-shard --files-from "$WORK/list.txt" > "$WORK/written.json"
python3 - "$WORK" "$COUNT" <<'PY'
import json, sys
work, count = sys.argv[1], int(sys.argv[2])
written = json.load(open(f"{work}/written.json"))
assert len(written) == count, f"{len(written)} shards written, {count} asked"
with open(f"{work}/dfrpd-paths.txt", "w") as f:
    for w in written:
        assert w["size"] == 4096
        f.write(f"/v1/shards/{w['shard_id']}\n")
PY

# wrk: each thread loads the paths and picks one at random per request.
cat > "$WORK/random_get.lua" <<'LUA'
local threads, reqs, n = {}, {}, 0
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(args[1]) do reqs[#reqs + 1] = wrk.format("GET", line) end
  math.randomseed(os.time() * 1009 + id * 7919)
  n = #reqs
end
function request() return reqs[math.random(n)] end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %.1f %d %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
LUA

# nginx: a minimal static server over the same folder.
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
error_log stderr;
pid $WORK/nginx/nginx.pid;
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  default_type application/octet-stream;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
EOF
/usr/sbin/nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" > "$WORK/nginx/log" 2>&1 &
BG_PIDS+=($!)
start_dfrpd SCRUB_RATE=0
for i in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/f0000000" && break; sleep 0.05; done
curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/f0000000" || { cat "$WORK/nginx/log" >&2; exit 1; }
# Both answer the same bytes.
first_id=$(head -1 "$WORK/dfrpd-paths.txt")
cmp <(curl -sf "$URL$first_id") "$WORK/www/f0000000"
cmp <(curl -sf "http://127.0.0.1:$NGINX_PORT/f0000000") "$WORK/www/f0000000"

# run_wrk BASE PATHS: one measured run; prints "requests/s p99_us non2xx socket_errors"
run_wrk() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/random_get.lua" \
    "$1" -- "$2" > "$WORK/wrk.out" 2>&1
  cat "$WORK/wrk.out" >> "$WORK/wrk.log"
  sed -n 's/^RESULT //p' "$WORK/wrk.out"
}
# Warm both (page cache, connections, the daemon's index pages).
DURATION=2 run_wrk "http://127.0.0.1:$NGINX_PORT" "$WORK/nginx-paths.txt" > /dev/null
DURATION=2 run_wrk "$URL" "$WORK/dfrpd-paths.txt" > /dev/null
n_rps=() n_p99=() d_rps=() d_p99=() errors=0
for i in $(seq "$RUNS"); do
  read -r rps p99 bad sock < <(run_wrk "http://127.0.0.1:$NGINX_PORT" "$WORK/nginx-paths.txt")
  n_rps+=("$rps"); n_p99+=("$p99"); errors=$((errors + bad + sock))
  read -r rps p99 bad sock < <(run_wrk "$URL" "$WORK/dfrpd-paths.txt")
  d_rps+=("$rps"); d_p99+=("$p99"); errors=$((errors + bad + sock))
done
stop_dfrpd
[ "$errors" = 0 ] || echo "warning: $errors non-2xx answers or socket errors (see wrk output)" >&2
n=$(median "${n_rps[@]}"); d=$(median "${d_rps[@]}")
np=$(median "${n_p99[@]}"); dp=$(median "${d_p99[@]}")
ms() { python3 -c "print(f'{$1/1000:.2f}')"; }
machine
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, random GET of $COUNT x 4 KiB: nginx ${n} req/s (runs ${n_rps[*]}), p99 $(ms "$np") ms; dfrpd ${d} req/s (runs ${d_rps[*]}), p99 $(ms "$dp") ms; ratio dfrpd/nginx $(ratio "$d" "$n")"
