"""nlwire_kinds: the reference codec's part for link kinds (macvlan, ipvlan,
vlan, vxlan, dummy, bridge options), written from the UAPI headers with
``nlwire``'s constants and builders, never from pynetlink's code: the
IFLA_INFO_DATA a request must carry, the IFLA_LINKINFO the kernel reports,
the options ``Link.info`` must then say, and the IFLA_LINKINFO that ``ip``
itself sends (captured with strace) for the kinds this kernel lacks.
"""
from __future__ import annotations

import ipaddress
import os
import re
import struct
import subprocess
from typing import Dict, List, Optional

import nlwire as w
from nlwire import C

# <linux/if_ether.h> is not among nlwire's headers: the ethertypes of 802.1Q/ad
E = w.Constants.from_files([os.path.join(w.INCLUDE_DIR, "linux/if_ether.h")])

MACVLAN_MODES = {"private": C.MACVLAN_MODE_PRIVATE, "vepa": C.MACVLAN_MODE_VEPA,
                 "bridge": C.MACVLAN_MODE_BRIDGE, "passthru": C.MACVLAN_MODE_PASSTHRU,
                 "source": C.MACVLAN_MODE_SOURCE}
IPVLAN_MODES = {"l2": C.IPVLAN_MODE_L2, "l3": C.IPVLAN_MODE_L3, "l3s": C.IPVLAN_MODE_L3S}
IPVLAN_FLAGS = {"bridge": 0, "private": C.IPVLAN_F_PRIVATE, "vepa": C.IPVLAN_F_VEPA}
VLAN_PROTOCOLS = {"802.1Q": E.ETH_P_8021Q, "802.1ad": E.ETH_P_8021AD}


def u8(t: int, value: int) -> bytes:
    return w.rtattr(t, struct.pack("=B", value))


def u16(t: int, value: int) -> bytes:
    return w.rtattr(t, struct.pack("=H", value))


def be16(t: int, value: int) -> bytes:
    return w.rtattr(t, struct.pack("!H", value))


def u32(t: int, value: int) -> bytes:
    return w.rtattr(t, struct.pack("=I", value))


def macvlan_data(mode: str, nopromisc: bool = False) -> bytes:
    data = u32(C.IFLA_MACVLAN_MODE, MACVLAN_MODES[mode])
    return data + (u16(C.IFLA_MACVLAN_FLAGS, C.MACVLAN_FLAG_NOPROMISC) if nopromisc else b"")


def ipvlan_data(mode: str, flag: Optional[str] = None) -> bytes:
    data = u16(C.IFLA_IPVLAN_MODE, IPVLAN_MODES[mode])
    return data + (u16(C.IFLA_IPVLAN_FLAGS, IPVLAN_FLAGS[flag]) if flag is not None else b"")


def vlan_data(vlan_id: int, protocol: Optional[str] = None) -> bytes:
    data = u16(C.IFLA_VLAN_ID, vlan_id)
    return data + (be16(C.IFLA_VLAN_PROTOCOL, VLAN_PROTOCOLS[protocol]) if protocol else b"")


def vxlan_attrs(vni: int, *, link: Optional[int] = None, local: Optional[str] = None,
                peer: Optional[str] = None, ttl: Optional[int] = None, learning: bool = True,
                port: int = 4789) -> Dict[int, bytes]:
    """The IFLA_INFO_DATA attributes of a vxlan, by type (their order is free)."""
    attrs = {C.IFLA_VXLAN_ID: u32(C.IFLA_VXLAN_ID, vni),
             C.IFLA_VXLAN_LEARNING: u8(C.IFLA_VXLAN_LEARNING, int(learning)),
             C.IFLA_VXLAN_PORT: be16(C.IFLA_VXLAN_PORT, port)}
    if link is not None:
        attrs[C.IFLA_VXLAN_LINK] = u32(C.IFLA_VXLAN_LINK, link)
    for address, v4, v6 in ((peer, C.IFLA_VXLAN_GROUP, C.IFLA_VXLAN_GROUP6),
                            (local, C.IFLA_VXLAN_LOCAL, C.IFLA_VXLAN_LOCAL6)):
        if address is not None:
            ip = ipaddress.ip_address(address)
            t = v4 if ip.version == 4 else v6
            attrs[t] = w.rtattr(t, ip.packed)
    if ttl is not None:
        attrs[C.IFLA_VXLAN_TTL] = u8(C.IFLA_VXLAN_TTL, ttl)
    return attrs


