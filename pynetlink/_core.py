"""The one module that touches the compiled C core (``_pynetlink_cffi``).

It turns Python values into the core's request specs, and runs requests over
an rtnetlink socket: encode each into a buffer the socket owns, send them in
as few ``send`` calls as the window allows, and return one ``Reply`` per
request.  One cffi call per request to encode and one per window to send and
read the ACKs; cffi releases the GIL around both.
"""
from __future__ import annotations

import errno as _errno
import os
import sys
import threading
from collections import namedtuple
from typing import Callable, Dict, Optional, Sequence

from ._pynetlink_cffi import ffi, lib
from .errors import ExchangeError, NetlinkError, error_for

# Kernel constants, straight from the system headers at build time
# (csrc/pn_constants.cdef): one module-level name each, for the package to
# import by name.
RTM_NEWLINK = lib.RTM_NEWLINK
RTM_DELLINK = lib.RTM_DELLINK
RTM_GETLINK = lib.RTM_GETLINK
RTM_SETLINK = lib.RTM_SETLINK
RTM_NEWADDR = lib.RTM_NEWADDR
RTM_DELADDR = lib.RTM_DELADDR
RTM_GETADDR = lib.RTM_GETADDR
RTM_NEWROUTE = lib.RTM_NEWROUTE
RTM_DELROUTE = lib.RTM_DELROUTE
RTM_GETROUTE = lib.RTM_GETROUTE
RTNLGRP_LINK = lib.RTNLGRP_LINK         # the multicast group of link notifications (`ip monitor link`)
RTM_F_CLONED = lib.RTM_F_CLONED         # rtm_flags of a cached (cloned) route
RTNH_F_ONLINK = lib.RTNH_F_ONLINK       # rtm_flags: the gateway is on the link, unchecked

NLMSG_HDRLEN = lib.NLMSG_HDRLEN
NLM_F_REQUEST = lib.NLM_F_REQUEST
NLM_F_ACK = lib.NLM_F_ACK
NLM_F_DUMP = lib.NLM_F_DUMP
NLM_F_CREATE = lib.NLM_F_CREATE
NLM_F_EXCL = lib.NLM_F_EXCL
NLM_F_REPLACE = lib.NLM_F_REPLACE
NLM_F_APPEND = lib.NLM_F_APPEND
NLM_F_ECHO = lib.NLM_F_ECHO

IFF_UP = lib.IFF_UP
IFF_BROADCAST = lib.IFF_BROADCAST
IFF_LOOPBACK = lib.IFF_LOOPBACK
IFF_RUNNING = lib.IFF_RUNNING
IFF_NOARP = lib.IFF_NOARP
IFF_MULTICAST = lib.IFF_MULTICAST
IFF_PROMISC = lib.IFF_PROMISC
IFF_LOWER_UP = lib.IFF_LOWER_UP
IFNAMSIZ = lib.IFNAMSIZ
IFLA_IFNAME = lib.IFLA_IFNAME
IFLA_BRPORT_MODE = lib.IFLA_BRPORT_MODE
# How the kernel makes a link's IPv6 link-local address (`ip link set DEV addrgenmode MODE`)
IN6_ADDR_GEN_MODE_EUI64 = lib.IN6_ADDR_GEN_MODE_EUI64
IN6_ADDR_GEN_MODE_NONE = lib.IN6_ADDR_GEN_MODE_NONE
IN6_ADDR_GEN_MODE_STABLE_PRIVACY = lib.IN6_ADDR_GEN_MODE_STABLE_PRIVACY
IN6_ADDR_GEN_MODE_RANDOM = lib.IN6_ADDR_GEN_MODE_RANDOM
ADDR_GEN_MODES = {"eui64": IN6_ADDR_GEN_MODE_EUI64, "none": IN6_ADDR_GEN_MODE_NONE,
                  "stable_secret": IN6_ADDR_GEN_MODE_STABLE_PRIVACY,
                  "random": IN6_ADDR_GEN_MODE_RANDOM}

AF_UNSPEC = lib.AF_UNSPEC
AF_INET = lib.AF_INET
AF_INET6 = lib.AF_INET6

RT_TABLE_UNSPEC = lib.RT_TABLE_UNSPEC
RT_TABLE_DEFAULT = lib.RT_TABLE_DEFAULT
RT_TABLE_MAIN = lib.RT_TABLE_MAIN
RT_TABLE_LOCAL = lib.RT_TABLE_LOCAL

RTPROT_UNSPEC = lib.RTPROT_UNSPEC
RTPROT_REDIRECT = lib.RTPROT_REDIRECT
RTPROT_KERNEL = lib.RTPROT_KERNEL
RTPROT_BOOT = lib.RTPROT_BOOT
RTPROT_STATIC = lib.RTPROT_STATIC
RTPROT_RA = lib.RTPROT_RA
RTPROT_DHCP = lib.RTPROT_DHCP

RT_SCOPE_UNIVERSE = lib.RT_SCOPE_UNIVERSE
RT_SCOPE_SITE = lib.RT_SCOPE_SITE
RT_SCOPE_LINK = lib.RT_SCOPE_LINK
RT_SCOPE_HOST = lib.RT_SCOPE_HOST
RT_SCOPE_NOWHERE = lib.RT_SCOPE_NOWHERE

IP6_RT_PRIO_USER = lib.IP6_RT_PRIO_USER   # the metric of an IPv6 route added without one

RTN_UNSPEC = lib.RTN_UNSPEC
RTN_UNICAST = lib.RTN_UNICAST
RTN_LOCAL = lib.RTN_LOCAL
RTN_BROADCAST = lib.RTN_BROADCAST
RTN_ANYCAST = lib.RTN_ANYCAST
RTN_MULTICAST = lib.RTN_MULTICAST
RTN_BLACKHOLE = lib.RTN_BLACKHOLE
RTN_UNREACHABLE = lib.RTN_UNREACHABLE
RTN_PROHIBIT = lib.RTN_PROHIBIT
RTN_THROW = lib.RTN_THROW

IFA_F_SECONDARY = lib.IFA_F_SECONDARY
IFA_F_NODAD = lib.IFA_F_NODAD
IFA_F_OPTIMISTIC = lib.IFA_F_OPTIMISTIC
IFA_F_DADFAILED = lib.IFA_F_DADFAILED
IFA_F_HOMEADDRESS = lib.IFA_F_HOMEADDRESS
IFA_F_DEPRECATED = lib.IFA_F_DEPRECATED
IFA_F_TENTATIVE = lib.IFA_F_TENTATIVE
IFA_F_PERMANENT = lib.IFA_F_PERMANENT
IFA_F_MANAGETEMPADDR = lib.IFA_F_MANAGETEMPADDR
IFA_F_NOPREFIXROUTE = lib.IFA_F_NOPREFIXROUTE
IFA_F_MCAUTOJOIN = lib.IFA_F_MCAUTOJOIN
IFA_F_STABLE_PRIVACY = lib.IFA_F_STABLE_PRIVACY

# -- neighbours (issue 16) --
RTM_NEWNEIGH = lib.RTM_NEWNEIGH
RTM_DELNEIGH = lib.RTM_DELNEIGH
RTM_GETNEIGH = lib.RTM_GETNEIGH
RTNLGRP_NEIGH = lib.RTNLGRP_NEIGH       # neighbour notifications (`ip monitor neigh`)
AF_BRIDGE = lib.AF_BRIDGE               # the family of forwarding (FDB) entries
NUD_INCOMPLETE = lib.NUD_INCOMPLETE
NUD_REACHABLE = lib.NUD_REACHABLE
NUD_STALE = lib.NUD_STALE
NUD_DELAY = lib.NUD_DELAY
NUD_PROBE = lib.NUD_PROBE
NUD_FAILED = lib.NUD_FAILED
NUD_NOARP = lib.NUD_NOARP
NUD_PERMANENT = lib.NUD_PERMANENT
NUD_NONE = lib.NUD_NONE
NTF_USE = lib.NTF_USE
NTF_SELF = lib.NTF_SELF
NTF_MASTER = lib.NTF_MASTER
NTF_PROXY = lib.NTF_PROXY
NTF_EXT_LEARNED = lib.NTF_EXT_LEARNED
NTF_OFFLOADED = lib.NTF_OFFLOADED
NTF_STICKY = lib.NTF_STICKY
NTF_ROUTER = lib.NTF_ROUTER
NTF_EXT_MANAGED = lib.NTF_EXT_MANAGED


