"""``pynetlink addr ...``: addresses (``ip addr``)."""
from __future__ import annotations

import argparse

from .common import emit, handle, operation, simple, table
from .records import address_records

def add(args: argparse.Namespace) -> None:
    """``ip addr add CIDR dev NAME [nodad]`` (IPv4 gets its broadcast)."""
    with handle(args) as h:
        h.set_interface_ip(args.name, args.cidr, nodad=args.nodad)
    emit(args, operation("set_interface_ip", name=args.name, cidr=args.cidr,
                         nodad=args.nodad or None), lambda: "")
#: ``ip addr del CIDR dev NAME``.
delete = simple("delete_address", "name", "cidr")


def show(args: argparse.Namespace) -> None:
    """``ip [-4|-6] addr show [dev NAME]``: one row per address, or JSON as
    ``ip -j`` writes it (``records.address_records``: one record per link,
    its addresses in ``addr_info``)."""
    with handle(args) as h:
        found = h.list_addresses(args.name, args.family)
        links = h.list_links()
    rows = [(a.ifindex, a.ifname, a.family, f"{a.local}/{a.prefixlen}", a.broadcast or a.address,
             a.scope, a.label) for a in found]
    emit(args, address_records(found, links, args.name, every_link=args.family is None),
         lambda: table(("index", "name", "family", "address", "brd/peer", "scope", "label"), rows))
