"""The CNI result model (the reference's ``pkg/types/100``): interfaces,
IPs, routes and DNS, decoded from any supported version and rendered in the
configuration's (0.4.0 adds each IP's ``version``)."""
from __future__ import annotations

import ipaddress
from typing import Any, Iterable, Optional, Union

from .spec import E_DECODE, CNIError

IPInterface = Union[ipaddress.IPv4Interface, ipaddress.IPv6Interface]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

ROUTE_EXTRAS = ("mtu", "advmss", "priority", "table", "scope")   # spec 1.1.0 route fields


class IPConfig:
    """One entry of a result's ``ips``."""

    def __init__(self, address: IPInterface, gateway: Optional[IPAddress] = None,
                 interface: Optional[int] = None):
        self.address, self.gateway, self.interface = address, gateway, interface


class CNIRoute:
    """One entry of a result's ``routes``; ``extra``: the spec 1.1.0 fields."""

    def __init__(self, dst: IPNetwork, gw: Optional[IPAddress] = None, extra: Optional[dict] = None):
        self.dst, self.gw, self.extra = dst, gw, extra or {}


class CNIResult:
    """A CNI result, in any supported version, decoded."""

    def __init__(self, interfaces: Iterable[dict] = (), ips: Iterable[IPConfig] = (),
                 routes: Iterable[CNIRoute] = (), dns: Optional[dict] = None):
        self.interfaces, self.ips, self.routes = list(interfaces), list(ips), list(routes)
        self.dns = dns or {}


def parse_result(doc: Any, source: str) -> CNIResult:
    """A result (or an IPAM plugin's abbreviated one) from JSON; error 6 if
    it is not one."""
    try:
        return _parse_result(doc)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CNIError(E_DECODE, f"{source} is not a valid CNI result", f"{type(e).__name__}: {e}") from None


def interface(doc: Any) -> dict:
    """One entry of a result's ``interfaces``: an object with a string ``name``."""
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        raise TypeError("an interface is not an object with a string name")
    return dict(doc)


def _parse_result(doc: Any) -> CNIResult:
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    interfaces = [interface(i) for i in doc.get("interfaces") or []]
    ips = [IPConfig(ipaddress.ip_interface(i["address"]),
                    ipaddress.ip_address(i["gateway"]) if i.get("gateway") else None,
                    i.get("interface"))
           for i in doc.get("ips") or []]
    routes = [CNIRoute(ipaddress.ip_network(r["dst"], strict=False),
                       ipaddress.ip_address(r["gw"]) if r.get("gw") else None,
                       {k: r[k] for k in ROUTE_EXTRAS if r.get(k) is not None})
              for r in doc.get("routes") or []]
    dns = doc.get("dns") or {}
    if not isinstance(dns, dict):
        raise TypeError("dns is not an object")
    return CNIResult(interfaces, ips, routes, dns)


def render_result(result: CNIResult, version: str) -> dict:
    """The result in the format of ``version`` (0.4.0 adds each IP's ``version``)."""
    doc: dict[str, Any] = {"cniVersion": version}
    if result.interfaces:
        doc["interfaces"] = [{k: v for k, v in i.items() if v not in ("", None)}
                             for i in result.interfaces]
    if result.ips:
        doc["ips"] = [_render_ip(ip, version) for ip in result.ips]
    if result.routes:
        doc["routes"] = [_render_route(r) for r in result.routes]
    doc["dns"] = result.dns
    return doc


def _render_ip(ip: IPConfig, version: str) -> dict:
    out: dict[str, Any] = {}
    if version == "0.4.0":
        out["version"] = str(ip.address.version)
    if ip.interface is not None:
        out["interface"] = ip.interface
    out["address"] = str(ip.address)
    if ip.gateway is not None:
        out["gateway"] = str(ip.gateway)
    return out


def _render_route(route: CNIRoute) -> dict:
    out: dict[str, Any] = {"dst": str(route.dst)}
    if route.gw is not None:
        out["gw"] = str(route.gw)
    out.update(route.extra)
    return out


def pass_on(conf: dict) -> dict:
    """A chained plugin's answer when it adds nothing: ``prevResult``
    unchanged, in the configuration's version."""
    return render_result(parse_result(conf["prevResult"], "prevResult"), conf["cniVersion"])
