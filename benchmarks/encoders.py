#!/usr/bin/env python3
"""Request encoding cost: pynetlink's cffi encoders vs a pure-Python ``struct`` encoder.

No socket is opened and the kernel is never asked anything: every request is
only built and encoded into a buffer.  For each kind of request, four timings:

* **pynetlink build+encode**: the public builder (``links.set_mtu(...)`` ...,
  argument validation, the cffi spec made with ``ffi.new``), which returns
  the request's encoder, then ``buf.len = 0; encode(buf, seq)``;
* **pynetlink encode**: ``buf.len = 0; encode(buf, seq)`` with a prebuilt
  encoder: the cffi call alone;
* **struct build+encode**: the *same* pynetlink builder, run with its encoder
  factories (``link_encoder``, ``veth_encoder``, ``addr_encoder``,
  ``route_encoder``) swapped, for the duration of that timing only, for the
  pure-Python ones below; then ``del buf[:]; encode(buf, seq)`` into a
  ``bytearray``.  Validation is identical: the difference is the spec and
  the encoder;
* **struct encode**: ``del buf[:]; encode(buf, seq)`` with a prebuilt
  struct encoder.

The struct encoder packs the netlink header, the family header and every
attribute from the spec's values on each call (nothing is cached between
calls) and appends the message to the bytearray.  Before anything is timed,
its output is compared with the C encoder's for every request kind; any
difference is printed as a hex diff and the script exits 1.

Kernel constants come from ``pynetlink._core`` (named there, compiled in
from the kernel headers; called K below).  It does not name the attribute
numbers (IFLA_MTU, IFA_LOCAL, RTA_GATEWAY, ...): those are read at run time
from the enums of the same UAPI headers (``/usr/include/linux/...``), and the
header reader is first checked against every K value it also finds.  No number is typed by
hand; the byte-for-byte check catches any wrong one anyway.

cffi calls are counted, not guessed: each pynetlink path is run once under
``sys.setprofile`` and every call of a function of the compiled core
(``lib.pn_*``) or of a method of the ``ffi`` object (``ffi.new``) is counted.
Stores into cdata fields (``spec.mtu = ...``, ``buf.len = 0``) are not calls
and are not in those counts.

Timing: ``timeit`` with the statement compiled into its loop, GC left on
(it is part of the real cost), the number of loops per repeat calibrated
per cell to a target duration, repeats interleaved across all cells; the
result is the median µs per operation, and ratio = struct / pynetlink
(above 1: pynetlink faster).  Nothing here asserts a timing.

Usage::

    python benchmarks/encoders.py [--quick] [--repeat N] [--target-ms MS] [--json PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import re
import statistics
import struct
import sys
import time
import timeit
from typing import Dict, List, Optional

from pynetlink import _validate as v
from pynetlink import addresses, links, routes
from pynetlink import _core as K          # its kernel constants, compiled in from the headers
from pynetlink._core import ffi, lib

from _common import dist_version, markdown_table, run_meta, write_report

SEQ = 1
BUF_SIZE = 64 * 1024

# -- constants ------------------------------------------------------------------------

INCLUDE_DIR = "/usr/include"
HEADERS = ("linux/rtnetlink.h", "linux/if_link.h", "linux/if_addr.h", "linux/veth.h")

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_ENUM = re.compile(r"\benum\b\s*\w*\s*\{([^{}]*)\}", re.S)


def _enum_value(expr: str, known: Dict[str, Optional[int]]) -> Optional[int]:
    """An enum initializer: an integer literal or an earlier member; else unknown."""
    expr = expr.strip()
    m = re.fullmatch(r"(-?(?:0[xX][0-9a-fA-F]+|[0-9]+))[uUlL]*", expr)
    if m:
        return int(m.group(1), 0)
    return known.get(expr) if re.fullmatch(r"[A-Za-z_]\w*", expr) else None


def read_header_enums(paths) -> Dict[str, Optional[int]]:
    """Enum members of C headers: {name: value}, None when a value cannot be
    read (an expression) or a name has two different values."""
    values: Dict[str, Optional[int]] = {}
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().replace("\\\n", " ")
        text = _COMMENT.sub(lambda m: "\n" * m.group().count("\n") or " ", text)
        text = "\n".join(line for line in text.split("\n") if not line.lstrip().startswith("#"))
        for body in _ENUM.findall(text):
            nxt: Optional[int] = 0
            for item in body.split(","):
                name, eq, expr = (p.strip() for p in item.partition("="))
                if not name:
                    continue
                value = _enum_value(expr, values) if eq else nxt
                nxt = None if value is None else value + 1
                if name in values and values[name] != value:
                    value = None
                values[name] = value
    return values


class Constants:
    """Kernel constants: from K when it has them, else from the header enums."""

    def __init__(self):
        paths = [os.path.join(INCLUDE_DIR, h) for h in HEADERS]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise SystemExit(f"encoders.py: kernel UAPI headers not found ({', '.join(missing)}); "
                             "install linux-libc-dev")
        self.headers = read_header_enums(paths)
        # the reader is trusted only if it agrees with every value compiled into K
        self.checked = {}
        for name in dir(K):
            if name.isupper() and isinstance(getattr(K, name), int) and self.headers.get(name) is not None:
                if self.headers[name] != getattr(K, name):
                    raise SystemExit(f"encoders.py: header reader says {name} = {self.headers[name]},"
                                     f" K says {getattr(K, name)}: refusing to run")
                self.checked[name] = getattr(K, name)
        for name in ("IFLA_IFNAME", "RTM_NEWLINK", "RT_TABLE_MAIN", "RTN_UNICAST"):
            if name not in self.checked:
                raise SystemExit(f"encoders.py: header reader did not find {name}; cannot check it")
        self.source: Dict[str, str] = {}

    def __getattr__(self, name: str) -> int:
        if name.startswith("_"):
            raise AttributeError(name)
        if hasattr(K, name):
            self.source[name] = "K"
            return getattr(K, name)
        value = self.headers.get(name)
        if value is None:
            raise SystemExit(f"encoders.py: {name} is neither in K nor readable from the headers")
        self.source[name] = "headers"
        return value


C = Constants()
AF_UNSPEC = K.AF_UNSPEC
REQ = K.NLM_F_REQUEST | K.NLM_F_ACK
IFLA = {f: getattr(C, "IFLA_" + a) for f, a in (
    ("name", "IFNAME"), ("mtu", "MTU"), ("txqlen", "TXQLEN"), ("address", "ADDRESS"),
    ("group", "GROUP"), ("master", "MASTER"), ("ns_pid", "NET_NS_PID"),
    ("ns_fd", "NET_NS_FD"), ("ext_mask", "EXT_MASK"))}
IFLA_LINKINFO, IFLA_INFO_KIND, IFLA_INFO_DATA = C.IFLA_LINKINFO, C.IFLA_INFO_KIND, C.IFLA_INFO_DATA
VETH_INFO_PEER = C.VETH_INFO_PEER
IFA_LOCAL, IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS = (C.IFA_LOCAL, C.IFA_ADDRESS, C.IFA_BROADCAST,
                                                     C.IFA_FLAGS)
RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY = C.RTA_DST, C.RTA_GATEWAY, C.RTA_OIF, C.RTA_PRIORITY
AF_INET, AF_INET6 = K.AF_INET, K.AF_INET6

# -- the pure-Python struct encoder ---------------------------------------------------
# Layouts of <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h> (host order).

NLMSGHDR = struct.Struct("=IHHII")       # len, type, flags, seq, pid
IFINFOMSG = struct.Struct("=BxHiII")     # family, pad, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")      # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")      # family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTATTR = struct.Struct("=HH")            # len, type
RTATTR_U32 = struct.Struct("=HHI")       # a whole u32 attribute
PAD = (b"", b"\0\0\0", b"\0\0", b"\0")   # by length % 4
assert NLMSGHDR.size == K.NLMSG_HDRLEN

U32, STR, BIN = 0, 1, 2                  # attribute payload kinds
LINK_ORDER = (("name", STR), ("mtu", U32), ("txqlen", U32), ("address", BIN), ("group", U32),
              ("master", U32), ("ns_pid", U32), ("ns_fd", U32), ("ext_mask", U32))


def attr(atype: int, payload: bytes) -> bytes:
    n = RTATTR.size + len(payload)
    return RTATTR.pack(n, atype) + payload + PAD[n & 3]


def nest(atype: int, inner: bytes) -> bytes:
    return RTATTR.pack(RTATTR.size + len(inner), atype) + inner


def link_body(index: int, flags: int, change: int, attrs: tuple) -> bytes:
    """ifinfomsg and the link's attributes, in the C encoder's order."""
    parts = [IFINFOMSG.pack(AF_UNSPEC, 0, index, flags, change)]
    for atype, kind, value in attrs:
        if kind == U32:
            parts.append(RTATTR_U32.pack(RTATTR_U32.size, atype, value & 0xFFFFFFFF))
        elif kind == STR:
            parts.append(attr(atype, value + b"\0"))
        else:
            parts.append(attr(atype, value))
    return b"".join(parts)


def s_link_spec(*, index: int = 0, name: Optional[bytes] = None, flags: int = 0,
                change: int = 0, mtu: Optional[int] = None, master: Optional[int] = None,
                ns_fd: Optional[int] = None, ns_pid: Optional[int] = None,
                group: Optional[int] = None, txqlen: Optional[int] = None,
                address: Optional[bytes] = None, ext_mask: Optional[int] = None) -> tuple:
    """The struct twin of _core.link_spec: (index, flags, change, attributes)."""
    given = {"name": name, "mtu": mtu, "master": master, "ns_fd": ns_fd, "ns_pid": ns_pid,
             "group": group, "txqlen": txqlen, "address": address, "ext_mask": ext_mask}
    if address is not None and not 0 < len(address) <= 32:
        raise ValueError("link-layer address must be 1 to 32 bytes")
    attrs = tuple((IFLA[f], kind, given[f]) for f, kind in LINK_ORDER if given[f] is not None)
    return index, flags, change, attrs


def s_link_encoder(msg_type: int, nlflags: int, **fields):
    spec = s_link_spec(**fields)

    def encode(buf: bytearray, seq: int) -> int:
        body = link_body(*spec)
        buf += NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, nlflags | REQ, seq, 0)
        buf += body
        return 0
    return encode


def s_veth_encoder(nlflags: int, host: dict, peer: dict):
    hspec, pspec = s_link_spec(**host), s_link_spec(**peer)

    def encode(buf: bytearray, seq: int) -> int:
        info = attr(IFLA_INFO_KIND, b"veth" + b"\0") + nest(
            IFLA_INFO_DATA, nest(VETH_INFO_PEER, link_body(*pspec)))
        body = link_body(*hspec) + nest(IFLA_LINKINFO, info)
        buf += NLMSGHDR.pack(NLMSGHDR.size + len(body), K.RTM_NEWLINK, nlflags | REQ, seq, 0)
        buf += body
        return 0
    return encode


def _ip_field(value: bytes, n: int, what: str) -> bytes:
    """What the C encoder copies out of its 16-byte field: n bytes, zero-filled."""
    if not 0 < len(value) <= 16:
        raise ValueError(f"{what} must be 1 to 16 bytes, not {len(value)}")
    return (value + bytes(16))[:n]


def _addr_size(family: int) -> int:
    return 4 if family == AF_INET else 16 if family == AF_INET6 else 0


def s_addr_encoder(msg_type: int, nlflags: int, *, index: int, family: int, prefixlen: int,
                   local: bytes, broadcast: Optional[bytes] = None, scope: int = 0,
                   flags: int = 0):
    n = _addr_size(family)
    # the checks pn_addr_msg makes on every call, made once here (the spec cannot change)
    if not n or prefixlen > n * 8 or index <= 0 or (broadcast is not None and family != AF_INET):
        raise ValueError("address spec the C encoder would refuse (-EINVAL)")
    local = _ip_field(local, n, "local address")
    if broadcast is not None:
        broadcast = _ip_field(broadcast, n, "broadcast address")

    def encode(buf: bytearray, seq: int) -> int:
        body = IFADDRMSG.pack(family, prefixlen, 0, scope, index) + attr(IFA_LOCAL, local) \
            + attr(IFA_ADDRESS, local)
        if broadcast is not None:
            body += attr(IFA_BROADCAST, broadcast)
        if flags:
            body += attr(IFA_FLAGS, struct.pack("=I", flags))
        buf += NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, nlflags | REQ, seq, 0)
        buf += body
        return 0
    return encode


def s_route_encoder(msg_type: int, nlflags: int, *, family: int, dst: Optional[bytes] = None,
                    dst_len: int = 0, gateway: Optional[bytes] = None, oif: int = 0,
                    table: int, protocol: int, scope: int, rtype: int,
                    priority: Optional[int] = None):
    n = _addr_size(family)
    if not n or dst_len > n * 8 or oif < 0:
        raise ValueError("route spec the C encoder would refuse (-EINVAL)")
    dst = _ip_field(dst, n, "destination") if dst is not None else bytes(n)
    if gateway is not None:
        gateway = _ip_field(gateway, n, "gateway")

    def encode(buf: bytearray, seq: int) -> int:
        body = RTMSG.pack(family, dst_len, 0, 0, table, protocol, scope, rtype, 0)
        if dst_len:
            body += attr(RTA_DST, dst)
        if gateway is not None:
            body += attr(RTA_GATEWAY, gateway)
        if oif:
            body += RTATTR_U32.pack(RTATTR_U32.size, RTA_OIF, oif)
        if priority is not None:
            body += RTATTR_U32.pack(RTATTR_U32.size, RTA_PRIORITY, priority)
        buf += NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, nlflags | REQ, seq, 0)
        buf += body
        return 0
    return encode


# pynetlink's encoder factories, as its builder modules see them, and their struct twins
FACTORIES = ((links, "link_encoder", s_link_encoder), (links, "veth_encoder", s_veth_encoder),
             (addresses, "addr_encoder", s_addr_encoder), (routes, "route_encoder", s_route_encoder))


@contextlib.contextmanager
def struct_factories():
    """Make pynetlink's builders return struct encoders, for a while."""
    saved = [(mod, name, getattr(mod, name)) for mod, name, _ in FACTORIES]
    try:
        for mod, name, twin in FACTORIES:
            setattr(mod, name, twin)
        yield
    finally:
        for mod, name, original in saved:
            setattr(mod, name, original)


