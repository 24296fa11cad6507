"""Kernel-free tests of the C encoders and the Python request builders.

Everything the C core writes is decoded by ``nlwire`` (an independent
reference codec read from the UAPI headers) and checked field by field,
including exact lengths, 4-byte alignment and zero padding.
"""
from __future__ import annotations

import errno
import ipaddress
import pathlib
import re
import socket
import struct
import subprocess
import sys

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import nlwire as w
from nlwire import C
from pynetlink import addresses, links, routes
from pynetlink import _core as core
from pynetlink._core import ffi, lib

pytestmark = pytest.mark.unit

FAST = settings(deadline=None)            # examples: the hypothesis profile (conftest)

REQ = C.NLM_F_REQUEST | C.NLM_F_ACK
CREATE = C.NLM_F_CREATE | C.NLM_F_EXCL
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
I32 = st.integers(-(2**31), 2**31 - 1)
SEQ = U32


# -- buffers -------------------------------------------------------------------

class Buf:
    """A ``struct pn_buf`` over ``cap`` bytes of fresh storage (pre-filled
    with ``fill`` so that stray writes show)."""

    def __init__(self, cap: int = 4096, fill: int = 0xA5):
        self.cap = cap
        self.data = ffi.new("unsigned char[]", max(cap, 1))
        ffi.memmove(self.data, bytes([fill]) * cap, cap)
        self.ptr = ffi.new("struct pn_buf *", {"data": self.data, "cap": cap})

    @property
    def len(self) -> int:
        return self.ptr.len

    def bytes(self) -> bytes:
        """The bytes in use: data[0 .. len)."""
        return bytes(ffi.buffer(self.data, self.ptr.len))

    def storage(self) -> bytes:
        return bytes(ffi.buffer(self.data, self.cap))

    def preload(self, content: bytes) -> None:
        ffi.memmove(self.data, content, len(content))
        self.ptr.len = len(content)


def cbytes(data: bytes):
    """A C copy of ``data`` (kept alive by the caller)."""
    return ffi.new("unsigned char[]", bytes(data) or b"\0")


def encode(fn, cap: int = 4096) -> bytes:
    """Run ``fn(pn_buf *)`` on a fresh buffer; assert success, return the bytes."""
    b = Buf(cap)
    rc = fn(b.ptr)
    assert rc == 0, f"encoder failed with {rc}"
    return b.bytes()


def one(fn, cap: int = 4096) -> w.Message:
    return w.decode_one(encode(fn, cap))


PRIOR = w.nlmsg(C.NLMSG_NOOP, 0, 7, 0, b"prior message!!!")   # bytes already in the buffer


def assert_enospc_leaves_buffer(fn) -> None:
    """For every capacity too small for the message ``fn`` appends after
    PRIOR, ``fn`` fails with -ENOSPC and leaves len and PRIOR intact; at the
    exact capacity it succeeds."""
    need = len(encode(fn))
    assert need > 0
    for cap in range(len(PRIOR), len(PRIOR) + need):
        b = Buf(cap)
        b.preload(PRIOR)
        assert fn(b.ptr) == -errno.ENOSPC, cap
        assert b.len == len(PRIOR), cap
        assert b.bytes() == PRIOR, cap
    b = Buf(len(PRIOR) + need)
    b.preload(PRIOR)
    assert fn(b.ptr) == 0
    assert b.len == len(PRIOR) + need


def assert_fails_unchanged(fn, err: int) -> None:
    b = Buf(4096)
    b.preload(PRIOR)
    assert fn(b.ptr) == -err
    assert b.len == len(PRIOR)
    assert b.bytes() == PRIOR


# -- specs (built here, independently of pynetlink._core) ----------------------

LINK_FIELDS = {
    # spec member: (pn_link_field bit, IFLA_* attribute, decoder of its payload)
    "name": (lib.PN_LINK_NAME, C.IFLA_IFNAME, w.Attr.string),
    "mtu": (lib.PN_LINK_MTU, C.IFLA_MTU, w.Attr.u32),
    "master": (lib.PN_LINK_MASTER, C.IFLA_MASTER, w.Attr.u32),
    "ns_fd": (lib.PN_LINK_NS_FD, C.IFLA_NET_NS_FD, w.Attr.i32),
    "ns_pid": (lib.PN_LINK_NS_PID, C.IFLA_NET_NS_PID, w.Attr.i32),
    "group": (lib.PN_LINK_GROUP, C.IFLA_GROUP, w.Attr.u32),
    "txqlen": (lib.PN_LINK_TXQLEN, C.IFLA_TXQLEN, w.Attr.u32),
    "address": (lib.PN_LINK_ADDRESS, C.IFLA_ADDRESS, lambda a: a.payload),
    "ext_mask": (lib.PN_LINK_EXT_MASK, C.IFLA_EXT_MASK, w.Attr.u32),
    "addr_gen_mode": (lib.PN_LINK_ADDR_GEN_MODE, C.IFLA_AF_SPEC, lambda a: _addr_gen_mode(a)),
    "link": (lib.PN_LINK_LINK, C.IFLA_LINK, w.Attr.u32),    # link kinds (issue 16)
}


def _addr_gen_mode(spec: w.Attr) -> int:
    """IFLA_AF_SPEC { AF_INET6 { IFLA_INET6_ADDR_GEN_MODE u8 } }, nothing else."""
    assert spec.flags == 0
    (inet6,) = spec.nested()
    assert inet6.type == socket.AF_INET6
    (mode,) = inet6.nested()
    assert mode.type == C.IFLA_INET6_ADDR_GEN_MODE and len(mode.payload) == 1
    return mode.payload[0]
FIELD_BY_ATTR = {attr: (name, dec) for name, (_, attr, dec) in LINK_FIELDS.items()}


def link_spec(index: int = 0, flags: int = 0, change: int = 0, **fields):
    """A struct pn_link_spec with ``fields`` present; returns (spec, keepalive)."""
    spec = ffi.new("struct pn_link_spec *")
    keep = []
    spec.index, spec.flags, spec.change = index, flags, change
    bits = 0
    for key, value in fields.items():
        bits |= LINK_FIELDS[key][0]
        if key == "name":
            if value is None:
                continue                    # the bit with an empty name
            # the field is char[16]: a 16-byte (or longer) name fills it with no NUL
            ffi.memmove(spec.name, value, min(len(value), len(spec.name)))
        elif key == "address":
            spec.address_len = len(value)
            ffi.memmove(spec.address, value, min(len(value), 32))
        else:
            setattr(spec, key, value)
    spec.fields = bits
    return spec, keep


def link_fields(attrs: w.Attrs) -> dict:
    """The spec members a message's attributes say (each at most once)."""
    out = {}
    for a in attrs:
        assert a.type in FIELD_BY_ATTR, f"unexpected attribute {a.type}"
        name, dec = FIELD_BY_ATTR[a.type]
        assert name not in out, f"attribute {a.type} twice"
        assert a.flags == 0
        out[name] = dec(a)
    return out


def addr_spec(index=1, family=socket.AF_INET, prefixlen=24, scope=0, local=b"", broadcast=None,
              flags=0):
    spec = ffi.new("struct pn_addr_spec *")
    spec.index, spec.family, spec.prefixlen, spec.scope = index, family, prefixlen, scope
    spec.flags = flags
    ffi.memmove(spec.local, local, len(local))
    if broadcast is not None:
        spec.has_broadcast = 1
        ffi.memmove(spec.broadcast, broadcast, len(broadcast))
    return spec


def route_spec(family=socket.AF_INET, dst=b"", dst_len=0, gateway=None, oif=0,
               table=0, protocol=0, scope=0, rtype=0, prefsrc=None, priority=None):
    spec = ffi.new("struct pn_route_spec *")
    if prefsrc is not None:
        spec.has_prefsrc = 1
        ffi.memmove(spec.prefsrc, prefsrc, len(prefsrc))
    if priority is not None:
        spec.has_priority, spec.priority = 1, priority
    spec.family, spec.dst_len, spec.oif = family, dst_len, oif
    spec.table, spec.protocol, spec.scope, spec.type = table, protocol, scope, rtype
    ffi.memmove(spec.dst, dst, len(dst))
    if gateway is not None:
        spec.has_gateway = 1
        ffi.memmove(spec.gateway, gateway, len(gateway))
    return spec


# -- strategies ------------------------------------------------------------------

# dev_valid_name(): '/', ':', NUL and the kernel's isspace() (which counts 0xA0);
# '%' too, which the kernel reads as a name template ("eth%d"), so no device has one.
BAD_NAME_BYTES = frozenset(b"/:%\0 \t\n\v\f\r\xa0")
name_char = st.characters(codec="utf-8").filter(lambda c: BAD_NAME_BYTES.isdisjoint(c.encode()))
SAFE_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."


@st.composite
def ifnames(draw, nbytes=None):
    """A name the kernel accepts: UTF-8 text of ``nbytes`` (1..15) bytes, none
    of them '/', ':', '%', NUL or whitespace (0xA0 included), not '.' or '..'."""
    n = draw(st.integers(1, 15)) if nbytes is None else nbytes
    chars, size = [], 0
    while size < n:
        c = draw(name_char)
        if size + len(c.encode()) > n:
            c = draw(st.sampled_from(SAFE_ASCII))
        chars.append(c)
        size += len(c.encode())
    name = "".join(chars)
    assume(name not in (".", ".."))
    return name


