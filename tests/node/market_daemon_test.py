"""The market in a running dfrpd (issue 12), end to end on loopback.

Usage: market_daemon_test.py DFRPD DFRP_STORAGE DFRP_MARKET

- economic.toml named by ECONOMIC_POLICY (epochs of one second) is the daemon's policy.
- Writes that saturate the measured write capacity raise write_gib's price by one step per
  epoch; idle epochs then make it decay toward the floor; other idle prices stay at the floor.
- The history survives kill -9: a restarted daemon starts from the last recorded vector.
- POST /v1/market/quote: the seed's context JSON accepted; a total over max_fee answered with
  accepted false and the reason; a bad request 400 naming the field.
- dfrp-market beside the running daemon goes through its API: `prices` shows the daemon's
  vector, `quote` exits 7 when refused, `usage` shows the PUTs counted for "local".
- /metrics has the prices, the utilisation and the usage totals.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403

MARKET = sys.argv[3]


def market(env, *args):
    r = subprocess.run([MARKET, *args], env=env, cwd=T, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def main():
    policy = os.path.join(T, "economic.toml")
    with open(policy, "w") as f:
        f.write("[pricing]\nepoch_seconds = 1\n")
    env = store_env("m", quota="256M", drives=1, extra={"ECONOMIC_POLICY": policy})
    # A measured capacity with a slow disk (1 MB/s of writes), so that a few MiB a second
    # saturate it; the rest as measured.
    rc, out, err = market(env, "--json", "measure", "--quick")
    check("dfrp-market measure --quick", rc == 0, err[-500:])
    cap_path = os.path.join(env["STATE_DIR"], "capacity.json")
    cap = json.load(open(cap_path))
    for v in cap["volumes"]:
        v["write_mb_per_sec"] = 1.0
    json.dump(cap, open(cap_path, "w"))

    d = Daemon(env)
    st, _, p = d.json("GET", "/v1/market/prices")
    check("prices: epochs of one second from ECONOMIC_POLICY", st == 200 and p["epoch_seconds"] == 1, p)
    floor = p["floor"]
    start = p["prices"]
    start_write = start["write_gib"]
    check("the start vector: write_gib at its floor (a slow disk)", start_write == floor["write_gib"], p)

    def price(name):
        return float(d.json("GET", "/v1/market/prices")[2]["prices"][name])

    # Saturate writes for a few epochs: 2 MiB every 0.2 s is 10 MB/s against 1 MB/s measured.
    payload = os.urandom(2 << 20)
    t_end = time.monotonic() + 4.5
    puts = 0
    while time.monotonic() < t_end:
        st, _, w = d.put(payload)
        puts += st == 201
        time.sleep(0.2)
    wait_for("write_gib's price to rise", lambda: price("write_gib") > float(floor["write_gib"]) * 1.2,
             timeout=10)
    st, _, p = d.json("GET", "/v1/market/prices?history=100")
    rises = [e for e in p["history"] if e["utilization_bps"]["write_gib"] == 10000]
    check(f"saturated epochs recorded at 100% write utilisation ({len(rises)} of {len(p['history'])})",
          len(rises) >= 2, p["history"][-5:])
    # Idle resources decay from where the measured capacity started them, never rise.
    check("idle resources' prices do not rise", all(
        float(p["prices"][r]) <= float(start[r]) for r in ("cpu_sec", "read_gib", "proof", "gpu_sec")),
        (start, p["prices"]))
    peak = price("write_gib")
    # Idle: the price decays, epoch by epoch.
    wait_for("write_gib's price to decay when idle", lambda: price("write_gib") < peak * 0.8, timeout=15)

    # kill -9: the history is in market.db.
    before = d.json("GET", "/v1/market/prices?history=1000")[2]
    d.stop(signal.SIGKILL)
    d = Daemon(env)
    after = d.json("GET", "/v1/market/prices?history=1000")[2]
    kept = {e["epoch"]: e["prices"] for e in after["history"]}
    lost = [e["epoch"] for e in before["history"] if kept.get(e["epoch"]) != e["prices"]]
    check(f"after kill -9 the price history is intact ({len(before['history'])} epochs)",
          not lost and len(before["history"]) > 3, lost[:5])

    # Quotes over the API.
    seed = '{"cpu_sec": 1.2, "storage_mb": 300, "max_fee": 0.0042}'
    st, _, q = d.json("POST", "/v1/market/quote", seed, {"Content-Type": "application/json"})
    check("POST /v1/market/quote: the seed's context accepted", st == 200 and q["accepted"] is True and
          q["total_base_units"] > 0 and set(q["fees"]) == {"cpu_sec", "storage_gib_month"}, q)
    st, _, q = d.json("POST", "/v1/market/quote", '{"cpu_sec": 100000, "max_fee": "0.0001"}',
                      {"Content-Type": "application/json"})
    check("a total over max_fee: accepted false with the reason", st == 200 and
          q["accepted"] is False and q["reason"].startswith("total ") and "over max_fee 0.0001" in q["reason"], q)
    st, _, q = d.json("POST", "/v1/market/quote", '{"cpu_sec": NaN}', {"Content-Type": "application/json"})
    check("a bad request: 400", st == 400 and q["error"]["code"] == "invalid_argument", q)
    st, _, q = d.json("POST", "/v1/market/quote", '{"ram": 1}', {"Content-Type": "application/json"})
    check("an unknown field: 400 naming it", st == 400 and "ram" in q["error"]["message"], q)

    # dfrp-market beside the daemon uses its API.
    rc, out, err = market(env, "--json", "prices")
    api = d.json("GET", "/v1/market/prices")[2]
    check("dfrp-market prices shows the daemon's vector", rc == 0 and json.loads(out)["prices"] == api["prices"],
          (rc, err[-300:]))
    rc, out, err = market(env, "quote", "--cpu-sec", "100000", "--max-fee", "0.0001")
    check("dfrp-market quote through the daemon: exit 7 when refused", rc == 7 and "over max_fee" in err,
          (rc, out, err))
    rc, out, err = market(env, "quote", "--cpu-sec", "1", "--max-fee", "1")
    check("dfrp-market quote through the daemon: exit 0 when accepted", rc == 0, (rc, out, err))
    rc, out, err = market(env, "--json", "usage")
    u = json.loads(out) if rc == 0 else {}
    written = u.get("totals", {}).get("bytes_written", 0)
    check(f"dfrp-market usage: the {puts} PUTs counted for local",
          rc == 0 and written == puts * len(payload) and
          [w["wallet"] for w in u.get("wallets", [])] == ["local"], (rc, err[-300:], u.get("totals")))

    st, _, text = d.request("GET", "/metrics")
    text = text.decode()
    for needle in ['dfrp_market_price{resource="write_gib"} ', 'dfrp_market_utilization_ratio{resource="cpu_sec"} ',
                   f"dfrp_usage_bytes_written_total {puts * len(payload)}\n", "dfrp_market_epoch "]:
        check(f"metrics has {needle.strip()}", needle in text, "")
    check("dfrpd exits 0 on SIGTERM", d.stop() == 0, "")


run(main)