# -- the request kinds ------------------------------------------------------------------
# (label, builder expression).  The expression is what an operation of pynetlink.ops
# builds once the interface indexes are known: argument parsing and validation, the
# spec, the encoder (not the name lookup).

def veth_on_master(master_index: int, host: dict, peer: dict):
    """create_veth_pair with a master: the host end's fields get its index."""
    return links.create_veth_pair({**host, "master": master_index}, peer)


def default_route(gateway: str, index: int):
    """set_default_gateway: the gateway parsed once, the default network of its family."""
    via = routes.parse_gateway(gateway)
    return routes.add(routes.default_network(via), via, index)


KINDS = [
    ("set_mtu", "links.set_mtu('eth0', 1500)"),
    ("interface_up", "links.set_flags('eth0', True)"),
    ("create_veth_pair", "links.create_veth_pair(*links.veth_fields('veth0h', 'veth0c'))"),
    ("create_veth_pair mtu+master+up+peer fd",
     "veth_on_master(3, *links.veth_fields('veth0h', 'veth0c', mtu=1450, up=True, peer_ns_fd=7))"),
    ("set_interface_ip IPv4 (addresses.add)", "addresses.add(v.cidr('192.0.2.2/24'), 2)"),
    ("set_interface_ip IPv6 (addresses.add)", "addresses.add(v.cidr('2001:db8::2/64'), 2)"),
    ("set_default_gateway (routes.add)", "default_route('192.0.2.1', 2)"),
    ("set_link mac+mtu+txqlen+master+up",
     "links.set_link({**links.change_fields('eth0', mac_address='02:42:c0:00:02:02', mtu=1450, "
     "txqueuelen=1000, up=True), 'master': 3})"),
    ("get (links.get)", "links.get('eth0')"),
]

