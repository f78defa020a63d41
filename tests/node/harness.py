"""What the daemon tests share: starting real dfrpd processes over real stores in a temp
folder, talking HTTP to them, checks that count, and waits that poll a condition on the
monotonic clock (never a fixed sleep).

Usage from a test: `from harness import *`, then `run(main)`; the test is called with the
paths of dfrpd and dfrp-storage as its two arguments.
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

DFRPD, STORAGE = sys.argv[1], sys.argv[2]
T = tempfile.mkdtemp(prefix="dfrpd-test-")
PASS, FAIL = 0, []
DAEMONS = []  # every dfrpd started, so that the end of the run can kill what is left by pid

# The daemon `d` runs with these deadlines (seconds). A deadline is checked from both sides:
# the daemon must not act before it, and must act within SLACK after it. SLACK is generous (a
# loaded 2-core machine), yet well under the daemon's defaults (10 s header, 60 s idle, 30 s
# body), so a daemon that ignored the options would still fail.
HEADER_TIMEOUT, IDLE_TIMEOUT, BODY_TIMEOUT = 1.0, 1.5, 1.0
SLACK = 5.0
# How long a wait for something that should happen at once may take before the test gives up:
# it bounds a hang, not a speed.
WAIT = 60.0


def check(name, cond, detail=""):
    global PASS
    if cond:
        PASS += 1
        print(f"ok - {name}")
    else:
        FAIL.append(name)
        print(f"not ok - {name}: {detail}")


class WaitTimeout(Exception):
    """A wait_for that ran out: the test cannot go on; it is reported as a failed check."""


def poll(cond, timeout=WAIT, interval=0.05):
    """Calls cond() until it returns a true value, and returns that value; returns None once
    `timeout` seconds have passed on the monotonic clock."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_for(what, cond, timeout=WAIT):
    """poll(), for a condition the rest of the test needs: raises WaitTimeout naming `what`
    when it does not come true in time."""
    v = poll(cond, timeout)
    if not v:
        raise WaitTimeout(f"waited {timeout:g} s for {what}")
    return v


def read_until_closed(sock):
    """Reads until the peer closes or resets, or the socket's timeout passes. Returns (the
    bytes, how it ended: "eof", "reset" or "timeout", the monotonic time of the first byte or
    None)."""
    out, first = b"", None
    try:
        while True:
            b = sock.recv(65536)
            if not b:
                return out, "eof", first
            if first is None:
                first = time.monotonic()
            out += b
    except socket.timeout:
        return out, "timeout", first
    except ConnectionResetError:
        return out, "reset", first


def read_response(sock):
    """Reads one response, its header and the Content-Length bytes after it, without waiting
    for the connection to close: the bytes (fewer when the peer closes first, or times out)."""
    out = b""
    try:
        while b"\r\n\r\n" not in out:
            b = sock.recv(4096)
            if not b:
                return out
            out += b
        head, rest = out.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            b = sock.recv(65536)
            if not b:
                break
            rest += b
        return head + b"\r\n\r\n" + rest
    except (socket.timeout, ConnectionResetError):
        return out


