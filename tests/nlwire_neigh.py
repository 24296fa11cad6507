"""nlwire_neigh: the independent codec (``nlwire``) extended to neighbour
messages (RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH, ``<linux/neighbour.h>``),
for tests.  Written from the UAPI headers, never from pynetlink's C core:
constants and ``struct ndmsg`` / ``struct nda_cacheinfo`` layouts are read
out of the headers by nlwire's own readers.

* ``decode`` reads one message strictly (every length, alignment and
  padding byte checked): its header, ``Ndmsg`` and attributes.
* ``newneigh`` builds what the kernel sends (``neigh_fill_info()``,
  ``fdb_fill_info()``, ``vxlan_fdb_info()``), from attributes in any order.
* ``read_neigh`` reads a message as a receiver does (``strict=False``: the
  last attribute of a type wins, one too short for its type is skipped):
  what a decoder must give, for judging it on any bytes.
"""
from __future__ import annotations

import os
import socket
import struct
from typing import NamedTuple, Optional, Sequence, Tuple

import nlwire as w

C = w.Constants.from_files(w._header_paths() + [os.path.join(w.INCLUDE_DIR, "linux/neighbour.h")])
_NEIGH_H = [os.path.join(w.INCLUDE_DIR, "linux/neighbour.h")]
NDMSG = struct.Struct("=" + "".join(c for _, c in w.header_struct("ndmsg", _NEIGH_H)))
NDA_CACHEINFO = struct.Struct("=" + "".join(c for _, c in w.header_struct("nda_cacheinfo",
                                                                          _NEIGH_H)))
AF_BRIDGE = socket.AF_BRIDGE
NEIGH_TYPES = frozenset((C.RTM_NEWNEIGH, C.RTM_DELNEIGH, C.RTM_GETNEIGH))
# The fixed-size attributes, by their payload's struct format: u16s, u32s.
U16_ATTRS = {C.NDA_VLAN: "=H", C.NDA_PORT: "!H"}          # NDA_PORT is __be16
U32_ATTRS = (C.NDA_VNI, C.NDA_SRC_VNI, C.NDA_IFINDEX, C.NDA_MASTER, C.NDA_PROBES,
             C.NDA_FLAGS_EXT, C.NDA_NH_ID)
CACHEINFO_MIN = 12                                         # confirmed, used, updated


class Ndmsg(NamedTuple):
    family: int
    pad1: int
    pad2: int
    ifindex: int
    state: int
    flags: int
    type: int


def ndmsg(family: int = socket.AF_INET, ifindex: int = 0, state: int = 0, flags: int = 0,
          type_: int = 0) -> bytes:
    return NDMSG.pack(family, 0, 0, ifindex, state, flags, type_)


def decode(buf: bytes) -> Tuple[w.Header, Ndmsg, w.Attrs]:
    """One neighbour message, strictly: exactly one, its ndmsg whole and its
    padding zero, attributes filling the rest exactly."""
    [(h, raw)] = list(w.split(buf))
    if h.type not in NEIGH_TYPES:
        raise w.WireError(f"message type {h.type} is not a neighbour message")
    body = raw[w.NLMSG_HDRLEN:]
    if len(body) < NDMSG.size:
        raise w.WireError(f"{len(body)} bytes cannot hold an ndmsg")
    fixed = Ndmsg(*NDMSG.unpack_from(body))
    if fixed.pad1 or fixed.pad2:
        raise w.WireError("ndmsg padding is not zero")
    return h, fixed, w.parse_attrs(body[w.align(NDMSG.size):])


def newneigh(seq: int, pid: int, fixed: bytes, attrs: Sequence[bytes],
             msg_type: int = 0, flags: int = 0) -> bytes:
    """An RTM_NEWNEIGH (or ``msg_type``) with the family header ``fixed``
    and the attributes ``attrs`` (``nlwire.rtattr`` bytes) in that order."""
    return w.nlmsg(msg_type or C.RTM_NEWNEIGH, flags, seq, pid,
                   fixed.ljust(w.align(len(fixed)), b"\0") + b"".join(attrs))


class NeighView(NamedTuple):
    """What a receiver reads of one neighbour message."""
    type: int
    family: int
    index: int
    state: int
    flags: int
    ndm_type: int
    dst: Optional[bytes]
    lladdr: Optional[bytes]
    u16s: dict                  # NDA_VLAN / NDA_PORT -> value (host order)
    u32s: dict                  # each of U32_ATTRS present -> value
    cacheinfo: Optional[Tuple[int, int, int]]


def read_neigh(msg: bytes) -> NeighView:
    """The message at the start of ``msg`` (header included; bytes past its
    nlmsg_len are not its own) read as a receiver reads it; WireError where
    the kernel's own parser would refuse it."""
    if len(msg) < w.NLMSG_HDRLEN:
        raise w.WireError(f"{len(msg)} bytes cannot hold a header")
    length = w.NLMSGHDR.unpack_from(msg)[0]
    [(h, raw)] = list(w.split(msg[:length], strict=False))
    if h.type not in (C.RTM_NEWNEIGH, C.RTM_DELNEIGH):
        raise w.WireError(f"message type {h.type} is not RTM_NEWNEIGH/RTM_DELNEIGH")
    body = raw[w.NLMSG_HDRLEN:]
    if len(body) < NDMSG.size:
        raise w.WireError(f"{len(body)} bytes cannot hold an ndmsg")
    fixed = Ndmsg(*NDMSG.unpack_from(body))
    attrs = w.parse_attrs(body[w.align(NDMSG.size):], strict=False)
    attrs = w.Attrs(a for a in attrs if a.type <= C.NDA_MAX)
    dst = w._ip_read(w.last(attrs, C.NDA_DST))
    ll = w.last(attrs, C.NDA_LLADDR)
    lladdr = ll.payload if ll is not None and 0 < len(ll.payload) <= w.MAX_ADDR_LEN else None
    u16s = {t: struct.unpack_from(f, a.payload)[0] for t, f in U16_ATTRS.items()
            for a in [w.last(attrs, t, 2)] if a is not None}
    u32s = {t: w._u32_first(a) for t in U32_ATTRS for a in [w.last(attrs, t, 4)] if a is not None}
    ci = w.last(attrs, C.NDA_CACHEINFO, CACHEINFO_MIN)
    cache = None if ci is None else struct.unpack_from("=III", ci.payload)
    return NeighView(h.type, fixed.family, fixed.ifindex, fixed.state, fixed.flags, fixed.type,
                     dst, lladdr, u16s, u32s, cache)   # type: ignore[arg-type]
