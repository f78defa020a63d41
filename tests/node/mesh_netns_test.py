"""The mesh across network namespaces (issue 15, "tested as it would fail in the field").

Usage: mesh_netns_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_MESH

Five network namespaces that this test creates and removes: a switch (a bridge) and four hosts
on it, each a veth link to the bridge, with addresses in 10.199.7.0/24. Host h0 runs the test
itself, its tools and a committee of one authority; hosts h1..h4 each run a storage node (P1..P4).
Nothing leaves the namespaces. Where the kernel has `tc netem`, every host link gets 50 ms
+- 10 ms delay and 1% loss; where it has not, the test says so and runs without them.

- The four nodes join through P1 and converge.
- A path cut between P1 and P3 (an unreachable route on each side, the other links intact):
  their own exchanges fail, yet SWIM's indirect probes through P2 and P4 keep each alive at the
  other (never dead), and the counters show the probes relayed.
- A file is stored as two paid copies (`dfrp-mesh put` through P1); each provider is paid a
  period.
- A holder is partitioned (its link down): P1 and the other nodes see it dead, and P1's offers
  drop it, within the failure detector's bound (the time is reported); its periods are not
  released while it cannot reach the committee, and the payer's refund returns them.
- Healed (link up): the holder is alive again at P1; `get` reads the file back verified.
- Nothing paid twice: no escrow paid out more than it locked, the cut node's refunded periods
  stayed refunds, the supply is conserved, and `dfrp-ledger audit` passes.

Needs root (CAP_NET_ADMIN) and the `ip` tool; without them it exits 77, which ctest reports as
skipped, naming the reason.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import sh  # noqa: E402

SUBNET = "10.199.7"
HOSTS = 5  # h0 (the test, the authority) and h1..h4 (P1..P4)

rc = netns.reenter(__file__, f"dfrp{os.getpid() % 100000}", HOSTS, SUBNET)
if rc is not None:
    sys.exit(rc)

# Inside h0 from here on.
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, committee_with_storage, tool  # noqa: E402

LEDGER, WALLET, MESH = sys.argv[3], sys.argv[4], sys.argv[5]
NS = netns.hosts()


def host_ip(i):
    return netns.host_ip(SUBNET, i)


PERIOD = 6
WINDOW, GRACE = 3, 2
SUSPECT_MS = 2000
INTERVAL_MS = 200


def in_host(i, *args, check=True):
    return sh("ip", "netns", "exec", NS[i], *args, check=check)


def main():
    netem = [in_host(i, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "50ms",
                     "10ms", "loss", "1%", check=False) for i in range(HOSTS)]
    if all(r.returncode == 0 for r in netem):
        print("# every host link: netem delay 50 ms +- 10 ms, loss 1%")
    else:
        why = next(r.stderr.strip() or f"exit {r.returncode}" for r in netem if r.returncode)
        print(f"# tc netem is not available here ({why}): the links run without delay or loss")

    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    addr, policy, auths = committee_with_storage(
        WALLET, LEDGER, wenv, ("alice", "owner", "p1", "p2", "p3", "p4"), 1,
        {"period_seconds": PERIOD, "challenges_per_period": 2, "answer_window_seconds": WINDOW,
         "grace_seconds": GRACE, "max_skew_ms": 200, "beacon_slot_seconds": 1},
        host=host_ip(0))
    auth = auths[0]
    mesh_policy = os.path.join(T, "mesh-economic.toml")
    with open(policy) as f, open(mesh_policy, "w") as g:
        g.write(f.read() + f"\n[gossip]\ninterval_ms = {INTERVAL_MS}\n"
                f"suspect_timeout_ms = {SUSPECT_MS}\nrecord_ttl_seconds = 60\n"
                "indirect_probes = 3\n\n[pricing.floor]\nstorage_gib_month = \"1000\"\n\n"
                "[pricing.ceiling]\nstorage_gib_month = \"10000\"\n")

    def node(i, peers):
        name = f"p{i}"
        e = store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": mesh_policy, "SCRUB_RATE": "0",
            "API_ADDR": f"{host_ip(i)}:0", "PEERS": ",".join(peers)})
        return Daemon(e, prefix=("ip", "netns", "exec", NS[i]))

    nodes = {1: node(1, [])}
    for i in (2, 3, 4):
        nodes[i] = node(i, [nodes[1].info["url"]])
    check("each node listens on its own host's address",
          all(nodes[i].info["url"].startswith(f"http://{host_ip(i)}:") for i in nodes),
          [n.info["url"] for n in nodes.values()])

    def peers(d):
        try:
            st, _, j = d.json("GET", "/v1/mesh/peers")
        except OSError:
            return {}
        return {p["address"]: p for p in j.get("peers", [])} if st == 200 else {}

    def state(i, of):
        return peers(nodes[i]).get(addr[f"p{of}"], {}).get("state")

    def converged(among=(1, 2, 3, 4)):
        return all(state(i, o) == "alive" for i in among for o in among if o != i)

    wait_for("four nodes to know each other as alive", converged)
    check("the four hosts' nodes converged: each knows the other three as alive", converged())

    def mesh_node(i):
        return nodes[i].json("GET", "/v1/mesh/node")[2]

    # A path cut between P1 and P3 only: the others still reach both.
    failed_before = mesh_node(1).get("exchanges_failed", 0)
    in_host(1, "ip", "route", "add", "unreachable", f"{host_ip(3)}/32")
    in_host(3, "ip", "route", "add", "unreachable", f"{host_ip(1)}/32")
    seen = set()
    t_end = time.monotonic() + 3 * SUSPECT_MS / 1000
    while time.monotonic() < t_end:
        seen.add(("P1 sees P3", state(1, 3)))
        seen.add(("P3 sees P1", state(3, 1)))
        time.sleep(0.1)
    n1, n3 = mesh_node(1), mesh_node(3)
    check("with the path P1-P3 cut, P1's own exchanges with P3 fail",
          n1.get("exchanges_failed", 0) > failed_before, n1)
    check(f"... yet for {3 * SUSPECT_MS / 1000:.0f} s (three suspect timeouts) neither saw the "
          "other dead: the indirect probes through P2 and P4 kept them alive",
          ("P1 sees P3", "dead") not in seen and ("P3 sees P1", "dead") not in seen,
          sorted(map(str, seen)))
    served = sum(mesh_node(i).get("probes_served", 0) for i in (2, 4))
    check("... the probes were sent, relayed by the helpers, and revived the suspect peer",
          n1.get("indirect_probes_sent", 0) >= 1 and n3.get("indirect_probes_sent", 0) >= 1 and
          served >= 1 and n1.get("indirect_acks", 0) + n3.get("indirect_acks", 0) >= 1,
          ({k: n1.get(k) for k in ("indirect_probes_sent", "indirect_acks")},
           {k: n3.get(k) for k in ("indirect_probes_sent", "indirect_acks")}, served))
    check("... and /metrics counts them",
          (nodes[1].metric('dfrp_mesh_indirect_probes_total{event="sent"}') or 0) >= 1)
    in_host(1, "ip", "route", "del", "unreachable", f"{host_ip(3)}/32")
    in_host(3, "ip", "route", "del", "unreachable", f"{host_ip(1)}/32")

    # Paid storage across the hosts.
    def mesh(*args, timeout=180):
        return tool(MESH, wenv, "--node", nodes[1].info["url"], "--policy", policy,
                    "--puts-dir", os.path.join(T, "puts"), *args, timeout=timeout)

    def escrow(eid):
        st, _, e = auth.json("GET", f"/v1/ledger/escrows/{eid}")
        return e if st == 200 else {}

    def conserved(step):
        s = auth.json("GET", "/v1/ledger/supply")[2]
        check(f"{step}: balances and escrows sum to the supply", s.get("conserved") is True, s)

    payload = os.urandom(300_000)
    with open(os.path.join(T, "data.bin"), "wb") as f:
        f.write(payload)
    wallet_args = ("--wallet", "alice.json", "--passphrase-file", "pw.txt")
    rc, out, err = mesh("--json", "put", "data.bin", *wallet_args, "--replicas", "2",
                        "--max-fee", "5", "--periods", "3")
    put = json.loads(out) if rc == 0 else {"copies": [], "id": "x"}
    copies = put["copies"]
    check("dfrp-mesh put across the hosts stores two copies on distinct nodes",
          rc == 0 and len({c["address"] for c in copies}) == 2, (rc, err[-800:]))
    conserved("after put")

    def released(c):
        return any(s.get("kind") == "release" for s in escrow(c["escrow_id"]).get("settled", []))

    ok = poll(lambda: all(released(c) for c in copies), timeout=3 * PERIOD + 30, interval=0.5)
    check("each provider was paid a proof period (a certified release)", ok,
          [escrow(c["escrow_id"]) for c in copies])

    # Partition a holder (P1 if it is one: the other holder; P1 is the node the client asks).
    by_addr = {addr[f"p{i}"]: i for i in nodes}
    holders = [by_addr[c["address"]] for c in copies if c["address"] in by_addr]
    cut = next((i for i in holders if i != 1), 2)
    cut_copy = next((c for c in copies if c["address"] == addr[f"p{cut}"]), None)
    in_host(cut, "ip", "link", "set", "eth0", "down")
    t0 = time.monotonic()
    others = [i for i in nodes if i != cut]

    def offered(i):
        st, _, o = nodes[i].json("POST", "/v1/mesh/offers?k=8",
                                 json.dumps({"storage_mb": 1, "max_fee": "5"}),
                                 {"Content-Type": "application/json"})
        return [x["address"] for x in o.get("offers", [])] if st == 200 else None

    wait_for(f"P{cut} to be dead at P1 and out of its offers",
             lambda: state(1, cut) == "dead" and addr[f"p{cut}"] not in (offered(1) or [
                 addr[f"p{cut}"]]), timeout=WAIT)
    took = time.monotonic() - t0
    print(f"# P{cut} partitioned: dead at P1 and out of its offers after {took:.1f} s "
          f"(the detector: {SUSPECT_MS / 1000:.0f} s after the last answer, plus a round)")
    check(f"the partitioned node P{cut} is dead at P1 and no longer offered",
          state(1, cut) == "dead" and addr[f"p{cut}"] not in (offered(1) or []))
    wait_for(f"every other node to see P{cut} dead",
             lambda: all(state(i, cut) == "dead" for i in others))
    check("... and dead at every other node", all(state(i, cut) == "dead" for i in others))

    # Cut off, it cannot release; its next period is refunded to the payer once due.
    refunded = []
    if cut_copy:
        eid = cut_copy["escrow_id"]
        last = {}

        def refund():  # exit 7 until a period is past its window and grace
            rc, out, err = tool(LEDGER, wenv, "--policy", policy, "--json", "escrow", "refund",
                                eid, *wallet_args)
            last.update(rc=rc, out=out[-500:], err=err[-500:])
            r = json.loads(out) if rc == 0 and out.strip() else {}
            return r.get("refunded")

        refunded = poll(refund, timeout=3 * PERIOD + 30, interval=1.0) or []
        check("periods the cut-off provider could not prove are refunded to the payer",
              len(refunded) >= 1, last)
    conserved("while partitioned")

    # Heal.
    in_host(cut, "ip", "link", "set", "eth0", "up")
    wait_for(f"P{cut} to be alive again at P1", lambda: state(1, cut) == "alive")
    check("healed: the partitioned node is alive again at P1", state(1, cut) == "alive")
    rc, out, err = mesh("--json", "get", put["id"], "-o", "back.bin")
    got = open(os.path.join(T, "back.bin"), "rb").read() if rc == 0 else b""
    check("nothing stored was lost: get reads the file back, verified", rc == 0 and got == payload,
          (rc, err[-400:]))

    # Let every period's window pass, so that late releases would show.
    last_end = max((escrow(c["escrow_id"]).get("start_unix", 0) for c in copies), default=0) + \
        3 * PERIOD + WINDOW + GRACE + 1
    poll(lambda: time.time() > last_end, timeout=3 * PERIOD + 30, interval=0.5)
    # Nothing paid twice: the authority keeps one settlement per (escrow, period) by
    # construction, so what is checked is that what was paid out and refunded sums to the
    # escrows (the supply, below) and that the offline audit replays every certificate.
    # (a release's paid_base_units is the period's whole amount, the owner's margin within it)
    paid = {c["escrow_id"]: sum(s.get("paid_base_units", 0)
                                for s in escrow(c["escrow_id"]).get("settled", [])
                                if s.get("kind") == "release") for c in copies}
    check("no escrow paid out more than it locked",
          all(paid[c["escrow_id"]] <= c["amount_base_units"] for c in copies), (paid, copies))
    if cut_copy:
        settled = escrow(cut_copy["escrow_id"]).get("settled", [])
        back = {r["period"] for r in refunded}
        check("... the cut node's refunded periods stayed refunds (none was also released)",
              back and all(s.get("kind") == "refund" for s in settled if s.get("period") in back),
              (refunded, settled))
    conserved("at the end")
    rc, out, err = tool(LEDGER, wenv, "--policy", policy, "--json", "audit", timeout=180)
    check("dfrp-ledger audit passes", rc == 0, (rc, out[-400:], err[-400:]))
    for i, n in nodes.items():
        check(f"P{i} stops cleanly", n.stop() == 0)
    check("the authority stops cleanly", auth.stop() == 0)


if __name__ == "__main__":
    run(main)
