#!/usr/bin/env python3
"""End-to-end tests of dfrpd's HTTP API on loopback (docs/API.md).

Usage: daemon_api_test.py DFRPD DFRP_STORAGE

Starts real daemons over real stores in a temp folder and talks HTTP to them: every route,
the bad inputs the issue lists (malformed ids, unknown routes, too-large bodies refused before
they are read, slow clients, too many connections, header floods, path traversal), admin
tokens, a migration while readers read continuously (zero failed reads), a cancelled
migration, SIGTERM with a request in flight, and kill -9 during writes.

It waits by polling a condition on the monotonic clock (wait_for, poll), never by sleeping a
fixed time; deadlines are generous (a loaded 2-core machine), and a timeout the daemon enforces
is checked from below as well as from above.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403


def main():
    env = store_env("a", quota="256M", extra={"SCRUB_RATE": "64M"})
    tok = os.path.join(env["STATE_DIR"], "api-token")
    check("init-storage writes the admin token, mode 0600",
          os.path.exists(tok) and (os.stat(tok).st_mode & 0o777) == 0o600,
          oct(os.stat(tok).st_mode) if os.path.exists(tok) else "missing")
    d = Daemon(env, ["--header-timeout-ms", str(int(HEADER_TIMEOUT * 1000)),
                     "--idle-timeout-ms", str(int(IDLE_TIMEOUT * 1000)),
                     "--body-timeout-ms", str(int(BODY_TIMEOUT * 1000)), "--grace-ms", "8000"])
    check("dfrpd.json names the daemon's pid and url",
          d.info["pid"] == d.proc.pid and d.info["url"].startswith("http://127.0.0.1:"))

    second = subprocess.run([DFRPD], env=env, capture_output=True, text=True, cwd=T, timeout=30)
    check("a second dfrpd on the same store exits 6 and names the first",
          second.returncode == 6 and str(d.proc.pid) in second.stderr, second.stderr)

    st, _, body = d.json("GET", "/healthz")
    check("GET /healthz", st == 200 and body.get("status") == "ok", body)

    # --- Shards: put, get, ranges, meta, verify, proofs.
    payload = os.urandom(100_000)
    st, h, w = d.put(payload, "?name=one&owner=alice&meta=project%3Dalpha&content_type=text%2Fplain")
    check("PUT /v1/shards stores a shard (201, Location)",
          st == 201 and h.get("Location") == "/v1/shards/" + w.get("shard_id", "?"), (st, w))
    sid = w["shard_id"]
    check("PUT answers as write-shard --json",
          set(w) == {"shard_id", "merkle_root", "size", "leaf_size", "volume", "file"} and
          w["size"] == len(payload) and w["file"] == "one", w)
    st, h, data = d.request("GET", f"/v1/shards/{sid}")
    check("GET returns the payload byte for byte", st == 200 and data == payload, st)
    check("GET carries the Merkle root as ETag",
          h.get("ETag") == f'"{w["merkle_root"]}"' and h.get("Accept-Ranges") == "bytes", h)
    st, h, data = d.request("HEAD", f"/v1/shards/{sid}")
    check("HEAD gives the length and no body",
          st == 200 and h.get("Content-Length") == str(len(payload)) and data == b"", (st, h))
    for rng, lo, hi in [("bytes=0-0", 0, 1), ("bytes=4095-4096", 4095, 4097),
                        ("bytes=-10", len(payload) - 10, len(payload)),
                        ("bytes=99990-", 99990, len(payload)),
                        ("bytes=50000-999999", 50000, len(payload))]:
        st, h, data = d.request("GET", f"/v1/shards/{sid}", headers={"Range": rng})
        check(f"Range {rng}: 206 with exactly those bytes",
              st == 206 and data == payload[lo:hi] and
              h.get("Content-Range") == f"bytes {lo}-{hi - 1}/{len(payload)}", (st, h.get("Content-Range")))
    for rng in ["bytes=100000-", "bytes=-0", "bytes=99999999999999999999999-"]:
        st, h, data = d.request("GET", f"/v1/shards/{sid}", headers={"Range": rng})
        check(f"Range {rng} (outside the payload): 416 with Content-Range */size",
              st == 416 and h.get("Content-Range") == f"bytes */{len(payload)}", (st, data[:100]))
    for rng in ["bytes=5-2", "bytes=x-1", "items=0-1", "bytes=0"]:
        st, h, data = d.request("GET", f"/v1/shards/{sid}", headers={"Range": rng})
        check(f"Range {rng} (not a valid range): ignored, the whole payload (RFC 9110)",
              st == 200 and data == payload, st)
    st, h, data = d.request("GET", f"/v1/shards/{sid}", headers={"Range": "bytes=0-1,5-6"})
    check("several ranges: the whole payload", st == 200 and data == payload, st)

    st, _, meta = d.json("GET", f"/v1/shards/{sid}/meta")
    direct = subprocess.run([STORAGE, "stat-shard", sid, "--json"], env=env, capture_output=True,
                            text=True, cwd=T)
    check("GET meta answers as stat-shard --json",
          st == 200 and direct.returncode == 0 and json.loads(direct.stdout) == meta,
          (meta, direct.stdout[:300], direct.stderr[:300]))
    check("meta keeps owner, tags and content type",
          meta.get("owner") == "alice" and meta.get("meta") == {"project": "alpha"} and
          meta.get("content_type") == "text/plain", meta)
    st, _, v = d.json("POST", f"/v1/shards/{sid}/verify")
    check("POST verify: ok", st == 200 and v.get("ok") is True, v)

    st, _, proof = d.json("GET", f"/v1/shards/{sid}/proof?leaf=3")
    pf = os.path.join(T, "proof.json")
    json.dump(proof, open(pf, "w"))
    vp = subprocess.run([STORAGE, "verify-proof", pf, "--root", w["merkle_root"]],
                        capture_output=True, text=True, cwd=T)
    check("GET proof verifies with verify-proof", st == 200 and vp.returncode == 0, vp.stderr)
    st, _, audit = d.json("GET", f"/v1/shards/{sid}/audit?seed=5eed&challenges=8")
    json.dump(audit, open(pf, "w"))
    vp = subprocess.run([STORAGE, "verify-proof", pf, "--root", w["merkle_root"], "--seed", "5eed",
                         "--shard", sid, "--size", str(len(payload)), "--leaf-size", "4096",
                         "--challenges", "8"],
                        capture_output=True, text=True, cwd=T)
    check("GET audit verifies with verify-proof --seed", st == 200 and vp.returncode == 0, vp.stderr)
    for q, want in [("?leaf=25", 400), ("?leaf=x", 400), ("", 400)]:
        st, _, e = d.json("GET", f"/v1/shards/{sid}/proof{q}")
        check(f"proof{q or ' without leaf'}: {want} with a message",
              st == want and e.get("error", {}).get("message"), (st, e))
    st, _, e = d.json("GET", f"/v1/shards/{sid}/audit?seed=zz&challenges=2")
    check("audit with a bad seed: 400", st == 400, (st, e))

    # --- Bad ids, routes, methods, traversal.
    st, _, e = d.json("GET", "/v1/shards/not-an-id")
    check("malformed id: 400, code invalid_argument, exit_code 2",
          st == 400 and e["error"]["code"] == "invalid_argument" and e["error"]["exit_code"] == 2, e)
    st, _, e = d.json("GET", "/v1/shards/01932c07-a35c-7a9b-8f1e-5c1d2b3a4f60")
    check("unknown shard: 404, exit_code 4", st == 404 and e["error"]["exit_code"] == 4, e)
    st, _, e = d.json("GET", "/v2/anything")
    check("unknown route: 404 with JSON", st == 404 and "error" in e, e)
    st, h, e = d.json("DELETE", "/v1/volumes")
    check("wrong method: 405 with Allow", st == 405 and h.get("Allow") == "GET", (st, h))
    for target in ["/v1/shards/../../etc/passwd", "/v1/%2e%2e/%2e%2e/etc/passwd",
                   "/v1/shards/a%2fb", "/..%5c..%5cetc", "/v1/shards/%00", "/v1/shards/%zz",
                   "http://example.com/v1/volumes"]:
        out = d.raw(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        check(f"path {target}: 400", status_line(out).startswith("HTTP/1.1 400"), status_line(out))
    for target in ["/v1/shards/%ff", "/v1/volumes/%ff/pause", "/v1/shards?name=%C3"]:
        out = d.raw(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        check(f"{target} (not UTF-8): 400 with JSON",
              status_line(out).startswith("HTTP/1.1 400") and
              error_code(out) == "invalid_argument", out[:200])
    before = d.shards()
    st, _, e = d.put(b"abc", "?owner=%ff")
    after = d.shards()
    check("PUT with an owner that is not UTF-8: 400, nothing stored",
          st == 400 and after == before, (st, e, before, after))
    out = d.raw(b"PUT /v1/shards HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 18162948011037032448\r\n\r\n")
    check("a Content-Length that would overflow the space check: 507",
          status_line(out).startswith("HTTP/1.1 507"), out[:200])
    s = socket.create_connection((d.host, d.port))
    s.settimeout(WAIT)  # only a daemon that keeps the connection open waits this long
    s.sendall(b"POST /v1/volumes/0/pause HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
              d.token.encode() + b"\r\nContent-Length: 70000\r\n\r\n" +
              b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + b" " * 69960)
    got, ended, _ = read_until_closed(s)
    s.close()
    check("an admin body over 64 KiB: 413 and the connection closes (nothing smuggled)",
          got.startswith(b"HTTP/1.1 413") and got.count(b"HTTP/1.1") == 1 and ended != "timeout",
          (ended, got[:300]))
    out = d.raw(b"GARBAGE\r\n\r\n")
    check("a malformed request line: 400", status_line(out).startswith("HTTP/1.1 400"), out[:100])

    # --- Bodies: 507 before reading, 411, bodies on routes without one.
    s = socket.create_connection((d.host, d.port))
    s.settimeout(WAIT)
    s.sendall(b"PUT /v1/shards HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000000\r\n\r\n")
    out = read_response(s)
    s.close()
    check("a 10 GB body is refused with 507 before any of it is sent",
          status_line(out).startswith("HTTP/1.1 507") and b"no_space" in out, out[:200])
    out = d.raw(b"PUT /v1/shards HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n")
    check("a chunked PUT without length: 411", status_line(out).startswith("HTTP/1.1 411"), out[:100])
    st, _, e = d.json("GET", "/v1/volumes", body=b"x" * 10)
    check("a body on GET /v1/volumes: 413", st == 413, (st, e))
    st, _, e = d.put(b"abc", "?leaf_size=1000")
    check("PUT with a bad leaf_size: 400 naming it", st == 400 and "leaf_size" in e["error"]["message"], e)
    st, _, e = d.put(b"abc", "?vector=1,x")
    check("PUT with a bad vector: 400", st == 400 and "vector" in e["error"]["message"], e)
    st, _, e = d.put(b"abc", "?colour=red")
    check("PUT with an unknown parameter: 400", st == 400 and "colour" in e["error"]["message"], e)

    # --- Slow clients, floods, connection limit.
    # Each deadline is measured from before the client's first move (the connect, or sending
    # the request), so the daemon's own clock starts later and the lower bounds hold exactly.
    t0 = time.monotonic()
    out, ended, first = d.exchange(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                                   wait=HEADER_TIMEOUT + SLACK + 5)
    at = (first or time.monotonic()) - t0
    check(f"a header that never ends: 408 timeout, no sooner than the header timeout "
          f"({HEADER_TIMEOUT:g} s) and within {SLACK:g} s after it",
          status_line(out).startswith("HTTP/1.1 408") and error_code(out) == "timeout" and
          HEADER_TIMEOUT <= at < HEADER_TIMEOUT + SLACK, (status_line(out), ended, f"{at:.3f} s"))
    s = socket.create_connection((d.host, d.port))
    s.settimeout(IDLE_TIMEOUT + SLACK + 5)
    t0 = time.monotonic()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    got, ended, _ = read_until_closed(s)
    at = time.monotonic() - t0
    s.close()
    check(f"an idle kept-alive connection is closed, no sooner than the idle timeout "
          f"({IDLE_TIMEOUT:g} s) and within {SLACK:g} s after it, with nothing after the answer",
          got.startswith(b"HTTP/1.1 200") and got.count(b"HTTP/1.1 ") == 1 and
          ended != "timeout" and IDLE_TIMEOUT <= at < IDLE_TIMEOUT + SLACK,
          (ended, f"{at:.3f} s", got[-200:]))
    before = d.shards()
    s = socket.create_connection((d.host, d.port))
    s.settimeout(BODY_TIMEOUT + SLACK + 5)
    t0 = time.monotonic()
    s.sendall(b"PUT /v1/shards HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
    got, ended, _ = read_until_closed(s)
    at = time.monotonic() - t0
    s.close()
    check(f"a body that stalls: 408 and the connection closes, no sooner than the body timeout "
          f"({BODY_TIMEOUT:g} s) and within {SLACK:g} s after it",
          got.startswith(b"HTTP/1.1 408") and error_code(got) == "timeout" and
          got.count(b"HTTP/1.1 ") == 1 and ended != "timeout" and
          BODY_TIMEOUT <= at < BODY_TIMEOUT + SLACK, (ended, f"{at:.3f} s", got[:200]))
    # The connection counts as open until its handler has returned: after that nothing of the
    # body can be stored any more. This request's own connection is the one left.
    ended_in_daemon = poll(lambda: d.metric("dfrp_http_connections_open") == 1)
    after = d.shards()
    check("and nothing of it is stored", ended_in_daemon and after == before,
          (ended_in_daemon, before, after))
    flood = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
        f"X-Flood-{i}: {'y' * 100}\r\n".encode() for i in range(400)) + b"\r\n"
    out = d.raw(flood)
    check("a header flood: 431", status_line(out).startswith("HTTP/1.1 431"), status_line(out))
    # The connection limit, on a daemon of its own with the default (10 s) header deadline, so
    # that the held connections cannot time out however slow the machine is.
    lim = Daemon(store_env("lim", quota="64M", extra={"MAX_CONNECTIONS": "8", "SCRUB_RATE": "0"}))
    conns = [socket.create_connection((lim.host, lim.port)) for _ in range(8)]
    # No wait here: the kernel queues these 8 before the next one, and the daemon accepts in
    # that order and counts each connection as it accepts it, so the 9th is over the limit
    # however slowly the daemon runs.
    out = lim.raw(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check("past MAX_CONNECTIONS: 503 with a message",
          status_line(out).startswith("HTTP/1.1 503") and b"MAX_CONNECTIONS" in out, out[:200])
    for c in conns:
        c.close()
    # The daemon gives a connection's slot back before it closes the descriptor; once it
    # holds none of the 8 there is room again. A request before that would be refused (and
    # counted, which the metrics check below would see).
    wait_for("dfrpd to close the 8 connections the test closed",
             lambda: connections_held(lim.proc.pid, lim.port) == 0)
    st, _, _ = lim.json("GET", "/healthz")
    check("once they close, it serves again", st == 200, st)
    text = lim.request("GET", "/metrics")[2].decode()
    check("metrics count the refusal", 'dfrp_http_rejected_total{reason="overloaded"} 1' in text)
    check("the limited daemon stops cleanly", lim.stop() == 0)
    st, _, _ = d.json("GET", "/healthz")
    check("after all that the daemon still serves", st == 200)

    # --- Admin endpoints and tokens.
    st, h, e = d.json("POST", "/v1/volumes/1/pause")
    check("pause without a token: 401 with WWW-Authenticate",
          st == 401 and h.get("WWW-Authenticate") == "Bearer" and "api-token" in e["error"]["message"], (st, e))
    st, _, e = d.json("POST", "/v1/volumes/1/pause", headers={"Authorization": "Bearer nope"})
    check("pause with a wrong token: 401", st == 401, st)
    st, _, v = d.admin("POST", "/v1/volumes/1/pause", {"reason": "api test"})
    listed = d.json("GET", "/v1/volumes")[2]["volumes"][1].get("state")
    check("pause with the token: 200, paused (in the answer and in /v1/volumes)",
          st == 200 and v.get("state") == "paused" and listed == "paused", (v, listed))
    st, _, v = d.admin("POST", "/v1/volumes/1/resume")
    listed = d.json("GET", "/v1/volumes")[2]["volumes"][1].get("state")
    check("resume: 200, active (in the answer and in /v1/volumes)",
          st == 200 and v.get("state") == "active" and listed == "active", (v, listed))
    st, _, e = d.admin("POST", "/v1/volumes/7/pause")
    check("pause of a volume that does not exist: 404", st == 404, (st, e))
    st, _, e = d.admin("POST", "/v1/volumes/0/migrate", {"to": "relative/path"})
    check("migrate to a relative path: 400", st == 400, (st, e))
    st, _, e = d.admin("POST", "/v1/volumes/0/migrate", "not an object")
    check("migrate with a body that is not an object: 400", st == 400, (st, e))

    # --- A migration while readers read continuously: zero failed reads.
    shards = {}
    for i in range(40):
        data = os.urandom(random.randint(1, 300_000))
        st, _, w = d.put(data)
        shards[w["shard_id"]] = hashlib.sha256(data).hexdigest()
    shards[sid] = hashlib.sha256(payload).hexdigest()
    st, _, vols = d.json("GET", "/v1/volumes")
    old_path = vols["volumes"][0]["path"]

    def segments(folder):
        return [n for n in os.listdir(folder) if n.startswith("segment-")]

    # Else "the old copy was deleted" below would hold whatever the migration did.
    check("volume 0 holds segment files before the migration", segments(old_path),
          os.listdir(old_path))
    stop = threading.Event()
    reads, failures = [0], []

    def reader():
        c = http.client.HTTPConnection(d.host, d.port, timeout=30)
        ids = list(shards)
        while not stop.is_set():
            i = random.choice(ids)
            try:
                c.request("GET", f"/v1/shards/{i}")
                r = c.getresponse()
                body = r.read()
                if r.status != 200 or hashlib.sha256(body).hexdigest() != shards[i]:
                    failures.append((i, r.status))
                reads[0] += 1
            except Exception as ex:  # a failed read is what this test looks for
                failures.append((i, repr(ex)))
                c = http.client.HTTPConnection(d.host, d.port, timeout=30)

    readers = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for r in readers:
        r.start()
    wait_for("the readers' first 10 reads", lambda: reads[0] + len(failures) >= 10)
    dest = os.path.join(T, "new-drive")
    st, h, op = d.admin("POST", "/v1/volumes/0/migrate", {"to": dest, "delete_source": True})
    check("migrate: 202 with an operation and its Location",
          st == 202 and h.get("Location") == f"/v1/operations/{op.get('id')}", (st, op))
    op = wait_for(f"migration {op.get('id')} to end", lambda: ended_op(d, op.get("id")), 300)
    at_switch = reads[0] + len(failures)
    wait_for("20 more reads after the switch, from the new folder",
             lambda: reads[0] + len(failures) >= at_switch + 20)
    stop.set()
    for r in readers:
        r.join(WAIT)
    check("the migration succeeded, in phase done",
          op.get("state") == "succeeded" and op.get("phase") == "done", op)
    result = op.get("result") or {}
    check("its report: bytes, shards verified, source deleted",
          result.get("source_deleted") is True and result.get("shards_verified", 0) >= len(shards),
          result)
    check(f"readers read continuously during the migration with zero failures ({reads[0]} reads)",
          not failures and reads[0] > 50, failures[:5])
    st, _, vols = d.json("GET", "/v1/volumes")
    check("volume 0 now lives at the new folder", vols["volumes"][0]["path"] == dest, vols)
    check("the old copy was deleted", not segments(old_path), os.listdir(old_path))
    bad = [i for i, h256 in shards.items()
           if hashlib.sha256(d.request("GET", f"/v1/shards/{i}")[2]).hexdigest() != h256]
    check("every shard reads back after the switch", not bad, bad[:3])
    st, _, e = d.admin("DELETE", f"/v1/operations/{op['id']}")
    check("cancelling a finished operation: 409", st == 409, (st, e))

    # --- A cancelled migration: the volume stays whole at its old path.
    big = os.urandom(32 << 20)
    for _ in range(6):
        st, _, w = d.put(big, "")
    vols = d.json("GET", "/v1/volumes")[2]["volumes"]
    vol_of_big = w["volume"]
    old = vols[vol_of_big]["path"]
    st, _, op = d.admin("POST", f"/v1/volumes/{vol_of_big}/migrate", {"to": os.path.join(T, "other")})
    st2, _, c = d.admin("DELETE", f"/v1/operations/{op['id']}")
    op = wait_for(f"migration {op['id']} to end after its cancel", lambda: ended_op(d, op["id"]))
    check("DELETE of a running migration: 202, then cancelled",
          st2 == 202 and op.get("state") == "cancelled", (st2, c, op))
    vols = d.json("GET", "/v1/volumes")[2]["volumes"]
    check("after the cancel the volume is active at its old path",
          vols[vol_of_big]["path"] == old and vols[vol_of_big]["state"] == "active", vols[vol_of_big])
    st, _, data = d.request("GET", f"/v1/shards/{w['shard_id']}")
    check("its shards still read", st == 200 and data == big, st)
    st, _, op = d.admin("POST", f"/v1/volumes/{vol_of_big}/migrate",
                        {"to": os.path.join(T, "other2"), "resume": False})
    st2, _, c = d.admin("DELETE", f"/v1/operations/{op['id']}")
    op = wait_for(f"migration {op['id']} to end after its cancel", lambda: ended_op(d, op["id"]))
    vols = d.json("GET", "/v1/volumes")[2]["volumes"]
    check("a cancelled `migrate` (resume: false) leaves the volume paused at its old path",
          st2 == 202 and op.get("state") == "cancelled" and vols[vol_of_big]["path"] == old and
          vols[vol_of_big]["state"] == "paused", (st2, op.get("state"), vols[vol_of_big]))
    d.admin("POST", f"/v1/volumes/{vol_of_big}/resume")

    # --- Corruption is never served.
    st, _, m = d.json("GET", f"/v1/shards/{sid}/meta")
    with open(m["segment"], "r+b") as f:
        f.seek(m["offset"] + m["record_len"] - 5000)
        b = f.read(1)
        f.seek(m["offset"] + m["record_len"] - 5000)
        f.write(bytes([b[0] ^ 0x40]))
    st, _, e = d.json("GET", f"/v1/shards/{sid}")
    check("GET of a corrupted shard: 500 integrity, exit_code 3, no payload",
          st == 500 and e.get("error", {}).get("code") == "integrity" and e["error"]["exit_code"] == 3, (st, e))
    st, _, data = d.request("GET", f"/v1/shards/{sid}", headers={"Range": "bytes=0-4095"})
    check("a range that misses the bad leaf still reads", st == 206 and data == payload[:4096], st)
    st, _, v = d.json("POST", f"/v1/shards/{sid}/verify")
    check("POST verify reports it", st == 200 and v.get("ok") is False and v.get("error_code") == "integrity", v)

    # --- Metrics and status.
    st, h, text = d.request("GET", "/metrics")
    text = text.decode()
    for needle in ['dfrp_volume_used_bytes{volume="0"', 'dfrp_volume_quota_bytes{volume="1"',
                   'dfrp_http_request_duration_seconds_bucket{route="GET /v1/shards/{id}",le="0.001"}',
                   'dfrp_migrations_total{result="succeeded"} 1',
                   'dfrp_migrations_total{result="cancelled"} 2', "dfrp_bytes_written_total ",
                   "dfrp_scrub_bytes_verified_total ", 'dfrp_http_rejected_total{reason="header_too_large"} 1']:
        check(f"metrics has {needle}", needle in text, "")
    vf = [l for l in text.splitlines() if l.startswith("dfrp_verification_failures_total ")]
    check("metrics count the verification failures", vf and int(vf[0].split()[1]) >= 2, vf)
    check("metrics are Prometheus text", h.get("Content-Type", "").startswith("text/plain; version=0.0.4"), h)
    # A request is counted once its answer has been sent, so the count of a request on another
    # connection may land a moment after its client has read the answer. On one keep-alive
    # connection the order is fixed (the server counts a request before it reads the next), so
    # the status that follows a metrics scrape on that connection counts what the scrape
    # counted plus the scrape itself; a late count from elsewhere only calls for another try.
    c = http.client.HTTPConnection(d.host, d.port, timeout=30)
    tries = []
    for _ in range(5):
        c.request("GET", "/metrics")
        scraped = c.getresponse().read().decode()
        answered = sum(int(l.rsplit(" ", 1)[1]) for l in scraped.splitlines()
                       if l.startswith("dfrp_http_requests_total{"))
        c.request("GET", "/v1/status")
        s = json.loads(c.getresponse().read())
        tries.append((s["counters"]["requests"], answered))
        if s["counters"]["requests"] == answered + 1:
            break
        time.sleep(0.2)
    c.close()
    check("status counts every answered request", tries[-1][0] == tries[-1][1] + 1, tries)
    check("status has counters, throughput samples, scrub and operations",
          s["counters"]["bytes_written"] > 0 and len(s["throughput"]["samples"]) == 120 and
          "corrupt_found" in s["scrub"] and len(s["operations"]) == 3, list(s))

    # --- SIGTERM with a request in flight: it finishes, then the daemon exits 0.
    body = os.urandom(12 << 20)
    result = {}
    continued, probed = threading.Event(), threading.Event()

    def slow_put():
        c = socket.create_connection((d.host, d.port))
        c.settimeout(WAIT)
        # The 100 Continue says the daemon has read the header and will read the body.
        c.sendall(f"PUT /v1/shards HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
                  "Expect: 100-continue\r\n\r\n".encode())
        result["continue"] = read_response(c)
        continued.set()
        if not result["continue"].startswith(b"HTTP/1.1 100"):
            return
        piece = 256 << 10
        for i in range(0, len(body), piece):
            c.sendall(body[i:i + piece])
            if not probed.is_set():
                # Keeps the request in flight while the main thread probes (each pause is well
                # within the body timeout); the rest goes at once after that.
                time.sleep(0.1)
        result["out"] = read_until_closed(c)[0]

    def refused():
        try:
            socket.create_connection((d.host, d.port), timeout=5).close()
            return False
        except ConnectionRefusedError:
            return True
        except OSError:
            return False

    t = threading.Thread(target=slow_put, daemon=True)
    t.start()
    wait_for("dfrpd to answer 100 Continue to the PUT", continued.is_set)
    d.proc.send_signal(signal.SIGTERM)
    was_refused = poll(refused)
    in_flight = t.is_alive() and d.proc.poll() is None  # still, after the refusal
    probed.set()
    t.join(WAIT)
    rc = d.proc.wait(30)
    out = result.get("out", b"")
    check("after SIGTERM no new connection is taken, while the PUT is still in flight",
          was_refused and in_flight, (was_refused, in_flight))
    check("the PUT in flight at SIGTERM still completes (201)",
          status_line(out).startswith("HTTP/1.1 201"), (result.get("continue"), out[:200]))
    check("dfrpd exits 0 after SIGTERM and removes dfrpd.json",
          rc == 0 and not os.path.exists(os.path.join(env["STATE_DIR"], "dfrpd.json")), rc)
    new_id = json.loads(out.split(b"\r\n\r\n", 1)[1])["shard_id"] if b"201" in out[:20] else None

    d = Daemon(env)
    st, _, data = d.request("GET", f"/v1/shards/{new_id}")
    check("after a restart the shard written during shutdown reads", st == 200 and data == body, st)
    d.stop()

    # --- kill -9 while PUTs are in flight: every acknowledged shard survives.
    env2 = store_env("k", quota="512M")
    acked = {}
    lost = []
    for rnd in range(5):
        d = Daemon(env2)
        stop = threading.Event()

        def writer():
            c = http.client.HTTPConnection(d.host, d.port, timeout=10)
            while not stop.is_set():
                data = os.urandom(random.randint(1, 200_000))
                try:
                    c.request("PUT", "/v1/shards", body=data)
                    r = c.getresponse()
                    j = json.loads(r.read())
                    if r.status == 201:
                        acked[j["shard_id"]] = hashlib.sha256(data).hexdigest()
                except Exception:
                    return

        ws = [threading.Thread(target=writer, daemon=True) for _ in range(4)]
        start = len(acked)
        for w_ in ws:
            w_.start()
        # At least 5 acknowledged shards a round (so more than 20 in all), then the kill at a
        # random moment while PUTs are in flight.
        wait_for(f"5 acknowledged PUTs in round {rnd + 1}", lambda: len(acked) >= start + 5)
        time.sleep(random.uniform(0, 0.4))
        d.proc.kill()
        d.proc.wait()
        stop.set()
        for w_ in ws:
            w_.join(WAIT)
    d = Daemon(env2)
    for i, h256 in acked.items():
        st, _, data = d.request("GET", f"/v1/shards/{i}")
        if st != 200 or hashlib.sha256(data).hexdigest() != h256:
            lost.append((i, st))
    d.stop()
    vr = subprocess.run([STORAGE, "verify-shard", "--all", "-q"], env=env2, capture_output=True,
                        text=True, cwd=T)
    check(f"kill -9 during PUTs, 5 times: all {len(acked)} acknowledged shards read back",
          not lost, lost[:3])
    check("and the store verifies", vr.returncode == 0, vr.stdout[-300:] + vr.stderr[-300:])


if __name__ == "__main__":
    run(main)
