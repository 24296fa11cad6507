"""The C reply decoders judged, field by field and verdict by verdict, against
the independent codec (``nlwire``).

Valid replies are generated with every attribute each decoder reads (for a
link also the nested IFLA_LINKINFO and bridge-port data), plus attributes it
does not read, duplicates and attributes too short for their type, in any
order; datagrams of several of them make replies and multi-part dumps.  The
C decoders must give what ``nlwire.read_link``/``read_addr``/``read_route``
(a receiver's reading: last attribute wins, short ones skipped) say, and what
was generated.  Mutated replies (bytes flipped, inserted, deleted, lengths
moved) are judged the same way: where the codec, reading as the kernel does
(``strict=False``), refuses a length the C decoder must refuse with
-EBADMSG; where it accepts, every value must be equal.
"""
from __future__ import annotations

import errno
import struct
from typing import Dict, List, NamedTuple, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlwire as w
from nlwire import C
from pynetlink._core import ffi, lib
from test_decoders import (FIRST, GUARD, PENDING, PORT, addr_view, c_parse, counters, ext_msg,
                           mutate, parse, parse_dump, parse_link, pending, route_view)

pytestmark = pytest.mark.unit

# examples: the hypothesis profile's count (conftest), scaled for the costlier properties
FAST = settings(deadline=None)
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
DATAGRAMS = settings(deadline=None, max_examples=settings.default.max_examples // 3,
                     suppress_health_check=[HealthCheck.too_slow])

U8 = st.integers(0, 255)
U32 = st.integers(0, 0xFFFFFFFF)
I32 = st.integers(-(2**31), 2**31 - 1)
U64 = st.integers(0, 2**64 - 1)
NO_NUL = st.binary(max_size=20).filter(lambda b: 0 not in b)
TYPE_FLAGS = st.sampled_from([0, 0, C.NLA_F_NESTED, C.NLA_F_NET_BYTEORDER])
ACK_ERRORS = st.one_of(st.just(0), st.integers(-4095, -1), st.integers(1, 100))


# ===============================================================================
# Generators: the attributes a decoder reads, in any order, among others
# ===============================================================================

class Arranged(NamedTuple):
    body: bytes                 # the attributes, as they follow the family header
    types: List[int]            # their types, in wire order


@st.composite
def arranged(draw, real: Dict[int, bytes], minlen: Dict[int, int], unread: List[int]):
    """The attributes ``real`` (type: payload, each the value that must be
    read) in random order, among decoys of the same types before them
    (overwritten: the last one wins), decoys too short for their type after
    them (skipped), and attributes of types the decoder does not read."""
    items = [(t, p) for t in draw(st.permutations(sorted(real))) for p in [real[t]]]
    for t in sorted(real):
        pos = items.index((t, real[t]))
        if draw(st.integers(0, 3)) == 0:
            items.insert(draw(st.integers(0, pos)), (t, draw(st.binary(max_size=40))))
            pos += 1
        if minlen.get(t, 0) > 0 and draw(st.integers(0, 3)) == 0:
            items.insert(draw(st.integers(pos + 1, len(items))),
                         (t, draw(st.binary(max_size=minlen[t] - 1))))
    for _ in range(draw(st.integers(0, 3))):
        t = draw(st.sampled_from(unread))
        items.insert(draw(st.integers(0, len(items))), (t, draw(st.binary(max_size=12))))
    body = b"".join(w.rtattr(t | draw(TYPE_FLAGS), p) for t, p in items)
    return Arranged(body, [t for t, _ in items])


def unread_types(read: set, top: int) -> List[int]:
    """Types a decoder skips: the others up to ``top``, a newer kernel's, unknown ones."""
    return [t for t in range(top + 1) if t not in read] + [top + 1, top + 7, 0x3FFF]


class Generated(NamedTuple):
    msg: bytes
    want: tuple                 # the record the decoder must give


# -- links ----------------------------------------------------------------------

LINK_U32 = {"mtu": C.IFLA_MTU, "master": C.IFLA_MASTER, "group": C.IFLA_GROUP,
            "txqlen": C.IFLA_TXQLEN, "link_index": C.IFLA_LINK}
LINK_READ = {C.IFLA_IFNAME, C.IFLA_ADDRESS, C.IFLA_STATS64, C.IFLA_LINKINFO, C.IFLA_AF_SPEC,
             *LINK_U32.values()}
LINK_MIN = {**{t: 4 for t in LINK_U32.values()}, C.IFLA_STATS64: w.STATS64_MIN}
STATS_SIZES = [w.STATS64_MIN, 23 * 8, w.STATS64.size, w.STATS64.size + 16]


@st.composite
def bridge_port(draw):
    """IFLA_INFO_SLAVE_KIND and _DATA of a bridge port (or of another kind):
    (members, hairpin the decoder must give)."""
    kind = draw(st.sampled_from([b"bridge", b"bridge", b"bond", b"bridgeX", b"bridg"]))
    mode = draw(st.one_of(st.none(), U8))
    others = [(t, draw(st.binary(max_size=8)))
              for t in draw(st.lists(st.sampled_from([C.IFLA_BRPORT_STATE, C.IFLA_BRPORT_COST,
                                                      C.IFLA_BRPORT_LEARNING, C.IFLA_BRPORT_MAX + 1]),
                                     max_size=3))]
    port = [(C.IFLA_BRPORT_MODE, bytes([mode]))] if mode is not None else []
    port = draw(st.permutations(port + others))
    data = b"".join(w.rtattr(t, p) for t, p in port)
    members = [w.str_attr(C.IFLA_INFO_SLAVE_KIND, kind),
               w.rtattr(C.IFLA_INFO_SLAVE_DATA | C.NLA_F_NESTED, data)]
    hairpin = None if kind != b"bridge" or mode is None else int(mode != 0)
    return members, hairpin


