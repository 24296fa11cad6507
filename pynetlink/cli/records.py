"""The command's JSON vocabulary: links, addresses and routes written the
way ``ip -j`` (iproute2 6.1) writes them, for every command that prints one.

- A key ``ip -j`` has is spelled as there, with its value in ip's form:
  ``ifindex``, ``ifname``, ``flags`` (names: "UP", "LOWER_UP"...),
  ``master`` and ``link`` (names, not indexes), ``group`` and ``table``
  (names: "default", "main"), ``stats64`` {``rx``, ``tx``}, ``addr_info``.
- What the kernel did not report is absent, not null, as in ``ip -j``.
- A link record is ``ip -j -s -d link show``'s, an address record is
  ``ip -j addr show``'s (the link, then its ``addr_info`` list) and a route
  record is ``ip -j -d route show``'s (which spells out the defaults: main
  table, "boot" protocol, "global" scope, "unicast" type), plus ``family``
  ("inet"/"inet6", as in ``addr_info``) since one listing holds both.
- Fields the library does not decode are left out rather than guessed:
  a link's ``operstate``, ``qdisc``, ``link_netnsid``; a route's ``flags``
  and ``pref``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, List, Mapping, Optional

from .._core import (IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_HOMEADDRESS, IFA_F_MANAGETEMPADDR,
                     IFA_F_MCAUTOJOIN, IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_OPTIMISTIC,
                     IFA_F_PERMANENT, IFA_F_SECONDARY, IFA_F_STABLE_PRIVACY, IFA_F_TENTATIVE,
                     IFF_BROADCAST, IFF_LOOPBACK, IFF_LOWER_UP, IFF_MULTICAST, IFF_NOARP,
                     IFF_PROMISC, IFF_RUNNING, IFF_UP)
from ..addresses import Address
from ..links import Link
from ..routes import TABLES, Route

if TYPE_CHECKING:
    from ..types import NetworkStats

#: ifi_flags bits by ip's names, in ip's order (those the core exposes;
#: any other bit set is written as hex, as ip writes a bit it cannot name).
LINK_FLAGS = (("LOOPBACK", IFF_LOOPBACK), ("BROADCAST", IFF_BROADCAST),
              ("MULTICAST", IFF_MULTICAST), ("NOARP", IFF_NOARP), ("PROMISC", IFF_PROMISC),
              ("UP", IFF_UP), ("LOWER_UP", IFF_LOWER_UP))

#: IFA_F_* bits by ip's names, in ip's order.
ADDRESS_FLAGS = (("secondary", IFA_F_SECONDARY), ("nodad", IFA_F_NODAD),
                 ("optimistic", IFA_F_OPTIMISTIC), ("dadfailed", IFA_F_DADFAILED),
                 ("home", IFA_F_HOMEADDRESS), ("deprecated", IFA_F_DEPRECATED),
                 ("tentative", IFA_F_TENTATIVE), ("permanent", IFA_F_PERMANENT),
                 ("mngtmpaddr", IFA_F_MANAGETEMPADDR), ("noprefixroute", IFA_F_NOPREFIXROUTE),
                 ("autojoin", IFA_F_MCAUTOJOIN), ("stable-privacy", IFA_F_STABLE_PRIVACY))

TABLE_NAMES = {number: name for name, number in TABLES.items()}
COUNTERS = ("bytes", "packets", "errors", "dropped")

Links = Mapping[int, Link]


def by_index(links: Iterable[Link]) -> Dict[int, Link]:
    """The links of a namespace by ifindex: what names masters and peers."""
    return {link.index: link for link in links}


def link_name(index: int, links: Links) -> str:
    """The name of link ``index``; "ifN" if it is not among ``links`` (as ip)."""
    link = links.get(index)
    return link.name if link is not None else f"if{index}"


def link_flags(flags: int, peer_down: bool = False) -> List[str]:
    """ip's flag list: NO-CARRIER (up but not running) first, then the
    bits by name, any other bit in hex, and M-DOWN when the peer is down."""
    names = ["NO-CARRIER"] if flags & IFF_UP and not flags & IFF_RUNNING else []
    rest = flags & ~IFF_RUNNING
    for name, bit in LINK_FLAGS:
        if rest & bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(f"{rest:x}")
    if peer_down:
        names.append("M-DOWN")
    return names


def group_name(group: int) -> str:
    """ip's name of a link group: "default" for 0, else the number."""
    return "default" if group == 0 else str(group)


def stats64(stats: "NetworkStats") -> dict:
    """Counters as ip's ``stats64``: {"rx": {bytes, packets, errors,
    dropped}, "tx": {...}}."""
    return {side: {k: getattr(stats, f"{side}_{k}") for k in COUNTERS} for side in ("rx", "tx")}


