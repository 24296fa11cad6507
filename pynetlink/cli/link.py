"""``pynetlink link ...``: one link operation per command (``ip link``)."""
from __future__ import annotations

import argparse

from .. import netns
from .common import emit, handle, operation, simple, table
from .records import by_index, link_name, link_record


def add_veth(args: argparse.Namespace) -> None:
    """``ip link add NAME [mtu M] [master BR] [up] type veth peer name PEER [netns NS]``."""
    with handle(args) as h:
        h.create_veth_pair(args.name, args.peer, mtu=args.mtu, master=args.master, up=args.up,
                           peer_netns=args.peer_netns, addr_gen_mode=args.addrgenmode)
    emit(args, operation("create_veth_pair", name=args.name, peer=args.peer, mtu=args.mtu,
                         master=args.master, up=args.up or None, peer_netns=args.peer_netns,
                         addrgenmode=args.addrgenmode),
         lambda: "")


def add_bridge(args: argparse.Namespace) -> None:
    """``ip link add NAME [mtu M] [up] type bridge``."""
    with handle(args) as h:
        h.create_bridge(args.name, mtu=args.mtu, up=args.up)
    emit(args, operation("create_bridge", name=args.name, mtu=args.mtu, up=args.up or None),
         lambda: "")


def addrgenmode(args: argparse.Namespace) -> None:
    """``ip link set NAME addrgenmode MODE``."""
    with handle(args) as h:
        h.set_link(args.name, addr_gen_mode=args.mode)
    emit(args, operation("set_link", name=args.name, addrgenmode=args.mode), lambda: "")


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
            record = operation("set_interface_in_namespace_pid", name=args.name, pid=args.pid)
        else:
            with netns.netns_fd(args.path) as fd:
                h.set_interface_in_namespace_fd(args.name, fd)
            record = operation("set_interface_in_namespace_fd", name=args.name, path=args.path)
    emit(args, record, lambda: "")


def show(args: argparse.Namespace) -> None:
    """``ip -s -d link show [NAME]``: a table, or JSON (``records.link_record``:
    ip's keys, counters in ``stats64``); masters and peers by name either
    way, so ``show NAME`` gives the record ``show`` gives for NAME."""
    with handle(args) as h:
        found = [h.get_link(args.name)] if args.name else h.list_links()
        links = by_index(found)
        if args.name and (found[0].master or found[0].link_index):   # names them
            links = by_index(h.list_links())
    rows = [(link.index, link.name, "UP" if link.up else "DOWN", link.mtu,
             link_name(link.master, links) if link.master else "", link.address)
            for link in found]
    emit(args, [link_record(link, links) for link in found],
         lambda: table(("index", "name", "state", "mtu", "master", "address"), rows))