@st.composite
def link_info_nest(draw):
    """An IFLA_LINKINFO payload: (payload, kind, hairpin) as the decoder must read them."""
    kind = draw(st.one_of(st.none(), NO_NUL))
    members = [] if kind is None else [w.str_attr(C.IFLA_INFO_KIND, kind)]
    hairpin = None
    if draw(st.booleans()):
        port, hairpin = draw(bridge_port())
        members += port
    if draw(st.booleans()):
        members.append(w.rtattr(C.IFLA_INFO_DATA | C.NLA_F_NESTED, w.u32_attr(1, draw(U32))))
    payload = b"".join(draw(st.permutations(members)))
    return payload, b"" if kind is None else kind[:w.IFNAMSIZ - 1], hairpin


AF_INET6 = 10                   # the family nest of IFLA_AF_SPEC the decoder reads (socket.AF_INET6)


@st.composite
def af_spec_nest(draw):
    """An IFLA_AF_SPEC payload: one nest per family (IPv4's, IPv6's, others,
    maybe twice), IPv6's with its mode (0-2 bytes) among other attributes;
    (payload, the mode the decoder must give: the last IPv6 nest's last
    mode attribute of at least one byte, else -1)."""
    nests, mode = [], -1
    for family in draw(st.lists(st.sampled_from([2, AF_INET6, 7, 28]), max_size=3)):
        inner = [(t, draw(st.binary(max_size=6)))
                 for t in draw(st.lists(st.sampled_from([C.IFLA_INET6_FLAGS, C.IFLA_INET6_TOKEN,
                                                         C.IFLA_INET6_ADDR_GEN_MODE]), max_size=3))]
        body = b"".join(w.rtattr(t, p) for t, p in inner)
        nests.append(w.rtattr(family | C.NLA_F_NESTED, body))
        if family == AF_INET6:
            modes = [p for t, p in inner if t == C.IFLA_INET6_ADDR_GEN_MODE and p]
            mode = modes[-1][0] if modes else -1
    return b"".join(nests), mode


@st.composite
def link_messages(draw, seq=FIRST, pid=PORT, msg_flags=0):
    """An RTM_NEWLINK with every attribute pn_link_info carries, each present
    or not, and the LinkRecord the decoder must give."""
    index, flags = draw(I32), draw(U32)
    real: Dict[int, bytes] = {}
    values = {}
    for field, t in LINK_U32.items():
        v = draw(st.one_of(st.none(), U32))
        if v is not None:
            real[t] = w.U32.pack(v)
        values[field] = 0 if v is None else v
    values["link_index"] = struct.unpack("=i", w.U32.pack(values["link_index"]))[0]
    name = draw(st.one_of(st.none(), NO_NUL))
    if name is not None:
        real[C.IFLA_IFNAME] = name + b"\0"
    address = draw(st.one_of(st.none(), st.binary(max_size=w.MAX_ADDR_LEN + 4)))
    if address is not None:
        real[C.IFLA_ADDRESS] = address
    stats = draw(st.one_of(st.none(), st.lists(U64, min_size=8, max_size=8)))
    if stats is not None:
        size = draw(st.sampled_from(STATS_SIZES))
        real[C.IFLA_STATS64] = (struct.pack("=8Q", *stats) + draw(st.binary(min_size=size,
                                                                          max_size=size)))[:size]
    info = draw(st.one_of(st.none(), link_info_nest()))
    if info is not None:
        real[C.IFLA_LINKINFO] = info[0]
    af = draw(st.one_of(st.none(), af_spec_nest()))
    if af is not None:
        real[C.IFLA_AF_SPEC] = af[0]
    attrs = draw(arranged(real, LINK_MIN, unread_types(LINK_READ, C.IFLA_MAX)))
    msg = w.nlmsg(C.RTM_NEWLINK, msg_flags, seq, pid, w.ifinfomsg(index=index, flags=flags)
                  + attrs.body)
    want = w.LinkRecord(index, flags, b"" if name is None else name[:w.IFNAMSIZ - 1],
                        values["mtu"], values["master"], values["group"], values["txqlen"],
                        values["link_index"],
                        address if address is not None and len(address) <= w.MAX_ADDR_LEN else b"",
                        b"" if info is None else info[1], None if info is None else info[2],
                        None if stats is None else tuple(stats), -1 if af is None else af[1])
    return Generated(msg, want)


def link_record(c) -> w.LinkRecord:
    """A struct pn_link_info as the codec's LinkRecord."""
    return w.LinkRecord(c.index, c.flags, ffi.string(c.name), c.mtu, c.master, c.group, c.txqlen,
                        c.link_index, bytes(ffi.buffer(c.address, c.address_len)),
                        ffi.string(c.kind), None if c.hairpin < 0 else c.hairpin,
                        counters(c) if c.has_stats else None, c.addr_gen_mode)


# -- addresses and routes ---------------------------------------------------------

FAMILIES = [(2, 4), (10, 16)]       # AF_INET, AF_INET6 and their address sizes
ADDR_READ = {C.IFA_ADDRESS, C.IFA_LOCAL, C.IFA_LABEL, C.IFA_BROADCAST, C.IFA_CACHEINFO,
             C.IFA_FLAGS}
ADDR_MIN = {C.IFA_FLAGS: 4, C.IFA_CACHEINFO: 8}


