"""Links: the ``Link`` record, and the messages each link operation sends.

The message builders take values already validated (the ``*_fields``
helpers validate: ``ValueError``/``TypeError``, nothing sent) and return an
encoder for one rtnetlink message; ``pynetlink.ops`` wraps them with the
operation's name and arguments.  Links are named by ``IFLA_IFNAME`` with
``ifi_index = 0`` wherever the kernel allows, so most operations cost
exactly one message.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Optional

from . import _validate as v
from . import kinds
from ._core import (ADDR_GEN_MODES, IFF_PROMISC, IFF_UP, IFLA_BRPORT_MODE, NLM_F_CREATE, NLM_F_DUMP,
                    NLM_F_EXCL, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK, Encoder, RawLink,
                    brport_encoder, kind_encoder, link_encoder, veth_encoder)

CREATE = NLM_F_CREATE | NLM_F_EXCL

Fields = dict       # link_spec fields: name (bytes), mtu, master, group, ...


_MODE_NAMES = {number: name for name, number in ADDR_GEN_MODES.items()}


class Link(namedtuple("Link", "index name flags mtu master group txqlen address hairpin stats "
                              "kind link_index addr_gen_mode info",
                      defaults=("", None, None, "", 0, None, None))):
    """A link as the kernel reported it (``ip -d link show DEV``): ``index``,
    ``name``, ``flags`` (ifi_flags), ``mtu``, ``master`` (ifindex, 0: none),
    ``group``, ``txqlen``, ``address`` (link-layer, "aa:bb:cc:dd:ee:ff"),
    ``hairpin`` (bridge ports only, else None), ``stats`` (its own
    counters, a NetworkStats, from IFLA_STATS64), ``kind`` ("veth",
    "bridge", ...; "" for a device without one, such as ``lo``) and
    ``link_index`` (``ip``'s "link_index": a veth's peer's ifindex, in the
    peer's namespace; 0: none) and ``addr_gen_mode`` (``ip -d``'s
    "addrgenmode": how the kernel makes the link's IPv6 link-local address,
    "eui64", "none", "stable_secret" or "random"; None when the link has no
    IPv6 at all) and ``info`` (the options of its kind, keyed as ``ip -j -d``
    keys ``linkinfo.info_data``: see ``kinds.decode_info``; None for a kind
    without any this library decodes).  A link made on a parent (macvlan,
    ipvlan, vlan) has the parent's ifindex in ``link_index``."""
    __slots__ = ()

    @property
    def up(self) -> bool:
        """Administratively up (``IFF_UP``)."""
        return bool(self.flags & IFF_UP)

    @property
    def promisc(self) -> bool:
        """Promiscuous mode asked for by a user (``ip link set DEV promisc on``);
        the kernel does not report in ``ifi_flags`` the promiscuity that a
        bridge or a packet socket gives its ports."""
        return bool(self.flags & IFF_PROMISC)

    @classmethod
    def from_raw(cls, raw: RawLink) -> "Link":
        stats = raw["stats"]
        if stats is not None:
            from .types import NetworkStats     # on first use: a CNI plugin never reads counters
            stats = NetworkStats(**stats)       # type: ignore[arg-type]
        mode = raw.get("addr_gen_mode")
        fields = {**raw, "stats": stats,
                  "addr_gen_mode": None if mode is None else _MODE_NAMES.get(mode, str(mode))}
        data = fields.pop("info_data", None)
        if data:
            fields["info"] = kinds.decode_info(raw["kind"], data)   # type: ignore[arg-type]
        return cls(**fields)


# -- validation: caller values to link_spec fields -------------------------------

def _up_flags(up: Optional[bool]) -> Fields:
    """ifi_flags/ifi_change for an optional admin state: only IFF_UP changes."""
    if up is None:
        return {}
    if not isinstance(up, bool):
        raise TypeError(f"up must be a bool or None, not {type(up).__name__}")
    return {"flags": IFF_UP if up else 0, "change": IFF_UP}


