#!/usr/bin/env python3
"""dfrpd against hostile clients (issue 11), end to end on loopback.

Usage: daemon_hostile_test.py DFRPD DFRP_STORAGE

- 250 connections that each declare an 8 MiB PUT body and send one byte: the daemon's
  resident memory stays within 64 MiB of idle, /healthz and GETs keep answering, nothing is
  stored, and the spool folder stays empty.
- One budget for all bodies (MAX_BODY_MEMORY): past it a PUT gets 503 with Retry-After.
- A body trickled a byte at a time is cut off (408) by the minimum rate, not kept alive by
  each byte; never before its first body timeout.
- DNS rebinding: a foreign Host is refused (421); listed names (API_HOSTS) and loopback names
  pass. A state-changing request from another site's Origin is refused (403); the dashboard's
  own origin passes.
- Transfer-Encoding other than chunked: 501.
- The token file: a CRLF ending works; a token with a character that is not hex stops the
  daemon with exit 3 and a message; a token file others can read is warned about.
- A full spool file system (a small tmpfs; root only): 507 before the body is read.
- SIGTERM while a `resume --path` check runs: dfrpd exits 0 within --grace-ms (plus the time
  to notice), and the store is whole afterwards.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

MIB = 1 << 20


def rss_kib(pid):
    """VmRSS and VmHWM of a process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out["VmRSS"], out["VmHWM"]


