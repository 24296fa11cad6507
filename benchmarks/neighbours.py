#!/usr/bin/env python3
"""Bulk forwarding entries: N MAC -> remote VTEP entries written on a vxlan
device, as an overlay's control plane writes one per remote container —
pynetlink vs ``bridge -batch`` vs pyroute2, in one run.

* pynetlink: ``Handle(netns=PATH)``, N ``add_fdb`` queued in one ``Batch``
  and run (validated, 64 requests per send, one ACK each);
* iproute2: ``bridge -n NS -batch FILE``: one process reading N
  ``fdb add MAC dev vx0 dst IP self permanent`` lines (one request and ACK
  at a time);
* pyroute2: ``IPRoute()`` opened inside the namespace, then N
  ``fdb("add", ifindex=..., lladdr=..., dst=...)`` calls (the ifindex
  looked up once).

Each contender works, each round, in a fresh scratch namespace of its own
(``ip netns add pnbench-...``, always removed), holding ``vx0`` (VNI 42,
port 4789, no learning, up) made with ``ip``.  The time is the wall time
from the first entry given to the library (or the process started) to the
last entry acknowledged; the entries are then counted with
``bridge -j fdb show dev vx0``: a contender that wrote fewer than N fails
the run.  Rounds rotate the contenders' order; the result is the median.
Absolute numbers are noisy on a shared machine, ratios less so.

Usage (as root)::

    python3 benchmarks/neighbours.py [--entries N] [--repeat R] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Callable, Dict, List, Tuple

import pynetlink as pn
from _common import dist_version, markdown_table, run_meta, write_report

Entry = Tuple[str, str]         # (MAC, remote VTEP)


def entries(n: int) -> List[Entry]:
    """N distinct MACs, spread over 500 remotes of two documentation ranges."""
    nets = ("198.51.100", "203.0.113")
    return [(f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
             f"{nets[i % 500 // 250]}.{i % 250 + 1}") for i in range(n)]


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=600).stdout


class Scratch:
    """A named scratch namespace with vx0 in it; removed on exit."""

    def __enter__(self) -> "Scratch":
        self.name = f"pnbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.path = f"/run/netns/{self.name}"
        sh("ip", "netns", "add", self.name)
        try:
            sh("ip", "-n", self.name, "link", "add", "vx0", "type", "vxlan", "id", "42",
               "dstport", "4789", "nolearning")
            sh("ip", "-n", self.name, "link", "set", "vx0", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=60)

    def count(self) -> int:
        return len(json.loads(sh("bridge", "-n", self.name, "-j", "fdb", "show", "dev", "vx0")
                              or "[]"))


def run_pynetlink(ns: Scratch, work: List[Entry]) -> float:
    with pn.Handle(netns=ns.path, timeout=30) as h:
        start = time.perf_counter()
        with h.batch() as b:
            for mac, dst in work:
                b.add_fdb(mac, "vx0", dst=dst)
        return time.perf_counter() - start


def run_bridge_batch(ns: Scratch, work: List[Entry]) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".batch") as f:
        f.writelines(f"fdb add {mac} dev vx0 dst {dst} self permanent\n" for mac, dst in work)
        f.flush()
        start = time.perf_counter()
        sh("bridge", "-n", ns.name, "-batch", f.name)
        return time.perf_counter() - start


def run_pyroute2(ns: Scratch, work: List[Entry]) -> float:
    from pyroute2 import IPRoute
    with pn.netns.entered(ns.path):
        ipr = IPRoute()
    try:
        start = time.perf_counter()
        index = ipr.link_lookup(ifname="vx0")[0]
        for mac, dst in work:
            ipr.fdb("add", ifindex=index, lladdr=mac, dst=dst)
        return time.perf_counter() - start
    finally:
        ipr.close()


CONTENDERS: Dict[str, Callable[[Scratch, List[Entry]], float]] = {
    "pynetlink (Batch of add_fdb)": run_pynetlink,
    "bridge -batch (one process)": run_bridge_batch,
    "pyroute2 (IPRoute.fdb add)": run_pyroute2,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=10_000, metavar="N")
    p.add_argument("--repeat", type=int, default=3, metavar="R")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = p.parse_args(argv)
    work = entries(args.entries)
    times: Dict[str, List[float]] = {name: [] for name in CONTENDERS}
    names = list(CONTENDERS)
    for r in range(args.repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            with Scratch() as ns:
                times[name].append(CONTENDERS[name](ns, work))
                written = ns.count()
            if written != args.entries:
                print(f"{name} wrote {written} of {args.entries} entries", file=sys.stderr)
                return 1
    base = statistics.median(times[names[0]])
    rows = []
    for name in names:
        median = statistics.median(times[name])
        rows.append([name, f"{median * 1000:.0f} ms", f"{args.entries / median:,.0f}",
                     f"{median / base:.1f}x"])
    print(f"{args.entries:,} FDB entries (MAC -> remote VTEP) on a vxlan device, median of "
          f"{args.repeat} (pyroute2 {dist_version('pyroute2')}, {sh('bridge', '-V').strip()})")
    print(markdown_table(["contender", "time", "entries/s", "vs pynetlink"], rows))
    if args.json:
        write_report(args.json, {"meta": run_meta(False), "entries": args.entries,
                                 "seconds": times})
    return 0


if __name__ == "__main__":
    sys.exit(main())