def _some(draw, strategy):
    return draw(st.one_of(st.none(), strategy))


@st.composite
def addr_messages(draw, seq=FIRST, pid=PORT, msg_flags=C.NLM_F_MULTI):
    """An RTM_NEWADDR with every attribute pn_addr_info carries, among others."""
    family, n = draw(st.sampled_from(FAMILIES))
    ip = st.binary(min_size=n, max_size=n)
    head = dict(index=draw(U32), family=family, prefixlen=draw(st.integers(0, 8 * n)),
                scope=draw(U8))
    ifa_flags = draw(U8)
    ips = {t: _some(draw, ip) for t in (C.IFA_LOCAL, C.IFA_ADDRESS, C.IFA_BROADCAST)}
    label, flags = _some(draw, NO_NUL), _some(draw, U32)
    cache = _some(draw, st.tuples(U32, U32, U32, U32))
    real = {t: v for t, v in ips.items() if v is not None}
    if label is not None:
        real[C.IFA_LABEL] = label + b"\0"
    if flags is not None:
        real[C.IFA_FLAGS] = w.U32.pack(flags)
    if cache is not None:
        real[C.IFA_CACHEINFO] = w.cacheinfo(*cache)
    attrs = draw(arranged(real, ADDR_MIN, unread_types(ADDR_READ, C.IFA_MAX)))
    msg = w.nlmsg(C.RTM_NEWADDR, msg_flags, seq, pid,
                  w.ifaddrmsg(family, head["prefixlen"], ifa_flags, head["scope"], head["index"])
                  + attrs.body)
    want = w.AddrInfo(head["index"], family, head["prefixlen"], head["scope"],
                      ifa_flags if flags is None else flags, ips[C.IFA_LOCAL],
                      ips[C.IFA_ADDRESS], ips[C.IFA_BROADCAST],
                      None if label is None else label[:w.IFNAMSIZ - 1],
                      None if cache is None else cache[1], None if cache is None else cache[0])
    return Generated(msg, want)


ROUTE_IPS = (C.RTA_DST, C.RTA_SRC, C.RTA_GATEWAY, C.RTA_PREFSRC)
ROUTE_U32 = (C.RTA_TABLE, C.RTA_OIF, C.RTA_PRIORITY)
ROUTE_READ = {*ROUTE_IPS, *ROUTE_U32, C.RTA_MULTIPATH}


class RouteWant(NamedTuple):
    info: w.RouteInfo
    unkept: int


@st.composite
def route_extra(draw):
    """An attribute a route record does not hold, as the kernel sends it:
    (type, payload)."""
    t = draw(st.sampled_from([C.RTA_PREF, C.RTA_CACHEINFO, C.RTA_METRICS, C.RTA_ENCAP_TYPE,
                              C.RTA_EXPIRES, C.RTA_NH_ID, C.RTA_MARK, C.RTA_UID]))
    if t == C.RTA_PREF:
        return t, bytes([draw(st.sampled_from([0, 1, 3, 255]))])
    if t == C.RTA_CACHEINFO:
        values = [draw(U32) for _ in w.RTA_CACHEINFO_FIELDS]
        values[w.RTA_CACHEINFO_FIELDS.index("rta_expires")] = draw(st.sampled_from([0, 0, 5, -1]))
        return t, w.RTA_CACHEINFO.pack(*values)
    return t, draw(st.binary(max_size=12))


@st.composite
def route_messages(draw, seq=FIRST, pid=PORT, msg_flags=C.NLM_F_MULTI):
    """An RTM_NEWROUTE with every attribute pn_route_info carries, among
    others (what it does not hold counted in ``unkept``)."""
    family, n = draw(st.sampled_from(FAMILIES))
    ip = st.binary(min_size=n, max_size=n)
    head = [family, draw(st.integers(0, 8 * n)), draw(st.integers(0, 8 * n)), draw(U8), draw(U8),
            draw(U8), draw(U8), draw(U8), draw(U32)]
    ips = {t: _some(draw, ip) for t in ROUTE_IPS}
    u32s = {t: _some(draw, U32) for t in ROUTE_U32}
    real = {t: v for t, v in ips.items() if v is not None}
    real.update({t: w.U32.pack(v) for t, v in u32s.items() if v is not None})
    multipath = draw(st.booleans())
    if multipath:
        real[C.RTA_MULTIPATH] = struct.pack("=HBBi", 8, 0, 0, draw(st.integers(1, 99))) * 2
    extras = dict(draw(st.lists(route_extra(), max_size=3)))
    real.update(extras)
    attrs = draw(arranged(real, {**dict.fromkeys(ROUTE_U32, 4), **w.ROUTE_MIN},
                          unread_types(ROUTE_READ | set(w.ROUTE_MIN), C.RTA_MAX)))
    msg = w.nlmsg(C.RTM_NEWROUTE, msg_flags, seq, pid, w.RTMSG.pack(*head) + attrs.body)
    table = head[4] if u32s[C.RTA_TABLE] is None else u32s[C.RTA_TABLE]
    info = w.RouteInfo(family, head[1], head[2], head[3], table, *head[5:], ips[C.RTA_DST],
                       ips[C.RTA_SRC], ips[C.RTA_GATEWAY], ips[C.RTA_PREFSRC],
                       u32s[C.RTA_OIF] or None, u32s[C.RTA_PRIORITY], multipath)
    return Generated(msg, RouteWant(info, w.route_unkept(w.decode_one(msg))))


def route_record(c) -> RouteWant:
    return RouteWant(route_view(c), c.unkept)


# -- the three decoders, side by side ----------------------------------------------

