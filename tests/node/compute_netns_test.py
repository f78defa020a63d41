"""One compute job across hosts (issue 16, "an operator with several hosts"): Open MPI ranks on
three network-namespace hosts, started by mpirun through the provider's rsh agent.

Usage: compute_netns_test.py DFRPD DFRP_STORAGE DFRP_LEDGER DFRP_WALLET DFRP_COMPUTE

Five network namespaces that this test creates and removes: a switch and four hosts on it in
10.199.8.0/24. Host h0 runs the test, the client and a verifier node V (one host, no
hostfile); host h1 runs the provider P, whose config names a hostfile (h1: 2 slots, h2: 1,
h3: 1) and an rsh agent; h2 and h3 run nothing of their own: mpirun starts Open MPI's daemon
(orted) there through the agent, as `ssh` would on real hosts. The agent enters the host's
network namespace with a copy of nsenter that holds CAP_SYS_ADMIN alone (the job user, not
root, runs mpirun and so the agent); every rank still runs as dfrp-job. The hosts share this
machine's file system, as an MPI cluster shares its job folders; h2 and h3 also get host names
of their own (a UTS namespace each), as real hosts have: Open MPI names its shared-memory
segments after the host, so two "hosts" named alike would write over each other's.

- A 4-rank knn job and a 4-rank matmul job submitted to P run across h1, h2 and h3 (the
  agent was asked for h2 and h3, each rank wrote its output), P signs the claims, `result`
  verifies every rank against them, and V's re-run on a single host gives the same result
  roots: the apps are bitwise the same however their ranks are spread.
- Open MPI's daemon on h2 killed (kill -9) mid-job: the job ends failed, with no claim and
  nothing for `result` to check (exit 4), no process of it left, and the node takes the next.
- h3's link down: a job cannot start its ranks there and fails (mpirun reports that its daemon
  could not reach it; at the latest at its wall time), with no claim; with the link up again
  the next job runs across all three hosts.

Needs root (network namespaces and the agent's capability), `ip`, `nsenter` and `setcap`
(libcap2-bin); without them it exits 77, which ctest reports as skipped, naming the reason.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import netns  # noqa: E402
from netns import sh  # noqa: E402

SUBNET = "10.199.8"
HOSTS = 4  # h0 (the test, the client, the verifier), h1 (the provider), h2 and h3 (MPI hosts)

rc = netns.reenter(__file__, f"dfrc{os.getpid() % 100000}", HOSTS, SUBNET)
if rc is not None:
    sys.exit(rc)

# Inside h0 from here on.
from harness import *  # noqa: E402,F401,F403
from ledger_daemon_test import clean_env, new_wallets, tool  # noqa: E402

WALLET, COMPUTE = sys.argv[4], sys.argv[5]
NS = netns.hosts()


def host_ip(i):
    return netns.host_ip(SUBNET, i)


UTS_MOUNTS = []


def make_agent(d):
    """The rsh agent in folder `d`: `agent HOST COMMAND...` runs COMMAND with /bin/sh in the
    namespaces of the host with that address, and logs the host. Returns (agent path, log
    path), or None and the reason when this machine cannot give nsenter the capability."""
    os.makedirs(d)
    os.chmod(d, 0o755)
    for i in (2, 3):
        uts = os.path.join(d, f"uts-h{i}")
        open(uts, "w").close()
        r = sh("unshare", f"--uts={uts}", "hostname", f"dfrc-h{i}", check=False)
        if r.returncode != 0:
            return None, f"a UTS namespace for h{i}: {r.stderr.strip()}"
        UTS_MOUNTS.append(uts)
    nsenter = shutil.which("nsenter")
    if nsenter is None or shutil.which("setcap") is None:
        return None, "nsenter or setcap is missing (util-linux, libcap2-bin)"
    capped = os.path.join(d, "nsenter")
    shutil.copy(nsenter, capped)
    shutil.chown(capped, group="dfrp-job")
    os.chmod(capped, 0o750)
    r = sh("setcap", "cap_sys_admin+ep", capped, check=False)
    if r.returncode != 0:
        return None, f"setcap cap_sys_admin on a copy of nsenter: {r.stderr.strip()}"
    log = os.path.join(d, "agent.log")
    open(log, "w").close()
    os.chmod(log, 0o666)
    cases = "".join(f"  {host_ip(i)}) set -- --net=/run/netns/{NS[i]}"
                    f"{f' --uts={d}/uts-h{i}' if i >= 2 else ''} ;;\n" for i in range(HOSTS))
    agent = os.path.join(d, "rsh")
    with open(agent, "w") as f:
        f.write("#!/bin/sh\n# dfrp's test rsh agent: AGENT HOST COMMAND...\n"
                f'host=$1\nshift\ncommand="$*"\ncase "$host" in\n{cases}'
                '  *) echo "rsh agent: no host $host" >&2; exit 255 ;;\nesac\n'
                f'echo "$host" >> {log}\n'
                f'exec {capped} "$@" -- /bin/sh -c "$command"\n')
    os.chmod(agent, 0o755)
    probe = subprocess.run(["setpriv", "--reuid=dfrp-job", "--regid=dfrp-job", "--clear-groups",
                            agent, host_ip(2), "hostname; ip -o -4 addr show dev eth0"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or host_ip(2) not in probe.stdout or "dfrc-h2" not in probe.stdout:
        return None, f"the agent cannot enter h2 as dfrp-job: {probe.stderr.strip()[-300:]}"
    open(log, "w").close()
    return agent, log


def processes_in(ns, comm):
    """Pids of processes named `comm` in network namespace `ns`."""
    want = f"net:[{os.stat(f'/run/netns/{ns}').st_ino}]"
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != comm:
                    continue
            if os.readlink(f"/proc/{pid}/ns/net") == want:
                pids.append(int(pid))
        except OSError:
            pass
    return pids


def main():
    try:
        body()
    finally:
        for uts in UTS_MOUNTS:
            sh("umount", uts, check=False)


def body():
    if os.geteuid() != 0 or sh("id", "dfrp-job", check=False).returncode != 0:
        print("# skipped: needs root and the job user dfrp-job (scripts/setup.sh)")
        sys.exit(netns.SKIP)
    os.chmod(T, 0o711)  # dfrp-job must reach the job folders
    agent, log = make_agent(os.path.join(T, "agent"))
    if agent is None:
        print(f"# skipped: {log}")
        sys.exit(netns.SKIP)
    hostfile = os.path.join(T, "hosts")
    with open(hostfile, "w") as f:
        f.write(f"{host_ip(1)} slots=2\n{host_ip(2)} slots=1\n{host_ip(3)} slots=1\n")
    os.chmod(hostfile, 0o644)

    wenv = clean_env({"DFRP_PASSPHRASE": "pw", "DFRP_KDF_PROFILE": "test"})
    near = ",".join(["1"] + ["0"] * 15)
    addr = new_wallets(WALLET, wenv, {"p": near, "v": near, "alice": near})
    policy = os.path.join(T, "economic.toml")
    with open(policy, "w") as f:
        f.write('[genesis]\nnetwork = "dfrp-compute-netns-test"\n\n'
                '[compute]\nvector_threshold = 0.8\n')

    def node(name, host, extra):
        e = store_env(name, extra={
            "WALLET": os.path.join(T, f"{name}.json"),
            "WALLET_PASSPHRASE_FILE": os.path.join(T, "pw.txt"),
            "ECONOMIC_POLICY": policy, "SCRUB_RATE": "0", "ROLES": "compute",
            "COMPUTE_SLOTS": "4", "API_ADDR": f"{host_ip(host)}:0", **extra})
        return Daemon(e, prefix=("ip", "netns", "exec", NS[host]) if host else ())

    p = node("p", 1, {"COMPUTE_HOSTFILE": hostfile, "COMPUTE_RSH_AGENT": agent})
    v = node("v", 0, {})
    check("P listens on h1's address, V on h0's",
          p.info["url"].startswith(f"http://{host_ip(1)}:") and
          v.info["url"].startswith(f"http://{host_ip(0)}:"), (p.info["url"], v.info["url"]))

    cenv = clean_env({"DFRP_PASSPHRASE": "pw", "STATE_DIR": os.path.join(T, "client")})
    wallet = ["--wallet", os.path.join(T, "alice.json")]

    def compute(*args, timeout=300):
        return tool(COMPUTE, cenv, "--policy", policy, *args, timeout=timeout)

    def submit(*app, wait=True, wall=120):
        rc, out, err = compute("--json", "submit-job", *app, "--ranks", "4", "--max-fee", "1",
                               "--vector", near, "--node", p.info["url"], "--wall-seconds",
                               str(wall), *(["--wait"] if wait else []), *wallet)
        return rc, (json.loads(out) if out.strip().startswith("{") else {}), err

    def agent_hosts():
        with open(log) as f:
            return sorted(set(f.read().split()))

    def job_of(d, job):
        return d.json("GET", f"/v1/compute/jobs/{job}")[2]

    roots = {}
    for app in (("knn", "20000", "16", "10", "32", "3"), ("matmul", "256", "7")):
        open(log, "w").close()
        rc, sub, err = submit(*app)
        job = sub.get("job_id", "")
        check(f"{app[0]} x 4 ranks on P: done, with a result root",
              rc == 0 and sub.get("state") == "done" and sub.get("provider") == addr["p"] and
              len(sub.get("result_root", "")) == 64, (rc, sub, err[-600:]))
        pj = job_of(p, job)
        check("... its ranks ran across h1, h2 and h3 (mpirun asked the agent for h2 and h3), "
              "as dfrp-job", agent_hosts() == sorted([host_ip(2), host_ip(3)]) and
              pj.get("report", {}).get("user") == "dfrp-job", (agent_hosts(), pj.get("report")))
        outdir = os.path.join(T, f"out-{app[0]}")
        rc, out, err = compute("result", job, "-o", outdir)
        check("... result: each of the 4 ranks' outputs verified against P's signed claim",
              rc == 0 and all(os.path.exists(os.path.join(outdir, f"rank-{r}.out"))
                              for r in range(4)), (rc, out[-300:], err[-300:]))
        rc, out, err = compute("--json", "verify-job", job, "--verifier", v.info["url"])
        vj = json.loads(out) if out.strip().startswith("{") else {}
        check("... V's re-run on one host gives the same result root (bitwise the same across "
              "hosts)", rc == 0 and vj.get("verified") is True and
              vj.get("recomputed_root") == sub.get("result_root"), (rc, out[-600:], err[-600:]))
        roots[app[0]] = sub.get("result_root")
    check("the two apps' roots differ (each names its own outputs)",
          roots.get("knn") != roots.get("matmul"), roots)

    # Open MPI's daemon on h2 killed mid-job: the job fails, nothing to accept or pay.
    rc, sub, err = submit("matmul", "3072", "11", wait=False)
    job = sub.get("job_id", "")
    check("a long matmul is accepted by P", rc == 0 and job, (rc, sub, err[-300:]))
    wait_for("Open MPI's daemon to run on h2", lambda: processes_in(NS[2], "orted"), 60)
    time.sleep(1)
    for pid in processes_in(NS[2], "orted"):
        os.kill(pid, signal.SIGKILL)
    wait_for("the job to end", lambda: job_of(p, job).get("state") not in ("queued", "running"),
             90)
    pj = job_of(p, job)
    check("kill -9 of orted on h2 mid-job: the job failed, with no claim",
          pj.get("state") == "failed" and "claim" not in pj, pj)
    rc, out, err = compute("result", job)
    check("... and `result` has nothing to check (exit 4: the job failed, there is no result)",
          rc == 4 and "failed" in err, (rc, out[-300:], err[-300:]))
    wait_for("no process of the job to be left on h2 or h3",
             lambda: not any(processes_in(NS[h], c) for h in (2, 3)
                             for c in ("orted", "dfrp-app-matmul")), 30)

    # h3's link down: the ranks there cannot join; the job fails.
    sh("ip", "netns", "exec", NS[3], "ip", "link", "set", "eth0", "down")
    rc, sub, err = submit("matmul", "128", "5", wait=False, wall=15)
    job = sub.get("job_id", "")
    check("with h3 cut off, a job is still accepted (P cannot know before it runs)",
          rc == 0 and job, (rc, sub, err[-300:]))
    wait_for("the job to end", lambda: job_of(p, job).get("state") not in ("queued", "running"),
             60)
    pj = job_of(p, job)
    check("... it fails (Open MPI cannot start its daemon there), with no claim",
          pj.get("state") == "failed" and "claim" not in pj and
          pj.get("report", {}).get("end") in ("failed", "wall-time"), pj)
    sh("ip", "netns", "exec", NS[3], "ip", "link", "set", "eth0", "up")
    open(log, "w").close()
    rc, sub, err = submit("matmul", "256", "7")
    check("h3 back: the same matmul runs across the three hosts again, to the same root",
          rc == 0 and sub.get("state") == "done" and sub.get("result_root") == roots["matmul"] and
          agent_hosts() == sorted([host_ip(2), host_ip(3)]), (rc, sub, err[-600:]))
    for d in (p, v):
        d.stop()


if __name__ == "__main__":
    run(main)
