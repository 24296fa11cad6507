"""``pynetlink link ...``: one link operation per command (``ip link``)."""
from __future__ import annotations

import argparse

from .. import Link, netns
from .common import emit, handle, simple, table


def add_veth(args: argparse.Namespace) -> None:
    """``ip link add NAME [mtu M] [master BR] [up] type veth peer name PEER [netns NS]``."""
    with handle(args) as h:
        h.create_veth_pair(args.name, args.peer, mtu=args.mtu, master=args.master, up=args.up,
                           peer_netns=args.peer_netns)
    emit(args, {"host": args.name, "peer": args.peer}, lambda: "")


def add_bridge(args: argparse.Namespace) -> None:
    """``ip link add NAME [mtu M] [up] type bridge``."""
    with handle(args) as h:
        h.create_bridge(args.name, mtu=args.mtu, up=args.up)
    emit(args, {"bridge": args.name}, lambda: "")


up = simple("interface_up", "name")
down = simple("interface_down", "name")
delete = simple("delete_link", "name")
mtu = simple("set_mtu", "name", "mtu")
master = simple("set_interface_master", "name", "bridge")
rename = simple("change_interface_name", "old", "new")


def move(args: argparse.Namespace) -> None:
    """``ip link set NAME netns PID|PATH``: into the namespace of a process
    (``--pid``) or the one at a path (``--path``)."""
    with handle(args) as h:
        if args.pid is not None:
            h.set_interface_in_namespace_pid(args.name, args.pid)
        else:
            with netns.netns_fd(args.path) as fd:
                h.set_interface_in_namespace_fd(args.name, fd)
    emit(args, {"operation": "set_netns", "name": args.name}, lambda: "")


def _link_dict(link: Link) -> dict:
    return {"index": link.index, "name": link.name, "up": link.up, "mtu": link.mtu,
            "master": link.master, "group": link.group, "txqlen": link.txqlen,
            "address": link.address, "stats": link.stats.to_dict() if link.stats else None}


def show(args: argparse.Namespace) -> None:
    """``ip -s link show [NAME]``: a table (masters by name), or JSON with counters."""
    with handle(args) as h:
        found = [h.get_link(args.name)] if args.name else h.list_links()
    names = {link.index: link.name for link in found}
    rows = [(link.index, link.name, "UP" if link.up else "DOWN", link.mtu,
             names.get(link.master, link.master or ""), link.address) for link in found]
    emit(args, [_link_dict(link) for link in found],
         lambda: table(("index", "name", "state", "mtu", "master", "address"), rows))