raw_names = st.binary(min_size=1, max_size=15).filter(lambda b: 0 not in b)
legal_raw_names = st.binary(min_size=1, max_size=15).filter(
    lambda b: BAD_NAME_BYTES.isdisjoint(b) and b not in (b".", b".."))


# ===============================================================================
# The reference codec itself
# ===============================================================================

def test_header_reader_counts_enum_members_up_from_zero():
    c = w.Constants(["enum { A, B, C_, };"])
    assert (c.A, c.B, c.C_) == (0, 1, 2)


def test_header_reader_counts_on_from_last_explicit_value():
    c = w.Constants(["enum { A, B = 16, C_, D = 0x20, E };"])
    assert (c.A, c.B, c.C_, c.D, c.E) == (0, 16, 17, 32, 33)


def test_header_reader_ignores_alias_defines_inside_enums():
    text = "enum {\n X_BASE = 16,\n#define X_BASE X_BASE\n X_ONE,\n#define X_ONE X_ONE\n X_TWO,\n};\n"
    c = w.Constants([text])
    assert (c.X_BASE, c.X_ONE, c.X_TWO) == (16, 17, 18)


def test_header_reader_evaluates_max_sentinels_and_expressions():
    text = ("enum { F_UNSPEC, F_A, /* comment, with comma */ F_B,\n __F_MAX\n"
            "#define F_MAX (__F_MAX - 1)\n};\n#define G (1U << 3)\n#define H ~(G | 1)\n"
            "enum e { Y = G, Z = Y - 1, ZZ = __F_MAX - 1 };\n")
    c = w.Constants([text])
    assert (c["__F_MAX"], c.F_MAX, c.G, c.H, c.Y, c.Z, c.ZZ) == (3, 2, 8, ~9, 8, 7, 2)


def test_header_reader_refuses_unknown_and_conflicting_names():
    c = w.Constants(["#define A 1\n#define A 2\nenum { B = NOPE, B2 };\n"])
    for name in ("A", "B", "B2", "MISSING"):
        with pytest.raises(w.HeaderError):
            c[name]


def test_header_reader_refuses_expressions_it_cannot_evaluate():
    c = w.Constants(["#define S ((int) sizeof(struct x))\n"])
    with pytest.raises(w.HeaderError):
        c["S"]


def _core_constant_names():
    """Every kernel constant the core hands to Python (the ``#define NAME ...``
    lines of csrc/pn_constants.cdef, filled in by the C compiler)."""
    cdef = pathlib.Path(__file__).resolve().parents[1] / "csrc" / "pn_constants.cdef"
    names = re.findall(r"^#define\s+(\w+)\s+\.\.\.", cdef.read_text(), re.M)
    assert names, "no constants found in pn_constants.cdef"
    return names


FROM_ELSEWHERE = {"AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6, "AF_UNSPEC": socket.AF_UNSPEC,
                  "NLMSG_HDRLEN": w.NLMSG_HDRLEN,
                  # the core's own: the smallest dump part, NLMSG_LENGTH(sizeof(struct ifaddrmsg))
                  "PN_DUMP_PART_MIN": w.NLMSG_HDRLEN + w.IFADDRMSG.size}


@pytest.mark.parametrize("name", _core_constant_names())
def test_header_constants_agree_with_compiled_core(name):
    expected = FROM_ELSEWHERE[name] if name in FROM_ELSEWHERE else C[name]
    assert getattr(lib, name) == expected


def test_header_hdrlen_agrees_with_compiled_core():
    assert w.NLMSG_HDRLEN == lib.NLMSG_HDRLEN


def test_address_families_agree_with_compiled_core():
    assert (socket.AF_INET, socket.AF_INET6) == (lib.AF_INET, lib.AF_INET6)


@pytest.mark.parametrize("layout, name", [
    (w.NLMSGHDR, "nlmsghdr"), (w.IFINFOMSG, "ifinfomsg"), (w.IFADDRMSG, "ifaddrmsg"),
    (w.RTMSG, "rtmsg"), (w.RTATTR, "rtattr"), (w.NLMSGERR, "nlmsgerr"),
])
def test_struct_formats_have_the_header_struct_sizes(layout, name):
    fields = w.header_struct(name)
    assert layout.size == struct.calcsize("=" + "".join(c for _, c in fields))


def test_stats64_layout_is_read_from_the_header():
    assert w.STATS64_FIELDS[:8] == ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes",
                                    "rx_errors", "tx_errors", "rx_dropped", "tx_dropped")
    assert w.STATS64.size == 8 * len(w.STATS64_FIELDS)


GOOD_MSG = w.nlmsg(C.RTM_NEWLINK, REQ, 1, 0, w.ifinfomsg() + w.u32_attr(C.IFLA_MTU, 1500))


def test_reference_decoder_accepts_a_well_formed_message():
    m = w.decode_one(GOOD_MSG)
    assert m.attrs.get(C.IFLA_MTU).u32() == 1500


@pytest.mark.parametrize("bad", [
    GOOD_MSG[:-4],                                                  # truncated
    GOOD_MSG + b"\0\0\0\0",                                         # trailing bytes
    struct.pack("=I", len(GOOD_MSG) + 4) + GOOD_MSG[4:],            # nlmsg_len too long
    struct.pack("=I", 12) + GOOD_MSG[4:],                           # nlmsg_len below header
    struct.pack("=I", len(GOOD_MSG) - 1) + GOOD_MSG[4:],            # unaligned nlmsg_len
    GOOD_MSG[:32] + struct.pack("=HH", 3, C.IFLA_MTU) + GOOD_MSG[36:],   # rta_len < 4
    GOOD_MSG[:32] + struct.pack("=HH", 12, C.IFLA_MTU) + GOOD_MSG[36:],  # rta_len past the end
    GOOD_MSG[:17] + b"\1" + GOOD_MSG[18:],                          # ifinfomsg pad byte
    w.nlmsg(C.RTM_NEWLINK, REQ, 1, 0, w.ifinfomsg() + struct.pack("=HH", 5, 3) + b"a\1\0\0"),  # padding
])
def test_reference_decoder_rejects_inconsistent_bytes(bad):
    with pytest.raises(w.WireError):
        w.decode(bad)


# ===============================================================================
# Message building primitives (nlmsg.c)
# ===============================================================================

@FAST
@given(type_=U16, flags=U16, seq=SEQ, fixed=st.binary(max_size=40))
def test_msg_start_and_end_frame_header_and_fixed_part(type_, flags, seq, fixed):
    b = Buf()
    c = cbytes(fixed)
    start = lib.pn_msg_start(b.ptr, type_, flags, seq, c, len(fixed))
    assert start == 0
    assert lib.pn_msg_end(b.ptr, start) == 0
    raw = b.bytes()
    assert len(raw) == w.NLMSG_HDRLEN + w.align(len(fixed))
    assert w.Header(*w.NLMSGHDR.unpack_from(raw)) == (len(raw), type_, flags, seq, 0)
    assert raw[w.NLMSG_HDRLEN:] == fixed + bytes(w.align(len(fixed)) - len(fixed))


def test_msg_start_returns_the_offset_of_the_new_message():
    b = Buf()
    b.preload(PRIOR)
    assert lib.pn_msg_start(b.ptr, C.NLMSG_NOOP, 0, 1, ffi.NULL, 0) == len(PRIOR)


def test_msg_start_leaves_length_zero_until_msg_end():
    b = Buf()
    lib.pn_msg_start(b.ptr, C.NLMSG_NOOP, 0, 1, ffi.NULL, 0)
    assert w.NLMSGHDR.unpack_from(b.bytes())[0] == 0


def test_msg_end_covers_attributes_appended_after_start():
    b = Buf()
    start = lib.pn_msg_start(b.ptr, C.RTM_SETLINK, REQ, 9, w.ifinfomsg(index=3), w.IFINFOMSG.size)
    assert lib.pn_attr_put_u32(b.ptr, C.IFLA_MTU, 9000) == 0
    assert lib.pn_msg_end(b.ptr, start) == 0
    m = w.decode_one(b.bytes())
    assert (m.header.len, m.fixed.index, m.attrs.get(C.IFLA_MTU).u32()) == (len(b.bytes()), 3, 9000)


APPENDERS = {
    "msg_start": lambda p: min(lib.pn_msg_start(p, C.NLMSG_NOOP, 0, 1, ffi.NULL, 0), 0),
    "attr_put": lambda p: lib.pn_attr_put(p, 1, ffi.NULL, 0),
    "attr_put_u32": lambda p: lib.pn_attr_put_u32(p, 1, 5),
    "attr_put_str": lambda p: lib.pn_attr_put_str(p, 1, b"s"),
    "put_extra": lambda p: lib.pn_put_extra(p, b"\0" * 4, 4),
    "nest_start": lambda p: min(lib.pn_nest_start(p, 1), 0),
    "link_msg": lambda p: lib.pn_link_msg(p, C.RTM_GETLINK, 0, 1, link_spec()[0]),
}
INCONSISTENT = {                       # (cap the pn_buf claims, len)
    "len-beyond-cap": (64, 68),
    "len-unaligned": (64, 2),
    "cap-beyond-int": (lib.PN_MAX_BUF + 4, 0),
    "cap-uint32-max": (0xFFFFFFFF, 0),
}


@pytest.mark.parametrize("case", sorted(INCONSISTENT))
@pytest.mark.parametrize("appender", sorted(APPENDERS))
def test_inconsistent_pn_buf_is_einval_and_left_untouched(appender, case):
    cap, length = INCONSISTENT[case]
    b = Buf(256)
    b.ptr.cap, b.ptr.len = cap, length
    before = b.storage()
    assert APPENDERS[appender](b.ptr) == -errno.EINVAL
    assert (b.ptr.cap, b.ptr.len, b.storage()) == (cap, length, before)