VARIANTS = ("pn_build", "pn_encode", "struct_build", "struct_encode")


def new_c_buf():
    data = ffi.new("unsigned char[]", BUF_SIZE)
    return data, ffi.new("struct pn_buf *", {"data": data, "cap": BUF_SIZE})


def namespace(buf, encode=None) -> dict:
    return {"links": links, "addresses": addresses, "routes": routes, "v": v,
            "veth_on_master": veth_on_master, "default_route": default_route,
            "b": buf, "r": encode}


def build(expr: str):
    return eval(expr, namespace(None))          # noqa: S307 - our own constant expressions


def c_bytes(encode, kind: str) -> bytes:
    _data, buf = new_c_buf()
    rc = encode(buf, SEQ)
    if rc != 0:
        raise SystemExit(f"encoders.py: the C encoder returned {rc} for {kind}")
    return bytes(ffi.buffer(buf.data, buf.len))


def s_bytes(encode, kind: str) -> bytes:
    buf = bytearray()
    if encode(buf, SEQ) != 0:
        raise SystemExit(f"encoders.py: the struct encoder failed for {kind}")
    return bytes(buf)


def hexdiff(a: bytes, b: bytes) -> str:
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lines = [f"C {len(a)} bytes, struct {len(b)} bytes, first difference at offset {first}",
             "offset  C                                                struct"]
    for off in range(0, max(len(a), len(b)), 16):
        ca, cb = a[off:off + 16], b[off:off + 16]
        mark = "  " if ca == cb else "!!"
        lines.append(f"{off:5d} {mark} {ca.hex(' '):<48} {cb.hex(' ')}")
    return "\n".join(lines)


