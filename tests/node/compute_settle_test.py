"""Paid compute jobs across real processes (issue 16): four dfrpd authorities, three compute
providers, a client's dfrp-compute; jobs paid through compute escrows and settled
optimistically.

Usage: compute_settle_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_COMPUTE

- `submit-job --pay --verifier V` asks the provider for its quote, has it accept a compute
  escrow for the job (its price; the job's max_fee escrowed; a settle time; V's wallet as the
  verifier) and the committee certify it, then sends the job naming the escrow: the node
  checks the escrow at the committee before it queues the job.
- An honest provider: `verify-job` on V gives the same root; after the settle time the escrow
  is released on the provider's signed claim (by the provider's node itself or by
  `settle-job`): the price less the owner's 5% margin to the provider, the margin to the
  owner, the rest of the max_fee back to the client.
- A provider that skips the work and returns random bytes: `verify-job` on V differs (exit
  3) and disputes at once with the two signed claims as the fraud proof: the committee
  refunds everything; the cheater's own release after the settle time is refused; it is paid
  nothing.
- A job that fails (no claim): nothing is released; `settle-job --wait` refunds it after the
  grace.
- The committee's certificate of that refund is a fraud record: verify-job sends it to V's
  node, the mesh spreads it to every node, each counts it against the cheater (its peer
  list), submit-job passes the cheater over, the mesh's offers refuse it, and another client
  that trusted it checks its job at rate 1; a forged or truncated record is refused; a
  restarted node still holds it.
- Each provider's node records how the committee settled its paid jobs (released with the
  pay, refunded on a fraud proof, refunded for no claim) and sums its earnings.
- Collateral: the honest and the cheating jobs ask the provider to stake 0.02
  (`--collateral`);
  each provider's node stakes it from its own wallet (a job_collateral order) before it takes
  the job. The honest stake comes back with the release; the cheater's goes to the client with
  the refund on the fraud proof. A job whose client has no record of the provider (checked at
  rate 1) asks no stake, and a node refuses terms asking more than 20 times the price, more
  than its wallet holds, or naming itself as the verifier.
- Bad input: a client paying beyond its balance (exit 7, nothing signed); settle-job before
  the settle time without --wait (exit 6, saying when) and of an unknown job (exit 4); a job
  sent naming the escrow of another job, or of another provider, is refused (402).
- After every step, at every authority: balances and escrows sum to the supply; at the end
  `dfrp-ledger audit` replays every log, each release's claim checked again.
"""
import os
import stat
import sys
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, committee_with_storage, tool  # noqa: E402

LEDGER, WALLET, COMPUTE = sys.argv[3], sys.argv[4], sys.argv[5]
N = 4
SETTLE_AFTER = 22  # the provider wants the job's wall time (10 s) and 10 s more