def test_msg_start_fixed_header_over_65535_bytes_is_emsgsize():
    b = Buf(0x20000)
    big = cbytes(bytes(0x10000))
    assert lib.pn_msg_start(b.ptr, C.NLMSG_NOOP, 0, 1, big, 0x10000) == -errno.EMSGSIZE
    assert b.len == 0


def test_msg_start_without_room_is_enospc_and_leaves_buffer_unchanged():
    fixed = cbytes(w.ifinfomsg(index=5))
    assert_enospc_leaves_buffer(
        lambda p: min(lib.pn_msg_start(p, C.RTM_GETLINK, REQ, 1, fixed, w.IFINFOMSG.size), 0))


@pytest.mark.parametrize("start, length", [(8, 4), (0, 12), (4, 16), (2, 20), (0, 18), (16, 16),
                                           (0, 0)])
def test_msg_end_with_start_not_leaving_a_header_is_einval(start, length):
    b = Buf()
    b.ptr.len = length
    before = b.storage()
    assert lib.pn_msg_end(b.ptr, start) == -errno.EINVAL
    assert b.storage() == before


@FAST
@given(type_=U16, payload=st.binary(max_size=300))
def test_attr_put_writes_header_payload_and_zero_padding(type_, payload):
    b = Buf()
    c = cbytes(payload)
    assert lib.pn_attr_put(b.ptr, type_, c, len(payload)) == 0
    raw = b.bytes()
    assert len(raw) == w.align(4 + len(payload))
    assert w.RTATTR.unpack_from(raw) == (4 + len(payload), type_)
    assert raw[4:4 + len(payload)] == payload
    assert not any(raw[4 + len(payload):])


@FAST
@given(payloads=st.lists(st.tuples(st.integers(1, 0x3FFF), st.binary(max_size=40)), max_size=8),
       seq=SEQ)
def test_attributes_decode_back_in_order(payloads, seq):
    b = Buf()
    start = lib.pn_msg_start(b.ptr, C.NLMSG_NOOP, 0, seq, ffi.NULL, 0)
    keep = []
    for t, p in payloads:
        keep.append(cbytes(p))
        assert lib.pn_attr_put(b.ptr, t, keep[-1], len(p)) == 0
    assert lib.pn_msg_end(b.ptr, start) == 0
    m = w.decode_one(b.bytes())
    assert [(a.type, a.payload) for a in m.attrs] == payloads


def test_attr_put_of_the_largest_payload_fills_rta_len_exactly():
    b = Buf(0x10100)
    n = lib.PN_MAX_ATTR - 4
    c = cbytes(b"\x5a" * n)
    assert lib.pn_attr_put(b.ptr, 1, c, n) == 0
    assert w.RTATTR.unpack_from(b.bytes()) == (0xFFFF, 1)
    assert b.len == 0x10000


@pytest.mark.parametrize("n", [0xFFFF - 3, 0xFFFF, 0x10000, 0x10004, 0xFFFFFFFF])
def test_attr_put_payload_beyond_16_bit_length_is_emsgsize_not_wrapped(n):
    b = Buf(0x20010)
    b.preload(PRIOR)
    c = cbytes(bytes(0x10010))
    assert lib.pn_attr_put(b.ptr, 1, c, n) == -errno.EMSGSIZE
    assert b.len == len(PRIOR)
    assert b.bytes() == PRIOR


def test_attr_put_without_room_is_enospc_and_leaves_buffer_unchanged():
    c = cbytes(b"abcdefg")
    assert_enospc_leaves_buffer(lambda p: lib.pn_attr_put(p, 3, c, 7))


@FAST
@given(type_=U16, value=U32)
def test_attr_put_u32_is_a_native_endian_four_byte_payload(type_, value):
    raw = encode(lambda p: lib.pn_attr_put_u32(p, type_, value))
    assert raw == struct.pack("=HHI", 8, type_, value)


@FAST
@given(s=st.binary(max_size=100).filter(lambda b: 0 not in b))
def test_attr_put_str_includes_the_nul_terminator(s):
    raw = encode(lambda p: lib.pn_attr_put_str(p, C.IFLA_IFNAME, s))
    a, = w.parse_attrs(raw)
    assert (a.type, a.string()) == (C.IFLA_IFNAME, s)


def test_attr_put_str_longest_string_fits_exactly():
    s = b"x" * (lib.PN_MAX_ATTR - 5)
    b = Buf(0x10100)
    assert lib.pn_attr_put_str(b.ptr, 1, s) == 0
    assert w.RTATTR.unpack_from(b.bytes())[0] == 0xFFFF


@pytest.mark.parametrize("n", [lib.PN_MAX_ATTR - 4, lib.PN_MAX_ATTR, 0x10000, 0x20000])
def test_attr_put_str_too_long_is_emsgsize(n):
    b = Buf(0x30000)
    b.preload(PRIOR)
    assert lib.pn_attr_put_str(b.ptr, 1, b"y" * n) == -errno.EMSGSIZE
    assert (b.len, b.bytes()) == (len(PRIOR), PRIOR)


@FAST
@given(data=st.binary(max_size=64))
def test_put_extra_appends_bare_bytes_zero_padded(data):
    c = cbytes(data)
    raw = encode(lambda p: lib.pn_put_extra(p, c, len(data)))
    assert raw == data + bytes(w.align(len(data)) - len(data))


@pytest.mark.parametrize("n", [0x10000, 0xFFFFFFFF])
def test_put_extra_over_65535_bytes_is_emsgsize(n):
    b = Buf(0x20000)
    c = cbytes(bytes(0x10000))
    assert lib.pn_put_extra(b.ptr, c, n) == -errno.EMSGSIZE
    assert b.len == 0


def test_put_extra_without_room_is_enospc_and_leaves_buffer_unchanged():
    c = cbytes(w.ifinfomsg(index=1))
    assert_enospc_leaves_buffer(lambda p: lib.pn_put_extra(p, c, w.IFINFOMSG.size))


@FAST
@given(outer=st.integers(1, 0x3FFF), inner=st.lists(st.tuples(st.integers(1, 0x3FFF), U32), max_size=6))
def test_nest_covers_exactly_its_children(outer, inner):
    b = Buf()
    b.preload(PRIOR)
    at = lib.pn_nest_start(b.ptr, outer)
    assert at == len(PRIOR)
    for t, v in inner:
        assert lib.pn_attr_put_u32(b.ptr, t, v) == 0
    assert lib.pn_nest_end(b.ptr, at) == 0
    nest, = w.parse_attrs(b.bytes()[len(PRIOR):])
    assert nest.type == outer
    assert [(a.type, a.u32()) for a in nest.nested()] == inner


def test_nest_start_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(lambda p: min(lib.pn_nest_start(p, 1), 0))


def _grow_nest(*payload_lens):
    b = Buf(0x30000)
    b.preload(PRIOR)
    at = lib.pn_nest_start(b.ptr, C.IFLA_LINKINFO)
    c = cbytes(bytes(max(payload_lens)))
    for n in payload_lens:
        assert lib.pn_attr_put(b.ptr, 1, c, n) == 0
    return b, at


def test_nest_of_65532_bytes_is_accepted():
    b, at = _grow_nest(0xFFFC - 8)
    assert lib.pn_nest_end(b.ptr, at) == 0
    nest, = w.parse_attrs(b.bytes()[at:])
    assert (nest.type, 4 + len(nest.payload)) == (C.IFLA_LINKINFO, 0xFFFC)


@pytest.mark.parametrize("payload_lens", [(0xFFFC - 4,), (40000, 40000), (60000, 60000, 60000)])
def test_nest_grown_past_65535_bytes_is_emsgsize_without_writing(payload_lens):
    b, at = _grow_nest(*payload_lens)
    before = b.bytes()
    assert lib.pn_nest_end(b.ptr, at) == -errno.EMSGSIZE
    assert b.bytes() == before


@pytest.mark.parametrize("start, length", [(8, 4), (4, 6), (100, 40), (2, 8), (0, 6), (8, 8),
                                           (0, 0)])
def test_nest_end_with_start_not_leaving_an_attribute_header_is_einval(start, length):
    b = Buf()
    b.ptr.len = length
    before = b.storage()
    assert lib.pn_nest_end(b.ptr, start) == -errno.EINVAL
    assert b.storage() == before


# ===============================================================================
# pn_link_msg
# ===============================================================================

LINK_TYPES = [C.RTM_NEWLINK, C.RTM_SETLINK, C.RTM_DELLINK, C.RTM_GETLINK]
field_values = {
    "name": raw_names,
    "mtu": U32, "master": U32, "group": U32, "txqlen": U32, "ext_mask": U32,
    "ns_fd": I32, "ns_pid": I32,
    "address": st.binary(min_size=1, max_size=32),
    "addr_gen_mode": st.integers(0, 255),
    "link": U32,                                            # link kinds (issue 16)
}


def link_msg(type_=C.RTM_SETLINK, nlflags=0, seq=1, **spec):
    s, keep = link_spec(**spec)
    return lambda p, _k=keep: lib.pn_link_msg(p, type_, nlflags, seq, s)


def test_link_field_table_covers_every_pn_link_field_bit():
    bits = {getattr(lib, n) for n in dir(lib) if n.startswith("PN_LINK_")}
    assert bits == {bit for bit, _, _ in LINK_FIELDS.values()}