def count_cffi_calls(fn) -> dict:
    """Run fn() once under sys.setprofile; count calls into the compiled core
    (functions of lib) and into the ffi object (ffi.new, ...)."""
    counts = {"c": [], "ffi": []}

    def prof(_frame, event, arg):
        if event == "c_call":
            owner = getattr(arg, "__self__", None)
            if owner is lib:
                counts["c"].append(arg.__name__)
            elif owner is ffi or (isinstance(owner, tuple) and owner and owner[0] is ffi):
                counts["ffi"].append("ffi." + arg.__name__)     # ffi.new, an ffi.new_allocator()

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return counts


def fmt_calls(c: dict) -> str:
    n = len(c["c"]) + len(c["ffi"])
    parts = []
    if c["ffi"]:
        names = sorted(set(c["ffi"]))
        parts.append(f"{len(c['ffi'])} " + "/".join(names))
    if c["c"]:
        parts.append(f"{len(c['c'])} C")
    return f"{n} ({' + '.join(parts)})" if parts else "0"


# -- timing ---------------------------------------------------------------------------

class Cell:
    def __init__(self, kind: str, variant: str, stmt: str, ns: dict, patched: bool):
        self.kind, self.variant, self.patched = kind, variant, patched
        self.timer = timeit.Timer(stmt, setup="gc.enable()", globals={**ns, "gc": gc})
        self.number = 1
        self.per_op_us: List[float] = []

    def run(self, number: int) -> float:
        with struct_factories() if self.patched else contextlib.nullcontext():
            return self.timer.timeit(number)

    def calibrate(self, target_s: float) -> None:
        number = 1
        while True:
            t = self.run(number)
            if t >= target_s / 10 or number >= 1 << 26:
                break
            number *= 10 if t < target_s / 1000 else 2
        self.number = max(1, round(number * target_s / max(t, 1e-9)))

    def sample(self) -> None:
        self.per_op_us.append(self.run(self.number) / self.number * 1e6)

    @property
    def median(self) -> float:
        return statistics.median(self.per_op_us)


