"""host-local's configuration (the reference's ``backend/allocator``:
config.go, range.go, range_set.go, as in containernetworking-plugins
v1.1.1): the ranges, the routes, ``dataDir``, ``resolvConf`` and the
requested addresses, checked with the reference's rules and error texts.

Go's decoder is followed where it shows: keys match case-insensitively
(an exact match first), ``null`` is absent, an IPv4-mapped IPv6 address is
the IPv4 address, a route's ``dst`` keeps its host bits.  A failure is a
``HostLocalError``: the reference reports each as code 999 with its text.
"""
from __future__ import annotations

import ipaddress
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from .spec import E_INTERNAL, CNIError

Address = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class HostLocalError(CNIError):
    """An error as the reference host-local reports it: code 999, its text."""

    def __init__(self, msg: str, code: int = E_INTERNAL):
        super().__init__(code, msg)


# -- Go's JSON decoding, as far as it shows ------------------------------------------------------

def member(obj: Any, key: str, kind: type, where: str) -> Any:
    """``obj[key]`` as Go's decoder finds it (case-insensitively, the last
    matching key winning), None if absent or null; a value of another JSON
    type is an error."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(key)
    if key not in obj:
        folded = [v for k, v in obj.items() if k.lower() == key.lower()]
        value = folded[-1] if folded else None
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)):
        raise HostLocalError(f"json: cannot unmarshal {json_type(value)} into Go struct field "
                             f"{where}.{key} of type {GO_TYPES[kind]}")
    return value


GO_TYPES = {str: "string", list: "[]", dict: "struct", bool: "bool"}


def json_type(value: Any) -> str:
    for kind, name in ((bool, "bool"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "number"


def canonical(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address (Go's To4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def go_address(text: str) -> Address:
    """Go's net.ParseIP: an address (canonical), no IPv6 zone; ValueError if not."""
    if "%" in text:
        raise ValueError(f"{text!r}: a zone is not part of an address")
    return canonical(ipaddress.ip_address(text))


def parse_ip(text: Any, what: str = "IP address") -> Optional[Address]:
    """net.IP's text form: "" is no address, anything else must be one."""
    if not text:
        return None
    try:
        return go_address(text)
    except ValueError:
        raise HostLocalError(f"invalid {what}: {text}") from None


def parse_cidr(text: str) -> tuple:
    """net.ParseCIDR, host bits kept: (address as written, prefix length, family bits)."""
    try:
        address, slash, prefix = text.partition("/")
        if not (slash and prefix.isascii() and prefix.isdigit()) or "%" in address:
            raise ValueError(text)          # Go has no netmask form and no zone
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise HostLocalError(f"invalid CIDR address: {text}") from None
    return iface.ip, iface.network.prefixlen, iface.max_prefixlen


def parse_ip_arg(text: Any) -> Optional[Address]:
    """The reference's ``ip.IP`` (a requested address): "ADDR" or "ADDR/LEN",
    the address kept."""
    if not text:
        return None
    if not isinstance(text, str):
        raise HostLocalError(f"json: cannot unmarshal {json_type(text)} into Go value of type string")
    try:
        return canonical(parse_cidr(text)[0]) if "/" in text else go_address(text)
    except (ValueError, HostLocalError):
        raise HostLocalError(f"invalid IP address {text}") from None


# -- ranges --------------------------------------------------------------------------------------

@dataclass
class Range:
    """One range: ``subnet``, ``rangeStart`` and ``rangeEnd`` (inclusive),
    ``gateway`` (default: the subnet's first address, never handed out)."""
    subnet: Network
    start: Address
    end: Address
    gateway: Address

    def contains(self, address: Address) -> bool:
        address = canonical(address)
        return (address.version == self.subnet.version and address in self.subnet
                and to16(self.start) <= to16(address) <= to16(self.end))

    def overlaps(self, other: "Range") -> bool:
        return self.subnet.version == other.subnet.version and (
            self.contains(other.start) or self.contains(other.end)
            or other.contains(self.start) or other.contains(self.end))

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


def last_ip(subnet: Network) -> Address:
    """The default rangeEnd: the last address (IPv4: the one before broadcast)."""
    return subnet.broadcast_address - 1 if subnet.version == 4 else subnet.broadcast_address


@dataclass
class RangeDoc:
    """A range as decoded, before its checks."""
    subnet: Optional[tuple]                 # parse_cidr's answer, None if absent
    start: Optional[Address]
    end: Optional[Address]
    gateway: Optional[Address]


def decode_range(doc: Any, where: str) -> RangeDoc:
    """A range's JSON object decoded (the errors Go's decoder reports)."""
    subnet = member(doc, "subnet", str, where)
    return RangeDoc(parse_cidr(subnet) if subnet else None, parse_ip(member(doc, "rangeStart", str, where)),
                    parse_ip(member(doc, "rangeEnd", str, where)), parse_ip(member(doc, "gateway", str, where)))


