"""A period whose votes split on purpose, with skewed clocks, settled by the epoch change.

Usage: epoch_split_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET

Four real dfrpd authorities on loopback; authorities 2 and 3 run with their clocks 5 s ahead
(DFRP_TEST_CLOCK_OFFSET_MS = 5000, a 4 s answer window). A provider stores a shard and accepts a
one-period escrow. Inside the window (by its clock and by authorities 0 and 1) the provider
sends its release: 0 and 1 vote for it (and lock the period for a release); 2 and 3, whose
clocks say the window has closed, refuse. No quorum. After the grace the payer asks for the
refund: 2 and 3 vote for it, 0 and 1 refuse (they never vote both ways). No quorum either:
the period is split, and the money stays in the escrow. `dfrp-ledger epoch-change` then
certifies epoch 1 (every lock of epoch 0 goes), and the refund goes through with all four
votes: the payer has its money back, every authority agrees, the supply is conserved, and
`dfrp-ledger audit` passes.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, committee_with_storage, tool  # noqa: E402

LEDGER, WALLET = sys.argv[3], sys.argv[4]
N = 4
PERIOD, WINDOW, GRACE = 8, 4, 2
AHEAD_MS = 5000


def main():
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    # Authorities 2 and 3 run AHEAD_MS ahead (a test-only knob dfrpd announces at start).
    addr, policy, auths = committee_with_storage(
        WALLET, LEDGER, wenv, ("alice", "owner", "prov"), N,
        {"period_seconds": PERIOD, "challenges_per_period": 3, "answer_window_seconds": WINDOW,
         "grace_seconds": GRACE, "max_skew_ms": 200, "beacon_slot_seconds": 1},
        authority_env=lambda i: {"DFRP_TEST_CLOCK_OFFSET_MS": str(AHEAD_MS)} if i >= 2 else {})
    prov = Daemon(store_env("prov", extra={"WALLET": os.path.join(T, "prov.json"),
                                           "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
                                           "ECONOMIC_POLICY": policy}))

    def ledger(*args, timeout=120):
        return tool(LEDGER, wenv, "--policy", policy, *args, timeout=timeout)

    def account(i, who):
        return auths[i].json("GET", f"/v1/ledger/accounts/{addr.get(who, who)}")[2]

    def escrow(eid):
        return auths[0].json("GET", f"/v1/ledger/escrows/{eid}")[2]

    st, _, w = prov.put(bytes(random.getrandbits(8) for _ in range(20_000)))
    check("PUT the shard on the provider", st == 201, w)
    with open(os.path.join(T, "r.json"), "w") as f:
        json.dump(w, f)
    rc, out, err = ledger("--json", "escrow", "open", "--wallet", "alice.json", "--provider",
                          prov.info["url"], "--receipt", "r.json", "--amount", "2",
                          "--periods", "1")
    check("a one-period escrow of 2 opens", rc == 0, err[-600:])
    e = json.loads(out) if rc == 0 else {}
    eid = e.get("escrow_id", "00" * 32)

    # The window passes: the provider's release gathers only authorities 0 and 1.
    rc, out, _ = ledger("--json", "escrow", "status", eid)
    period = json.loads(out)["open_periods"][0] if rc == 0 else {}
    refund_ms = period.get("refundable_from_ms", 0)
    wait_for("the period's refund time (and the release attempts inside its window)",
             lambda: time.time() * 1000 > refund_ms + 300, timeout=PERIOD + GRACE + 30)
    pst = prov.json("GET", "/v1/status")[2].get("escrows") or {}
    check("the provider's release found no quorum (authorities 2 and 3: outside the window)",
          pst.get("releases_sent") == 0 and pst.get("failures", 0) >= 1 and
          "votes" in (pst.get("last_error") or ""), pst)
    check("the period is not settled: the money is still in the escrow",
          escrow(eid).get("remaining_base_units") == 2 * 10**9 and
          not escrow(eid).get("settled"), escrow(eid))
    rc, _, err = ledger("escrow", "refund", eid)
    check("the refund is refused too (exit 7): authorities 0 and 1 voted for the release",
          rc == 7 and "never votes both" in err, (rc, err[-600:]))
    check("the split leaves alice short of the 2 in escrow",
          account(0, "alice")["balance_base_units"] == 1000 * 10**9 - 2 * 10**9 - 10**6,
          account(0, "alice"))

    # The epoch change clears the locks; the refund then gathers all four votes.
    adir0 = os.path.join(os.path.dirname(policy), "authority-0")
    rc, out, err = ledger("--json", "epoch-change", "--wallet", os.path.join(adir0, "wallet.json"),
                          "--passphrase-file", os.path.join(adir0, "passphrase"), "--timeout", "60")
    ec = json.loads(out) if rc == 0 else {}
    check("dfrp-ledger epoch-change: epoch 1, applied by all four",
          rc == 0 and ec.get("epoch") == 1 and ec.get("applied_by") == 4,
          (rc, ec.get("authorities"), out[-300:], err[-600:]))
    rc, out, err = ledger("--json", "escrow", "refund", eid)
    r = json.loads(out) if rc == 0 else {}
    check("after the epoch change the split period is refunded",
          rc == 0 and len(r.get("refunded", [])) == 1, (rc, out[-600:], err[-600:]))
    s = escrow(eid)
    check("the escrow is empty, its period refunded in epoch 1",
          s.get("remaining_base_units") == 0 and
          [p["kind"] for p in s.get("settled", [])] == ["refund"], s)
    for i in range(N):
        check(f"authority {i}: alice has her 2 back (less the order fee), supply conserved",
              account(i, "alice")["balance_base_units"] == 1000 * 10**9 - 10**6 and
              auths[i].json("GET", "/v1/ledger/supply")[2].get("conserved") is True,
              account(i, "alice"))
    rc, out, err = ledger("--json", "audit")
    a = json.loads(out) if out.strip() else {}
    check("dfrp-ledger audit passes: one escrow, one refund, across two epochs",
          rc == 0 and a.get("ok") is True and a.get("settlements") == 1, (rc, out[-600:], err[-300:]))
    for d in auths + [prov]:
        check("dfrpd stops with SIGTERM", d.stop() == 0)


if __name__ == "__main__":
    run(main)