class Decoder(NamedTuple):
    msg_type: int
    generate: object            # strategy of Generated
    parse: object               # bytes -> (rc, record)
    read: object                # nlwire Message -> record (the receiver's reading)


def c_link(msg: bytes):
    rc, out = parse_link(msg)
    return rc, link_record(out)


def c_addr(msg: bytes):
    rc, out = c_parse("addr", msg)
    return rc, addr_view(out)


def c_route(msg: bytes):
    rc, out = c_parse("route", msg)
    return rc, route_record(out)


def read_route(m: w.Message) -> RouteWant:
    info = w.read_route(m)
    return RouteWant(info._replace(oif=info.oif or None), w.route_unkept(m))


DECODERS = {
    "link": Decoder(C.RTM_NEWLINK, link_messages, c_link, w.read_link),
    "addr": Decoder(C.RTM_NEWADDR, addr_messages, c_addr, w.read_addr),
    "route": Decoder(C.RTM_NEWROUTE, route_messages, c_route, read_route),
}
KINDS = sorted(DECODERS)


@FAST
@given(data=st.data(), kind=st.sampled_from(KINDS))
def test_decoder_gives_every_field_generated(data, kind):
    d = DECODERS[kind]
    gen = data.draw(d.generate())
    assert d.parse(gen.msg) == (0, gen.want)


@DATAGRAMS
@given(data=st.data(), kind=st.sampled_from(KINDS))
def test_codec_reads_every_field_generated(data, kind):
    """The reference the mutation fuzz relies on reads what was generated."""
    d = DECODERS[kind]
    gen = data.draw(d.generate())
    assert d.read(w.decode_one(gen.msg)) == gen.want


# ===============================================================================
# One message, mutated: every verdict and every value judged by the codec
# ===============================================================================

# the nests of a link reply the decoder reads, each with its own nests
LINK_NESTS = {C.IFLA_LINKINFO: {C.IFLA_INFO_DATA: {}, C.IFLA_INFO_SLAVE_DATA: {}}}


def length_fields(msg: bytes):
    """(offset, struct format) of nlmsg_len and of every rta_len, those of the
    link nests included, in a well-formed message."""
    yield 0, "=I"
    h = w.NLMSGHDR.unpack_from(msg)
    fixed = {C.RTM_NEWLINK: w.IFINFOMSG, C.RTM_NEWADDR: w.IFADDRMSG,
             C.RTM_NEWROUTE: w.RTMSG}[h[1]].size
    yield from _rta_lens(msg, w.NLMSG_HDRLEN + w.align(fixed), min(h[0], len(msg)),
                         LINK_NESTS if h[1] == C.RTM_NEWLINK else {})


def _rta_lens(msg: bytes, off: int, end: int, nests: dict):
    while off + w.RTA_HDRLEN <= end:
        rta_len, rta_type = w.RTATTR.unpack_from(msg, off)
        if rta_len < w.RTA_HDRLEN:              # inside a decoy nest of random bytes
            return
        yield off, "=H"
        inner = nests.get(rta_type & w.NLA_TYPE_MASK)
        if inner is not None:
            yield from _rta_lens(msg, off + w.RTA_HDRLEN, min(off + rta_len, end), inner)
        off += w.align(rta_len)


def expected(kind: str, msg: bytes):
    """What the C decoder must give for msg: (-EBADMSG, None) where the codec
    reading as the kernel does refuses it (or it is of another type), else
    (0, the record the codec reads)."""
    d = DECODERS[kind]
    try:
        h, raw = next(w.split(msg, strict=False))
        if h.type != d.msg_type:
            raise w.WireError(f"type {h.type}")
        return 0, d.read(w.decode_body(h, raw, strict=False))
    except (w.WireError, StopIteration):
        return -errno.EBADMSG, None


def judged(kind: str, msg: bytes) -> None:
    rc, got = DECODERS[kind].parse(msg)
    want_rc, want = expected(kind, msg)
    assert rc == want_rc
    if rc == 0:
        assert got == want


LENGTH_MOVE = st.tuples(st.just("len"), st.integers(0, 2**16),
                        st.one_of(st.integers(-8, 8), st.sampled_from([-0x10000, 0x10000])))
MUTATION = st.one_of(
    LENGTH_MOVE, LENGTH_MOVE,
    st.tuples(st.just("flip"), st.integers(0, 2**20), st.integers(0, 7)),
    st.tuples(st.just("insert"), st.integers(0, 2**20), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 2**20), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 2**20)),
)


def mutated(msg: bytes, ops) -> bytes:
    """msg with ops applied in turn: "len" moves one of its length fields
    (found in the message as generated) by a delta; the others are
    test_decoders.mutate's."""
    fields = list(length_fields(msg))
    b = bytearray(msg)
    for op in ops:
        if op[0] != "len":
            b = bytearray(mutate(bytes(b), [op]))
            continue
        off, fmt = fields[op[1] % len(fields)]
        size = struct.calcsize(fmt)
        if off + size <= len(b):
            value = struct.unpack_from(fmt, b, off)[0] + op[2]
            struct.pack_into(fmt, b, off, value % (1 << (8 * size)))
    return bytes(b)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(KINDS), ops=st.lists(MUTATION, min_size=1, max_size=3))
def test_decoder_on_mutated_messages_agrees_with_the_codec(data, kind, ops):
    gen = data.draw(DECODERS[kind].generate())
    judged(kind, mutated(gen.msg, ops))


# -- every length field at the bytes that remain, one by one ----------------------