@pytest.mark.parametrize("field", sorted(LINK_FIELDS))
@settings(max_examples=settings.default.max_examples // 5, deadline=None)
@given(data=st.data())
def test_link_msg_encodes_each_field_as_its_attribute_alone(field, data):
    value = data.draw(field_values[field])
    m = one(link_msg(**{field: value}))
    assert link_fields(m.attrs) == {field: value}


@FAST
@given(type_=st.sampled_from(LINK_TYPES), nlflags=st.sampled_from([0, CREATE, C.NLM_F_REPLACE]),
       seq=SEQ)
def test_link_msg_header_has_type_seq_and_request_ack_flags(type_, nlflags, seq):
    m = one(link_msg(type_, nlflags, seq, name=b"eth0"))
    assert (m.type, m.flags, m.seq, m.header.pid) == (type_, nlflags | REQ, seq, 0)


@FAST
@given(index=I32, flags=U32, change=U32)
def test_link_msg_ifinfomsg_carries_index_flags_and_change(index, flags, change):
    m = one(link_msg(index=index, flags=flags, change=change))
    assert m.fixed == w.IfInfo(socket.AF_UNSPEC, 0, index, flags, change)


def test_link_msg_without_fields_is_a_bare_ifinfomsg():
    raw = encode(link_msg(index=4))
    assert len(raw) == w.NLMSG_HDRLEN + w.IFINFOMSG.size
    assert w.decode_one(raw).attrs == ()


@FAST
@given(spec=st.fixed_dictionaries({}, optional=field_values), index=I32, flags=U32, change=U32)
def test_link_msg_roundtrips_any_combination_of_fields(spec, index, flags, change):
    raw = encode(link_msg(index=index, flags=flags, change=change, **spec))
    m = w.decode_one(raw)
    assert len(raw) % 4 == 0 and m.header.len == len(raw)
    assert m.fixed[2:] == (index, flags, change)
    assert link_fields(m.attrs) == spec


@pytest.mark.parametrize("nbytes", range(1, 16))
@settings(max_examples=settings.default.max_examples * 2 // 15, deadline=None)
@given(data=st.data())
def test_link_msg_name_of_every_legal_length_roundtrips(nbytes, data):
    name = data.draw(st.binary(min_size=nbytes, max_size=nbytes).filter(lambda b: 0 not in b))
    m = one(link_msg(name=name))
    assert m.attrs.get(C.IFLA_IFNAME).string() == name


@pytest.mark.parametrize("name", [b"", b"a" * 16, b"b" * 40, None])
def test_link_msg_rejects_empty_missing_or_overlong_name(name):
    assert_fails_unchanged(link_msg(name=name, mtu=1500), errno.EINVAL)


@pytest.mark.parametrize("n", [0, 33, 1000])
def test_link_msg_rejects_address_of_impossible_length(n):
    s, keep = link_spec(address=b"\1" * min(n, 32))
    s.address_len = n
    assert_fails_unchanged(lambda p: lib.pn_link_msg(p, C.RTM_SETLINK, 0, 1, s), errno.EINVAL)


def test_link_msg_invalid_field_after_valid_ones_appends_nothing():
    s, keep = link_spec(name=b"eth0", mtu=1500, group=2, address=b"")
    assert_fails_unchanged(lambda p: lib.pn_link_msg(p, C.RTM_SETLINK, 0, 1, s), errno.EINVAL)


def test_link_msg_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(link_msg(name=b"veth0", mtu=1500, master=3, ns_fd=5, ns_pid=77,
                                         group=1, txqlen=1000, address=b"\2" * 6, ext_mask=8))


def test_link_msg_appends_after_messages_already_in_the_buffer():
    b = Buf()
    for seq in (1, 2, 3):
        s, keep = link_spec(name=b"if%d" % seq)
        assert lib.pn_link_msg(b.ptr, C.RTM_GETLINK, 0, seq, s) == 0
    msgs = w.decode(b.bytes())
    assert [(m.seq, m.attrs.get(C.IFLA_IFNAME).string()) for m in msgs] == \
        [(1, b"if1"), (2, b"if2"), (3, b"if3")]


# ===============================================================================
# pn_veth_msg
# ===============================================================================

def veth_msg(nlflags=CREATE, seq=1, host=None, peer=None):
    h, hk = link_spec(**(host or {"name": b"va"}))
    p, pk = link_spec(**(peer or {"name": b"vb"}))
    return lambda b, _k=(hk, pk): lib.pn_veth_msg(b, nlflags, seq, h, p)


veth_peer_fields = st.fixed_dictionaries({"name": raw_names}, optional={
    "mtu": U32, "ns_fd": I32, "ns_pid": I32, "txqlen": U32, "group": U32,
    "address": st.binary(min_size=1, max_size=32)})


@FAST
@given(nlflags=st.sampled_from([0, CREATE]), seq=SEQ)
def test_veth_msg_is_a_newlink_request(nlflags, seq):
    m = one(veth_msg(nlflags, seq))
    assert (m.type, m.flags, m.seq) == (C.RTM_NEWLINK, nlflags | REQ, seq)


def test_veth_msg_linkinfo_kind_is_veth():
    m = one(veth_msg())
    assert w.linkinfo(m.attrs).kind == b"veth"


def test_veth_msg_info_data_holds_only_the_peer():
    data = w.linkinfo(one(veth_msg()).attrs).data
    assert data.types() == [C.VETH_INFO_PEER]


@FAST
@given(host=st.fixed_dictionaries({"name": raw_names}, optional={"mtu": U32, "txqlen": U32}),
       index=I32, flags=U32, change=U32)
def test_veth_msg_host_part_is_the_outer_ifinfomsg_and_attributes(host, index, flags, change):
    m = one(veth_msg(host=dict(host, index=index, flags=flags, change=change)))
    assert m.fixed == w.IfInfo(socket.AF_UNSPEC, 0, index, flags, change)
    outer = w.Attrs(a for a in m.attrs if a.type != C.IFLA_LINKINFO)
    assert link_fields(outer) == host
    assert m.attrs.types()[-1] == C.IFLA_LINKINFO


@FAST
@given(peer=veth_peer_fields, index=I32, flags=U32, change=U32)
def test_veth_msg_peer_part_has_its_own_ifinfomsg_and_attributes(peer, index, flags, change):
    m = one(veth_msg(peer=dict(peer, index=index, flags=flags, change=change)))
    ifi, attrs = w.veth_peer(w.linkinfo(m.attrs).data)
    assert ifi == w.IfInfo(socket.AF_UNSPEC, 0, index, flags, change)
    assert link_fields(attrs) == peer


def test_veth_msg_peer_settings_stay_out_of_the_host_part():
    m = one(veth_msg(host={"name": b"va"}, peer={"name": b"vb", "mtu": 9000, "ns_fd": 7,
                                                  "ns_pid": 1234}))
    outer = w.Attrs(a for a in m.attrs if a.type != C.IFLA_LINKINFO)
    assert link_fields(outer) == {"name": b"va"}


def test_veth_msg_peer_up_sets_only_the_peers_flags():
    m = one(veth_msg(peer={"name": b"vb", "flags": C.IFF_UP, "change": C.IFF_UP}))
    ifi, _ = w.veth_peer(w.linkinfo(m.attrs).data)
    assert (m.fixed.flags, m.fixed.change, ifi.flags, ifi.change) == (0, 0, C.IFF_UP, C.IFF_UP)


def test_veth_msg_nest_lengths_add_up_to_the_message_length():
    raw = encode(veth_msg(peer={"name": b"vb", "mtu": 1400, "ns_pid": 42}))
    m = w.decode_one(raw)
    li = m.attrs.get(C.IFLA_LINKINFO)
    outer_before = sum(w.align(4 + len(a.payload)) for a in m.attrs if a.type != C.IFLA_LINKINFO)
    assert w.NLMSG_HDRLEN + w.IFINFOMSG.size + outer_before + 4 + len(li.payload) == len(raw)


@pytest.mark.parametrize("peer", [{"name": b""}, {"name": b"p" * 16}, {"name": None},
                                  {"name": b"vb", "address": b""}])
def test_veth_msg_invalid_peer_appends_nothing(peer):
    assert_fails_unchanged(veth_msg(peer=peer), errno.EINVAL)


def test_veth_msg_invalid_host_name_appends_nothing():
    assert_fails_unchanged(veth_msg(host={"name": b"h" * 16}), errno.EINVAL)


def test_veth_msg_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(veth_msg(host={"name": b"host0", "mtu": 1500},
                                         peer={"name": b"peer0", "mtu": 1400, "ns_fd": 3,
                                               "ns_pid": 99, "flags": 1, "change": 1}))


# ===============================================================================
# pn_addr_msg
# ===============================================================================

def addr_msg(type_=C.RTM_NEWADDR, nlflags=CREATE, seq=1, **kw):
    s = addr_spec(**kw)
    return lambda p: lib.pn_addr_msg(p, type_, nlflags, seq, s)


@FAST
@given(local=st.binary(min_size=4, max_size=4), brd=st.binary(min_size=4, max_size=4),
       prefix=st.integers(0, 32), index=st.integers(1, 2**31 - 1), scope=st.integers(0, 255),
       seq=SEQ, type_=st.sampled_from([C.RTM_NEWADDR, C.RTM_DELADDR]))
def test_addr_msg_ipv4_with_broadcast_roundtrips(local, brd, prefix, index, scope, seq, type_):
    m = one(addr_msg(type_, CREATE, seq, index=index, family=socket.AF_INET, prefixlen=prefix,
                     scope=scope, local=local, broadcast=brd))
    assert (m.type, m.flags, m.seq) == (type_, CREATE | REQ, seq)
    assert m.fixed == w.IfAddr(socket.AF_INET, prefix, 0, scope, index)
    assert [(a.type, a.payload) for a in m.attrs] == [
        (C.IFA_LOCAL, local), (C.IFA_ADDRESS, local), (C.IFA_BROADCAST, brd)]


def test_addr_msg_ipv4_without_broadcast_has_no_ifa_broadcast():
    m = one(addr_msg(family=socket.AF_INET, prefixlen=32, local=bytes([10, 0, 0, 1])))
    assert m.attrs.types() == [C.IFA_LOCAL, C.IFA_ADDRESS]


@FAST
@given(local=st.binary(min_size=16, max_size=16), prefix=st.integers(0, 128),
       index=st.integers(1, 2**31 - 1), seq=SEQ)
def test_addr_msg_ipv6_roundtrips(local, prefix, index, seq):
    raw = encode(addr_msg(seq=seq, index=index, family=socket.AF_INET6, prefixlen=prefix,
                          local=local))
    m = w.decode_one(raw)
    assert len(raw) == w.NLMSG_HDRLEN + w.IFADDRMSG.size + 2 * (4 + 16)
    assert m.fixed == w.IfAddr(socket.AF_INET6, prefix, 0, 0, index)
    assert [(a.type, a.payload) for a in m.attrs] == [(C.IFA_LOCAL, local), (C.IFA_ADDRESS, local)]


@pytest.mark.parametrize("kw", [
    dict(family=socket.AF_UNSPEC, local=b"\1" * 4),
    dict(family=socket.AF_PACKET, local=b"\1" * 4),
    dict(family=socket.AF_INET, prefixlen=33, local=b"\1" * 4),
    dict(family=socket.AF_INET6, prefixlen=129, local=b"\1" * 16),
    dict(family=socket.AF_INET, prefixlen=255, local=b"\1" * 4),
    dict(family=socket.AF_INET, index=0, local=b"\1" * 4),
    dict(family=socket.AF_INET, index=-3, local=b"\1" * 4),
    dict(family=socket.AF_INET6, prefixlen=64, local=b"\1" * 16, broadcast=b"\2" * 16),
], ids=["unspec", "packet", "v4-prefix-33", "v6-prefix-129", "v4-prefix-255", "index-0",
        "index-negative", "v6-broadcast"])
def test_addr_msg_invalid_spec_is_einval_and_appends_nothing(kw):
    assert_fails_unchanged(addr_msg(**kw), errno.EINVAL)


def test_addr_msg_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(addr_msg(family=socket.AF_INET, prefixlen=24, local=b"\1\2\3\4",
                                         broadcast=b"\1\2\3\xff"))


# ===============================================================================
# pn_route_msg
# ===============================================================================

def route_msg(type_=C.RTM_NEWROUTE, nlflags=CREATE, seq=1, **kw):
    s = route_spec(**kw)
    return lambda p: lib.pn_route_msg(p, type_, nlflags, seq, s)


families = st.sampled_from([(socket.AF_INET, 4), (socket.AF_INET6, 16)])


@FAST
@given(fam=families, data=st.data(), oif=st.integers(1, 2**31 - 1), table=st.integers(0, 255),
       protocol=st.integers(0, 255), scope=st.integers(0, 255), rtype=st.integers(0, 255), seq=SEQ)
def test_route_msg_default_route_via_gateway_has_no_rta_dst(fam, data, oif, table, protocol,
                                                            scope, rtype, seq):
    family, n = fam
    gw = data.draw(st.binary(min_size=n, max_size=n))
    m = one(route_msg(seq=seq, family=family, gateway=gw, oif=oif, table=table,
                      protocol=protocol, scope=scope, rtype=rtype))
    assert (m.type, m.flags, m.seq) == (C.RTM_NEWROUTE, CREATE | REQ, seq)
    assert m.fixed == w.RtMsg(family, 0, 0, 0, table, protocol, scope, rtype, 0)
    assert [(a.type, a.payload) for a in m.attrs] == [
        (C.RTA_GATEWAY, gw), (C.RTA_OIF, struct.pack("=I", oif))]


@FAST
@given(fam=families, data=st.data(), with_gw=st.booleans(), oif=st.integers(0, 2**31 - 1),
       type_=st.sampled_from([C.RTM_NEWROUTE, C.RTM_DELROUTE]))
def test_route_msg_with_destination_roundtrips(fam, data, with_gw, oif, type_):
    family, n = fam
    dst = data.draw(st.binary(min_size=n, max_size=n))
    dst_len = data.draw(st.integers(1, 8 * n))
    gw = data.draw(st.binary(min_size=n, max_size=n)) if with_gw else None
    m = one(route_msg(type_, 0, 1, family=family, dst=dst, dst_len=dst_len, gateway=gw, oif=oif))
    assert (m.type, m.fixed.family, m.fixed.dst_len) == (type_, family, dst_len)
    want = [(C.RTA_DST, dst)]
    if with_gw:
        want.append((C.RTA_GATEWAY, gw))
    if oif:
        want.append((C.RTA_OIF, struct.pack("=I", oif)))
    assert [(a.type, a.payload) for a in m.attrs] == want


def test_route_msg_without_oif_has_no_rta_oif():
    m = one(route_msg(family=socket.AF_INET, gateway=b"\x0a\0\0\1"))
    assert m.attrs.types() == [C.RTA_GATEWAY]


@pytest.mark.parametrize("kw", [
    dict(family=socket.AF_UNSPEC),
    dict(family=socket.AF_PACKET),
    dict(family=socket.AF_INET, dst_len=33),
    dict(family=socket.AF_INET6, dst_len=129),
    dict(family=socket.AF_INET, oif=-1),
], ids=["unspec", "packet", "v4-dst-33", "v6-dst-129", "oif-negative"])
def test_route_msg_invalid_spec_is_einval_and_appends_nothing(kw):
    assert_fails_unchanged(route_msg(**kw), errno.EINVAL)


def test_route_msg_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(route_msg(family=socket.AF_INET6, dst=b"\x20" * 16, dst_len=64,
                                          gateway=b"\xfe" * 16, oif=3))


# -- the fields that make a route exact, and address flags ----------------------

@FAST
@given(fam=families, data=st.data(), table=st.integers(0, 255), priority=U32, oif=st.integers(1, 2**31 - 1),
       nlflags=st.sampled_from([CREATE, C.NLM_F_CREATE | C.NLM_F_REPLACE, 0]), seq=SEQ)
def test_route_msg_with_metric_prefsrc_and_small_table_is_byte_exact(fam, data, table, priority,
                                                                    oif, nlflags, seq):
    family, n = fam
    dst, gw, src = (data.draw(st.binary(min_size=n, max_size=n)) for _ in range(3))
    got = encode(route_msg(C.RTM_NEWROUTE, nlflags, seq, family=family, dst=dst, dst_len=8,
                           gateway=gw, oif=oif, table=table, protocol=C.RTPROT_BOOT,
                           rtype=C.RTN_UNICAST, prefsrc=src, priority=priority))
    body = (w.rtmsg(family, 8, 0, 0, table, C.RTPROT_BOOT, 0, C.RTN_UNICAST, 0)
            + w.rtattr(C.RTA_DST, dst) + w.rtattr(C.RTA_GATEWAY, gw) + w.u32_attr(C.RTA_OIF, oif)
            + w.rtattr(C.RTA_PREFSRC, src) + w.u32_attr(C.RTA_PRIORITY, priority))
    assert got == w.nlmsg(C.RTM_NEWROUTE, nlflags | REQ, seq, 0, body)


@FAST
@given(table=st.integers(256, 0xFFFFFFFF), seq=SEQ)
def test_route_msg_table_past_255_goes_in_rta_table_with_rtm_table_unspec(table, seq):
    got = encode(route_msg(C.RTM_DELROUTE, 0, seq, family=socket.AF_INET, dst=b"\xcb\0\x71\0",
                           dst_len=24, table=table))
    body = (w.rtmsg(socket.AF_INET, 24, 0, 0, C.RT_TABLE_UNSPEC) + w.rtattr(C.RTA_DST, b"\xcb\0\x71\0")
            + w.u32_attr(C.RTA_TABLE, table))
    assert got == w.nlmsg(C.RTM_DELROUTE, REQ, seq, 0, body)


@pytest.mark.parametrize("table", [0, 1, 254, 255])
def test_route_msg_table_up_to_255_is_rtm_table_alone(table):
    m = one(route_msg(family=socket.AF_INET, table=table))
    assert (m.fixed.table, C.RTA_TABLE in m.attrs) == (table, False)


def test_route_msg_metric_zero_is_sent_when_given():
    m = one(route_msg(family=socket.AF_INET, priority=0))
    assert m.attrs.get(C.RTA_PRIORITY).u32() == 0


def test_route_msg_without_metric_or_prefsrc_sends_neither():
    m = one(route_msg(family=socket.AF_INET6, gateway=b"\xfe" * 16))
    assert m.attrs.types() == [C.RTA_GATEWAY]


def test_route_msg_with_every_field_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(route_msg(family=socket.AF_INET6, dst=b"\x20" * 16, dst_len=64,
                                          gateway=b"\xfe" * 16, oif=3, table=1000, priority=9,
                                          prefsrc=b"\x20" * 16))


@FAST
@given(flags=st.integers(1, 0xFFFFFFFF), local=st.binary(min_size=16, max_size=16), seq=SEQ)
def test_addr_msg_flags_go_in_ifa_flags_after_the_addresses(flags, local, seq):
    got = encode(addr_msg(C.RTM_NEWADDR, CREATE, seq, index=4, family=socket.AF_INET6,
                          prefixlen=64, local=local, flags=flags))
    body = (w.ifaddrmsg(socket.AF_INET6, 64, 0, 0, 4) + w.rtattr(C.IFA_LOCAL, local)
            + w.rtattr(C.IFA_ADDRESS, local) + w.u32_attr(C.IFA_FLAGS, flags))
    assert got == w.nlmsg(C.RTM_NEWADDR, CREATE | REQ, seq, 0, body)


def test_addr_msg_without_flags_sends_no_ifa_flags():
    m = one(addr_msg(family=socket.AF_INET, local=b"\xc0\0\2\1", broadcast=b"\xc0\0\2\xff"))
    assert m.attrs.types() == [C.IFA_LOCAL, C.IFA_ADDRESS, C.IFA_BROADCAST]


# ===============================================================================
# pn_dump_msg
# ===============================================================================

DUMP_HEADERS = {C.RTM_GETLINK: lambda f: w.ifinfomsg(family=f),
                C.RTM_GETADDR: lambda f: w.ifaddrmsg(family=f),
                C.RTM_GETROUTE: lambda f: w.rtmsg(family=f)}


@FAST
@given(type_=st.sampled_from(sorted(DUMP_HEADERS)), seq=SEQ,
       family=st.sampled_from([socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6]))
def test_dump_msg_is_a_dump_request_with_its_whole_family_header(type_, seq, family):
    got = encode(lambda p: lib.pn_dump_msg(p, type_, seq, family))
    assert got == w.nlmsg(type_, REQ | C.NLM_F_DUMP, seq, 0, DUMP_HEADERS[type_](family))


@pytest.mark.parametrize("type_", ["RTM_NEWADDR", "RTM_GETRULE", "RTM_GETNEIGH", "NLMSG_DONE"])
def test_dump_msg_of_another_type_is_einval_and_appends_nothing(type_):
    assert_fails_unchanged(lambda p: lib.pn_dump_msg(p, C[type_], 1, 0), errno.EINVAL)


@pytest.mark.parametrize("type_", sorted(DUMP_HEADERS))
def test_dump_msg_without_room_is_enospc_and_leaves_buffer_unchanged(type_):
    assert_enospc_leaves_buffer(lambda p: lib.pn_dump_msg(p, type_, 5, socket.AF_INET))


# -- the _core encoders for them -----------------------------------------------------

@pytest.mark.parametrize("encoder, type_", [(core.addr_dump_encoder, C.RTM_GETADDR),
                                            (core.route_dump_encoder, C.RTM_GETROUTE)])
@pytest.mark.parametrize("family", [socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6])
def test_core_dump_encoders_send_the_dump_request_of_their_kind(encoder, type_, family):
    got = encode(lambda p: encoder(family)(p, 77))
    assert got == w.nlmsg(type_, REQ | C.NLM_F_DUMP, 77, 0, DUMP_HEADERS[type_](family))


@pytest.mark.parametrize("encoder", [core.addr_dump_encoder, core.route_dump_encoder])
@pytest.mark.parametrize("family", [socket.AF_PACKET, -1, 256])
def test_core_dump_encoders_refuse_other_families(encoder, family):
    with pytest.raises(ValueError):
        encoder(family)


def core_route(**kw):
    fields = dict(family=socket.AF_INET, dst=b"\xcb\0\x71\0", dst_len=24, table=C.RT_TABLE_MAIN,
                  protocol=C.RTPROT_BOOT, scope=0, rtype=C.RTN_UNICAST)
    fields.update(kw)
    return core.route_encoder(C.RTM_NEWROUTE, C.NLM_F_CREATE | C.NLM_F_REPLACE, **fields)


def test_core_route_encoder_sends_metric_prefsrc_table_and_replace():
    m = w.decode_one(encode(lambda p: core_route(priority=5, prefsrc=b"\xc0\0\2\1",
                                                 table=2**32 - 1)(p, 1)))
    assert m.flags == C.NLM_F_CREATE | C.NLM_F_REPLACE | REQ
    assert (m.fixed.table, m.attrs.get(C.RTA_TABLE).u32()) == (C.RT_TABLE_UNSPEC, 2**32 - 1)
    assert m.attrs.get(C.RTA_PRIORITY).u32() == 5
    assert m.attrs.get(C.RTA_PREFSRC).payload == b"\xc0\0\2\1"


def test_core_route_encoder_without_metric_or_prefsrc_is_as_before():
    m = w.decode_one(encode(lambda p: core_route()(p, 1)))
    assert m.attrs.types() == [C.RTA_DST]


@pytest.mark.parametrize("kw", [dict(table=2**32), dict(table=-1), dict(priority=2**32),
                                dict(priority=-1), dict(prefsrc=b""), dict(prefsrc=b"\1" * 17)])
def test_core_route_encoder_refuses_values_out_of_range(kw):
    with pytest.raises(ValueError):
        core_route(**kw)


def test_core_addr_encoder_sends_flags_in_ifa_flags():
    enc = core.addr_encoder(C.RTM_NEWADDR, CREATE, index=2, family=socket.AF_INET6, prefixlen=64,
                            local=b"\x20" * 16, flags=C.IFA_F_NODAD)
    assert w.decode_one(encode(lambda p: enc(p, 1))).attrs.get(C.IFA_FLAGS).u32() == C.IFA_F_NODAD


@pytest.mark.parametrize("flags", [-1, 2**32])
def test_core_addr_encoder_refuses_flags_out_of_range(flags):
    with pytest.raises(ValueError):
        core.addr_encoder(C.RTM_NEWADDR, CREATE, index=2, family=socket.AF_INET, prefixlen=24,
                          local=b"\1" * 4, flags=flags)


@pytest.mark.parametrize("name", [n for n in _core_constant_names() if not n.startswith("PN_")])
def test_every_kernel_constant_has_a_module_level_name_in_core(name):
    assert getattr(core, name) == getattr(lib, name)


# ===============================================================================
# The Python request builders (links, addresses, routes)
# ===============================================================================

def request_msg(encode, seq=1) -> w.Message:
    """The one message a builder's encoder writes."""
    return one(lambda p: encode(p, seq))


def veth(name1, name2, *, master_index=None, peer_netns_fd=None, **options):
    """links' veth message from create_veth_pair's options."""
    host, peer = links.veth_fields(name1, name2, peer_ns_fd=peer_netns_fd, **options)
    if master_index is not None:
        host["master"] = master_index
    return links.create_veth_pair(host, peer)


def set_link(name, *, index=0, new_name=None, master_index=None, **changes):
    """links' RTM_SETLINK from set_link's options (a rename by index)."""
    fields = links.change_fields(name, **changes)
    if new_name is not None:
        fields.update(index=index, name=new_name.encode())
    if master_index is not None:
        fields["master"] = master_index
    return links.set_link(fields)


def attr_values(m: w.Message) -> dict:
    """{attribute type: payload}, each attribute present once."""
    out = {}
    for a in m.attrs:
        assert a.type not in out
        out[a.type] = a.payload
    return out


def test_set_flags_up_sends_setlink_changing_only_iff_up():
    m = request_msg(links.set_flags("eth0", True))
    assert (m.type, m.fixed.flags, m.fixed.change) == (C.RTM_SETLINK, C.IFF_UP, C.IFF_UP)


def test_set_flags_down_clears_iff_up_changing_only_iff_up():
    m = request_msg(links.set_flags("eth0", False))
    assert (m.type, m.fixed.flags, m.fixed.change) == (C.RTM_SETLINK, 0, C.IFF_UP)


def test_set_flags_names_the_link_by_ifname_only():
    m = request_msg(links.set_flags("eth0", True))
    assert (m.fixed.index, attr_values(m)) == (0, {C.IFLA_IFNAME: b"eth0\0"})


def test_set_mtu_sends_only_name_and_mtu():
    m = request_msg(links.set_mtu("eth0", 1400))
    assert attr_values(m) == {C.IFLA_IFNAME: b"eth0\0", C.IFLA_MTU: struct.pack("=I", 1400)}


def test_set_mtu_changes_no_flags():
    m = request_msg(links.set_mtu("eth0", 1400))
    assert (m.type, m.fixed) == (C.RTM_SETLINK, w.IfInfo(socket.AF_UNSPEC, 0, 0, 0, 0))


@FAST
@given(name=ifnames(), mtu=st.integers(1, 2**31 - 1), seq=SEQ)
def test_set_mtu_roundtrips_any_legal_name_and_mtu(name, mtu, seq):
    m = request_msg(links.set_mtu(name, mtu), seq)
    assert m.seq == seq
    assert m.attrs.get(C.IFLA_IFNAME).string().decode("utf-8") == name
    assert m.attrs.get(C.IFLA_MTU).u32() == mtu


@pytest.mark.parametrize("nbytes", range(1, 16))
@settings(max_examples=settings.default.max_examples // 10, deadline=None)
@given(data=st.data())
def test_link_builders_accept_names_of_every_legal_length(nbytes, data):
    name = data.draw(ifnames(nbytes))
    assert len(name.encode()) == nbytes
    m = request_msg(links.delete(name))
    assert m.attrs.get(C.IFLA_IFNAME).string() == name.encode()


@FAST
@given(raw=legal_raw_names)
def test_link_builders_send_any_legal_name_bytes_given_as_os_str(raw):
    name = raw.decode("utf-8", "surrogateescape")       # as os.fsdecode / if_nameindex give it
    m = request_msg(links.set_mtu(name, 1500))
    assert m.attrs.get(C.IFLA_IFNAME).string() == raw


@pytest.mark.parametrize("bad", ["", "a" * 16, "é" * 8, "a/b", "a:b", "a b", "a\tb", "a\0b",
                                 "à", "a\xa0", "eth%d", ".", ".."])
def test_link_builders_refuse_names_the_kernel_refuses(bad):
    with pytest.raises(ValueError):
        links.set_mtu(bad, 1500)


@FAST
@given(name=ifnames(), master=U32)
def test_set_master_sends_name_and_ifla_master(name, master):
    m = request_msg(links.set_master(name, master))
    assert (m.type, m.fixed.change) == (C.RTM_SETLINK, 0)
    assert attr_values(m) == {C.IFLA_IFNAME: name.encode() + b"\0",
                              C.IFLA_MASTER: struct.pack("=I", master)}


@FAST
@given(old=ifnames(), new=ifnames(), index=st.integers(1, 2**31 - 1))
def test_rename_names_the_link_by_index_and_sends_the_new_name(old, new, index):
    m = request_msg(links.rename(index, new))
    assert (m.type, m.fixed.index, m.fixed.change) == (C.RTM_SETLINK, index, 0)
    assert attr_values(m) == {C.IFLA_IFNAME: new.encode() + b"\0"}


@FAST
@given(name=ifnames(), pid=st.integers(1, 2**31 - 1))
def test_set_netns_pid_sends_name_and_ifla_net_ns_pid(name, pid):
    m = request_msg(links.set_netns_pid(name, pid))
    assert attr_values(m) == {C.IFLA_IFNAME: name.encode() + b"\0",
                              C.IFLA_NET_NS_PID: struct.pack("=I", pid)}


@FAST
@given(name=ifnames(), fd=st.integers(0, 2**31 - 1))
def test_set_netns_fd_sends_name_and_ifla_net_ns_fd(name, fd):
    m = request_msg(links.set_netns_fd(name, fd))
    assert attr_values(m) == {C.IFLA_IFNAME: name.encode() + b"\0",
                              C.IFLA_NET_NS_FD: struct.pack("=I", fd)}


def test_delete_sends_dellink_with_the_name_only():
    m = request_msg(links.delete("veth0"))
    assert (m.type, m.fixed.index, attr_values(m)) == (C.RTM_DELLINK, 0, {C.IFLA_IFNAME: b"veth0\0"})


def test_get_sends_getlink_for_the_name_only():
    m = request_msg(links.get("lo"))
    assert (m.type, m.fixed.index, attr_values(m)) == (C.RTM_GETLINK, 0, {C.IFLA_IFNAME: b"lo\0"})


def test_get_is_never_a_dump():
    m = request_msg(links.get("lo"))
    assert not m.flags & C.NLM_F_DUMP


def test_create_veth_pair_sends_newlink_create_excl():
    m = request_msg(veth("va", "vb"))
    assert (m.type, m.flags) == (C.RTM_NEWLINK, CREATE | REQ)


@FAST
@given(name1=ifnames(), name2=ifnames())
def test_create_veth_pair_names_host_outside_and_peer_inside_linkinfo(name1, name2):
    m = request_msg(veth(name1, name2))
    info = w.linkinfo(m.attrs)
    ifi, peer = w.veth_peer(info.data)
    assert info.kind == b"veth"
    assert m.attrs.get(C.IFLA_IFNAME).string() == name1.encode()
    assert link_fields(peer) == {"name": name2.encode()}
    assert (m.fixed.flags, m.fixed.change, ifi.flags, ifi.change) == (0, 0, 0, 0)


@FAST
@given(addr=st.ip_addresses(v=4), prefix=st.integers(0, 32), index=st.integers(1, 2**31 - 1))
def test_address_add_ipv4_sends_local_address_and_broadcast(addr, prefix, index):
    iface = ipaddress.IPv4Interface((addr, prefix))
    m = request_msg(addresses.add(iface, index))
    scope = C.RT_SCOPE_HOST if addr.is_loopback else C.RT_SCOPE_UNIVERSE
    assert (m.type, m.flags) == (C.RTM_NEWADDR, CREATE | REQ)
    assert m.fixed == w.IfAddr(socket.AF_INET, prefix, 0, scope, index)
    want = {C.IFA_LOCAL: addr.packed, C.IFA_ADDRESS: addr.packed}
    if prefix < 31:
        want[C.IFA_BROADCAST] = iface.network.broadcast_address.packed
    assert attr_values(m) == want


def test_address_add_ipv4_slash_24_broadcast_is_the_subnets_last_address():
    iface = ipaddress.ip_interface("192.0.2.10/24")
    m = request_msg(addresses.add(iface, 2))
    assert m.attrs.get(C.IFA_BROADCAST).payload == bytes([192, 0, 2, 255])


@pytest.mark.parametrize("cidr", ["10.1.2.3/31", "10.1.2.3/32"])
def test_address_add_ipv4_point_to_point_prefixes_have_no_broadcast(cidr):
    m = request_msg(addresses.add(ipaddress.ip_interface(cidr), 2))
    assert C.IFA_BROADCAST not in m.attrs


def test_address_add_loopback_ipv4_has_host_scope():
    m = request_msg(addresses.add(ipaddress.ip_interface("127.0.0.2/8"), 1))
    assert m.fixed.scope == C.RT_SCOPE_HOST


@FAST
@given(addr=st.ip_addresses(v=6), prefix=st.integers(0, 128), index=st.integers(1, 2**31 - 1))
def test_address_add_ipv6_sends_local_and_address_only(addr, prefix, index):
    iface = ipaddress.IPv6Interface((addr, prefix))
    m = request_msg(addresses.add(iface, index))
    assert m.fixed == w.IfAddr(socket.AF_INET6, prefix, 0, C.RT_SCOPE_UNIVERSE, index)
    assert attr_values(m) == {C.IFA_LOCAL: addr.packed, C.IFA_ADDRESS: addr.packed}


@FAST
@given(gw=st.ip_addresses(), index=st.integers(1, 2**31 - 1))
def test_add_default_route_sends_gateway_and_oif_in_main_table(gw, index):
    m = request_msg(routes.add(routes.default_network(gw), gw, index))
    family = socket.AF_INET if gw.version == 4 else socket.AF_INET6
    assert (m.type, m.flags) == (C.RTM_NEWROUTE, CREATE | REQ)
    assert m.fixed == w.RtMsg(family, 0, 0, 0, C.RT_TABLE_MAIN, C.RTPROT_BOOT,
                              C.RT_SCOPE_UNIVERSE, C.RTN_UNICAST, 0)
    assert attr_values(m) == {C.RTA_GATEWAY: gw.packed, C.RTA_OIF: struct.pack("=I", index)}


# -- set_link: several changes in one RTM_SETLINK --------------------------------

macs = st.binary(min_size=6, max_size=6)


def mac_text(raw: bytes, sep: str = ":") -> str:
    return sep.join(f"{b:02x}" for b in raw)


def test_set_link_with_no_change_sends_just_the_name():
    m = request_msg(set_link("eth0"))
    assert (m.type, m.fixed, attr_values(m)) == (
        C.RTM_SETLINK, w.IfInfo(socket.AF_UNSPEC, 0, 0, 0, 0), {C.IFLA_IFNAME: b"eth0\0"})


@FAST
@given(opts=st.fixed_dictionaries({}, optional={
    "mac_address": macs, "mtu": st.integers(1, 2**31 - 1), "txqueuelen": U32, "master_index": U32}),
    up=st.sampled_from([None, True, False]), name=ifnames())
def test_set_link_sends_each_option_given_and_nothing_else(opts, up, name):
    kw = dict(opts)
    if "mac_address" in kw:
        kw["mac_address"] = mac_text(kw["mac_address"])
    m = request_msg(set_link(name, up=up, **kw))
    want = {"name": name.encode()}
    for key, field in (("mac_address", "address"), ("mtu", "mtu"), ("txqueuelen", "txqlen"),
                       ("master_index", "master")):
        if key in opts:
            want[field] = opts[key]
    assert link_fields(m.attrs) == want
    assert (m.fixed.flags, m.fixed.change) == ((0, 0) if up is None else
                                               (C.IFF_UP if up else 0, C.IFF_UP))


def test_set_link_accepts_dash_separated_mac():
    m = request_msg(set_link("eth0", mac_address="02-42-AC-11-00-02"))
    assert m.attrs.get(C.IFLA_ADDRESS).payload == bytes([2, 0x42, 0xAC, 0x11, 0, 2])


@pytest.mark.parametrize("bad", ["02:42:ac:11:00", "02:42:ac:11:00:02:03", "0g:42:ac:11:00:02",
                                 "2:42:ac:11:00:02", ""])
def test_set_link_refuses_malformed_mac(bad):
    with pytest.raises(ValueError):
        set_link("eth0", mac_address=bad)


@FAST
@given(old=ifnames(), new=ifnames(), index=st.integers(1, 2**31 - 1))
def test_set_link_rename_names_the_link_by_index(old, new, index):
    m = request_msg(set_link(old, index=index, new_name=new))
    assert (m.fixed.index, attr_values(m)) == (index, {C.IFLA_IFNAME: new.encode() + b"\0"})


# -- set_hairpin / pn_brport_msg: a bridge-port option --------------------------

@pytest.mark.parametrize("on", [True, False])
def test_set_hairpin_sends_brport_mode_in_slave_data(on):
    m = request_msg(links.set_hairpin("veth0", on))
    info = w.linkinfo(m.attrs)
    assert (info.kind, info.data, info.slave_kind) == (None, None, b"bridge")
    assert [(a.type, a.payload) for a in info.slave_data] == [(C.IFLA_BRPORT_MODE, bytes([on]))]


def test_set_hairpin_changes_an_existing_link_without_create():
    m = request_msg(links.set_hairpin("veth0", True))
    assert (m.type, m.flags, m.fixed) == (C.RTM_NEWLINK, REQ, w.IfInfo(socket.AF_UNSPEC, 0, 0, 0, 0))


def test_set_hairpin_names_the_port_by_ifname():
    m = request_msg(links.set_hairpin("veth0", True))
    outer = w.Attrs(a for a in m.attrs if a.type != C.IFLA_LINKINFO)
    assert link_fields(outer) == {"name": b"veth0"}


@pytest.mark.parametrize("on", [1, 0, None, "yes"])
def test_set_hairpin_refuses_non_bool(on):
    with pytest.raises(TypeError):
        links.set_hairpin("veth0", on)


def brport_msg(seq=1, attr=None, value=1, **spec):
    s, keep = link_spec(**(spec or {"name": b"port0"}))
    attr = C.IFLA_BRPORT_MODE if attr is None else attr
    return lambda p, _k=keep: lib.pn_brport_msg(p, seq, s, attr, value)


@FAST
@given(attr=st.integers(1, 0x3FFF), value=st.integers(0, 255), seq=SEQ, name=raw_names,
       index=I32)
def test_brport_msg_roundtrips_attribute_and_value(attr, value, seq, name, index):
    raw = encode(brport_msg(seq, attr, value, name=name, index=index))
    m = w.decode_one(raw)
    info = w.linkinfo(m.attrs)
    assert (m.type, m.flags, m.seq, m.fixed.index) == (C.RTM_NEWLINK, REQ, seq, index)
    assert info.slave_kind == b"bridge"
    assert [(a.type, a.payload) for a in info.slave_data] == [(attr, bytes([value]))]
    assert len(raw) == m.header.len


def test_brport_msg_invalid_name_appends_nothing():
    assert_fails_unchanged(brport_msg(name=b"x" * 16), errno.EINVAL)


def test_brport_msg_without_room_is_enospc_and_leaves_buffer_unchanged():
    assert_enospc_leaves_buffer(brport_msg(name=b"port0", mtu=1500))


# -- dump ------------------------------------------------------------------------

def test_dump_asks_for_every_link():
    m = request_msg(links.dump())
    assert (m.type, m.flags & C.NLM_F_DUMP, m.fixed.index, m.attrs) == (
        C.RTM_GETLINK, C.NLM_F_DUMP, 0, ())


# -- create_veth_pair options ------------------------------------------------------

@FAST
@given(opts=st.fixed_dictionaries({}, optional={
    "mtu": st.integers(1, 2**31 - 1), "master_index": U32, "txqueuelen": U32, "group": U32}),
    up=st.booleans())
def test_create_veth_pair_host_options_go_to_the_host_only(opts, up):
    m = request_msg(veth("va", "vb", up=up, **opts))
    outer = w.Attrs(a for a in m.attrs if a.type != C.IFLA_LINKINFO)
    want = {"name": b"va"}
    for key, field in (("mtu", "mtu"), ("master_index", "master"), ("txqueuelen", "txqlen"),
                       ("group", "group")):
        if key in opts:
            want[field] = opts[key]
    ifi, peer = w.veth_peer(w.linkinfo(m.attrs).data)
    assert link_fields(outer) == want
    assert (m.fixed.flags, m.fixed.change) == ((C.IFF_UP, C.IFF_UP) if up else (0, 0))
    assert (link_fields(peer), ifi.flags, ifi.change) == ({"name": b"vb"}, 0, 0)


@FAST
@given(peer_mtu=st.one_of(st.none(), st.integers(1, 2**31 - 1)),
       ns=st.sampled_from(["fd", "pid", None]), value=st.integers(1, 2**31 - 1))
def test_create_veth_pair_peer_options_go_to_the_peer_only(peer_mtu, ns, value):
    kw = {"peer_mtu": peer_mtu}
    want = {"name": b"vb"}
    if peer_mtu is not None:
        want["mtu"] = peer_mtu
    if ns == "fd":
        kw["peer_netns_fd"], want["ns_fd"] = value, value
    elif ns == "pid":
        kw["peer_pid"], want["ns_pid"] = value, value
    m = request_msg(veth("va", "vb", **kw))
    outer = w.Attrs(a for a in m.attrs if a.type != C.IFLA_LINKINFO)
    assert link_fields(outer) == {"name": b"va"}
    assert link_fields(w.veth_peer(w.linkinfo(m.attrs).data)[1]) == want


def test_create_veth_pair_refuses_two_peer_namespaces():
    with pytest.raises(ValueError):
        veth("va", "vb", peer_netns_fd=3, peer_pid=1)


# -- _core's encoder builders: the spec fields they copy into ---------------------

OVERSIZED = {
    # builder call with one address one byte longer than its 16-byte spec field
    "addr-local": "addr_encoder(lib.RTM_NEWADDR, 0, index=1, family=lib.AF_INET6, prefixlen=64, "
                  "local=bytes(17))",
    "addr-broadcast": "addr_encoder(lib.RTM_NEWADDR, 0, index=1, family=lib.AF_INET, prefixlen=24, "
                      "local=bytes(4), broadcast=bytes(17))",
    "route-dst": "route_encoder(lib.RTM_NEWROUTE, 0, family=lib.AF_INET6, dst=bytes(17), dst_len=64, "
                 "table=254, protocol=3, scope=0, rtype=1)",
    "route-gateway": "route_encoder(lib.RTM_NEWROUTE, 0, family=lib.AF_INET6, gateway=bytes(17), "
                     "table=254, protocol=3, scope=0, rtype=1)",
}


@pytest.mark.parametrize("call", sorted(OVERSIZED))
def test_encoder_builders_refuse_addresses_longer_than_their_field(call):
    # in a child process: the overrun may corrupt the heap
    code = ("from pynetlink._core import lib, addr_encoder, route_encoder\n"
            f"try:\n    {OVERSIZED[call]}\nexcept (ValueError, TypeError, IndexError):\n"
            "    raise SystemExit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")[-300:]


def test_link_spec_refuses_address_longer_than_its_field():
    with pytest.raises(ValueError):
        core.link_spec(address=bytes(33))


ALL_REQUESTS = {
    "interface_up": lambda: links.set_flags("eth0", True),
    "interface_down": lambda: links.set_flags("eth0", False),
    "set_mtu": lambda: links.set_mtu("eth0", 1500),
    "set_master": lambda: links.set_master("eth0", 4),
    "rename": lambda: links.rename(2, "wan0"),
    "set_netns_pid": lambda: links.set_netns_pid("eth0", 1),
    "set_netns_fd": lambda: links.set_netns_fd("eth0", 3),
    "delete": lambda: links.delete("eth0"),
    "get": lambda: links.get("eth0"),
    "dump": lambda: links.dump(),
    "set_link": lambda: set_link("eth0", mac_address="02:00:00:00:00:01", mtu=9000,
                                       txqueuelen=500, master_index=3, up=True),
    "set_link_rename": lambda: set_link("eth0", index=4, new_name="wan0"),
    "set_hairpin": lambda: links.set_hairpin("eth0", True),
    "create_veth_pair_options": lambda: veth(
        "va", "vb", mtu=1400, master_index=2, up=True, txqueuelen=10, group=1, peer_mtu=1300,
        peer_netns_fd=5),
    "create_veth_pair": lambda: veth("va", "vb"),
    "address_add": lambda: addresses.add(ipaddress.ip_interface("10.0.0.1/8"), 2),
    "default_route": lambda: routes.add(routes.default_network(ipaddress.ip_address("10.0.0.254")),
                                        ipaddress.ip_address("10.0.0.254"), 2),
}


@pytest.mark.parametrize("name", sorted(ALL_REQUESTS))
def test_every_request_asks_for_an_ack(name):
    m = request_msg(ALL_REQUESTS[name](), seq=77)
    assert m.flags & REQ == REQ and m.seq == 77


@pytest.mark.parametrize("name", sorted(ALL_REQUESTS))
def test_every_request_can_be_encoded_repeatedly_with_new_seqs(name):
    req = ALL_REQUESTS[name]()
    b = Buf()
    for seq in (5, 6):
        assert req(b.ptr, seq) == 0
    first, second = w.decode(b.bytes())
    assert (first.seq, second.seq) == (5, 6)
    assert first.raw[:8] + first.raw[12:] == second.raw[:8] + second.raw[12:]


@pytest.mark.parametrize("name", sorted(ALL_REQUESTS))
def test_every_request_fails_with_enospc_leaving_buffer_unchanged(name):
    req = ALL_REQUESTS[name]()
    assert_enospc_leaves_buffer(lambda p: req(p, 3))
