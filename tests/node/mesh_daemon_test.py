"""The mesh's membership across real dfrpd processes on loopback (issue 15, items 1 and 2).

Usage: mesh_daemon_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_MESH

- Three nodes with wallets join through a chain of bootstrap peers (B knows A, C knows B) and
  converge: each knows the other two as alive (answered under the key of their records), with
  their URLs, roles, prices and vectors; C learnt A's record through B.
- Trust: without paid work no record carries an opinion; A trusts only B, its TRUSTED_PEERS,
  B and C nobody; each node shows its first-hand evidence (answers, round trip, failures once
  C is killed); offers carry trust. A TRUSTED_PEERS that is no address stops dfrpd (exit 2).
- `dfrp-mesh peers|node|offers` show the same through the CLI; offers no node meets exit 7
  naming the cheapest.
- Records announce each node's storage room: a request past every node's room is refused
  naming it; B's volumes paused, B announces no room at once and is not offered; resumed, it
  is again.
- A fourth node with another genesis is refused at its exchange, with the reason named.
- An exchange envelope captured on the wire (A's, sent to a listener the test holds) is taken
  once by a node that never saw it, and refused as a replay the second time; the same envelope
  with one byte changed is refused as forged (422); one for another network is refused naming
  both network ids. Each drop is counted in /metrics.
- Prices spread: with B and C stopped, A's one alive neighbour E asks ten times the storage
  floor (its policy differs in that floor only); A's storage price, idle at its floor, rises
  toward E's as its epochs (1 s) end.
- kill -9 of C: A and B see it suspect, then dead, within the failure detector's bound
  (gossip.suspect_timeout_ms, plus rounds); C restarts with the same node key and is alive
  again everywhere.
"""
import http.server
import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, tool  # noqa: E402

WALLET, MESH = sys.argv[4], sys.argv[5]
SUSPECT_MS = 2000
INTERVAL_MS = 200


class Capture(http.server.ThreadingHTTPServer):
    """A listener that keeps the bodies POSTed to it and answers 503."""

    def __init__(self):
        self.bodies = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(h):
                n = int(h.headers.get("Content-Length", "0"))
                self.bodies.append(h.rfile.read(n))
                h.send_response(503)
                h.send_header("Content-Length", "0")
                h.end_headers()

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def write_policy(path, network, storage_floor="0.004"):
    with open(path, "w") as f:
        f.write(f'[genesis]\nnetwork = "{network}"\n\n[gossip]\ninterval_ms = {INTERVAL_MS}\n'
                f"suspect_timeout_ms = {SUSPECT_MS}\nrecord_ttl_seconds = 60\n\n"
                f'[pricing]\nepoch_seconds = 1\n\n[pricing.floor]\n'
                f'storage_gib_month = "{storage_floor}"\n')
    return path


