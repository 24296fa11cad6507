"""Validation of caller input, before anything is sent to the kernel.

Wrong types raise ``TypeError``; values the kernel would refuse (or that
would not fit its fields) raise ``ValueError``.
"""
from __future__ import annotations

import functools
import ipaddress
import operator
import os
from typing import Any, SupportsIndex, Union, cast

IFNAMSIZ = 16
# The kernel's dev_valid_name(): '/', ':', and isspace() of its own ctype
# table, which also counts 0xA0 (Latin-1 no-break space) as space.  Plus '%':
# the kernel reads a name with '%' as a template ("eth%d": pick a free name)
# and refuses any other '%', so no device ever has one in its name.
_BAD_NAME_BYTES = frozenset(b"/:%\0 \t\n\v\f\r\xa0")
INT32_MAX = 2**31 - 1

IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def ifname(value: object, what: str = "interface name") -> bytes:
    """An interface name as the kernel accepts it, encoded to bytes.

    Encoded as the standard library encodes OS names (UTF-8 with
    ``surrogateescape``, like ``socket.if_nametoindex``), so a name that is
    not UTF-8 reads back from ``get_link`` as a str that addresses it again.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} cannot be encoded (lone surrogate)") from None
    if not raw:
        raise ValueError(f"{what} must not be empty")
    if len(raw) >= IFNAMSIZ:
        raise ValueError(f"{what} {value!r} is {len(raw)} bytes long; the kernel allows at most {IFNAMSIZ - 1}")
    if raw in (b".", b".."):
        raise ValueError(f"{what} must not be {value!r}")
    if not _BAD_NAME_BYTES.isdisjoint(raw):
        raise ValueError(f"{what} {value!r} contains '/', ':', '%', NUL or whitespace, which no device name can hold")
    return raw


def integer(value: object, what: str, low: int, high: int) -> int:
    """An int (not a bool) in [low, high]."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an int, not bool")
    try:
        number = operator.index(cast(SupportsIndex, value))
    except TypeError:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}") from None
    if not low <= number <= high:
        raise ValueError(f"{what} {number} is out of range [{low}, {high}]")
    return number


def mtu(value: object) -> int:
    return integer(value, "mtu", 1, INT32_MAX)


def pid(value: object) -> int:
    return integer(value, "pid", 1, INT32_MAX)


def fd(value: object) -> int:
    return integer(value, "fd", 0, INT32_MAX)


def _unscoped(address: IPAddress, what: str, value: object) -> None:
    """Refuse an IPv6 scope id ("fe80::1%eth0"): the kernel's requests have
    no place for it — the link is the interface the caller names."""
    scope = getattr(address, "scope_id", None)
    if scope:
        raise ValueError(f"{what} {str(value)!r} has a scope id (%{scope}), which pynetlink does "
                         "not use: give the address without it and name the link as the interface")


def cidr(value: object) -> IPInterface:
    """An address with its prefix: 'ADDR/PREFIX' or an ipaddress interface
    (no IPv6 scope id)."""
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface)):
        _unscoped(value, "address", value)
        return value
    if not isinstance(value, str):
        raise TypeError(f"address must be a CIDR str or an ipaddress interface, not {type(value).__name__}")
    if "/" not in value:
        raise ValueError(f"address {value!r} is not in CIDR notation (ADDRESS/PREFIX)")
    parsed = _parse_cidr(value)
    _unscoped(parsed, "address", value)
    return parsed


# ipaddress objects are immutable: parse each string once (bulk setups give
# the same gateway, and each address passes several layers).
@functools.lru_cache(maxsize=4096)
def _parse_cidr(value: str) -> IPInterface:
    try:
        return ipaddress.ip_interface(value)
    except ValueError as e:
        raise ValueError(f"address {value!r} does not parse: {e}") from None


@functools.lru_cache(maxsize=4096)
def _parse_ip(value: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError as e:
        raise ValueError(f"{what} {value!r} does not parse: {e}") from None


def ip(value: object, what: str = "gateway") -> IPAddress:
    """A single IP address: a str or an ipaddress address (no IPv6 scope id)."""
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        _unscoped(value, what, value)
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be an IP address str or an ipaddress address, not {type(value).__name__}")
    parsed = _parse_ip(value, what)
    _unscoped(parsed, what, value)
    return parsed


def path(value: object, what: str = "netns") -> str:
    """A filesystem path (str or PathLike) with no NUL byte."""
    try:
        text = os.fspath(cast(Any, value))
    except TypeError:
        raise TypeError(f"{what} must be a path, an fd or None, not {type(value).__name__}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text or "\0" in text:
        raise ValueError(f"{what} path {text!r} is empty or contains NUL")
    return text


def mac(value: object) -> bytes:
    """An Ethernet address 'aa:bb:cc:dd:ee:ff' (or '-' separated) as 6 bytes."""
    if not isinstance(value, str):
        raise TypeError(f"mac_address must be str, not {type(value).__name__}")
    parts = value.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise ValueError(f"mac_address {value!r} is not six hex bytes like 02:42:c0:00:02:02")
    return bytes(int(p, 16) for p in parts)


def txqueuelen(value: object) -> int:
    return integer(value, "txqueuelen", 0, 2**32 - 1)


def group(value: object) -> int:
    return integer(value, "group", 0, 2**32 - 1)
