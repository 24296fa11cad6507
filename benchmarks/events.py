#!/usr/bin/env python3
"""Event throughput: notifications decoded per second, pynetlink vs pyroute2.

In a scratch network namespace (anonymous, held by an fd, always removed),
both libraries subscribe at once to the address groups (RTNLGRP_IPV4_IFADDR
and RTNLGRP_IPV6_IFADDR): pynetlink with ``Handle(netns=fd).events("address")``,
pyroute2 with ``IPRoute(groups=...)`` opened inside the namespace and
``bind()``.  Both sockets get the same receive buffer (SO_RCVBUFFORCE), big
enough that nothing is dropped.  Each round makes the same stream of
changes — N IPv6 addresses added, then deleted (one batch each), 2N
notifications — while nobody reads, then times each library reading and
decoding its 2N queued notifications into records (pynetlink: ``Event``s
of ``Address``; pyroute2: ``ifaddrmsg`` messages from ``get()``), in
rotating order.  The result is the median events/s per library over the
rounds and the ratio pynetlink / pyroute2.  Nothing here asserts a timing.

``measure(n, rounds)`` returns the figures (benchmarks/ops.py calls it);
run as root::

    python3 benchmarks/events.py [--events N] [--rounds R] [--json PATH]
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import sys
import time
from typing import Callable, Dict, List

import pynetlink as pn

RCVBUF = 64 << 20           # room for every notification of a round, on both sockets
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def _pyroute2(fd: int):
    """A pyroute2 IPRoute bound to the address groups, its socket made in
    the namespace of ``fd`` (the thread enters it just for that)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR
    groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
    with pn.netns.entered(fd):
        ipr = IPRoute(groups=groups, rcvbuf=RCVBUF)
        ipr.bind(groups=groups)
    raw = socket.socket(fileno=os.dup(ipr.fileno()))
    try:
        raw.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    finally:
        raw.close()
    return ipr


def _read_pynetlink(sub, want: int) -> int:
    seen = 0
    deadline = time.monotonic() + 60
    while seen < want and time.monotonic() < deadline:
        seen += len(sub.drain())            # address events only: the kind subscribed
        if seen < want:
            select.select([sub], [], [], 1.0)
    return seen


def _read_pyroute2(ipr, want: int) -> int:
    seen = 0
    deadline = time.monotonic() + 60
    while seen < want and time.monotonic() < deadline:
        seen += sum(1 for m in ipr.get() if m.get("event") in ("RTM_NEWADDR", "RTM_DELADDR"))
    return seen


def _changes(h: pn.Handle, n: int, round_: int) -> None:
    """N IPv6 addresses added, then deleted: 2N address notifications."""
    cidrs = [f"2001:db8:{round_ % 0xffff:x}::{i + 1:x}/128" for i in range(n)]
    with h.batch("stop") as b:
        for cidr in cidrs:
            b.set_interface_ip("bench0", cidr, nodad=True)
    with h.batch("stop") as b:
        for cidr in cidrs:
            b.delete_address("bench0", cidr)


def _timed(read: Callable[[], int], want: int) -> float:
    start = time.perf_counter()
    seen = read()
    elapsed = time.perf_counter() - start
    if seen != want:
        raise RuntimeError(f"read {seen} address events, {want} were made")
    return want / elapsed


def measure(n: int = 1000, rounds: int = 5) -> Dict[str, object]:
    """Events/s decoded by each library (median of ``rounds``, each reading
    the 2 * ``n`` notifications of ``n`` address adds and deletes), and
    the ratio: {"events": 2n, "rounds", "pynetlink", "pyroute2",
    "ratio", "samples": {library: [events/s per round]}}."""
    samples: Dict[str, List[float]] = {"pynetlink": [], "pyroute2": []}
    with pn.netns.scratch() as fd, pn.Handle(netns=fd) as h:
        h.create_veth_pair("bench0", "bench1")
        ipr = _pyroute2(fd)
        try:
            with h.events("address", rcvbuf=RCVBUF) as sub:
                readers = {"pynetlink": lambda: _read_pynetlink(sub, 2 * n),
                           "pyroute2": lambda: _read_pyroute2(ipr, 2 * n)}
                for r in range(rounds):
                    _changes(h, n, r)
                    order = sorted(readers) if r % 2 == 0 else sorted(readers, reverse=True)
                    for name in order:
                        samples[name].append(_timed(readers[name], 2 * n))
        finally:
            ipr.close()
    mine, theirs = (statistics.median(samples[k]) for k in ("pynetlink", "pyroute2"))
    return {"events": 2 * n, "rounds": rounds, "pynetlink": mine, "pyroute2": theirs,
            "ratio": mine / theirs, "samples": samples}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=1000, metavar="N",
                   help="addresses added then deleted per round (2N events)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    figures = measure(args.events, args.rounds)
    print(f"address events decoded per second ({figures['events']} per round, "
          f"median of {figures['rounds']} rounds):")
    print(f"  pynetlink {figures['pynetlink']:>12,.0f} /s")
    print(f"  pyroute2  {figures['pyroute2']:>12,.0f} /s")
    print(f"  ratio pynetlink / pyroute2: {figures['ratio']:.1f}x")
    if args.json:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _common import run_meta, write_report
        write_report(args.json, {**run_meta(False), "events": figures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
