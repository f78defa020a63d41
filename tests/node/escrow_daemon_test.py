"""Storage paid through escrow, across real processes (issue 13): four dfrpd authorities, two
dfrpd providers with wallets, a payer's dfrp-ledger, real time with short periods.

Usage: escrow_daemon_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET

- The provider's node accepts an escrow only for a shard it holds exactly as the terms say.
- `dfrp-ledger escrow open` locks the amount; the supply (balances + open escrows) holds.
- Three periods pass: the provider's node, by itself, takes each period's seed from the
  beacon, answers the audit from its store and is paid by a certified release; the owner's
  margin (5%) is taken on every payout; the escrow ends empty.
- A provider whose shard was damaged on its drive answers nothing (its store never serves
  the bad bytes), is paid nothing, and the payer's `escrow refund` returns every period once
  its window closed and the grace passed; before that, refund exits 7.
- `dfrp-ledger audit` verifies every authority's log (every release's proof again) and
  replays it to the state the authority reports; `supply` finds it conserved everywhere.
- After every step, at every authority: the balances and open escrows sum to the supply,
  and all four agree.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, committee_with_storage, tool  # noqa: E402

LEDGER, WALLET = sys.argv[3], sys.argv[4]
N = 4
PERIOD, WINDOW, GRACE = 6, 3, 2


def main():
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    addr, policy, auths = committee_with_storage(
        WALLET, LEDGER, wenv, ("alice", "owner", "prov", "lost"), N,
        {"period_seconds": PERIOD, "challenges_per_period": 3, "answer_window_seconds": WINDOW,
         "grace_seconds": GRACE, "max_skew_ms": 200, "beacon_slot_seconds": 1})

    def provider(name):
        return Daemon(store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": policy}))

    prov, lost = provider("prov"), provider("lost")

    def ledger(*args, timeout=120):
        return tool(LEDGER, wenv, "--policy", policy, *args, timeout=timeout)

    def account(i, who):
        return auths[i].json("GET", f"/v1/ledger/accounts/{addr.get(who, who)}")[2]

    def all_agree(step):
        # Agreement is eventual: a certificate applied by a quorum reaches the others when they
        # pull it, and a provider's release may be landing meanwhile (a slow, sanitized build
        # reaches the first period's window during the setup). Each balance is compared once
        # the authorities stop disagreeing, or as they stand after the wait.
        who_all = ("alice", "owner", "prov", "lost", "committee")

        def views():
            return {w: {account(i, w)["balance_base_units"] for i in range(N)} for w in who_all}

        got = poll(lambda: (lambda v: v if all(len(s) == 1 for s in v.values()) else None)(
            views()), timeout=30, interval=0.2) or views()
        for who in who_all:
            check(f"{step}: every authority has the same {who}", len(got[who]) == 1, got[who])
        for i in range(N):
            s = auths[i].json("GET", "/v1/ledger/supply")[2]
            check(f"{step}: authority {i}: balances and escrows sum to the supply",
                  s.get("conserved") is True, s)

    # A 100 KB shard (25 leaves) on prov; a one-leaf shard on lost.
    payload = bytes(random.getrandbits(8) for _ in range(100_000))
    st, _, w1 = prov.put(payload)
    check("PUT the shard on the provider", st == 201, w1)
    st, _, w2 = lost.put(bytes(random.getrandbits(8) for _ in range(3000)))
    check("PUT the shard on the other provider", st == 201, w2)
    for name, w in (("r1.json", w1), ("r2.json", w2)):
        with open(os.path.join(T, name), "w") as f:
            json.dump(w, f)

    # The provider signs only for the shard as it holds it.
    rc, _, err = ledger("escrow", "open", "--wallet", "alice.json", "--provider", prov.info["url"],
                        "--shard", w1["shard_id"], "--root", "00" * 32, "--size",
                        str(w1["size"]), "--leaf-size", str(w1["leaf_size"]), "--amount", "3",
                        "--periods", "3")
    check("a provider refuses terms with another root (exit 2, naming the root)",
          rc == 2 and "root" in err, (rc, err[-400:]))
    check("... and nothing was signed: alice's next seq is still 0",
          account(0, "alice")["next_seq"] == 0, account(0, "alice"))

    # Damage the other provider's shard on its drive (its one leaf) before its escrow opens, so
    # that no answer window of it can come before the damage (the provider accepts by the
    # shard's metadata: it does not know yet).
    st, _, m = lost.json("GET", f"/v1/shards/{w2['shard_id']}/meta")
    with open(m["segment"], "r+b") as f:
        f.seek(m["offset"] + m["record_len"] - 100)
        b = f.read(1)
        f.seek(m["offset"] + m["record_len"] - 100)
        f.write(bytes([b[0] ^ 0x01]))

    rc, out, err = ledger("--json", "escrow", "open", "--wallet", "alice.json", "--provider",
                          prov.info["url"], "--receipt", "r1.json", "--amount", "3",
                          "--periods", "3")
    check("escrow open on the provider", rc == 0, err[-600:])
    e1 = json.loads(out) if rc == 0 else {}
    rc, out, err = ledger("--json", "escrow", "open", "--wallet", "alice.json", "--provider",
                          lost.info["url"], "--receipt", "r2.json", "--amount", "0.3",
                          "--periods", "3")
    check("escrow open on the other provider", rc == 0, err[-600:])
    e2 = json.loads(out) if rc == 0 else {}
    check("alice paid 3.3 into escrows and two order fees",
          account(0, "alice")["balance_base_units"] == 1000 * 10**9 - 3_300_000_000 - 2_000_000,
          account(0, "alice"))
    all_agree("after two escrows opened")
    rc, out, err = tool(WALLET, wenv, "--wallet", "alice.json", "--policy", policy, "--json",
                        "escrow", "list")
    listed = {e.get("id") for e in json.loads(out).get("escrows", [])} if rc == 0 else set()
    check("dfrp-wallet escrow list: the wallet's two open escrows",
          rc == 0 and {e1.get("escrow_id"), e2.get("escrow_id")} <= listed, out[-400:] + err[-300:])
    # The listing comes a page at a time: ?limit=1 gives one escrow and where to go on.
    st, _, p1 = auths[1].json("GET", f"/v1/ledger/escrows?party={addr['alice']}&limit=1")
    st2, _, p2 = auths[1].json(
        "GET", f"/v1/ledger/escrows?party={addr['alice']}&limit=1&after={p1.get('next_after')}")
    st3, _, p3 = auths[1].json(
        "GET", f"/v1/ledger/escrows?party={addr['alice']}&limit=1&after={p2.get('next_after')}")
    check("GET /v1/ledger/escrows pages: one escrow per page of one, by id, then an empty page",
          st == st2 == st3 == 200 and len(p1["escrows"]) == len(p2["escrows"]) == 1 and
          p1["escrows"][0]["id"] < p2["escrows"][0]["id"] and
          {p1["escrows"][0]["id"], p2["escrows"][0]["id"]} ==
          {e1.get("escrow_id"), e2.get("escrow_id")} and p3["escrows"] == [] and
          p3["next_after"] is None, (p1, p2, p3))
    st, _, bad = auths[1].json("GET", f"/v1/ledger/escrows?party={addr['alice']}&after=zz")
    check("... and a malformed after= is 400, naming it", st == 400 and "after=" in
          bad["error"]["message"], bad)
    # Before its first period is refundable, a refund exits 7. A slow (sanitized, loaded) run
    # can be past that moment already: then the refund must return what was due, and the
    # final refund below returns the rest.
    rc_s, out_s, _ = ledger("--json", "escrow", "status", e2.get("escrow_id", "00" * 32))
    open_periods = json.loads(out_s).get("open_periods", []) if rc_s == 0 else []
    first_due = open_periods[0]["refundable_from_ms"] if open_periods else 0
    asked_ms = time.time() * 1000
    rc, out, err = ledger("--json", "escrow", "refund", e2.get("escrow_id", "00" * 32))
    early = json.loads(out).get("refunded", []) if rc == 0 and out.strip() else []
    if asked_ms < first_due:
        check("escrow refund before any period is due exits 7, naming when",
              rc == 7 and "refundable" in err, (rc, err[-400:]))
    else:
        print(f"# the first period was refundable already ({asked_ms - first_due:.0f} ms late): "
              "the early refund is checked instead")
        check("escrow refund once the first period is due returns the periods due",
              rc == 0 and len(early) >= 1, (rc, out[-400:], err[-400:]))

    def escrow(e):
        return auths[0].json("GET", f"/v1/ledger/escrows/{e['escrow_id']}")[2]

    # While the periods pass, the provider's node lists its escrow with its periods.
    def prov_escrow():
        es = (prov.json("GET", "/v1/status")[2].get("escrows") or {}).get("escrows", [])
        return next((x for x in es if x["id"] == e1.get("escrow_id")), None)

    seen = poll(lambda: (prov_escrow() or {}).get("released", 0) >= 1, timeout=3 * PERIOD + 20,
                interval=0.3)
    pe = prov_escrow() or {}
    check("the provider's /v1/status lists its escrow's periods: released (paid to it less the "
          "margin), refunded, to come",
          seen and pe.get("periods") == 3 and pe.get("refunded") == 0 and
          pe.get("released", 0) + pe.get("to_come", 0) == 3 and
          pe.get("paid_to_provider_base_units") == pe.get("released", 0) * 950_000_000 and
          pe.get("shard_id") == w1["shard_id"], pe)

    # Three periods pass (real time: periods of 6 s).
    done = poll(lambda: len(escrow(e1).get("settled", [])) == 3, timeout=3 * PERIOD + 40,
                interval=0.5)
    s1 = escrow(e1)
    check("the provider was paid for all three periods by itself (certified releases)",
          done and all(p["kind"] == "release" for p in s1["settled"]), s1.get("settled"))
    check("each period paid 1 DFRP, 0.05 of it the owner's margin",
          all(p["paid_base_units"] == 10**9 and p["margin_base_units"] == 5 * 10**7
              for p in s1.get("settled", [])), s1.get("settled"))
    check("the escrow is empty", s1.get("remaining_base_units") == 0, s1)
    check("the provider's balance is 2.85, the owner's 0.15",
          account(1, "prov")["balance_base_units"] == 2_850_000_000 and
          account(2, "owner")["balance_base_units"] == 150_000_000,
          (account(1, "prov"), account(2, "owner")))
    pst = prov.json("GET", "/v1/status")[2].get("escrows") or {}
    check("the provider's /v1/status counts three releases sent",
          pst.get("releases_sent") == 3, pst)
    all_agree("after three periods")
    check("metrics: the provider counts 3 releases",
          prov.metric("dfrp_escrow_releases_total") == 3, prov.metric("dfrp_escrow_releases_total"))
    votes = [auths[i].metric('dfrp_ledger_votes_total{kind="settlement"}') for i in range(N)]
    beacons = [auths[i].metric('dfrp_ledger_votes_total{kind="beacon"}') for i in range(N)]
    check("metrics: a quorum of authorities voted for each release and signed beacons",
          sum(v or 0 for v in votes) >= 9 and sum(b or 0 for b in beacons) >= 9, (votes, beacons))
    sigs = [auths[i].metric("dfrp_ledger_verify_signatures_total") or 0 for i in range(N)]
    batches = [auths[i].metric("dfrp_ledger_verify_batches_total") or 0 for i in range(N)]
    check("metrics: every authority checked signatures (orders, releases) in batches of one or "
          "more", all(0 < b <= s for b, s in zip(batches, sigs)), (batches, sigs))

    # The damaged provider answered nothing and is paid nothing; once every window closed
    # and the grace passed, the payer takes all three periods back.
    lst = lost.json("GET", "/v1/status")[2].get("escrows") or {}
    check("the damaged provider reports that it could not prove its shard",
          lst.get("releases_sent") == 0 and lst.get("failures", 0) >= 1 and
          "does not verify against the Merkle root" in (lst.get("last_error") or ""), lst)
    check("... and was paid nothing", account(0, "lost")["balance_base_units"] == 0,
          account(0, "lost"))
    last = e2["start_unix"] * 1000 + 3 * PERIOD * 1000 + GRACE * 1000 + 500
    wait_for("the last period of the second escrow to be refundable",
             lambda: time.time() * 1000 > last, timeout=3 * PERIOD + 40)
    rc, out, err = ledger("--json", "escrow", "refund", e2["escrow_id"])
    r = json.loads(out) if out.strip() else {}
    check("escrow refund returns the three periods to the payer (with any refunded early)",
          rc == 0 and len(r.get("refunded", [])) + len(early) == 3, (rc, out[-600:], err[-600:]))
    s2 = escrow(e2)
    check("the second escrow is empty, every period refunded",
          s2.get("remaining_base_units") == 0 and
          [p["kind"] for p in s2.get("settled", [])] == ["refund"] * 3, s2)
    check("alice has 1000 - 3 - two fees (the 0.3 came back)",
          account(3, "alice")["balance_base_units"] == 1000 * 10**9 - 3 * 10**9 - 2_000_000,
          account(3, "alice"))
    rc, _, err = ledger("escrow", "refund", e2["escrow_id"])
    check("a second refund finds nothing left (exit 7)", rc == 7, (rc, err[-300:]))
    rc, out, err = ledger("--json", "escrow", "status", e1["escrow_id"])
    check("escrow status shows the three releases",
          rc == 0 and len(json.loads(out)["settled"]) == 3, (rc, err[-300:]))
    all_agree("at the end")
    rc, out, err = ledger("--json", "audit")
    a = json.loads(out) if out.strip() else {}
    check("dfrp-ledger audit: every log verifies and replays, three releases' proofs checked "
          "again", rc == 0 and a.get("ok") is True and a.get("settlements") == 6 and
          a.get("releases_verified") == 3 and a.get("authorities_audited") == 4,
          (rc, out[-800:], err[-400:]))
    # Payouts over time (the dashboard's chart): the same series at every authority, summing to
    # what the escrows paid: 2.85 to the provider, 0.15 margin, 0.3 refunded, 3 and 3 periods.
    series = []
    for i in range(N):
        st, _, nodeinfo = auths[i].json("GET", "/v1/ledger/node")
        series.append(nodeinfo.get("authority", {}) if st == 200 else {})
    pay = series[0].get("payouts", [])
    tot = series[0].get("payout_totals", {})
    check("/v1/ledger/node payouts: by period, 2.85 to providers, 0.15 margin, 0.3 refunded",
          tot.get("to_providers_base_units") == 2_850_000_000 and
          tot.get("margin_base_units") == 150_000_000 and
          tot.get("refunded_base_units") == 300_000_000 and
          sum(b["releases"] for b in pay) == 3 and sum(b["refunds"] for b in pay) == 3 and
          sum(b["to_providers_base_units"] for b in pay) == 2_850_000_000 and
          [b["start_unix"] for b in pay] == sorted(b["start_unix"] for b in pay), series[0])
    check("... the same series at every authority",
          all(s.get("payouts") == pay for s in series), [len(s.get("payouts", [])) for s in series])
    rc, out, err = ledger("--json", "supply")
    applied = [auths[i].metric('dfrp_ledger_certificates_applied_total{kind="settlement"}')
               for i in range(N)]
    check("metrics: every authority applied six settlement certificates", applied == [6] * N,
          applied)
    check("dfrp-ledger supply: conserved at all four",
          rc == 0 and all(x.get("conserved") for x in json.loads(out)["authorities"]),
          (rc, out[-400:], err[-300:]))


if __name__ == "__main__":
    run(main)
