"""Bridge mode, CHECK (the reference's cmdCheck): the IPAM plugin's CHECK,
then the kernel against ``prevResult``; every difference is reported in
one error (102)."""
from __future__ import annotations

import errno
import ipaddress
import os
from typing import Optional

from .. import Handle, Link
from .delegate import start_ipam
from .kernel import host_handle, open_container
from .netconf import BridgeConf
from .result import CNIResult, parse_result
from .spec import E_CHECK, E_DECODE, E_INVALID_CONFIG, CNIError, Env


def check(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> None:
    """CHECK: the IPAM plugin's CHECK, then the kernel against prevResult —
    bridge (MAC, promiscuous mode), host end (on the bridge, peer of the
    container end, MAC), container end (a veth, MAC), every address and
    route, with ``ipMasq`` the NAT rules (ipmasq.py).  All differences are
    reported in one error (102)."""
    prev = conf.get("prevResult")
    if prev is None:
        raise CNIError(E_INVALID_CONFIG, "CHECK needs prevResult")
    result = parse_result(prev, "prevResult")
    netns_fd, cont = open_container(env.netns)
    ipam = start_ipam(bc.ipam_type, env, raw, "CHECK")
    try:
        with cont, host_handle() as host:
            problems = check_links(host, cont, bc, env, result)
    finally:
        os.close(netns_fd)
    if bc.ip_masq:
        from .ipmasq import masq_for        # only networks that use it load it (exec mode's start)
        try:
            problems += masq_for(env, bc.network).check([ip.address for ip in result.ips], bc.ip_masq_backend)
        except BaseException:
            if ipam:
                ipam.finish()               # reaped; the rules' error is the one reported
            raise
    if ipam:
        ipam.wait()
    if problems:
        raise CNIError(E_CHECK, f"CHECK: {problems[0]}", "; ".join(problems))


def check_links(host: Handle, cont: Handle, bc: BridgeConf, env: Env, result: CNIResult) -> list:
    """The differences between the kernel and ``result``, as sentences;
    ``cont`` is a Handle in the container's namespace."""
    problems: list[str] = []
    bridge = expect_interface(result, bc.bridge, None, problems)
    container = expect_interface(result, env.ifname, env.netns, problems)
    link = container_link(cont, env.ifname)
    br = host_link(host, bc.bridge, problems)
    if br is not None and bridge is not None:
        compare_mac(bridge, br.address, problems)
        if br.promisc != bc.promisc:
            problems.append(f"bridge {bc.bridge} promiscuous mode is {br.promisc}, configured {bc.promisc}")
    if link is None:
        problems.append(f"interface {env.ifname} not found in {env.netns}")
    else:
        if link.kind != "veth":
            problems.append(f"interface {env.ifname} is a {link.kind or 'device'} link, not a veth")
        if container is not None:
            compare_mac(container, link.address, problems)
        if br is not None:
            check_host_end(host, result, br, link, env.ifname, {bc.bridge, env.ifname}, problems)
    problems += missing_addresses(cont, env.ifname if link is not None else None, result)
    problems += missing_routes(cont, result)
    return problems


def container_link(cont: Handle, ifname: str) -> Optional[Link]:
    """The container end as the kernel has it (None: there is none)."""
    try:
        return cont.get_link(ifname)
    except OSError as e:
        if e.errno == errno.ENODEV:
            return None
        raise


def expect_interface(result: CNIResult, name: str, sandbox: Optional[str], problems: list) -> Optional[dict]:
    for iface in result.interfaces:
        if iface.get("name") == name and (sandbox is None or iface.get("sandbox") == sandbox):
            return iface
    where = f" in sandbox {sandbox}" if sandbox else ""
    problems.append(f"prevResult lists no interface {name}{where}")
    return None


def host_link(host: Handle, name: str, problems: list) -> Optional[Link]:
    try:
        return host.get_link(name)
    except OSError as e:
        problems.append(f"{name} not found on the host ({e.strerror})")
        return None


def compare_mac(expected: dict, actual: str, problems: list) -> None:
    mac = expected.get("mac")
    if mac and mac.lower() != actual.lower():
        problems.append(f"interface {expected.get('name')} has MAC {actual}, prevResult says {mac}")


def check_host_end(host: Handle, result: CNIResult, br: Link, link: Link, ifname: str,
                   skip: set, problems: list) -> None:
    """Some host interface of prevResult is the container end's peer and on the bridge."""
    for iface in result.interfaces:
        if iface["name"] in skip or iface.get("sandbox"):
            continue
        try:
            peer = host.get_link(iface["name"])
        except ValueError as e:             # no Linux name: prevResult is not this plugin's
            raise CNIError(E_DECODE, f"prevResult lists a host interface {iface['name']!r} that is "
                                     f"not an interface name", str(e)) from None
        except OSError:
            continue
        if peer.index == link.link_index and peer.master == br.index:
            compare_mac(iface, peer.address, problems)
            return
    problems.append(f"no host veth of prevResult is the peer of {ifname} on bridge {br.name}")


def missing_addresses(cont: Handle, ifname: Optional[str], result: CNIResult) -> list:
    """The addresses of prevResult that the container end (None: missing) lacks."""
    have = {(a.interface.ip, a.prefixlen) for a in cont.list_addresses(ifname)} if ifname else set()
    return [f"address {ip.address} not found on {ifname}" for ip in result.ips
            if (ip.address.ip, ip.address.network.prefixlen) not in have]


def missing_routes(cont: Handle, result: CNIResult) -> list:
    """The routes of prevResult that the container's main table lacks."""
    have = [(r.network, ipaddress.ip_address(r.gateway) if r.gateway else None)
            for r in cont.list_routes()]
    return [f"route to {r.dst}{f' via {r.gw}' if r.gw else ''} not found" for r in result.routes
            if not any(dst == r.dst and (r.gw is None or gw == r.gw) for dst, gw in have)]