def _promisc_flags(fields: Fields, promisc: Optional[bool]) -> None:
    """Add IFF_PROMISC to the flags and change mask of ``fields`` (None:
    leave it alone).  The kernel counts promiscuity per device; this flag is
    the user's own share of it (dev->gflags), set or cleared idempotently."""
    if promisc is None:
        return
    if not isinstance(promisc, bool):
        raise TypeError(f"promisc must be a bool or None, not {type(promisc).__name__}")
    fields["flags"] = fields.get("flags", 0) | (IFF_PROMISC if promisc else 0)
    fields["change"] = fields.get("change", 0) | IFF_PROMISC


def new_link_fields(name: str, mtu: Optional[int], up: bool, what: str = "interface name") -> Fields:
    """A new link's name, MTU (if given) and admin state (up, or left down)."""
    fields: Fields = {"name": v.ifname(name, what)}
    if mtu is not None:
        fields["mtu"] = v.mtu(mtu)
    if not isinstance(up, bool):
        raise TypeError(f"up must be a bool, not {type(up).__name__}")
    if up:
        fields.update(_up_flags(True))
    return fields


def veth_fields(name1: str, name2: str, *, mtu: Optional[int] = None, up: bool = False,
                txqueuelen: Optional[int] = None, group: Optional[int] = None,
                peer_mtu: Optional[int] = None, peer_ns_fd: Optional[int] = None,
                peer_pid: Optional[int] = None) -> tuple:
    """(host, peer) fields of a veth pair: NAME1 with ``mtu``, ``up``,
    ``txqueuelen``, ``group``; NAME2 with ``peer_mtu`` and its namespace
    (``peer_ns_fd`` or ``peer_pid``).  The host's master is added by the
    caller once its index is known."""
    host = new_link_fields(name1, mtu, up)
    peer = new_link_fields(name2, peer_mtu, False, "peer name")
    if txqueuelen is not None:
        host["txqlen"] = v.txqueuelen(txqueuelen)
    if group is not None:
        host["group"] = v.group(group)
    if peer_ns_fd is not None and peer_pid is not None:
        raise ValueError("give the peer's namespace as a netns (path or fd) or as a pid, not both")
    if peer_ns_fd is not None:
        peer["ns_fd"] = v.fd(peer_ns_fd)
    if peer_pid is not None:
        peer["ns_pid"] = v.pid(peer_pid)
    return host, peer


def check_addr_gen_mode(mode: object) -> int:
    """The kernel's number for an IPv6 link-local generation mode named as
    ``ip link set DEV addrgenmode MODE`` names it."""
    if not isinstance(mode, str):
        raise TypeError(f"addr_gen_mode must be a str, not {type(mode).__name__}")
    number = ADDR_GEN_MODES.get(mode)
    if number is None:
        raise ValueError(f"addr_gen_mode must be one of {', '.join(ADDR_GEN_MODES)}, not {mode!r}")
    return number


def change_fields(name: str, *, mac_address: Optional[str] = None, mtu: Optional[int] = None,
                  txqueuelen: Optional[int] = None, up: Optional[bool] = None,
                  promisc: Optional[bool] = None, addr_gen_mode: Optional[str] = None) -> Fields:
    """The fields of an RTM_SETLINK that changes only what is given."""
    fields: Fields = {"name": v.ifname(name)}
    if mac_address is not None:
        fields["address"] = v.mac(mac_address)
    if mtu is not None:
        fields["mtu"] = v.mtu(mtu)
    if txqueuelen is not None:
        fields["txqlen"] = v.txqueuelen(txqueuelen)
    if addr_gen_mode is not None:
        fields["addr_gen_mode"] = check_addr_gen_mode(addr_gen_mode)
    fields.update(_up_flags(up))
    _promisc_flags(fields, promisc)
    return fields


def check_hairpin(on: object) -> bool:
    if not isinstance(on, bool):
        raise TypeError(f"hairpin must be a bool, not {type(on).__name__}")
    return on


def check_group(group: object) -> int:
    """A link group that may be deleted: not 0, every link's default group."""
    value = v.group(group)
    if value == 0:
        raise ValueError("group 0 is the default group of every link: refusing to delete it")
    return value


# -- messages ----------------------------------------------------------------------

def create_veth_pair(host: Fields, peer: Fields) -> Encoder:
    """``ip link add NAME1 ... type veth peer name NAME2 ...``: one
    RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL.  The peer is born inside its
    namespace (no move, no RCU barrier); both ends are down unless up."""
    return veth_encoder(CREATE, host, peer)


