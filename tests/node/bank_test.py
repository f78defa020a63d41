"""The bank test (issue 13), in the manner of Jepsen's: money under concurrency, crashes and a
Byzantine authority, checked afterwards like a bank checks its books.

Usage: bank_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_BYZANTINE_SIGNER
Environment: BANK_SECONDS (default 40) of load; BANK_SEED for the random choices.

- A committee of four on loopback: authorities 0, 1 and 2 are real dfrpd processes;
  authority 3 is Byzantine, test code in this file holding its real key
  (dfrp-byzantine-signer): it votes for every order and settlement it is sent (conflicting
  ones too, unfunded ones too), signs beacon shares for any slot, claims to apply every
  certificate, lies about accounts, serves forged logs to its peers, and sends honest
  authorities malformed certificates made from real ones (a flipped signature byte, a
  truncated or extended wire, a signer removed from the bitmap, another amount).
- Twenty funded accounts. Several client threads, each running dfrp-ledger processes
  concurrently for its own accounts: transfers to random accounts (some past the balance),
  storage escrows on a provider dfrpd (whose node releases each proved period by itself),
  and equivocations (two orders signed offline for one sequence number, sent to different
  authorities; authority 0 is sent both, so that it keeps the proof).
- Meanwhile one honest authority at a time is killed with kill -9 and restarted.
- Afterwards, with every honest authority back and caught up (they pull what they missed
  from each other's logs), authority 0 leads an epoch change (the Byzantine authority takes
  no part; the three honest ones certify epoch 1 at their one state, and no lock is left),
  a transfer certifies in epoch 1, and at every honest authority: the balances and escrows sum to the
  supply, no account is negative, the three agree on every account, every transfer and
  escrow a client saw confirmed is certified there under the order hash the client saw, no
  (sender, seq) has two certificates, every equivocation authority 0 saw is kept as a proof,
  no malformed certificate was accepted, and `dfrp-ledger audit --exclude 3` passes. An
  audit that reads the Byzantine authority too fails, naming it.
"""
import hashlib
import http.server
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, free_base_port, tool  # noqa: E402

LEDGER, WALLET, SIGNER = sys.argv[3], sys.argv[4], sys.argv[5]
SECONDS = float(os.environ.get("BANK_SECONDS", "40"))
SEED = int(os.environ.get("BANK_SEED", str(random.randrange(1 << 30))))
N, BYZ, ACCOUNTS, CLIENTS = 4, 3, 20, 4
PERIOD, WINDOW, GRACE = 6, 3, 2
HONEST = range(BYZ)


def order_hash_of_certificate(cert_hex):
    """The certified order's hash: SHA-256 of the signed order less its 96-byte signature
    (docs/PROTOCOL.md: a certificate is u32 length ‖ signed order ‖ quorum)."""
    b = bytes.fromhex(cert_hex)
    n = int.from_bytes(b[:4], "big")
    return hashlib.sha256(b[4:4 + n - 96]).hexdigest()