def script(name, body):
    path = os.path.join(T, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def catalog(name, apps):
    path = os.path.join(T, name)
    with open(path, "w") as f:
        for app, exe in apps.items():
            f.write(f'[[app]]\nname = "{app}"\npath = "{exe}"\ndescription = "test app"\n'
                    'deterministic = true\n\n')
    return path


def main():
    os.chmod(T, 0o711)  # dfrp-job (the tests run as root) must reach the job folders and apps
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    addr, policy, auths = committee_with_storage(
        WALLET, LEDGER, wenv, ("alice", "owner", "honest", "cheat", "ver"), N,
        {"period_seconds": 6, "challenges_per_period": 3, "answer_window_seconds": 3,
         "grace_seconds": 2, "max_skew_ms": 200, "beacon_slot_seconds": 1},
        vector=",".join(["1"] + ["0"] * 15))
    with open(policy, "a") as f:
        f.write("\n[compute]\nvector_threshold = 0.8\n")
    # Every rank writes "rank N" (the truth), or random bytes (a provider that skips the work).
    truth = script("sum-true.sh", 'printf "rank %s\\n" "$OMPI_COMM_WORLD_RANK" '
                                  '> "$DFRP_OUT_DIR/rank-$OMPI_COMM_WORLD_RANK.out"\n')
    fake = script("sum-fake.sh", '/usr/bin/head -c 64 /dev/urandom '
                                 '> "$DFRP_OUT_DIR/rank-$OMPI_COMM_WORLD_RANK.out"\n')
    broken = script("broken.sh", "exit 3\n")
    for p in (truth, fake, broken):
        os.chmod(p, os.stat(p).st_mode | stat.S_IXOTH | stat.S_IROTH)

    def node(name, apps, peers=()):
        return Daemon(store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": policy, "SCRUB_RATE": "0", "ROLES": "storage,compute",
            "PEERS": ",".join(peers),
            "COMPUTE_SLOTS": "2", "COMPUTE_APPS": catalog(f"{name}-apps.toml", apps)}))

    # The three are one mesh (V its bootstrap): a fraud record spreads between them.
    ver = node("ver", {"sum": truth})
    honest = node("honest", {"sum": truth, "broken": broken}, [ver.info["url"]])
    cheat = node("cheat", {"sum": fake}, [ver.info["url"]])
    url = {"honest": honest.info["url"], "cheat": cheat.info["url"], "ver": ver.info["url"]}

    cenv = clean_env({"DFRP_PASSPHRASE": "pw", "STATE_DIR": os.path.join(T, "client")})

    def compute(*args, timeout=300):
        return tool(COMPUTE, cenv, "--policy", policy, *args, timeout=timeout)

    def ledger(*args, timeout=120):
        return tool(LEDGER, wenv, "--policy", policy, *args, timeout=timeout)

    def balance(who, i=0):
        return auths[i].json("GET", f"/v1/ledger/accounts/{addr[who]}")[2].get(
            "balance_base_units", 0)

    def conserved(step):
        for i in range(N):
            s = auths[i].json("GET", "/v1/ledger/supply")[2]
            check(f"{step}: authority {i}: balances and escrows sum to the supply",
                  s.get("conserved") is True, s)

    def policy_toml():
        with open(policy, "rb") as f:
            return tomllib.load(f)

    def unit():
        return 10 ** policy_toml()["genesis"].get("decimals", 9)

    def fee_of():
        return round(float(policy_toml()["policy"]["order_fee"]) * unit())

    def escrow(eid, i=0):
        return auths[i].json("GET", f"/v1/ledger/escrows/{eid}")[2]

    def vector_of(n):
        return ",".join(str(x) for x in n.json("GET", "/v1/compute/node")[2]["vector"])

    wallet = ["--wallet", os.path.join(T, "alice.json")]

    def submit(app, node_name, *extra, max_fee="1"):
        n = {"honest": honest, "cheat": cheat}[node_name]
        rc, out, err = compute("--json", "submit-job", app, "--ranks", "2", "--max-fee", max_fee,
                               "--cpu-seconds", "60", "--wall-seconds", "10", "--vector",
                               vector_of(n), "--node", url[node_name], "--pay",
                               "--settle-after", str(SETTLE_AFTER), "--verifier", url["ver"],
                               *extra, *wallet)
        return rc, (json.loads(out) if out.strip().startswith("{") else {}), err

    # The providers need money of their own to stake: the client pays each 5.
    fee_rc = []
    for who in ("honest", "cheat"):
        rc, out, err = ledger("--json", "transfer", "--wallet", os.path.join(T, "alice.json"),
                              "--to", addr[who], "--amount", "5")
        fee_rc.append((rc, err[-300:]))
    check("the client funds both providers (5 each)", all(r == 0 for r, _ in fee_rc) and
          balance("honest") == balance("cheat") == 5 * unit(), (fee_rc, balance("honest")))
    STAKE = 2 * unit() // 100  # 0.02: within 20 times the price (0.0012 here)
    # A stake past 20 times the price: the node refuses the terms, nothing is signed.
    before = balance("alice")
    rc, out, err = compute("--json", "submit-job", "sum", "--ranks", "2", "--max-fee", "1",
                           "--cpu-seconds", "60", "--wall-seconds", "10", "--vector",
                           vector_of(honest), "--node", url["honest"], "--pay", "--verifier",
                           url["ver"], "--collateral", "50", *wallet)
    check("terms asking a stake of more than 20 times the price: refused (exit 7), nothing "
          "paid", rc == 7 and "more than 20 times the price" in err and
          balance("alice") == before,
          (rc, out[-300:], err[-400:]))
    # A stake the provider's wallet cannot cover (V holds nothing), and a stake whose verifier
    # is the provider itself: refused, nothing paid.
    for prov, verif, why, what in (
            (ver, honest, "this node's wallet holds", "a stake the provider's wallet cannot cover"),
            (honest, honest, "neither the payer nor this node",
             "a stake whose verifier is the provider itself")):
        rc, out, err = compute("--json", "submit-job", "sum", "--ranks", "2", "--max-fee", "1",
                               "--cpu-seconds", "60", "--wall-seconds", "10", "--vector",
                               vector_of(prov), "--node", prov.info["url"], "--pay",
                               "--verifier", verif.info["url"], "--collateral", "0.02", *wallet)
        check(f"terms asking {what}: refused (exit 7), saying why, nothing paid",
              rc == 7 and why in err and balance("alice") == before,
              (rc, out[-300:], err[-400:]))
    alice0, owner0 = balance("alice"), balance("owner")
    funded = {"honest": balance("honest"), "cheat": balance("cheat")}
    # The three paid jobs first, so their settle times pass together.
    rc, good, err = submit("sum", "honest", "--wait", "--collateral", "0.02")
    check("submit-job --pay: the honest provider's job runs, paid through a compute escrow",
          rc == 0 and good.get("state") == "done" and
          len(good.get("escrow", {}).get("escrow_id", "")) == 64, (rc, good, err[-600:]))
    rc, bad, err = submit("sum", "cheat", "--wait", "--collateral", "0.02")
    check("submit-job --pay: the cheater's job 'runs' too, with a signed claim",
          rc == 0 and bad.get("state") == "done", (rc, bad, err[-600:]))
    # A second client (its own STATE_DIR, no record of anyone) has the cheater run a job too,
    # unpaid: after the dispute it learns of the fraud only through the mesh.
    cenv2 = clean_env({"DFRP_PASSPHRASE": "pw", "STATE_DIR": os.path.join(T, "client2")})
    rc, out, err = tool(COMPUTE, cenv2, "--policy", policy, "--json", "submit-job", "sum",
                        "--ranks", "2", "--max-fee", "1", "--cpu-seconds", "60",
                        "--wall-seconds", "10", "--vector", vector_of(cheat), "--node",
                        url["cheat"], "--wait", *wallet)
    other = json.loads(out) if out.strip().startswith("{") else {}
    check("a second client's unpaid job on the cheater runs", rc == 0 and
          other.get("state") == "done", (rc, out[-400:], err[-400:]))
    rc, failed, err = submit("broken", "honest")
    check("submit-job --pay: a job that will fail is accepted", rc == 0, (rc, failed, err[-600:]))
    good_escrow = good.get("escrow", {}).get("escrow_id", "")
    bad_escrow = bad.get("escrow", {}).get("escrow_id", "")
    failed_escrow = failed.get("escrow", {}).get("escrow_id", "")
    e = escrow(good_escrow)
    price = good.get("escrow", {}).get("price_base_units", 0)
    check("the escrow is a compute escrow for the job, with the quoted price and the verifier",
          e.get("kind") == "job" and e.get("job_terms", {}).get("job_id") == good.get("job_id")
          and e.get("job_terms", {}).get("price_base_units") == price and price > 0 and
          e.get("job_terms", {}).get("verifier") == addr["ver"] and
          e.get("remaining_base_units") == e.get("amount_base_units"), e)
    check("the job asking a stake holds it: the provider's node staked it before the job ran",
          e.get("collateral", {}).get("held_base_units") == STAKE and
          e.get("job_terms", {}).get("collateral_base_units") == STAKE and
          balance("honest") == funded["honest"] - STAKE - fee_of(), (e.get("collateral"),
                                                                     balance("honest")))
    f = escrow(failed_escrow)
    check("a job for a provider the client has no record of (checked at rate 1) asks no stake",
          f.get("collateral", {}).get("required_base_units") == 0 and
          failed.get("escrow", {}).get("collateral_check_rate") == 1, (f.get("collateral"),
                                                                      failed.get("escrow")))
    conserved("three compute escrows open, two stakes held")
    before = balance("alice")
    rc, over, err = submit("sum", "honest", max_fee="5000")
    check("submit-job --pay beyond the client's balance: refused for funds (exit 7), nothing "
          "signed or paid", rc == 7 and "nothing was signed" in err and balance("alice") == before,
          (rc, err[-400:], balance("alice"), before))

    # A job sent naming an escrow of another job, or of another provider, is refused.
    def job_wire(job_id):
        with open(os.path.join(T, "client", "compute", "submitted", f"{job_id}.json")) as f:
            return json.load(f)["job"]

    def err_of(body):
        return body.get("error", {}).get("message", "") if isinstance(body, dict) else ""

    st, _, wrong = ver.json("POST", "/v1/compute/jobs",
                            json.dumps({"job": job_wire(bad["job_id"]), "escrow": good_escrow}),
                            {"Content-Type": "application/json"})
    check("a job naming another job's escrow is refused (402)",
          st == 402 and "not a compute escrow for this job" in err_of(wrong), (st, wrong))
    st, _, wrong = cheat.json("POST", "/v1/compute/jobs",
                              json.dumps({"job": job_wire(good["job_id"]),
                                          "escrow": good_escrow}),
                              {"Content-Type": "application/json"})
    check("a node asked to run a job whose escrow pays another provider refuses (402)",
          st == 402 and "not this node" in err_of(wrong), (st, wrong))

    rc, out, err = compute("settle-job", good["job_id"])
    check("settle-job before the settle time without --wait: exit 6, saying when",
          rc == 6 and "cannot be settled yet" in err, (rc, err[-400:]))
    rc, out, err = compute("--json", "verify-job", good["job_id"], "--verifier", url["ver"])
    check("verify-job of the honest job on the verifier: the same root (exit 0)",
          rc == 0 and json.loads(out).get("verified") is True, (rc, out[-400:], err[-400:]))
    # Trust weighs the client's own record: no trusted node vouches for the honest provider
    # (no authority in this mesh has seen it paid), so its 20 valid checks here count as 10,
    # and its rate stays 1 (20 would give 0.5: trusted_after 10, half-life 10).
    honest_addr = honest.json("GET", "/v1/compute/node")[2]["provider"]
    providers = os.path.join(T, "client", "compute", "providers.json")
    saved = open(providers).read()
    with open(providers, "w") as f:
        json.dump({honest_addr: {"valid": 20, "mismatches": 0, "unchecked": 0}}, f)
    rc, out, err = compute("--json", "verify-job", good["job_id"], "--verifier", url["ver"],
                           "--adaptive")
    v = json.loads(out) if out.strip().startswith("{") else {}
    ck = v.get("check", {})
    check("verify-job --adaptive: a provider the verifier's node trusts at 0 earns half credit "
          "for its valid checks (rate 1, not 0.5), saying why",
          rc == 0 and ck.get("rate") == 1 and ck.get("mesh_trust") == 0 and
          "count as 10" in ck.get("unvouched", ""), (rc, out[-600:], err[-300:]))
    with open(providers, "w") as f:
        f.write(saved)

    cheat0 = balance("cheat")
    rc, out, err = compute("--json", "verify-job", bad["job_id"], "--verifier", url["ver"])
    v = json.loads(out) if out.strip().startswith("{") else {}
    check("verify-job of the cheater's job: MISMATCH (exit 3), disputed with a fraud proof",
          rc == 3 and v.get("verified") is False and
          v.get("dispute", {}).get("kind") == "job_refund", (rc, out[-600:], err[-400:]))
    wait_for("the refund to reach every authority", lambda: all(
        escrow(bad_escrow, i).get("remaining_base_units") == 0 for i in range(N)))
    e = escrow(bad_escrow)
    check("the cheater's escrow is refunded in full",
          e.get("state") == "refunded" and e["settled"][0].get("kind") == "job_refund", e)
    wait_for("the cheater's stake to reach the client at every authority", lambda: all(
        escrow(bad_escrow, i).get("collateral", {}).get("to_payer_base_units") == STAKE
        for i in range(N)))
    conserved("after the dispute")

    # The committee's certificate of that refund is a fraud record: the verifier's node keeps
    # it and the mesh spreads it; every node then counts it against the cheater.
    spread = v.get("dispute", {}).get("spread", [])
    check("verify-job sent the certified fraud record to the verifier's node, which kept it",
          any(n.get("node") == url["ver"] and n.get("added") is True for n in spread), spread)
    cheat_addr = cheat.json("GET", "/v1/compute/node")[2]["provider"]
    nodes = {"honest": honest, "cheat": cheat, "ver": ver}

    def fraud_of(n):
        return n.json("GET", f"/v1/compute/fraud?provider={cheat_addr}")[2]

    reached = poll(lambda: all(fraud_of(n).get("total") == 1 for n in nodes.values()), 30)
    check("the fraud record reaches every node of the mesh", reached, {
        name: (fraud_of(n).get("total"), n.json("GET", "/v1/status")[2].get("fraud"),
               n.json("GET", "/v1/status")[2].get("mesh", {}).get("peers"))
        for name, n in nodes.items()})
    rec = fraud_of(honest)["records"][0]
    check("each node's record names the cheater, the job and both roots",
          rec["job_id"] == bad["job_id"] and rec["escrow_id"] == bad_escrow and
          rec["claimed_root"] != rec["recomputed_root"], rec)
    peers = honest.json("GET", "/v1/mesh/peers")[2]["peers"]
    counts = {p["address"]: p.get("fraud_records") for p in peers}
    check("the honest node's peer list counts the record against the cheater only",
          counts.get(cheat_addr) == 1 and
          all(c == 0 for a, c in counts.items() if a != cheat_addr), counts)
    st, _, of = honest.json("POST", "/v1/mesh/offers?k=5",
                            json.dumps({"storage_mb": 1, "max_fee": "1"}),
                            {"Content-Type": "application/json"})
    check("the mesh's storage offers refuse the caught wallet too, naming the fraud proof",
          st == 200 and cheat_addr not in [o["address"] for o in of.get("offers", [])] and
          any(r["address"] == cheat_addr and "fraud proof" in r["reason"]
              for r in of.get("refused", [])), of)
    # Trust (mesh/trust.h): the certified record is evidence at every node that holds it: the
    # cheater shows the record, local trust and score 0, and no opinion names it. (No authority
    # is in this mesh, so nobody vouched for it before either; node/mesh_service_test.cc shows a
    # record cutting off a provider that was vouched for.)
    def cheater_untrusted():
        for n in (honest, ver):
            view = {p["address"]: p for p in n.json("GET", "/v1/mesh/peers")[2]["peers"]}
            t = view.get(cheat_addr, {}).get("trust", {})
            ops = [o["address"] for p in view.values() for o in p.get("opinion", [])]
            if t.get("evidence", {}).get("fraud_records") != 1 or t.get("local") != 0 or \
                    t.get("score") != 0 or cheat_addr in ops:
                return False
        return True

    wait_for("the cheater's trust to fall to 0 at the honest node and the verifier",
             cheater_untrusted, timeout=60)
    check("the honest node and the verifier hold the cheater's fraud record as evidence: local "
          "and global trust 0, and no opinion they hold vouches for it", cheater_untrusted())
    def post_fraud(wire):
        return honest.json("POST", "/v1/compute/fraud", json.dumps({"certificate": wire.hex()}),
                           {"Content-Type": "application/json"})

    # The certificate ends: ... u16 n (4) | signer bitmap (1 byte) | aggregate (96).
    forged = bytearray(bytes.fromhex(rec["certificate"]))
    forged[-97] = next(b for b in (0x07, 0x0B, 0x0D, 0x0E) if b != forged[-97])
    st, _, fb = post_fraud(forged)
    check("a forged fraud record (other signers named) is refused (422) and counted nowhere",
          st == 422 and fraud_of(honest).get("total") == 1, (st, fb))
    forged = bytearray(bytes.fromhex(rec["certificate"]))
    forged[-5] ^= 0x01  # inside the aggregate: no longer a point of the curve
    st, _, fb = post_fraud(forged)
    check("one with a damaged signature is refused (400)", st == 400, (st, fb))
    st, _, fb = honest.json("POST", "/v1/compute/fraud",
                            json.dumps({"certificate": rec["certificate"][:-2]}),
                            {"Content-Type": "application/json"})
    check("a truncated one is refused (400)", st == 400, (st, fb))
    # The second client trusts the cheater by its own record (500 valid checks, a rate at the
    # floor), but the verifier's node holds the fraud record: its job is checked (rate 1), and
    # its re-run differs.
    os.makedirs(os.path.join(T, "client2", "compute"), exist_ok=True)
    with open(os.path.join(T, "client2", "compute", "providers.json"), "w") as f:
        json.dump({cheat_addr: {"valid": 500, "mismatches": 0, "unchecked": 0}}, f)
    rc, out, err = tool(COMPUTE, cenv2, "--policy", policy, "--json", "verify-job",
                        other.get("job_id", ""), "--verifier", url["ver"], "--adaptive")
    v2 = json.loads(out) if out.strip().startswith("{") else {}
    check("another client's verify-job --adaptive checks the caught provider's job at rate 1, "
          "naming the fraud record and its trust of 0, and its re-run differs (exit 3)",
          rc == 3 and v2.get("check", {}).get("rate") == 1 and
          bad["job_id"][:16] in v2.get("check", {}).get("caught", "") and
          v2.get("check", {}).get("mesh_trust") == 0 and
          v2.get("verified") is False, (rc, out[-600:], err[-400:]))
    # A client offering a job to the cheater and the honest node passes the cheater over,
    # naming the fraud; offered to the cheater alone, the job is refused (exit 7).
    plain = ["submit-job", "sum", "--ranks", "2", "--max-fee", "1", "--cpu-seconds", "60",
             "--wall-seconds", "10", "--vector", vector_of(cheat), *wallet]
    rc, out, err = compute("--json", *plain, "--node", url["cheat"], "--node", url["honest"])
    sj = json.loads(out) if out.strip().startswith("{") else {}
    check("submit-job passes over the caught provider and goes to the honest one",
          rc == 0 and sj.get("node") == url["honest"] and any(
              r.get("node") == url["cheat"] and "fraud proof" in r.get("reason", "")
              for r in sj.get("refusals", [])), (rc, out[-800:], err[-400:]))
    rc, out, err = compute(*plain, "--node", url["cheat"])
    check("submit-job to the caught provider alone: refused (exit 7), saying why",
          rc == 7 and "fraud proof" in err, (rc, err[-400:]))

    # The settle time passes: the honest job is released (by its node or by settle-job).
    rc, out, err = compute("--json", "settle-job", good["job_id"], "--wait", timeout=120)
    s = json.loads(out) if out.strip().startswith("{") else {}
    check("settle-job --wait: the honest job's escrow is released",
          rc == 0 and s.get("settled") == "released", (rc, out[-600:], err[-400:]))
    wait_for("the release to reach every authority", lambda: all(
        escrow(good_escrow, i).get("remaining_base_units") == 0 for i in range(N)))
    margin = price * 500 // 10000
    check("the provider is paid the quoted price less the owner's 5%, and its stake is back",
          balance("honest") == funded["honest"] - fee_of() + price - margin and
          escrow(good_escrow).get("collateral", {}).get("to_provider_base_units") == STAKE,
          (balance("honest"), funded, price, margin, escrow(good_escrow).get("collateral")))
    check("the owner is paid the margin", balance("owner") - owner0 == margin,
          (balance("owner"), owner0, margin))
    rc, out, err = compute("--json", "settle-job", bad["job_id"])
    check("settle-job of the disputed job: refunded, nothing to the cheater, its stake lost",
          rc == 0 and json.loads(out).get("settled") == "refunded" and
          balance("cheat") == cheat0 == funded["cheat"] - STAKE - fee_of(),
          (rc, out[-400:], err[-400:], balance("cheat"), cheat0, funded))
    st, _, cs = cheat.json("GET", "/v1/status")
    check("the cheater's node tried no release that was certified (its escrow is refunded)",
          escrow(bad_escrow).get("settled", [{}])[0].get("kind") == "job_refund", cs.get("escrows"))

    rc, out, err = compute("--json", "settle-job", failed["job_id"], "--wait", timeout=120)
    s = json.loads(out) if out.strip().startswith("{") else {}
    check("settle-job --wait of the failed job: refunded after the grace, no claim released",
          rc == 0 and s.get("settled") == "refunded", (rc, out[-600:], err[-400:]))
    wait_for("the refund to reach every authority", lambda: all(
        escrow(failed_escrow, i).get("remaining_base_units") == 0 for i in range(N)))
    # Each provider's node learns how the committee settled its paid jobs: the job's
    # settlement, and the node's earnings (what its dashboard shows).
    def settlement(n, job_id):
        return n.json("GET", f"/v1/compute/jobs/{job_id}")[2].get("settlement", {})

    wait_for("the providers' nodes to record their jobs' settlements", lambda: all(
        settlement(n, j).get("state") in ("released", "refunded")
        for n, j in ((honest, good["job_id"]), (cheat, bad["job_id"]),
                     (honest, failed["job_id"]))), timeout=30)
    paid = settlement(honest, good["job_id"])
    check("the honest job: released, with the price less the margin paid to its provider",
          paid.get("state") == "released" and
          paid.get("to_provider_base_units") == price - margin, paid)
    caught = settlement(cheat, bad["job_id"])
    check("the cheater's job: refunded, on a fraud proof (its own node holds the record)",
          caught.get("state") == "refunded" and caught.get("fraud_proof") is True, caught)
    lost = settlement(honest, failed["job_id"])
    check("the failed job: refunded, on no fraud proof", lost.get("state") == "refunded" and
          lost.get("fraud_proof") is False, lost)
    hn = honest.json("GET", "/v1/compute/node")[2]
    check("the honest node's earnings: that one release",
          hn.get("earned_base_units") == price - margin and
          hn.get("paid_jobs") == {"released": 1, "refunded": 1}, hn)
    # The client paid the honest job's price and three order fees (one per escrow), and was
    # given the cheater's stake: the cheater's and the failed job's max_fee came back whole.
    fee = fee_of()
    spent = alice0 - balance("alice")
    check("the client paid the honest price and the order fees, less the cheater's stake",
          spent == price + 3 * fee - STAKE, (spent, price))
    conserved("at the end")

    # The record outlives a restart of a node that kept it.
    ver.stop()
    ver = Daemon(ver.env)
    check("after a restart the verifier's node still holds the fraud record",
          fraud_of(ver).get("total") == 1, fraud_of(ver))

    rc, out, err = compute("settle-job", "0" * 64)
    check("settle-job of an unknown job: exit 4", rc == 4, (rc, err[-300:]))
    rc, out, err = ledger("--json", "audit", timeout=180)
    a = json.loads(out) if out.strip().startswith("{") else {}
    check("dfrp-ledger audit: every log replays, the release's claim checked again",
          rc == 0 and a.get("releases_verified", 0) >= 1, (rc, out[-600:], err[-400:]))


if __name__ == "__main__":
    run(main)
