"""Link kinds with options of their own: macvlan, ipvlan, vlan, vxlan,
dummy, and the bridge's options — validation, messages, and the decoding
of what the kernel reports of them.

A kind's options travel in IFLA_LINKINFO/IFLA_INFO_DATA as a list of
``KindAttr`` (attribute type, wire format, value), encoded by the C core
(csrc/kinds.c); every attribute number comes from the kernel headers.
The ``*_options`` functions validate (``ValueError``/``TypeError``,
nothing sent) and return those lists; ``decode_info`` turns a reply's
IFLA_INFO_DATA into the mapping ``Link.info``, its keys named as ``ip -j
-d link show`` names them in ``linkinfo.info_data``.
"""
from __future__ import annotations

import ipaddress
import math
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from . import _validate as v
from ._core import (ATTR_BE16, ATTR_BYTES, ATTR_U8, ATTR_U16, ATTR_U32, IFF_UP,
                    IFLA_BR_AGEING_TIME, IFLA_BR_MCAST_QUERIER, IFLA_BR_MCAST_SNOOPING,
                    IFLA_BR_STP_STATE, IFLA_BR_VLAN_DEFAULT_PVID, IFLA_BR_VLAN_FILTERING,
                    IFLA_IPVLAN_FLAGS, IFLA_IPVLAN_MODE, IFLA_MACVLAN_FLAGS, IFLA_MACVLAN_MODE,
                    IFLA_VLAN_ID, IFLA_VLAN_PROTOCOL, IFLA_VXLAN_GROUP, IFLA_VXLAN_GROUP6,
                    IFLA_VXLAN_ID, IFLA_VXLAN_LEARNING, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL,
                    IFLA_VXLAN_LOCAL6, IFLA_VXLAN_PORT, IFLA_VXLAN_TTL, IPVLAN_FLAGS, IPVLAN_MODES,
                    MACVLAN_FLAGS, MACVLAN_MODES, NLM_F_CREATE, NLM_F_EXCL, VLAN_PROTOCOLS, Encoder,
                    KindAttr, RawInfoData, kind_data_encoder)

CREATE = NLM_F_CREATE | NLM_F_EXCL
Options = List[KindAttr]
Fields = Dict[str, Any]     # link_spec fields, as links.Fields

VLAN_ID_MAX = 4094          # 802.1Q's 12-bit VID: 0 and 4095 are reserved
VNI_MAX = (1 << 24) - 1     # a VXLAN network identifier has 24 bits
IANA_VXLAN_PORT = 4789      # RFC 7348's port; the kernel's own default is Linux's older 8472
CENTISECONDS = 100          # the bridge's timers are clock_t: USER_HZ ticks a second


# -- validation --------------------------------------------------------------------

def _choice(value: object, names: Mapping[str, int], what: str) -> int:
    """The number of the name ``value`` among ``names``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if value not in names:
        raise ValueError(f"{what} must be one of {', '.join(names)}, not {value!r}")
    return names[value]


def _flag(value: object, what: str) -> int:
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be a bool, not {type(value).__name__}")
    return int(value)


def child_fields(name: str, *, mtu: Optional[int], up: bool, mac_address: Optional[str] = None,
                 ns_pid: Optional[int] = None) -> Fields:
    """The link_spec fields of a new link on a parent (or of a dummy): its
    name, MTU, admin state, MAC address, and the pid of the namespace it is
    born in.  The parent's index (``link``) and a namespace fd are added by
    the caller."""
    fields: Fields = {"name": v.ifname(name)}
    if mtu is not None:
        fields["mtu"] = v.mtu(mtu)
    if _flag(up, "up"):
        fields.update(flags=IFF_UP, change=IFF_UP)
    if mac_address is not None:
        fields["address"] = v.mac(mac_address)
    if ns_pid is not None:
        fields["ns_pid"] = v.pid(ns_pid)
    return fields


def macvlan_options(mode: str, nopromisc: bool = False) -> Options:
    """IFLA_MACVLAN_MODE (u32), and IFLA_MACVLAN_FLAGS (u16) when
    ``nopromisc``: ``mode MODE [nopromisc]``."""
    options: Options = [(IFLA_MACVLAN_MODE, ATTR_U32, _choice(mode, MACVLAN_MODES, "macvlan mode"))]
    if _flag(nopromisc, "nopromisc"):
        if mode != "passthru":              # the kernel takes it and ignores it; ip refuses it
            raise ValueError("nopromisc is a passthru mode's option")
        options.append((IFLA_MACVLAN_FLAGS, ATTR_U16, MACVLAN_FLAGS["nopromisc"]))
    return options


def ipvlan_options(mode: str, flag: Optional[str] = None) -> Options:
    """IFLA_IPVLAN_MODE (u16), and IFLA_IPVLAN_FLAGS (u16) when ``flag``
    is given: ``mode MODE [bridge|private|vepa]``, in ip's order."""
    options: Options = [(IFLA_IPVLAN_MODE, ATTR_U16, _choice(mode, IPVLAN_MODES, "ipvlan mode"))]
    if flag is not None:
        options.append((IFLA_IPVLAN_FLAGS, ATTR_U16, _choice(flag, IPVLAN_FLAGS, "ipvlan flag")))
    return options


