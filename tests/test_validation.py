"""Bad input is refused with ValueError/TypeError before anything is sent.

The proof that nothing is sent: the calls run on a *closed* handle, which
raises EBADF for anything that reaches the socket layer; and a live
namespace is checked with ``ip -j`` to hold nothing new.
"""
from __future__ import annotations

import ipaddress
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pynetlink as pn
from pynetlink import _validate

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def closed():
    h = pn.Handle()
    h.close()
    return h


BAD_NAMES = [
    ("", ValueError), ("a" * 16, ValueError), ("é" * 8, ValueError),   # 16 bytes
    (".", ValueError), ("..", ValueError), ("a/b", ValueError), ("a:b", ValueError),
    ("eth%d", ValueError), ("a%", ValueError),                 # '%' names are templates
    ("a b", ValueError), ("a\tb", ValueError), ("a\nb", ValueError), ("a\0b", ValueError),
    ("à0", ValueError),                     # 'à' is C3 A0: the kernel's isspace(0xA0)
    ("\udca0", ValueError),                 # surrogate-escaped 0xA0
    ("\ud800", ValueError),                 # a lone surrogate: no bytes at all
    (None, TypeError), (b"eth0", TypeError), (7, TypeError), (["eth0"], TypeError),
]

NAME_CALLS = {
    "create_veth_pair": lambda h, n: h.create_veth_pair(n, "ok0"),
    "create_veth_pair peer": lambda h, n: h.create_veth_pair("ok0", n),
    "interface_up": lambda h, n: h.interface_up(n),
    "interface_down": lambda h, n: h.interface_down(n),
    "set_mtu": lambda h, n: h.set_mtu(n, 1500),
    "set_interface_master": lambda h, n: h.set_interface_master(n, "br0"),
    "set_interface_master master": lambda h, n: h.set_interface_master("ok0", n),
    "change_interface_name old": lambda h, n: h.change_interface_name(n, "ok0"),
    "change_interface_name new": lambda h, n: h.change_interface_name("ok0", n),
    "set_interface_in_namespace_pid": lambda h, n: h.set_interface_in_namespace_pid(n, 1),
    "set_interface_in_namespace_fd": lambda h, n: h.set_interface_in_namespace_fd(n, 0),
    "set_interface_ip": lambda h, n: h.set_interface_ip(n, "192.0.2.1/24"),
    "set_default_gateway": lambda h, n: h.set_default_gateway("192.0.2.1", n),
    "delete_link": lambda h, n: h.delete_link(n),
    "link_index": lambda h, n: h.link_index(n),
    "get_link": lambda h, n: h.get_link(n),
}


@pytest.mark.parametrize("call", NAME_CALLS.values(), ids=NAME_CALLS.keys())
@pytest.mark.parametrize("name,exc", BAD_NAMES, ids=[repr(n) for n, _ in BAD_NAMES])
def test_bad_interface_name_is_refused_before_sending(closed, call, name, exc):
    with pytest.raises(exc):
        call(closed, name)


BAD_VALUES = {
    "mtu zero": (lambda h: h.set_mtu("ok0", 0), ValueError),
    "mtu negative": (lambda h: h.set_mtu("ok0", -1500), ValueError),
    "mtu over int32": (lambda h: h.set_mtu("ok0", 2**31), ValueError),
    "mtu huge": (lambda h: h.set_mtu("ok0", 10**100), ValueError),
    "mtu str": (lambda h: h.set_mtu("ok0", "1500"), TypeError),
    "mtu float": (lambda h: h.set_mtu("ok0", 1500.0), TypeError),
    "mtu bool": (lambda h: h.set_mtu("ok0", True), TypeError),
    "pid zero": (lambda h: h.set_interface_in_namespace_pid("ok0", 0), ValueError),
    "pid negative": (lambda h: h.set_interface_in_namespace_pid("ok0", -1), ValueError),
    "pid over int32": (lambda h: h.set_interface_in_namespace_pid("ok0", 2**31), ValueError),
    "pid str": (lambda h: h.set_interface_in_namespace_pid("ok0", "1"), TypeError),
    "fd negative": (lambda h: h.set_interface_in_namespace_fd("ok0", -1), ValueError),
    "fd over int32": (lambda h: h.set_interface_in_namespace_fd("ok0", 2**31), ValueError),
    "fd object": (lambda h: h.set_interface_in_namespace_fd("ok0", object()), TypeError),
    "cidr without prefix": (lambda h: h.set_interface_ip("ok0", "192.0.2.1"), ValueError),
    "cidr bad octet": (lambda h: h.set_interface_ip("ok0", "192.0.2.300/24"), ValueError),
    "cidr bad prefix": (lambda h: h.set_interface_ip("ok0", "192.0.2.1/33"), ValueError),
    "cidr v6 bad prefix": (lambda h: h.set_interface_ip("ok0", "2001:db8::1/129"), ValueError),
    "cidr garbage": (lambda h: h.set_interface_ip("ok0", "not-an-ip/24"), ValueError),
    "cidr empty": (lambda h: h.set_interface_ip("ok0", ""), ValueError),
    "cidr int": (lambda h: h.set_interface_ip("ok0", 3221225985), TypeError),
    "cidr address object": (lambda h: h.set_interface_ip("ok0", ipaddress.ip_address("192.0.2.1")), TypeError),
    "cidr huge": (lambda h: h.set_interface_ip("ok0", "1" * 10_000_000 + "/24"), ValueError),
    "gateway with prefix": (lambda h: h.set_default_gateway("192.0.2.1/24", "ok0"), ValueError),
    "gateway garbage": (lambda h: h.set_default_gateway("gw", "ok0"), ValueError),
    "gateway none": (lambda h: h.set_default_gateway(None, "ok0"), TypeError),
    "gateway bytes": (lambda h: h.set_default_gateway(b"\xc0\x00\x02\x01", "ok0"), TypeError),
}


