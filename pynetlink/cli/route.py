"""``pynetlink route ...``: routes (``ip route``)."""
from __future__ import annotations

import argparse

from .common import emit, handle, simple, table
from .records import TABLE_NAMES, route_record

#: ``ip route add default via GATEWAY dev DEV``.
default = simple("set_default_gateway", "gateway", "dev")
#: ``ip route add DST [via GW] dev DEV``.
add = simple("add_route", "dst", "dev", "via")
#: ``ip route replace DST [via GW] dev DEV``.
replace = simple("replace_route", "dst", "dev", "via")
#: ``ip route del DST [via GW] dev DEV``.
delete = simple("delete_route", "dst", "dev", "via")


def show(args: argparse.Namespace) -> None:
    """``ip [-4|-6] route show [table T] [dev NAME]``: one row per route, or
    JSON as ``ip -j -d route show`` writes it (``records.route_record``)."""
    with handle(args) as h:
        found = h.list_routes(args.table, args.family, args.dev)
    rows = [(r.dst, r.gateway, r.dev, TABLE_NAMES.get(r.table, r.table), r.protocol, r.scope, r.type, r.metric)
            for r in found]
    emit(args, [route_record(r) for r in found],
         lambda: table(("dst", "via", "dev", "table", "proto", "scope", "type", "metric"), rows))