def vlan_options(vlan_id: int, protocol: Optional[str] = None) -> Options:
    """IFLA_VLAN_ID (u16), and IFLA_VLAN_PROTOCOL (be16) when ``protocol``
    is given: ``id ID [protocol 802.1Q|802.1ad]``, in ip's order."""
    options: Options = [(IFLA_VLAN_ID, ATTR_U16, v.integer(vlan_id, "vlan id", 1, VLAN_ID_MAX))]
    if protocol is not None:
        options.append((IFLA_VLAN_PROTOCOL, ATTR_BE16,
                        _choice(protocol, VLAN_PROTOCOLS, "vlan protocol")))
    return options


def vxlan_options(vni: int, *, local: Optional[str] = None, remote: Optional[str] = None,
                  group: Optional[str] = None, dev: Optional[str] = None,
                  dstport: int = IANA_VXLAN_PORT, learning: bool = True,
                  ttl: Optional[int] = None) -> Options:
    """The options of ``ip link add NAME type vxlan id VNI [local L] [remote
    R | group G dev D] dstport PORT [no]learning [ttl T]``, in ip's order,
    but for IFLA_VXLAN_LINK (``dev``), which the caller puts first once its
    index is known.  IPv4 addresses go in IFLA_VXLAN_GROUP/LOCAL, IPv6 in
    GROUP6/LOCAL6 (remote and group share the attribute: a multicast address
    is a group)."""
    options: Options = [(IFLA_VXLAN_ID, ATTR_U32, v.integer(vni, "vni", 0, VNI_MAX))]
    if remote is not None and group is not None:
        raise ValueError("give a vxlan remote or a group, not both")
    if group is not None and dev is None:
        raise ValueError("a vxlan multicast group needs dev (the link to join it on)")
    if dev is not None:
        v.ifname(dev, "dev")
    family = None
    for what, value, multicast in (("remote", remote, False), ("group", group, True)):
        if value is not None:
            peer = v.ip(value, what)
            if peer.is_multicast != multicast:
                raise ValueError(f"vxlan {what} {value!r} must {'' if multicast else 'not '}be "
                                 "a multicast address")
            family = peer.version
            options.append((IFLA_VXLAN_GROUP if family == 4 else IFLA_VXLAN_GROUP6, ATTR_BYTES,
                            peer.packed))
    if local is not None:
        here = v.ip(local, "local")
        if family is not None and here.version != family:
            raise ValueError("vxlan local and remote/group must be of one family")
        options.append((IFLA_VXLAN_LOCAL if here.version == 4 else IFLA_VXLAN_LOCAL6, ATTR_BYTES,
                        here.packed))
    if ttl is not None:
        options.append((IFLA_VXLAN_TTL, ATTR_U8, v.integer(ttl, "ttl", 0, 255)))
    options.append((IFLA_VXLAN_LEARNING, ATTR_U8, _flag(learning, "learning")))
    options.append((IFLA_VXLAN_PORT, ATTR_BE16, v.integer(dstport, "dstport", 0, 65535)))
    return options


def vxlan_link(index: int) -> KindAttr:
    """IFLA_VXLAN_LINK: the underlay link, by its ifindex (``dev D``)."""
    return (IFLA_VXLAN_LINK, ATTR_U32, index)


