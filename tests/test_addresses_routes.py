"""set_interface_ip and set_default_gateway against the real kernel."""
from __future__ import annotations

import errno
import ipaddress

import pytest

from conftest import sh


@pytest.fixture
def up_veth(ns, veth):
    """va <-> vb, both up, so IPv6 addresses and routes behave as in use."""
    sh("ip", "-n", ns.name, "link", "set", "va", "up")
    sh("ip", "-n", ns.name, "link", "set", "vb", "up")
    return veth


def address(ns, name, family):
    [info] = [a for a in ns.addresses(name) if a["family"] == family]
    return info


# -- set_interface_ip ----------------------------------------------------------

def test_set_interface_ip_adds_ipv4_with_broadcast(ns, handle, veth):
    handle.set_interface_ip("va", "192.0.2.10/24")
    a = address(ns, "va", "inet")
    assert (a["local"], a["prefixlen"], a["broadcast"]) == ("192.0.2.10", 24, "192.0.2.255")
    assert a["scope"] == "global"


def test_set_interface_ip_ipv4_slash31_has_no_broadcast(ns, handle, veth):
    handle.set_interface_ip("va", "198.51.100.0/31")
    a = address(ns, "va", "inet")
    assert (a["local"], a["prefixlen"]) == ("198.51.100.0", 31)
    assert "broadcast" not in a


def test_set_interface_ip_adds_ipv6(ns, handle, up_veth):
    handle.set_interface_ip("va", "2001:db8:1::10/64")
    globals_ = [a for a in ns.addresses("va") if a["family"] == "inet6" and a["scope"] == "global"]
    assert [(a["local"], a["prefixlen"]) for a in globals_] == [("2001:db8:1::10", 64)]


def test_set_interface_ip_accepts_ipaddress_objects(ns, handle, veth):
    handle.set_interface_ip("va", ipaddress.ip_interface("203.0.113.7/25"))
    a = address(ns, "va", "inet")
    assert (a["local"], a["prefixlen"], a["broadcast"]) == ("203.0.113.7", 25, "203.0.113.127")


def test_set_interface_ip_keeps_link_down(ns, handle, veth):
    handle.set_interface_ip("va", "192.0.2.10/24")
    assert "UP" not in ns.link("va")["flags"]


def test_set_interface_ip_twice_raises_file_exists(ns, handle, veth):
    handle.set_interface_ip("va", "192.0.2.10/24")
    with pytest.raises(FileExistsError) as info:
        handle.set_interface_ip("va", "192.0.2.10/24")
    assert "set_interface_ip('va', '192.0.2.10/24')" in str(info.value)
    assert len(ns.addresses("va")) == 1


def test_set_interface_ip_adds_second_address(ns, handle, veth):
    handle.set_interface_ip("va", "192.0.2.10/24")
    handle.set_interface_ip("va", "198.51.100.10/24")
    assert {a["local"] for a in ns.addresses("va")} == {"192.0.2.10", "198.51.100.10"}


# -- set_default_gateway -------------------------------------------------------

def test_set_default_gateway_adds_ipv4_default_route(ns, handle, up_veth):
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.10/24", "dev", "va")
    handle.set_default_gateway("192.0.2.1", "va")
    [route] = [r for r in ns.routes("-4") if r["dst"] == "default"]
    assert (route["gateway"], route["dev"]) == ("192.0.2.1", "va")
    assert (route["type"], route["protocol"], route["scope"]) == ("unicast", "boot", "global")


def test_set_default_gateway_adds_ipv6_default_route(ns, handle, up_veth):
    sh("ip", "-n", ns.name, "addr", "add", "2001:db8:1::10/64", "dev", "va", "nodad")
    handle.set_default_gateway("2001:db8:1::1", "va")
    [route] = [r for r in ns.routes("-6") if r["dst"] == "default"]
    assert (route["gateway"], route["dev"]) == ("2001:db8:1::1", "va")


def test_set_default_gateway_accepts_ipaddress_object(ns, handle, up_veth):
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.10/24", "dev", "va")
    handle.set_default_gateway(ipaddress.ip_address("192.0.2.1"), "va")
    assert [r["gateway"] for r in ns.routes("-4") if r["dst"] == "default"] == ["192.0.2.1"]


def test_set_default_gateway_twice_raises_file_exists(ns, handle, up_veth):
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.10/24", "dev", "va")
    handle.set_default_gateway("192.0.2.1", "va")
    with pytest.raises(FileExistsError):
        handle.set_default_gateway("192.0.2.2", "va")
    assert [r["gateway"] for r in ns.routes("-4") if r["dst"] == "default"] == ["192.0.2.1"]


def test_set_default_gateway_unreachable_raises_with_kernel_text(ns, handle, up_veth):
    with pytest.raises(OSError) as info:
        handle.set_default_gateway("198.51.100.1", "va")
    assert info.value.errno == errno.ENETUNREACH
    assert info.value.ext_ack            # e.g. "Nexthop has invalid gateway"
    assert all(r["dst"] != "default" for r in ns.routes("-4"))


def test_set_default_gateway_ipv4_route_on_other_link_stays_off(ns, handle, up_veth):
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.10/24", "dev", "va")
    handle.set_default_gateway("192.0.2.1", "va")
    assert all(r.get("dev") != "vb" for r in ns.routes("-4"))


def test_ipv6_address_then_gateway_both_through_pynetlink(ns, handle, up_veth):
    handle.set_interface_ip("va", "2001:db8:1::10/64")
    handle.set_default_gateway("2001:db8:1::1", "va")
    assert [r["gateway"] for r in ns.routes("-6") if r["dst"] == "default"] == ["2001:db8:1::1"]
