"""What the kernel drops along with a link change, recorded so that a
transaction can put it back.

When a link goes down the kernel deletes every route out of it (IPv4 and
IPv6) and its IPv6 addresses (unless ``keep_addr_on_down`` is set); an MTU
below 1280 takes IPv6 off the link, below 68 IPv4 (and with the addresses
go routes elsewhere that use them as source); a new master (a VRF, a
bond) does the same.  Undoing the change brings the link back, not these.
So before such a change a transaction ``record``s the link's addresses and
the routes that depend on it; a rollback sends ``restore``'s requests after
the link's own undo, and ``missing`` then says what is still not back.

The kernel's own routes (protocol "kernel": connected prefixes, local and
broadcast routes, fe80::/64, ff00::/8) come back by themselves with the
link and its addresses, so they are neither re-added nor compared.  What
cannot be made again as it was — a route with metrics, several next hops,
an encapsulation, a nexthop object, an expiry or a source prefix; an IPv6
address the kernel made with a lifetime (autoconfigured, temporary) —
``record`` reports as ``unrestorable``, and the transaction refuses the
change before it is made.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Dict, List, NamedTuple, Optional

from . import routes
from ._core import (AF_INET6, IFA_F_HOMEADDRESS, IFA_F_MANAGETEMPADDR, IFA_F_MCAUTOJOIN,
                    IFA_F_NODAD, IFA_F_NOPREFIXROUTE, IFA_F_PERMANENT, IFA_F_SECONDARY,
                    RTM_NEWADDR, RTM_NEWROUTE, RTNH_F_ONLINK, RTPROT_KERNEL, Encoder,
                    addr_encoder, route_encoder)
from .addresses import CREATE, Address
from .routes import Route

# Address flags a caller sets (IFA_FLAGS), as opposed to the kernel's state
# (tentative, deprecated, dadfailed, permanent...).
SETTABLE = (IFA_F_NODAD | IFA_F_NOPREFIXROUTE | IFA_F_MANAGETEMPADDR | IFA_F_MCAUTOJOIN
            | IFA_F_HOMEADDRESS)
IFA_F_TEMPORARY = IFA_F_SECONDARY       # one bit: "secondary" in IPv4, "temporary" in IPv6

Raw = Dict[str, Any]


class Snapshot(NamedTuple):
    """A link's addresses and the routes depending on it, before a change:
    ``addresses``/``routes`` are put back and checked, ``kept_only`` are
    only checked (IPv4 addresses with a lifetime: the kernel keeps IPv4
    addresses when a link goes down), ``unrestorable`` says what could not
    be put back."""
    ifindex: int
    name: str
    addresses: List[Raw]
    routes: List[Raw]
    kept_only: List[Raw]
    unrestorable: List[str]


def record(index: int, name: str, addrs: List[Raw], rts: List[Raw]) -> Snapshot:
    """What of the dumps ``addrs`` and ``rts`` (raw, whole namespace)
    depends on link ``index`` called ``name``."""
    mine = [a for a in addrs if a["index"] == index]
    restorable, kept_only, unrestorable = [], [], []
    for a in mine:
        if _restorable_address(a):
            restorable.append(a)
        elif a["family"] == AF_INET6:
            unrestorable.append(f"address {describe_address(a, name)} (made by the kernel, "
                                "with a lifetime)")
        else:
            kept_only.append(a)
    sources = {a["local"] or a["address"] for a in mine}
    depending = []
    for r in rts:
        if r["protocol"] == RTPROT_KERNEL or r["flags"] & routes.CLONED:
            continue
        if r["multipath"] and not r["oif"]:
            unrestorable.append(f"route {describe_route(r)} (several next hops, which may "
                                f"pass through {name})")
        elif r["oif"] == index or (r["prefsrc"] is not None and r["prefsrc"] in sources):
            if r["unkept"] or r["tos"] or r["src_len"]:
                unrestorable.append(f"route {describe_route(r, name)} (metrics, encapsulation, "
                                    "a nexthop object, an expiry, TOS or a source prefix)")
            else:
                depending.append(r)
    return Snapshot(index, name, restorable, depending, kept_only, unrestorable)


def _restorable_address(a: Raw) -> bool:
    if a["family"] == AF_INET6 and a["flags"] & IFA_F_TEMPORARY:
        return False
    return bool(a["flags"] & IFA_F_PERMANENT)


def restore(snap: Snapshot) -> List[Encoder]:
    """The RTM_NEWADDRs then RTM_NEWROUTEs that put back what ``snap``
    recorded (with NLM_F_EXCL: EEXIST says it is there already)."""
    return ([_address(a, snap.name) for a in snap.addresses]
            + [_route(r) for r in snap.routes])


def missing(snap: Snapshot, addrs: List[Raw], rts: List[Raw]) -> List[str]:
    """What ``snap`` recorded that the dumps ``addrs`` and ``rts`` (taken
    after the rollback) do not have, each as ``ip`` would show it."""
    have_addrs = {_address_key(a) for a in addrs}
    have_routes = {_route_key(r) for r in rts}
    lost = [f"address {describe_address(a, snap.name)}"
            for a in snap.addresses + snap.kept_only if _address_key(a) not in have_addrs]
    lost += [f"route {describe_route(r, snap.name)}"
             for r in snap.routes if _route_key(r) not in have_routes]
    return lost


# -- what is compared -------------------------------------------------------------------

def _address_key(a: Raw) -> tuple:
    """An address as the caller set it: not its DAD or lifetime state."""
    return (a["index"], a["family"], a["local"], a["address"], a["prefixlen"], a["broadcast"],
            a["scope"], a["label"], a["flags"] & SETTABLE)


def _route_key(r: Raw) -> tuple:
    """A route as it was added: not its next hop's live state (linkdown...)."""
    return (r["family"], r["dst"], r["dst_len"], r["gateway"], r["oif"], r["table"],
            r["protocol"], r["scope"], r["type"], r["priority"], r["prefsrc"],
            r["flags"] & RTNH_F_ONLINK)


