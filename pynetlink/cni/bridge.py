"""Bridge mode, ADD (the reference's ``plugins/main/bridge`` cmdAdd), in the
host's namespace (where the plugin runs) and the container's (``CNI_NETNS``):

- the bridge (``bridge``, default ``cni0``) is created if missing, with
  ``mtu``, ``promiscMode``, IPv6 router advertisements ignored, and up;
- a veth pair: ``CNI_IFNAME`` is born inside the container with ``mtu``,
  its host end (``veth`` + 8 hex digits) on the bridge with ``mtu``, up,
  ``hairpinMode`` — one RTM_NEWLINK, no namespace move;
- IPAM by delegation: ``<CNI_PATH>/<ipam.type>`` runs with the same stdin
  and environment (while the links are being made); its addresses and
  routes go on ``CNI_IFNAME`` (up; DAD off, ``arp_notify`` on, as the
  reference does), ``isGateway`` puts each gateway on the bridge (forwarding
  on), ``isDefaultGateway`` adds a default route per family;
- ``ipMasq``: the NAT rules masquerading each address's traffic leaving its
  subnet, as the reference makes them (ipmasq.py);
- if any step fails, what this ADD made is removed (the veth, the IPAM
  allocation by the IPAM plugin's DEL, the ipMasq rules) before the error
  is reported.  The bridge and the gateway addresses on it are shared by
  every container and stay, as with the reference plugin (which never
  deletes them).
"""
from __future__ import annotations

import errno
import ipaddress
import os
from typing import Callable, Optional

from .. import Handle, _names, netns
from ..links import Link
from .._veth import kernel_has_ipv6
from .delegate import release, start_ipam
from .kernel import delete_quietly, fail_on, host_handle, open_container
from .netconf import BridgeConf
from .result import CNIResult, CNIRoute, IPAddress, parse_result, render_result
from .spec import (E_DECODE, E_INVALID_CONFIG, E_KERNEL, E_TRY_AGAIN, E_UNSUPPORTED_FIELD, PLUGIN,
                   CNIError, Env)
from .sysctl import sysctl, sysctl_on

HOST_PREFIX = "veth"            # host ends: veth + 8 hex digits, as the reference names them
VETH_TXQLEN = 0                 # both veth ends, as the reference plugin leaves them


