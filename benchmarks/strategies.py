#!/usr/bin/env python3
"""Containers per second through libcontainer's strategies: pynetlink's
in-place Veth (the child born inside its namespace) against libcontainer v1.2.0's
create-then-move path, in one run.

Per container: ``Veth.create`` (host end on a bridge, MTU, up; child in the
container's namespace), ``Loopback.initialize`` and ``Veth.initialize``
(eth0 renamed, MTU, up, address, default route) — the container side done
from outside with ``netns=``.  Everything runs in scratch namespaces made by
``pynetlink.netns.scratch()``/``create()``, which vanish with their fds; the
machine's own network is not touched.  Rounds alternate the two paths so
that noise falls on both.  Nothing here asserts a timing.

Usage (as root):  python benchmarks/strategies.py [-n 100] [--rounds 3] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import subprocess
import time

import pynetlink as pn
from _common import run_meta, write_report

NET = pn.Network(type="veth", bridge="br0", veth_prefix="veth", address="192.0.2.2/24",
                 gateway="192.0.2.1", mtu=1450)


def add_bridge(host_fd: int) -> None:
    """br0 with 192.0.2.1/24, up, in the host namespace (iproute2; not timed)."""
    script = "ip link add br0 type bridge && ip addr add 192.0.2.1/24 dev br0 && ip link set br0 up"
    subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{host_fd}", "sh", "-c", script],
                   check=True, timeout=30)


def one_round(n: int, fast: bool) -> dict:
    """Set up n containers on one path; return the time and CPU it took."""
    with contextlib.ExitStack() as stack:
        host_fd = stack.enter_context(pn.netns.scratch())
        add_bridge(host_fd)
        stack.enter_context(pn.netns.entered(host_fd))       # the host side runs "on the host"
        containers = [stack.enter_context(pn.netns.scratch()) for _ in range(n)]
        strategy, loopback = pn.Veth(fast=fast), pn.Loopback()
        states = [pn.NetworkState() for _ in range(n)]
        cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for fd, state in zip(containers, states):
            strategy.create(NET, None, state, netns=fd)
            loopback.initialize(NET, state, netns=fd)
            strategy.initialize(NET, state, netns=fd)
        elapsed = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        check(host_fd, containers, states)
    return {"seconds": elapsed, "per_s": n / elapsed,
            "user_ms_per_container": (cpu1.ru_utime - cpu0.ru_utime) * 1000 / n,
            "sys_ms_per_container": (cpu1.ru_stime - cpu0.ru_stime) * 1000 / n}


def check(host_fd: int, containers: list, states: list) -> None:
    """Verify every container (not timed): host end on br0 and up, eth0 ready."""
    with pn.Handle(netns=host_fd) as host:
        bridge = host.link_index("br0")
        for state in states:
            link = host.get_link(state.veth_host)
            assert link.master == bridge and link.up and link.mtu == 1450, link
    for fd in containers:
        with pn.Handle(netns=fd) as c:
            eth0, lo = c.get_link("eth0"), c.get_link("lo")
            assert eth0.up and eth0.mtu == 1450 and lo.up, eth0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100, help="containers per round (default 100)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per path (default 3)")
    ap.add_argument("--quick", action="store_true", help="n=10, one round: a smoke run for CI")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    n, rounds = (10, 1) if args.quick else (args.n, args.rounds)
    results = {"in-place": [], "create-then-move": []}
    for _ in range(rounds):
        for label, fast in (("in-place", True), ("create-then-move", False)):
            results[label].append(one_round(n, fast))
    print(f"Veth.create + Loopback.initialize + Veth.initialize, n={n} containers, "
          f"{rounds} round(s) each, kernel {platform.release()}")
    print(f"{'path':<11} {'containers/s':>13} {'user ms/ctr':>12} {'sys ms/ctr':>11}")
    summary = {}
    for label, runs in results.items():
        row = {k: statistics.median(r[k] for r in runs)
               for k in ("per_s", "user_ms_per_container", "sys_ms_per_container")}
        summary[label] = row
        print(f"{label:<11} {row['per_s']:>13.1f} {row['user_ms_per_container']:>12.2f} "
              f"{row['sys_ms_per_container']:>11.2f}")
    ratio = summary["in-place"]["per_s"] / summary["create-then-move"]["per_s"]
    print(f"in-place / create-then-move: {ratio:.1f}x (median of rounds; all containers verified)")
    if args.json:
        write_report(args.json, {"meta": run_meta(args.quick), "n": n, "rounds": rounds,
                                 "runs": results, "median": summary, "ratio": ratio})


if __name__ == "__main__":
    main()