class Byzantine:
    """Authority 3, faulty on purpose: an HTTP server in place of its dfrpd."""

    def __init__(self, port, policy, adir, urls):
        self.urls = urls  # the honest authorities, for malformed certificates
        self.signer = subprocess.Popen(
            [SIGNER, "--policy", policy, "--wallet", os.path.join(adir, "wallet.json"),
             "--passphrase-file", os.path.join(adir, "passphrase")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=T)
        ready = self.signer.stdout.readline()
        if not ready.startswith(f"ready {BYZ}"):
            raise SystemExit(f"dfrp-byzantine-signer did not start: {ready!r}")
        self.lock = threading.Lock()
        self.seen = []          # real certificates clients sent it (hex)
        self.votes = 0
        self.bad_vote_sigs = 0  # votes for the right order hash under another order's signature
        self.last_vote = None
        self.malformed_sent = 0
        self.malformed_accepted = []  # (authority, mutation, answer): must stay empty
        byz = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                p = self.path
                if p.startswith("/v1/ledger/accounts/"):
                    # Lies: a random balance and sequence number.
                    return self.reply(200, {"address": p.rsplit("/", 1)[1],
                                            "balance_base_units": random.randrange(10**15),
                                            "next_seq": random.randrange(1000),
                                            "locked": None, "authority": BYZ})
                if p.startswith("/v1/ledger/beacon/"):
                    slot = int(p.rsplit("/", 1)[1])
                    return self.reply(200, {"vote": byz.sign(f"beacon {slot}")[0],
                                            "authority": BYZ, "slot": slot})
                if (p.startswith("/v1/ledger/log") or p.startswith("/v1/ledger/certificates/")
                        or p.startswith("/v1/ledger/settlement-log")):
                    # Forged history for peers that pull from it.
                    return self.reply(200, {"from": 1, "certificates": byz.forgeries(3)})
                self.reply(503, {"error": {"code": "unavailable",
                                           "message": "a Byzantine authority"}})

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                p = self.path
                if p == "/v1/ledger/orders":
                    vote, h = byz.sign("vote " + body["order"])
                    if vote is None:
                        return self.reply(400, {"error": {"code": "invalid_argument",
                                                          "message": h}})
                    # One vote in three carries the right order hash with the signature of the
                    # order before: clients check the votes as one aggregate, which then fails,
                    # and must fall back to one by one and keep the honest three.
                    prev, byz.last_vote = byz.last_vote, vote
                    if prev is not None and random.random() < 1 / 3 and h:
                        byz.bad_vote_sigs += 1
                        vote = h + prev[64:]
                    return self.reply(200, {"vote": vote, "authority": BYZ, "order_hash": h})
                if p == "/v1/ledger/settlements":
                    vote, h = byz.sign("settle " + body["settlement"])
                    if vote is None:
                        return self.reply(400, {"error": {"code": "invalid_argument",
                                                          "message": h}})
                    return self.reply(200, {"vote": vote, "authority": BYZ,
                                            "settlement_hash": h})
                if p == "/v1/ledger/certificates":
                    with byz.lock:
                        if len(byz.seen) < 200:
                            byz.seen.append(body["certificate"])
                    return self.reply(200, {"outcome": "applied", "order_hash": "00" * 32})
                if p == "/v1/ledger/settlement-certificates":
                    return self.reply(200, {"outcome": "applied", "settlement_hash": "00" * 32})
                self.reply(503, {"error": {"code": "unavailable",
                                           "message": "a Byzantine authority"}})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign(self, line):
        with self.lock:
            self.signer.stdin.write(line + "\n")
            self.signer.stdin.flush()
            out = self.signer.stdout.readline().split()
        if not out or out[0] != "ok":
            return None, " ".join(out[1:])
        self.votes += 1
        return out[1], (out[2] if len(out) > 2 else None)

    def mutations(self, cert_hex):
        """Malformed certificates made from a real one, each named."""
        b = bytearray.fromhex(cert_hex)
        n = int.from_bytes(b[:4], "big")
        out = []
        flipped = bytearray(b)
        flipped[-1] ^= 0x01
        out.append(("a flipped aggregate-signature byte", flipped))
        out.append(("a truncated wire", b[:len(b) - 7]))
        out.append(("trailing bytes", b + b"\x00" * 5))
        # The quorum after the order: u64 epoch ‖ u16 committee size ‖ bitmap ‖ aggregate.
        q = 4 + n
        committee = int.from_bytes(b[q + 8:q + 10], "big")
        if committee >= 1:
            fewer = bytearray(b)
            byte = fewer[q + 10]
            lowest = byte & -byte
            fewer[q + 10] = byte & ~lowest
            out.append(("a signer removed from the bitmap", fewer))
        other = bytearray(b)
        other[4 + n - 96 - 40] ^= 0x04  # a byte inside the signed order body
        out.append(("another order under the same signatures", other))
        return [(name, bytes(m).hex()) for name, m in out]

    def forgeries(self, k):
        with self.lock:
            pool = list(self.seen[-20:])
        out = []
        for c in random.sample(pool, min(k, len(pool))):
            out.append(random.choice(self.mutations(c))[1])
        return out or ["00" * 40]

    def attack(self, stop):
        """Sends malformed certificates to the honest authorities, and remembers any accepted."""
        import urllib.request
        while not stop.wait(0.5):
            with self.lock:
                pool = list(self.seen[-10:])
            if not pool:
                continue
            for name, m in self.mutations(random.choice(pool)):
                url = random.choice(self.urls)
                req = urllib.request.Request(
                    url + "/v1/ledger/certificates",
                    data=json.dumps({"certificate": m}).encode(),
                    headers={"Content-Type": "application/json"}, method="POST")
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, answer = r.status, r.read().decode()
                except urllib.error.HTTPError as e:
                    status, answer = e.code, e.read().decode()
                except OSError:
                    continue  # that authority is down right now
                with self.lock:
                    self.malformed_sent += 1
                    if status == 200:
                        self.malformed_accepted.append((url, name, answer[:300]))

    def close(self):
        self.server.shutdown()
        self.signer.stdin.close()
        self.signer.wait(timeout=10)


def main():
    rnd = random.Random(SEED)
    print(f"# BANK_SEED={SEED} BANK_SECONDS={SECONDS:g}")
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    names = [f"a{i:02d}" for i in range(ACCOUNTS)] + ["owner", "prov"]
    addr = {}
    for name in names:
        rc, out, err = tool(WALLET, wenv, "--insecure-test-kdf", "--wallet", f"{name}.json",
                            "--json", "new")
        if rc != 0:
            raise SystemExit(f"dfrp-wallet new {name}: {err[-300:]}")
        addr[name] = json.loads(out)["address"]
    with open(os.path.join(T, "pw.txt"), "w") as f:
        f.write("pw\n")
    base = free_base_port(N)
    cdir = os.path.join(T, "committee")
    genesis = []
    for name in names[:ACCOUNTS]:
        genesis += ["--genesis", f"{addr[name]}=100"]
    rc, _, err = tool(LEDGER, wenv, "init-committee", "--authorities", str(N), "--dir", cdir,
                      "--base-port", str(base), *genesis, "--order-fee", "0.001",
                      "--insecure-test-kdf")
    check("init-committee: four authorities, twenty accounts of 100", rc == 0, err[-400:])
    policy = os.path.join(cdir, "economic.toml")
    with open(policy, "a") as f:
        f.write(f'owner = "{addr["owner"]}"\nmargin_bps = 500\n\n[storage]\n'
                f"period_seconds = {PERIOD}\nchallenges_per_period = 2\n"
                f"answer_window_seconds = {WINDOW}\ngrace_seconds = {GRACE}\n"
                "max_skew_ms = 200\nbeacon_slot_seconds = 1\n")
    supply = ACCOUNTS * 100 * 10**9
    urls = [f"http://127.0.0.1:{base + i}" for i in range(N)]

    daemons = [None] * N

    def start(i):
        adir = os.path.join(cdir, f"authority-{i}")
        daemons[i] = Daemon(clean_env({"STATE_DIR": os.path.join(adir, "state")}),
                            ("--config", os.path.join(adir, "dfrp.toml")))

    for i in HONEST:
        start(i)
    byz = Byzantine(base + BYZ, policy, os.path.join(cdir, f"authority-{BYZ}"),
                    [urls[i] for i in HONEST])
    prov = Daemon(store_env("prov", extra={"WALLET": os.path.join(T, "prov.json"),
                                           "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
                                           "ECONOMIC_POLICY": policy}))
    st, _, w = prov.put(bytes(rnd.getrandbits(8) for _ in range(20_000)))
    check("a shard on the provider for the escrows", st == 201, w)
    with open(os.path.join(T, "receipt.json"), "w") as f:
        json.dump(w, f)

    def ledger(*args, timeout=120):
        return tool(LEDGER, wenv, "--policy", policy, *args, timeout=timeout)

    lock = threading.Lock()
    confirmed = []       # (sender address, seq, order hash, what)
    equivocations = []   # (sender address, seq): authority 0 voted for one and saw the other
    outcomes = {}        # (what, exit code) -> count
    unexpected = []      # (what, exit code, stderr tail)
    stop = threading.Event()

    def note(what, rc, err=""):
        with lock:
            outcomes[(what, rc)] = outcomes.get((what, rc), 0) + 1
            # 0 done; 6 too few authorities answered (one is down); 7 refused (funds, a frozen
            # account, a pending order whose sequence number another order took).
            if rc not in (0, 6, 7):
                unexpected.append((what, rc, err[-500:]))

    def post(i, path, obj):
        if daemons[i] is None:
            return None, {}
        try:
            st, _, v = daemons[i].json("POST", path, json.dumps(obj))
            return st, v
        except OSError:
            return None, {}

    def equivocate(crnd, sender):
        rc, out, err = ledger("--json", "balance", addr[sender])
        if rc != 0:
            return note("balance", rc, err)
        seq = json.loads(out)["next_seq"]
        files = []
        for k in range(2):
            f = os.path.join(T, f"eq-{sender}-{seq}-{k}.hex")
            rc, _, err = ledger("transfer", "--wallet", f"{sender}.json", "--to",
                                addr[crnd.choice([n for n in names[:ACCOUNTS] if n != sender])],
                                "--amount", str(k + 1),
                                "--seq", str(seq), "--offline", "-o", f)
            if rc != 0:
                return note("equivocation (sign)", rc, err)
            files.append(f)
        wire = [open(f).read().strip() for f in files]
        # A to authorities 0 and 1 (and the Byzantine one), B to 2 and then to 0.
        st_a, _ = post(0, "/v1/ledger/orders", {"order": wire[0]})
        post(1, "/v1/ledger/orders", {"order": wire[0]})
        post(2, "/v1/ledger/orders", {"order": wire[1]})
        st_b, v_b = post(0, "/v1/ledger/orders", {"order": wire[1]})
        if st_a == 200 and st_b == 402 and "equivocation" in str(v_b):
            with lock:
                equivocations.append((addr[sender], seq))
        for f in files:
            rc, out, err = ledger("--json", "submit", f)
            note("equivocation (submit)", rc, err)
            if rc == 0:
                with lock:
                    confirmed.append((addr[sender], seq, json.loads(out)["order_hash"],
                                      "equivocation"))

    def client(c):
        crnd = random.Random(SEED * 31 + c)
        mine = [n for k, n in enumerate(names[:ACCOUNTS]) if k % CLIENTS == c]
        while not stop.is_set():
            sender = crnd.choice(mine)
            r = crnd.random()
            if r < 0.08:
                equivocate(crnd, sender)
                continue
            if r < 0.2:
                what = "escrow"
                rc, out, err = ledger("--json", "escrow", "open", "--wallet", f"{sender}.json",
                                      "--provider", prov.info["url"], "--receipt",
                                      "receipt.json", "--amount", "0.5", "--periods", "2")
            else:
                what = "transfer"
                to = crnd.choice([n for n in names[:ACCOUNTS] if n != sender] + ["owner"])
                amount = crnd.choice(["0.001", "0.25", "1", "3.5", "7", "150"])
                rc, out, err = ledger("--json", "transfer", "--wallet", f"{sender}.json",
                                      "--to", addr[to], "--amount", amount)
            note(what, rc, err)
            if rc == 0:
                t = json.loads(out)
                with lock:
                    confirmed.append((addr[sender], t["seq"], t["order_hash"], what))

    kills = [0]

    def chaos():
        crnd = random.Random(SEED * 7)
        while not stop.wait(crnd.uniform(2, 5)):
            i = crnd.choice(list(HONEST))
            d, daemons[i] = daemons[i], None
            d.stop(signal.SIGKILL)
            kills[0] += 1
            time.sleep(crnd.uniform(0.5, 2.5))
            start(i)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    threads.append(threading.Thread(target=chaos))
    threads.append(threading.Thread(target=byz.attack, args=(stop,)))
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    for i in HONEST:
        if daemons[i] is None:
            start(i)
    print(f"# outcomes: {sorted(outcomes.items())}")
    print(f"# {len(confirmed)} confirmed, {len(equivocations)} equivocations seen by authority 0,"
          f" {kills[0]} kill -9, {byz.votes} Byzantine votes ({byz.bad_vote_sigs} with a wrong"
          f" signature), {byz.malformed_sent} malformed certificates sent")
    check("the Byzantine authority sent votes whose signature is another order's",
          byz.bad_vote_sigs >= 1, byz.bad_vote_sigs)
    check("every dfrp-ledger run ended done (0), short of authorities (6) or refused (7)",
          not unexpected, unexpected[:5])
    check("the load did something: confirmed transfers and escrows, and kill -9s",
          sum(1 for c in confirmed if c[3] == "transfer") >= 10 and
          any(c[3] == "escrow" for c in confirmed) and kills[0] >= 1,
          (len(confirmed), kills[0]))
    check("malformed certificates were sent and none was accepted",
          byz.malformed_sent > 0 and not byz.malformed_accepted, byz.malformed_accepted[:3])

    # The provider stops first: nothing moves money after this.
    check("the provider stops with SIGTERM", prov.stop() == 0)

    def accounts(i):
        st, _, a = daemons[i].json("GET", "/v1/ledger/accounts")
        return {x["address"]: (x["balance_base_units"], x["next_seq"]) for x in a["accounts"]}

    converged = poll(lambda: accounts(0) == accounts(1) == accounts(2), timeout=90, interval=0.5)
    check("the three honest authorities converge on every account (pulling from each other)",
          converged, [len(accounts(i)) for i in HONEST])
    # The epoch change settles what the fast path left open: authority 0 leads; the Byzantine
    # authority answers none of it, the three honest ones are a quorum of one state.
    adir0 = os.path.join(cdir, "authority-0")
    rc, out, err = ledger("--json", "epoch-change", "--wallet", os.path.join(adir0, "wallet.json"),
                          "--passphrase-file", os.path.join(adir0, "passphrase"), "--timeout",
                          "120", timeout=200)
    ec = json.loads(out) if rc == 0 else {}
    check("an epoch change led by authority 0: epoch 1, certified and applied by the three "
          "honest authorities", rc == 0 and ec.get("epoch") == 1 and ec.get("signers") == 3 and
          ec.get("applied_by") == 3, (rc, out[-600:], err[-600:]))
    for i in HONEST:
        st, _, e = daemons[i].json("GET", "/v1/ledger/epoch")
        locked = [x for x in names[:ACCOUNTS]
                  if daemons[i].json("GET", f"/v1/ledger/accounts/{addr[x]}")[2].get("locked")]
        check(f"authority {i}: at epoch 1, at the certified checkpoint, no account locked",
              st == 200 and e["epoch"] == 1 and
              e["checkpoint"]["state"] == ec["checkpoint"]["state"] and not locked, (e, locked))
    richest = max(names[:ACCOUNTS], key=lambda x: accounts(0)[addr[x]][0])
    rc, out, err = ledger("--json", "transfer", "--wallet", f"{richest}.json", "--to",
                          addr["owner"], "--amount", "0.5", "--abandon-pending")
    t = json.loads(out) if rc == 0 else {}
    check("a transfer certifies in epoch 1 (the Byzantine authority still voting)",
          rc == 0 and t.get("applied_by", 0) >= 3, (rc, out[-300:], err[-400:]))
    converged = poll(lambda: accounts(0) == accounts(1) == accounts(2), timeout=60, interval=0.5)
    check("the honest authorities agree on every account after the epoch change", converged)

    for i in HONEST:
        a = accounts(i)
        s = daemons[i].json("GET", "/v1/ledger/supply")[2]
        check(f"authority {i}: balances and escrows sum to the supply",
              s.get("conserved") is True and s["supply_base_units"] == supply, s)
        check(f"authority {i}: no account is negative",
              all(b >= 0 for b, _ in a.values()), [x for x in a.items() if x[1][0] < 0][:3])
        missing = []
        for sender, seq, h, what in confirmed:
            st, _, c = daemons[i].json("GET", f"/v1/ledger/certificates/{sender}?from={seq}")
            certs = c.get("certificates", []) if st == 200 else []
            if not certs or order_hash_of_certificate(certs[0]) != h:
                missing.append((what, sender[:12], seq))
        check(f"authority {i}: every confirmed transfer and escrow is certified there, under "
              "the order hash the client saw", not missing, missing[:5])
    eq = daemons[0].json("GET", "/v1/ledger/equivocations")[2]["equivocations"]
    kept = {(e["sender"], e["seq"]) for e in eq}
    check("every equivocation authority 0 saw is kept there as a proof",
          all(e in kept for e in equivocations), (equivocations, kept))
    rc, out, err = ledger("--json", "audit", "--exclude", str(BYZ), timeout=300)
    a = json.loads(out) if out.strip() else {}
    check("dfrp-ledger audit --exclude 3 passes: every certificate verifies, no (sender, seq) "
          "is certified twice, each log replays to its authority's state",
          rc == 0 and a.get("ok") is True and a.get("authorities_audited") == 3,
          (rc, out[-800:], err[-300:]))
    print(f"# audit: {a.get('certificates')} certificates, {a.get('settlements')} settlements, "
          f"{a.get('releases_verified')} releases verified")
    rc, out, err = ledger("audit", timeout=300)
    check("an audit that reads the Byzantine authority fails (exit 3 or 6), naming it",
          rc in (3, 6) and "authority 3" in err, (rc, err[-400:]))
    byz.close()
    for i in HONEST:
        check(f"authority {i} stops with SIGTERM", daemons[i].stop() == 0)


if __name__ == "__main__":
    run(main)