def _peer(link: Link, links: Links) -> Optional[Link]:
    """The link's IFLA_LINK when it is in this namespace, else None.  The
    record carries no link_netnsid, so a veth's peer counts as here only
    when it points back at this link (an index alone may name another
    namespace's link)."""
    peer = links.get(link.link_index) if link.link_index else None
    return peer if peer is not None and peer.link_index == link.index else None


def _linkinfo(link: Link) -> dict:
    """ip -d's ``linkinfo``: the kind, and a bridge port's hairpin."""
    info: dict = {"info_kind": link.kind} if link.kind else {}
    if link.hairpin is not None:
        info.update(info_slave_kind="bridge", info_slave_data={"hairpin": link.hairpin})
    return info


def link_record(link: Link, links: Links, details: bool = True) -> dict:
    """``link`` as ``ip -j -s -d link show`` writes it (``details``: with
    ``linkinfo`` and ``stats64``; without, the link part of
    ``ip -j addr show``).  ``links``: the namespace's links by index."""
    peer = _peer(link, links)
    record: dict = {"ifindex": link.index}
    if peer is not None:
        record["link"] = peer.name
    elif link.link_index:
        record["link_index"] = link.link_index
    record.update(ifname=link.name, flags=link_flags(link.flags, peer is not None and not peer.up),
                  mtu=link.mtu)
    if link.master:
        record["master"] = link_name(link.master, links)
    if link.group is not None:
        record["group"] = group_name(link.group)
    if link.txqlen:
        record["txqlen"] = link.txqlen
    if link.address:
        record["address"] = link.address
    if details and link.addr_gen_mode is not None:
        record["inet6_addr_gen_mode"] = link.addr_gen_mode
    if details and _linkinfo(link):
        record["linkinfo"] = _linkinfo(link)
    if details and link.stats is not None:
        record["stats64"] = stats64(link.stats)
    return record


def address_flags(flags: int, family: str) -> dict:
    """ip's address flags: one ``NAME: true`` per bit set, ``dynamic``
    when not permanent, ``temporary`` for an IPv6 secondary, other bits as
    ``ifa_flags`` in hex."""
    named: dict = {}
    for name, bit in ADDRESS_FLAGS:
        if bit == IFA_F_PERMANENT:
            if not flags & bit:
                named["dynamic"] = True
        elif flags & bit:
            named["temporary" if bit == IFA_F_SECONDARY and family == "inet6" else name] = True
        flags &= ~bit
    if flags:
        named["ifa_flags"] = f"{flags:02x}"
    return named


def address_info(address: Address) -> dict:
    """One entry of ``ip -j addr show``'s ``addr_info``."""
    entry: dict = {"family": address.family, "local": address.local}
    if address.address:
        entry["address"] = address.address            # the peer
    entry["prefixlen"] = address.prefixlen
    if address.broadcast:
        entry["broadcast"] = address.broadcast
    entry["scope"] = address.scope
    entry.update(address_flags(address.flags, address.family))
    if address.label:
        entry["label"] = address.label
    entry.update(valid_life_time=address.valid_life_time,
                 preferred_life_time=address.preferred_life_time)
    return entry


def address_records(found: Iterable[Address], links: Iterable[Link], name: Optional[str],
                    every_link: bool) -> List[dict]:
    """``ip -j addr show [dev NAME]``: one record per link (ip's link part,
    then its ``addr_info``), in link order; a link with no address in
    ``found`` is listed only if ``every_link`` (ip lists them unless a
    family is asked).  ``links``: every link of the namespace."""
    known = by_index(links)
    infos: Dict[int, List[dict]] = {}
    for a in found:
        infos.setdefault(a.ifindex, []).append(address_info(a))
    return [dict(link_record(link, known, details=False), addr_info=infos.get(index, []))
            for index, link in known.items()
            if name in (None, link.name) and (every_link or index in infos)]


def route_record(route: Route) -> dict:
    """``route`` as ``ip -j -d route show`` writes it, with ``family``."""
    record: dict = {"type": route.type, "family": route.family, "dst": route.dst}
    if route.gateway:
        record["gateway"] = route.gateway
    if route.dev:
        record["dev"] = route.dev
    record.update(table=TABLE_NAMES.get(route.table, str(route.table)), protocol=route.protocol,
                  scope=route.scope)
    if route.prefsrc:
        record["prefsrc"] = route.prefsrc
    if route.metric is not None:
        record["metric"] = route.metric
    return record