def make_range(doc: RangeDoc) -> Range:
    """A range canonicalized as range.go does: rangeStart defaults to the
    subnet's first address, rangeEnd to its last (IPv4: before broadcast),
    the gateway to the first address."""
    if doc.subnet is None:
        raise HostLocalError("IP <nil> not v4 nor v6")
    subnet = make_subnet(*doc.subnet)
    first = subnet.network_address + 1
    if doc.start is not None and not in_bounds(doc.start, subnet, doc.start, doc.end):
        raise HostLocalError(f"RangeStart {doc.start} not in network {subnet}")
    start = doc.start if doc.start is not None else first
    if doc.end is not None and not in_bounds(doc.end, subnet, start, doc.end):
        raise HostLocalError(f"RangeEnd {doc.end} not in network {subnet}")
    return Range(subnet, start, doc.end if doc.end is not None else last_ip(subnet),
                 doc.gateway if doc.gateway is not None else first)


def in_bounds(address: Address, subnet: Network, start: Address, end: Optional[Address]) -> bool:
    """range.go's Contains while the range is built: in the subnet, and
    within the bounds given so far (compared as 16-byte addresses, as Go does)."""
    return (address.version == subnet.version and address in subnet
            and to16(start) <= to16(address) and (end is None or to16(address) <= to16(end)))


def to16(address: Address) -> int:
    """The address as Go's 16-byte form, an integer (IPv4: ::ffff:a.b.c.d)."""
    return int(address) | (0xFFFF << 32) if address.version == 4 else int(address)


def make_subnet(address: Address, prefix: int, bits: int) -> Network:
    """``subnet``: a network with room for two addresses, no host bits set."""
    if prefix > bits - 2:
        raise HostLocalError(f"Network {canonical(address)}/{prefix} too small to allocate from")
    if canonical(address).version != address.version:
        raise HostLocalError("IPNet IP and Mask version mismatch")
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    if network.network_address != address:
        raise HostLocalError(f"Network has host bits set. For a subnet mask of length {prefix} "
                             f"the network address is {network.network_address}")
    return network


class RangeSet(list):
    """One range set: ranges of one family that do not overlap; one address
    is allocated from each set."""

    def range_for(self, address: Address) -> Range:
        for r in self:
            if r.contains(address):
                return r
        raise HostLocalError(f"{address} not in range set {self}")

    def contains(self, address: Address) -> bool:
        return any(r.contains(address) for r in self)

    def overlaps(self, other: "RangeSet") -> bool:
        return any(r.overlaps(o) for r in self for o in other)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self)


def decode_range_set(docs: Any, where: str) -> list:
    if not isinstance(docs, list):
        raise HostLocalError(f"json: cannot unmarshal {json_type(docs)} into Go struct field "
                             f"{where} of type allocator.RangeSet")
    return [decode_range(doc, where) for doc in docs]


def make_range_set(docs: list) -> RangeSet:
    """A range set from its decoded ranges, checked as range_set.go does."""
    if not docs:
        raise HostLocalError("empty range set")
    ranges = RangeSet()
    for doc in docs:
        ranges.append(make_range(doc))
        if ranges[-1].subnet.version != ranges[0].subnet.version:
            raise HostLocalError("mixed address families")
    for i, r1 in enumerate(ranges):
        for r2 in ranges[i + 1:]:
            if r1.overlaps(r2):
                raise HostLocalError(f"subnets {r1} and {r2} overlap")
    return ranges


# -- the whole configuration ---------------------------------------------------------------------

@dataclass
class HostLocalConf:
    """What host-local reads from the network configuration."""
    name: str
    version: str
    ranges: list
    routes: list = field(default_factory=list)       # [{"dst": ..., "gw"?: ...}] as the result has them
    data_dir: str = ""
    resolv_conf: str = ""
    requested: list = field(default_factory=list)    # addresses, CNI_ARGS' first


def load_config(raw: bytes, cni_args: str) -> HostLocalConf:
    """The configuration as the reference's LoadIPAMConfig reads it, with
    the requested addresses of CNI_ARGS ``IP=``, ``args.cni.ips`` and
    ``runtimeConfig.ips``."""
    try:
        conf = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise HostLocalError(str(e)) from None
    if not isinstance(conf, dict):
        raise HostLocalError(f"json: cannot unmarshal {json_type(conf)} into Go value of type allocator.Net")
    ipam = member(conf, "ipam", dict, "Net")
    if ipam is None:
        raise HostLocalError("IPAM config missing 'ipam' key")
    runtime = member(conf, "runtimeConfig", dict, "Net") or {}
    requested = requested_ips(conf, runtime, cni_args)
    sets = checked_ranges(ipam, runtime)
    return HostLocalConf(name=member(conf, "name", str, "Net") or "",
                         version=member(conf, "cniVersion", str, "Net") or "",
                         ranges=sets, routes=routes_of(ipam),
                         data_dir=member(ipam, "dataDir", str, "IPAMConfig") or "",
                         resolv_conf=member(ipam, "resolvConf", str, "IPAMConfig") or "",
                         requested=requested)