def add(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> dict:
    """ADD: bridge, veth, IPAM, addresses and routes; the result.  Anything
    made is removed again if a later step fails."""
    netns_fd, cont = open_container(env.netns)
    try:
        with cont, host_handle() as host:
            undo: list[Callable[[], None]] = []
            try:
                result = build_network(host, cont, netns_fd, env, raw, bc, undo)
            except BaseException:
                for step in reversed(undo):
                    step()
                raise
    finally:
        os.close(netns_fd)
    return render_result(result, conf["cniVersion"])


def build_network(host: Handle, cont: Handle, netns_fd: int, env: Env, raw: bytes, bc: BridgeConf,
                  undo: list) -> CNIResult:
    """The steps of ADD; each thing made puts its removal on ``undo``.  The
    IPAM plugin runs while the links are made."""
    ipam = start_ipam(bc.ipam_type, env, raw, "ADD")
    if ipam:
        undo.append(lambda: release(ipam))
    host_veth = create_port(host, cont, bc, env.ifname, netns_fd)
    undo.append(lambda: delete_quietly(host, host_veth))
    result = CNIResult()
    if ipam:
        result = parse_result(ipam.wait(), f"the result of {bc.ipam_type}")
        apply_ipam(host, cont, netns_fd, bc, env.ifname, result)
        if bc.ip_masq:
            from .ipmasq import add_rules   # only networks that use it load it (exec mode's start)
            add_rules(env, bc.network, bc.ip_masq_backend, [ip.address for ip in result.ips], undo)
    else:
        cont.set_link(env.ifname, mac_address=bc.mac or None, txqueuelen=VETH_TXQLEN, up=True,
                      addr_gen_mode=container_mode(bc, ipv6=False))
    result.interfaces = interfaces(host, cont, bc.bridge, host_veth, env)
    if bc.dns:
        result.dns = bc.dns
    return result


def create_port(host: Handle, cont: Handle, bc: BridgeConf, ifname: str, netns_fd: int) -> str:
    """The bridge (made if missing: MTU, promiscuous mode, up) and a veth
    pair whose end ``ifname`` is born inside the container and whose host
    end is on the bridge and up, in one pipelined exchange.  With
    ``isGateway`` the bridge's MAC address is read first and, once the
    port has joined, pinned to that value (in the veth's exchange), as the
    reference pins it: the address the bridge had before this port joined,
    so that it stops following its ports as they come and go.  Returns the
    host end's name."""
    own_mac = ensure_bridge(host, bc) if bc.is_gateway else None
    for _ in range(_names.NAME_ATTEMPTS):
        name = _names.random_name(HOST_PREFIX, 8)
        b = host.batch()
        if own_mac is None:
            queue_bridge(b, bc)
        b.create_veth_pair(name, ifname, peer_netns=netns_fd, master=bc.bridge, up=True,
                           mtu=bc.mtu or None, peer_mtu=bc.mtu or None, txqueuelen=VETH_TXQLEN,
                           addr_gen_mode=host_mode(bc))
        if own_mac is not None:
            b.set_link(bc.bridge, mac_address=own_mac)
        results = b.run()
        at = len(results) - 1 if own_mac is None else 0     # the veth's result
        veth, bridge = results[at], results[:at] + results[at + 1:]
        excuse = exists_ok(own_mac is None)
        if veth.ok and not all(r.ok or excuse(i, r) for i, r in enumerate(bridge)):
            delete_quietly(host, name)                  # the bridge failed: no veth stays
        fail_on(bridge, excuse)
        if own_mac is None:
            sysctl(f"net/ipv6/conf/{bc.bridge}/accept_ra", "0", quiet=True)   # we own its routes
        if veth.errno == errno.EEXIST and not cont.link_exists(ifname):
            continue                                    # the random host name was taken
        if veth.errno == errno.EEXIST:
            raise CNIError(E_KERNEL, f"the container already has an interface named {ifname}")
        fail_on([veth])
        if bc.hairpin:
            try:
                host.set_hairpin(name, True)
            except OSError:
                delete_quietly(host, name)
                raise
        return name
    raise CNIError(E_TRY_AGAIN,
                   f"no free host interface name after {_names.NAME_ATTEMPTS} attempts")


def host_mode(bc: BridgeConf) -> Optional[str]:
    """The host end's IPv6 link-local mode: "none" (a bridge port needs no
    address: no DAD, router solicitation or MLD report from it, nothing for
    the bridge to flood into every container) unless ``hostIPv6LinkLocal``."""
    return None if bc.host_ipv6_link_local or not kernel_has_ipv6() else "none"


def container_mode(bc: BridgeConf, ipv6: bool) -> Optional[str]:
    """The container end's: the kernel's default, as the reference leaves
    it; with ``"ipv6LinkLocal": false`` "none" when no IPv6 address comes
    (the container is silent on IPv6, as Docker makes it)."""
    return None if bc.ipv6_link_local or ipv6 or not kernel_has_ipv6() else "none"


def queue_bridge(b, bc: BridgeConf) -> None:
    """On batch ``b``: the bridge made (MTU; EEXIST if it is there, see
    ``exists_ok``), then up, promiscuous as configured."""
    b.create_bridge(bc.bridge, mtu=bc.mtu or None)
    b.set_link(bc.bridge, up=True, promisc=True if bc.promisc else None)


def exists_ok(created_first: bool) -> Callable:
    """``fail_on``'s excuse for the bridge's results: EEXIST of the first,
    when it is ``queue_bridge``'s creation."""
    return lambda i, r: created_first and i == 0 and r.errno == errno.EEXIST


def ensure_bridge(host: Handle, bc: BridgeConf) -> str:
    """The bridge made if missing (MTU, promiscuous mode, up; IPv6 router
    advertisements ignored); its MAC address now.  A bridge already there
    as configured (up; promiscuous if asked) is only read: one exchange,
    and nothing that takes the kernel's RTNL lock."""
    try:
        link: Optional[Link] = host.get_link(bc.bridge)
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
        link = None
    if link is None or not bridge_ready(link, bc):
        b = host.batch()
        queue_bridge(b, bc)
        fail_on(b.run(), exists_ok(True))
        link = host.get_link(bc.bridge)
    sysctl(f"net/ipv6/conf/{bc.bridge}/accept_ra", "0", quiet=True)      # we own its routes
    return link.address


def bridge_ready(link: Link, bc: BridgeConf) -> bool:
    """``link`` is the bridge as ``queue_bridge`` leaves it: a bridge, up,
    and promiscuous if ``promiscMode`` (its MTU is set at creation only)."""
    return link.kind == "bridge" and link.up and (link.promisc or not bc.promisc)


def apply_ipam(host: Handle, cont: Handle, netns_fd: int, bc: BridgeConf, ifname: str,
               result: CNIResult) -> None:
    """The IPAM result on the container end (and the gateways on the bridge)."""
    if not result.ips:
        raise CNIError(E_DECODE, f"the result of {bc.ipam_type} has no IP address")
    extras = sorted({k for r in result.routes for k in r.extra})
    if extras:
        raise CNIError(E_UNSUPPORTED_FIELD, f"route fields {', '.join(extras)} from {bc.ipam_type} "
                                            f"are not supported by {PLUGIN}")
    gateways = calc_gateways(result, bc)
    configure_container(cont, netns_fd, ifname, result, bc)
    if bc.is_gateway:
        configure_gateways(host, bc.bridge, gateways)


def calc_gateways(result: CNIResult, bc: BridgeConf) -> list:
    """What the reference's calcGateways does: every IP is the container
    interface's (index 2); with ``isGateway`` a missing gateway is the
    subnet's first address and each gateway (with the IP's prefix) goes on
    the bridge; with ``isDefaultGateway`` a default route via it is added
    per family unless one with a gateway is there.  Returns the bridge's
    addresses."""
    gateways, have_default = [], set()
    for ipc in result.ips:
        ipc.interface = 2
        family = ipc.address.version
        if ipc.gateway is None and bc.is_gateway:
            ipc.gateway = ipc.address.network.network_address + 1
        if bc.is_default_gateway and family not in have_default:
            default = ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")
            if not any(r.gw is not None and r.dst == default for r in result.routes):
                result.routes.append(CNIRoute(default, ipc.gateway))
            have_default.add(family)
        if bc.is_gateway:
            gateways.append(ipaddress.ip_interface(f"{ipc.gateway}/{ipc.address.network.prefixlen}"))
    return gateways


def configure_container(cont: Handle, netns_fd: int, ifname: str, result: CNIResult,
                        bc: BridgeConf) -> None:
    """As the reference's ConfigureIface: the link up (with the configured
    MAC address and IPv6 link-local mode), its addresses, then the routes
    — a route without a gateway goes via the first gateway of its family; a
    route already there is skipped.  One pipelined exchange."""
    ipv6 = any(ip.address.version == 6 for ip in result.ips)
    container_sysctls(netns_fd, ifname, ipv6)
    first_gw: dict[int, IPAddress] = {}
    for ipc in result.ips:
        if ipc.gateway is not None:
            first_gw.setdefault(ipc.gateway.version, ipc.gateway)
    b = cont.batch()
    b.set_link(ifname, mac_address=bc.mac or None, txqueuelen=VETH_TXQLEN, up=True,
               addr_gen_mode=container_mode(bc, ipv6))
    for ipc in result.ips:
        b.set_interface_ip(ifname, ipc.address)
    routes_from = len(b)
    for r in result.routes:
        b.add_route(r.dst, ifname, r.gw or first_gw.get(r.dst.version))
    fail_on(b.run(), lambda i, r: i >= routes_from and r.errno == errno.EEXIST)


def container_sysctls(netns_fd: int, ifname: str, ipv6: bool) -> None:
    """Inside the container, as the reference: no DAD on ``ifname`` (its
    address is ours), gratuitous ARP on changes, and IPv6 enabled on lo and
    ``ifname`` when an IPv6 address is coming."""
    with netns.entered(netns_fd):
        sysctl(f"net/ipv6/conf/{ifname}/accept_dad", "0", quiet=True)
        sysctl(f"net/ipv4/conf/{ifname}/arp_notify", "1", quiet=True)
        if ipv6:
            for dev in ("lo", ifname):
                if sysctl(f"net/ipv6/conf/{dev}/disable_ipv6", quiet=True) not in (None, "0"):
                    sysctl(f"net/ipv6/conf/{dev}/disable_ipv6", "0")


def configure_gateways(host: Handle, bridge: str, gateways: list) -> None:
    """The gateways on the bridge, as the reference's ensureAddr: one the
    bridge has already (address and prefix) is fine; one it has not is
    refused (error 7, the reference's words) when the bridge has another
    IPv4 address, or an IPv6 address whose subnet overlaps — two networks
    on one bridge would be one layer-2 domain.  Forwarding on for each
    family with a gateway."""
    have = [a.interface for a in host.list_addresses(bridge)]
    missing = [gw for gw in gateways if gw not in have]
    for gw in missing:
        clash = next((a for a in have if a.version == gw.version and
                      (gw.version == 4 or a.ip in gw.network or gw.ip in a.network)), None)
        if clash is not None:
            raise CNIError(E_INVALID_CONFIG, f'failed to set bridge addr: "{bridge}" already has an '
                                             f'IP address different from {gw}',
                           f"{bridge} has {clash}: another network uses this bridge")
    b = host.batch()
    for gw in missing:
        b.set_interface_ip(bridge, gw)
    fail_on(b.run(), lambda i, r: r.errno == errno.EEXIST)     # a concurrent ADD's
    families = {gw.version for gw in gateways}
    if 4 in families:
        sysctl_on("net/ipv4/ip_forward")
    if 6 in families:
        sysctl_on("net/ipv6/conf/all/forwarding")


def interfaces(host: Handle, cont: Handle, bridge: str, host_veth: str, env: Env) -> list:
    """The result's interfaces: bridge, host end, container end (in that
    order: IPs name the container end as index 2), MACs as they are now."""
    br, veth = host.get_links([bridge, host_veth])
    return [{"name": bridge, "mac": br.address},
            {"name": host_veth, "mac": veth.address},
            {"name": env.ifname, "mac": cont.get_link(env.ifname).address, "sandbox": env.netns}]