def slow_put(d, size, first=b"x"):
    """A connection that declares a PUT of `size` bytes and sends `first` of them."""
    s = socket.create_connection((d.host, d.port))
    s.sendall(f"PUT /v1/shards?name=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              f"Content-Length: {size}\r\n\r\n".encode() + first)
    return s


def spool_files(env):
    tmp = os.path.join(env["STATE_DIR"], "tmp")
    return [n for n in os.listdir(tmp) if n.startswith("put-")] if os.path.isdir(tmp) else []


def slow_put_attack():
    # A budget large enough to admit every one of them: the bound must come from the bodies
    # being allocated as they arrive, not from refusing them.
    env = store_env("attack", quota="512M", extra={"SCRUB_RATE": "0", "MAX_BODY_MEMORY": "4G",
                                                   "MAX_CONNECTIONS": "300"})
    d = Daemon(env, ["--body-timeout-ms", "60000", "--min-body-rate", "1024"])
    payload = os.urandom(4096)
    st, _, w = d.put(payload, "?name=warm")
    check("a warm-up PUT is stored", st == 201, w)
    sid = w["shard_id"]
    big = os.urandom(3 * MIB)
    check("a warm-up PUT of 3 MiB is stored", d.put(big, "?name=warm-big")[0] == 201)
    for _ in range(20):
        d.request("GET", f"/v1/shards/{sid}")
    shards_before = d.shards()
    idle_rss, _ = rss_kib(d.proc.pid)
    socks = [slow_put(d, 8 * MIB) for _ in range(250)]
    wait_for("dfrpd to hold the 250 slow PUTs",
             lambda: (d.metric("dfrp_http_connections_open") or 0) >= 250, 120)
    wait_for("their bodies to be reserved", lambda: (d.metric("dfrp_body_bytes_reserved") or 0)
             >= 250 * 8 * MIB)
    ok_gets = 0
    for _ in range(50):
        st, _, data = d.request("GET", f"/v1/shards/{sid}", timeout=10)
        ok_gets += st == 200 and data == payload
    st, _, h = d.json("GET", "/healthz")
    check("under the attack /healthz answers", st == 200 and h.get("status") == "ok", h)
    check("under the attack 50 GETs answer with the verified bytes", ok_gets == 50, ok_gets)
    rss, hwm = rss_kib(d.proc.pid)
    if os.environ.get("DFRP_SANITIZED"):
        print(f"# skipped under a sanitizer (its shadow memory is not the daemon's): resident "
              f"memory idle {idle_rss} KiB, under attack {rss} KiB")
    else:
        check(f"resident memory stays within 64 MiB of idle (idle {idle_rss} KiB, under attack "
              f"{rss} KiB, peak {hwm} KiB)",
              rss - idle_rss < 64 * 1024 and hwm - idle_rss < 64 * 1024, (idle_rss, rss, hwm))
    for s in socks:
        s.close()
    wait_for("the slow connections to be gone",
             lambda: (d.metric("dfrp_http_connections_open") or 0) <= 1)
    wait_for("their reservations to be given back",
             lambda: d.metric("dfrp_body_bytes_reserved") == 0)
    check("nothing of the slow PUTs was stored", d.shards() == shards_before,
          (d.shards(), shards_before))
    check("no spool file is left", not spool_files(env), spool_files(env))
    d.stop()


def budget_and_rate():
    env = store_env("budget", quota="512M", extra={"SCRUB_RATE": "0", "MAX_BODY_MEMORY": "16M"})
    body_timeout, rate, trickled = 10.0, 256 << 10, 1 * MIB
    d = Daemon(env, ["--body-timeout-ms", str(int(body_timeout * 1000)),
                     "--min-body-rate", str(rate)])
    held = [slow_put(d, 8 * MIB), slow_put(d, 8 * MIB)]
    wait_for("the two bodies to be reserved",
             lambda: d.metric("dfrp_body_bytes_reserved") == 16 * MIB)
    s = slow_put(d, 1 * MIB, b"")
    s.settimeout(WAIT)
    out = read_response(s)
    s.close()
    check("past MAX_BODY_MEMORY a PUT gets 503 with Retry-After, before its body",
          status_line(out).startswith("HTTP/1.1 503") and b"Retry-After: 1" in out
          and error_code(out) == "overloaded", out[:300])
    for h in held:
        h.close()
    wait_for("the budget to be free again", lambda: d.metric("dfrp_body_bytes_reserved") == 0)
    check("with room in the budget a PUT is stored again",
          d.put(os.urandom(1 * MIB), "?name=after")[0] == 201)

    # A trickle: a byte every 0.2 s keeps each piece within the body timeout, but the body must
    # be whole within body_timeout + size / rate (10 s + 4 s); at 5 bytes/s it never is.
    limit = body_timeout + trickled / rate
    t0 = time.monotonic()
    s = slow_put(d, trickled, b"")
    s.settimeout(0.2)
    got = b""
    while time.monotonic() - t0 < limit + SLACK + 10:
        try:
            s.sendall(b"y")
            got += s.recv(4096)
            if got:
                break
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    elapsed = time.monotonic() - t0
    s.close()
    check(f"a trickled body is cut off by the minimum rate with 408 (after {elapsed:.1f} s)",
          got.startswith(b"HTTP/1.1 408") and limit - 0.5 <= elapsed <= limit + SLACK,
          (elapsed, got[:200]))
    d.stop()


def host_and_origin():
    env = store_env("host", quota="256M", extra={"SCRUB_RATE": "0",
                                                 "API_HOSTS": "node1.example.net"})
    d = Daemon(env)
    port = d.port
    before = d.shards()

    def raw(method, host, extra=b"", body=b""):
        req = (f"{method} /v1/shards?name=r HTTP/1.1\r\nHost: {host}\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n").encode()
        return d.raw(req + extra + b"\r\n" + body)

    for host in [f"evil.example.com:{port}", f"127.0.0.1.nip.io:{port}", "attacker.test"]:
        out = d.raw(f"GET /v1/volumes HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                    .encode())
        check(f"GET with Host {host} (a rebound name): 421",
              status_line(out).startswith("HTTP/1.1 421")
              and error_code(out) == "misdirected_request", out[:200])
        out = raw("PUT", host, body=b"data")
        check(f"PUT with Host {host}: 421", status_line(out).startswith("HTTP/1.1 421"), out[:200])
    for host in [f"127.0.0.1:{port}", f"localhost:{port}", f"node1.example.net:{port}"]:
        out = d.raw(f"GET /v1/volumes HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                    .encode())
        check(f"GET with Host {host}: 200", status_line(out).startswith("HTTP/1.1 200"), out[:200])
    out = d.raw(b"GET /v1/volumes HTTP/1.1\r\nConnection: close\r\n\r\n")
    check("HTTP/1.1 without Host: 400", status_line(out).startswith("HTTP/1.1 400"), out[:200])

    own = f"http://127.0.0.1:{port}"
    for origin in ["http://evil.example.com", "null", f"http://127.0.0.1:{port + 1}"]:
        out = raw("PUT", f"127.0.0.1:{port}", f"Origin: {origin}\r\n".encode(), b"data")
        check(f"PUT from Origin {origin}: 403", status_line(out).startswith("HTTP/1.1 403")
              and error_code(out) == "forbidden", out[:200])
    out = raw("PUT", f"127.0.0.1:{port}", b"Sec-Fetch-Site: cross-site\r\n", b"data")
    check("PUT a browser marks cross-site: 403", status_line(out).startswith("HTTP/1.1 403"),
          out[:200])
    st, _, e = d.json("POST", "/v1/volumes/0/pause", "{}",
                      {"Authorization": "Bearer " + d.token, "Origin": "http://evil.example.com"})
    check("an admin call with the token from another site's page: 403", st == 403, (st, e))
    check("nothing was stored by the refused requests", d.shards() == before, d.shards())
    out = raw("PUT", f"127.0.0.1:{port}", f"Origin: {own}\r\n".encode(), b"data")
    check("PUT from the node's own origin (the dashboard): 201",
          status_line(out).startswith("HTTP/1.1 201"), out[:200])
    st, _, v = d.json("GET", "/v1/volumes", headers={"Origin": "http://evil.example.com"})
    check("a read with a foreign Origin is served (no CORS header lets a page read it)",
          st == 200 and "volumes" in v, st)
    out = d.raw(f"PUT /v1/shards HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Transfer-Encoding: gzip\r\nConnection: close\r\n\r\n".encode())
    check("Transfer-Encoding gzip: 501", status_line(out).startswith("HTTP/1.1 501")
          and error_code(out) == "not_implemented", out[:200])
    d.stop()


def token_files():
    env = store_env("token", quota="256M", extra={"SCRUB_RATE": "0"})
    tok_path = os.path.join(env["STATE_DIR"], "api-token")
    token = open(tok_path).read().strip()
    with open(tok_path, "w") as f:
        f.write(token + "\r\n")
    os.chmod(tok_path, 0o644)
    d = Daemon(env)
    st, _, v = d.admin("POST", "/v1/volumes/0/pause", {"reason": "t"})
    check("a token file ending in CRLF works", st == 200, (st, v))
    log = open(os.path.join(T, "dfrpd.log")).read()
    check("a token file others can read is warned about at start",
          "can be read by other users" in log and "chmod 600" in log, log[-400:])
    d.stop()
    with open(tok_path, "w") as f:
        f.write(token[:10] + "\r" + token[11:] + "\n")
    r = subprocess.run([DFRPD], env=env, capture_output=True, text=True, cwd=T, timeout=60)
    check("a token holding a CR inside: exit 3, naming the file and the way out",
          r.returncode == 3 and "api-token" in r.stderr and "delete the file" in r.stderr,
          (r.returncode, r.stderr))


def full_spool():
    if os.geteuid() != 0:
        print("# skipped: a full spool file system needs root (a tmpfs mount)")
        return
    env = store_env("spool", quota="512M", extra={"SCRUB_RATE": "0"})
    tmp = os.path.join(env["STATE_DIR"], "tmp")
    os.makedirs(tmp, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=80m", "tmpfs", tmp]).returncode != 0:
        print("# skipped: tmpfs cannot be mounted here")
        return
    try:
        d = Daemon(env)
        before = d.shards()
        s = slow_put(d, 40 * MIB, b"")
        s.settimeout(WAIT)
        out = read_response(s)
        s.close()
        check("a body the spool's file system cannot take (and keep 64 MiB): 507 before it is "
              "sent", status_line(out).startswith("HTTP/1.1 507") and b"free room" in out, out[:300])
        check("nothing stored, no spool file left", d.shards() == before and not spool_files(env),
              (d.shards(), spool_files(env)))
        check("a body held in memory is still stored", d.put(os.urandom(MIB))[0] == 201)
        d.stop()
    finally:
        subprocess.run(["umount", tmp])


def sigterm_during_check():
    env = store_env("term", quota="2G", drives=1, extra={"SCRUB_RATE": "0"})
    d = Daemon(env)
    chunk = os.urandom(32 * MIB)
    for i in range(12):
        st, _, w = d.put(chunk + bytes([i]), f"?name=c{i}")
        if st != 201:
            break
    check("384 MiB stored for the check", st == 201, w)
    vols = d.json("GET", "/v1/volumes")[2]["volumes"]
    src = vols[0]["path"]
    st, _, v = d.admin("POST", "/v1/volumes/0/pause", {})
    copy = os.path.join(T, "term-copy")
    subprocess.run(["cp", "-a", src, copy], check=True)
    d.stop()
    grace = 0.3
    d = Daemon(env, ["--grace-ms", str(int(grace * 1000))])
    st, _, op = d.admin("POST", "/v1/volumes/0/resume", {"path": copy})
    check("resume --path starts an operation", st == 202, (st, op))
    wait_for("the check to be under way",
             lambda: d.json("GET", f"/v1/operations/{op['id']}")[2].get("done", 0) > 0, 60)
    t0 = time.monotonic()
    rc = d.stop(timeout=WAIT)
    elapsed = time.monotonic() - t0
    check(f"SIGTERM during the check: exit 0 within --grace-ms {grace:g} s (took {elapsed:.2f} s)",
          rc == 0 and elapsed < grace + 1.5, (rc, elapsed))
    d = Daemon(env)
    vols = d.json("GET", "/v1/volumes")[2]["volumes"]
    check("afterwards volume 0 is at one of its two places and reads",
          vols[0]["path"] in (src, copy) and vols[0]["shards"] == 12, vols[0])
    r = subprocess.run([STORAGE, "verify-shard", "--all", "-q"], env=env, capture_output=True,
                       text=True, cwd=T)
    check("and every shard verifies", r.returncode == 0, r.stdout[-300:] + r.stderr[-300:])
    d.stop()


def main():
    slow_put_attack()
    budget_and_rate()
    host_and_origin()
    token_files()
    full_spool()
    sigterm_during_check()


if __name__ == "__main__":
    run(main)
