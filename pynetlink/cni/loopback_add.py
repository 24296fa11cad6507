"""Loopback mode (``"loopback": true``), ADD: ``lo`` up in the container,
and the result the reference ``loopback`` plugin gives."""
from __future__ import annotations

import ipaddress
import os

from .. import netns
from .kernel import open_container
from .result import CNIResult, IPConfig, pass_on, render_result
from .spec import Env
from .sysctl import sysctl


def add(env: Env, raw: bytes, conf: dict) -> dict:
    """ADD: ``lo`` up in the container; the result lists lo and the
    loopback addresses the kernel gives it (127.0.0.1/8, and ::1/128 where
    IPv6 is on) — or, in a chain, passes prevResult on unchanged."""
    netns_fd, cont = open_container(env.netns)
    try:
        with cont:
            cont.interface_up("lo")
        ipv6 = loopback_has_ipv6(netns_fd)
    finally:
        os.close(netns_fd)
    if conf.get("prevResult") is not None:
        return pass_on(conf)
    ips = [IPConfig(ipaddress.ip_interface("127.0.0.1/8"), interface=0)]
    if ipv6:
        ips.append(IPConfig(ipaddress.ip_interface("::1/128"), interface=0))
    lo = {"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": env.netns}
    return render_result(CNIResult([lo], ips), conf["cniVersion"])


def loopback_has_ipv6(netns_fd: int) -> bool:
    with netns.entered(netns_fd):
        return sysctl("net/ipv6/conf/lo/disable_ipv6", quiet=True) == "0"