def connections_held(pid, port):
    """How many connections to its listening `port` the process `pid` still holds a descriptor
    of (the inodes of its sockets in /proc/PID/fd, looked up in /proc/net/tcp): 0 once it has
    closed every one of them."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed while we looked
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.split(":")[1], 16) == port and state != "0A" and inode in inodes:
                n += 1  # 0A: the listening socket itself
    return n


class Daemon:
    def __init__(self, env, args=(), prefix=()):
        # `prefix`: a command that runs dfrpd (e.g. `ip netns exec NS`), when not run directly.
        self.env = env
        self.state = env["STATE_DIR"]
        info = os.path.join(self.state, "dfrpd.json")
        if os.path.exists(info):
            os.unlink(info)
        self.log = open(os.path.join(T, "dfrpd.log"), "ab")
        self.proc = subprocess.Popen([*prefix, DFRPD, *args], env=env, stdout=self.log, stderr=self.log,
                                     cwd=T)
        DAEMONS.append(self.proc)

        def listening():
            if self.proc.poll() is not None:
                raise SystemExit(f"dfrpd exited ({self.proc.returncode}) before it wrote {info}; "
                                 f"see {T}/dfrpd.log")
            return os.path.exists(info)  # written by a rename: complete once it is there

        wait_for(f"dfrpd to write {info}", listening)
        self.info = json.load(open(info))
        host, port = self.info["api_addr"].rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.token = open(os.path.join(self.state, "api-token")).read().strip()

    def request(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def json(self, method, path, body=None, headers=None):
        status, h, data = self.request(method, path, body, headers)
        try:
            return status, h, json.loads(data)
        except ValueError:
            return status, h, {"raw": data[:200]}

    def admin(self, method, path, body=None):
        return self.json(method, path, json.dumps(body) if body is not None else None,
                         {"Authorization": "Bearer " + self.token,
                          "Content-Type": "application/json"})

    def put(self, data, query=""):
        return self.json("PUT", "/v1/shards" + query, data)

    def exchange(self, payload, wait=3.0):
        """Sends raw bytes on a new connection; returns read_until_closed's (bytes, how it
        ended, time of the first byte), `wait` bounding each read."""
        s = socket.create_connection((self.host, self.port))
        s.settimeout(wait)
        if payload:
            s.sendall(payload)
        got = read_until_closed(s)
        s.close()
        return got

    def raw(self, payload, wait=3.0):
        """What came back for raw bytes before the server closed or `wait` passed."""
        return self.exchange(payload, wait)[0]

    def shards(self):
        return self.json("GET", "/v1/status")[2]["shards"]

    def metric(self, name):
        """The value of the metric line `name value` in /metrics, or None."""
        for line in self.request("GET", "/metrics")[2].decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self, sig=signal.SIGTERM, timeout=30):
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "timeout"


def store_env(name, quota="1G", drives=2, extra=None):
    base = os.path.join(T, name)
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("DRIVE_") or k.startswith("QUOTA_") or
                   k in ("STATE_DIR", "DFRP_CONFIG", "API_ADDR", "SCRUB_RATE", "MAX_CONNECTIONS"))}
    for i in range(drives):
        env[f"DRIVE_{i}"] = os.path.join(base, f"d{i}")
        env[f"QUOTA_{i}"] = quota
    env["STATE_DIR"] = os.path.join(base, "state")
    env["API_ADDR"] = "127.0.0.1:0"
    env.update(extra or {})
    subprocess.run([STORAGE, "init-storage", "--create", "-q"], env=env, check=True, cwd=T)
    return env


def status_line(raw):
    return raw.split(b"\r\n", 1)[0].decode(errors="replace")


def error_code(raw):
    """The error code in the JSON body of a raw response, or None when it has none."""
    try:
        return json.loads(raw.split(b"\r\n\r\n", 1)[1])["error"]["code"]
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def ended_op(d, op_id):
    """The operation's document once it is no longer running (an error document counts as
    ended: the check that follows shows it), else None."""
    op = d.json("GET", f"/v1/operations/{op_id}")[2]
    return None if op.get("state") == "running" else op


def report():
    print(f"# {PASS} passed, {len(FAIL)} failed")
    for f in FAIL:
        print(f"#   failed: {f}")
    return 1 if FAIL else 0


def run(main):
    """Runs the test's main, reports, removes the temp folder and exits with the result."""
    try:
        main()
    except WaitTimeout as e:
        check("the run", False, str(e))
    finally:
        for p in DAEMONS:
            if p.poll() is None:
                p.kill()
                p.wait()
        if not os.environ.get("KEEP_TEST_DIR"):
            shutil.rmtree(T, ignore_errors=True)
    sys.exit(report())
