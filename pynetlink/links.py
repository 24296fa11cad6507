"""Link requests: what each link operation sends to the kernel.

Every function validates its arguments (``ValueError``/``TypeError``,
nothing sent) and returns a ``Request`` that a ``Handle`` runs.  Links are
named by ``IFLA_IFNAME`` with ``ifi_index = 0`` wherever the kernel allows,
so most operations cost exactly one message.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Optional

from . import _validate as v
from ._core import K, RawLink, Request, brport_encoder, kind_encoder, link_encoder, veth_encoder

CREATE = K.NLM_F_CREATE | K.NLM_F_EXCL


class Link(namedtuple("Link", "index name flags mtu master group txqlen address hairpin stats",
                      defaults=("", None, None))):
    """A link as the kernel reported it (``ip -d link show DEV``): ``index``,
    ``name``, ``flags`` (ifi_flags), ``mtu``, ``master`` (ifindex, 0: none),
    ``group``, ``txqlen``, ``address`` (link-layer, "aa:bb:cc:dd:ee:ff"),
    ``hairpin`` (bridge ports only, else None) and ``stats`` (its own
    counters, a NetworkStats, from IFLA_STATS64)."""
    __slots__ = ()

    @property
    def up(self) -> bool:
        """Administratively up (``IFF_UP``)."""
        return bool(self.flags & K.IFF_UP)

    @property
    def promisc(self) -> bool:
        """Promiscuous mode asked for by a user (``ip link set DEV promisc on``);
        the kernel does not report in ``ifi_flags`` the promiscuity that a
        bridge or a packet socket gives its ports."""
        return bool(self.flags & K.IFF_PROMISC)

    @classmethod
    def from_raw(cls, raw: RawLink) -> "Link":
        stats = raw["stats"]
        if stats is not None:
            from .types import NetworkStats     # on first use: a CNI plugin never reads counters
            stats = NetworkStats(**stats)
        return cls(**{**raw, "stats": stats})


def _up_flags(up: Optional[bool]) -> dict:
    """ifi_flags/ifi_change for an optional admin state: only IFF_UP changes."""
    if up is None:
        return {}
    if not isinstance(up, bool):
        raise TypeError(f"up must be a bool or None, not {type(up).__name__}")
    return {"flags": K.IFF_UP if up else 0, "change": K.IFF_UP}


def _new_link_fields(fields: dict, mtu: Optional[int], up: bool) -> None:
    """A new link's MTU (if given) and admin state (up, or left down)."""
    if mtu is not None:
        fields["mtu"] = v.mtu(mtu)
    if not isinstance(up, bool):
        raise TypeError(f"up must be a bool, not {type(up).__name__}")
    if up:
        fields.update(_up_flags(True))


def create_veth_pair(name1: str, name2: str, *, mtu: Optional[int] = None,
                     master_index: Optional[int] = None, up: bool = False,
                     txqueuelen: Optional[int] = None, group: Optional[int] = None,
                     peer_mtu: Optional[int] = None, peer_netns_fd: Optional[int] = None,
                     peer_pid: Optional[int] = None, arguments: Optional[tuple] = None) -> Request:
    """``ip link add NAME1 [mtu M] [master B] [up] type veth peer name NAME2
    [mtu M] [netns NS]``: one RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL.

    The peer is born inside its namespace (no move, no RCU barrier); both
    ends are down unless ``up`` (which concerns NAME1 only).
    """
    host = {"name": v.ifname(name1)}
    peer = {"name": v.ifname(name2, "peer name")}
    _new_link_fields(host, mtu, up)
    if master_index is not None:
        host["master"] = master_index
    if txqueuelen is not None:
        host["txqlen"] = v.txqueuelen(txqueuelen)
    if group is not None:
        host["group"] = v.group(group)
    if peer_mtu is not None:
        peer["mtu"] = v.mtu(peer_mtu)
    if peer_netns_fd is not None and peer_pid is not None:
        raise ValueError("give the peer's namespace as a netns (path or fd) or as a pid, not both")
    if peer_netns_fd is not None:
        peer["ns_fd"] = v.fd(peer_netns_fd)
    if peer_pid is not None:
        peer["ns_pid"] = v.pid(peer_pid)
    return Request("create_veth_pair", (name1, name2) if arguments is None else arguments, name1,
                   veth_encoder(CREATE, host, peer))