def requested_ips(conf: dict, runtime: dict, cni_args: str) -> list:
    """The addresses asked for: CNI_ARGS ``IP=``, then ``args.cni.ips``,
    then ``runtimeConfig.ips``."""
    found: list = [load_env_args(cni_args)]
    cni = member(member(conf, "args", dict, "Net") or {}, "cni", dict, "Net.args")
    for text in member(cni or {}, "ips", list, "IPAMArgs") or []:
        found.append(parse_ip_arg(text))
    for text in member(runtime, "ips", list, "Net.runtimeConfig") or []:
        found.append(parse_ip_arg(text))
    return [ip for ip in found if ip is not None]


def load_env_args(text: str) -> Optional[Address]:
    """CNI_ARGS as the reference's types.LoadArgs reads it into
    {IgnoreUnknown, IP}: every item KEY=VALUE, unknown keys an error unless
    ``IgnoreUnknown`` is 1/true.  The ``IP`` asked for, if any."""
    if not text:
        return None
    ip, ignore, unknown = None, False, []
    for pair in text.split(";"):
        kv = pair.split("=")
        if len(kv) != 2:
            raise HostLocalError(f"ARGS: invalid pair {go_quote(pair)}")
        key, value = kv
        if key == "IP":
            try:
                ip = parse_ip_arg(value)
            except HostLocalError as e:
                raise HostLocalError(f"ARGS: error parsing value of pair {go_quote(pair)}: {e.msg}") from None
        elif key == "IgnoreUnknown":
            if value.lower() not in ("1", "true", "0", "false"):
                raise HostLocalError(f"ARGS: error parsing value of pair {go_quote(pair)}: "
                                     f"boolean unmarshal error: invalid input {value.lower()}")
            ignore = value.lower() in ("1", "true")
        else:
            unknown.append(pair)
    if unknown and not ignore:
        raise HostLocalError(f"ARGS: unknown args [{' '.join(go_quote(p) for p in unknown)}]")
    return ip


def go_quote(text: str) -> str:
    """Go's %q for plain text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ranges_of(ipam: dict, runtime: dict) -> list:
    """The range sets: ``runtimeConfig.ipRanges``, then the old-style
    single range (``ipam.subnet``...), then ``ipam.ranges``."""
    docs = [decode_range_set(d, "Net.runtimeConfig.ipRanges")
            for d in member(runtime, "ipRanges", list, "Net.runtimeConfig") or []]
    if member(ipam, "subnet", str, "IPAMConfig"):
        docs.append([decode_range(ipam, "IPAMConfig")])
    docs += [decode_range_set(d, "IPAMConfig.ranges") for d in member(ipam, "ranges", list, "IPAMConfig") or []]
    if not docs:
        raise HostLocalError("no IP ranges specified")
    sets = []
    for i, doc in enumerate(docs):
        try:
            sets.append(make_range_set(doc))
        except HostLocalError as e:
            raise HostLocalError(f"invalid range set {i}: {e.msg}") from None
    return sets


# Range sets already built, by the configuration text they come from: a
# network's configuration is the same in each of its requests, and building
# them (ipaddress objects, the reference's checks) is most of the cost of
# reading it.  Shared between requests: nothing changes a RangeSet once made.
_RANGES_CACHE: "OrderedDict[str, tuple]" = OrderedDict()
_RANGES_CACHE_SIZE = 64
_ranges_lock = threading.Lock()


def checked_ranges(ipam: dict, runtime: dict) -> list:
    """``ranges_of`` checked by ``check_overlaps``, from the cache when this
    ``ipam`` and ``runtimeConfig.ipRanges`` were seen before."""
    # In the document's own key order: member() lets the last of several
    # case-variants of a key win, so their order is part of the configuration.
    key = json.dumps([ipam, [[k, v] for k, v in runtime.items() if k.lower() == "ipranges"]])
    with _ranges_lock:
        cached = _RANGES_CACHE.get(key)
        if cached is not None:
            _RANGES_CACHE.move_to_end(key)
            return list(cached)
    sets = ranges_of(ipam, runtime)
    check_overlaps(sets)
    with _ranges_lock:
        _RANGES_CACHE[key] = tuple(sets)
        while len(_RANGES_CACHE) > _RANGES_CACHE_SIZE:
            _RANGES_CACHE.popitem(last=False)
    return sets


def check_overlaps(sets: list) -> None:
    for i, s1 in enumerate(sets):
        for j, s2 in enumerate(sets[i + 1:], i + 1):
            if s1.overlaps(s2):
                raise HostLocalError(f"range set {i} overlaps with {j}")


def routes_of(ipam: dict) -> list:
    """``routes`` as the result carries them (the reference's types.Route of
    CNI v1.0: ``dst`` with its host bits as written, ``gw`` if given; other
    fields dropped)."""
    routes = []
    for doc in member(ipam, "routes", list, "IPAMConfig") or []:
        dst = member(doc, "dst", str, "Route")
        if not dst:
            raise HostLocalError("a route needs a dst")
        address, prefix, _ = parse_cidr(dst)
        route = {"dst": f"{canonical(address)}/{prefix}"}
        gw = parse_ip(member(doc, "gw", str, "Route"))
        if gw is not None:
            route["gw"] = str(gw)
        routes.append(route)
    return routes