SEND_BUFFER = 64 * 1024     # bytes of requests per exchange window
RECV_BUFFER = 64 * 1024     # receive buffer to start with: grown for a reply that does not fit
MAX_RECV_BUFFER = 64 << 20  # ... up to this
RCVBUF = 1 << 20            # socket receive buffer: room for a window of ACKs
MIN_RCVBUF = 8192           # the smallest that holds a link's reply and its ACK, with room
WINDOW = 64                 # requests per send before reading their ACKs
DUMP_CAP = 4096             # dump entries decoded per cffi call while receiving a dump
DUMP_RETRIES = 3            # a dump the kernel marks interrupted is redone this often
MONITOR_BUFFER = 64 * 1024  # one notification datagram (a link's is a few KiB)
MONITOR_READS = 4096        # datagrams one Monitor.link_events() call reads at most

Encoder = Callable[[object, int], int]

# For buffers the C core writes before it reads them (send, receive, results):
# no point zero-filling them.
_scratch = ffi.new_allocator(should_clear_after_alloc=False)


# The arrays of a struct pn_dump, one per kind of dump.
_DUMP_ARRAYS: "tuple[tuple[str, str], ...]" = (("links", "struct pn_link_info[]"), ("addrs", "struct pn_addr_info[]"),
                ("routes", "struct pn_route_info[]"))
_DUMP_ARRAYS += (("neighs", "struct pn_neigh_info[]"),)   # -- neighbours (issue 16) --


