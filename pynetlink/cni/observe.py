"""What CHECK reads of the container: its interface, the interface's
addresses, and the routes of its main table.

CHECK reads the container's addresses and routes with iproute2 (``ip -j``,
run inside the namespace): the core has no address or route dump yet.

The interface, three questions: ``link(netns_fd, ifname)``,
``addresses(netns_fd, ifname)`` and ``routes(netns_fd)``.
"""
from __future__ import annotations

import ipaddress
import json
import subprocess
from typing import NamedTuple, Optional

from .. import netns
from .result import IPAddress, IPNetwork
from .spec import E_IO, CNIError


class LinkFacts(NamedTuple):
    """What CHECK compares of the container's interface."""
    kind: str                       # "veth", ... ("" for a device without one)
    address: str                    # its MAC address
    peer_index: Optional[int]       # a veth's peer's ifindex (in the peer's namespace)


def link(netns_fd: int, ifname: str) -> Optional[LinkFacts]:
    """The interface ``ifname`` of the namespace ``netns_fd`` (None: there is none)."""
    found = _link_entry(netns_fd, ifname, ("-d", "link", "show"))
    if found is None:
        return None
    return LinkFacts(found.get("linkinfo", {}).get("info_kind", ""), found.get("address", ""),
                     found.get("link_index"))


def addresses(netns_fd: int, ifname: str) -> set:
    """The addresses of ``ifname`` in the namespace ``netns_fd``, as
    (address, prefix length) pairs (empty: no such interface)."""
    found = _link_entry(netns_fd, ifname, ("addr", "show")) or {}
    return {(ipaddress.ip_address(a["local"]), a["prefixlen"]) for a in found.get("addr_info", [])
            if a.get("local")}


def routes(netns_fd: int) -> list[tuple[Optional[IPNetwork], Optional[IPAddress]]]:
    """The routes of the namespace's main table, as (destination, gateway
    or None) pairs, both families."""
    routes4, routes6 = ip_json(netns_fd, ("-4", "route", "show", "table", "main"),
                               ("-6", "route", "show", "table", "main"))
    return [_route_key(r, 4) for r in routes4] + [_route_key(r, 6) for r in routes6]


def _link_entry(netns_fd: int, ifname: str, command: tuple) -> Optional[dict]:
    entries = [e for e in ip_json(netns_fd, command)[0] if e.get("ifname") == ifname]
    return entries[0] if entries else None


def _route_key(route: dict, family: int) -> tuple:
    """(destination network, gateway or None) of an ``ip -j route`` entry."""
    gw = ipaddress.ip_address(route["gateway"]) if route.get("gateway") else None
    dst = route.get("dst", "")
    if dst == "default":
        dst = "0.0.0.0/0" if family == 4 else "::/0"
    try:
        return ipaddress.ip_network(dst, strict=False), gw
    except ValueError:
        return None, gw


def ip_json(netns_fd: int, *commands: tuple) -> list:
    """``ip -j COMMAND`` for each command, run inside the namespace (a
    child inherits the calling thread's namespace); the decoded outputs."""
    out = []
    try:
        with netns.entered(netns_fd):
            for args in commands:
                proc = subprocess.run(["ip", "-j", *args], capture_output=True, text=True,
                                      timeout=30, check=True)
                out.append(json.loads(proc.stdout, strict=False) if proc.stdout.strip() else [])
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise CNIError(E_IO, "CHECK reads addresses and routes with iproute2 (ip), which failed",
                       str(e)) from None
    return out
