"""Neighbours and forwarding entries: the ``Neighbour`` record, their
validation, and the messages of RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH.

One record type serves both tables the kernel keeps behind these messages,
as one ``struct ndmsg`` does (and pyroute2's ``ndmsg``, vishvananda/netlink's
``Neigh``):

- a *neighbour* (``ip neigh``: ARP for IPv4, NDP for IPv6), family "inet" or
  "inet6": the link-layer address (``lladdr``) of IP address ``dst`` on link
  ``dev``;
- a *forwarding entry* (``bridge fdb``), family "bridge": where frames to MAC
  ``lladdr`` go — out of bridge port ``dev`` (``master``: the bridge's own
  table), or, on a vxlan device (``self``: the device's table), to the
  remote VTEP ``dst`` (with ``vni``, ``port``).  The all-zeros MAC is the
  default destination of a vxlan device: one entry per remote, appended
  (``append_fdb``), floods BUM traffic to every one.

Builders take validated values (``spec_neighbour``/``spec_fdb`` validate).
"""
from __future__ import annotations

import re
from collections import namedtuple
from typing import Mapping, Optional

from . import _validate as v
from ._core import (AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, Encoder, NLM_F_APPEND, NLM_F_CREATE,
                    NLM_F_EXCL, NLM_F_REPLACE, NTF_EXT_LEARNED, NTF_MASTER, NTF_OFFLOADED,
                    NTF_PROXY, NTF_ROUTER, NTF_SELF, NTF_STICKY, NTF_USE, NUD_DELAY, NUD_FAILED,
                    NUD_INCOMPLETE, NUD_NOARP, NUD_NONE, NUD_PERMANENT, NUD_PROBE, NUD_REACHABLE,
                    NUD_STALE, RTM_DELNEIGH, RTM_NEWNEIGH, neigh_dump_encoder, neigh_msg_encoder,
                    neigh_spec)

CREATE = NLM_F_CREATE | NLM_F_EXCL
REPLACE = NLM_F_CREATE | NLM_F_REPLACE
APPEND = NLM_F_CREATE | NLM_F_APPEND

#: A neighbour's states by ``ip neigh``'s names (``nud STATE``).
NEIGH_STATES = {"permanent": NUD_PERMANENT, "noarp": NUD_NOARP, "reachable": NUD_REACHABLE,
                "stale": NUD_STALE, "delay": NUD_DELAY, "probe": NUD_PROBE,
                "failed": NUD_FAILED, "incomplete": NUD_INCOMPLETE, "none": NUD_NONE}
#: A forwarding entry's states by ``bridge fdb``'s names, with the bits it sends.
FDB_STATES = {"permanent": NUD_PERMANENT | NUD_NOARP, "static": NUD_NOARP | NUD_REACHABLE,
              "dynamic": NUD_REACHABLE}
#: NUD_* bits by ip's names, in the order ``ip -j neigh`` lists them.
STATE_BITS = (("INCOMPLETE", NUD_INCOMPLETE), ("REACHABLE", NUD_REACHABLE), ("STALE", NUD_STALE),
              ("DELAY", NUD_DELAY), ("PROBE", NUD_PROBE), ("FAILED", NUD_FAILED),
              ("NOARP", NUD_NOARP), ("PERMANENT", NUD_PERMANENT))
#: NTF_* bits by ``bridge``'s names, in the order ``bridge -j fdb`` lists them.
FLAG_BITS = (("self", NTF_SELF), ("router", NTF_ROUTER), ("extern_learn", NTF_EXT_LEARNED),
             ("offload", NTF_OFFLOADED), ("master", NTF_MASTER), ("sticky", NTF_STICKY),
             ("proxy", NTF_PROXY), ("use", NTF_USE))
FAMILY_NAMES = {AF_INET: "inet", AF_INET6: "inet6", AF_BRIDGE: "bridge"}
MAX_VNI = 2**24 - 1