def create_bridge(fields: Fields) -> Encoder:
    """``ip link add NAME [mtu M] [up] type bridge``: one RTM_NEWLINK with
    NLM_F_CREATE|NLM_F_EXCL (EEXIST if NAME is taken)."""
    return kind_encoder(CREATE, b"bridge", **fields)


def set_link(fields: Fields) -> Encoder:
    """``ip link set NAME [name NEW] [address MAC] [mtu M] [txqueuelen N]
    [master M] [addrgenmode MODE] [promisc on|off] [up|down]``: one
    RTM_SETLINK; the kernel applies the address, MTU and name before the
    flags, the IPv6 link-local generation mode after them.  A rename names
    the link by ``index`` and carries the new name."""
    return link_encoder(RTM_SETLINK, 0, **fields)


def set_flags(name: str, up: bool) -> Encoder:
    """``ip link set NAME up|down``: only IFF_UP changes (ifi_change =
    IFF_UP); every other flag is kept."""
    return set_link({"name": v.ifname(name), **_up_flags(up)})


def set_addr_gen_mode(name: str, mode: str) -> Encoder:
    """``ip link set NAME addrgenmode MODE``: IFLA_AF_SPEC/AF_INET6 alone.
    It acts when the link next comes up with carrier: set "none" before
    then and the link gets no IPv6 link-local address, so it sends no DAD,
    router solicitation or MLD report (the kernel refuses the attribute in
    the request that creates a link)."""
    return set_link({"name": v.ifname(name), "addr_gen_mode": check_addr_gen_mode(mode)})


def set_mtu(name: str, mtu: int) -> Encoder:
    """``ip link set NAME mtu MTU``: IFLA_MTU alone, flags untouched."""
    return set_link({"name": v.ifname(name), "mtu": v.mtu(mtu)})


def set_master(name: str, master_index: int) -> Encoder:
    """``ip link set NAME master MASTER``: IFLA_MASTER (0 releases)."""
    return set_link({"name": v.ifname(name), "master": master_index})


def rename(index: int, new: str) -> Encoder:
    """``ip link set OLD name NEW``: the link is named by index, the new
    name goes in IFLA_IFNAME."""
    return set_link({"index": index, "name": v.ifname(new, "new name")})


def set_netns_pid(name: str, pid: int) -> Encoder:
    """``ip link set NAME netns PID``: IFLA_NET_NS_PID."""
    return set_link({"name": v.ifname(name), "ns_pid": v.pid(pid)})


def set_netns_fd(name: str, fd: int) -> Encoder:
    """``ip link set NAME netns /proc/self/fd/FD``: IFLA_NET_NS_FD."""
    return set_link({"name": v.ifname(name), "ns_fd": v.fd(fd)})


def set_hairpin(name: str, on: bool) -> Encoder:
    """``ip link set NAME type bridge_slave hairpin on|off``: a bridge port
    option (IFLA_BRPORT_MODE); NAME must be a bridge port."""
    return brport_encoder(IFLA_BRPORT_MODE, int(check_hairpin(on)), name=v.ifname(name))


def delete(name: str) -> Encoder:
    """``ip link del NAME``: RTM_DELLINK (a veth takes its peer with it)."""
    return link_encoder(RTM_DELLINK, 0, name=v.ifname(name))


def delete_group(group: int) -> Encoder:
    """``ip link delete group GROUP``: RTM_DELLINK with IFLA_GROUP and no
    name or index deletes every link of that group at once."""
    return link_encoder(RTM_DELLINK, 0, group=check_group(group))


def get(name: str) -> Encoder:
    """``ip -s link show NAME``: one RTM_GETLINK for that name, never a dump.
    (The reply always carries the counters: RTEXT_FILTER_SKIP_STATS only
    skips those of SR-IOV VFs.)"""
    return link_encoder(RTM_GETLINK, 0, name=v.ifname(name))


def dump() -> Encoder:
    """``ip -s link show``: RTM_GETLINK with NLM_F_DUMP, every link of the namespace."""
    return link_encoder(RTM_GETLINK, NLM_F_DUMP)
