"""Compute jobs across real dfrpd processes on loopback (issue 16): signed jobs sent to the
nearest listener that takes them, run under a real mpirun, result sets checked against the
provider's signed claim, a job re-run on another node to verify it.

Usage: compute_daemon_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_COMPUTE

- Three dfrpd with ROLES storage,compute and wallets: A and B share an identity vector, C has
  an orthogonal one (and one slot). `dfrp-compute submit-job` offered to C, B and A sends the
  job to A or B (nearest the job's vector), which runs it as dfrp-job (when root) and signs a
  claim; `--wait` prints the result root.
- `result` fetches every rank's output, checks the claim's signature and each output against
  the root with its proof, and writes them; an output changed on the provider's disk does not
  verify (exit 3).
- `verify-job --verifier` has the other node of A and B run the same signed job: the same
  result root (exit 0).
- The adaptive check rate: `verify-job` keeps each provider's record; with `--adaptive` a new
  provider's job is checked, a long-trusted one's at the floor (not this time), one caught
  once always; a damaged record file is exit 3.
- `listen-job` shows a listener's slots and jobs, by URL and as the local dfrpd's (exit 6 with
  no dfrpd, exit 2 for a state that is not one); `--follow --json` prints a line per change.
- Competing jobs run by the sigmoid weighting: three jobs queued behind a running one, offering
  10%, 50% and 25% over the ask, run highest offer first.
- Inputs: a knn job over a shard stored on C: the provider fetches it from C, verifies it,
  the app reads it (another root than generated points), a verifier fetches it too (the same
  root); a wrong root fails the job before the app runs (no claim); an input no node holds is
  refused by submit-job (exit 4).
- A client's own binary (COMPUTE_CLIENT_BINARIES on A and B): matmul's bytes stored on C as an
  input run in bubblewrap to matmul's root; C (not opted in) refuses it; a probe binary reaches
  C's port outside the sandbox and is refused inside (no network).
- Refusals, each with its reason (exit 7): a vector too far (C), more ranks than slots, a
  max_fee under the price, an app the node does not have; bytes that are not a job (400) and
  a forged signature (422) over the API; the same job twice is one job.
- kill -9 of a provider's dfrpd during a job that would run for minutes: the job's processes
  end with it, and the restarted node shows the job as interrupted (no claim, nothing to
  pay); SIGTERM to a dfrpd during such a job stops both within 30 s, the same way.
"""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from decimal import ROUND_UP, Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, new_wallets, tool  # noqa: E402

WALLET, COMPUTE = sys.argv[4], sys.argv[5]


PROBE_C = r"""
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
int main(int argc, char** argv) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(0x7f000001);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int rc = connect(s, (struct sockaddr*)&a, sizeof a);
  int e = rc == 0 ? 0 : errno;
  char path[4096];
  snprintf(path, sizeof path, "%s/rank-0.out", getenv("DFRP_OUT_DIR"));
  FILE* f = fopen(path, "w");
  if (!f) return 1;
  fprintf(f, "connect %d %d\n", rc, e);
  return fclose(f) != 0;
}
"""


def procs_with(needle):
    n = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle.encode() in f.read():
                    n += 1
        except OSError:
            pass
    return n