def main():
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    addr = {}
    for name in ("a", "b", "c", "d", "e", "x"):
        rc, out, err = tool(WALLET, wenv, "--insecure-test-kdf", "--wallet", f"{name}.json",
                            "--json", "new")
        check(f"dfrp-wallet new {name}", rc == 0, err[-400:])
        addr[name] = json.loads(out)["address"]
    with open(os.path.join(T, "pw.txt"), "w") as f:
        f.write("pw\n")
    policy = write_policy(os.path.join(T, "economic.toml"), "dfrp-mesh-test")
    other = write_policy(os.path.join(T, "other.toml"), "another-network")
    high = write_policy(os.path.join(T, "high.toml"), "dfrp-mesh-test", storage_floor="0.04")
    capture = Capture()

    def node(name, peers, pol=policy, env=None, extra=None):
        e = env or store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": pol, "SCRUB_RATE": "0", **(extra or {})})
        e["PEERS"] = ",".join(peers)
        return Daemon(e), e

    # A dfrpd whose TRUSTED_PEERS is no address does not start, naming the key (exit 2).
    bad = store_env("bad", extra={"WALLET": os.path.join(T, "x.json"),
                                  "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
                                  "ECONOMIC_POLICY": policy, "TRUSTED_PEERS": "dfrp1nope"})
    r = subprocess.run([DFRPD], env=bad, capture_output=True, text=True, timeout=60, cwd=T)
    check("TRUSTED_PEERS that is not a wallet address stops dfrpd (exit 2), naming the key",
          r.returncode == 2 and "TRUSTED_PEERS" in r.stderr, (r.returncode, r.stderr[-400:]))

    a, aenv = node("a", [capture.url], extra={"TRUSTED_PEERS": addr["b"]})
    b, _ = node("b", [a.info["url"]])
    c, cenv = node("c", [b.info["url"]])
    nodes = {"a": a, "b": b, "c": c}

    def peers(d):
        st, _, j = d.json("GET", "/v1/mesh/peers")
        return {p["address"]: p for p in j.get("peers", [])} if st == 200 else {}

    def every_pair(ok):
        # ok(peer's entry as one node sees it, or {}) for every node and every other node.
        for me, d in nodes.items():
            view = peers(d)
            if not all(ok(view.get(addr[o], {})) for o in nodes if o != me):
                return False
        return True

    def converged():
        return every_pair(lambda p: p.get("state") == "alive")

    wait_for("three nodes to know each other as alive", converged)
    check("the mesh converged: every node knows the other two as alive", converged())
    # Trust (mesh/trust.h): nobody vouches for a peer that merely answers gossip (it costs a
    # Sybil nothing), so without paid work every published opinion is empty and a node trusts
    # only where it starts from: A its TRUSTED_PEERS (B). Each node still shows its first-hand
    # evidence of each peer.
    def trust_computed():
        return every_pair(lambda p: p.get("trust", {}).get("evidence", {}).get("answers", 0) > 0)

    wait_for("every node to have computed trust from its first exchanges", trust_computed)
    view_a = peers(a)
    pb, pc = view_a[addr["b"]], view_a[addr["c"]]
    check("A trusts B, its TRUSTED_PEERS (score 1), and not C, whom nobody vouches for (0)",
          pb["trust"]["score"] == 1 and pc["trust"]["score"] == 0, (pb["trust"], pc["trust"]))
    ev = pb["trust"]["evidence"]
    check("A's evidence of B is first-hand: answers, no fraud, a round trip measured",
          ev["answers"] > 0 and ev["fraud_records"] == 0 and ev["rtt_ms"] >= 0, pb["trust"])
    check("no record carries an opinion: answering gossip is no paid work",
          every_pair(lambda p: p.get("opinion") == []))
    check("B and C, starting from themselves alone, trust no peer",
          all(p["trust"]["score"] == 0 for n in (b, c) for p in peers(n).values()))
    st, _, me = a.json("GET", "/v1/mesh/node")
    check("A shows where its trust starts (its TRUSTED_PEERS), its empty opinion, its vertices",
          st == 200 and me["trust"]["pretrusted"] == [addr["b"]] and
          me["trust"]["opinion"] == [] and me["trust"]["nodes"] >= 3, me.get("trust"))
    st, _, o = a.json("POST", "/v1/mesh/offers?k=3", json.dumps({"storage_mb": 1, "max_fee": "1"}),
                      {"Content-Type": "application/json"})
    tr = {x["address"]: x["trust"] for x in o.get("offers", [])}
    check("offers carry each node's trust: A itself 1, B 1, C 0",
          st == 200 and tr == {addr["a"]: 1, addr["b"]: 1, addr["c"]: 0}, o)
    view_c = peers(c)
    pa = view_c.get(addr["a"], {})
    check("C knows A (learnt through B) with A's URL, roles, prices and vector",
          pa.get("url") == a.info["url"] and pa.get("roles") == ["storage"] and
          len(pa.get("prices", [])) == 6 and len(pa.get("vector", [])) == 16, pa)
    st, _, me = a.json("GET", "/v1/mesh/node")
    check("GET /v1/mesh/node names the node's address, node key and URL",
          st == 200 and me.get("address") == addr["a"] and len(me.get("node_key", "")) == 96 and
          me.get("url") == a.info["url"], me)
    check("/v1/status carries the mesh section",
          a.json("GET", "/v1/status")[2].get("mesh", {}).get("peers", {}).get("alive") == 2)
    # Offers: every node A knows, matched at the prices of its record.
    def offers(d, req, k=3):
        return d.json("POST", f"/v1/mesh/offers?k={k}", json.dumps(req),
                      {"Content-Type": "application/json"})

    st, _, o = offers(a, {"storage_mb": 100, "max_fee": "1"})
    got = [x["address"] for x in o.get("offers", [])]
    check("offers for a storage request list the three nodes (A itself included)",
          st == 200 and sorted(got) == sorted([addr["a"], addr["b"], addr["c"]]), o)
    vb = peers(a)[addr["b"]]["vector"]
    st, _, o = offers(a, {"storage_mb": 100, "max_fee": "1", "vector": vb}, k=1)
    check("with B's vector and k=1, B is the one offer; the others are named as farther",
          st == 200 and [x["address"] for x in o["offers"]] == [addr["b"]] and
          sum("not among the 1 nearest" in r["reason"] for r in o["refused"]) == 2, o)
    st, _, o = offers(a, {"storage_mb": 100, "max_fee": "0.000000001"})
    check("a max_fee no node meets gives no offer, each refusal saying why, and the cheapest",
          st == 200 and o["offers"] == [] and
          all("max_fee" in r["reason"] for r in o["refused"]) and
          o.get("cheapest_over_max_fee", {}).get("total") is not None, o)
    st, _, o = offers(a, {"storage_mb": -1})
    check("a malformed offer request is refused (400)", st == 400, (st, o))

    # Room: records announce it; a request past every node's room is refused naming it; the
    # drive workflow (pause, resume) re-announces it.
    rb = peers(a)[addr["b"]]
    check("records announce storage room: B's free bytes and quota as A sees them",
          0 < rb.get("storage_free_bytes", 0) <= rb.get("storage_quota_bytes", 0), rb)
    st, _, o = offers(a, {"storage_mb": 50_000, "max_fee": "100000"})
    check("a request for more room than any node has: no offer, each refusal naming the room",
          st == 200 and o["offers"] == [] and len(o["refused"]) == 3 and
          all("room for" in r["reason"] for r in o["refused"]), o)
    for v in (0, 1):
        st, _, j = b.admin("POST", f"/v1/volumes/{v}/pause", {})
        check(f"B's volume {v} paused", st == 200, (st, j))
    wait_for("A to see B announce no room",
             lambda: peers(a).get(addr["b"], {}).get("storage_free_bytes") == 0)
    st, _, o = offers(a, {"storage_mb": 100, "max_fee": "1"})
    check("B, its volumes paused, announced no room at once and is not offered",
          st == 200 and addr["b"] not in [x["address"] for x in o["offers"]] and
          any(r["address"] == addr["b"] and "room for 0 bytes" in r["reason"]
              for r in o["refused"]), o)
    for v in (0, 1):
        st, _, j = b.admin("POST", f"/v1/volumes/{v}/resume", {})
        check(f"B's volume {v} resumed", st == 200, (st, j))
    wait_for("A to see B's room again",
             lambda: peers(a).get(addr["b"], {}).get("storage_free_bytes", 0) > 0)
    check("resumed, B announces its room again and is offered",
          addr["b"] in [x["address"] for x in offers(a, {"storage_mb": 100, "max_fee": "1"})[2]
                        .get("offers", [])])

    # The same through dfrp-mesh, with A's config (its environment).
    rc, out, err = tool(MESH, aenv, "--json", "peers")
    check("dfrp-mesh --json peers lists B and C",
          rc == 0 and sorted(p["address"] for p in json.loads(out)["peers"]) ==
          sorted([addr["b"], addr["c"]]), (rc, out[-300:], err[-300:]))
    rc, out, err = tool(MESH, aenv, "node")
    check("dfrp-mesh node prints the address and the peers by state",
          rc == 0 and addr["a"] in out and "2 alive" in out, (rc, out, err))
    rc, out, err = tool(MESH, aenv, "-q", "offers", "--storage-mb", "100", "--max-fee", "1",
                        "--k", "2")
    check("dfrp-mesh -q offers prints the two nearest offers' URLs",
          rc == 0 and len(out.split()) == 2 and all(u.startswith("http://") for u in out.split()),
          (rc, out, err))
    rc, out, err = tool(MESH, aenv, "offers", "--storage-mb", "100", "--max-fee", "0.000000001")
    check("dfrp-mesh offers no node meets: exit 7, naming the cheapest",
          rc == 7 and "the cheapest" in err and "asks" in err, (rc, out[-300:], err))
    rc, out, err = tool(MESH, aenv, "offers")
    check("dfrp-mesh offers with no request: exit 2", rc == 2 and "offers for what" in err,
          (rc, err))
    check("the node key is kept private in STATE_DIR/node.key",
          oct(os.stat(os.path.join(a.state, "node.key")).st_mode & 0o777) == "0o600")

    # A node of another network: its exchanges are refused, naming both networks.
    x, _ = node("x", [a.info["url"]], pol=other)
    wait_for("x to try an exchange",
             lambda: x.json("GET", "/v1/mesh/node")[2].get("exchanges_failed", 0) >= 1)
    xn = x.json("GET", "/v1/mesh/node")[2]
    check("a node with another genesis is refused at its exchange, with the reason",
          "another network" in xn.get("last_error", "") and len(peers(x)) == 0, xn)
    check("... and nobody took its record", addr["x"] not in peers(a))
    x.stop()

    # The wire: A's envelope, captured by the listener in A's PEERS.
    wait_for("A to send an exchange to the listener", lambda: len(capture.bodies) >= 1)
    body = json.loads(capture.bodies[-1])
    check("an exchange is {network, envelope} in hex", set(body) == {"network", "envelope"},
          list(body))
    # Sent to a fresh node, which A never talked to, so it was never seen there.
    d, _ = node("d", [])
    raw = json.dumps(body)
    st1, _, j1 = d.json("POST", "/v1/mesh/exchange", raw, {"Content-Type": "application/json"})
    check("a captured envelope is taken once by a node that never saw it", st1 == 200, j1)
    st2, _, j2 = d.json("POST", "/v1/mesh/exchange", raw, {"Content-Type": "application/json"})
    check("... and refused as a replay the second time (400)",
          st2 == 400 and "replay" in j2.get("error", {}).get("message", ""), (st2, j2))
    env_hex = body["envelope"]
    # A byte of its message id: not seen before, so the signature is what refuses it.
    flip = 2 * (200 + 1 + len("DFRP-MESH-EXCHANGE-V1"))
    forged = dict(body, envelope=env_hex[:flip] + ("0" if env_hex[flip] != "0" else "1") +
                  env_hex[flip + 1:])
    st3, _, j3 = d.json("POST", "/v1/mesh/exchange", json.dumps(forged),
                        {"Content-Type": "application/json"})
    check("the same envelope with one byte of its id changed is refused as forged (422)",
          st3 == 422 and j3.get("error", {}).get("code") == "integrity", (st3, j3))
    other_net = dict(body, network="00" * 32)
    st4, _, j4 = d.json("POST", "/v1/mesh/exchange", json.dumps(other_net),
                        {"Content-Type": "application/json"})
    check("an exchange for another network is refused naming it (400)",
          st4 == 400 and "another network" in j4.get("error", {}).get("message", ""), (st4, j4))
    st5, _, _ = d.json("POST", "/v1/mesh/exchange", "{}", {"Content-Type": "application/json"})
    check("a malformed exchange is refused (400)", st5 == 400, st5)
    # An indirect probe asked with an exchange envelope (another kind), then with nothing.
    capture.bodies.clear()
    wait_for("A to send another exchange to the listener", lambda: len(capture.bodies) >= 1)
    st6, _, j6 = d.json("POST", "/v1/mesh/probe", capture.bodies[-1].decode(),
                        {"Content-Type": "application/json"})
    check("/v1/mesh/probe refuses an envelope of another kind, naming the kind it takes (400)",
          st6 == 400 and "DFRP-MESH-PROBE-V1" in j6.get("error", {}).get("message", ""),
          (st6, j6))
    st7, _, _ = d.json("POST", "/v1/mesh/probe", "{}", {"Content-Type": "application/json"})
    check("a malformed probe is refused (400)", st7 == 400, st7)
    check("metrics count the replay and the forgery",
          d.metric('dfrp_mesh_envelopes_dropped_total{reason="replayed"}') == 1 and
          d.metric('dfrp_mesh_envelopes_dropped_total{reason="forged"}') == 1,
          (d.metric('dfrp_mesh_envelopes_dropped_total{reason="replayed"}'),
           d.metric('dfrp_mesh_envelopes_dropped_total{reason="forged"}')))
    d.stop()

    # kill -9 of C: suspect, then dead, at A and B; back to alive once it restarts.
    seq_before = peers(a).get(addr["c"], {}).get("seq", 0)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    t0 = time.monotonic()

    def c_dead():
        return all(peers(n).get(addr["c"], {}).get("state") == "dead" for n in (a, b))

    wait_for("A and B to see C dead", c_dead)
    took = time.monotonic() - t0
    check(f"A and B see the killed node dead ({took:.1f} s; the detector's bound is "
          f"{SUSPECT_MS / 1000:.0f} s after its last answer plus a round or two)", c_dead())
    wait_for("A's trust evidence of C to count its failures",
             lambda: peers(a)[addr["c"]]["trust"]["evidence"]["failures"] > 0)
    check("A's trust evidence of the killed node counts its failed exchanges (they would scale "
          "down any paid work it vouched for)",
          peers(a)[addr["c"]]["trust"]["evidence"]["failures"] > 0, peers(a)[addr["c"]]["trust"])
    st, _, o = offers(a, {"storage_mb": 100, "max_fee": "1"})
    check("the dead node is offered no more, and the refusal says why",
          addr["c"] not in [x["address"] for x in o["offers"]] and
          any(r["address"] == addr["c"] and "not alive (dead)" in r["reason"]
              for r in o["refused"]), o)
    c2 = Daemon(cenv)
    nodes["c"] = c2
    wait_for("C to be alive again everywhere", converged)
    check("C restarted with its node key is alive again at A and B", converged())
    pc = peers(a).get(addr["c"], {})
    check("... with a higher record seq than before", pc.get("seq", 0) > seq_before,
          (seq_before, pc))

    # Prices spread through the records: B and C go, E (ten times the storage floor) comes.
    def storage_price(d):
        p = d.json("GET", "/v1/market/prices")[2]
        return float(p["prices"]["storage_gib_month"]), float(p["floor"]["storage_gib_month"])

    a_price, a_floor = storage_price(a)
    for n in (b, c2):
        check("a node stops cleanly", n.stop() == 0)
    e, _ = node("e", [a.info["url"]], pol=high)

    def only_e_alive():
        view = peers(a)
        return (view.get(addr["e"], {}).get("state") == "alive" and
                all(view.get(addr[x], {}).get("state") == "dead" for x in ("b", "c")))

    wait_for("E alive and B, C dead at A", only_e_alive)
    e_price = storage_price(e)[0]
    check("A's storage price sat at its floor while idle among equals, E's is ten times higher",
          a_price == a_floor and e_price >= 10 * a_floor, (a_price, a_floor, e_price))
    wait_for("A's storage price to rise toward E's", lambda: storage_price(a)[0] > a_floor)
    check("A's storage price rose above its floor toward its neighbour's (blended each epoch)",
          a_floor < storage_price(a)[0] < e_price, (storage_price(a), e_price))
    for n in (a, e):
        check("a node stops cleanly", n.stop() == 0)


if __name__ == "__main__":
    run(main)
