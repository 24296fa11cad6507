"""``pynetlink link ...``: one link operation per command (``ip link``)."""
from __future__ import annotations

import argparse

from .. import netns
from ..kinds import CENTISECONDS
from ..links import Link
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
    """``ip link add NAME [mtu M] [up] type bridge [OPTIONS]``."""
    options = _bridge_options(args)
    with handle(args) as h:
        h.create_bridge(args.name, mtu=args.mtu, up=args.up, **options)
    emit(args, operation("create_bridge", name=args.name, mtu=args.mtu, up=args.up or None,
                         **options),
         lambda: "")


BRIDGE_OPTIONS = ("vlan_filtering", "stp_state", "mcast_snooping", "ageing_time",
                  "vlan_default_pvid", "mcast_querier")


def _bridge_options(args: argparse.Namespace) -> dict:
    """The bridge options given on the command line."""
    return {key: getattr(args, key) for key in BRIDGE_OPTIONS if getattr(args, key) is not None}


def set_bridge(args: argparse.Namespace) -> None:
    """``ip link set NAME type bridge OPTIONS``."""
    options = _bridge_options(args)
    with handle(args) as h:
        h.set_bridge(args.name, **options)
    emit(args, operation("set_bridge", name=args.name, **options), lambda: "")


def _child_options(args: argparse.Namespace) -> dict:
    """A new link's own options, and the namespace it is born in."""
    options = dict(mtu=args.mtu, up=args.up, netns=args.child_netns, pid=args.child_pid)
    if getattr(args, "address", None) is not None:
        options["mac_address"] = args.address
    return options


def _add_on_parent(args: argparse.Namespace, method: str, *more: object, **kind: object) -> None:
    """A link of a kind on PARENT: ``Handle.METHOD(NAME, PARENT, *MORE, ...)``
    (a vlan's id is MORE)."""
    options = _child_options(args)
    with handle(args) as h:
        getattr(h, method)(args.name, args.parent, *more, **kind, **options)
    ids = {"id": more[0]} if more else {}
    emit(args, operation(method, name=args.name, link=args.parent, **ids, **kind, mtu=args.mtu,
                         up=args.up or None, address=getattr(args, "address", None),
                         netns=args.child_netns, pid=args.child_pid),
         lambda: "")


def add_macvlan(args: argparse.Namespace) -> None:
    """``ip link add link PARENT name NAME ... type macvlan mode MODE [nopromisc]``."""
    _add_on_parent(args, "create_macvlan", mode=args.mode, nopromisc=args.nopromisc)


def add_ipvlan(args: argparse.Namespace) -> None:
    """``ip link add link PARENT name NAME ... type ipvlan mode MODE [FLAG]``."""
    _add_on_parent(args, "create_ipvlan", mode=args.mode, flag=args.flag)


def add_vlan(args: argparse.Namespace) -> None:
    """``ip link add link PARENT name NAME ... type vlan id ID [protocol P]``."""
    _add_on_parent(args, "create_vlan", args.id, protocol=args.protocol)


def add_vxlan(args: argparse.Namespace) -> None:
    """``ip link add NAME type vxlan id VNI [local L] [remote R | group G]
    [dev D] [ttl T] [no]learning dstport PORT``."""
    options = dict(local=args.local, remote=args.remote, group=args.group, dev=args.dev,
                   dstport=args.dstport, learning=not args.nolearning, ttl=args.ttl)
    with handle(args) as h:
        h.create_vxlan(args.name, args.vni, mtu=args.mtu, up=args.up, **options)
    emit(args, operation("create_vxlan", name=args.name, id=args.vni, mtu=args.mtu,
                         up=args.up or None, **options),
         lambda: "")


def add_dummy(args: argparse.Namespace) -> None:
    """``ip link add NAME [address MAC] [mtu M] [up] type dummy``."""
    with handle(args) as h:
        h.create_dummy(args.name, mtu=args.mtu, up=args.up, mac_address=args.address)
    emit(args, operation("create_dummy", name=args.name, mtu=args.mtu, up=args.up or None,
                         address=args.address),
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
    emit(args, [_with_info(link_record(link, links), link, links) for link in found],
         lambda: table(("index", "name", "state", "mtu", "master", "address"), rows))


def _with_info(record: dict, link: Link, links: dict) -> dict:
    """``record`` with the options of the link's kind in ``linkinfo.info_data``,
    as ``ip -j -d link show`` puts them (a vxlan's ``link`` by name, a
    bridge's ``ageing_time`` in centiseconds)."""
    if link.info is None:
        return record
    info = dict(link.info)
    if info.get("link"):
        info["link"] = link_name(info["link"], links)
    if "ageing_time" in info:           # ip prints the bridge's centiseconds
        info["ageing_time"] = round(info["ageing_time"] * CENTISECONDS)
    if info.get("nopromisc") is False:  # ip prints the macvlan flag only when set
        del info["nopromisc"]
    record.setdefault("linkinfo", {"info_kind": link.kind})["info_data"] = info
    return record
