"""nlwire: an independent reference codec for netlink/rtnetlink, for tests.

Written from the Linux UAPI headers (``<linux/netlink.h>``, ``<linux/rtnetlink.h>``,
``<linux/if_link.h>``, ``<linux/if_addr.h>``, ``<linux/veth.h>``, ``<linux/if.h>``),
never from pynetlink's C core, so the two can check each other:

* ``Constants`` reads enum and ``#define`` values out of the headers themselves
  (no hand-typed magic numbers), and ``header_struct`` reads struct layouts so
  the ``struct`` formats below can be cross-checked against the headers.
* ``decode`` splits a buffer of netlink messages and checks *every* length,
  alignment and padding byte strictly, raising ``WireError`` on any
  inconsistency.  It knows the family headers ifinfomsg, ifaddrmsg, rtmsg and
  nlmsgerr, attributes, nests, and the veth peer nest (a bare ifinfomsg
  followed by attributes).
* ``ack``, ``newlink``, ``newaddr``, ``newroute``, ``stats64`` ... build what
  the kernel would send back (``netlink_ack()`` with and without
  ``NLM_F_CAPPED``/``NLM_F_ACK_TLVS``, ``rtnl_fill_ifinfo()``,
  ``inet_fill_ifaddr()``/``inet6_fill_ifaddr()``, ``fib_dump_info()``/
  ``rt6_fill_node()`` replies), and ``addr_info``/``route_info`` read what
  such a message says of its address or route, for decoder tests.
* ``split`` walks a datagram's headers one message at a time, and
  ``read_link``/``read_addr``/``read_route``/``route_unkept`` read a message
  (decoded with ``strict=False``) as a receiver does: the last attribute of
  a type wins, one too short for its type is skipped, a malformed nest is
  ignored; what a reply decoder must give, for judging it on any bytes.
"""
from __future__ import annotations

import ast
import operator
import os
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "HeaderError", "WireError", "Constants", "C", "parse_header_text", "header_struct",
    "decode", "decode_one", "Attr", "Attrs", "Message", "IfInfo", "IfAddr", "RtMsg", "NlmsgErr",
    "linkinfo", "veth_peer", "rtattr", "nlmsg", "ifinfomsg", "ack", "done", "newlink", "stats64",
    "ifaddrmsg", "rtmsg", "cacheinfo", "newaddr", "newroute", "AddrInfo", "RouteInfo",
    "addr_info", "route_info", "split", "decode_body", "last", "cstr", "LinkRecord", "read_link",
    "read_addr", "read_route", "route_unkept",
]

INCLUDE_DIR = os.environ.get("NLWIRE_INCLUDE", "/usr/include")
HEADERS = ("linux/netlink.h", "linux/rtnetlink.h", "linux/if_link.h",
           "linux/if_addr.h", "linux/veth.h", "linux/if.h", "linux/ipv6_route.h",
           "linux/icmpv6.h", "linux/netdevice.h")


class HeaderError(LookupError):
    """A constant or struct that the headers do not define (unambiguously)."""


class WireError(ValueError):
    """Bytes that are not a well-formed netlink message."""


# ---------------------------------------------------------------------------
# Header reader
# ---------------------------------------------------------------------------

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_DEFINE = re.compile(r"#\s*define\s+([A-Za-z_]\w*)(\(?)(.*)$", re.S)
_ENUM = re.compile(r"\benum\b\s*([A-Za-z_]\w*)?\s*\{([^{}]*)\}", re.S)
_MEMBER = re.compile(r"^([A-Za-z_]\w*)\s*(?:=\s*(.+))?$", re.S)
_NUMBER = re.compile(r"\b(0[xX][0-9a-fA-F]+|[0-9]+)([uUlL]*)\b")
_NAME = re.compile(r"^[A-Za-z_]\w*$")


def _strip_comments(text: str) -> str:
    # keep line structure so that preprocessor lines stay lines
    text = text.replace("\\\r\n", " ").replace("\\\n", " ")
    return _COMMENT.sub(lambda m: "\n" * m.group().count("\n") or " ", text)


def parse_header_text(text: str) -> Tuple[List[List[Tuple[str, Optional[str]]]], List[Tuple[str, str]]]:
    """Split C header text into enums and object-like defines.

    Returns (enums, defines): enums is a list of member lists, each member
    (name, expression or None); defines is a list of (name, expression).
    Preprocessor lines are taken out of the code stream before enums are
    read, so ``#define X X`` aliases inside an enum body never become
    members; every ``#if`` branch is read (conflicts are caught on lookup).
    """
    code_lines: List[str] = []
    defines: List[Tuple[str, str]] = []
    for line in _strip_comments(text).split("\n"):
        stripped = line.strip()
        if stripped.startswith("#"):
            m = _DEFINE.match(stripped)
            if m and not m.group(2):            # function-like macros are skipped
                expr = m.group(3).strip()
                if expr:                         # include guards have no value
                    defines.append((m.group(1), expr))
            code_lines.append("")
            continue
        code_lines.append(line)
    enums = []
    for m in _ENUM.finditer("\n".join(code_lines)):
        members = []
        for item in _split_top_level(m.group(2)):
            item = " ".join(item.split())
            if not item:
                continue
            mm = _MEMBER.match(item)
            if not mm:
                raise HeaderError(f"cannot read enum member {item!r}")
            members.append((mm.group(1), mm.group(2)))
        enums.append(members)
    return enums, defines


def _split_top_level(body: str) -> List[str]:
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


_BINOPS = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.LShift: operator.lshift, ast.RShift: operator.rshift,
    ast.BitOr: operator.or_, ast.BitAnd: operator.and_, ast.BitXor: operator.xor,
}
_UNOPS = {ast.Invert: operator.invert, ast.USub: operator.neg, ast.UAdd: operator.pos}


