"""The shard vector index end to end (issue 14): search-shards on a store opened by the CLI and
through a running dfrpd (GET /v1/shards?near=), the same answers both ways and the same as a
brute force computed here from the vectors written; bad vectors and arguments refused with
exit 2 / 400 naming them; VECTOR_DIM fixed at init; VECTOR_METRIC; a damaged vectors.idx
rebuilt; and kill -9 of dfrpd while it stores shards with vectors, after which the index it
reopens agrees with one rebuilt from the drives.

Usage: vector_daemon_test.py DFRPD DFRP_STORAGE
"""
import math
import random
import threading
import urllib.parse

from harness import *

DIM = 4
rng = random.Random(14)


def vec():
    return [round(rng.gauss(0, 1), 4) for _ in range(DIM)]


def csv(v):
    return ",".join(str(x) for x in v)


def cosine_distance(a, b):
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return 1 - sum(x * y for x, y in zip(a, b)) / (na * nb)


def l2_distance(a, b):
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b)))


def cli(env, *args, stdin=None):
    p = subprocess.run([STORAGE, *args], env=env, cwd=T, capture_output=True, text=True,
                       input=stdin)
    return p.returncode, p.stdout, p.stderr


def search(env, q, *extra):
    rc, out, err = cli(env, "search-shards", "--near", csv(q), "--json", *extra)
    if rc != 0:
        raise SystemExit(f"search-shards failed ({rc}): {err}")
    return json.loads(out)


def same_vector(a, b):
    return len(a) == len(b) and all(abs(x - y) < 1e-4 for x, y in zip(a, b))


def nearest(truth, q, k, dist=cosine_distance):
    return [i for _, i in sorted((dist(q, v), i) for i, v in truth.items())[:k]]


