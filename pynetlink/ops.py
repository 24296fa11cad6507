"""Every mutating operation, described once as data.

An ``Op`` says what request it sends (built once the ifindexes it needs are
known), which links' indexes it makes stale, and how to undo it given the
link as it was before.  ``Handle`` runs one op at a time; ``Batch`` queues
many, pipelines them and, in a transaction, replays the undos in reverse.
Every function here validates all of its arguments before returning, so bad
input never reaches a socket.
"""
from __future__ import annotations

import os
from typing import Callable, List, Mapping, Optional

from . import _validate as v
from . import addresses, links, netns, routes
from ._core import Request
from .links import Link

Indexes = Mapping[str, int]


class Op:
    """One operation: ``build(indexes)`` gives its request once the ifindexes
    of ``needs`` are known; ``changes``: the link to read first, for undo;
    ``undo(old_link, indexes)``: the request that reverses it (or None);
    ``forgets``: names whose index is stale afterwards; ``irreversible``: why
    it cannot be undone, if it cannot; ``fds``: opened for this op, closed
    after it."""
    __slots__ = ("operation", "arguments", "interface", "build", "needs", "changes", "undo",
                 "forgets", "irreversible", "fds")

    def __init__(self, operation: str, arguments: tuple, interface: Optional[str],
                 build: Callable[[Indexes], Request], needs: tuple = (),
                 changes: Optional[str] = None,
                 undo: Optional[Callable[[Optional[Link], Indexes], Optional[Request]]] = None,
                 forgets: tuple = (), irreversible: str = "", fds: Optional[List[int]] = None):
        self.operation, self.arguments, self.interface = operation, arguments, interface
        self.build, self.needs, self.changes, self.undo = build, needs, changes, undo
        self.forgets, self.irreversible = forgets, irreversible
        self.fds: List[int] = [] if fds is None else fds

    def __repr__(self) -> str:
        return f"Op({self.operation}{self.arguments!r})"

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


def _open_target(target: netns.Target, fds: List[int]) -> int:
    """An fd for a namespace given as a path (opened now, closed with the op) or an fd."""
    if isinstance(target, bool) or not isinstance(target, (int, str, bytes)) and not hasattr(target, "__fspath__"):
        raise TypeError(f"netns must be a path or an fd, not {type(target).__name__}")
    if isinstance(target, int):
        return v.fd(target)
    fd = netns.open_netns(target)
    fds.append(fd)
    return fd


def create_veth_pair(name1: str, name2: str, *, mtu: Optional[int] = None,
                     master: Optional[str] = None, up: bool = False,
                     txqueuelen: Optional[int] = None, group: Optional[int] = None,
                     peer_mtu: Optional[int] = None, peer_netns: Optional[netns.Target] = None,
                     peer_pid: Optional[int] = None) -> Op:
    args = (name1, name2)
    options = dict(mtu=mtu, up=up, txqueuelen=txqueuelen, group=group, peer_mtu=peer_mtu,
                   peer_pid=peer_pid, arguments=args)
    if master is not None:
        v.ifname(master, "master")
    else:
        links.create_veth_pair(name1, name2, **options)          # validates
    fds: List[int] = []
    if peer_netns is not None:
        if peer_pid is not None:
            raise ValueError("give the peer's namespace as a netns (path or fd) or as a pid, not both")
        options["peer_netns_fd"] = _open_target(peer_netns, fds)
    if master is None:
        request = links.create_veth_pair(name1, name2, **options)
        build = _once(request)
    else:
        links.create_veth_pair(name1, name2, master_index=0, **options)     # validates

        def build(idx: Indexes) -> Request:
            return links.create_veth_pair(name1, name2, master_index=idx[master], **options)

    return Op("create_veth_pair", args, name1, build, needs=(master,) if master else (),
              undo=lambda old, idx: links.delete(name1), forgets=(name1, name2), fds=fds)


def create_bridge(name: str, *, mtu: Optional[int] = None, up: bool = False) -> Op:
    return Op("create_bridge", (name,), name, _once(links.create_bridge(name, mtu=mtu, up=up)),
              undo=lambda old, idx: links.delete(name), forgets=(name,))


def _once(request: Request) -> Callable[[Indexes], Request]:
    """The build of an op that needs no index: the request made (and so
    validated) when the op was, sent as it is."""
    return lambda idx: request


def set_flags(operation: str, name: str, up: bool) -> Op:
    return Op(operation, (name,), name, _once(links.set_flags(operation, name, up)),
              changes=name, undo=lambda old, idx: links.set_flags(operation, name, old.up))