SAME = 0.05        # ratios within 5 % of 1 are reported as "about the same"


def verdict(pairs) -> str:
    """Which kinds the pure-struct encoder is faster / slower for, with ratios."""
    groups = {"pure-struct FASTER": [(k, x) for k, x in pairs if x < 1 - SAME],
              "pynetlink faster": [(k, x) for k, x in pairs if x > 1 + SAME],
              f"about the same (within {SAME:.0%})": [(k, x) for k, x in pairs
                                                      if 1 - SAME <= x <= 1 + SAME]}
    return "; ".join(f"{g} for {len(v) if len(v) < len(pairs) else f'all {len(v)}'}" + (" (" + ", ".join(f"{k} {x:.2f}x" for k, x in v) + ")"
                                             if v and len(v) < len(pairs) else "")
                     for g, v in groups.items() if v)


def fmt_us(v: float) -> str:
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def table(rows: List[dict]) -> str:
    head = ["request", "bytes", "pn build+enc µs", "pn enc µs", "struct build+enc µs",
            "struct enc µs", "struct/pn build+enc", "struct/pn enc",
            "cffi calls build+enc", "cffi calls enc"]
    body = [[r["kind"], str(r["bytes"]), fmt_us(r["median_us"]["pn_build"]),
             fmt_us(r["median_us"]["pn_encode"]), fmt_us(r["median_us"]["struct_build"]),
             fmt_us(r["median_us"]["struct_encode"]), f"{r['ratio']['build']:.2f}x",
             f"{r['ratio']['encode']:.2f}x", r["calls_text"]["pn_build"],
             r["calls_text"]["pn_encode"]] for r in rows]
    return markdown_table(head, body, left=(0, 8, 9))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="3 repeats of ~3 ms per cell: a smoke run of about a second (for CI); "
                        "numbers only indicative")
    p.add_argument("--repeat", type=int, default=None,
                   help="timeit repeats per cell, interleaved across cells (default 7, 3 with --quick)")
    p.add_argument("--target-ms", type=float, default=None,
                   help="duration of one repeat of one cell, which sets its loop count "
                        "(default 100, 3 with --quick)")
    p.add_argument("--json", metavar="PATH", help="write the results (and metadata) to PATH")
    a = p.parse_args(argv)
    if a.repeat is None:
        a.repeat = 3 if a.quick else 7
    if a.target_ms is None:
        a.target_ms = 3.0 if a.quick else 100.0
    if not 1 <= a.repeat <= 1000:
        p.error("--repeat must be in [1, 1000]")
    if not 0.1 <= a.target_ms <= 10_000:
        p.error("--target-ms must be in [0.1, 10000]")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    meta = {
        **run_meta(args.quick),
        "implementation": platform.python_implementation(),
        "pynetlink": dist_version("pynetlink"),
        "cffi": dist_version("cffi"),
        "repeat": args.repeat, "target_ms": args.target_ms,
        "gc": "enabled during timing",
    }
    print(f"pynetlink encoder benchmark  {meta['date']}  Python {meta['python']}  "
          f"{meta['machine']}, {meta['cpus']} CPUs  pynetlink {meta['pynetlink']}  cffi {meta['cffi']}")

    # 1. build everything once; the struct encoder must match the C one byte for byte
    rows, failures = [], 0
    for kind, expr in KINDS:
        pn_enc = build(expr)
        with struct_factories():
            st_enc = build(expr)
        cb, sb = c_bytes(pn_enc, kind), s_bytes(st_enc, kind)
        with struct_factories():
            sb2 = s_bytes(build(expr), kind)
        if cb != sb or sb != sb2:
            failures += 1
            print(f"\nMISMATCH for {kind} ({expr}):\n{hexdiff(cb, sb if cb != sb else sb2)}",
                  file=sys.stderr)
        _data, cbuf = new_c_buf()
        calls = {"pn_build": count_cffi_calls(lambda: (setattr(cbuf, "len", 0),
                                                       build(expr)(cbuf, SEQ))),
                 "pn_encode": count_cffi_calls(lambda: (setattr(cbuf, "len", 0),
                                                        pn_enc(cbuf, SEQ)))}
        with struct_factories():
            st_calls = count_cffi_calls(lambda: s_bytes(build(expr), kind))
        if st_calls["c"] or st_calls["ffi"]:
            print(f"struct path of {kind} made cffi calls: {st_calls}", file=sys.stderr)
            failures += 1
        rows.append({"kind": kind, "builder": expr, "bytes": len(cb), "message_hex": cb.hex(),
                     "pn_encoder": pn_enc, "st_encoder": st_enc, "cbuf": (_data, cbuf),
                     "calls": calls, "calls_text": {k: fmt_calls(v) for k, v in calls.items()}})
    if failures:
        print(f"\n{failures} request kind(s): the struct encoder differs from the C encoder; "
              "nothing timed", file=sys.stderr)
        return 1
    print(f"byte-for-byte: struct encoder == C encoder for all {len(rows)} request kinds")
    print("constants: " + ", ".join(sorted(n for n, s in C.source.items() if s == "K")) + " from K; "
          + ", ".join(sorted(n for n, s in C.source.items() if s == "headers"))
          + f" from the {INCLUDE_DIR} header enums (reader checked against {len(C.checked)} K values)")

    # 2. time: four cells per kind, calibrated, repeats interleaved
    cells: List[Cell] = []
    for row in rows:
        expr, (_data, cbuf) = row["builder"], row["cbuf"]
        sbuf = bytearray(BUF_SIZE)
        del sbuf[:]
        row["cells"] = {
            "pn_build": Cell(row["kind"], "pn_build", f"b.len = 0\n{expr}(b, {SEQ})",
                             namespace(cbuf), False),
            "pn_encode": Cell(row["kind"], "pn_encode", f"b.len = 0\nr(b, {SEQ})",
                              namespace(cbuf, row["pn_encoder"]), False),
            "struct_build": Cell(row["kind"], "struct_build", f"del b[:]\n{expr}(b, {SEQ})",
                                 namespace(sbuf), True),
            "struct_encode": Cell(row["kind"], "struct_encode", f"del b[:]\nr(b, {SEQ})",
                                  namespace(sbuf, row["st_encoder"]), False),
        }
        cells.extend(row["cells"].values())
    target_s = args.target_ms / 1000
    print(f"timing {len(cells)} cells: {args.repeat} repeats of ~{args.target_ms:g} ms each, "
          "interleaved; running...", flush=True)
    for cell in cells:
        cell.calibrate(target_s)
    for r in range(args.repeat):
        shift = r % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            cell.sample()
    elapsed = time.monotonic() - started

    for row in rows:
        med = {v: row["cells"][v].median for v in VARIANTS}
        row["median_us"] = med
        row["ratio"] = {"build": med["struct_build"] / med["pn_build"],
                        "encode": med["struct_encode"] / med["pn_encode"]}

    print()
    print(table(rows))
    print()
    print("µs per operation, median of the repeats; ratio = struct / pynetlink "
          "(above 1: pynetlink faster, below 1: the pure-struct encoder is faster).")
    print("build+enc: the pynetlink builder (validation, spec) + reset + encode; the struct column "
          "runs the same builder with struct encoder factories.  enc: reset + encode of a prebuilt "
          "encoder (pynetlink: `buf.len = 0; encode(buf, seq)`, one cffi call).")
    print("cffi calls: counted with sys.setprofile over one run of each path: calls of lib.pn_* "
          "(C) and of ffi methods; cdata field stores (spec.mtu = ..., buf.len = 0) are not calls "
          "and not counted.  The struct paths make none.")
    for label, key in (("encode only", "encode"), ("build+encode", "build")):
        print(f"{label}: " + verdict([(r["kind"], r["ratio"][key]) for r in rows]))
    spread = sorted(((max(c.per_op_us) - min(c.per_op_us)) / c.median, c.kind, c.variant)
                    for c in cells)
    print(f"spread of the repeats, (max - min) / median: typically {spread[len(spread) // 2][0]:.0%}, "
          f"worst {spread[-1][0]:.0%} ({spread[-1][1]}, {spread[-1][2]}); the median absorbs "
          "a slow repeat or two")
    numbers = sorted({c.number for c in cells})
    print(f"loops per repeat: {numbers[0]}..{numbers[-1]}; wall time {elapsed:.1f}s")

    if args.json:
        meta["wall_seconds"] = round(elapsed, 2)
        meta["constants"] = {"from_K": sorted(n for n, s in C.source.items() if s == "K"),
                             "from_headers": {n: C.headers[n] for n, s in sorted(C.source.items())
                                              if s == "headers"},
                             "reader_checked_against_K": C.checked}
        doc = {"meta": meta, "results": [{
            "kind": r["kind"], "builder": r["builder"], "bytes": r["bytes"],
            "message_hex": r["message_hex"],
            "cffi_calls": r["calls"],
            "median_us": r["median_us"],
            "min_us": {v: min(r["cells"][v].per_op_us) for v in VARIANTS},
            "ratio_struct_over_pynetlink": r["ratio"],
            "samples_us": {v: r["cells"][v].per_op_us for v in VARIANTS},
            "loops_per_repeat": {v: r["cells"][v].number for v in VARIANTS},
        } for r in rows]}
        write_report(args.json, doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