def _ageing_time(seconds: object) -> int:
    """Seconds (int or float) as the centiseconds the kernel takes."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"ageing_time must be seconds (int or float), not {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"ageing_time must be a finite number of seconds, not {seconds!r}")
    ticks = round(seconds * CENTISECONDS)
    if not 0 <= ticks <= 0xFFFFFFFF:
        raise ValueError(f"ageing_time {seconds!r} is out of range [0, {0xFFFFFFFF / CENTISECONDS}]")
    return ticks


def _stp_state(value: object) -> int:
    """On/off (bool), or the number the kernel reports (0 off, 1 kernel STP, 2 user STP)."""
    if isinstance(value, bool):
        return int(value)
    return v.integer(value, "stp_state", 0, 2)


# Each bridge option: its attribute, wire format, validation (API -> wire)
# and decoding (wire -> API).  The kernel applies them in its own order and
# stops at the first it refuses (those before stay applied).
_BRIDGE: Dict[str, Tuple[int, int, Callable[[object], int], Callable[[int], Any]]] = {
    "vlan_filtering": (IFLA_BR_VLAN_FILTERING, ATTR_U8,
                       lambda x: _flag(x, "vlan_filtering"), bool),
    "stp_state": (IFLA_BR_STP_STATE, ATTR_U32, _stp_state, int),
    "mcast_snooping": (IFLA_BR_MCAST_SNOOPING, ATTR_U8, lambda x: _flag(x, "mcast_snooping"), bool),
    "ageing_time": (IFLA_BR_AGEING_TIME, ATTR_U32, _ageing_time, lambda t: t / CENTISECONDS),
    "vlan_default_pvid": (IFLA_BR_VLAN_DEFAULT_PVID, ATTR_U16,
                          lambda x: v.integer(x, "vlan_default_pvid", 0, VLAN_ID_MAX), int),
    "mcast_querier": (IFLA_BR_MCAST_QUERIER, ATTR_U8, lambda x: _flag(x, "mcast_querier"), bool),
}
BRIDGE_OPTIONS = tuple(_BRIDGE)


def bridge_options(**given: object) -> Options:
    """The bridge options given (None: left alone), in BRIDGE_OPTIONS'
    order: ``vlan_filtering`` (bool), ``stp_state`` (bool, or 0/1/2),
    ``mcast_snooping`` (bool), ``ageing_time`` (seconds; the kernel takes
    centiseconds), ``vlan_default_pvid`` (0 to 4094; 0: none),
    ``mcast_querier`` (bool)."""
    unknown = set(given) - set(_BRIDGE)
    if unknown:
        raise TypeError(f"unknown bridge options: {', '.join(sorted(unknown))}")
    return [(attr, wire, check(given[key])) for key, (attr, wire, check, _) in _BRIDGE.items()
            if given.get(key) is not None]


# -- messages ----------------------------------------------------------------------

def create(kind: bytes, fields: Fields, options: Options) -> Encoder:
    """``ip link add NAME [link PARENT] ... type KIND OPTIONS``: one
    RTM_NEWLINK with NLM_F_CREATE|NLM_F_EXCL (EEXIST if NAME is taken;
    EOPNOTSUPP if the kernel has no such kind)."""
    return kind_data_encoder(CREATE, kind, options, **fields)


def change(kind: bytes, name: str, options: Options) -> Encoder:
    """``ip link set NAME type KIND OPTIONS``: RTM_NEWLINK without
    NLM_F_CREATE, the link named by IFLA_IFNAME."""
    return kind_data_encoder(0, kind, options, name=v.ifname(name))


# -- what the kernel reports -------------------------------------------------------

def _names(numbers: Mapping[str, int]) -> Dict[int, str]:
    return {number: name for name, number in numbers.items()}


_MACVLAN_MODE_NAMES = _names(MACVLAN_MODES)
_IPVLAN_MODE_NAMES = _names(IPVLAN_MODES)
_IPVLAN_FLAG_NAMES = _names(IPVLAN_FLAGS)
_VLAN_PROTOCOL_NAMES = _names(VLAN_PROTOCOLS)


def _name(names: Mapping[int, str], number: int) -> str:
    """A number's name, or the number as text when this library has none."""
    return names.get(number, str(number))