@pytest.mark.parametrize("call,exc", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_bad_value_is_refused_before_sending(closed, call, exc):
    with pytest.raises(exc):
        call(closed)


def test_valid_input_on_a_closed_handle_reaches_the_socket_layer(closed):
    """The control for the tests above: valid input does get past validation."""
    with pytest.raises(OSError) as info:
        closed.set_mtu("ok0", 1500)
    assert info.value.errno == 9   # EBADF: the closed socket, not validation


def test_rejected_calls_create_nothing(ns, handle):
    before = ns.ip("-d", "link", "show")
    for name, _ in BAD_NAMES:
        with pytest.raises((ValueError, TypeError)):
            handle.create_veth_pair(name, "ok0")
        with pytest.raises((ValueError, TypeError)):
            handle.create_veth_pair("ok0", name)
    assert ns.ip("-d", "link", "show") == before


def reference_dev_valid_name(raw: bytes) -> bool:
    """The kernel's dev_valid_name() (net/core/dev.c), written out, plus its
    rule that '%' makes a name a template (dev_alloc_name), never a name."""
    if not raw or len(raw) >= 16 or raw in (b".", b".."):
        return False
    return not any(c in b"/:%\0" or c in b" \t\n\v\f\r\xa0" for c in raw)


@settings(max_examples=settings.default.max_examples * 5 // 3, deadline=None)
@given(st.text(max_size=20))
def test_name_validation_matches_the_kernels_rule(name):
    try:
        raw = os.fsencode(name)
    except UnicodeEncodeError:                  # a surrogate outside surrogateescape's range
        raw = None
    if raw is not None and reference_dev_valid_name(raw):
        assert _validate.ifname(name) == raw
    else:
        with pytest.raises(ValueError):
            _validate.ifname(name)


legal_names = st.text(
    alphabet=st.characters(blacklist_characters="/:%\0 \t\n\v\f\r\xa0", blacklist_categories=("Cs",)),
    min_size=1, max_size=15,
).filter(lambda n: reference_dev_valid_name(n.encode()) and n not in ("ok0", "lo"))


# Each example removes what it made, so sharing the namespace is safe.
@settings(max_examples=settings.default.max_examples // 8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=legal_names)
def test_every_legal_name_is_created_exactly_as_given(ns, handle, name):
    handle.create_veth_pair(name, "ok0")
    try:
        assert name in ns.link_names()
        assert handle.get_link(name).name == name
    finally:
        handle.delete_link("ok0")


def test_a_name_that_is_not_utf8_is_addressed_as_os_names_are(ns, handle):
    name = os.fsdecode(b"v\xff0")                      # what get_link would return
    handle.create_veth_pair(name, "ok0")
    assert handle.get_link(name).name == name
    assert handle.link_index(name) == ns.link(name)["ifindex"]


@pytest.mark.parametrize("call", [
    lambda h: h.set_interface_ip("va", "fe80::1%nope/64"),
    lambda h: h.set_interface_ip("va", ipaddress.ip_interface("fe80::1%va/64")),
    lambda h: h.delete_address("va", "fe80::1%va/64"),
    lambda h: h.set_default_gateway("fe80::1%lo", "va"),
    lambda h: h.set_default_gateway(ipaddress.ip_address("fe80::1%lo"), "va"),
    lambda h: h.add_route("2001:db8::/64", "va", "fe80::1%va"),
], ids=["cidr", "interface", "delete", "gateway", "gateway-object", "route-gateway"])
def test_an_ipv6_scope_id_is_refused_not_dropped(closed, call):
    """The kernel's address and route requests have no place for a zone:
    "fe80::1%eth0" is refused, naming the scope id, before anything is sent
    (the closed handle would answer anything sent with EBADF)."""
    with pytest.raises(ValueError, match="scope id"):
        call(closed)
