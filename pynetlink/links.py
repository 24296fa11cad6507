"""Link requests: what each link operation sends to the kernel.

Every function validates its arguments (``ValueError``/``TypeError``,
nothing sent) and returns a ``Request`` that a ``Handle`` runs.  Links are
named by ``IFLA_IFNAME`` with ``ifi_index = 0`` wherever the kernel allows,
so most operations cost exactly one message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import _validate as v
from ._core import K, RawLink, Request, link_encoder, veth_encoder

CREATE = K.NLM_F_CREATE | K.NLM_F_EXCL


@dataclass(frozen=True)
class Link:
    """A link as the kernel reported it (``ip -d link show DEV``)."""
    index: int
    name: str
    flags: int
    mtu: int
    master: int
    group: int
    txqlen: int

    @property
    def up(self) -> bool:
        """Administratively up (``IFF_UP``)."""
        return bool(self.flags & K.IFF_UP)

    @classmethod
    def from_raw(cls, raw: RawLink) -> "Link":
        return cls(raw.index, raw.name, raw.flags, raw.mtu, raw.master, raw.group, raw.txqlen)


def create_veth_pair(name1: str, name2: str) -> Request:
    """``ip link add NAME1 type veth peer name NAME2``: RTM_NEWLINK with
    NLM_F_CREATE|NLM_F_EXCL; both ends down."""
    host = {"name": v.ifname(name1)}
    peer = {"name": v.ifname(name2, "peer name")}
    return Request("create_veth_pair", (name1, name2), name1, veth_encoder(CREATE, host, peer))


def set_flags(operation: str, name: str, up: bool) -> Request:
    """``ip link set NAME up|down``: only IFF_UP changes (ifi_change =
    IFF_UP); every other flag is kept."""
    raw = v.ifname(name)
    return Request(operation, (name,), name,
                   link_encoder(K.RTM_SETLINK, 0, name=raw, flags=K.IFF_UP if up else 0,
                                change=K.IFF_UP))


def set_mtu(name: str, mtu: int) -> Request:
    """``ip link set NAME mtu MTU``: IFLA_MTU alone, flags untouched."""
    raw, value = v.ifname(name), v.mtu(mtu)
    return Request("set_mtu", (name, mtu), name, link_encoder(K.RTM_SETLINK, 0, name=raw, mtu=value))


def set_master(name: str, master: str, master_index: int) -> Request:
    """``ip link set NAME master MASTER``: IFLA_MASTER."""
    return Request("set_interface_master", (name, master), name,
                   link_encoder(K.RTM_SETLINK, 0, name=v.ifname(name), master=master_index))


def rename(old: str, new: str, index: int) -> Request:
    """``ip link set OLD name NEW``: the link is named by index, the new
    name goes in IFLA_IFNAME."""
    return Request("change_interface_name", (old, new), old,
                   link_encoder(K.RTM_SETLINK, 0, index=index, name=v.ifname(new, "new name")))


def set_netns_pid(name: str, pid: int) -> Request:
    """``ip link set NAME netns PID``: IFLA_NET_NS_PID."""
    raw, value = v.ifname(name), v.pid(pid)
    return Request("set_interface_in_namespace_pid", (name, pid), name,
                   link_encoder(K.RTM_SETLINK, 0, name=raw, ns_pid=value))


def set_netns_fd(name: str, fd: int) -> Request:
    """``ip link set NAME netns /proc/self/fd/FD``: IFLA_NET_NS_FD."""
    raw, value = v.ifname(name), v.fd(fd)
    return Request("set_interface_in_namespace_fd", (name, fd), name,
                   link_encoder(K.RTM_SETLINK, 0, name=raw, ns_fd=value))


def delete(name: str) -> Request:
    """``ip link del NAME``: RTM_DELLINK (a veth takes its peer with it)."""
    return Request("delete_link", (name,), name, link_encoder(K.RTM_DELLINK, 0, name=v.ifname(name)))


def get(name: str, operation: str = "get_link", arguments: Optional[tuple] = None,
        stats: bool = False) -> Request:
    """``ip link show NAME``: one RTM_GETLINK for that name, never a dump."""
    mask = 0 if stats else K.RTEXT_FILTER_SKIP_STATS
    return Request(operation, (name,) if arguments is None else arguments, name,
                   link_encoder(K.RTM_GETLINK, 0, name=v.ifname(name), ext_mask=mask))