def main():
    env = store_env("v", drives=2, extra={"VECTOR_DIM": str(DIM)})
    truth = {}  # shard id -> vector
    # Shards with vectors (and two without), written by the CLI in three batches.
    for batch in range(3):
        files = []
        for i in range(20):
            path = os.path.join(T, f"in-{batch}-{i}")
            with open(path, "wb") as f:
                f.write(os.urandom(100 + i))
            files.append(path)
        for path in files:
            v = vec()
            rc, out, err = cli(env, "write-shard", path, "--vector", csv(v), "--json")
            assert rc == 0, err
            truth[json.loads(out)[0]["shard_id"]] = v
    rc, out, err = cli(env, "write-shard", files[0], "--json")
    assert rc == 0, err

    q = vec()
    rc, out, err = cli(env, "search-shards", "--near", csv(q), "--json")
    check("the first search builds the index from the drives and says so",
          rc == 0 and "vector index: built from the drives (no saved index)" in err, err)
    got = json.loads(out)
    check("it indexes every shard with a vector and none without", got["indexed"] == len(truth),
          got["indexed"])
    exact = search(env, q, "--k", "10", "--exact")
    want = nearest(truth, q, 10)
    check("--exact gives the brute-force answer, nearest first",
          [s["shard_id"] for s in exact["shards"]] == want, exact["shards"])
    check("the HNSW answer equals it on a small store",
          [s["shard_id"] for s in got["shards"]] == want, got["shards"])
    d0 = exact["shards"][0]
    check("distances are 1 - cos, with each shard's metadata",
          abs(d0["distance"] - cosine_distance(q, truth[d0["shard_id"]])) < 1e-4 and
          same_vector(d0["vector"], truth[d0["shard_id"]]) and "size" in d0 and
          "merkle_root" in d0, d0)
    check("k, ef, exact and metric are echoed",
          got["k"] == 10 and got["ef"] == 64 and got["exact"] is False and
          got["metric"] == "cosine" and exact["exact"] is True, got)
    rc, out, _ = cli(env, "search-shards", "--near", csv(q), "-q", "--k", "3")
    check("-q prints one id per line", rc == 0 and out.split() == want[:3], out)
    rc, out, _ = cli(env, "search-shards", "--near", csv(q), "--k", "3")
    check("the text output leads with the count and the metric",
          rc == 0 and out.startswith("3 shards nearest by cosine") and want[0] in out, out)

    # Bad input: exit 2, the argument named.
    for args, words in [(["--near", "1,2,3"], "--near has 3 components but VECTOR_DIM is 4"),
                        (["--near", "1,2,nan,4"], "component 3 is not a finite number"),
                        (["--near", "0,0,0,0"], "zero vector"),
                        (["--near", "1,2,x,4"], "'x' (component 3) is not a number"),
                        (["--near", csv(q), "--k", "0"], "k = 0 is not between 1 and 1000"),
                        (["--near", csv(q), "--k", "5000"], "k = 5000")]:
        rc, out, err = cli(env, "search-shards", *args)
        check(f"search-shards {' '.join(args)} exits 2 naming it", rc == 2 and words in err,
              f"rc {rc}: {err}")
    rc, _, err = cli(env, "search-shards")
    check("search-shards without --near is a usage error", rc == 2 and "--near" in err, err)
    rc, _, err = cli({**env, "VECTOR_DIM": "5"}, "list-volumes")
    check("a config that changes VECTOR_DIM is refused, naming both values",
          rc == 2 and "VECTOR_DIM = 5" in err and "VECTOR_DIM = 4" in err, err)
    rc, _, err = cli(env, "write-shard", files[0], "--vector", "1,2,3")
    check("a shard vector of the wrong dimension is refused", rc == 2 and "VECTOR_DIM" in err, err)
    rc, _, err = cli(env, "write-shard", files[0], "--vector", "0,0,0,0")
    check("a zero shard vector is refused under cosine, before anything is stored",
          rc == 2 and "zero vector" in err, err)

    # A damaged vectors.idx is rebuilt, never trusted; the answer does not change.
    idx = os.path.join(env["STATE_DIR"], "vectors.idx")
    data = bytearray(open(idx, "rb").read())
    data[len(data) // 2] ^= 0x40
    open(idx, "wb").write(bytes(data))
    rc, out, err = cli(env, "search-shards", "--near", csv(q), "--json", "--exact")
    check("a damaged vectors.idx is rebuilt, saying why",
          rc == 0 and "checksum" in err and
          [s["shard_id"] for s in json.loads(out)["shards"]] == want, err)
    rc, out, err = cli(env, "search-shards", "--near", csv(q), "--json")
    check("the rebuilt index was saved (the next open reads nothing)",
          rc == 0 and "vector index" not in err, err)

    # VECTOR_METRIC = l2: the index is rebuilt for it; distances are Euclidean.
    l2 = {**env, "VECTOR_METRIC": "l2"}
    got = search(l2, q, "--k", "5", "--exact")
    check("VECTOR_METRIC = l2 ranks by Euclidean distance",
          [s["shard_id"] for s in got["shards"]] == nearest(truth, q, 5, l2_distance) and
          abs(got["shards"][0]["distance"] - l2_distance(q, truth[got["shards"][0]["shard_id"]]))
          < 1e-3 and got["metric"] == "l2", got)
    rc, _, err = cli({**env, "VECTOR_METRIC": "dot"}, "list-volumes")
    check("an unknown VECTOR_METRIC is refused", rc == 2 and "VECTOR_METRIC = 'dot'" in err, err)

    # Through dfrpd: the same answer over HTTP and through the CLI beside it.
    d = Daemon(env)
    status, _, body = d.json("GET", "/v1/shards?near=" + urllib.parse.quote(csv(q)) + "&k=10")
    check("GET /v1/shards?near= answers as search-shards does",
          status == 200 and [s["shard_id"] for s in body["shards"]] == want, body)
    via = search(env, q, "--k", "10")
    check("search-shards beside a running dfrpd asks it, same answer",
          [s["shard_id"] for s in via["shards"]] == want, via)
    for query, words in [("", "needs ?near="), ("?near=1,2", "--near has 2 components"),
                         ("?near=0,0,0,0", "zero vector"),
                         ("?near=" + csv(q) + "&k=x", "k=x is not a count"),
                         ("?near=" + csv(q) + "&exact=maybe", "exact=maybe"),
                         ("?near=" + csv(q) + "&k=1&k=2", "twice")]:
        status, _, body = d.json("GET", "/v1/shards" + query)
        check(f"GET /v1/shards{query} is a 400 naming the argument",
              status == 400 and words in body.get("error", {}).get("message", ""), body)
    status, _, body = d.put(b"zero", "?vector=0,0,0,0")
    check("PUT with a zero vector is a 400 under cosine",
          status == 400 and "zero vector" in body.get("error", {}).get("message", ""), body)
    # A PUT with a vector is searchable at once (the writer's observer).
    v = vec()
    status, _, body = d.put(b"fresh", "?vector=" + urllib.parse.quote(csv(v)))
    truth[body["shard_id"]] = v
    status, _, body = d.json("GET", "/v1/shards?near=" + urllib.parse.quote(csv(v)) + "&k=1")
    check("a shard PUT with a vector is the nearest to its own vector at once",
          status == 200 and body["shards"][0]["shard_id"] == list(truth)[-1] and
          body["shards"][0]["distance"] < 1e-5, body)
    st = d.json("GET", "/v1/status")[2]["vectors"]
    check("/v1/status shows the vector index", st["indexed"] == len(truth) and st["dim"] == DIM,
          st)
    check("/metrics counts the indexed shards",
          d.metric("dfrp_vector_index_shards") == len(truth), d.metric("dfrp_vector_index_shards"))
    d.stop()

    # kill -9 while shards with vectors are being stored, five times; each restart's index
    # must agree with the store.
    acked = dict(truth)
    lock = threading.Lock()
    for round_ in range(5):
        d = Daemon(env)
        stop = threading.Event()

        def writer():
            while not stop.is_set():
                v = vec()
                try:
                    status, _, body = d.put(os.urandom(64), "?vector=" + urllib.parse.quote(csv(v)))
                except Exception:  # the daemon was killed under this request
                    return
                if status == 201:
                    with lock:
                        acked[body["shard_id"]] = v
                time.sleep(0.02)

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.2, 1.2))
        d.proc.kill()
        d.proc.wait()
        stop.set()
        for t in threads:
            t.join()
    d = Daemon(env)
    total = d.json("GET", "/v1/status")[2]["vectors"]["indexed"]
    status, _, body = d.json("GET", "/v1/shards?near=" + urllib.parse.quote(csv(q)) +
                             "&k=1000&exact=1")
    found = {s["shard_id"] for s in body["shards"]}
    check("the kill -9 rounds stored a few hundred shards (the checks below see them all)",
          len(acked) > len(truth) and total < 1000, (len(acked), total))
    check("after kill -9 every acknowledged shard with a vector is searchable",
          set(acked) <= found, len(set(acked) - found))
    check("and every shard found carries the vector it was stored with",
          all(same_vector(s["vector"], acked[s["shard_id"]]) for s in body["shards"]
              if s["shard_id"] in acked) and total == len(found), (total, len(found)))
    d.stop()
    before = {s["shard_id"]: s["distance"] for s in search(env, q, "--k", "1000", "--exact")["shards"]}
    rc, _, err = cli(env, "rebuild-index")
    after = {s["shard_id"]: s["distance"] for s in search(env, q, "--k", "1000", "--exact")["shards"]}
    check("the index dfrpd kept across kill -9 equals one rebuilt from the drives",
          rc == 0 and before == after and len(after) == total, (rc, err, len(before), len(after)))


run(main)
