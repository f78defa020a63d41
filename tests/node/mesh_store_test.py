"""Replicated paid storage across real dfrpd processes (issue 15, item 5): dfrp-mesh put, get,
status and repair.

Usage: mesh_store_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_MESH

- A committee of one authority; three storage nodes with wallets (PA, PB, PC) join a mesh.
- `dfrp-mesh put` asks PA for offers and stores a file as two copies on distinct nodes, each
  paid by its own certified escrow at the offer's price; the manifest names both.
- `get` reads it back verified; `status` shows two sound copies; each copy's provider is
  paid for a proof period by itself (a certified release, the owner's margin taken).
- kill -9 of a node holding a copy: once PA sees it dead, `status` says the copy needs
  repair, `get` still reads the file from the other copy, and `repair` re-creates the copy on
  the one node that holds none, with a new escrow for the periods left.
- `dfrp-mesh leave` on a holder: a fourth node PD having joined, the holder's record says it is
  leaving, offers refuse it, `status` says its (intact) copy needs moving, and `repair` moves
  it to PD with a new escrow; `leave --cancel` undoes it.
- Bad input: a --max-fee below every offer exits 7 naming the cheapest; an unknown put id
  exits 4; a manifest whose roots were changed makes `get` exit 3 (no copy matches), nothing
  written; more replicas than live nodes stores what it can and exits 7 naming `repair`.
- A Byzantine node asked for offers: one whose price is over --max-fee (the client checks the
  node's word) is skipped before any byte is sent and nothing is paid (exit 7); offers of
  another shape end in a clear error, not a crash.
- Trust: the authority (in the mesh, trusting alice) counts the proofs its committee verified
  for alice as evidence of each provider, and vouches for them in its record's opinion; PA
  trusts the holders through it, and stops trusting a holder that equivocates (two orders for
  one sequence number).
- After every step the authority's balances and escrows sum to the supply.
"""
import http.server
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, committee_with_storage, tool  # noqa: E402

LEDGER, WALLET, MESH = sys.argv[3], sys.argv[4], sys.argv[5]
PERIOD = 6


