"""``pynetlink stats``: a container's counters, from its view (rx is what
the container received: the host end's tx)."""
from __future__ import annotations

import argparse

from .. import Handle
from ..stats import get_stats
from ..types import NetworkState
from .common import emit, table
from .records import COUNTERS
from .state import read_state


def show(args: argparse.Namespace) -> None:
    """The counters of the container whose state file is ``--state``, or
    whose veth's host end is ``--host``; JSON: libcontainer's NetworkStats
    document (``rx_bytes``...), as ``GetStats`` returns it."""
    state = read_state(args.state) if args.state else NetworkState(veth_host=args.host)
    if args.netns:
        with Handle(netns=args.netns) as h:
            stats = get_stats(state, handle=h)
    else:
        stats = get_stats(state)
    emit(args, stats.to_dict(), lambda: table(
        ("counter", "rx", "tx"),
        [(k, getattr(stats, f"rx_{k}"), getattr(stats, f"tx_{k}")) for k in COUNTERS]))