# bridge option -> (attribute, how it is packed, API value -> wire value)
BRIDGE = {"vlan_filtering": (C.IFLA_BR_VLAN_FILTERING, u8, int),
          "stp_state": (C.IFLA_BR_STP_STATE, u32, int),
          "mcast_snooping": (C.IFLA_BR_MCAST_SNOOPING, u8, int),
          "ageing_time": (C.IFLA_BR_AGEING_TIME, u32, lambda s: round(s * 100)),
          "vlan_default_pvid": (C.IFLA_BR_VLAN_DEFAULT_PVID, u16, int),
          "mcast_querier": (C.IFLA_BR_MCAST_QUERIER, u8, int)}


def bridge_attrs(**options) -> Dict[int, bytes]:
    """The IFLA_INFO_DATA attributes of the bridge options given, by type."""
    out = {}
    for key, value in options.items():
        attr, pack, wire = BRIDGE[key]
        out[attr] = pack(attr, wire(value))
    return out


def linkinfo(kind: bytes, data: Optional[bytes]) -> bytes:
    """IFLA_LINKINFO { IFLA_INFO_KIND kind [IFLA_INFO_DATA { data }] }."""
    body = w.str_attr(C.IFLA_INFO_KIND, kind)
    if data is not None:
        body += w.rtattr(C.IFLA_INFO_DATA, data)
    return w.rtattr(C.IFLA_LINKINFO, body)


def newlink(kind: bytes, data: bytes, index: int = 7, name: bytes = b"k0") -> bytes:
    """An RTM_NEWLINK reply for a link of ``kind`` whose IFLA_INFO_DATA is ``data``."""
    return w.newlink(1, 0, index, name=name, extra=linkinfo(kind, data))


def request_linkinfo(message: bytes) -> w.LinkInfo:
    """The IFLA_LINKINFO of one request message, strictly decoded."""
    return w.linkinfo(w.decode_one(message).attrs)


def kind_and_data(message: bytes) -> tuple:
    """(kind, IFLA_INFO_DATA payload or None, IFLA_LINK or None) of one
    RTM_NEWLINK request.  The kind's NUL is dropped: iproute2 sends
    IFLA_INFO_KIND without one, pynetlink with one, and the kernel's
    NLA_STRING takes both."""
    msg = w.decode_one(message)
    nest = msg.attrs.get(C.IFLA_LINKINFO).nested()
    data = nest.get(C.IFLA_INFO_DATA).payload if C.IFLA_INFO_DATA in nest else None
    link = msg.attrs.get(C.IFLA_LINK).u32() if C.IFLA_LINK in msg.attrs else None
    return nest.get(C.IFLA_INFO_KIND).payload.rstrip(b"\0"), data, link


def info_data_types(data: w.Attrs) -> Dict[int, bytes]:
    """An IFLA_INFO_DATA's attributes as type -> whole attribute bytes (each once)."""
    out = {}
    for a in data:
        assert a.type not in out, f"attribute {a.type} twice"
        out[a.type] = w.rtattr(a.type | a.flags, a.payload)
    return out


# -- what iproute2 sends -----------------------------------------------------------

_DUMP = re.compile(r"^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2}){1,16})")


def ip_sent(argv: List[str], netns: str) -> List[bytes]:
    """The RTM_NEWLINK messages ``ip -n NETNS ARGV`` sends (strace's dump
    of every sendmsg), whatever the kernel answers."""
    run = subprocess.run(["strace", "-f", "-qq", "-e", "trace=sendmsg", "-e", "write=all",
                          "-o", "/dev/stdout", "ip", "-n", netns, *argv],
                         capture_output=True, text=True, timeout=60)
    buffers: List[bytearray] = []
    for line in run.stdout.splitlines():
        if "bytes in buffer" in line:
            buffers.append(bytearray())
            continue
        m = _DUMP.match(line)
        if m and buffers:
            buffers[-1] += bytes.fromhex(m.group(1).replace(" ", ""))
    messages = []
    for data in buffers:
        for header, raw in w.split(bytes(data)):
            if header.type == C.RTM_NEWLINK:
                messages.append(raw)
    return messages