def c_eval(expr: str, lookup: Callable[[str], int]) -> int:
    """Evaluate a C integer constant expression of literals, names and
    + - * / % << >> | & ^ ~ (no casts, sizeof or function-like macros)."""
    def literal(m: re.Match) -> str:
        digits = m.group(1)
        if digits.lower().startswith("0x"):
            return str(int(digits, 16))
        if len(digits) > 1 and digits.startswith("0"):
            return str(int(digits, 8))
        return str(int(digits))

    src = _NUMBER.sub(literal, expr.strip()).replace("/", "//")
    try:
        tree = ast.parse(src, mode="eval")
    except SyntaxError:
        raise HeaderError(f"cannot evaluate C expression {expr!r}") from None

    def ev(node) -> int:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.Name):
            return lookup(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
            return _UNOPS[type(node.op)](ev(node.operand))
        raise HeaderError(f"unsupported construct in C expression {expr!r}")

    return ev(tree)


class Constants:
    """Enum and #define values read from C headers, looked up by name
    (``C.IFLA_IFNAME`` or ``C["IFLA_IFNAME"]``).

    Enums count up from 0, or from the last explicit ``= N``; a member may
    refer to earlier members and to defines.  Object-like defines are
    evaluated on demand; ``#define X X`` (an enum alias) is ignored.  A name
    given two different values, or one that cannot be evaluated, raises
    ``HeaderError`` when (and only when) it is looked up.
    """

    def __init__(self, texts: Iterable[str]):
        self._enum_values: Dict[str, object] = {}
        self._defines: Dict[str, List[str]] = {}
        self._resolving: set = set()
        enums = []
        for text in texts:
            e, d = parse_header_text(text)
            enums.extend(e)
            for name, expr in d:
                if expr == name:
                    continue
                exprs = self._defines.setdefault(name, [])
                if expr not in exprs:
                    exprs.append(expr)
        for members in enums:
            nxt: object = 0
            for name, expr in members:
                if expr is not None:
                    try:
                        value: object = c_eval(expr, self._lookup)
                    except HeaderError as e:
                        value = e
                else:
                    value = nxt
                self._set_enum(name, value)
                nxt = value + 1 if isinstance(value, int) else value

    @classmethod
    def from_files(cls, paths: Sequence[str]) -> "Constants":
        texts = []
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        return cls(texts)

    def _set_enum(self, name: str, value: object) -> None:
        old = self._enum_values.get(name)
        if old is not None and old != value:
            value = HeaderError(f"{name} is defined twice, as {old} and {value}")
        self._enum_values[name] = value

    def _lookup(self, name: str) -> int:
        if name in self._enum_values:
            value = self._enum_values[name]
            if isinstance(value, Exception):
                raise HeaderError(f"{name}: {value}")
            if name in self._defines:
                # an enum member and a define of the same name must agree
                other = self._define_value(name)
                if other != value:
                    raise HeaderError(f"{name} is enum {value} but #define {other}")
            return value  # type: ignore[return-value]
        if name in self._defines:
            return self._define_value(name)
        raise HeaderError(f"{name} is not defined in the headers read")

    def _define_value(self, name: str) -> int:
        exprs = self._defines[name]
        if name in self._resolving:
            raise HeaderError(f"{name} is defined in terms of itself")
        self._resolving.add(name)
        try:
            values = {c_eval(e, self._lookup) for e in exprs}
        finally:
            self._resolving.discard(name)
        if len(values) != 1:
            raise HeaderError(f"{name} has conflicting definitions {exprs}")
        return values.pop()

    def __getitem__(self, name: str) -> int:
        return self._lookup(name)

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._lookup(name)
        except HeaderError as e:
            raise AttributeError(str(e)) from None

    def __contains__(self, name: str) -> bool:
        try:
            self._lookup(name)
            return True
        except HeaderError:
            return False


def _header_paths() -> List[str]:
    return [os.path.join(INCLUDE_DIR, h) for h in HEADERS]


C = Constants.from_files(_header_paths())

# C types of the structs we read, to struct format characters (native sizes,
# standard "=" layout; the headers' structs have no implicit padding).
_CTYPES = {
    "__u8": "B", "__s8": "b", "unsigned char": "B", "char": "b", "signed char": "b",
    "__u16": "H", "__s16": "h", "unsigned short": "H", "short": "h",
    "__u32": "I", "__s32": "i", "unsigned": "I", "unsigned int": "I", "int": "i",
    "__u64": "Q", "__s64": "q",
}


def header_struct(name: str, paths: Optional[Sequence[str]] = None) -> List[Tuple[str, str]]:
    """The fields of ``struct NAME`` from the headers: [(field, format char)].
    A member that is itself a struct is flattened with ``member.field`` names."""
    for p in paths or _header_paths():
        with open(p, encoding="utf-8", errors="replace") as f:
            text = _strip_comments(f.read())
        text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
        m = re.search(r"\bstruct\s+" + re.escape(name) + r"\s*\{([^{}]*)\}\s*;", text)
        if not m:
            continue
        fields: List[Tuple[str, str]] = []
        for decl in m.group(1).split(";"):
            decl = " ".join(decl.split())
            if not decl:
                continue
            sm = re.match(r"^struct\s+(\w+)\s+(\w+)$", decl)
            if sm:
                fields.extend((f"{sm.group(2)}.{f}", c) for f, c in header_struct(sm.group(1), paths))
                continue
            dm = re.match(r"^(.*?)\s*\b(\w+)$", decl)
            if not dm or dm.group(1) not in _CTYPES:
                raise HeaderError(f"struct {name}: cannot read member {decl!r}")
            fields.append((dm.group(2), _CTYPES[dm.group(1)]))
        return fields
    raise HeaderError(f"struct {name} not found")


# ---------------------------------------------------------------------------
# Wire layouts (struct formats) and constants
# ---------------------------------------------------------------------------

NLMSGHDR = struct.Struct("=IHHII")      # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")    # family, (pad), type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")     # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")     # family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTATTR = struct.Struct("=HH")           # len, type
NLMSGERR = struct.Struct("=i" + NLMSGHDR.format[1:])   # error, then the original nlmsghdr
DONE_ERROR = struct.Struct("=i")        # NLMSG_DONE: 0 or the dump's negative errno
U32 = struct.Struct("=I")

ALIGNTO = 4


def align(n: int) -> int:
    return (n + ALIGNTO - 1) & ~(ALIGNTO - 1)


NLMSG_HDRLEN = align(NLMSGHDR.size)
RTA_HDRLEN = align(RTATTR.size)
STATS64_FIELDS: Tuple[str, ...] = tuple(f for f, _ in header_struct("rtnl_link_stats64"))
STATS64 = struct.Struct("=" + "".join(c for _, c in header_struct("rtnl_link_stats64")))
CACHEINFO_FIELDS: Tuple[str, ...] = tuple(f for f, _ in header_struct("ifa_cacheinfo"))
CACHEINFO = struct.Struct("=" + "".join(c for _, c in header_struct("ifa_cacheinfo")))

NLA_F_NESTED = C.NLA_F_NESTED
NLA_F_NET_BYTEORDER = C.NLA_F_NET_BYTEORDER
NLA_TYPE_MASK = C.NLA_TYPE_MASK & 0xFFFF

LINK_TYPES = frozenset((C.RTM_NEWLINK, C.RTM_DELLINK, C.RTM_GETLINK, C.RTM_SETLINK))
ADDR_TYPES = frozenset((C.RTM_NEWADDR, C.RTM_DELADDR, C.RTM_GETADDR))
ROUTE_TYPES = frozenset((C.RTM_NEWROUTE, C.RTM_DELROUTE, C.RTM_GETROUTE))


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------

class IfInfo(NamedTuple):
    family: int
    type: int
    index: int
    flags: int
    change: int


class IfAddr(NamedTuple):
    family: int
    prefixlen: int
    flags: int
    scope: int
    index: int


class RtMsg(NamedTuple):
    family: int
    dst_len: int
    src_len: int
    tos: int
    table: int
    protocol: int
    scope: int
    type: int
    flags: int


class Header(NamedTuple):
    len: int
    type: int
    flags: int
    seq: int
    pid: int


class NlmsgErr(NamedTuple):
    error: int
    msg: Header                 # the original request's header
    payload: bytes              # the original request's payload (uncapped only)


@dataclass(frozen=True)
class Attr:
    type: int                   # NLA_F_* bits masked off
    flags: int                  # NLA_F_NESTED | NLA_F_NET_BYTEORDER bits
    payload: bytes

    def u32(self) -> int:
        if len(self.payload) != U32.size:
            raise WireError(f"attribute {self.type}: u32 payload of {len(self.payload)} bytes")
        return U32.unpack(self.payload)[0]

    def i32(self) -> int:
        v = self.u32()
        return v - (1 << 32) if v & 0x80000000 else v

    def string(self) -> bytes:
        """A NUL-terminated string payload, without its terminator; exactly one NUL, at the end."""
        p = self.payload
        if not p or p[-1] != 0 or 0 in p[:-1]:
            raise WireError(f"attribute {self.type}: not a NUL-terminated string: {p!r}")
        return p[:-1]

    def nested(self) -> "Attrs":
        return parse_attrs(self.payload)


class Attrs(tuple):
    """Attributes in wire order."""

    def types(self) -> List[int]:
        return [a.type for a in self]

    def all(self, type_: int) -> List[Attr]:
        return [a for a in self if a.type == type_]

    def get(self, type_: int) -> Attr:
        """The attribute of that type; WireError unless there is exactly one."""
        found = self.all(type_)
        if len(found) != 1:
            raise WireError(f"attribute {type_} present {len(found)} times, wanted once")
        return found[0]

    def __contains__(self, type_: object) -> bool:  # type: ignore[override]
        return any(a.type == type_ for a in self)


def parse_attrs(data: bytes, strict: bool = True) -> Attrs:
    """Attributes filling ``data`` exactly: each rta_len >= 4 and within
    bounds, padding present and zero, nothing left over.  ``strict=False``
    reads as the kernel's nla_parse() does: lengths are still checked
    against the bytes there, but missing or non-zero padding and trailing
    bytes shorter than an attribute header are let pass."""
    out = []
    off = 0
    while off < len(data):
        if len(data) - off < RTATTR.size:
            if not strict:
                break
            raise WireError(f"{len(data) - off} trailing bytes after attributes")
        rta_len, rta_type = RTATTR.unpack_from(data, off)
        if rta_len < RTA_HDRLEN:
            raise WireError(f"rta_len {rta_len} shorter than the attribute header")
        if rta_len > len(data) - off:
            raise WireError(f"rta_len {rta_len} runs past the {len(data) - off} bytes left")
        end = off + align(rta_len)
        if strict and end > len(data):
            raise WireError(f"padding of attribute {rta_type} (rta_len {rta_len}) missing")
        if strict and any(data[off + rta_len:end]):
            raise WireError(f"non-zero padding after attribute {rta_type}")
        out.append(Attr(rta_type & NLA_TYPE_MASK, rta_type & ~NLA_TYPE_MASK & 0xFFFF,
                        bytes(data[off + RTA_HDRLEN:off + rta_len])))
        off = end
    return Attrs(out)


@dataclass(frozen=True)
class Message:
    header: Header
    fixed: object               # IfInfo / IfAddr / RtMsg / NlmsgErr / int (NLMSG_DONE) / None
    attrs: Attrs                # attributes (ext-ack TLVs for NLMSG_ERROR)
    raw: bytes = field(repr=False)

    @property
    def type(self) -> int:
        return self.header.type

    @property
    def flags(self) -> int:
        return self.header.flags

    @property
    def seq(self) -> int:
        return self.header.seq


def _fixed_layout(msg_type: int):
    if msg_type in LINK_TYPES:
        return IFINFOMSG, IfInfo
    if msg_type in ADDR_TYPES:
        return IFADDRMSG, IfAddr
    if msg_type in ROUTE_TYPES:
        return RTMSG, RtMsg
    return None, None


def _decode_ifinfo(body: bytes, strict: bool = True) -> IfInfo:
    if len(body) < IFINFOMSG.size:
        raise WireError(f"{len(body)} bytes cannot hold an ifinfomsg")
    if strict and body[1] != 0:
        raise WireError("ifinfomsg padding byte is not zero")
    return IfInfo(*IFINFOMSG.unpack_from(body))


def _ack_tlvs(h: Header, rest: bytes, strict: bool) -> Attrs:
    """What follows an ACK's nlmsgerr (or NLMSG_DONE's int): TLVs if
    NLM_F_ACK_TLVS says so; otherwise nothing (a lenient reader ignores the rest)."""
    if h.flags & C.NLM_F_ACK_TLVS:
        return parse_attrs(rest, strict)
    if rest and strict:
        raise WireError(f"{len(rest)} unexplained bytes after the error")
    return Attrs()


def _decode_body(h: Header, body: bytes, strict: bool = True):
    if h.type == C.NLMSG_ERROR:
        if len(body) < NLMSGERR.size:
            raise WireError(f"NLMSG_ERROR of {len(body)} bytes is shorter than nlmsgerr")
        error, *orig = NLMSGERR.unpack_from(body)
        orig_h = Header(*orig)
        rest = body[NLMSGERR.size:]
        payload = b""
        # the quote is there, or (TLVs after it) must be found to be absent
        if not h.flags & C.NLM_F_CAPPED and (rest or h.flags & C.NLM_F_ACK_TLVS):
            if orig_h.len < NLMSG_HDRLEN:
                raise WireError(f"original nlmsg_len {orig_h.len} shorter than a header")
            plen = align(orig_h.len) - NLMSG_HDRLEN
            if plen > len(rest):
                raise WireError(f"original request of {orig_h.len} bytes not all there")
            payload, rest = rest[:orig_h.len - NLMSG_HDRLEN], rest[plen:]
        return NlmsgErr(error, orig_h, payload), _ack_tlvs(h, rest, strict)
    if h.type == C.NLMSG_DONE:
        if len(body) < DONE_ERROR.size:
            raise WireError(f"NLMSG_DONE of {len(body)} bytes lacks its error int")
        return DONE_ERROR.unpack_from(body)[0], _ack_tlvs(h, body[DONE_ERROR.size:], strict)
    layout, kind = _fixed_layout(h.type)
    if layout is None:
        return None, parse_attrs(body, strict)
    if len(body) < layout.size:
        raise WireError(f"message type {h.type} of {len(body)} bytes lacks its {layout.size}-byte header")
    if layout is IFINFOMSG:
        fixed = _decode_ifinfo(body, strict)
    else:
        fixed = kind(*layout.unpack_from(body))
    return fixed, parse_attrs(body[align(layout.size):], strict)


def decode(buf: bytes, strict: bool = True) -> List[Message]:
    """Every message in ``buf``; raises WireError unless ``buf`` is exactly a
    sequence of well-formed, 4-byte aligned messages.  ``strict=False``
    reads as the kernel does (netlink_rcv_skb(), nla_parse()): every length
    is still checked against the bytes there, but alignment, padding and
    trailing scraps shorter than a header are let pass."""
    return [decode_body(h, raw, strict) for h, raw in split(buf, strict)]


def split(buf: bytes, strict: bool = True) -> Iterator[Tuple[Header, bytes]]:
    """The messages of ``buf`` (header, raw bytes), bodies unread, one at a
    time: a header whose length is wrong raises WireError when it is
    reached, after the messages before it (as a receiver walking the
    datagram meets it).  ``strict`` as in ``decode``."""
    buf = bytes(buf)
    if strict and len(buf) % ALIGNTO:
        raise WireError(f"buffer of {len(buf)} bytes is not 4-byte aligned")
    off = 0
    while off < len(buf):
        if len(buf) - off < NLMSGHDR.size:
            if not strict:
                break
            raise WireError(f"{len(buf) - off} trailing bytes after messages")
        h = Header(*NLMSGHDR.unpack_from(buf, off))
        if h.len < NLMSG_HDRLEN:
            raise WireError(f"nlmsg_len {h.len} shorter than the header")
        if h.len > len(buf) - off:
            raise WireError(f"nlmsg_len {h.len} runs past the {len(buf) - off} bytes left")
        if strict and h.len % ALIGNTO:
            raise WireError(f"nlmsg_len {h.len} is not 4-byte aligned")
        yield h, buf[off:off + h.len]
        off += align(h.len)


def decode_body(h: Header, raw: bytes, strict: bool = True) -> Message:
    """One message of ``split``: its family header and attributes read."""
    fixed, attrs = _decode_body(h, raw[NLMSG_HDRLEN:], strict)
    return Message(h, fixed, attrs, raw)


def decode_one(buf: bytes) -> Message:
    msgs = decode(buf)
    if len(msgs) != 1:
        raise WireError(f"{len(msgs)} messages, wanted one")
    return msgs[0]


class LinkInfo(NamedTuple):
    kind: Optional[bytes]           # IFLA_INFO_KIND
    data: Optional[Attrs]           # IFLA_INFO_DATA
    slave_kind: Optional[bytes]     # IFLA_INFO_SLAVE_KIND
    slave_data: Optional[Attrs]     # IFLA_INFO_SLAVE_DATA


def linkinfo(attrs: Attrs) -> LinkInfo:
    """IFLA_LINKINFO { [IFLA_INFO_KIND "kind"] [IFLA_INFO_DATA {...}]
    [IFLA_INFO_SLAVE_KIND "kind"] [IFLA_INFO_SLAVE_DATA {...}] }, each at most once."""
    nest = attrs.get(C.IFLA_LINKINFO).nested()
    known = (C.IFLA_INFO_KIND, C.IFLA_INFO_DATA, C.IFLA_INFO_SLAVE_KIND, C.IFLA_INFO_SLAVE_DATA)
    unknown = set(nest.types()) - set(known)
    if unknown:
        raise WireError(f"unexpected IFLA_LINKINFO members {sorted(unknown)}")

    def member(t, how):
        return how(nest.get(t)) if t in nest else None

    return LinkInfo(member(C.IFLA_INFO_KIND, Attr.string), member(C.IFLA_INFO_DATA, Attr.nested),
                    member(C.IFLA_INFO_SLAVE_KIND, Attr.string),
                    member(C.IFLA_INFO_SLAVE_DATA, Attr.nested))


def veth_peer(info_data: Attrs) -> Tuple[IfInfo, Attrs]:
    """VETH_INFO_PEER: a bare ifinfomsg followed by the peer's attributes."""
    payload = info_data.get(C.VETH_INFO_PEER).payload
    return _decode_ifinfo(payload), parse_attrs(payload[align(IFINFOMSG.size):])


# ---------------------------------------------------------------------------
# Building (what the kernel sends)
# ---------------------------------------------------------------------------

def rtattr(type_: int, payload: bytes = b"") -> bytes:
    """One attribute, zero-padded to 4 bytes."""
    n = RTA_HDRLEN + len(payload)
    if n > 0xFFFF:
        raise ValueError("attribute longer than rta_len can say")
    return (RTATTR.pack(n, type_) + bytes(payload)).ljust(align(n), b"\0")


def u32_attr(type_: int, value: int) -> bytes:
    return rtattr(type_, U32.pack(value))


def str_attr(type_: int, value: bytes) -> bytes:
    return rtattr(type_, bytes(value) + b"\0")


def nlmsg(type_: int, flags: int, seq: int, pid: int, body: bytes = b"",
          length: Optional[int] = None) -> bytes:
    """A message: header then ``body`` padded to 4 bytes; nlmsg_len covers
    the header and the padded body unless ``length`` says otherwise."""
    body = bytes(body).ljust(align(len(body)), b"\0")
    n = NLMSG_HDRLEN + len(body) if length is None else length
    return NLMSGHDR.pack(n, type_, flags, seq, pid) + body


def ifinfomsg(family: int = socket.AF_UNSPEC, type_: int = 0, index: int = 0,
              flags: int = 0, change: int = 0) -> bytes:
    return IFINFOMSG.pack(family, type_, index, flags, change)


def ack(seq: int, pid: int, error: int = 0, request: Optional[bytes] = None,
        capped: Optional[bool] = None, ext_msg: Optional[bytes] = None,
        tlvs: bytes = b"", msg_terminated: bool = True) -> bytes:
    """An NLMSG_ERROR as ``netlink_ack()`` builds it.

    ``request`` is the original message (header + payload); without it a bare
    header with ``seq`` is quoted.  ``capped`` defaults to the kernel's rule:
    capped for success, or when there is no payload to quote.  ``ext_msg`` adds
    an NLMSGERR_ATTR_MSG TLV (NUL-terminated unless ``msg_terminated`` is
    false); ``tlvs`` are raw TLV bytes added before it.  Either sets
    NLM_F_ACK_TLVS.
    """
    if request is None:
        request = NLMSGHDR.pack(NLMSG_HDRLEN, 0, C.NLM_F_REQUEST | C.NLM_F_ACK, seq, 0)
    request = bytes(request)
    orig_len = NLMSGHDR.unpack_from(request)[0]
    if capped is None:
        capped = error == 0 or orig_len <= NLMSG_HDRLEN
    flags = C.NLM_F_CAPPED if capped else 0
    body = NLMSGERR.pack(error, *NLMSGHDR.unpack_from(request))
    if not capped:
        quoted = request[NLMSG_HDRLEN:orig_len]
        body += quoted.ljust(align(len(quoted)), b"\0")
    extra = bytes(tlvs)
    if ext_msg is not None:
        extra += rtattr(C.NLMSGERR_ATTR_MSG, bytes(ext_msg) + (b"\0" if msg_terminated else b""))
    if extra:
        flags |= C.NLM_F_ACK_TLVS
        body += extra
    return nlmsg(C.NLMSG_ERROR, flags, seq, pid, body)


def done(seq: int, pid: int, error: int = 0, flags: Optional[int] = None) -> bytes:
    """The NLMSG_DONE that ends a dump: a single int, 0 or a negative errno."""
    return nlmsg(C.NLMSG_DONE, C.NLM_F_MULTI if flags is None else flags, seq, pid,
                 struct.pack("=i", error))


def stats64(**counters: int) -> bytes:
    """A struct rtnl_link_stats64 (as this system's headers define it)."""
    unknown = set(counters) - set(STATS64_FIELDS)
    if unknown:
        raise ValueError(f"no such rtnl_link_stats64 fields: {sorted(unknown)}")
    return STATS64.pack(*(counters.get(f, 0) for f in STATS64_FIELDS))


def newlink(seq: int, pid: int, index: int = 1, flags: int = 0, *, name: Optional[bytes] = None,
            mtu: Optional[int] = None, master: Optional[int] = None, group: Optional[int] = None,
            txqlen: Optional[int] = None, stats: Optional[bytes] = None, extra: bytes = b"",
            ifi_type: int = 0, msg_flags: int = 0) -> bytes:
    """An RTM_NEWLINK as ``rtnl_fill_ifinfo()`` sends it (the attributes
    given, in the kernel's order)."""
    body = ifinfomsg(socket.AF_UNSPEC, ifi_type, index, flags, 0)
    if name is not None:
        body += str_attr(C.IFLA_IFNAME, name)
    if txqlen is not None:
        body += u32_attr(C.IFLA_TXQLEN, txqlen)
    if mtu is not None:
        body += u32_attr(C.IFLA_MTU, mtu)
    if group is not None:
        body += u32_attr(C.IFLA_GROUP, group)
    if master is not None:
        body += u32_attr(C.IFLA_MASTER, master)
    if stats is not None:
        body += rtattr(C.IFLA_STATS64, stats)
    body += bytes(extra)
    return nlmsg(C.RTM_NEWLINK, msg_flags, seq, pid, body)


def ifaddrmsg(family: int = socket.AF_INET, prefixlen: int = 0, flags: int = 0, scope: int = 0,
              index: int = 0) -> bytes:
    return IFADDRMSG.pack(family, prefixlen, flags, scope, index)


def rtmsg(family: int = socket.AF_INET, dst_len: int = 0, src_len: int = 0, tos: int = 0,
          table: int = 0, protocol: int = 0, scope: int = 0, type_: int = 0,
          flags: int = 0) -> bytes:
    return RTMSG.pack(family, dst_len, src_len, tos, table, protocol, scope, type_, flags)


def cacheinfo(preferred: int, valid: int, cstamp: int = 0, tstamp: int = 0) -> bytes:
    """A struct ifa_cacheinfo (lifetimes in seconds, stamps in 1/100 s)."""
    values = {"ifa_prefered": preferred, "ifa_valid": valid, "cstamp": cstamp, "tstamp": tstamp}
    return CACHEINFO.pack(*(values[f] for f in CACHEINFO_FIELDS))


def _present(*attrs: Tuple[int, Optional[bytes]]) -> bytes:
    return b"".join(rtattr(t, p) for t, p in attrs if p is not None)


def newaddr(seq: int, pid: int, *, family: int = socket.AF_INET, prefixlen: int = 24,
            ifa_flags: int = 0, scope: int = 0, index: int = 1, address: Optional[bytes] = None,
            local: Optional[bytes] = None, label: Optional[bytes] = None,
            broadcast: Optional[bytes] = None, cache: Optional[bytes] = None,
            flags: Optional[int] = None, extra: bytes = b"", msg_flags: int = 0) -> bytes:
    """An RTM_NEWADDR as ``inet_fill_ifaddr()`` / ``inet6_fill_ifaddr()``
    send it: the attributes given, in the kernel's order (IFA_FLAGS last)."""
    body = ifaddrmsg(family, prefixlen, ifa_flags, scope, index)
    body += _present((C.IFA_ADDRESS, address), (C.IFA_LOCAL, local),
                     (C.IFA_LABEL, None if label is None else bytes(label) + b"\0"),
                     (C.IFA_BROADCAST, broadcast), (C.IFA_CACHEINFO, cache),
                     (C.IFA_FLAGS, None if flags is None else U32.pack(flags)))
    return nlmsg(C.RTM_NEWADDR, msg_flags, seq, pid, body + bytes(extra))


def newroute(seq: int, pid: int, *, family: int = socket.AF_INET, dst_len: int = 0,
             src_len: int = 0, tos: int = 0, rtm_table: int = 0, protocol: int = 0,
             scope: int = 0, type_: int = 0, rtm_flags: int = 0, table: Optional[int] = None,
             dst: Optional[bytes] = None, src: Optional[bytes] = None,
             oif: Optional[int] = None, gateway: Optional[bytes] = None,
             priority: Optional[int] = None, prefsrc: Optional[bytes] = None,
             multipath: Optional[bytes] = None, extra: bytes = b"", msg_flags: int = 0) -> bytes:
    """An RTM_NEWROUTE as ``fib_dump_info()`` / ``rt6_fill_node()`` send it:
    the attributes given, in the kernel's order."""
    body = rtmsg(family, dst_len, src_len, tos, rtm_table, protocol, scope, type_, rtm_flags)
    u32 = (lambda v: None if v is None else U32.pack(v))
    body += _present((C.RTA_TABLE, u32(table)), (C.RTA_DST, dst), (C.RTA_SRC, src),
                     (C.RTA_PRIORITY, u32(priority)), (C.RTA_PREFSRC, prefsrc),
                     (C.RTA_OIF, u32(oif)), (C.RTA_GATEWAY, gateway),
                     (C.RTA_MULTIPATH, multipath))
    return nlmsg(C.RTM_NEWROUTE, msg_flags, seq, pid, body + bytes(extra))


class AddrInfo(NamedTuple):
    """What an RTM_NEWADDR says of its address (None: attribute absent)."""
    index: int
    family: int
    prefixlen: int
    scope: int
    flags: int                  # IFA_FLAGS when present, else ifa_flags
    local: Optional[bytes]
    address: Optional[bytes]
    broadcast: Optional[bytes]
    label: Optional[bytes]
    valid_lft: Optional[int]
    preferred_lft: Optional[int]


class RouteInfo(NamedTuple):
    """What an RTM_NEWROUTE says of its route (None: attribute absent)."""
    family: int
    dst_len: int
    src_len: int
    tos: int
    table: int                  # RTA_TABLE when present, else rtm_table
    protocol: int
    scope: int
    type: int
    flags: int
    dst: Optional[bytes]
    src: Optional[bytes]
    gateway: Optional[bytes]
    prefsrc: Optional[bytes]
    oif: Optional[int]
    priority: Optional[int]
    multipath: bool


def _payload(attrs: Attrs, type_: int) -> Optional[bytes]:
    return attrs.get(type_).payload if type_ in attrs else None


def _u32_of(attrs: Attrs, type_: int) -> Optional[int]:
    return attrs.get(type_).u32() if type_ in attrs else None


def _of_type(msg: Message, name: str) -> Tuple[Attrs, object]:
    if msg.type != C[name]:
        raise WireError(f"message type {msg.type} is not {name}")
    return msg.attrs, msg.fixed


def addr_info(msg: Message) -> AddrInfo:
    """The address an RTM_NEWADDR (from ``decode``) describes; WireError if
    an attribute is repeated or of the wrong size."""
    a, f = _of_type(msg, "RTM_NEWADDR")
    flags = _u32_of(a, C.IFA_FLAGS)
    cache = None
    if C.IFA_CACHEINFO in a:
        payload = a.get(C.IFA_CACHEINFO).payload
        if len(payload) != CACHEINFO.size:
            raise WireError(f"IFA_CACHEINFO of {len(payload)} bytes")
        cache = dict(zip(CACHEINFO_FIELDS, CACHEINFO.unpack(payload)))
    return AddrInfo(f.index, f.family, f.prefixlen, f.scope, f.flags if flags is None else flags,
                    _payload(a, C.IFA_LOCAL), _payload(a, C.IFA_ADDRESS),
                    _payload(a, C.IFA_BROADCAST),
                    a.get(C.IFA_LABEL).string() if C.IFA_LABEL in a else None,
                    None if cache is None else cache["ifa_valid"],
                    None if cache is None else cache["ifa_prefered"])


def route_info(msg: Message) -> RouteInfo:
    """The route an RTM_NEWROUTE (from ``decode``) describes; WireError if
    an attribute is repeated or of the wrong size."""
    a, f = _of_type(msg, "RTM_NEWROUTE")
    table = _u32_of(a, C.RTA_TABLE)
    return RouteInfo(f.family, f.dst_len, f.src_len, f.tos, f.table if table is None else table,
                     f.protocol, f.scope, f.type, f.flags, _payload(a, C.RTA_DST),
                     _payload(a, C.RTA_SRC), _payload(a, C.RTA_GATEWAY),
                     _payload(a, C.RTA_PREFSRC), _u32_of(a, C.RTA_OIF),
                     _u32_of(a, C.RTA_PRIORITY), C.RTA_MULTIPATH in a)


# ---------------------------------------------------------------------------
# Reading as a receiver does (what a decoder of replies must give)
# ---------------------------------------------------------------------------
#
# A receiver (libmnl's mnl_attr_parse() into a table, the kernel's
# nla_parse()) keeps the last attribute of each type; one whose payload is
# shorter than its type needs is skipped as if absent (so an earlier one of
# the same type stands); strings are cut at their first NUL and to the
# field that holds them; a malformed nest is ignored (the message itself is
# still read).  The records below say what such a reader gets from one
# message read with ``decode(..., strict=False)``.

IFNAMSIZ = C.IFNAMSIZ
MAX_ADDR_LEN = C.MAX_ADDR_LEN
IP_MAX = 16                                     # an IPv6 address: the longest IP attribute
STATS64_MIN = 8 * (STATS64_FIELDS.index("tx_dropped") + 1)     # the eight counters kept
RTA_CACHEINFO = struct.Struct("=" + "".join(c for _, c in header_struct("rta_cacheinfo")))
RTA_CACHEINFO_FIELDS = tuple(f for f, _ in header_struct("rta_cacheinfo"))
ROUTE_KEPT = frozenset((C.RTA_DST, C.RTA_SRC, C.RTA_GATEWAY, C.RTA_PREFSRC, C.RTA_OIF,
                        C.RTA_PRIORITY, C.RTA_TABLE))


def last(attrs: Attrs, type_: int, minlen: int = 0) -> Optional[Attr]:
    """The last attribute of that type whose payload holds minlen bytes."""
    found = [a for a in attrs if a.type == type_ and len(a.payload) >= minlen]
    return found[-1] if found else None


def cstr(a: Optional[Attr], size: int = IFNAMSIZ) -> bytes:
    """A string attribute as a char[size] gets it: up to its first NUL, cut to size - 1."""
    return b"" if a is None else a.payload.split(b"\0", 1)[0][:size - 1]


def _u32_first(a: Optional[Attr]) -> Optional[int]:
    return None if a is None else U32.unpack_from(a.payload)[0]


def _ip_read(a: Optional[Attr]) -> Optional[bytes]:
    """An address attribute: None when absent, empty or longer than an IPv6 address."""
    return a.payload if a is not None and 0 < len(a.payload) <= IP_MAX else None


def _nest_read(a: Optional[Attr]) -> Optional[Attrs]:
    if a is None:
        return None
    try:
        return parse_attrs(a.payload, strict=False)
    except WireError:
        return None


class LinkRecord(NamedTuple):
    """What an RTM_NEWLINK says of its link, read as a receiver reads it."""
    index: int
    flags: int
    name: bytes                 # b"" when absent
    mtu: int                    # the u32 attributes: 0 when absent
    master: int
    group: int
    txqlen: int
    link_index: int             # IFLA_LINK, signed
    address: bytes              # IFLA_ADDRESS, b"" when absent or longer than MAX_ADDR_LEN
    kind: bytes                 # IFLA_LINKINFO / IFLA_INFO_KIND
    hairpin: Optional[int]      # IFLA_BRPORT_MODE of a bridge port, None if not one
    stats: Optional[Tuple[int, ...]]    # the first eight rtnl_link_stats64 counters
    addr_gen_mode: int = -1     # IFLA_AF_SPEC / AF_INET6 / IFLA_INET6_ADDR_GEN_MODE, -1 if absent


def _hairpin(info: Attrs) -> Optional[int]:
    slave_kind = last(info, C.IFLA_INFO_SLAVE_KIND)
    if slave_kind is None or not slave_kind.payload.startswith(b"bridge\0"):
        return None
    port = _nest_read(last(info, C.IFLA_INFO_SLAVE_DATA))
    mode = None if port is None else last(port, C.IFLA_BRPORT_MODE, 1)
    return None if mode is None else int(mode.payload[0] != 0)


def _addr_gen_mode(a: Attrs) -> int:
    """IFLA_AF_SPEC's AF_INET6 part's IFLA_INET6_ADDR_GEN_MODE (a u8), or -1."""
    spec = _nest_read(last(a, C.IFLA_AF_SPEC))
    inet6 = None if spec is None else _nest_read(last(spec, socket.AF_INET6))
    mode = None if inet6 is None else last(inet6, C.IFLA_INET6_ADDR_GEN_MODE, 1)
    return -1 if mode is None else mode.payload[0]


def read_link(msg: Message) -> LinkRecord:
    """The link an RTM_NEWLINK describes (see the section comment)."""
    a, f = _of_type(msg, "RTM_NEWLINK")
    u32 = {t: _u32_first(last(a, t, U32.size)) or 0
           for t in (C.IFLA_MTU, C.IFLA_MASTER, C.IFLA_GROUP, C.IFLA_TXQLEN, C.IFLA_LINK)}
    address = last(a, C.IFLA_ADDRESS)
    stats = last(a, C.IFLA_STATS64, STATS64_MIN)
    info = _nest_read(last(a, C.IFLA_LINKINFO))
    return LinkRecord(
        f.index, f.flags, cstr(last(a, C.IFLA_IFNAME)), u32[C.IFLA_MTU], u32[C.IFLA_MASTER],
        u32[C.IFLA_GROUP], u32[C.IFLA_TXQLEN], struct.unpack("=i", U32.pack(u32[C.IFLA_LINK]))[0],
        address.payload if address is not None and len(address.payload) <= MAX_ADDR_LEN else b"",
        b"" if info is None else cstr(last(info, C.IFLA_INFO_KIND)),
        None if info is None else _hairpin(info),
        None if stats is None else struct.unpack_from("=8Q", stats.payload),
        _addr_gen_mode(a))


def read_addr(msg: Message) -> AddrInfo:
    """The address an RTM_NEWADDR describes (see the section comment)."""
    a, f = _of_type(msg, "RTM_NEWADDR")
    flags = _u32_first(last(a, C.IFA_FLAGS, U32.size))
    cache = last(a, C.IFA_CACHEINFO, 4 * (CACHEINFO_FIELDS.index("ifa_valid") + 1))
    lft = None if cache is None else dict(zip(CACHEINFO_FIELDS, CACHEINFO.unpack(
        cache.payload[:CACHEINFO.size].ljust(CACHEINFO.size, b"\0"))))
    label = last(a, C.IFA_LABEL)
    return AddrInfo(f.index, f.family, f.prefixlen, f.scope, f.flags if flags is None else flags,
                    _ip_read(last(a, C.IFA_LOCAL)), _ip_read(last(a, C.IFA_ADDRESS)),
                    _ip_read(last(a, C.IFA_BROADCAST)), None if label is None else cstr(label),
                    None if lft is None else lft["ifa_valid"],
                    None if lft is None else lft["ifa_prefered"])


ROUTE_MIN = {C.RTA_TABLE: U32.size, C.RTA_OIF: U32.size, C.RTA_PRIORITY: U32.size,
             C.RTA_PREF: 1, C.RTA_CACHEINFO: RTA_CACHEINFO.size}


def _route_attr_unkept(a: Attr) -> bool:
    """Does this attribute say something a RouteInfo does not hold?"""
    if a.type in ROUTE_KEPT:
        return False
    if a.type == C.RTA_PREF:
        return a.payload[0] != C.ICMPV6_ROUTER_PREF_MEDIUM
    if a.type == C.RTA_CACHEINFO:               # counters, and an expiry if it has one
        ci = dict(zip(RTA_CACHEINFO_FIELDS, RTA_CACHEINFO.unpack_from(a.payload)))
        return ci["rta_expires"] != 0
    return True


def route_unkept(msg: Message) -> int:
    """1 << type of each attribute type (1 .. RTA_MAX) of a route whose last
    readable attribute says what a RouteInfo does not hold (bit 0: a type
    past 31)."""
    bits = 0
    for type_ in range(1, C.RTA_MAX + 1):
        a = last(msg.attrs, type_, ROUTE_MIN.get(type_, 0))
        if a is not None and _route_attr_unkept(a):
            bits |= 1 << type_ if type_ < 32 else 1
    return bits


def read_route(msg: Message) -> RouteInfo:
    """The route an RTM_NEWROUTE describes (see the section comment)."""
    a, f = _of_type(msg, "RTM_NEWROUTE")
    table = _u32_first(last(a, C.RTA_TABLE, U32.size))
    return RouteInfo(f.family, f.dst_len, f.src_len, f.tos, f.table if table is None else table,
                     f.protocol, f.scope, f.type, f.flags, _ip_read(last(a, C.RTA_DST)),
                     _ip_read(last(a, C.RTA_SRC)), _ip_read(last(a, C.RTA_GATEWAY)),
                     _ip_read(last(a, C.RTA_PREFSRC)),
                     _u32_first(last(a, C.RTA_OIF, U32.size)),
                     _u32_first(last(a, C.RTA_PRIORITY, U32.size)),
                     last(a, C.RTA_MULTIPATH) is not None)