def main():
    os.chmod(T, 0o711)  # dfrp-job (the tests run as root) must reach the job folders
    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    near = ",".join(["1"] + ["0"] * 15)
    far = ",".join(["0", "1"] + ["0"] * 14)
    addr = new_wallets(WALLET, wenv, {"a": near, "b": near, "c": far, "alice": near})
    policy = os.path.join(T, "economic.toml")
    with open(policy, "w") as f:
        f.write('[genesis]\nnetwork = "dfrp-compute-test"\n\n[gossip]\ninterval_ms = 200\n'
                '\n[compute]\nvector_threshold = 0.8\nspot_check_bps = 1\n')

    def node(name, slots):
        e = store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": policy, "SCRUB_RATE": "0", "ROLES": "storage,compute",
            "COMPUTE_SLOTS": str(slots),
            # A and B run clients' own binaries (in bubblewrap); C does not.
            "COMPUTE_CLIENT_BINARIES": "true" if name in ("a", "b") else "false"})
        return Daemon(e), e

    a, aenv = node("a", 4)
    b, _ = node("b", 4)
    c, _ = node("c", 1)
    url = {"a": a.info["url"], "b": b.info["url"], "c": c.info["url"]}
    st, _, cn = a.json("GET", "/v1/compute/node")
    check("GET /v1/compute/node: slots, apps, the node's vector and price",
          st == 200 and cn.get("slots") == 4 and "matmul" in cn.get("apps", []) and
          len(cn.get("vector", [])) == 16 and cn.get("provider") == addr["a"], cn)
    st, _, status = a.json("GET", "/v1/status")
    check("/v1/status has the listener too (the dashboard's compute panel reads it)",
          st == 200 and status.get("compute", {}).get("slots") == 4, status.get("compute"))

    cenv = clean_env({"DFRP_PASSPHRASE": "pw", "STATE_DIR": os.path.join(T, "client")})

    def compute(*args, timeout=300):
        return tool(COMPUTE, cenv, "--policy", policy, *args, timeout=timeout)

    wallet = ["--wallet", os.path.join(T, "alice.json")]
    rc, out, err = compute("--json", "submit-job", "matmul", "64", "3", "--ranks", "2",
                           "--max-fee", "1", "--vector", near, "--node", url["c"], "--node",
                           url["b"], "--node", url["a"], "--wait", *wallet)
    sub = json.loads(out) if out.strip().startswith("{") else {}
    check("submit-job: the job goes to A or B (nearest its vector), runs, and is done",
          rc == 0 and sub.get("state") == "done" and
          sub.get("provider") in (addr["a"], addr["b"]) and len(sub.get("result_root", "")) == 64,
          (rc, out[-600:], err[-600:]))
    job = sub.get("job_id", "")
    provider = "a" if sub.get("provider") == addr["a"] else "b"
    other = "b" if provider == "a" else "a"
    pnode = a if provider == "a" else b
    st, _, pj = pnode.json("GET", f"/v1/compute/jobs/{job}")
    if os.geteuid() == 0:
        check("the provider ran it as dfrp-job, not root",
              pj.get("report", {}).get("user") == "dfrp-job", pj)
    check("the provider's state has a signed claim and the quote within max_fee",
          st == 200 and len(pj.get("claim", "")) == 2 * 293 and
          float(pj.get("quote", {}).get("total", "9")) <= 1.0, pj)

    rc, out, err = compute("result", job, "-o", os.path.join(T, "out"))
    check("result: every rank verified against the signed claim and written", rc == 0 and
          os.path.getsize(os.path.join(T, "out", "rank-0.out")) +
          os.path.getsize(os.path.join(T, "out", "rank-1.out")) == 64 * 64 * 8, (rc, out, err))

    rc, out, err = compute("--json", "verify-job", job, "--verifier", url[other])
    v = json.loads(out) if out.strip().startswith("{") else {}
    check("verify-job: the other node's re-run gives the same result root", rc == 0 and
          v.get("verified") is True and v.get("recomputed_root") == sub.get("result_root"),
          (rc, out[-600:], err[-600:]))

    # The adaptive check rate: a new provider's jobs are all checked; a long-trusted one's at
    # the floor (1 in 10,000 in this policy), and one caught once on every job again.
    providers = os.path.join(T, "client", "compute", "providers.json")
    check("verify-job kept the provider's record: one valid check",
          json.load(open(providers)).get(addr[provider]) ==
          {"valid": 1, "mismatches": 0, "unchecked": 0}, open(providers).read())
    rc, out, err = compute("--json", "verify-job", job, "--verifier", url[other], "--adaptive")
    v = json.loads(out) if out.strip().startswith("{") else {}
    check("verify-job --adaptive, a new provider: rate 1, checked again, but a job counts "
          "once: still one valid check",
          rc == 0 and v.get("verified") is True and v["check"]["rate"] == 1 and
          v["check"]["checked"] is True and v["check"]["provider_record"]["valid"] == 1 and
          v["check"].get("already_counted") == "valid", (rc, out[-600:], err[-300:]))
    with open(providers, "w") as f:
        json.dump({addr[provider]: {"valid": 500, "mismatches": 0, "unchecked": 0}}, f)
    rc, out, err = compute("--json", "verify-job", job, "--verifier", url[other], "--adaptive")
    v = json.loads(out) if out.strip().startswith("{") else {}
    # Checked with probability 1/10,000: then it must still verify.
    check("verify-job --adaptive, a trusted provider: rate at the floor, not checked this time",
          rc == 0 and v["check"]["rate"] == 0.0001 and
          (v["check"]["checked"] is False and v["check"]["provider_record"]["unchecked"] == 0 or
           v.get("verified") is True), (rc, out[-600:], err[-300:]))
    with open(providers, "w") as f:
        json.dump({addr[provider]: {"valid": 500, "mismatches": 1, "unchecked": 0}}, f)
    rc, out, err = compute("verify-job", job, "--verifier", url[other], "--adaptive")
    check("verify-job --adaptive, a provider caught once: checked (rate 1)",
          rc == 0 and "check rate 1.000 -> 1.000" in out, (rc, out[-600:], err[-300:]))
    with open(providers, "w") as f:
        f.write("{not json")
    rc, out, err = compute("verify-job", job, "--verifier", url[other], "--adaptive")
    check("a damaged providers.json: exit 3, naming it and the way out",
          rc == 3 and "providers.json" in err and "move it away" in err, (rc, err[-300:]))
    os.unlink(providers)
    rc, out, err = compute("verify-job", "run-1", "--adaptive")
    check("verify-job --adaptive of a local run: a usage error (exit 2)",
          rc == 2 and "--adaptive is for a submitted job" in err, (rc, err[-300:]))

    # listen-job: the listener's slots and jobs, by URL and as the local dfrpd's.
    rc, out, err = compute("--json", "listen-job", "--node", url[provider])
    lj = json.loads(out) if out.strip().startswith("{") else {}
    check("listen-job --node: the provider's listener, with the job done",
          rc == 0 and lj.get("listener", {}).get("provider") == addr[provider] and
          [(j["job_id"], j["state"]) for j in lj.get("jobs", [])] == [(job, "done")],
          (rc, out[-600:], err[-300:]))
    rc, out, err = tool(COMPUTE, clean_env({"STATE_DIR": os.path.join(T, provider, "state")}),
                        "listen-job", "--state", "done")
    check("listen-job on the provider's STATE_DIR: its dfrpd's listener, the job in the table",
          rc == 0 and f"listener at {url[provider]}" in out and job[:16] in out and
          "done 1" in out, (rc, out[-600:], err[-300:]))
    rc, out, err = compute("listen-job")
    check("listen-job with no dfrpd on STATE_DIR: exit 6, saying how to start one or use --node",
          rc == 6 and "no dfrpd runs on" in err and "--node" in err, (rc, err[-300:]))
    rc, out, err = compute("listen-job", "--node", url["a"], "--state", "finished")
    check("listen-job --state that is no job state: exit 2, naming the states",
          rc == 2 and "is not a job state" in err and "interrupted" in err, (rc, err[-300:]))

    # Refusals, each with its reason.
    rc, out, err = compute("submit-job", "matmul", "16", "1", "--max-fee", "1", "--vector",
                           near, "--node", url["c"], *wallet)
    check("a node whose vector is too far refuses (exit 7), saying so",
          rc == 7 and "vector similarity" in err, (rc, err[-400:]))
    rc, out, err = compute("submit-job", "matmul", "16", "1", "--ranks", "8", "--max-fee", "1",
                           "--vector", near, "--node", url["a"], *wallet)
    check("more ranks than the node's slots is refused (exit 7)",
          rc == 7 and "8 ranks, more than this node's 4 slots" in err, (rc, err[-400:]))
    rc, out, err = compute("submit-job", "matmul", "16", "1", "--max-fee", "0.000001",
                           "--vector", near, "--node", url["a"], *wallet)
    check("a max_fee under the node's price is refused (exit 7)",
          rc == 7 and "over max_fee" in err, (rc, err[-400:]))
    rc, out, err = compute("submit-job", "blur", "16", "--max-fee", "1", "--vector", near,
                           "--node", url["a"], *wallet)
    check("an app the node does not have is refused, naming what it runs",
          rc == 7 and "no app 'blur' here" in err and "matmul" in err, (rc, err[-400:]))
    st, _, e1 = a.json("POST", "/v1/compute/jobs", json.dumps({"job": "00" * 40}),
                       {"Content-Type": "application/json"})
    check("bytes that are not a job: 400", st == 400, (st, e1))
    wire = bytearray.fromhex(json.load(open(os.path.join(
        T, "client", "compute", "submitted", f"{job}.json")))["job"])
    wire[-100] ^= 1  # the last vector component (finite still): the signature no longer matches
    st, _, e2 = a.json("POST", "/v1/compute/jobs", json.dumps({"job": wire.hex()}),
                       {"Content-Type": "application/json"})
    check("a job whose bytes were changed after signing: 422", st == 422, (st, e2))
    rec = json.load(open(os.path.join(T, "client", "compute", "submitted", f"{job}.json")))
    st, _, again = pnode.json("POST", "/v1/compute/jobs", json.dumps({"job": rec["job"]}),
                              {"Content-Type": "application/json"})
    st2, _, node_after = pnode.json("GET", "/v1/compute/node")
    check("the same job sent again is the same job (its state), not a second run",
          st == 202 and again.get("state") == "done" and node_after["jobs"].get("done") == 1,
          (again, node_after))

    # An output changed on the provider's disk no longer verifies.
    path = os.path.join(T, provider, "state", "compute", "jobs", job, "run", "results",
                        "rank-1.out")
    with open(path, "r+b") as f:
        f.seek(10)
        byte = f.read(1)[0]
        f.seek(10)
        f.write(bytes([byte ^ 1]))
    rc, out, err = compute("result", job)
    check("result: a changed output does not verify against the claim (exit 3)",
          rc == 3 and "do not verify" in err, (rc, out[-300:], err[-300:]))

    # Competing jobs are ranked by the sigmoid weighting, not by arrival: while a job holds
    # the provider's slots, three more come offering 10%, 50% and 25% over the ask; they run
    # the highest offer first.
    ask = Decimal(pj["quote"]["total"])
    rc, out, err = compute("--json", "submit-job", "matmul", "2048", "99", "--ranks", "2",
                           "--max-fee", "1", "--vector", near, "--node", url[provider],
                           "--wall-seconds", "6", *wallet)
    blocker = json.loads(out).get("job_id", "") if rc == 0 else ""
    wait_for("the blocking job to run", lambda: pnode.json(
        "GET", f"/v1/compute/jobs/{blocker}")[2].get("state") == "running")
    offers = {}
    for factor in ("1.10", "1.50", "1.25"):
        fee = (ask * Decimal(factor)).quantize(Decimal("0.000001"), rounding=ROUND_UP)
        rc, out, err = compute("--json", "submit-job", "matmul", "64", "3", "--ranks", "2",
                               "--max-fee", str(fee), "--vector", near, "--node", url[provider],
                               *wallet)
        queued = json.loads(out) if rc == 0 else {}
        check(f"a job offering {factor} x the ask ({fee}) waits behind the blocking job",
              rc == 0 and queued.get("state") == "queued", (rc, out[-300:], err[-300:]))
        offers[factor] = queued.get("job_id", "")
    wait_for("the three jobs to be done", lambda: all(
        pnode.json("GET", f"/v1/compute/jobs/{j}")[2].get("state") == "done"
        for j in offers.values()), 120)
    ran = {f: pnode.json("GET", f"/v1/compute/jobs/{j}")[2] for f, j in offers.items()}
    order = sorted(ran, key=lambda f: ran[f].get("started_ms", 0))
    check("they ran by weight, highest offer first: 1.50, 1.25, 1.10 (they came 1.10, 1.50, "
          "1.25)", order == ["1.50", "1.25", "1.10"] and
          ran["1.50"]["weight"] > ran["1.25"]["weight"] > ran["1.10"]["weight"] > 0,
          {f: (r.get("started_ms"), r.get("weight")) for f, r in ran.items()})

    # Inputs: a shard of points stored on C, named by a knn job sent to the provider, which
    # fetches it from C, verifies it against the job's root and passes its path to the app.
    n_pts, dim = 2000, 16
    points = bytes((i * 7919 + 13) % 251 for i in range(n_pts * dim))
    st, _, put = c.put(points)
    check("the input shard is stored on C", st == 201, put)
    shard = put.get("shard_id", "")
    knn = ["knn", str(n_pts), str(dim), "5", "8", "3"]

    def submit_knn(*extra, data=True):
        rc, out, err = compute("--json", "submit-job", *knn, *(["0"] if data else []), "--ranks",
                               "2", "--max-fee", "1",
                               "--vector", near, "--node", url[provider], *extra, *wallet)
        return rc, (json.loads(out) if out.strip().startswith("{") else {}), err

    rc, with_input, err = submit_knn("--input", shard, "--input-from", url["c"], "--wait")
    pj = pnode.json("GET", f"/v1/compute/jobs/{with_input.get('job_id', '')}")[2]
    check("a knn job over C's shard: the provider fetched it from C, verified, and ran it",
          rc == 0 and with_input.get("state") == "done" and
          pj.get("report", {}).get("inputs") == [{"input": 0, "shard_id": shard,
                                                  "from": url["c"]}] and
          pj.get("inputs", [{}])[0].get("merkle_root") == put.get("merkle_root"),
          (rc, with_input, err[-300:], pj.get("report")))
    rc, generated, err = submit_knn("--wait", data=False)
    check("... the same knn on generated points has another root: the input was read",
          rc == 0 and generated.get("result_root") not in (None, with_input.get("result_root")),
          (rc, generated.get("result_root"), with_input.get("result_root")))
    rc, out, err = compute("--json", "verify-job", with_input.get("job_id", ""), "--verifier",
                           url[other])
    v = json.loads(out) if out.strip().startswith("{") else {}
    check("... verify-job: the other node fetches the input too and gets the same root",
          rc == 0 and v.get("recomputed_root") == with_input.get("result_root"),
          (rc, out[-400:], err[-400:]))
    wrong = "00" * 31 + "01"
    rc, bad, err = submit_knn("--input", f"{shard}@{wrong}", "--input-from", url["c"])
    wait_for("the job with a wrong input root to end", lambda: pnode.json(
        "GET", f"/v1/compute/jobs/{bad.get('job_id', '')}")[2].get("state") == "failed")
    bj = pnode.json("GET", f"/v1/compute/jobs/{bad.get('job_id', '')}")[2]
    check("an input whose bytes do not verify against the job's root: failed before the app "
          "ran, naming the input, the source and the roots, with no claim",
          bj.get("report", {}).get("end") == "input" and "claim" not in bj and
          "Merkle root" in bj.get("report", {}).get("error", "") and
          url["c"] in bj.get("report", {}).get("error", ""), bj.get("report"))
    rc, out, err = compute("submit-job", *knn, "0", "--ranks", "2", "--max-fee", "1",
                           "--node", url[provider], "--input",
                           "01890000-0000-7000-8000-000000000000", *wallet)
    check("an input no node holds: submit-job says so (exit 4), nothing is sent",
          rc == 4 and "no node named holds" in err, (rc, err[-300:]))

    # A client's own binary, on a node that opted in: it is an input (fetched and verified
    # like any), run in bubblewrap. The matmul app's own bytes as the binary give matmul's root.
    libexec = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(DFRPD))), "libexec")
    st, _, binput = c.put(open(os.path.join(libexec, "dfrp-app-matmul"), "rb").read())
    rc, out, err = compute("--json", "submit-job", "client", "0", "64", "3", "--ranks", "2",
                           "--max-fee", "1", "--vector", near, "--node", url[provider],
                           "--input", binput.get("shard_id", ""), "--input-from", url["c"],
                           "--wait", *wallet)
    cj = json.loads(out) if out.strip().startswith("{") else {}
    check("a client's binary (matmul's bytes) runs in bubblewrap on the provider: matmul's root",
          rc == 0 and cj.get("result_root") == sub.get("result_root") and
          "bubblewrap" in cj.get("report", {}).get("limits", ""), (rc, out[-600:], err[-400:]))
    rc, out, err = compute("submit-job", "client", "0", "64", "3", "--max-fee", "1", "--vector",
                           near, "--node", url["c"], "--input", binput.get("shard_id", ""),
                           *wallet)
    check("a node that did not opt in refuses a client's binary (exit 7, no app 'client')",
          rc == 7 and "no app 'client'" in err, (rc, err[-300:]))
    cc = shutil.which("cc")
    if cc:
        # A probe that connects to C's port on loopback: it can outside the sandbox, and
        # inside it cannot (its own network namespace has no listener: ECONNREFUSED).
        src = os.path.join(T, "probe.c")
        with open(src, "w") as f:
            f.write(PROBE_C)
        probe = os.path.join(T, "probe")
        subprocess.run([cc, "-O1", "-o", probe, src], check=True)
        c_port = url["c"].rsplit(":", 1)[1]
        outside = os.path.join(T, "probe-out")
        os.makedirs(outside)
        subprocess.run([probe, c_port], env={"DFRP_OUT_DIR": outside}, check=True)
        st, _, pinput = c.put(open(probe, "rb").read())
        rc, out, err = compute("--json", "submit-job", "client", "0", c_port, "--max-fee", "1",
                               "--vector", near, "--node", url[provider], "--input",
                               pinput.get("shard_id", ""), "--input-from", url["c"], "--wait",
                               *wallet)
        pj = json.loads(out) if out.strip().startswith("{") else {}
        rc2, _, err2 = compute("result", pj.get("job_id", ""), "-o", os.path.join(T, "probe-in"))
        inside = open(os.path.join(T, "probe-in", "rank-0.out")).read() if rc2 == 0 else ""
        outside_says = open(os.path.join(outside, "rank-0.out")).read()
        check("the client's binary has no network: the probe reaches C's port outside the "
              "sandbox and is refused inside it",
              outside_says.startswith("connect 0 ") and inside.startswith("connect -1 111"),
              (outside_says, inside, rc, err[-300:], err2[-300:]))
    else:
        print("# no C compiler here: the sandbox's network probe is not run")

    # kill -9 of A's dfrpd during a long job: its processes end with it; restarted, the job is
    # interrupted.
    seed = "7340031"  # in the command line of every process of the job (jobrun, mpirun, ranks)
    # matmul 4096 runs for minutes here: only the node's death can end it within the test.
    follow = subprocess.Popen([COMPUTE, "--json", "listen-job", "--follow", "--node", url["a"],
                               "--state", "running"], env=cenv, cwd=T, stdout=subprocess.PIPE,
                              text=True)
    follow_lines = []
    threading.Thread(target=lambda: [follow_lines.append(json.loads(line))
                                     for line in follow.stdout], daemon=True).start()
    time.sleep(1)  # its first listing (of no running job) is done before the job comes
    rc, out, err = compute("--json", "submit-job", "matmul", "4096", seed, "--ranks", "2",
                           "--max-fee", "1", "--vector", near, "--node", url["a"],
                           "--wall-seconds", "600", *wallet)
    long_job = json.loads(out).get("job_id", "") if rc == 0 else ""
    check("a long job is accepted by A", rc == 0 and long_job, (rc, err[-300:]))
    wait_for("the long job to run", lambda: a.json("GET", f"/v1/compute/jobs/{long_job}")[2]
             .get("state") == "running")
    # listen-job --follow (started before the job) printed its arrival and its start.
    wait_for("listen-job --follow to show the long job running",
             lambda: (long_job, "running") in [(e["job_id"], e["state"]) for e in follow_lines])
    follow.terminate()
    follow.wait(10)
    states = [e["state"] for e in follow_lines if e["job_id"] == long_job]
    check("listen-job --follow: one JSON line per change, the new job then running",
          states[-1] == "running" and states[0] in ("queued", "running") and
          follow_lines[0]["from"] is None, follow_lines)
    time.sleep(0.5)
    check("the job's processes were running", procs_with(seed) >= 3, procs_with(seed))
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    wait_for("the job's processes to end with dfrpd", lambda: procs_with(seed) == 0, 20)
    check("kill -9 of dfrpd: no process of the job is left", procs_with(seed) == 0)
    a2 = Daemon(aenv)
    st, _, lj = a2.json("GET", f"/v1/compute/jobs/{long_job}")
    check("restarted, A shows the job as interrupted, with no claim",
          st == 200 and lj.get("state") == "interrupted" and "claim" not in lj, lj)
    # SIGTERM to a provider's dfrpd during a job: it stops the job and itself promptly, and
    # the restarted node shows the job as interrupted.
    seed2 = "7340033"
    bnode = b if provider == "b" else a2
    burl = url["b"] if provider == "b" else a2.info["url"]
    rc, out, err = compute("--json", "submit-job", "matmul", "4096", seed2, "--ranks", "2",
                           "--max-fee", "1", "--vector", near, "--node", burl,
                           "--wall-seconds", "600", *wallet)
    job2 = json.loads(out).get("job_id", "") if rc == 0 else ""
    wait_for("the second long job to run", lambda: bnode.json(
        "GET", f"/v1/compute/jobs/{job2}")[2].get("state") == "running")
    wait_for("its ranks to start", lambda: procs_with(seed2) >= 3, 20)
    t0 = time.monotonic()
    code = bnode.stop(timeout=30)
    check("SIGTERM to dfrpd during a job: it stops within 30 s, the job's processes with it",
          code == 0 and procs_with(seed2) == 0, (code, time.monotonic() - t0, procs_with(seed2)))
    b2 = Daemon(bnode.env)
    st, _, j2 = b2.json("GET", f"/v1/compute/jobs/{job2}")
    check("restarted, the stopped job is interrupted, with no claim",
          st == 200 and j2.get("state") == "interrupted" and "claim" not in j2, j2)
    for d in (a2, b2, c) if bnode is b else (b, b2, c):
        d.stop()


if __name__ == "__main__":
    run(main)
