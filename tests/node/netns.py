"""Hosts made of network namespaces, for the tests that run nodes "across machines".

A switch namespace holds a bridge; each host namespace has one veth link (eth0) to it and an
address in SUBNET.0/24 (host 0 at .1, host i at .10+i). Nothing leaves the namespaces. A test
calls `reenter(__file__, tag, hosts, subnet)` at its top: outside the namespaces (as root) it
makes them, runs the test file again inside host 0 with DFRP_NETNS_HOSTS naming the hosts'
namespaces, removes them and returns the exit code (77, which ctest reports as skipped, with the
reason, when this machine cannot make them); inside, it returns None.
"""
import os
import subprocess
import sys

SKIP = 77


def host_ip(subnet, i):
    return f"{subnet}.{1 if i == 0 else 10 + i}"


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def make_namespaces(tag, hosts, subnet):
    """The switch and the hosts; returns the namespaces' names (switch first)."""
    sw = f"{tag}sw"
    names = [f"{tag}h{i}" for i in range(hosts)]
    made = []
    try:
        for ns in [sw, *names]:
            sh("ip", "netns", "add", ns)
            made.append(ns)
        sh("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", sw, "link", "set", "br0", "up")
        for i, ns in enumerate(names):
            port = f"{tag}p{i}"
            sh("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port,
               "netns", sw)
            sh("ip", "-n", sw, "link", "set", port, "master", "br0")
            sh("ip", "-n", sw, "link", "set", port, "up")
            sh("ip", "-n", ns, "addr", "add", f"{host_ip(subnet, i)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
    except Exception:
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)
        raise
    return [sw, *names]


def reenter(test_file, tag, hosts, subnet):
    """Outside: makes the namespaces, runs `test_file` inside host 0, removes them; returns the
    exit code. Inside (DFRP_NETNS_HOSTS set): returns None."""
    if "DFRP_NETNS_HOSTS" in os.environ:
        return None
    if os.geteuid() != 0:
        print("# skipped: network namespaces need root (CAP_NET_ADMIN)")
        return SKIP
    try:
        names = make_namespaces(tag, hosts, subnet)
    except (OSError, RuntimeError) as e:
        print(f"# skipped: could not make network namespaces with veth links: {e}")
        return SKIP
    try:
        # `ip netns exec` mounts a /sys of its own: a container may allow namespaces, not that.
        probe = sh("ip", "netns", "exec", names[1], "true", check=False)
        if probe.returncode != 0:
            print(f"# skipped: cannot run a process in a network namespace: {probe.stderr.strip()}")
            return SKIP
        env = dict(os.environ, DFRP_NETNS_HOSTS=",".join(names[1:]))
        return subprocess.run(["ip", "netns", "exec", names[1], sys.executable,
                               os.path.abspath(test_file), *sys.argv[1:]], env=env).returncode
    finally:
        for ns in names:
            sh("ip", "netns", "del", ns, check=False)


def hosts():
    """Inside: the hosts' namespace names, host 0 first."""
    return os.environ["DFRP_NETNS_HOSTS"].split(",")
