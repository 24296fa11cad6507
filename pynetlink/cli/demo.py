"""``pynetlink demo``: a bridge and N containers in the private lab (bulk
setup), one ping from each container to the bridge, every container's eth0
counters, then teardown."""
from __future__ import annotations

import argparse
import os
from typing import List, NamedTuple, Optional

from ..stats import get_stats_many
from .common import emit, table
from .lab import BRIDGE, GATEWAY, MAX_CONTAINERS, PREFIX, BulkContainers, containers, private_host
from .ping import ping


class DemoRow(NamedTuple):
    container: int
    address: str
    host_end: str
    rtt_ms: Optional[float]
    rx_packets: int
    tx_packets: int


def run_demo(count: int) -> List[DemoRow]:
    """Set up ``count`` containers, ping the bridge from each, read their
    counters, tear everything down; one row per container."""
    if not 1 <= count <= MAX_CONTAINERS:
        raise ValueError(f"demo: 1 to {MAX_CONTAINERS} containers (one /24), not {count}")
    with private_host(), containers(count) as fds, BulkContainers(fds) as wired:
        done = wired.setup()
        rtts = [ping(fd, GATEWAY, ident=os.getpid() + i) for i, fd in enumerate(fds)]
        states = done.states                        # every one: setup raised if any failed
        stats = get_stats_many(states)
        return [DemoRow(i, entry.network.address, state.veth_host,
                        None if rtt is None else rtt * 1000,
                        s.rx_packets if s else 0, s.tx_packets if s else 0)
                for i, (entry, state, rtt, s) in enumerate(zip(wired.entries, states, rtts, stats))]


def _human(rows: List[DemoRow]) -> str:
    lines = [f"{len(rows)} containers on bridge {BRIDGE} ({GATEWAY}/{PREFIX}) "
             "in a private network namespace; each pinged the bridge:", ""]
    lines.append(table(("container", "eth0 address", "host end", "ping ms", "rx packets",
                        "tx packets"),
                       [(f"c{r.container}", r.address, r.host_end,
                         "no reply" if r.rtt_ms is None else f"{r.rtt_ms:.3f}",
                         r.rx_packets, r.tx_packets) for r in rows]))
    lines += ["", "rx/tx: every packet eth0 sent and received since it came up (read from the",
              "host end, turned around): the ping's echo request and reply, the ARP exchange",
              "before them, and what the kernel sends of its own accord on a new link — IPv6",
              "duplicate address detection, router solicitations and MLD reports.",
              "", "torn down: nothing is left behind."]
    return "\n".join(lines)


def demo(args: argparse.Namespace) -> None:
    """The demo's table (or JSON); a runtime error if a ping got no reply."""
    rows = run_demo(args.containers)
    emit(args, [{"container": r.container, "eth0": r.address, "host_end": r.host_end,
                 "ping_ms": r.rtt_ms, "rx_packets": r.rx_packets, "tx_packets": r.tx_packets}
                for r in rows], lambda: _human(rows))
    if any(r.rtt_ms is None for r in rows):
        raise RuntimeError("a container got no reply to its ping")
