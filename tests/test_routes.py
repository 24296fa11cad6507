"""Routes to any destination (``add_route``, pynetlink.routes), as the CNI
plugin adds them: checked against the kernel with ``ip -j`` in scratch
namespaces."""
from __future__ import annotations

import pytest

from conftest import sh


@pytest.fixture
def up_veth(ns, handle, veth):
    """va up with 192.0.2.1/24 and 2001:db8:5::1/64 (DAD off), vb up."""
    ns.run("sysctl", "-qw", "net.ipv6.conf.va.accept_dad=0")
    handle.set_link("vb", up=True)
    handle.set_link("va", up=True)
    handle.set_interface_ip("va", "192.0.2.1/24")
    handle.set_interface_ip("va", "2001:db8:5::1/64")
    return "va"


def route_to(ns, family: str, dst: str) -> dict:
    found = [r for r in ns.routes(family) if r["dst"] == dst]
    assert len(found) == 1, ns.routes(family)
    return found[0]


def test_add_route_via_a_gateway(ns, handle, up_veth):
    handle.add_route("198.51.100.0/24", "va", "192.0.2.254")
    r = route_to(ns, "-4", "198.51.100.0/24")
    assert (r["gateway"], r["dev"], r["protocol"], r["scope"]) == ("192.0.2.254", "va", "boot", "global")


def test_add_route_without_a_gateway_is_on_link(ns, handle, up_veth):
    handle.add_route("203.0.113.0/24", "va")
    r = route_to(ns, "-4", "203.0.113.0/24")
    assert "gateway" not in r and r["scope"] == "link" and r["dev"] == "va"


def test_add_route_ipv6_and_default(ns, handle, up_veth):
    handle.add_route("2001:db8:77::/48", "va", "2001:db8:5::fe")
    handle.add_route("0.0.0.0/0", "va", "192.0.2.254")
    assert route_to(ns, "-6", "2001:db8:77::/48")["gateway"] == "2001:db8:5::fe"
    assert route_to(ns, "-4", "default")["gateway"] == "192.0.2.254"


def test_add_route_twice_is_eexist(handle, up_veth):
    handle.add_route("198.51.100.0/24", "va", "192.0.2.254")
    with pytest.raises(FileExistsError):
        handle.add_route("198.51.100.0/24", "va", "192.0.2.254")


@pytest.mark.parametrize("dst, gateway, error", [
    ("198.51.100.1/24", None, ValueError),          # host bits: not a network
    ("198.51.100.0/24", "2001:db8::1", ValueError),  # families differ
    ("nonsense", None, ValueError),
    (42, None, TypeError),
])
def test_add_route_refuses_bad_input_before_sending(ns, handle, up_veth, dst, gateway, error):
    before = ns.routes("-4")
    with pytest.raises(error):
        handle.add_route(dst, "va", gateway)
    assert ns.routes("-4") == before


def test_add_route_is_undone_by_a_failed_transaction(ns, handle, up_veth):
    with pytest.raises(OSError, match="No such device"):
        with handle.batch("rollback") as b:
            b.add_route("198.51.100.0/24", "va", "192.0.2.254")
            b.set_mtu("nope0", 1400)
    assert not [r for r in ns.routes("-4") if r["dst"] == "198.51.100.0/24"]


# -- a transaction's undo deletes its own route, never another one to DST -----------

def routes_of(ns, family: str) -> list:
    return sorted((r["dst"], r.get("gateway"), r["protocol"], r.get("metric"))
                  for r in ns.routes(family))


@pytest.mark.parametrize("add", [
    lambda b: b.set_default_gateway("2001:db8:5::fe", "va"),
    lambda b: b.add_route("::/0", "va", "2001:db8:5::fe"),
    lambda b: b.add_route("2001:db8:5::/64", "va"),
], ids=["set_default_gateway", "add_route-default", "add_route-over-the-kernel-route"])
def test_rollback_of_an_ipv6_route_keeps_another_route_to_the_same_prefix(ns, handle, up_veth, add):
    """IPv6 deletes the lowest-metric route that matches: the undo names
    its own protocol and metric, so a route of another metric stays."""
    sh("ip", "-n", ns.name, "-6", "route", "add", "default", "via", "2001:db8:5::fe", "dev", "va",
       "metric", "100", "proto", "static")
    before = routes_of(ns, "-6")
    with pytest.raises(OSError):
        with handle.batch("rollback") as b:
            add(b)
            b.set_mtu("ghost0", 1400)
    assert [r.status for r in b.results] == ["rolled_back", "failed"]
    assert routes_of(ns, "-6") == before


def test_rollback_of_an_ipv4_route_keeps_another_route_to_the_same_prefix(ns, handle, up_veth):
    sh("ip", "-n", ns.name, "route", "add", "203.0.113.0/24", "dev", "va", "metric", "100",
       "proto", "static")
    before = routes_of(ns, "-4")
    with pytest.raises(OSError):
        with handle.batch("rollback") as b:
            b.add_route("203.0.113.0/24", "va")
            b.set_mtu("ghost0", 1400)
    assert routes_of(ns, "-4") == before