class Neighbour(namedtuple("Neighbour", "family ifindex dev dst lladdr state flags vlan vni port "
                                        "master via")):
    """A neighbour or forwarding entry as the kernel reported it:
    ``family`` ("inet", "inet6" or "bridge": a forwarding entry),
    ``ifindex`` and ``dev`` (its link's index and name), ``dst`` (the IP
    address: a neighbour's own, a vxlan entry's remote VTEP; or None),
    ``lladdr`` (the MAC, "aa:bb:...", or None), ``state`` (NUD_* bits: see
    ``states``, ``fdb_state``) and ``flags`` (NTF_* bits: see
    ``flag_names``, ``router``), and of a forwarding entry ``vlan``,
    ``vni``, ``port`` (None when not said), ``master`` (the bridge's name,
    for an entry of a bridge's table) and ``via`` (the name of a vxlan
    remote's outgoing link)."""
    __slots__ = ()

    @property
    def states(self) -> list:
        """The state as ``ip -j neigh`` lists it: ["REACHABLE"], ["PERMANENT"]...
        ([]: none, as a proxy entry's)."""
        return [name for name, bit in STATE_BITS if self.state & bit]

    @property
    def fdb_state(self) -> str:
        """A forwarding entry's state as ``bridge fdb`` names it: "permanent",
        "static" or "dynamic" (``bridge`` prints "" for this last)."""
        if self.state & NUD_PERMANENT:
            return "permanent"
        return "static" if self.state & NUD_NOARP else "dynamic"

    @property
    def flag_names(self) -> list:
        """The NTF_* flags by ``bridge -j fdb``'s names: ["self"], ["master"]..."""
        return [name for name, bit in FLAG_BITS if self.flags & bit]

    @property
    def router(self) -> bool:
        """An IPv6 neighbour known to be a router (NTF_ROUTER)."""
        return bool(self.flags & NTF_ROUTER)

    @property
    def proxy(self) -> bool:
        """A proxy entry (NTF_PROXY): the link answers ARP/NDP for ``dst``."""
        return bool(self.flags & NTF_PROXY)

    @property
    def permanent(self) -> bool:
        return bool(self.state & NUD_PERMANENT)

    @classmethod
    def from_raw(cls, raw: Mapping[str, object], names: Mapping[int, str]) -> "Neighbour":
        """From a RawNeigh (``pynetlink._core._raw_neigh``: a dump's part or
        a notification's, RTM_NEWNEIGH or RTM_DELNEIGH), the links named by
        ``names`` (ifindex -> name; an index it lacks is named "ifN", as
        ``ip`` names it)."""
        family = raw["family"]
        return cls(FAMILY_NAMES.get(family, str(family)), raw["index"],
                   _name(names, raw["index"]), raw["dst"], raw["lladdr"],
                   raw["state"], raw["flags"], raw["vlan"], raw["vni"], raw["port"],
                   _name(names, raw["master"]), _name(names, raw["via"]))


def _name(names: Mapping[int, str], index: object) -> Optional[str]:
    return None if index is None else names.get(index, f"if{index}")  # type: ignore[call-overload]


# -- validation ----------------------------------------------------------------

# A validated entry on link ``dev``: ``fields`` of ``neigh_spec`` (without
# the index), and ``c``, the ``struct pn_neigh_spec`` made of them once,
# whose index is set when the message is built.
Spec = namedtuple("Spec", "dev fields c")

_LLADDR = re.compile(r"[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){0,31}")