def set_mtu(name: str, mtu: int) -> Op:
    return Op("set_mtu", (name, mtu), name, _once(links.set_mtu(name, mtu)), changes=name,
              undo=lambda old, idx: links.set_mtu(name, old.mtu))


def set_interface_master(name: str, master: str) -> Op:
    v.ifname(name)
    v.ifname(master, "master")
    return Op("set_interface_master", (name, master), name,
              lambda idx: links.set_master(name, master, idx[master]), needs=(master,),
              changes=name, undo=lambda old, idx: links.set_master(name, master, old.master))


def change_interface_name(old: str, new: str) -> Op:
    v.ifname(old)
    v.ifname(new, "new name")
    return Op("change_interface_name", (old, new), old,
              lambda idx: links.rename(old, new, idx[old]), needs=(old,), forgets=(old, new),
              undo=lambda was, idx: links.rename(new, old, idx[old]))


def set_interface_in_namespace_pid(name: str, pid: int) -> Op:
    return Op("set_interface_in_namespace_pid", (name, pid), name,
              _once(links.set_netns_pid(name, pid)), forgets=(name,),
              irreversible="a link moved to another namespace is not moved back")


def set_interface_in_namespace_fd(name: str, fd: int) -> Op:
    return Op("set_interface_in_namespace_fd", (name, fd), name,
              _once(links.set_netns_fd(name, fd)), forgets=(name,),
              irreversible="a link moved to another namespace is not moved back")


def set_interface_ip(name: str, raw_ip: object) -> Op:
    v.ifname(name)
    iface = addresses.parse(raw_ip)
    return Op("set_interface_ip", (name, raw_ip), name,
              lambda idx: addresses.add(name, raw_ip, iface, idx[name]), needs=(name,),
              undo=lambda old, idx: addresses.delete(name, raw_ip, iface, idx[name]))


def set_default_gateway(ip: object, iface_name: str) -> Op:
    gateway = routes.parse_gateway(ip)
    v.ifname(iface_name)
    return Op("set_default_gateway", (ip, iface_name), iface_name,
              lambda idx: routes.add_default(ip, gateway, iface_name, idx[iface_name]),
              needs=(iface_name,),
              undo=lambda old, idx: routes.delete_default(ip, gateway, iface_name, idx[iface_name]))


def add_route(dst: object, iface_name: str, gateway: object = None) -> Op:
    network, via = routes.parse_route(dst, gateway)
    v.ifname(iface_name)
    return Op("add_route", (dst, iface_name), iface_name,
              lambda idx: routes.add(dst, network, via, iface_name, idx[iface_name]),
              needs=(iface_name,),
              undo=lambda old, idx: routes.delete(dst, network, via, iface_name, idx[iface_name]))


def delete_link(name: str) -> Op:
    return Op("delete_link", (name,), name, _once(links.delete(name)), forgets=(name,),
              irreversible="a deleted link cannot be brought back")


def set_link(name: str, *, new_name: Optional[str] = None, mac_address: Optional[str] = None,
             mtu: Optional[int] = None, txqueuelen: Optional[int] = None,
             up: Optional[bool] = None, promisc: Optional[bool] = None,
             master: Optional[str] = None) -> Op:
    changes = dict(mac_address=mac_address, mtu=mtu, txqueuelen=txqueuelen, up=up,
                   promisc=promisc)
    links.set_link(name, **changes)                               # validates
    if new_name is not None:
        v.ifname(new_name, "new name")
    if master is not None:
        v.ifname(master, "master")
    needs = tuple(n for n in (name if new_name else None, master) if n)

    def build(idx: Indexes) -> Request:
        return links.set_link(name, index=idx.get(name, 0), new_name=new_name,
                              master_index=idx[master] if master else None,
                              arguments=(name,), **changes)

    def undo(old: Link, idx: Indexes) -> Request:
        given = {k: val for k, val in changes.items() if val is not None}
        return links.set_link(
            new_name or name, index=old.index, new_name=name if new_name else None,
            mac_address=old.address if "mac_address" in given else None,
            mtu=old.mtu if "mtu" in given else None,
            txqueuelen=old.txqlen if "txqueuelen" in given else None,
            up=old.up if "up" in given else None,
            promisc=old.promisc if "promisc" in given else None,
            master_index=old.master if master else None, arguments=(name,))

    return Op("set_link", (name,), name, build, needs=needs, changes=name, undo=undo,
              forgets=(name, new_name) if new_name else ())


def set_hairpin(name: str, on: bool = True) -> Op:
    return Op("set_hairpin", (name, on), name, _once(links.set_hairpin(name, on)),
              changes=name,
              undo=lambda old, idx: None if old.hairpin is None else links.set_hairpin(name, old.hairpin))