def describe_address(a: Raw, name: str) -> str:
    address = Address.from_raw(a, name)
    peer = f" peer {address.address}" if address.address else ""
    return f"{address.local}/{address.prefixlen}{peer} dev {name}"


def describe_route(r: Raw, name: Optional[str] = None) -> str:
    """The route as ``ip route show table all`` prints it, roughly."""
    route = Route.from_raw(r, name)
    text = route.dst
    if route.gateway:
        text += f" via {route.gateway}"
    if route.dev:
        text += f" dev {route.dev}"
    table = {v: k for k, v in routes.TABLES.items()}.get(route.table, str(route.table))
    text += f" table {table} proto {route.protocol}"
    return text + (f" metric {route.metric}" if route.metric is not None else "")


# -- the requests that put them back ---------------------------------------------------

def _packed(text: object) -> Optional[bytes]:
    return None if text is None else ipaddress.ip_address(str(text)).packed


def _address(a: Raw, name: str) -> Encoder:
    local = a["local"] if a["local"] is not None else a["address"]
    peer = a["address"] if a["local"] is not None and a["address"] != a["local"] else None
    label = a["label"] if a["label"] not in (None, name) else None
    return addr_encoder(RTM_NEWADDR, CREATE, index=a["index"], family=a["family"],
                        prefixlen=a["prefixlen"], local=_packed(local) or b"",
                        broadcast=_packed(a["broadcast"]), scope=a["scope"],
                        flags=a["flags"] & SETTABLE, peer=_packed(peer), label=label)


def _route(r: Raw) -> Encoder:
    return route_encoder(RTM_NEWROUTE, CREATE, family=r["family"], dst=_packed(r["dst"]),
                         dst_len=r["dst_len"], gateway=_packed(r["gateway"]), oif=r["oif"],
                         table=r["table"], protocol=r["protocol"], scope=r["scope"],
                         rtype=r["type"], priority=r["priority"], prefsrc=_packed(r["prefsrc"]),
                         flags=r["flags"] & RTNH_F_ONLINK)