def lladdr(value: object, what: str = "lladdr") -> bytes:
    """A link-layer address "aa:bb:cc:dd:ee:ff" ('-' also separates) of
    1 to 32 bytes, as bytes."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    if not _LLADDR.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not hex bytes like 02:42:c0:00:02:02")
    return bytes.fromhex(value.replace(":", "").replace("-", ""))


def _spec(dev: object, fields: dict) -> Spec:
    return Spec(dev, fields, neigh_spec(**fields))


def _mac(value: object) -> bytes:
    raw = lladdr(value, "mac")
    if len(raw) != 6:
        raise ValueError(f"mac {value!r} is not an Ethernet address (6 bytes)")
    return raw


def _state(value: object, states: Mapping[str, int]) -> int:
    if not isinstance(value, str):
        raise TypeError(f"state must be str, not {type(value).__name__}")
    if value not in states:
        raise ValueError(f"state must be one of {', '.join(states)}, not {value!r}")
    return states[value]


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return value


def spec_neighbour(dst: object, mac: object, dev: object, state: object = "permanent",
                   router: object = False, proxy: object = False) -> Spec:
    """``ip neigh add [proxy] DST [lladdr MAC] dev DEV nud STATE [router]``,
    checked: DST an IPv4 or IPv6 address, MAC None (as ``ip``: the kernel
    takes none in states that need none, such as noarp; a proxy entry has
    none)."""
    fields = _key_fields(dst, dev, proxy)
    fields["state"] = _state(state, NEIGH_STATES)
    if _flag(router, "router"):
        fields["flags"] |= NTF_ROUTER
    if mac is not None:
        if proxy:
            raise ValueError("a proxy entry has no lladdr: the link's own answers for DST")
        fields["lladdr"] = lladdr(mac)
    return _spec(dev, fields)


def spec_neighbour_key(dst: object, dev: object, proxy: object = False) -> Spec:
    """``ip neigh del [proxy] DST dev DEV``, checked."""
    return _spec(dev, _key_fields(dst, dev, proxy))


def _key_fields(dst: object, dev: object, proxy: object) -> dict:
    """What names a neighbour entry: its link, family, address, NTF_PROXY."""
    v.ifname(dev, "dev")
    address = v.ip(dst, "neighbour address")
    return {"family": AF_INET if address.version == 4 else AF_INET6, "dst": address.packed,
            "flags": NTF_PROXY if _flag(proxy, "proxy") else 0}


def spec_fdb(mac: object, dev: object, *, dst: object = None, vni: object = None,
             port: object = None, vlan: object = None, master: object = False,
             state: object = "permanent") -> Spec:
    """``bridge fdb add MAC dev DEV [dst IP] [vni VNI] [port PORT] [vlan VID]
    [self|master] [permanent|static|dynamic]``, checked (``state`` None: a
    deletion's key, no state)."""
    v.ifname(dev, "dev")
    fields: dict = {"family": AF_BRIDGE, "lladdr": _mac(mac),
                    "flags": NTF_MASTER if _flag(master, "master") else NTF_SELF,
                    "state": 0 if state is None else _state(state, FDB_STATES)}
    if dst is not None:
        fields["dst"] = v.ip(dst, "dst").packed
    if vni is not None:
        fields["vni"] = v.integer(vni, "vni", 0, MAX_VNI)
    if port is not None:
        fields["port"] = v.integer(port, "port", 1, 65535)
    if vlan is not None:
        fields["vlan"] = v.integer(vlan, "vlan", 1, 4094)
    return _spec(dev, fields)


def family_number(family: object) -> int:
    """A neighbour dump's family: None (both), 4 or 6."""
    if family is None:
        return AF_UNSPEC
    if isinstance(family, bool) or family not in (4, 6):
        raise ValueError(f"family must be 4, 6 or None, not {family!r}")
    return AF_INET if family == 4 else AF_INET6


# -- messages ------------------------------------------------------------------

def add(spec: Spec, index: int, nlflags: int = CREATE) -> Encoder:
    """RTM_NEWNEIGH of ``spec`` on link ``index``: ``ip neigh add`` /
    ``bridge fdb add`` (REPLACE: ``replace``, APPEND: ``bridge fdb append``)."""
    spec.c.index = index
    return neigh_msg_encoder(RTM_NEWNEIGH, nlflags, spec.c)


def delete(spec: Spec, index: int) -> Encoder:
    """RTM_DELNEIGH of the entry ``spec`` names on link ``index`` (its
    state left out, as ``ip neigh del`` and ``bridge fdb del`` leave it)."""
    if not spec.c.state:
        spec.c.index = index
        return neigh_msg_encoder(RTM_DELNEIGH, 0, spec.c)
    return neigh_msg_encoder(RTM_DELNEIGH, 0, neigh_spec(**{**spec.fields, "state": 0,
                                                            "index": index}))


def dump(family: int, index: int = 0, master: int = 0, proxy: bool = False) -> Encoder:
    """RTM_GETNEIGH with NLM_F_DUMP: ``ip neigh show [proxy]`` (AF_UNSPEC,
    AF_INET, AF_INET6) or ``bridge fdb show`` (AF_BRIDGE)."""
    return neigh_dump_encoder(family, index, master, proxy)


def shown(raw: Mapping[str, object], noarp: bool) -> bool:
    """Whether ``ip neigh show`` lists a neighbour: not one whose only state
    is NOARP (the kernel's multicast and broadcast entries) unless
    ``noarp`` (``nud all``); a proxy entry (state none) always."""
    return noarp or raw["state"] != NUD_NOARP