def create_bridge(name: str, *, mtu: Optional[int] = None, up: bool = False) -> Request:
    """``ip link add NAME [mtu M] [up] type bridge``: one RTM_NEWLINK with
    NLM_F_CREATE|NLM_F_EXCL (EEXIST if NAME is taken)."""
    fields: dict = {"name": v.ifname(name)}
    _new_link_fields(fields, mtu, up)
    return Request("create_bridge", (name,), name, kind_encoder(CREATE, b"bridge", **fields))


def _promisc_flags(fields: dict, promisc: Optional[bool]) -> None:
    """Add IFF_PROMISC to the flags and change mask of ``fields`` (None:
    leave it alone).  The kernel counts promiscuity per device; this flag is
    the user's own share of it (dev->gflags), set or cleared idempotently."""
    if promisc is None:
        return
    if not isinstance(promisc, bool):
        raise TypeError(f"promisc must be a bool or None, not {type(promisc).__name__}")
    fields["flags"] = fields.get("flags", 0) | (K.IFF_PROMISC if promisc else 0)
    fields["change"] = fields.get("change", 0) | K.IFF_PROMISC


def set_link(name: str, *, index: int = 0, new_name: Optional[str] = None,
             mac_address: Optional[str] = None, mtu: Optional[int] = None,
             txqueuelen: Optional[int] = None, up: Optional[bool] = None,
             promisc: Optional[bool] = None, master_index: Optional[int] = None,
             arguments: Optional[tuple] = None) -> Request:
    """``ip link set NAME [name NEW] [address MAC] [mtu M] [txqueuelen N]
    [master M] [promisc on|off] [up|down]``: one RTM_SETLINK; the kernel
    applies the address, MTU and name before the flags.  A rename needs
    ``index``."""
    fields = {"name": v.ifname(name)}
    if new_name is not None:
        if not index:
            raise ValueError("a rename names the link by index")
        fields = {"index": index, "name": v.ifname(new_name, "new name")}
    if mac_address is not None:
        fields["address"] = v.mac(mac_address)
    if mtu is not None:
        fields["mtu"] = v.mtu(mtu)
    if txqueuelen is not None:
        fields["txqlen"] = v.txqueuelen(txqueuelen)
    if master_index is not None:
        fields["master"] = master_index
    fields.update(_up_flags(up))
    _promisc_flags(fields, promisc)
    return Request("set_link", (name,) if arguments is None else arguments, name,
                   link_encoder(K.RTM_SETLINK, 0, **fields))


def set_hairpin(name: str, on: bool) -> Request:
    """``ip link set NAME type bridge_slave hairpin on|off``: a bridge port
    option (IFLA_BRPORT_MODE); NAME must be a bridge port."""
    if not isinstance(on, bool):
        raise TypeError(f"hairpin must be a bool, not {type(on).__name__}")
    return Request("set_hairpin", (name, on), name,
                   brport_encoder(K.IFLA_BRPORT_MODE, int(on), name=v.ifname(name)))


def dump() -> Request:
    """``ip -s link show``: RTM_GETLINK with NLM_F_DUMP, every link of the namespace."""
    return Request("list_links", (), None, link_encoder(K.RTM_GETLINK, K.NLM_F_DUMP), reads=True)


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


def delete_group(group: int) -> Request:
    """``ip link delete group GROUP``: RTM_DELLINK with IFLA_GROUP and no
    name or index deletes every link of that group at once."""
    value = v.group(group)
    if value == 0:
        raise ValueError("group 0 is the default group of every link: refusing to delete it")
    return Request("delete_group", (group,), None, link_encoder(K.RTM_DELLINK, 0, group=value))


def get(name: str, operation: str = "get_link", arguments: Optional[tuple] = None) -> Request:
    """``ip -s link show NAME``: one RTM_GETLINK for that name, never a dump.
    (The reply always carries the counters: RTEXT_FILTER_SKIP_STATS only
    skips those of SR-IOV VFs.)"""
    return Request(operation, (name,) if arguments is None else arguments, name,
                   link_encoder(K.RTM_GETLINK, 0, name=v.ifname(name)), reads=True)


def index_of(name: str, operation: str, arguments: Optional[tuple] = None) -> Request:
    """The RTM_GETLINK of ``get``, for a caller that wants only the link's
    index (``reply.link == {"index": N}``): the rest is not decoded."""
    return Request(operation, (name,) if arguments is None else arguments, name,
                   link_encoder(K.RTM_GETLINK, 0, name=v.ifname(name)), index_only=True,
                   reads=True)