FULL_LINK = w.nlmsg(C.RTM_NEWLINK, 0, FIRST, PORT, w.ifinfomsg(index=4, flags=C.IFF_UP)
                    + w.str_attr(C.IFLA_IFNAME, b"vb0") + w.rtattr(C.IFLA_ADDRESS, b"\2" * 6)
                    + w.u32_attr(C.IFLA_TXQLEN, 1000) + w.u32_attr(C.IFLA_MTU, 1500)
                    + w.u32_attr(C.IFLA_GROUP, 3) + w.u32_attr(C.IFLA_MASTER, 9)
                    + w.u32_attr(C.IFLA_LINK, 5) + w.rtattr(C.IFLA_STATS64, w.stats64(rx_bytes=7))
                    + w.rtattr(C.IFLA_LINKINFO | C.NLA_F_NESTED,
                               w.str_attr(C.IFLA_INFO_KIND, b"veth")
                               + w.str_attr(C.IFLA_INFO_SLAVE_KIND, b"bridge")
                               + w.rtattr(C.IFLA_INFO_SLAVE_DATA | C.NLA_F_NESTED,
                                          w.rtattr(C.IFLA_BRPORT_STATE, b"\3")
                                          + w.rtattr(C.IFLA_BRPORT_MODE, b"\1"))))
FULL = {
    "link": FULL_LINK,
    "addr-v4": w.newaddr(FIRST, PORT, local=b"\xc0\0\2\1", address=b"\xc0\0\2\1",
                         broadcast=b"\xc0\0\2\xff", label=b"va:1", cache=w.cacheinfo(200, 300),
                         flags=0x80),
    "addr-v6": w.newaddr(FIRST, PORT, family=10, prefixlen=64, address=b"\x20" * 16,
                         local=b"\x20" * 16, label=b"a", cache=w.cacheinfo(1, 2), flags=0x280),
    "route-v4": w.newroute(FIRST, PORT, dst_len=24, table=1000, dst=b"\xcb\0\x71\0", priority=7,
                           prefsrc=b"\xc0\0\2\1", oif=3, gateway=b"\xc0\0\2\xfe",
                           extra=w.rtattr(C.RTA_PREF, b"\1")),
    "route-v6": w.newroute(FIRST, PORT, family=10, dst_len=48, table=254, dst=b"\x20" * 16,
                           src=b"\x20" * 16, priority=1024, oif=2, gateway=b"\xfe" * 16,
                           multipath=struct.pack("=HBBi", 8, 0, 0, 3)),
}


def remaining(msg: bytes, off: int, fmt: str) -> int:
    """The bytes a length field at off may cover: to the end of what holds it."""
    if fmt == "=I":
        return len(msg)
    ends = [o + w.RTATTR.unpack_from(msg, o)[0] for o, f in length_fields(msg)
            if f == "=H" and o < off < o + w.RTATTR.unpack_from(msg, o)[0]]
    return min(ends, default=len(msg)) - off


def test_full_link_reply_has_every_length_field_and_decodes_whole():
    fields = list(length_fields(FULL_LINK))
    assert len(fields) == 1 + 9 + 3 + 2
    assert expected("link", FULL_LINK)[1].hairpin == 1


@pytest.mark.parametrize("case", sorted(FULL))
@pytest.mark.parametrize("delta", [-1, 0, 1, 2, 3])
def test_every_length_field_around_the_bytes_remaining_is_judged_like_the_codec(case, delta):
    msg = FULL[case]
    for off, fmt in length_fields(msg):
        bad = bytearray(msg)
        struct.pack_into(fmt, bad, off, remaining(msg, off, fmt) + delta)
        judged(case.split("-")[0], bytes(bad))


@pytest.mark.parametrize("case", sorted(FULL))
@pytest.mark.parametrize("value", [0, 1, 2, 3])
def test_every_rta_len_below_an_attribute_header_is_judged_like_the_codec(case, value):
    msg = FULL[case]
    for off, fmt in list(length_fields(msg))[1:]:
        bad = bytearray(msg)
        struct.pack_into(fmt, bad, off, value)
        judged(case.split("-")[0], bytes(bad))


@pytest.mark.parametrize("position, which, want", [
    (1, C.IFLA_IFNAME, (-errno.EBADMSG, None, None)),       # top level: the message is refused
    (10, C.IFLA_INFO_KIND, (0, b"", None)),                 # IFLA_LINKINFO's: the nest is dropped
    (14, C.IFLA_BRPORT_MODE, (0, b"veth", None)),           # the port data's: only hairpin goes
])
def test_rta_len_past_what_holds_it_refuses_the_message_or_drops_the_nest(position, which, want):
    off, _ = list(length_fields(FULL_LINK))[position]
    assert w.RTATTR.unpack_from(FULL_LINK, off)[1] & w.NLA_TYPE_MASK == which
    bad = bytearray(FULL_LINK)
    struct.pack_into("=H", bad, off, len(FULL_LINK))
    rc, got = c_link(bytes(bad))
    assert (rc, got.kind if rc == 0 else None, got.hairpin if rc == 0 else None) == want
    assert rc != 0 or got.mtu == 1500


MINIMA = ([("link", t, n) for t, n in LINK_MIN.items()]
          + [("addr", t, n) for t, n in ADDR_MIN.items()]
          + [("route", t, n) for t, n in w.ROUTE_MIN.items()])


def bare(kind: str, attrs: bytes) -> bytes:
    """A message of kind holding its family header and attrs only."""
    if kind == "link":
        return w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, w.ifinfomsg(index=2) + attrs)
    return (w.newaddr if kind == "addr" else w.newroute)(1, PORT, extra=attrs)


