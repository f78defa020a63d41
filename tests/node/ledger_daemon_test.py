"""The ledger across four real dfrpd authorities on loopback (issue 13), end to end.

Usage: ledger_daemon_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET

- `dfrp-ledger init-committee` writes four authorities (wallet, passphrase file, config with
  ROLES = storage,authority) and the shared economic.toml; each dfrpd starts on its config.
- `dfrp-ledger transfer` is certified by all four and applied by all four; balances agree at
  every authority, the order fee goes to the committee's account.
- A transfer past the balance exits 7 at every authority's refusal and leaves no pending order.
- With one authority killed (kill -9), transfers still certify with three votes; once it is
  back it pulls what it missed from its peers' logs by itself (LedgerSyncService, shown in
  /v1/status) and all four agree again.
- An equivocation (two orders signed offline for one sequence number, each sent to half the
  committee) gathers no quorum: the authority that sees the second keeps both as a proof, the
  account stays frozen (the next transfer exits 7).
- `dfrp-ledger epoch-change` led by authority 0 moves all four to epoch 1 at one checkpoint;
  the epoch-0 order is refused from then on, and alice signs her frozen seq again, for epoch
  1; a second change moves to epoch 2, and the audit verifies certificates of both epochs.
- After every step, at every authority: the balances sum to the supply; at the end
  `dfrp-ledger audit` passes, and names an authority whose database was altered by hand.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

LEDGER, WALLET = sys.argv[3], sys.argv[4]
N = 4


def free_base_port(n):
    """A port P such that P..P+n-1 are free on 127.0.0.1 now."""
    for _ in range(200):
        # Below the kernel's ephemeral range (32768 and up, ip_local_port_range), where the
        # daemons of tests running beside this one take their ports (API_ADDR 127.0.0.1:0):
        # a port found free here cannot be taken by one of those before this test binds it.
        base = random.randint(20000, 32000 - n)
        socks = []
        try:
            for i in range(n):
                s = socket.socket()
                s.bind(("127.0.0.1", base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise SystemExit("no free ports")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("DRIVE_") or k.startswith("QUOTA_") or
                   k in ("STATE_DIR", "DFRP_CONFIG", "API_ADDR", "ROLES", "WALLET",
                         "WALLET_PASSPHRASE_FILE", "ECONOMIC_POLICY"))}
    env.update(extra or {})
    return env


def tool(binary, env, *args, timeout=120):
    r = subprocess.run([binary, *args], env=env, cwd=T, capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def new_wallets(wallet, wenv, vectors):
    """A wallet T/<name>.json (passphrase "pw", also in T/pw.txt) for each name of `vectors`,
    with that identity vector (a comma-separated string; None: the default). Returns the
    addresses by name."""
    addr = {}
    for name, vector in vectors.items():
        rc, out, err = tool(wallet, wenv, "--insecure-test-kdf", "--wallet", f"{name}.json",
                            "--json", "new", *(("--vector", vector) if vector else ()))
        check(f"dfrp-wallet new {name}", rc == 0, err[-400:])
        addr[name] = json.loads(out)["address"]
    with open(os.path.join(T, "pw.txt"), "w") as f:
        f.write("pw\n")
    return addr


def committee_with_storage(wallet, ledger, wenv, names, n, storage, payer="alice",
                           authority_env=None, host="127.0.0.1", vector=None):
    """Wallets `names` (passphrase "pw", also in T/pw.txt), a committee of `n` authorities
    on loopback with `payer` funded with 1000, the owner (the wallet "owner") taking 5%, the
    `[storage]` table `storage` (a dict), and the authorities started (authority i with the
    extra environment `authority_env(i)`, when given), listening on `host`; every wallet with
    the identity vector `vector` (a comma-separated string), when given. Returns (addresses,
    economic.toml path, authorities)."""
    addr = new_wallets(wallet, wenv, {name: vector for name in names})
    cdir = os.path.join(T, "committee")
    rc, out, err = tool(ledger, wenv, "init-committee", "--authorities", str(n), "--dir", cdir,
                        "--base-port", str(free_base_port(n)), "--genesis",
                        f"{addr[payer]}=1000", "--order-fee", "0.001", "--insecure-test-kdf")
    check(f"init-committee of {n}", rc == 0, err[-400:])
    policy = os.path.join(cdir, "economic.toml")
    # The [policy] table is the file's last: the owner and margin join it.
    with open(policy, "a") as f:
        f.write(f'owner = "{addr["owner"]}"\nmargin_bps = 500\n\n[storage]\n' +
                "".join(f"{k} = {v}\n" for k, v in storage.items()))
    if host != "127.0.0.1":  # init-committee writes loopback URLs: another address instead
        paths = [policy] + [os.path.join(cdir, f"authority-{i}", "dfrp.toml") for i in range(n)]
        for p in paths:
            with open(p) as f:
                text = f.read()
            with open(p, "w") as f:
                f.write(text.replace("127.0.0.1", host))
    auths = []
    for i in range(n):
        adir = os.path.join(cdir, f"authority-{i}")
        env = {"STATE_DIR": os.path.join(adir, "state"), **(authority_env(i) if authority_env
                                                          else {})}
        auths.append(Daemon(clean_env(env), ("--config", os.path.join(adir, "dfrp.toml"))))
    return addr, policy, auths


def main():
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    addr = {}
    for name in ("alice", "bob", "carol"):
        rc, out, err = tool(WALLET, wenv, "--insecure-test-kdf", "--wallet", f"{name}.json",
                            "--json", "new")
        check(f"dfrp-wallet new {name}", rc == 0, err[-400:])
        addr[name] = json.loads(out)["address"]

    base = free_base_port(N)
    cdir = os.path.join(T, "committee")
    rc, out, err = tool(LEDGER, wenv, "--json", "init-committee", "--authorities", str(N),
                        "--dir", cdir, "--base-port", str(base), "--genesis",
                        f"{addr['alice']}=1000", "--genesis", f"{addr['bob']}=50",
                        "--order-fee", "0.001", "--insecure-test-kdf")
    check("init-committee of four", rc == 0, err[-400:])
    policy = os.path.join(cdir, "economic.toml")
    rc, _, err = tool(LEDGER, wenv, "init-committee", "--authorities", "4", "--dir", cdir)
    check("init-committee refuses a folder that is not empty (exit 2)",
          rc == 2 and "not empty" in err, err)

    daemons = [None] * N

    def start(i):
        adir = os.path.join(cdir, f"authority-{i}")
        env = clean_env({"STATE_DIR": os.path.join(adir, "state")})
        daemons[i] = Daemon(env, ("--config", os.path.join(adir, "dfrp.toml")))

    for i in range(N):
        start(i)
    st, _, c = daemons[0].json("GET", "/v1/ledger/committee")
    check("GET /v1/ledger/committee: four members, quorum 3, this is authority 0",
          st == 200 and len(c["members"]) == 4 and c["quorum"] == 3 and c["this_authority"] == 0, c)

    def ledger(*args, timeout=120):
        return tool(LEDGER, wenv, "--policy", policy, *args, timeout=timeout)

    def account(i, who):
        return daemons[i].json("GET", f"/v1/ledger/accounts/{addr.get(who, who)}")[2]

    def all_agree(step):
        for who in ("alice", "bob", "carol", "committee"):
            views = [(account(i, who)["balance_base_units"], account(i, who)["next_seq"])
                     for i in range(N) if daemons[i]]
            check(f"{step}: every authority has the same {who}", len(set(views)) == 1, views)
        for i in range(N):
            if daemons[i]:
                s = daemons[i].json("GET", "/v1/ledger/supply")[2]
                check(f"{step}: authority {i}'s balances sum to the supply",
                      s["conserved"] and s["supply_base_units"] == 1050 * 10**9, s)

    rc, out, err = ledger("--json", "transfer", "--wallet", "alice.json", "--to", addr["bob"],
                          "--amount", "100", "--memo", "first")
    t = json.loads(out) if rc == 0 else {}
    check("transfer alice -> bob 100: certified and applied by all four",
          rc == 0 and t["votes"] == 4 and t["applied_by"] == 4 and t["seq"] == 0, err[-600:])
    check("bob has 150 at authority 2", account(2, "bob")["balance_base_units"] == 150 * 10**9,
          account(2, "bob"))
    check("alice paid the amount and the order fee",
          account(1, "alice")["balance_base_units"] == 900 * 10**9 - 10**6, account(1, "alice"))
    check("the fee went to the committee's account",
          account(3, "committee")["balance_base_units"] == 10**6, account(3, "committee"))
    check("alice.json.pending keeps the last order signed (synced before it was sent)",
          os.path.exists(os.path.join(T, "alice.json.pending")))
    all_agree("after one transfer")

    rc, _, err = ledger("transfer", "--wallet", "bob.json", "--to", addr["alice"],
                        "--amount", "1000")
    check("a transfer past the balance exits 7", rc == 7, err[-400:])
    check("... naming the balance and the need", "the transfer needs 1000" in err, err[-400:])
    check("... before anything was signed (no pending order)",
          not os.path.exists(os.path.join(T, "bob.json.pending")) and "nothing was signed" in err,
          err[-300:])
    rc, _, err = ledger("transfer", "--wallet", "bob.json", "--to", addr["bob"], "--amount", "1")
    check("a transfer to the wallet's own address exits 2 before anything is signed",
          rc == 2 and "pay itself" in err and
          not os.path.exists(os.path.join(T, "bob.json.pending")), err[-300:])
    rc, out, err = ledger("balance", addr["bob"])
    check("dfrp-ledger balance bob: 150", rc == 0 and out.startswith("150 "), out + err)

    # The same through dfrp-wallet, for the wallet its options name.
    def wallet(name, *args):
        return tool(WALLET, wenv, "--wallet", f"{name}.json", "--policy", policy, *args)

    rc, out, err = wallet("bob", "--json", "balance")
    b = json.loads(out) if rc == 0 else {}
    check("dfrp-wallet balance: bob's own, 150", rc == 0 and b.get("balance_base_units") ==
          150 * 10**9 and b.get("address") == addr["bob"], out + err)
    rc, out, err = wallet("bob", "balance", "--address", addr["alice"])
    check("dfrp-wallet balance --address: alice's", rc == 0 and out.startswith("899.999 "),
          out + err)
    rc, out, err = wallet("bob", "--json", "transfer", "--to", addr["carol"], "--amount", "0.5")
    t = json.loads(out) if rc == 0 else {}
    check("dfrp-wallet transfer: bob pays carol 0.5, certified", rc == 0 and t.get("seq") == 0,
          err[-400:])
    rc, _, err = wallet("bob", "transfer", "--to", addr["carol"], "--amount", "500")
    check("dfrp-wallet transfer past the balance exits 7", rc == 7, err[-300:])
    rc, out, err = wallet("alice", "--json", "history")
    h = json.loads(out).get("orders", []) if rc == 0 else []
    check("dfrp-wallet history: alice's one certified order (to bob, 100, memo first)",
          rc == 0 and len(h) == 1 and h[0]["to"] == addr["bob"] and h[0]["seq"] == 0 and
          h[0]["amount_base_units"] == 100 * 10**9 and h[0]["memo"] == "first", out + err)
    rc, out, err = wallet("carol", "history")
    check("dfrp-wallet history of a wallet that signed nothing says so",
          rc == 0 and "no certified orders" in out, out + err)

    # One authority dies: three still make a quorum.
    daemons[3].stop(signal.SIGKILL)
    daemons[3] = None
    for k in range(3):
        rc, out, err = ledger("--json", "transfer", "--wallet", "alice.json", "--to",
                              addr["carol"], "--amount", "1")
        t = json.loads(out) if rc == 0 else {}
        check(f"with authority 3 killed, transfer {k + 1} certifies with three votes",
              rc == 0 and t["votes"] == 3 and t["applied_by"] == 3, err[-600:])
    all_agree("with authority 3 down")
    start(3)
    # It pulls the three certificates it missed from its peers' logs by itself.
    deadline = time.time() + 30
    while account(3, "alice")["next_seq"] < 4 and time.time() < deadline:
        time.sleep(0.2)
    check("the restarted authority catches up by itself: alice's next seq there is 4",
          account(3, "alice")["next_seq"] == 4, account(3, "alice"))
    st, _, status = daemons[3].json("GET", "/v1/status")
    sync = status.get("ledger_sync") or {}
    check("/v1/status ledger_sync: three peers, the three certificates applied from them",
          st == 200 and len(sync.get("peers", [])) == 3 and
          sum(p["applied"] for p in sync["peers"]) == 3 and
          sum(p["rejected"] for p in sync["peers"]) == 0, sync)
    rc, out, err = ledger("--json", "transfer", "--wallet", "alice.json", "--to", addr["bob"],
                          "--amount", "2")
    t = json.loads(out) if rc == 0 else {}
    check("the next transfer gets all four votes",
          rc == 0 and t["votes"] == 4 and t["applied_by"] == 4, err[-600:])
    all_agree("after the restart")

    # Equivocation: two orders for alice's next seq, each sent to half of the committee.
    seq = account(0, "alice")["next_seq"]
    for name, to in (("a", "bob"), ("b", "carol")):
        rc, _, err = ledger("transfer", "--wallet", "alice.json", "--to", addr[to], "--amount",
                            "5", "--seq", str(seq), "--offline", "-o", f"order-{name}.hex")
        check(f"order {name} signed offline at seq {seq}", rc == 0, err[-300:])
    order = {n: open(os.path.join(T, f"order-{n}.hex")).read().strip() for n in ("a", "b")}
    # An order whose signature is another order's (a valid point that does not verify) is the
    # caller's bad bytes: 422 integrity (exit 3), no lock taken.
    mixed = order["a"][:-192] + order["b"][-192:]
    st, _, v = daemons[0].json("POST", "/v1/ledger/orders", json.dumps({"order": mixed}))
    check("an order with a signature that does not verify: 422 integrity, naming it",
          st == 422 and v["error"]["code"] == "integrity" and v["error"]["exit_code"] == 3 and
          "does not verify" in v["error"]["message"] and
          account(0, "alice")["locked"] is None, (st, v))
    for i, n in ((0, "a"), (1, "a"), (2, "b"), (3, "b")):
        st, _, v = daemons[i].json("POST", "/v1/ledger/orders", json.dumps({"order": order[n]}))
        check(f"authority {i} votes for order {n}", st == 200 and "vote" in v, v)
    st, _, v = daemons[0].json("POST", "/v1/ledger/orders", json.dumps({"order": order["b"]}))
    check("authority 0 refuses the second order with 402 refused",
          st == 402 and v["error"]["code"] == "refused" and "equivocation" in v["error"]["message"], v)
    st, _, e = daemons[0].json("GET", "/v1/ledger/equivocations")
    check("authority 0 keeps both orders as an equivocation proof",
          st == 200 and len(e["equivocations"]) == 1 and e["equivocations"][0]["seq"] == seq and
          {e["equivocations"][0]["order_a"], e["equivocations"][0]["order_b"]} ==
          {order["a"], order["b"]}, e)
    rc, _, err = ledger("submit", os.path.join(T, "order-a.hex"))
    check("neither order can gather a quorum (submit exits 7)", rc == 7, err[-400:])
    rc, _, err = ledger("transfer", "--wallet", "alice.json", "--to", addr["bob"], "--amount", "1")
    check("the account stays frozen: alice's next transfer exits 7", rc == 7, err[-400:])
    all_agree("after the equivocation")
    rc, out, err = ledger("--json", "balance", "committee")
    check("the committee holds one fee per certified order (6)",
          rc == 0 and json.loads(out)["balance_base_units"] == 6 * 10**6, out + err)
    rc, out, err = ledger("--json", "audit")
    a = json.loads(out) if out.strip() else {}
    check("dfrp-ledger audit passes: six certificates verify and replay at all four",
          rc == 0 and a.get("ok") is True and a.get("certificates") == 6, (rc, out[-600:], err[-300:]))
    # The epoch change: authority 0 leads; the committee moves to epoch 1 at a checkpoint of
    # one state, every lock of epoch 0 goes, and alice (frozen by her equivocation) signs her
    # seq again, for epoch 1.
    adir0 = os.path.join(cdir, "authority-0")
    rc, out, err = ledger("--json", "epoch-change", "--wallet", os.path.join(adir0, "wallet.json"),
                          "--passphrase-file", os.path.join(adir0, "passphrase"), "--timeout", "60")
    ec = json.loads(out) if rc == 0 else {}
    check("dfrp-ledger epoch-change: epoch 1, certified by a quorum, applied by all four",
          rc == 0 and ec.get("epoch") == 1 and ec.get("signers", 0) >= 3 and
          ec.get("applied_by") == 4 and ec["checkpoint"]["certificates"] == 6,
          (rc, out[-600:], err[-600:]))
    for i in range(N):
        st, _, c = daemons[i].json("GET", "/v1/ledger/epoch")
        check(f"authority {i} is at epoch 1, no longer sealed, at the checkpoint",
              st == 200 and c["epoch"] == 1 and not c["sealed"] and
              c["checkpoint"]["state"] == ec["checkpoint"]["state"], c)
    st, _, v = daemons[0].json("POST", "/v1/ledger/orders", json.dumps({"order": order["a"]}))
    check("an order signed for epoch 0 is refused now (400, sign it again)",
          st == 400 and "sign it again" in v["error"]["message"], v)
    rc, out, err = ledger("--json", "transfer", "--wallet", "alice.json", "--to", addr["bob"],
                          "--amount", "1")
    t = json.loads(out) if rc == 0 else {}
    check("alice is unfrozen: her transfer at the equivocated seq certifies in epoch 1",
          rc == 0 and t.get("seq") == seq and t.get("applied_by") == 4 and
          "was for epoch 0" in err, (rc, out[-400:], err[-400:]))
    rc, out, err = ledger("--json", "epoch-change", "--wallet", os.path.join(adir0, "wallet.json"),
                          "--passphrase-file", os.path.join(adir0, "passphrase"), "--timeout", "60")
    ec2 = json.loads(out) if rc == 0 else {}
    check("a second epoch change moves to epoch 2 with the epoch-1 certificate in it",
          rc == 0 and ec2.get("epoch") == 2 and ec2["checkpoint"]["certificates"] == 7,
          (rc, out[-600:], err[-600:]))
    all_agree("after two epoch changes")
    rc, out, err = ledger("--json", "audit")
    a = json.loads(out) if out.strip() else {}
    check("dfrp-ledger audit passes across the epochs: seven certificates",
          rc == 0 and a.get("ok") is True and a.get("certificates") == 7,
          (rc, out[-600:], err[-300:]))
    rc, out, err = wallet("alice", "--json", "history")
    h = json.loads(out).get("orders", []) if rc == 0 else []
    check("dfrp-wallet history verifies certificates of both epochs (alice's six)",
          rc == 0 and len(h) == 6 and h[-1]["seq"] == seq, (rc, out[-400:], err[-300:]))
    st, _, nodeinfo = daemons[1].json("GET", "/v1/ledger/node")
    check("/v1/ledger/node shows the authority's epoch (2)",
          st == 200 and nodeinfo["authority"]["epoch"] == 2, nodeinfo.get("authority"))

    # An authority whose database was altered behind its back (a balance raised by hand) is
    # named by the audit, exit 3.
    daemons[2].stop()
    db = os.path.join(cdir, "authority-2", "state", "ledger.db")
    import sqlite3
    con = sqlite3.connect(db)
    con.execute("UPDATE accounts SET balance = balance + 7 WHERE balance > 0 AND "
                "length(key) = 48 AND key != zeroblob(48)")
    con.commit()
    con.close()
    start(2)
    rc, out, err = ledger("audit")
    check("an authority altered by hand fails the audit (exit 3), named",
          rc == 3 and "authority 2" in err and "the supply is" in err, (rc, err[-600:]))
    rc, out, err = ledger("supply")
    check("... and its supply check fails too (exit 3)", rc == 3 and "authority 2" in err,
          (rc, out[-300:], err[-300:]))
    for d in daemons:
        check("dfrpd stops with SIGTERM", d.stop() == 0)


if __name__ == "__main__":
    run(main)