def main():
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    # The authority is in the mesh too (PA bootstraps from it), an authority only (no storage
    # to offer), and trusts alice, so the proofs its committee verifies for her count as its
    # evidence of the providers (docs/PROTOCOL.md, "Trust").
    # The providers' copy of the policy (the authority's too, so that their records' TTLs
    # agree): the same network, committee and version, with fast gossip and a storage floor
    # high enough that a small file's contract costs more than a base unit.
    mesh_policy = os.path.join(T, "mesh-economic.toml")

    def authority_env(i):
        with open(os.path.join(T, "committee", "economic.toml")) as f, open(mesh_policy, "w") as g:
            g.write(f.read() + "\n[gossip]\ninterval_ms = 200\nsuspect_timeout_ms = 2000\n"
                    "record_ttl_seconds = 60\n\n[pricing.floor]\nstorage_gib_month = \"1000\"\n\n"
                    "[pricing.ceiling]\nstorage_gib_month = \"10000\"\n")
        alice = json.load(open(os.path.join(T, "alice.json")))["address"]
        return {"ROLES": "authority", "TRUSTED_PEERS": alice, "ECONOMIC_POLICY": mesh_policy}

    addr, policy, auths = committee_with_storage(
        WALLET, LEDGER, wenv, ("alice", "owner", "pa", "pb", "pc", "pd"), 1,
        {"period_seconds": PERIOD, "challenges_per_period": 2, "answer_window_seconds": 3,
         "grace_seconds": 2, "max_skew_ms": 200, "beacon_slot_seconds": 1},
        authority_env=authority_env)
    auth = auths[0]

    def node(name, peers, env=None):
        e = env or store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": mesh_policy, "SCRUB_RATE": "0"})
        e["PEERS"] = ",".join(peers)
        return Daemon(e), e

    pa, _ = node("pa", [auth.info["url"]])
    pb, pb_env = node("pb", [pa.info["url"]])
    pc, pc_env = node("pc", [pb.info["url"]])
    nodes = {"pa": pa, "pb": pb, "pc": pc}
    envs = {"pb": pb_env, "pc": pc_env}

    def peers(d):
        st, _, j = d.json("GET", "/v1/mesh/peers")
        return {p["address"]: p for p in j.get("peers", [])} if st == 200 else {}

    def converged():
        return all(peers(d).get(addr[o], {}).get("state") == "alive"
                   for me, d in nodes.items() for o in nodes if o != me)

    wait_for("three nodes to know each other as alive", converged)

    def mesh(*args, timeout=120):
        return tool(MESH, wenv, "--node", pa.info["url"], "--policy", policy, "--puts-dir",
                    os.path.join(T, "puts"), *args, timeout=timeout)

    def conserved(step):
        s = auth.json("GET", "/v1/ledger/supply")[2]
        check(f"{step}: balances and escrows sum to the supply", s.get("conserved") is True, s)

    def escrow(eid):
        st, _, e = auth.json("GET", f"/v1/ledger/escrows/{eid}")
        return e if st == 200 else {}

    payload = bytes(random.getrandbits(8) for _ in range(200_000))
    with open(os.path.join(T, "photo.bin"), "wb") as f:
        f.write(payload)
    wallet_args = ("--wallet", "alice.json", "--passphrase-file", "pw.txt")
    rc, out, err = mesh("--json", "put", "photo.bin", *wallet_args, "--replicas", "2",
                        "--max-fee", "5", "--periods", "3")
    check("dfrp-mesh put stores two copies", rc == 0, (rc, err[-800:]))
    put = json.loads(out) if rc == 0 else {"copies": []}
    copies = put["copies"]
    holders = [c["address"] for c in copies]
    check("... on two distinct nodes of the mesh, each copy active with its shard and escrow",
          len(copies) == 2 and len(set(holders)) == 2 and
          set(holders) <= {addr["pa"], addr["pb"], addr["pc"]} and
          all(c["state"] == "active" and c["shard_id"] and len(c["escrow_id"]) == 64
              for c in copies), put)
    check("... and the manifest is kept under the put id",
          os.path.exists(os.path.join(T, "puts", put.get("id", "x") + ".json")), put)
    for c in copies:
        e = escrow(c["escrow_id"])
        check(f"the escrow of the copy on {c['url']} is certified: alice pays that provider the "
              "offer's price for the shard as stored",
              e.get("payer") == addr["alice"] and e.get("provider") == c["address"] and
              e.get("amount_base_units") == c["amount_base_units"] > 1 and
              e.get("terms", {}).get("shard_id") == c["shard_id"], (c, e))
    conserved("after put")

    rc, out, err = mesh("--json", "get", put.get("id", "x"), "-o", "back.bin")
    got = open(os.path.join(T, "back.bin"), "rb").read() if rc == 0 else b""
    check("dfrp-mesh get reads the file back, verified, byte for byte", rc == 0 and got == payload,
          (rc, err[-400:]))
    rc, out, err = mesh("--json", "status", put.get("id", "x"))
    st = json.loads(out) if rc == 0 else {}
    check("dfrp-mesh status: two sound copies, nothing to repair",
          rc == 0 and st.get("sound_copies") == 2 and st.get("needs_repair") is False,
          (rc, out[-800:], err[-300:]))

    # Each provider proves its copy by itself and is paid for a period.
    def released(c):
        return any(s.get("kind") == "release" for s in escrow(c["escrow_id"]).get("settled", []))

    ok = poll(lambda: all(released(c) for c in copies), timeout=3 * PERIOD + 20, interval=0.5)
    check("both providers were paid a proof period (a certified release of each escrow)", ok,
          [escrow(c["escrow_id"]) for c in copies])
    owner = auth.json("GET", f"/v1/ledger/accounts/{addr['owner']}")[2]
    check("... and the owner took its margin", owner.get("balance_base_units", 0) > 0, owner)
    conserved("after the first releases")

    # The authority's trust evidence: the periods its committee released for alice (whom it
    # trusts) count for each provider, on top of what answering gossip earns (at most 1).
    def proof_evidence():
        view = peers(auth)
        return all(view.get(h, {}).get("trust", {}).get("evidence", {}).get("proofs_passed", 0)
                   >= 1 and view[h]["trust"]["local"] > 0 for h in holders)

    wait_for("the authority to count the providers' proofs as trust evidence", proof_evidence)
    view = peers(auth)
    check("the authority counts each provider's verified proofs for alice as evidence (local "
          "trust > 0), the others' none",
          proof_evidence() and all(
              p["trust"]["evidence"]["proofs_passed"] == 0
              for a, p in view.items() if a not in holders),
          {a: p.get("trust") for a, p in view.items()})
    st, _, me = auth.json("GET", "/v1/mesh/node")
    check("... and vouches for them in the opinion its record carries",
          st == 200 and all(h in [o["address"] for o in me["trust"]["opinion"]] for h in holders),
          me.get("trust"))

    # PA pre-trusts the committee: through the authority's published opinion it trusts the
    # holders, and the node that holds nothing for anyone not at all.
    def pa_trusts_holders():
        view = peers(pa)
        return all(view.get(h, {}).get("trust", {}).get("score", 0) > 0 for h in holders if
                   h != addr["pa"])

    wait_for("PA to trust the holders through the authority's opinion", pa_trusts_holders)
    view = peers(pa)
    others = [n for n in ("pb", "pc") if addr[n] not in holders]
    check("PA trusts the holders through the authority's published opinion, not the node "
          "without a copy",
          pa_trusts_holders() and all(view[addr[n]]["trust"]["score"] == 0 for n in others),
          {a: p.get("trust", {}).get("score") for a, p in view.items()})

    # A holder that equivocates (two orders signed for one sequence number) is cut off: the
    # authority keeps the proof, leaves it out of its opinion, and PA stops trusting it.
    cheat = next(n for n in ("pb", "pc") if addr[n] in holders)
    rc, _, err = tool(LEDGER, wenv, "--policy", policy, "transfer", "--wallet",
                      os.path.join(T, "alice.json"), "--to", addr[cheat], "--amount", "1")
    check(f"alice funds {cheat} (to pay its order fees)", rc == 0, err[-300:])
    seq = auth.json("GET", f"/v1/ledger/accounts/{addr[cheat]}")[2].get("next_seq", 0)
    orders = []
    for to in ("alice", "owner"):
        out_file = os.path.join(T, f"equivocation-{to}.hex")
        rc, _, err = tool(LEDGER, wenv, "--policy", policy, "transfer", "--wallet",
                          os.path.join(T, f"{cheat}.json"), "--to", addr[to], "--amount", "0.1",
                          "--seq", str(seq), "--offline", "-o", out_file)
        check(f"{cheat} signs an order to {to} offline at seq {seq}", rc == 0, err[-300:])
        orders.append(open(out_file).read().strip())
    st1, _, _ = auth.json("POST", "/v1/ledger/orders", json.dumps({"order": orders[0]}))
    st2, _, v2 = auth.json("POST", "/v1/ledger/orders", json.dumps({"order": orders[1]}))
    check("the authority votes the first and refuses the second as an equivocation (402)",
          st1 == 200 and st2 == 402 and "equivocation" in json.dumps(v2), (st1, st2, v2))
    wait_for(f"PA to stop trusting the equivocating {cheat}",
             lambda: peers(pa).get(addr[cheat], {}).get("trust", {}).get("score", 1) == 0)
    ev = peers(auth)[addr[cheat]]["trust"]["evidence"]
    st, _, me = auth.json("GET", "/v1/mesh/node")
    check(f"the authority counts the equivocation against {cheat}, leaves it out of its opinion, "
          "and PA trusts it at 0",
          ev.get("equivocations") == 1 and
          addr[cheat] not in [o["address"] for o in me["trust"]["opinion"]] and
          peers(pa)[addr[cheat]]["trust"]["score"] == 0, (ev, me.get("trust")))

    # kill -9 of a node holding a copy (not PA, the node asked).
    victim_addr = next((h for h in holders if h != addr["pa"]), holders[-1] if holders else "")
    victim = next(n for n in nodes if addr[n] == victim_addr) if victim_addr else "pb"
    spare = next(n for n in nodes if addr[n] not in holders)
    nodes[victim].proc.send_signal(signal.SIGKILL)
    nodes[victim].proc.wait()
    wait_for(f"PA to see {victim} dead",
             lambda: peers(pa).get(addr[victim], {}).get("state") == "dead")
    rc, out, err = mesh("--json", "status", put.get("id", "x"))
    st = json.loads(out) if rc == 0 else {"copies": []}
    dead_copy = next((c for c in st["copies"] if c["address"] == addr[victim]), {})
    check("status names the dead node's copy as needing repair, one copy sound",
          rc == 0 and st.get("sound_copies") == 1 and st.get("needs_repair") is True and
          dead_copy.get("health", {}).get("node_state") == "dead" and
          dead_copy.get("health", {}).get("needs_repair") is True, (rc, out[-1200:], err[-300:]))
    os.unlink(os.path.join(T, "back.bin"))
    rc, out, err = mesh("--json", "get", put.get("id", "x"), "-o", "back.bin")
    got = open(os.path.join(T, "back.bin"), "rb").read() if rc == 0 else b""
    check("get still reads the file, from the live copy", rc == 0 and got == payload and
          json.loads(out).get("read_from") != nodes[victim].info["url"], (rc, out, err[-400:]))

    rc, out, err = mesh("--json", "repair", put.get("id", "x"), *wallet_args)
    rep = json.loads(out)["puts"][0] if rc == 0 else {}
    made = rep.get("made", [])
    check(f"repair re-creates the copy on the one node without one ({spare})",
          rc == 0 and rep.get("repaired") == 1 and len(made) == 1 and
          made[0]["address"] == addr[spare], (rc, out[-1500:], err[-600:]))
    if made:
        e = escrow(made[0]["escrow_id"])
        check("... with a new certified escrow for the periods left",
              e.get("provider") == addr[spare] and 1 <= made[0]["periods"] <= 3 and
              e.get("amount_base_units") == made[0]["amount_base_units"], (made[0], e))
    rc, out, err = mesh("--json", "status", put.get("id", "x"))
    st = json.loads(out) if rc == 0 else {"copies": []}
    states = sorted(c["state"] for c in st["copies"])
    check("status after repair: two sound copies; the dead node's copy is marked replaced",
          rc == 0 and st.get("sound_copies") == 2 and st.get("needs_repair") is False and
          states == ["active", "active", "replaced"], (rc, out[-1500:], err[-300:]))
    rc, out, err = mesh("--json", "repair", put.get("id", "x"), *wallet_args)
    check("a second repair finds nothing to do",
          rc == 0 and json.loads(out)["puts"][0].get("repaired") == 0, (rc, out[-600:]))
    conserved("after repair")

    # dfrp-mesh leave: a fourth node joins; a holder (not PA) leaves; repair moves its copy.
    pd, _ = node("pd", [pa.info["url"]])
    nodes["pd"] = pd
    wait_for("PD alive at PA", lambda: peers(pa).get(addr["pd"], {}).get("state") == "alive")
    rc, out, err = mesh("--json", "status", put.get("id", "x"))
    st = json.loads(out) if rc == 0 else {"copies": []}
    active = [c["address"] for c in st["copies"] if c["state"] == "active"]
    leaver = next((n for n in ("pb", "pc") if addr[n] in active and nodes[n].proc.poll() is None),
                  None)
    check("a live holder other than PA holds a copy", leaver is not None, active)
    if leaver:
        rc, out, err = tool(MESH, envs[leaver], "leave")
        check(f"dfrp-mesh leave on {leaver}: it says what happens next",
              rc == 0 and "is leaving the mesh" in out and "repair" in out, (rc, out, err))
        wait_for(f"PA to see {leaver} leaving",
                 lambda: "leaving" in peers(pa).get(addr[leaver], {}).get("roles", []))
        st_, _, j = nodes[leaver].json("POST", "/v1/escrows/accept", "{}",
                                       {"Content-Type": "application/json"})
        check("the leaving node refuses to accept new escrows, saying why",
              st_ != 200 and "leaving the mesh" in j.get("error", {}).get("message", ""), (st_, j))
        st_, _, o = pa.json("POST", "/v1/mesh/offers?k=8",
                            json.dumps({"storage_mb": 1, "max_fee": "5"}),
                            {"Content-Type": "application/json"})
        check("offers refuse the leaving node, saying why",
              addr[leaver] not in [x["address"] for x in o.get("offers", [])] and
              any(r["address"] == addr[leaver] and "leaving the mesh" in r["reason"]
                  for r in o.get("refused", [])), o)
        rc, out, err = mesh("--json", "status", put.get("id", "x"))
        st = json.loads(out) if rc == 0 else {"copies": []}
        lc = next((c for c in st["copies"]
                   if c["address"] == addr[leaver] and c["state"] == "active"), {})
        check("status: the leaving node's copy needs repair (it is still intact there)",
              lc.get("health", {}).get("why") == "its node is leaving the mesh" and
              lc.get("health", {}).get("copy") == "ok", lc)
        rc, out, err = mesh("--json", "repair", put.get("id", "x"), *wallet_args)
        rep = json.loads(out)["puts"][0] if rc == 0 else {}
        made = rep.get("made", [])
        check("repair moves the copy to the new node PD, with its own escrow",
              rc == 0 and len(made) == 1 and made[0]["address"] == addr["pd"] and
              escrow(made[0]["escrow_id"]).get("provider") == addr["pd"],
              (rc, out[-1200:], err[-600:]))
        rc, out, err = mesh("--json", "status", put.get("id", "x"))
        st = json.loads(out) if rc == 0 else {"copies": []}
        check("... and marks the leaving node's copy replaced; two sound copies",
              st.get("sound_copies") == 2 and
              any(c["address"] == addr[leaver] and c["state"] == "replaced" and
                  c.get("reason") == "its node is leaving the mesh" for c in st["copies"]),
              out[-1500:])
        rc, out, err = tool(MESH, envs[leaver], "--json", "leave", "--cancel")
        check("dfrp-mesh leave --cancel: the node stays",
              rc == 0 and json.loads(out).get("leaving") is False, (rc, out[-300:], err))
        # Its record without "leaving" reaches PA by gossip; the puts below count on it.
        wait_for(f"PA to see {leaver} staying",
                 lambda: "leaving" not in peers(pa).get(addr[leaver], {}).get("roles", ["leaving"]))
        conserved("after the move")

    # Bad input.
    rc, _, err = mesh("put", "photo.bin", *wallet_args, "--max-fee", "0.000000001",
                      "--periods", "3")
    check("a --max-fee below every offer exits 7 naming the cheapest",
          rc == 7 and "cheapest" in err, (rc, err[-400:]))
    rc, _, err = mesh("get", "0190aaaa-0000-7000-8000-000000000000")
    check("an unknown put id exits 4, naming the folder", rc == 4 and "puts" in err,
          (rc, err[-300:]))
    man = json.load(open(os.path.join(T, "puts", put.get("id", "x") + ".json")))
    man["id"] = "tampered"
    for c in man["copies"]:
        c["merkle_root"] = "11" * 32
    json.dump(man, open(os.path.join(T, "puts", "tampered.json"), "w"))
    rc, _, err = mesh("get", "tampered", "-o", "bad.bin")
    check("a manifest whose roots do not match any copy: get exits 3, nothing written",
          rc == 3 and "Merkle root" in err and not os.path.exists(os.path.join(T, "bad.bin")),
          (rc, err[-500:]))
    os.unlink(os.path.join(T, "puts", "tampered.json"))
    live = sum(1 for n in nodes.values() if n.proc.poll() is None)
    rc, out, err = mesh("--json", "put", "photo.bin", *wallet_args, "--replicas", "4",
                        "--max-fee", "5", "--periods", "2")
    check("more replicas than live nodes: the copies it could make are kept, exit 7 naming "
          "repair", rc == 7 and f"{live} of 4 copies made" in err and "repair" in err,
          (rc, err[-600:]))

    # A Byzantine node answers the offers: a price over --max-fee, then a malformed answer.
    answers = []

    class Liar(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            body = json.dumps(answers[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    liar = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Liar)
    threading.Thread(target=liar.serve_forever, daemon=True).start()
    liar_url = f"http://127.0.0.1:{liar.server_address[1]}"
    live = next(n for n in nodes.values() if n.proc.poll() is None)
    answers.append({"offers": [{"address": addr[next(k for k, v in nodes.items() if v is live)],
                                "url": live.info["url"], "total_base_units": 10**15}],
                    "refused": [], "max_fee": "5", "currency": "DFR"})
    before = auth.json("GET", f"/v1/ledger/accounts/{addr['alice']}")[2]
    shards_before = live.shards()
    rc, _, err = tool(MESH, wenv, "--node", liar_url, "--policy", policy, "--puts-dir",
                      os.path.join(T, "puts"), "put", "photo.bin", *wallet_args, "--max-fee", "5",
                      "--periods", "2")
    after = auth.json("GET", f"/v1/ledger/accounts/{addr['alice']}")[2]
    check("an offer priced over --max-fee by the node asked is skipped, nothing paid (exit 7)",
          rc == 7 and "within --max-fee" in err and
          after.get("balance_base_units") == before.get("balance_base_units") and
          live.shards() == shards_before, (rc, err[-500:], before, after))
    answers[0] = {"offers": "many"}
    rc, _, err = tool(MESH, wenv, "--node", liar_url, "--policy", policy, "--puts-dir",
                      os.path.join(T, "puts"), "put", "photo.bin", *wallet_args, "--max-fee", "5",
                      "--periods", "2")
    check("offers of another shape: a clear refusal, not a crash", rc == 7, (rc, err[-400:]))
    liar.shutdown()
    conserved("at the end")



if __name__ == "__main__":
    run(main)