class _Buffers(threading.local):
    """The buffers of an exchange, one set per thread: a thread runs one
    exchange at a time whatever socket it uses, so a bulk setup that opens
    a socket per container allocates nothing per socket."""

    def __init__(self) -> None:
        self.data = _scratch("unsigned char[]", SEND_BUFFER)
        self.buf = ffi.new("struct pn_buf *", {"data": self.data, "cap": SEND_BUFFER})
        self.results = _scratch("struct pn_result[]", WINDOW)
        self.rbuf = _scratch("unsigned char[]", RECV_BUFFER)
        self.rcap = RECV_BUFFER
        self.dump = ffi.new("struct pn_dump *")
        self._dump_arrays(DUMP_CAP)

    def _dump_arrays(self, cap: int) -> None:
        """One array of ``cap`` entries per kind of dump (pages never
        written are never touched: the kinds not dumped cost no memory)."""
        self.dump_storage = [_scratch(ctype, cap) for _, ctype in _DUMP_ARRAYS]
        for (field, _), array in zip(_DUMP_ARRAYS, self.dump_storage):
            setattr(self.dump, field, array)
        self.dump.cap = cap

    def grow(self, needed: int) -> None:
        """Make the receive buffer hold a datagram of ``needed`` bytes."""
        size = self.rcap
        while size < needed:
            size *= 2
        if size > MAX_RECV_BUFFER:
            raise error_for(_errno.EMSGSIZE, "receive",
                            detail=f"a {needed}-byte netlink reply is too large")
        self.rbuf, self.rcap = _scratch("unsigned char[]", size), size
        cap = max(DUMP_CAP, size // lib.PN_DUMP_PART_MIN + 1)    # what pn_dump_recv needs
        if cap > self.dump.cap:
            self._dump_arrays(cap)


_buffers = _Buffers()

# The current process id, kept by a fork hook rather than asked for on
# every exchange: a socket made before fork() must not be used after it.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


# Records are named tuples, not dataclasses: importing dataclasses costs a
# short-lived process (a CNI plugin runs once per pod) about 10 ms.

class Request(namedtuple("Request", "operation arguments interface encode index_only reads",
                         defaults=(False, False))):
    """One rtnetlink request: what to say in error messages (``operation``,
    ``arguments``, ``interface``), and its ``encode(struct pn_buf *, seq)``
    (0 or -errno).  ``index_only``: of a link in the reply, only its index
    is wanted; ``reads``: it changes nothing, so it is safe to send again."""
    __slots__ = ()

    def error(self, errno: int, ext_ack: str = "", *, detail: str = "") -> NetlinkError:
        """The NetlinkError of this request failing with ``errno``:
        ``ext_ack`` the kernel's text only, ``detail`` the library's."""
        return error_for(errno, self.operation, self.arguments, self.interface, ext_ack,
                         detail=detail)


# A decoded struct pn_link_info: the fields of links.Link, "stats" a dict of
# the eight NetworkStats counters or None.
RawLink = Dict[str, object]

STATS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
         "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


class Reply(namedtuple("Reply", "errno ext_ack link")):
    """What the kernel answered to one request: ``errno`` (0 is success),
    ``ext_ack`` (its extended-ack text or "": only ever the kernel's words),
    ``link`` (a RawLink or None)."""
    __slots__ = ()


# -- request specs -----------------------------------------------------------

_LINK_FIELDS = (("name", lib.PN_LINK_NAME), ("mtu", lib.PN_LINK_MTU),
                ("master", lib.PN_LINK_MASTER), ("ns_fd", lib.PN_LINK_NS_FD),
                ("ns_pid", lib.PN_LINK_NS_PID), ("group", lib.PN_LINK_GROUP),
                ("txqlen", lib.PN_LINK_TXQLEN), ("ext_mask", lib.PN_LINK_EXT_MASK),
                ("addr_gen_mode", lib.PN_LINK_ADDR_GEN_MODE))


def link_spec(*, index: int = 0, flags: int = 0, change: int = 0,
              address: Optional[bytes] = None, **fields):
    """A ``struct pn_link_spec``: one cffi allocation, initialized from a
    dict.  ``fields``: name (bytes), mtu, master, ns_fd, ns_pid, group,
    txqlen, ext_mask, addr_gen_mode — each present one sets its bit in
    ``fields``."""
    init: Dict[str, object] = {"index": index, "flags": flags, "change": change}
    present = 0
    for key, bit in _LINK_FIELDS:
        value = fields.pop(key, None)
        if value is not None:
            init[key] = value
            present |= bit
    if fields:
        raise TypeError(f"unknown link fields: {', '.join(fields)}")
    if address is not None:
        if not 0 < len(address) <= 32:
            raise ValueError("link-layer address must be 1 to 32 bytes")
        init["address"], init["address_len"] = address, len(address)
        present |= lib.PN_LINK_ADDRESS
    init["fields"] = present
    return ffi.new("struct pn_link_spec *", init)


def link_encoder(msg_type: int, nlflags: int, **fields) -> Encoder:
    spec = link_spec(**fields)
    return lambda buf, seq: lib.pn_link_msg(buf, msg_type, nlflags, seq, spec)


def brport_encoder(attr: int, value: int, **fields) -> Encoder:
    spec = link_spec(**fields)
    return lambda buf, seq: lib.pn_brport_msg(buf, seq, spec, attr, value)


def veth_encoder(nlflags: int, host: dict, peer: dict) -> Encoder:
    hspec, pspec = link_spec(**host), link_spec(**peer)
    return lambda buf, seq: lib.pn_veth_msg(buf, nlflags, seq, hspec, pspec)


def kind_encoder(nlflags: int, kind: bytes, **fields) -> Encoder:
    spec, kind_c = link_spec(**fields), ffi.new("char[]", kind)
    return lambda buf, seq: lib.pn_kind_msg(buf, nlflags, seq, spec, kind_c)


def _put_ip(field, value: bytes, what: str) -> None:
    """Copy an address into a fixed-size spec field, refusing what does not fit."""
    if not 0 < len(value) <= len(field):
        raise ValueError(f"{what} must be 1 to {len(field)} bytes, not {len(value)}")
    field[0:len(value)] = value                         # bounds-checked by cffi


def _u32(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{what} must be 0 to 4294967295, not {value}")
    return value


def addr_encoder(msg_type: int, nlflags: int, *, index: int, family: int, prefixlen: int,
                 local: bytes, broadcast: Optional[bytes] = None, scope: int = 0,
                 flags: int = 0, peer: Optional[bytes] = None,
                 label: Optional[str] = None) -> Encoder:
    """RTM_NEWADDR/DELADDR of one address; ``flags`` (IFA_F_NODAD...) go in
    IFA_FLAGS, which is left out when 0; ``peer``: the other end of a
    point-to-point address (IFA_ADDRESS); ``label``: IPv4's IFA_LABEL."""
    spec = ffi.new("struct pn_addr_spec *")
    spec.index, spec.family, spec.prefixlen, spec.scope = index, family, prefixlen, scope
    spec.flags = _u32(flags, "address flags")
    _put_ip(spec.local, local, "local address")
    if peer is not None:
        spec.has_peer = 1
        _put_ip(spec.peer, peer, "peer address")
    if label is not None:
        raw = label.encode("utf-8", "surrogateescape")
        if not 0 < len(raw) < len(spec.label) or b"\0" in raw:
            raise ValueError(f"address label {label!r} must be 1 to {len(spec.label) - 1} bytes")
        spec.label = raw
    if broadcast is not None:
        spec.has_broadcast = 1
        _put_ip(spec.broadcast, broadcast, "broadcast address")
    return lambda buf, seq: lib.pn_addr_msg(buf, msg_type, nlflags, seq, spec)


def route_encoder(msg_type: int, nlflags: int, *, family: int, dst: Optional[bytes] = None,
                  dst_len: int = 0, gateway: Optional[bytes] = None, oif: int = 0,
                  table: int, protocol: int, scope: int, rtype: int,
                  priority: Optional[int] = None, prefsrc: Optional[bytes] = None,
                  flags: int = 0) -> Encoder:
    """RTM_NEWROUTE/DELROUTE of one route, as exact as the kernel matches
    it: ``table`` up to 2**32-1 (RTA_TABLE past 255), ``priority`` the
    metric (RTA_PRIORITY), ``prefsrc`` (RTA_PREFSRC), ``flags`` rtm_flags
    (RTNH_F_ONLINK); NLM_F_REPLACE in ``nlflags`` replaces."""
    spec = ffi.new("struct pn_route_spec *")
    spec.family, spec.dst_len, spec.oif = family, dst_len, oif
    spec.flags = _u32(flags, "route flags")
    spec.table = _u32(table, "table")
    spec.protocol, spec.scope, spec.type = protocol, scope, rtype
    if dst is not None:
        _put_ip(spec.dst, dst, "destination")
    if gateway is not None:
        spec.has_gateway = 1
        _put_ip(spec.gateway, gateway, "gateway")
    if priority is not None:
        spec.has_priority, spec.priority = 1, _u32(priority, "metric")
    if prefsrc is not None:
        spec.has_prefsrc = 1
        _put_ip(spec.prefsrc, prefsrc, "preferred source")
    return lambda buf, seq: lib.pn_route_msg(buf, msg_type, nlflags, seq, spec)


def _dump_encoder(msg_type: int, family: int) -> Encoder:
    if family not in (AF_UNSPEC, AF_INET, AF_INET6):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET or AF_INET6, not {family}")
    return lambda buf, seq: lib.pn_dump_msg(buf, msg_type, seq, family)


def addr_dump_encoder(family: int) -> Encoder:
    """RTM_GETADDR with NLM_F_DUMP: every address of ``family`` (AF_UNSPEC:
    both), as ``ip addr show`` asks; for ``Socket.dump``."""
    return _dump_encoder(RTM_GETADDR, family)


def route_dump_encoder(family: int) -> Encoder:
    """RTM_GETROUTE with NLM_F_DUMP: every route of ``family`` (AF_UNSPEC:
    all) in every table, as ``ip route show table all`` asks; for ``Socket.dump``."""
    return _dump_encoder(RTM_GETROUTE, family)


# -- replies -----------------------------------------------------------------

def _raw_link(c) -> RawLink:
    return {"index": c.index, "name": ffi.string(c.name).decode("utf-8", "surrogateescape"),
            "flags": c.flags, "mtu": c.mtu, "master": c.master, "group": c.group,
            "txqlen": c.txqlen,
            "address": ffi.buffer(c.address, c.address_len)[:].hex(":"),
            "hairpin": None if c.hairpin < 0 else bool(c.hairpin),
            "kind": ffi.string(c.kind).decode("utf-8", "replace"), "link_index": c.link_index,
            "addr_gen_mode": None if c.addr_gen_mode < 0 else c.addr_gen_mode,
            "stats": {k: getattr(c, k) for k in STATS} if c.has_stats else None,
            "info_data": _info_data(c) if c.info_data_n else None}   # link kinds (issue 16)


def _ip(field, length: int) -> Optional[str]:
    """An address attribute as text (inet_ntop, as ``ip`` prints it), None if absent."""
    if not length:
        return None
    raw = ffi.buffer(field, length)[:]
    if length not in (4, 16):
        return raw.hex(":")
    # imported here: a short-lived `pynetlink link show` never needs socket
    from socket import inet_ntop
    return inet_ntop(AF_INET if length == 4 else AF_INET6, raw)


# A decoded struct pn_addr_info: index, family, prefixlen, scope, flags,
# local, address, broadcast (str or None), label (str or None), valid_lft,
# preferred_lft (seconds, 0xffffffff forever; None without IFA_CACHEINFO).
RawAddr = Dict[str, object]


def _raw_addr(c) -> RawAddr:
    cache = c.has_cacheinfo
    return {"index": c.index, "family": c.family, "prefixlen": c.prefixlen, "scope": c.scope,
            "flags": c.flags, "local": _ip(c.local, c.local_len),
            "address": _ip(c.address, c.address_len),
            "broadcast": _ip(c.broadcast, c.broadcast_len),
            "label": ffi.string(c.label).decode("utf-8", "surrogateescape") if c.has_label else None,
            "valid_lft": c.valid_lft if cache else None,
            "preferred_lft": c.preferred_lft if cache else None}


# A decoded struct pn_route_info: family, dst, dst_len, src, src_len,
# gateway, prefsrc (str or None), oif (0: none), priority (None: absent),
# table, protocol, scope, type, flags (rtm_flags), tos, multipath (RTA_MULTIPATH
# was there: its next hops are not decoded), unkept (see struct pn_route_info).
RawRoute = Dict[str, object]


def _raw_route(c) -> RawRoute:
    return {"family": c.family, "dst": _ip(c.dst, c.dst_alen), "dst_len": c.dst_len,
            "src": _ip(c.src, c.src_alen), "src_len": c.src_len,
            "gateway": _ip(c.gateway, c.gateway_alen), "prefsrc": _ip(c.prefsrc, c.prefsrc_alen),
            "oif": c.oif, "priority": c.priority if c.has_priority else None,
            "table": c.table, "protocol": c.protocol, "scope": c.scope, "type": c.type,
            "flags": c.flags, "tos": c.tos, "multipath": bool(c.has_multipath),
            "unkept": c.unkept}


# What a dump request (by its nlmsg_type) lists: the kind of part it
# collects, the struct pn_dump array holding them, and their raw dict.
_DUMP_KINDS = {RTM_GETLINK: (RTM_NEWLINK, "links", _raw_link),
               RTM_GETADDR: (RTM_NEWADDR, "addrs", _raw_addr),
               RTM_GETROUTE: (RTM_NEWROUTE, "routes", _raw_route)}

# -- neighbours (issue 16) --

_NEIGH_FIELDS = {"vlan": lib.PN_NEIGH_VLAN, "port": lib.PN_NEIGH_PORT, "vni": lib.PN_NEIGH_VNI,
                 "via": lib.PN_NEIGH_IFINDEX, "master": lib.PN_NEIGH_MASTER}


def neigh_spec(*, family: int, index: int = 0, state: int = 0, flags: int = 0,
               dst: Optional[bytes] = None, lladdr: Optional[bytes] = None,
               **fields: Optional[int]):
    """A ``struct pn_neigh_spec``: one cffi allocation initialized from a
    dict.  ``fields``: vlan, port (host order), vni, via (NDA_IFINDEX),
    master (NDA_MASTER), each present one sent."""
    init: Dict[str, object] = {"family": family, "index": index, "state": state,
                               "flags": flags}
    if dst is not None:
        if not 0 < len(dst) <= 16:
            raise ValueError(f"destination must be 1 to 16 bytes, not {len(dst)}")
        init["dst"], init["dst_len"] = dst, len(dst)
    if lladdr is not None:
        if not 0 < len(lladdr) <= 32:
            raise ValueError(f"link-layer address must be 1 to 32 bytes, not {len(lladdr)}")
        init["lladdr"], init["lladdr_len"] = lladdr, len(lladdr)
    if fields:                              # the options (most entries have none)
        unknown = fields.keys() - _NEIGH_FIELDS.keys()
        if unknown:
            raise TypeError(f"unknown neighbour fields: {', '.join(sorted(unknown))}")
        given = {key: value for key, value in fields.items() if value is not None}
        init.update(given, fields=sum(_NEIGH_FIELDS[key] for key in given))
    return ffi.new("struct pn_neigh_spec *", init)


def neigh_msg_encoder(msg_type: int, nlflags: int, spec) -> Encoder:
    """RTM_NEWNEIGH/DELNEIGH of the ``struct pn_neigh_spec`` ``spec`` as it
    is when the message is encoded."""
    return lambda buf, seq: lib.pn_neigh_msg(buf, msg_type, nlflags, seq, spec)


def neigh_encoder(msg_type: int, nlflags: int, **spec) -> Encoder:
    """RTM_NEWNEIGH/DELNEIGH of one neighbour (``family`` AF_INET/AF_INET6:
    ``dst`` required) or forwarding entry (AF_BRIDGE: ``lladdr`` the MAC,
    ``dst`` the remote VTEP or None) on link ``index``; ``state`` NUD_*
    bits, ``flags`` NTF_* bits, the rest as ``neigh_spec`` takes them.
    NLM_F_REPLACE or NLM_F_APPEND in ``nlflags`` replace or append."""
    return neigh_msg_encoder(msg_type, nlflags, neigh_spec(**spec))


def neigh_dump_encoder(family: int, index: int = 0, master: int = 0,
                       proxy: bool = False) -> Encoder:
    """RTM_GETNEIGH with NLM_F_DUMP: the neighbours of ``family`` (AF_UNSPEC:
    both; ``ip neigh show``; ``proxy``: the proxy entries, ``ip neigh show
    proxy``) or, for AF_BRIDGE, the forwarding entries (``bridge fdb
    show``); of link ``index`` only and of the ports of bridge ``master``
    only when not 0; for ``Socket.dump``."""
    if family not in (AF_UNSPEC, AF_INET, AF_INET6, AF_BRIDGE):
        raise ValueError(f"family must be AF_UNSPEC, AF_INET, AF_INET6 or AF_BRIDGE, not {family}")
    flags = NTF_PROXY if proxy else 0
    return lambda buf, seq: lib.pn_neigh_dump_msg(buf, seq, family, index, master, flags)


# A decoded struct pn_neigh_info: type (RTM_NEWNEIGH/RTM_DELNEIGH), family,
# index, state (NUD_*), flags (NTF_*), ndm_type, dst and lladdr (str or
# None), vlan, port, vni, src_vni, via (NDA_IFINDEX), master, probes,
# flags_ext, nh_id (None when absent), cacheinfo ((confirmed, used,
# updated) clock ticks ago, or None).
RawNeigh = Dict[str, object]

_NEIGH_OPTIONAL = ("vlan", "port", "vni", "src_vni", "via", "master", "probes", "flags_ext",
                   "nh_id")


def _raw_neigh(c) -> RawNeigh:
    """A ``struct pn_neigh_info`` (from pn_parse_neigh: a dump's part, or a
    notification's RTM_NEWNEIGH/RTM_DELNEIGH) as a RawNeigh."""
    raw: RawNeigh = {"type": c.type, "family": c.family, "index": c.index, "state": c.state,
                     "flags": c.flags, "ndm_type": c.ndm_type, "dst": _ip(c.dst, c.dst_len),
                     "lladdr": ffi.buffer(c.lladdr, c.lladdr_len)[:].hex(":") if c.lladdr_len
                     else None,
                     "cacheinfo": (c.confirmed, c.used, c.updated) if c.has_cacheinfo else None}
    for key in _NEIGH_OPTIONAL:
        raw[key] = getattr(c, key) if getattr(c, "has_" + key) else None
    return raw


def parse_neigh(data: bytes) -> RawNeigh:
    """One RTM_NEWNEIGH or RTM_DELNEIGH message (header included) decoded;
    NetlinkError (EBADMSG) for anything else."""
    out = ffi.new("struct pn_neigh_info *")
    err = lib.pn_parse_neigh(ffi.from_buffer(data), len(data), out)
    if err:
        raise error_for(-err, "decode neighbour")
    return _raw_neigh(out)


_DUMP_KINDS[RTM_GETNEIGH] = (RTM_NEWNEIGH, "neighs", _raw_neigh)


_ACK = Reply(0, "", None)


def _reply(r, index_only: bool = False) -> Reply:
    if not r.has_link:
        if not r.error and not r.ext_msg[0]:
            return _ACK                     # the common case: a plain ACK
        link = None
    else:
        link = {"index": r.link.index} if index_only else _raw_link(r.link)
    text = ffi.string(r.ext_msg).decode("utf-8", "replace") if r.ext_msg[0] else ""
    return Reply(-r.error, text, link)


def _dump_kind(buf) -> tuple:
    """What the dump request just encoded in ``buf`` lists (its nlmsg_type
    is the u16 after nlmsg_len): see _DUMP_KINDS."""
    msg_type = int.from_bytes(ffi.buffer(buf.data, 6)[4:6], sys.byteorder)
    try:
        return _DUMP_KINDS[msg_type]
    except KeyError:
        raise ValueError(f"message type {msg_type} is not a dump of links, addresses "
                         "or routes") from None


def _exchange_error(e: NetlinkError, replies: list, sent: int = 0) -> ExchangeError:
    """``e`` as the failure of a whole exchange, with what is known of each request."""
    return error_for(e.errno or _errno.EIO, e.operation, e.arguments, e.interface, e.ext_ack,
                     detail=e.detail, cls=ExchangeError, replies=replies, sent=sent)


# -- namespaces ----------------------------------------------------------------

def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace behind ``fd``."""
    err = lib.pn_setns_net(fd)
    if err:
        raise error_for(-err, "setns", (fd,))


def netns_check(fd: int, target: object) -> None:
    """Refuse an fd that is not a network namespace, naming ``target`` (the
    path or fd the caller gave): ``setns`` and the kernel's netns attributes
    would only say EINVAL."""
    err = lib.pn_netns_check(fd)
    if err == -_errno.EINVAL:
        raise OSError(_errno.EINVAL, "not a network namespace", str(target))
    if err:
        raise OSError(-err, os.strerror(-err), str(target))


def die_with_parent(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when its parent
    ends (``prctl(PR_SET_PDEATHSIG)``); OSError if it refuses."""
    err = lib.pn_die_with_parent(signum)
    if err:
        raise OSError(-err, os.strerror(-err), "prctl(PR_SET_PDEATHSIG)")


def netns_new() -> int:
    """A new empty network namespace, held by the returned fd."""
    fd = lib.pn_netns_new()
    if fd == -_errno.ENOTRECOVERABLE:
        raise RuntimeError("the calling thread could not return to its own network namespace")
    if fd < 0:
        raise error_for(-fd, "unshare", ("CLONE_NEWNET",))
    return fd


# -- the socket ----------------------------------------------------------------

def _open_socket(netns_fd: int, home_fd: int, rcvbuf: int) -> tuple[int, int]:
    """(fd, port id) of a new bound rtnetlink socket in ``netns_fd`` (-1: here)."""
    portid = ffi.new("uint32_t *")
    fd = lib.pn_socket_open(netns_fd, home_fd, rcvbuf, portid)
    if fd < 0:
        if fd == -_errno.ENOTRECOVERABLE:
            raise RuntimeError("the calling thread could not return to its own network "
                               "namespace after opening a socket in another one")
        raise error_for(-fd, "open netlink socket", (netns_fd,) if netns_fd >= 0 else ())
    return fd, portid[0]


class Socket:
    """An rtnetlink socket in one network namespace, safe to share between
    threads (one exchange at a time).  ``netns_fd`` -1 means the calling
    thread's current namespace; ``timeout`` (seconds) bounds each wait
    with nothing to read after a send or since the kernel's last datagram
    (a send blocked in a busy kernel does not count; signals do not extend
    it).  ``home_fd``, if given, is an fd of the
    namespace the calling thread is in now (the thread returns there after
    making a socket in ``netns_fd``): a caller making many sockets opens it once."""

    def __init__(self, netns_fd: int = -1, timeout: float = 5.0, home_fd: int = -1,
                 rcvbuf: int = RCVBUF):
        self.fd, self.portid = _open_socket(netns_fd, home_fd, rcvbuf)
        self.pid = _pid
        self.timeout_ms = max(1, int(timeout * 1000))
        self._seq = 1
        self._lock = threading.Lock()

    def close(self) -> None:
        if self.pid != _pid:                # a forked child closes its own copy only, and
            if self.fd >= 0:                # never waits for the lock: a parent's thread
                os.close(self.fd)           # may have held it at fork() and it stays held
                self.fd = -1
            return
        with self._lock:
            if self.fd >= 0:
                lib.pn_socket_close(self.fd)
                self.fd = -1

    def _next_seq(self) -> int:
        """The next sequence number; wraps well before uint32 overflows."""
        if self._seq > 0xFFFFFFFF - WINDOW:
            self._seq = 1
        return self._seq

    def unusable(self) -> str:
        """Why this socket cannot be used by the calling process ("the
        netlink handle is closed", "... made before fork() ..."), or "" if
        it can."""
        if self.pid != _pid:
            return "the netlink handle was made before fork(); make a new one in this process"
        if self.fd < 0:
            return "the netlink handle is closed"
        return ""

    def check_usable(self, operation: str = "netlink", arguments: tuple = (),
                     interface: Optional[str] = None) -> None:
        """Refuse a socket made before fork() or a closed one: NetlinkError
        (EBADF) as ``operation`` with its ``arguments`` and ``interface``,
        ``unusable()``'s reason in ``detail``, ``ext_ack`` empty."""
        why = self.unusable()
        if why:
            raise error_for(_errno.EBADF, operation, arguments, interface, detail=why)

    def _check_usable(self, requests: Sequence[Request]) -> None:
        """``check_usable`` as the first of ``requests`` (checked before the
        lock is taken: in a child of fork() it may be held forever)."""
        self.check_usable(*(requests[0][:3] if requests else ()))

    def exchange(self, requests: Sequence[Request],
                 into: Optional[list] = None) -> list[Reply]:
        """Send ``requests`` and return one Reply each, in order (appended
        to ``into`` as they are read, if given: a caller interrupted by an
        exception keeps what had come).

        Raises ``ExchangeError`` for a failure of the exchange itself
        (timeout, receive buffer overflow (ENOBUFS), a socket error, ...):
        the operation named is the first request whose fate is unknown, its
        ``replies`` hold what is known — one Reply per request, None for
        each whose fate is unknown — and ``sent`` how many requests were
        sent (those after them were not).  A closed handle, or one made
        before ``fork()``, raises NetlinkError (EBADF) with nothing sent.  The socket stays
        usable: a late reply to an old request is never taken for a new one.
        """
        self._check_usable(requests)
        with self._lock:
            self._check_usable(requests)            # closed while we waited?
            return self._exchange_all(requests, [] if into is None else into)

    def _exchange_all(self, requests: Sequence[Request], replies: list) -> list[Reply]:
        start = 0
        try:
            while start < len(requests):
                start = self._exchange_window(requests, start, replies)
        except NetlinkError as e:
            known = e.replies if isinstance(e, ExchangeError) else []   # of the failed window
            sent = len(replies) + len(known)        # requests after these were never sent
            raise _exchange_error(e, replies + known + [None] * (len(requests) - sent),
                                  sent) from None
        return replies

    def dump(self, request: Request) -> list[dict]:
        """Run a dump request (RTM_GETLINK, RTM_GETADDR or RTM_GETROUTE with
        NLM_F_DUMP) and return a raw dict (RawLink, RawAddr, RawRoute) for
        everything it lists; redone if the kernel says the dump was
        interrupted by a concurrent change (``DUMP_RETRIES`` times)."""
        self._check_usable((request,))
        with self._lock:
            self._check_usable((request,))          # closed while we waited?
            for _ in range(DUMP_RETRIES + 1):
                items, interrupted = self._dump_once(request)
                if not interrupted:
                    return items
        raise request.error(_errno.EAGAIN, detail=f"the dump was interrupted {DUMP_RETRIES + 1} "
                            "times by concurrent changes")

    def _dump_once(self, request: Request) -> tuple[list[dict], bool]:
        b = _buffers
        buf, dump = b.buf, b.dump
        seq = self._next_seq()
        self._seq = seq + 1
        buf.len = 0
        err = request.encode(buf, seq)
        if err:
            raise request.error(-err)
        part, array, convert = _dump_kind(buf)
        err = lib.pn_send(self.fd, buf)
        if err:
            raise request.error(-err)
        dump.type = part
        dump.n = dump.done = dump.error = dump.interrupted = dump.truncated = 0
        dump.ext_msg[0] = b"\0"
        items: list[dict] = []
        while not dump.done:
            err = lib.pn_dump_recv(self.fd, self.portid, seq, self.timeout_ms, b.rbuf, b.rcap, dump)
            entries = getattr(dump, array)
            items.extend(convert(entries[i]) for i in range(dump.n))
            dump.n = 0
            if err == -_errno.EMSGSIZE and dump.truncated:
                b.grow(dump.truncated)              # the next part is bigger: make room, go on
                dump.truncated = 0
            elif err:
                raise request.error(-err, detail="the dump did not complete")
        if dump.error:
            text = ffi.string(dump.ext_msg).decode("utf-8", "replace") if dump.ext_msg[0] else ""
            raise request.error(-dump.error, text)
        return items, bool(dump.interrupted)

    def _exchange_window(self, requests: Sequence[Request], start: int,
                         replies: list[Reply]) -> int:
        b = _buffers
        buf, first = b.buf, self._next_seq()
        buf.len = 0
        end = start
        while end < len(requests) and end - start < WINDOW:
            err = requests[end].encode(buf, first + end - start)
            if err == -_errno.ENOSPC and end > start:
                break                       # buffer full: send what we have
            if err:
                raise requests[end].error(-err, detail="the C encoder refused the request")
            end += 1
        count = end - start
        self._seq = first + count
        results = b.results
        rc = lib.pn_transact(self.fd, self.portid, buf, first, count, WINDOW, self.timeout_ms,
                             results, b.rbuf, b.rcap)
        if rc < 0:                                  # the exchange failed: say what is known
            known = [None if results[i].error == lib.PN_PENDING
                     else _reply(results[i], requests[start + i].index_only) for i in range(count)]
            pending = requests[start + next((i for i, r in enumerate(known) if r is None), 0)]
            raise error_for(-rc, pending.operation, pending.arguments, pending.interface,
                            detail=self._why_lost(-rc), cls=ExchangeError, replies=known)
        window = [_reply(results[i], requests[start + i].index_only) for i in range(count)]
        if rc:                                      # rc replies did not fit the buffer
            cut = [i for i in range(count) if results[i].truncated and not window[i].errno]
            if cut:
                needed = max(results[i].truncated for i in cut)
                window = self._ask_again(requests, start, window, cut, needed)
        replies.extend(window)
        return end

    def _why_lost(self, errno: int) -> str:
        """What a failed exchange (``pn_transact``'s -``errno``) lost, in words."""
        if errno == _errno.ETIMEDOUT:
            return f"no answer from the kernel within {self.timeout_ms / 1000:g} s of waiting"
        if errno == _errno.ENOBUFS:
            return "the kernel dropped replies: the socket's receive buffer overflowed"
        return "the exchange with the kernel failed"

    def _ask_again(self, requests: Sequence[Request], start: int, window: list,
                   cut: list, needed: int) -> list:
        """Replies that did not fit the receive buffer (a link with very
        many VFs, say): grow it and send those requests — reads — again.
        (Bounded: the buffer at least doubles each time, up to PN_MAX_BUF.)"""
        try:
            if any(not requests[start + i].reads for i in cut):
                raise requests[start + cut[0]].error(_errno.EMSGSIZE, detail="the reply did not fit "
                                                     "the receive buffer and cannot be asked again")
            _buffers.grow(needed)
            again = self._exchange_all([requests[start + i] for i in cut], [])
        except NetlinkError as e:                   # this window was sent: say what is known
            raise _exchange_error(e, [None if i in cut else r for i, r in enumerate(window)]) from None
        for i, reply in zip(cut, again):
            window[i] = reply
        return window


# -- notifications -------------------------------------------------------------

class LinkEvent(namedtuple("LinkEvent", "type family index flags")):
    """One link notification: ``type`` RTM_NEWLINK or RTM_DELLINK,
    ``family`` AF_UNSPEC for the link itself (AF_BRIDGE: its bridge port,
    whose RTM_DELLINK only says it left the bridge), ``index`` its ifindex,
    ``flags`` its IFF_* flags."""
    __slots__ = ()


# The most link messages one datagram of MONITOR_BUFFER bytes can hold.
_EVENTS_CAP = MONITOR_BUFFER // NLMSG_HDRLEN + 1


def parse_link_events(data: bytes) -> list[LinkEvent]:
    """The RTM_NEWLINK/RTM_DELLINK messages of one received datagram, in
    order (other messages skipped); NetlinkError (EBADMSG) for bytes that
    are not netlink messages."""
    events = _scratch("struct pn_link_event[]", len(data) // NLMSG_HDRLEN + 1)
    return _link_events(ffi.from_buffer(data), len(data), events)


def _link_events(data, length: int, events) -> list[LinkEvent]:
    count = lib.pn_link_events(data, length, events, len(events))
    if count < 0:
        raise error_for(-count, "decode link notifications")
    return [LinkEvent(e.type, e.family, e.index, e.flags) for e in events[0:count]]


class Monitor:
    """An rtnetlink socket that listens (``ip monitor link``): in the
    namespace of ``netns_fd`` (-1: the calling thread's), joined to
    RTNLGRP_LINK, so the kernel queues on it a notification of every link
    made, changed or deleted there from now on (an RTM_DELLINK is sent as
    the link is unlisted, before its deletion has finished).  Read it with
    ``link_events`` when ``fileno()`` polls readable.  Not for use across
    ``fork()``."""

    def __init__(self, netns_fd: int = -1, rcvbuf: int = RCVBUF):
        self.fd, self.portid = _open_socket(netns_fd, -1, rcvbuf)
        err = lib.pn_socket_join(self.fd, RTNLGRP_LINK)
        if err:
            self.close()
            raise error_for(-err, "join multicast group", ("RTNLGRP_LINK",))
        self._buf = _scratch("unsigned char[]", MONITOR_BUFFER)
        self._events = _scratch("struct pn_link_event[]", _EVENTS_CAP)
        self._from_kernel = ffi.new("uint32_t *")

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            lib.pn_socket_close(self.fd)
            self.fd = -1

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def link_events(self) -> list[LinkEvent]:
        """Every link notification queued now, in order, without waiting
        ([] if none).  NetlinkError: ENOBUFS (the socket overflowed: the
        kernel dropped notifications), EMSGSIZE (a datagram larger than
        MONITOR_BUFFER), EBADMSG, EBADF once closed."""
        events: list[LinkEvent] = []
        for _ in range(MONITOR_READS):
            n = lib.pn_recv(self.fd, self._buf, MONITOR_BUFFER, self._from_kernel)
            if n == -_errno.EAGAIN:
                break
            if n < 0:
                raise error_for(-n, "receive link notifications")
            if n > MONITOR_BUFFER:
                raise error_for(_errno.EMSGSIZE, "receive link notifications",
                                detail=f"a {n}-byte notification is too large")
            if self._from_kernel[0]:
                events += _link_events(self._buf, n, self._events)
        return events


# -- link kinds (issue 16) -----------------------------------------------------
# The options of a link kind: IFLA_LINKINFO/IFLA_INFO_DATA attributes, each
# sent as a struct pn_kind_attr (kinds.c).  Their numbers, from the headers:
IFLA_INFO_DATA = lib.IFLA_INFO_DATA
IFLA_MACVLAN_MODE = lib.IFLA_MACVLAN_MODE
IFLA_MACVLAN_FLAGS = lib.IFLA_MACVLAN_FLAGS
MACVLAN_MODE_PRIVATE = lib.MACVLAN_MODE_PRIVATE
MACVLAN_MODE_VEPA = lib.MACVLAN_MODE_VEPA
MACVLAN_MODE_BRIDGE = lib.MACVLAN_MODE_BRIDGE
MACVLAN_MODE_PASSTHRU = lib.MACVLAN_MODE_PASSTHRU
MACVLAN_MODE_SOURCE = lib.MACVLAN_MODE_SOURCE
MACVLAN_FLAG_NOPROMISC = lib.MACVLAN_FLAG_NOPROMISC
MACVLAN_FLAG_NODST = lib.MACVLAN_FLAG_NODST
IFLA_IPVLAN_MODE = lib.IFLA_IPVLAN_MODE
IFLA_IPVLAN_FLAGS = lib.IFLA_IPVLAN_FLAGS
IPVLAN_MODE_L2 = lib.IPVLAN_MODE_L2
IPVLAN_MODE_L3 = lib.IPVLAN_MODE_L3
IPVLAN_MODE_L3S = lib.IPVLAN_MODE_L3S
IPVLAN_F_PRIVATE = lib.IPVLAN_F_PRIVATE
IPVLAN_F_VEPA = lib.IPVLAN_F_VEPA
IFLA_VLAN_ID = lib.IFLA_VLAN_ID
IFLA_VLAN_PROTOCOL = lib.IFLA_VLAN_PROTOCOL
ETH_P_8021Q = lib.ETH_P_8021Q           # csrc/pn_kinds.cdef: <linux/if_ether.h>
ETH_P_8021AD = lib.ETH_P_8021AD
IFLA_VXLAN_ID = lib.IFLA_VXLAN_ID
IFLA_VXLAN_GROUP = lib.IFLA_VXLAN_GROUP
IFLA_VXLAN_LINK = lib.IFLA_VXLAN_LINK
IFLA_VXLAN_LOCAL = lib.IFLA_VXLAN_LOCAL
IFLA_VXLAN_TTL = lib.IFLA_VXLAN_TTL
IFLA_VXLAN_LEARNING = lib.IFLA_VXLAN_LEARNING
IFLA_VXLAN_PORT = lib.IFLA_VXLAN_PORT
IFLA_VXLAN_GROUP6 = lib.IFLA_VXLAN_GROUP6
IFLA_VXLAN_LOCAL6 = lib.IFLA_VXLAN_LOCAL6
IFLA_BR_AGEING_TIME = lib.IFLA_BR_AGEING_TIME
IFLA_BR_STP_STATE = lib.IFLA_BR_STP_STATE
IFLA_BR_VLAN_FILTERING = lib.IFLA_BR_VLAN_FILTERING
IFLA_BR_VLAN_DEFAULT_PVID = lib.IFLA_BR_VLAN_DEFAULT_PVID
IFLA_BR_MCAST_SNOOPING = lib.IFLA_BR_MCAST_SNOOPING
IFLA_BR_MCAST_QUERIER = lib.IFLA_BR_MCAST_QUERIER
# The kinds' modes and flags by ip's names
MACVLAN_MODES = {"private": MACVLAN_MODE_PRIVATE, "vepa": MACVLAN_MODE_VEPA,
                 "bridge": MACVLAN_MODE_BRIDGE, "passthru": MACVLAN_MODE_PASSTHRU,
                 "source": MACVLAN_MODE_SOURCE}
MACVLAN_FLAGS = {"nopromisc": MACVLAN_FLAG_NOPROMISC, "nodst": MACVLAN_FLAG_NODST}
IPVLAN_MODES = {"l2": IPVLAN_MODE_L2, "l3": IPVLAN_MODE_L3, "l3s": IPVLAN_MODE_L3S}
IPVLAN_FLAGS = {"bridge": 0, "private": IPVLAN_F_PRIVATE, "vepa": IPVLAN_F_VEPA}
VLAN_PROTOCOLS = {"802.1Q": ETH_P_8021Q, "802.1ad": ETH_P_8021AD}
# How each is put on the wire (enum pn_attr_kind)
ATTR_FLAG, ATTR_U8, ATTR_U16 = lib.PN_ATTR_FLAG, lib.PN_ATTR_U8, lib.PN_ATTR_U16
ATTR_U32, ATTR_BE16, ATTR_BYTES = lib.PN_ATTR_U32, lib.PN_ATTR_BE16, lib.PN_ATTR_BYTES
KIND_ATTRS_MAX = lib.PN_KIND_ATTRS_MAX

from typing import List, Tuple  # noqa: E402  (kept in this block: the merge stays additive)

_LINK_FIELDS += (("link", lib.PN_LINK_LINK),)  # type: ignore[assignment]  # IFLA_LINK: the parent

# One option: (attribute type, ATTR_* wire format, value: int, or bytes for ATTR_BYTES)
KindAttr = Tuple[int, int, object]


def kind_attrs(attrs: Sequence[KindAttr]):
    """A ``struct pn_kind_attr[]`` of ``attrs`` (at most KIND_ATTRS_MAX)."""
    if len(attrs) > KIND_ATTRS_MAX:
        raise ValueError(f"at most {KIND_ATTRS_MAX} options, not {len(attrs)}")
    array = ffi.new("struct pn_kind_attr[]", max(len(attrs), 1))
    for slot, (attr_type, kind, value) in zip(array, attrs):
        slot.type, slot.kind = attr_type, kind
        if kind == ATTR_BYTES:
            assert isinstance(value, bytes)
            _put_ip(slot.bytes, value, "option")
            slot.len = len(value)
        else:
            assert isinstance(value, int)
            slot.value = _u32(value, "option")
    return array


def kind_data_encoder(nlflags: int, kind: bytes, attrs: Sequence[KindAttr], **fields) -> Encoder:
    """RTM_NEWLINK of a link of ``kind`` with ``attrs`` in IFLA_INFO_DATA
    (none: no IFLA_INFO_DATA); ``fields`` as ``link_spec``'s, ``link`` the
    parent's ifindex (IFLA_LINK)."""
    spec, kind_c, array = link_spec(**fields), ffi.new("char[]", kind), kind_attrs(attrs)
    count = len(attrs)
    return lambda buf, seq: lib.pn_kind_data_msg(buf, nlflags, seq, spec, kind_c, array, count)


# A reply's IFLA_INFO_DATA: (attribute type, value: the payload as a native
# u8/u16/u32 when it has 1/2/4 bytes, else None, payload bytes), in order.
RawInfoData = List[Tuple[int, Optional[int], bytes]]


def _info_data(c) -> RawInfoData:
    return [(a.type, None if a.kind == ATTR_BYTES else a.value, ffi.buffer(a.bytes, a.len)[:])
            for a in c.info_data[0:c.info_data_n]]


# -- asyncio: the sans-IO pieces of an exchange (issue 16, asyncio) --------------
#
# ``pynetlink.aio`` runs exchanges on an event loop with these: send a
# window of requests without reading (``send_window``, ``send_dump``), then,
# each time the socket polls readable, read what is queued without waiting
# (``Datagrams.read``) and hand each datagram to the exchange its first
# sequence number belongs to (``Replies.feed``, ``DumpParts.feed``: the C
# decoders, pure functions over one datagram).  Nothing here waits.

def _encode_window(sock: Socket, requests: Sequence[Request]) -> tuple[int, int]:
    """Encode into this thread's send buffer the first of ``requests`` that
    fit one send (at most WINDOW), numbered from ``sock``'s next sequence
    number: (first seq, how many)."""
    buf, first, count = _buffers.buf, sock._next_seq(), 0
    buf.len = 0
    for request in requests[:WINDOW]:
        err = request.encode(buf, first + count)
        if err == -_errno.ENOSPC and count:
            break                           # the buffer is full: the rest go in the next send
        if err:
            raise request.error(-err, detail="the C encoder refused the request")
        count += 1
    sock._seq = first + count
    return first, count


def _send_buffer(sock: Socket, request: Request) -> None:
    err = lib.pn_send(sock.fd, _buffers.buf)
    if err:
        raise request.error(-err)


def send_window(sock: Socket, requests: Sequence[Request]) -> tuple[int, int]:
    """Send the first of ``requests`` that fit one datagram (at most
    WINDOW) on ``sock``, numbered from its next sequence number, and read
    nothing: (first seq, how many were sent).  rtnetlink handles the
    requests inside the send (holding RTNL), so it returns once they are
    handled and their replies are queued on the socket.  NetlinkError, as
    the first request, if one cannot be encoded or the send fails (then
    nothing was sent)."""
    first, count = _encode_window(sock, requests)
    _send_buffer(sock, requests[0])
    return first, count


def send_dump(sock: Socket, request: Request, rcap: int) -> "DumpParts":
    """Send the dump ``request`` (RTM_GETLINK, RTM_GETADDR or RTM_GETROUTE
    with NLM_F_DUMP) on ``sock`` and return what collects its parts from
    datagrams of up to ``rcap`` bytes.  The kernel fills the first
    datagram inside the send, and each next one as the socket is read."""
    first, _ = _encode_window(sock, (request,))
    kind = _dump_kind(_buffers.buf)
    _send_buffer(sock, request)
    return DumpParts(first, sock.portid, kind, rcap)


class Datagrams:
    """Reads the datagrams queued on a socket, one at a time and without
    waiting, into a buffer of its own (``rbuf``, ``rcap`` bytes)."""

    def __init__(self) -> None:
        self.rbuf, self.rcap = _scratch("unsigned char[]", RECV_BUFFER), RECV_BUFFER
        self._from_kernel = ffi.new("uint32_t *")
        self._needed = 0                    # the length of the last datagram that was cut

    def read(self, fd: int) -> int:
        """The length of the next datagram the kernel queued (its first
        ``rcap`` bytes in ``rbuf``; a longer one was cut, and the buffer is
        grown for the next), 0 if none is queued.  Datagrams from other
        processes are dropped.  NetlinkError: ENOBUFS (the receive buffer
        overflowed: the kernel dropped messages since the last read),
        EBADF, ..."""
        if self._needed:
            size = min(MAX_RECV_BUFFER, max(self._needed, 2 * self.rcap))
            self.rbuf, self.rcap, self._needed = _scratch("unsigned char[]", size), size, 0
        for _ in range(MONITOR_READS):
            n = lib.pn_recv(fd, self.rbuf, self.rcap, self._from_kernel)
            if n == -_errno.EAGAIN:
                return 0
            if n < 0:
                raise error_for(-n, "receive")
            if self._from_kernel[0]:
                if n > self.rcap:
                    self._needed = n
                return n
        return 0

    def sequence(self, length: int) -> Optional[int]:
        """The sequence number of the first message of the datagram just
        read (every message of a datagram the kernel sends answers one
        request), or None if it is shorter than a header."""
        if min(length, self.rcap) < NLMSG_HDRLEN:
            return None
        return int.from_bytes(ffi.buffer(self.rbuf, 12)[8:12], sys.byteorder)


class Replies:
    """The replies to ``count`` requests sent from ``portid`` with sequence
    numbers from ``first``, filled in one datagram at a time."""

    def __init__(self, requests: Sequence[Request], first: int, count: int, portid: int):
        self.requests, self.first, self.count, self.portid = requests, first, count, portid
        self.results = ffi.new("struct pn_result[]", count)
        for i in range(count):
            self.results[i].seq, self.results[i].error = first + i, lib.PN_PENDING
        self.left = count

    def feed(self, datagrams: Datagrams, length: int) -> bool:
        """Take what the datagram just read answers; True once every
        request is answered.  A reply longer than the receive buffer fails
        its request (EMSGSIZE); NetlinkError (EBADMSG) for bytes that are
        not netlink messages."""
        if length > datagrams.rcap:
            seq = datagrams.sequence(length)
            i = -1 if seq is None else seq - self.first
            if 0 <= i < self.count and self.results[i].error == lib.PN_PENDING:
                self.results[i].error, self.results[i].truncated = -_errno.EMSGSIZE, length
                self.left -= 1
            return not self.left
        got = lib.pn_parse_replies(datagrams.rbuf, length, self.portid, self.first, self.count,
                                   self.results)
        if got < 0:
            raise error_for(-got, "receive")
        self.left -= got
        return not self.left

    def replies(self) -> list:
        """One Reply per request, None for each not answered yet."""
        return [None if r.error == lib.PN_PENDING else _reply(r, q.index_only)
                for r, q in zip(self.results, self.requests)]


class DumpParts:
    """The parts of the dump ``seq`` sent from ``portid``, collected one
    datagram (of up to ``rcap`` bytes) at a time; ``kind`` as _DUMP_KINDS."""

    def __init__(self, seq: int, portid: int, kind: tuple, rcap: int):
        self.seq, self.portid = seq, portid
        part, self._array, self._convert = kind
        self.dump = ffi.new("struct pn_dump *")
        self.dump.type = part
        self._room(rcap)
        self.items: list = []

    def _room(self, rcap: int) -> None:
        """An array for the parts one datagram of ``rcap`` bytes can hold."""
        self.dump.cap = rcap // lib.PN_DUMP_PART_MIN + 1
        self._storage = _scratch(dict(_DUMP_ARRAYS)[self._array], self.dump.cap)
        setattr(self.dump, self._array, self._storage)

    def feed(self, datagrams: Datagrams, length: int) -> bool:
        """Take the parts of the datagram just read; True once the dump has
        ended (NLMSG_DONE, or the kernel's error).  NetlinkError: EMSGSIZE
        (a datagram longer than the buffer: a part was lost), EBADMSG."""
        if length > datagrams.rcap:
            raise error_for(_errno.EMSGSIZE, "receive",
                            detail=f"a {length}-byte part of the dump did not fit the buffer")
        if datagrams.rcap // lib.PN_DUMP_PART_MIN + 1 > self.dump.cap:
            self._room(datagrams.rcap)      # the buffer has grown since the dump began
        got = lib.pn_parse_dump(datagrams.rbuf, length, self.portid, self.seq, self.dump)
        if got < 0:
            raise error_for(-got, "receive")
        entries = getattr(self.dump, self._array)
        self.items.extend(self._convert(entries[i]) for i in range(self.dump.n))
        self.dump.n = 0
        return bool(self.dump.done)

    def result(self, request: Request) -> tuple[list, bool]:
        """(every item listed, whether the kernel says the dump was
        interrupted by a change: redo it); the kernel's refusal of the dump
        raised as ``request``."""
        if self.dump.error:
            text = ffi.string(self.dump.ext_msg).decode("utf-8", "replace")
            raise request.error(-self.dump.error, text)
        return self.items, bool(self.dump.interrupted)

# -- events (issue 16) ---------------------------------------------------------

# The multicast groups of notifications (`ip monitor address|route`; RTNLGRP_LINK and
# RTNLGRP_NEIGH above; AF_BRIDGE, above, is also the family of a link message about
# its bridge port)
RTNLGRP_IPV4_IFADDR = lib.RTNLGRP_IPV4_IFADDR
RTNLGRP_IPV6_IFADDR = lib.RTNLGRP_IPV6_IFADDR
RTNLGRP_IPV4_ROUTE = lib.RTNLGRP_IPV4_ROUTE
RTNLGRP_IPV6_ROUTE = lib.RTNLGRP_IPV6_ROUTE

EVENTS_BUFFER = 64 * 1024   # one notification datagram to start with (grown for a longer one)
EVENTS_BATCH = 4096         # notifications decoded per cffi call, at least
EVENTS_RCVBUF = 4 << 20     # an event socket's receive buffer: room for bursts of changes


# nlmsg_type -> (the union member of struct pn_event's body, its raw dict)
_EVENT_BODIES = {RTM_NEWLINK: ("link", _raw_link), RTM_DELLINK: ("link", _raw_link),
                 RTM_NEWADDR: ("addr", _raw_addr), RTM_DELADDR: ("addr", _raw_addr),
                 RTM_NEWROUTE: ("route", _raw_route), RTM_DELROUTE: ("route", _raw_route),
                 RTM_NEWNEIGH: ("neigh", _raw_neigh), RTM_DELNEIGH: ("neigh", _raw_neigh)}

# A decoded notification: (nlmsg_type, family, raw dict of its body).
RawEvent = tuple


def _raw_events(events, count: int) -> list:
    out = []
    for e in events[0:count]:
        member, convert = _EVENT_BODIES[e.type]
        out.append((e.type, e.family, convert(getattr(e.body, member))))
    return out


def parse_events(data: bytes) -> list:
    """The notifications of one received datagram as RawEvents, in order
    (messages of other kinds skipped); NetlinkError (EBADMSG) for bytes
    that are not netlink messages."""
    events = _scratch("struct pn_event[]", len(data) // lib.PN_EVENT_MSG_MIN + 1)
    count = lib.pn_parse_events(ffi.from_buffer(data), len(data), events, len(events))
    if count < 0:
        raise error_for(-count, "decode notifications")
    return _raw_events(events, count)


def _lives_here(fd: int) -> bool:
    """Whether the bound netlink socket ``fd`` is in the calling thread's
    namespace (listed in /proc/thread-self/net/netlink): what a caller
    without CAP_NET_ADMIN, whom SIOCGSKNS refuses, can still know."""
    inode = str(os.fstat(fd).st_ino)
    try:
        with open("/proc/thread-self/net/netlink") as f:
            return any(line.split()[-1:] == [inode] for line in f)
    except OSError:
        return False


def socket_netns(fd: int, operation: str) -> int:
    """An fd of the network namespace the netlink socket ``fd`` lives in
    (the caller closes it), or -1 when that is the calling thread's own:
    a socket is then opened here, with no setns (which needs
    CAP_SYS_ADMIN), and a caller whom SIOCGSKNS refuses (no CAP_NET_ADMIN)
    still subscribes in its own namespace."""
    ns = lib.pn_socket_netns(fd)
    if ns == -_errno.EPERM and _lives_here(fd):
        return -1
    if ns < 0:
        raise error_for(-ns, operation, detail="the handle's namespace cannot be named")
    try:
        here = os.stat("/proc/thread-self/ns/net")
        there = os.fstat(ns)
    except OSError:
        return ns
    if (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino):
        os.close(ns)
        return -1
    return ns


class EventSocket:
    """An rtnetlink socket joined to multicast ``groups`` (RTNLGRP_*), in
    the namespace of the socket ``netns_of`` (an fd; -1: the calling
    thread's), with a receive buffer of ``rcvbuf`` bytes (SO_RCVBUFFORCE,
    else SO_RCVBUF up to the system's limit).  ``read()`` never waits."""

    def __init__(self, groups: Sequence[int], netns_of: int = -1, rcvbuf: int = EVENTS_RCVBUF):
        ns = -1 if netns_of < 0 else socket_netns(netns_of, "subscribe")
        try:
            self.fd, self.portid = _open_socket(ns, -1, rcvbuf)
        finally:
            if ns >= 0:
                os.close(ns)
        for group in groups:
            err = lib.pn_socket_join(self.fd, group)
            if err:
                self.close()
                raise error_for(-err, "join multicast group", (group,))
        self._n = ffi.new("uint32_t *")
        self._truncated = ffi.new("uint32_t *")
        self._buffers(EVENTS_BUFFER)

    def _buffers(self, size: int) -> None:
        self._bufcap = size
        self._buf = _scratch("unsigned char[]", size)
        self._cap = size // lib.PN_EVENT_MSG_MIN + 1 + EVENTS_BATCH
        self._events = _scratch("struct pn_event[]", self._cap)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            lib.pn_socket_close(self.fd)
            self.fd = -1

    def read(self) -> tuple:
        """(RawEvents, more, lost): the notifications queued now, in order
        (at most one batch: ``more`` says others may be queued); ``lost``
        is "" or why the kernel's notifications after these were lost
        (ENOBUFS: the receive buffer overflowed; a datagram too long for the
        buffer, which is grown).  NetlinkError: EBADF once closed, EBADMSG."""
        if self.fd < 0:
            raise error_for(_errno.EBADF, "read events", detail="the subscription is closed")
        self._n[0] = 0
        rc = lib.pn_events_recv(self.fd, self._buf, self._bufcap, self._events, self._cap,
                                self._n, self._truncated)
        events = _raw_events(self._events, self._n[0])
        if rc == -_errno.ENOBUFS:
            return events, False, "the socket's receive buffer overflowed: the kernel dropped events"
        if rc == -_errno.EMSGSIZE:
            size = self._truncated[0]
            if size > MAX_RECV_BUFFER:
                raise error_for(_errno.EMSGSIZE, "read events",
                                detail=f"a {size}-byte notification is too large")
            self._buffers(max(size, 2 * self._bufcap))
            return events, True, f"a {size}-byte notification did not fit the buffer"
        if rc < 0:
            raise error_for(-rc, "read events")
        return events, rc == 1, ""