@pytest.mark.parametrize("kind, type_, minimum", MINIMA)
def test_attribute_below_the_minimum_of_its_type_leaves_an_earlier_one_standing(kind, type_,
                                                                                minimum):
    good = w.rtattr(type_, bytes(range(1, minimum + 1)))
    alone = DECODERS[kind].parse(bare(kind, good))
    assert alone != DECODERS[kind].parse(bare(kind, b""))
    for short in range(minimum):
        msg = bare(kind, good + w.rtattr(type_, b"\xff" * short))
        assert DECODERS[kind].parse(msg) == alone == expected(kind, msg)


def test_empty_brport_mode_is_ignored():
    rc, got = c_link(w.newlink(1, PORT, 2, extra=w.rtattr(
        C.IFLA_LINKINFO, w.str_attr(C.IFLA_INFO_SLAVE_KIND, b"bridge")
        + w.rtattr(C.IFLA_INFO_SLAVE_DATA, w.rtattr(C.IFLA_BRPORT_MODE, b"")))))
    assert (rc, got.hairpin) == (0, None)


@pytest.mark.parametrize("pref, unkept", [(C.ICMPV6_ROUTER_PREF_MEDIUM, 0), (1, 1), (3, 1)])
def test_route_preference_other_than_medium_is_unkept(pref, unkept):
    rc, got = c_route(w.newroute(1, PORT, extra=w.rtattr(C.RTA_PREF, bytes([pref]))))
    assert (rc, got.unkept) == (0, unkept << C.RTA_PREF)


@pytest.mark.parametrize("expires, unkept", [(0, 0), (1, 1), (-1, 1)])
def test_route_cacheinfo_is_unkept_only_with_an_expiry(expires, unkept):
    values = [0] * len(w.RTA_CACHEINFO_FIELDS)
    values[w.RTA_CACHEINFO_FIELDS.index("rta_expires")] = expires
    rc, got = c_route(w.newroute(1, PORT, extra=w.rtattr(C.RTA_CACHEINFO,
                                                         w.RTA_CACHEINFO.pack(*values))))
    assert (rc, got.unkept) == (0, unkept << C.RTA_CACHEINFO)


def test_route_attribute_of_a_type_past_rta_max_is_not_counted_unkept():
    rc, got = c_route(w.newroute(1, PORT, extra=w.rtattr(C.RTA_MAX + 1, b"\1\2\3\4")))
    assert (rc, got.unkept) == (0, 0)


@pytest.mark.parametrize("type_", ["RTA_METRICS", "RTA_MULTIPATH", "RTA_ENCAP", "RTA_NH_ID",
                                   "RTA_MARK"])
def test_route_attribute_the_record_does_not_hold_is_unkept(type_):
    rc, got = c_route(w.newroute(1, PORT, extra=w.rtattr(C[type_], b"\0" * 8)))
    assert (rc, got.unkept) == (0, 1 << C[type_])


# ===============================================================================
# Datagrams: replies to a batch, and multi-part dumps
# ===============================================================================

def ack_outcome(h: w.Header, raw: bytes):
    """(error, text) an ACK or NLMSG_DONE gives its request, as the codec reads
    it (the kernel's lenient rules); WireError if it is malformed."""
    m = w.decode_body(h, raw, strict=False)
    err = m.fixed if h.type == C.NLMSG_DONE else m.fixed.error
    found = w.last(m.attrs, C.NLMSGERR_ATTR_MSG)
    text = w.cstr(found, 256) if found is not None else b""
    return (err if err <= 0 else -errno.EPROTO), text


class Slot:
    """What one pn_result must hold, for the replies model."""

    def __init__(self, error=PENDING, text=b"", link=None):
        self.error, self.text, self.link = error, text, link


def replies_model(data: bytes, slots: List[Slot]) -> int:
    """pn_parse_replies' contract over the codec: how many requests the
    datagram completes (slots updated), or -EBADMSG."""
    done = 0
    try:
        for h, raw in w.split(data, strict=False):
            i = (h.seq - FIRST) & 0xFFFFFFFF
            if h.pid != PORT or i >= len(slots) or slots[i].error != PENDING:
                continue
            if h.type in (C.NLMSG_ERROR, C.NLMSG_DONE):
                slots[i].error, slots[i].text = ack_outcome(h, raw)
                done += 1
            elif h.type == C.RTM_NEWLINK:
                slots[i].link = None
                slots[i].link = w.read_link(w.decode_body(h, raw, strict=False))
    except w.WireError:
        return -errno.EBADMSG
    return done


@st.composite
def reply_parts(draw, count: int):
    """One message of a reply datagram: an ACK, NLMSG_DONE, a full
    RTM_NEWLINK, a NOOP, an address; for one of the requests or not."""
    seq = (FIRST + draw(st.integers(-1, count))) & 0xFFFFFFFF
    pid = draw(st.sampled_from([PORT, PORT, PORT, PORT + 1]))
    kind = draw(st.sampled_from(["ack", "ack", "done", "link", "link", "noop", "addr"]))
    if kind == "link":
        return draw(link_messages(seq, pid)).msg
    if kind == "addr":
        return draw(addr_messages(seq, pid)).msg
    if kind == "noop":
        return w.nlmsg(C.NLMSG_NOOP, 0, seq, pid, b"")
    err = draw(ACK_ERRORS)
    if kind == "done":
        return w.done(seq, pid, err)
    request = w.nlmsg(C.RTM_SETLINK, C.NLM_F_REQUEST | C.NLM_F_ACK, seq, PORT,
                      w.ifinfomsg(index=1) + w.u32_attr(C.IFLA_MTU, 9000))
    return w.ack(seq, pid, err, request if draw(st.booleans()) else None,
                 capped=draw(st.sampled_from([None, True, False])),
                 ext_msg=draw(st.one_of(st.none(), st.binary(max_size=300))))


