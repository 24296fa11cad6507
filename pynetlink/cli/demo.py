"""``pynetlink demo``: a bridge and N containers in the private lab (bulk
setup), one ping from each container to the bridge, every container's eth0
counters, then teardown."""
from __future__ import annotations

import argparse
import os
from typing import List, NamedTuple, Optional

from ..stats import get_stats_many
from ..types import NetworkStats
from .common import emit, table
from .lab import BRIDGE, GATEWAY, MAX_CONTAINERS, PREFIX, BulkContainers, containers, private_host
from .ping import ping
from .records import stats64


class DemoRow(NamedTuple):
    container: int
    address: str                # eth0's, "192.0.2.2/24"
    host_end: str               # the veth's host end (the state's veth_host)
    rtt_ms: Optional[float]
    stats: NetworkStats         # eth0's counters (the container's view)


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
                        None if rtt is None else rtt * 1000, s or NetworkStats())
                for i, (entry, state, rtt, s) in enumerate(zip(wired.entries, states, rtts, stats))]


def _human(rows: List[DemoRow]) -> str:
    lines = [f"{len(rows)} containers on bridge {BRIDGE} ({GATEWAY}/{PREFIX}) "
             "in a private network namespace; each pinged the bridge:", ""]
    lines.append(table(("container", "eth0 address", "host end", "ping ms", "rx packets",
                        "tx packets"),
                       [(f"c{r.container}", r.address, r.host_end,
                         "no reply" if r.rtt_ms is None else f"{r.rtt_ms:.3f}",
                         r.stats.rx_packets, r.stats.tx_packets) for r in rows]))
    lines += ["", "rx/tx: every packet eth0 sent and received since it came up (read from the",
              "host end, turned around): the ping's echo request and reply, the ARP exchange",
              "before them, and what the kernel sends of its own accord on a new link — IPv6",
              "duplicate address detection, router solicitations and MLD reports.",
              "", "torn down: nothing is left behind."]
    return "\n".join(lines)


def demo_record(row: DemoRow) -> dict:
    """One container in ``--json``: its number, eth0 in ``ip -j``'s words
    (``ifname``, ``local``/``prefixlen``, counters in ``stats64``), the
    host end as the state file names it (``veth_host``), the ping's RTT in
    ms (null: no reply)."""
    local, prefixlen = row.address.split("/")
    return {"container": row.container, "ifname": "eth0", "local": local,
            "prefixlen": int(prefixlen), "veth_host": row.host_end, "ping_ms": row.rtt_ms,
            "stats64": stats64(row.stats)}


def demo(args: argparse.Namespace) -> None:
    """The demo's table (or JSON); a runtime error if a ping got no reply."""
    rows = run_demo(args.containers)
    emit(args, [demo_record(r) for r in rows], lambda: _human(rows))
    if any(r.rtt_ms is None for r in rows):
        raise RuntimeError("a container got no reply to its ping")
