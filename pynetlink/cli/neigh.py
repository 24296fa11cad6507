"""``pynetlink neigh ...`` (``ip neigh``) and ``pynetlink fdb ...``
(``bridge fdb``): neighbour and forwarding entries.

``show --json`` writes what ``ip -j neigh show`` and ``bridge -j fdb show``
write: per neighbour ``dst``, ``dev``, ``lladdr``, ``router`` and ``proxy``
(null, when set) and ``state`` (a list of ip's names); per forwarding entry ``mac``,
``ifname``, ``vlan``, ``dst``, ``port``, ``vni``, ``flags`` (bridge's names),
``master`` and ``state`` ("permanent", "static", or "" for dynamic), each
only when the kernel reported it.
"""
from __future__ import annotations

import argparse
from typing import Dict, List

from ..neighbours import Neighbour
from .common import emit, handle, operation, table

FDB_OPTIONS = ("dst", "vni", "port", "vlan")


def neighbour_record(n: Neighbour) -> Dict[str, object]:
    """One neighbour as ``ip -j neigh show`` writes it."""
    record: Dict[str, object] = {"dst": n.dst, "dev": n.dev}
    if n.lladdr is not None:
        record["lladdr"] = n.lladdr
    if n.router:
        record["router"] = None
    if n.proxy:
        record["proxy"] = None
    if n.state:
        record["state"] = n.states
    return record


def fdb_record(n: Neighbour) -> Dict[str, object]:
    """One forwarding entry as ``bridge -j fdb show`` writes it."""
    record: Dict[str, object] = {"mac": n.lladdr, "ifname": n.dev}
    for key in ("vlan", "dst", "port", "vni"):
        if getattr(n, key) is not None:
            record[key] = getattr(n, key)
    record["flags"] = n.flag_names
    if n.master is not None:
        record["master"] = n.master
    record["state"] = "" if n.fdb_state == "dynamic" else n.fdb_state
    return record


def _neighbour(args: argparse.Namespace, method: str) -> None:
    with handle(args) as h:
        getattr(h, method)(args.dst, args.lladdr, args.dev, state=args.nud, router=args.router,
                           proxy=args.proxy)
    emit(args, operation(method, dst=args.dst, lladdr=args.lladdr, dev=args.dev, state=args.nud,
                         router=args.router or None, proxy=args.proxy or None), lambda: "")


def add(args: argparse.Namespace) -> None:
    """``ip neigh add DST [lladdr MAC] dev DEV [nud STATE] [router]``."""
    _neighbour(args, "add_neighbour")


def replace(args: argparse.Namespace) -> None:
    """``ip neigh replace DST [lladdr MAC] dev DEV [nud STATE] [router]``."""
    _neighbour(args, "replace_neighbour")


def delete(args: argparse.Namespace) -> None:
    """``ip neigh del [proxy] DST dev DEV``."""
    with handle(args) as h:
        h.delete_neighbour(args.dst, args.dev, proxy=args.proxy)
    emit(args, operation("delete_neighbour", dst=args.dst, dev=args.dev, proxy=args.proxy or None),
         lambda: "")


def show(args: argparse.Namespace) -> None:
    """``ip [-4|-6] neigh show [proxy] [dev DEV] [nud all]``: one row per
    entry, or JSON as ``ip -j neigh show`` writes it."""
    with handle(args) as h:
        found = h.list_neighbours(args.dev, args.family, noarp=args.all, proxy=args.proxy)
    rows = [(n.dst, n.dev, n.lladdr, ",".join(n.states) or None,
             ",".join(f for f in ("router", "proxy") if getattr(n, f)) or None) for n in found]
    emit(args, [neighbour_record(n) for n in found],
         lambda: table(("dst", "dev", "lladdr", "state", "flags"), rows))


def _fdb_options(args: argparse.Namespace, *keys: str) -> Dict[str, object]:
    return {key: getattr(args, key) for key in keys if getattr(args, key, None) is not None}


def _fdb(args: argparse.Namespace, method: str, *keys: str) -> None:
    options = _fdb_options(args, *keys)
    with handle(args) as h:
        getattr(h, method)(args.mac, args.dev, **options)
    emit(args, operation(method, mac=args.mac, dev=args.dev, **options), lambda: "")


def fdb_add(args: argparse.Namespace) -> None:
    """``bridge fdb add MAC dev DEV [dst IP] [vni N] [port P] [vlan V] [self|master] [STATE]``."""
    _fdb(args, "add_fdb", *FDB_OPTIONS, "master", "state")


def fdb_append(args: argparse.Namespace) -> None:
    """``bridge fdb append MAC dev DEV dst IP [vni N] [port P] [STATE]``."""
    _fdb(args, "append_fdb", "dst", "vni", "port", "state")


def fdb_replace(args: argparse.Namespace) -> None:
    """``bridge fdb replace MAC dev DEV [dst IP] [vni N] [port P] [vlan V] [self|master] [STATE]``."""
    _fdb(args, "replace_fdb", *FDB_OPTIONS, "master", "state")


def fdb_delete(args: argparse.Namespace) -> None:
    """``bridge fdb del MAC dev DEV [dst IP] [vni N] [port P] [vlan V] [self|master]``."""
    _fdb(args, "delete_fdb", *FDB_OPTIONS, "master")


def fdb_show(args: argparse.Namespace) -> None:
    """``bridge fdb show [dev DEV] [br BRIDGE]``: one row per entry, or JSON
    as ``bridge -j fdb show`` writes it."""
    with handle(args) as h:
        found = h.list_fdb(args.dev, master=args.br)
    rows: List[tuple] = [(n.lladdr, n.dev, n.dst, n.vni, n.vlan, ",".join(n.flag_names),
                          n.master, n.fdb_state) for n in found]
    emit(args, [fdb_record(n) for n in found],
         lambda: table(("mac", "dev", "dst", "vni", "vlan", "flags", "master", "state"), rows))
