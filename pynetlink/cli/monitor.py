"""``pynetlink monitor``: the kernel's notifications as they come (``ip -j
monitor``), one JSON object per line."""
from __future__ import annotations

import argparse
import json
import time
from typing import Optional

from ..errors import EventsLost
from ..events import KINDS, Event, kinds_of
from .common import handle
from .neigh import fdb_record, neighbour_record
from .records import address_info, link_record, route_record


def record(event: Event) -> dict:
    """One event as a JSON object: ``action``, ``kind``, then the object as
    ``ip -j`` writes it (``link show``, ``addr show``'s addr_info with
    ``ifindex``/``ifname``, ``route show``, ``neigh show``; ``bridge -j
    fdb show`` for a forwarding entry)."""
    head = {"action": event.action, "kind": event.kind}
    obj = event.object
    if event.kind in ("link", "bridge_port"):
        return {**head, **link_record(obj, {})}
    if event.kind == "address":
        return {**head, "ifindex": obj.ifindex, "ifname": obj.ifname, **address_info(obj)}
    if event.kind == "route":
        return {**head, **route_record(obj)}
    if event.kind == "fdb":
        return {**head, **fdb_record(obj)}
    return {**head, **neighbour_record(obj)}


def _print(data: dict) -> None:
    print(json.dumps(data), flush=True)


def monitor(args: argparse.Namespace) -> None:
    """Print every event of the kinds asked (all when none) until
    ``--count`` events or ``--timeout`` seconds; a loss (the kernel dropped
    events) is printed as ``{"action": "lost", ...}`` and reading goes on."""
    kinds = kinds_of(args.kinds or KINDS)
    count: Optional[int] = args.count
    seen = 0
    end = None if args.timeout is None else time.monotonic() + args.timeout
    with handle(args) as h, h.events(*kinds, timeout=args.timeout) as sub:
        while count is None or seen < count:
            if end is not None:             # after a loss: what is left of --timeout
                sub.timeout = max(0.0, end - time.monotonic())
            try:
                for event in sub:
                    _print(record(event))
                    seen += 1
                    if count is not None and seen >= count:
                        break
                else:
                    return                  # the timeout passed
            except EventsLost as e:
                for event in e.events:
                    _print(record(event))
                _print({"action": "lost", "errno": e.errno, "detail": e.detail})
                seen += len(e.events)