def check_replies(data: bytes, count: int) -> None:
    res = pending(count)
    slots = [Slot() for _ in range(count)]
    rc = parse(data, res, count)
    assert rc == replies_model(data, slots)
    for i, slot in enumerate(slots):
        r = res[i]
        assert (r.error, ext_msg(r)) == (slot.error, slot.text)
        assert r.has_link == (slot.link is not None)
        if slot.link is not None:
            assert link_record(r.link) == slot.link


@DATAGRAMS
@given(data=st.data(), count=st.integers(1, 4))
def test_reply_datagrams_give_what_the_codec_reads(data, count):
    parts = data.draw(st.lists(reply_parts(count), max_size=6))
    check_replies(b"".join(parts), count)


@DATAGRAMS
@given(data=st.data(), count=st.integers(1, 4), ops=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_reply_datagrams_are_judged_by_the_codec(data, count, ops):
    parts = data.draw(st.lists(reply_parts(count), min_size=1, max_size=4))
    at = data.draw(st.integers(0, len(parts) - 1))
    parts[at] = mutated_part(parts[at], ops)
    check_replies(b"".join(parts), count)


def mutated_part(msg: bytes, ops) -> bytes:
    """One message of a datagram mutated (its length fields known when it is
    a link, address or route)."""
    if w.NLMSGHDR.unpack_from(msg)[1] in (C.RTM_NEWLINK, C.RTM_NEWADDR, C.RTM_NEWROUTE):
        return mutated(msg, ops)
    return mutate(msg, [op for op in ops if op[0] != "len"])


# -- dumps ----------------------------------------------------------------------------

DUMP_ARRAYS = {"link": ("links", "struct pn_link_info[]", link_record),
               "addr": ("addrs", "struct pn_addr_info[]", addr_view),
               "route": ("routes", "struct pn_route_info[]", route_record)}


class DumpState(NamedTuple):
    parts: list
    done: int
    error: int
    interrupted: int
    text: bytes                 # the kernel's ext-ack text with the error that ended the dump


def dump_model(data: bytes, kind: str, cap: int):
    """pn_parse_dump's contract over the codec: (rc, DumpState)."""
    d = DECODERS[kind]
    parts, done, error, intr, text = [], 0, 0, 0, b""
    try:
        for h, raw in w.split(data, strict=False):
            if h.pid != PORT or h.seq != FIRST:
                continue
            if h.type in (C.NLMSG_DONE, C.NLMSG_ERROR):
                (error, text), done = ack_outcome(h, raw), 1
            elif h.type == d.msg_type:
                if len(parts) == cap:
                    return -errno.ENOSPC, DumpState([], 0, 0, 0, b"")
                parts.append(d.read(w.decode_body(h, raw, strict=False)))
            intr |= bool(h.flags & C.NLM_F_DUMP_INTR)
            if done:
                break
    except w.WireError:
        return -errno.EBADMSG, DumpState([], 0, 0, 0, b"")
    return len(parts), DumpState(parts, done, error, intr, text)


def new_dump(kind: str, cap: int):
    field, ctype, _ = DUMP_ARRAYS[kind]
    array = ffi.new(ctype, cap + GUARD)
    dump = ffi.new("struct pn_dump *", {"type": DECODERS[kind].msg_type, field: array,
                                        "cap": cap})
    return dump, array


def check_dump(data: bytes, kind: str, cap: int) -> int:
    dump, array = new_dump(kind, cap)
    size = GUARD * ffi.sizeof(DUMP_ARRAYS[kind][1].replace("[]", ""))
    guard = bytes(ffi.buffer(array + cap, size))
    rc = parse_dump(data, dump)
    want_rc, want = dump_model(data, kind, cap)
    assert rc == want_rc
    assert bytes(ffi.buffer(array + cap, size)) == guard
    view = DUMP_ARRAYS[kind][2]
    got = DumpState([view(array[i]) for i in range(dump.n)], dump.done, dump.error,
                    dump.interrupted, ffi.string(dump.ext_msg))
    assert got == want
    return rc


@st.composite
def dump_parts(draw, kind: str):
    """One message of a dump datagram: a part of the dump's kind (maybe
    interrupted), a part of another kind or of another dump, its end
    (NLMSG_DONE, or NLMSG_ERROR when the kernel refused it), a NOOP."""
    seq = draw(st.sampled_from([FIRST] * 6 + [FIRST + 1, FIRST - 1]))
    pid = draw(st.sampled_from([PORT] * 6 + [PORT + 1]))
    flags = C.NLM_F_MULTI | draw(st.sampled_from([0] * 5 + [C.NLM_F_DUMP_INTR]))
    what = draw(st.sampled_from(["part"] * 6 + ["other", "done", "error", "noop"]))
    if what == "part" or what == "other":
        other = draw(st.sampled_from([k for k in KINDS if k != kind]))
        return draw(DECODERS[kind if what == "part" else other].generate(seq, pid, flags)).msg
    if what == "done":
        return w.done(seq, pid, draw(ACK_ERRORS), flags)
    if what == "error":
        return w.ack(seq, pid, draw(ACK_ERRORS), ext_msg=draw(st.one_of(st.none(), NO_NUL)))
    return w.nlmsg(C.NLMSG_NOOP, flags, seq, pid, b"")


@DATAGRAMS
@given(data=st.data(), kind=st.sampled_from(KINDS), cap=st.integers(0, 5))
def test_dump_datagrams_give_what_the_codec_reads(data, kind, cap):
    parts = data.draw(st.lists(dump_parts(kind), max_size=7))
    check_dump(b"".join(parts), kind, cap)


@DATAGRAMS
@given(data=st.data(), kind=st.sampled_from(KINDS), cap=st.integers(0, 5),
       ops=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_dump_datagrams_are_judged_by_the_codec(data, kind, cap, ops):
    parts = data.draw(st.lists(dump_parts(kind), min_size=1, max_size=5))
    at = data.draw(st.integers(0, len(parts) - 1))
    parts[at] = mutated_part(parts[at], ops)
    check_dump(b"".join(parts), kind, cap)


def test_dump_of_parts_done_and_interrupted_in_one_datagram():
    data = (w.newlink(FIRST, PORT, 1, name=b"a", msg_flags=C.NLM_F_MULTI)
            + w.newlink(FIRST, PORT, 2, name=b"b", msg_flags=C.NLM_F_MULTI | C.NLM_F_DUMP_INTR)
            + w.done(FIRST, PORT, 0) + w.newlink(FIRST, PORT, 3, name=b"late"))
    assert check_dump(data, "link", 4) == 2


# -- nlmsg_len of each message of a datagram at the bytes remaining ------------------

DATAGRAM = (w.ack(FIRST, PORT, -errno.EINVAL, ext_msg=b"no") + FULL_LINK
            + w.newlink(FIRST + 1, PORT, 6, name=b"x") + w.ack(FIRST + 1, PORT, 0))
DUMP_DATAGRAM = (w.newlink(FIRST, PORT, 1, name=b"a", msg_flags=C.NLM_F_MULTI) + FULL_LINK
                 + w.done(FIRST, PORT, 0))


def message_offsets(data: bytes) -> List[int]:
    offs, off = [], 0
    while off < len(data):
        offs.append(off)
        off += w.align(w.NLMSGHDR.unpack_from(data, off)[0])
    return offs


def nlmsg_len_moved(data: bytes, which: int, delta: int) -> bytes:
    """data with the nlmsg_len of its message ``which`` set to the bytes
    remaining from it, plus delta."""
    off = message_offsets(data)[which]
    bad = bytearray(data)
    struct.pack_into("=I", bad, off, len(data) - off + delta)
    return bytes(bad)


@pytest.mark.parametrize("delta", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("which", range(4))
def test_each_nlmsg_len_of_a_reply_datagram_around_the_bytes_remaining(which, delta):
    check_replies(nlmsg_len_moved(DATAGRAM, which, delta), 2)


@pytest.mark.parametrize("delta", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("which", range(3))
def test_each_nlmsg_len_of_a_dump_datagram_around_the_bytes_remaining(which, delta):
    check_dump(nlmsg_len_moved(DUMP_DATAGRAM, which, delta), "link", 4)


# -- where the C decoder and the codec disagree (known, reported) -------------------

def codec_verdict(data: bytes) -> str:
    try:
        w.decode(data, strict=False)
    except w.WireError as e:
        return f"refused: {e}"
    return "accepted"


# An uncapped error ACK without NLM_F_ACK_TLVS whose quoted request says 64
# bytes where 4 follow its header (40 bytes in all):
#   28000000 0200 0000 e8030000 4200ed5e | eaffffff 40000000 1300 0500 e8030000 4200ed5e | 01000000
QUOTE_OVERRUNS = bytes.fromhex("28000000020000" "00e80300004200ed5e" "eaffffff400000001300"
                               "0500e80300004200ed5e01000000")
# An NLMSG_DONE (NLM_F_ACK_TLVS) whose TLV says 200 bytes where 8 follow (28 bytes):
#   1c000000 0300 0202 e8030000 4200ed5e | a1ffffff | c8000100 61626364
DONE_TLV_OVERRUNS = bytes.fromhex("1c00000003000202e80300004200ed5ea1ffffffc800010061626364")


def test_disagreement_bytes_are_what_they_say():
    assert (FIRST, PORT) == (0x3E8, 0x5EED0042)
    assert codec_verdict(QUOTE_OVERRUNS).startswith("refused: original request of 64 bytes")
    assert codec_verdict(DONE_TLV_OVERRUNS).startswith("refused: rta_len 200 runs past")
    assert codec_verdict(w.ack(FIRST, PORT, -errno.EINVAL, w.nlmsg(
        C.RTM_SETLINK, 5, FIRST, PORT, b"\1\0\0\0"), capped=False)) == "accepted"


@pytest.mark.parametrize("data", [
    pytest.param(QUOTE_OVERRUNS, id="ack-quote-overruns"),
    pytest.param(DONE_TLV_OVERRUNS, id="done-tlv-overruns"),
])
def test_ack_the_codec_refuses_is_ebadmsg_and_completes_nothing(data):
    res = pending(1)
    assert parse(data, res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


def test_done_ending_a_refused_dump_carries_its_ext_ack_text():
    data = w.nlmsg(C.NLMSG_DONE, C.NLM_F_MULTI | C.NLM_F_ACK_TLVS, FIRST, PORT,
                   w.DONE_ERROR.pack(-errno.EOPNOTSUPP)
                   + w.str_attr(C.NLMSGERR_ATTR_MSG, b"filter not supported"))
    assert w.decode_one(data).attrs.get(C.NLMSGERR_ATTR_MSG).string() == b"filter not supported"
    res = pending(1)
    assert parse(data, res, 1) == 1
    assert (res[0].error, ext_msg(res[0])) == (-errno.EOPNOTSUPP, b"filter not supported")