# How one attribute of a kind's IFLA_INFO_DATA is read: its key, and the
# value from the payload (bytes) or, for a number, its native value (None
# when the payload is not 1, 2 or 4 bytes long: then it is skipped).
_Decoder = Tuple[str, Callable[[Optional[int], bytes], Any]]


def _number(convert: Callable[[int], Any]) -> Callable[[Optional[int], bytes], Any]:
    return lambda number, payload: None if number is None else convert(number)


def _address_of(number: Optional[int], payload: bytes) -> Optional[str]:
    return str(ipaddress.ip_address(payload)) if len(payload) in (4, 16) else None


def _identity(number: int) -> int:
    return number


def _be16(number: int) -> int:
    """A u16 read in native order that was sent in network order (a port, an ethertype)."""
    return int.from_bytes(number.to_bytes(2, sys.byteorder), "big")


_SKIP: _Decoder = ("", lambda number, payload: None)
_DECODERS: Dict[str, Dict[int, _Decoder]] = {
    "macvlan": {IFLA_MACVLAN_MODE: ("mode", _number(lambda n: _name(_MACVLAN_MODE_NAMES, n))),
                IFLA_MACVLAN_FLAGS: ("nopromisc",
                                     _number(lambda n: bool(n & MACVLAN_FLAGS["nopromisc"])))},
    "ipvlan": {IFLA_IPVLAN_MODE: ("mode", _number(lambda n: _name(_IPVLAN_MODE_NAMES, n))),
               IFLA_IPVLAN_FLAGS: ("flags", _number(lambda n: _name(_IPVLAN_FLAG_NAMES, n)))},
    "vlan": {IFLA_VLAN_PROTOCOL: ("protocol", _number(
                 lambda n: _name(_VLAN_PROTOCOL_NAMES, _be16(n)))),
             IFLA_VLAN_ID: ("id", _number(_identity))},
    "vxlan": {IFLA_VXLAN_ID: ("id", _number(_identity)),
              IFLA_VXLAN_GROUP: ("remote", _address_of), IFLA_VXLAN_GROUP6: ("remote6", _address_of),
              IFLA_VXLAN_LOCAL: ("local", _address_of), IFLA_VXLAN_LOCAL6: ("local6", _address_of),
              IFLA_VXLAN_LINK: ("link", _number(_identity)),
              IFLA_VXLAN_PORT: ("port", _number(_be16)),
              IFLA_VXLAN_LEARNING: ("learning", _number(bool)),
              IFLA_VXLAN_TTL: ("ttl", _number(_identity))},
    "bridge": {attr: (key, _number(back)) for key, (attr, _, _, back) in _BRIDGE.items()},
}


def decode_info(kind: str, data: Optional[RawInfoData]) -> Optional[Dict[str, Any]]:
    """The options of a link of ``kind`` from its IFLA_INFO_DATA, keyed as
    ``ip -j -d link show`` keys ``linkinfo.info_data`` (macvlan: mode,
    nopromisc; ipvlan: mode, flags; vlan: protocol, id; vxlan: id,
    remote or group (a multicast address), local (remote6, group6, local6
    for IPv6), link (an ifindex), port, learning, ttl; bridge: vlan_filtering, stp_state, mcast_snooping,
    ageing_time (in seconds, where ip prints centiseconds),
    vlan_default_pvid, mcast_querier); None for a kind this library does
    not decode, or a link without options."""
    decoders = _DECODERS.get(kind)
    if decoders is None or not data:
        return None
    info: Dict[str, Any] = {"nopromisc": False} if kind == "macvlan" else {}  # flags: when set
    for attr_type, number, payload in data:
        key, decode = decoders.get(attr_type, _SKIP)
        value = decode(number, payload)
        if value is None:
            continue
        if key.startswith("remote") and ipaddress.ip_address(payload).is_multicast:
            key = key.replace("remote", "group")
        info[key] = value
    return info


def bridge_restore(old: Optional[Mapping[str, Any]], given: Mapping[str, object]) -> Options:
    """The options that put back the values ``old`` (a bridge's
    ``Link.info``) had for the options in ``given``."""
    if old is None:
        return []
    return bridge_options(**{key: old[key] for key, value in given.items()
                             if value is not None and key in old})
