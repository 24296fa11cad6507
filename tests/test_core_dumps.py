"""The C core's dumps of addresses and routes against a real kernel.

In a scratch namespace with a veth pair, IPv4 and IPv6 addresses and
routes (a default route, a static route, one with a metric, one in table
1000) are set up with iproute2; ``Socket.dump`` must list what ``ip -j -d
addr show`` and ``ip -j -d route show table all`` list, field for field
(the fields both have).  Routes added with NLM_F_REPLACE replace, and
RTM_DELROUTE with the exact spec deletes that route only.
"""
from __future__ import annotations

import errno
import os
import socket
import subprocess

import pytest

from conftest import in_thread, sh
from pynetlink import _core
from pynetlink._core import Request, Socket

SCOPES = {_core.RT_SCOPE_UNIVERSE: "global", _core.RT_SCOPE_SITE: "site",
          _core.RT_SCOPE_LINK: "link", _core.RT_SCOPE_HOST: "host",
          _core.RT_SCOPE_NOWHERE: "nowhere"}
TYPES = {_core.RTN_UNICAST: "unicast", _core.RTN_LOCAL: "local", _core.RTN_BROADCAST: "broadcast",
         _core.RTN_ANYCAST: "anycast", _core.RTN_MULTICAST: "multicast",
         _core.RTN_BLACKHOLE: "blackhole", _core.RTN_UNREACHABLE: "unreachable",
         _core.RTN_PROHIBIT: "prohibit", _core.RTN_THROW: "throw"}
PROTOCOLS = {_core.RTPROT_KERNEL: "kernel", _core.RTPROT_BOOT: "boot",
             _core.RTPROT_STATIC: "static", _core.RTPROT_REDIRECT: "redirect",
             _core.RTPROT_RA: "ra", _core.RTPROT_DHCP: "dhcp"}
TABLES = {_core.RT_TABLE_MAIN: "main", _core.RT_TABLE_LOCAL: "local",
          _core.RT_TABLE_DEFAULT: "default"}
FAMILIES = {socket.AF_INET: "inet", socket.AF_INET6: "inet6"}
# IFA_F_* bits and the key ``ip -j`` sets to true for each
ADDR_FLAGS = {_core.IFA_F_SECONDARY: "secondary", _core.IFA_F_NODAD: "nodad",
              _core.IFA_F_OPTIMISTIC: "optimistic", _core.IFA_F_DADFAILED: "dadfailed",
              _core.IFA_F_HOMEADDRESS: "home", _core.IFA_F_DEPRECATED: "deprecated",
              _core.IFA_F_TENTATIVE: "tentative", _core.IFA_F_MANAGETEMPADDR: "mngtmpaddr",
              _core.IFA_F_NOPREFIXROUTE: "noprefixroute", _core.IFA_F_MCAUTOJOIN: "autojoin",
              _core.IFA_F_STABLE_PRIVACY: "stable-privacy"}

SETUP = [
    # no duplicate address detection: no address or route changes while we look
    ("netns-exec", "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"),
    ("netns-exec", "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"),
    ("link", "set", "lo", "up"),
    ("link", "add", "va", "type", "veth", "peer", "name", "vb"),
    ("link", "set", "va", "up"),
    ("link", "set", "vb", "up"),
    ("addr", "add", "192.0.2.1/24", "dev", "va"),
    ("addr", "add", "198.51.100.5/32", "dev", "va", "label", "va:one"),
    ("addr", "add", "203.0.113.9/24", "dev", "va", "valid_lft", "300", "preferred_lft", "200"),
    ("addr", "add", "192.0.2.77", "peer", "192.0.2.78", "dev", "vb"),
    ("addr", "add", "2001:db8::1/64", "dev", "va", "nodad"),
    ("route", "add", "default", "via", "192.0.2.254"),
    ("route", "add", "198.51.100.0/24", "dev", "va", "metric", "100"),
    ("route", "add", "203.0.113.128/25", "via", "192.0.2.252", "table", "1000"),
    ("route", "add", "192.0.2.128/25", "dev", "va", "src", "192.0.2.1", "proto", "static"),
    ("-6", "route", "add", "default", "via", "2001:db8::ff"),
    ("-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8::fe", "metric", "200"),
]


@pytest.fixture
def net(ns):
    """``ns`` set up as SETUP says."""
    for step in SETUP:
        if step[0] == "netns-exec":
            ns.run(*step[1:])
        else:
            sh("ip", "-n", ns.name, *step)
    return ns


@pytest.fixture
def sock(net):
    fd = os.open(net.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        s = Socket(fd)
    finally:
        os.close(fd)
    yield s
    s.close()


def addr_dump(sock, family=socket.AF_UNSPEC):
    return sock.dump(Request("list_addresses", (), None, _core.addr_dump_encoder(family),
                             reads=True))


def route_dump(sock, family=socket.AF_UNSPEC):
    return sock.dump(Request("list_routes", (), None, _core.route_dump_encoder(family),
                             reads=True))


def names(ns) -> dict:
    return {link["ifindex"]: link["ifname"] for link in ns.ip("link", "show")}


# -- the raw dicts in ``ip -j`` terms --------------------------------------------

def ip_address(raw: dict) -> tuple:
    """What ``ip -j -d addr show`` says of an address, from a raw dict: the
    kernel sends an IPv6 address as IFA_ADDRESS alone (IFA_LOCAL only with
    a peer), and ip shows "address" only when it differs from "local"."""
    local = raw["local"] or raw["address"]
    peer = raw["address"] if raw["local"] and raw["address"] != raw["local"] else None
    flags = sorted(name for bit, name in ADDR_FLAGS.items() if raw["flags"] & bit)
    if not raw["flags"] & _core.IFA_F_PERMANENT:
        flags.append("dynamic")
    return (raw["index"], FAMILIES[raw["family"]], local, peer, raw["prefixlen"],
            SCOPES[raw["scope"]], raw["label"], raw["broadcast"], raw["valid_lft"],
            raw["preferred_lft"], tuple(sorted(flags)))


def iproute2_address(index: int, a: dict) -> tuple:
    flags = tuple(sorted(k for k in list(ADDR_FLAGS.values()) + ["dynamic"] if a.get(k)))
    return (index, a["family"], a["local"], a.get("address"), a["prefixlen"], a["scope"],
            a.get("label"), a.get("broadcast"), a["valid_life_time"], a["preferred_life_time"],
            flags)


def iproute2_addresses(ns) -> list:
    return sorted(iproute2_address(link["ifindex"], a) for link in ns.ip("-d", "addr", "show")
                  for a in link["addr_info"])


def ip_route(raw: dict, devs: dict) -> tuple:
    """What ``ip -j -d route show table all`` says of a route, from a raw dict."""
    bits = 32 if raw["family"] == socket.AF_INET else 128
    if raw["dst"] is None:
        dst = "default"
    elif raw["dst_len"] == bits:
        dst = raw["dst"]
    else:
        dst = f"{raw['dst']}/{raw['dst_len']}"
    return (TYPES[raw["type"]], dst, raw["gateway"], devs.get(raw["oif"]),
            TABLES.get(raw["table"], str(raw["table"])), PROTOCOLS[raw["protocol"]],
            SCOPES[raw["scope"]], raw["prefsrc"], raw["priority"])


def iproute2_route(r: dict) -> tuple:
    return (r["type"], r["dst"], r.get("gateway"), r.get("dev"), r["table"], r["protocol"],
            r["scope"], r.get("prefsrc"), r.get("metric"))


def iproute2_routes(ns, *family: str) -> list:
    return sorted(iproute2_route(r) for r in ns.ip("-d", *family, "route", "show", "table", "all"))


def route_request(msg_type: int, nlflags: int, **spec) -> Request:
    fields = dict(table=_core.RT_TABLE_MAIN, protocol=_core.RTPROT_BOOT,
                  scope=_core.RT_SCOPE_UNIVERSE, rtype=_core.RTN_UNICAST)
    fields.update(spec)
    return Request("route", (), None, _core.route_encoder(msg_type, nlflags, **fields))


def run(sock, request: Request) -> None:
    reply, = sock.exchange([request])
    assert reply.errno == 0, reply


def v4(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, text)


def v6(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


# -- addresses ---------------------------------------------------------------------

def test_address_dump_lists_what_iproute2_lists(net, sock):
    assert sorted(ip_address(a) for a in addr_dump(sock)) == iproute2_addresses(net)


@pytest.mark.parametrize("family, flag", [(socket.AF_INET, "-4"), (socket.AF_INET6, "-6")])
def test_address_dump_of_one_family_lists_only_that_family(net, sock, family, flag):
    got = addr_dump(sock, family)
    assert {a["family"] for a in got} == {family}
    assert len(got) == sum(len(link["addr_info"]) for link in net.ip(flag, "addr", "show"))


def test_address_dump_gives_ipv4_label_broadcast_and_lifetimes(net, sock):
    sh("ip", "-n", net.name, "addr", "add", "198.51.100.9/24", "brd", "+", "dev", "vb")
    got = {a["local"]: a for a in addr_dump(sock, socket.AF_INET)}
    assert got["198.51.100.5"]["label"] == "va:one"
    assert got["198.51.100.9"]["broadcast"] == "198.51.100.255"
    assert (got["203.0.113.9"]["valid_lft"], got["203.0.113.9"]["preferred_lft"]) == (300, 200)
    assert got["192.0.2.77"]["address"] == "192.0.2.78"


def test_address_added_with_nodad_flag_shows_nodad(net, sock):
    index = net.link("vb")["ifindex"]
    run(sock, Request("add", (), None, _core.addr_encoder(
        _core.RTM_NEWADDR, _core.NLM_F_CREATE | _core.NLM_F_EXCL, index=index,
        family=socket.AF_INET6, prefixlen=64, local=v6("2001:db8:2::5"),
        flags=_core.IFA_F_NODAD)))
    added = [a for a in net.addresses("vb") if a["local"] == "2001:db8:2::5"]
    assert added and added[0].get("nodad") is True


# -- routes --------------------------------------------------------------------------

def test_route_dump_lists_what_iproute2_lists(net, sock):
    devs = names(net)
    assert sorted(ip_route(r, devs) for r in route_dump(sock)) == iproute2_routes(net)


@pytest.mark.parametrize("family, flag", [(socket.AF_INET, "-4"), (socket.AF_INET6, "-6")])
def test_route_dump_of_one_family_lists_what_iproute2_lists(net, sock, family, flag):
    devs = names(net)
    got = route_dump(sock, family)
    assert sorted(ip_route(r, devs) for r in got) == iproute2_routes(net, flag)


def test_route_dump_gives_table_over_255_metric_and_prefsrc(net, sock):
    got = route_dump(sock, socket.AF_INET)
    by_dst = {(r["dst"], r["dst_len"], r["table"]): r for r in got}
    assert by_dst[("203.0.113.128", 25, 1000)]["gateway"] == "192.0.2.252"
    assert by_dst[("198.51.100.0", 24, _core.RT_TABLE_MAIN)]["priority"] == 100
    assert by_dst[("192.0.2.128", 25, _core.RT_TABLE_MAIN)]["prefsrc"] == "192.0.2.1"
    assert by_dst[(None, 0, _core.RT_TABLE_MAIN)]["priority"] is None


def test_route_added_with_metric_prefsrc_and_table_1000_is_there_as_sent(net, sock):
    index = net.link("va")["ifindex"]
    run(sock, route_request(_core.RTM_NEWROUTE, _core.NLM_F_CREATE | _core.NLM_F_EXCL,
                            family=socket.AF_INET, dst=v4("198.51.100.64"), dst_len=26,
                            gateway=v4("192.0.2.250"), oif=index, table=1000, priority=7,
                            prefsrc=v4("192.0.2.1")))
    routes = net.ip("route", "show", "table", "1000", "198.51.100.64/26")
    assert [(r["gateway"], r["metric"], r["prefsrc"]) for r in routes] == \
        [("192.0.2.250", 7, "192.0.2.1")]


def test_route_added_with_replace_replaces_the_route(net, sock):
    index = net.link("va")["ifindex"]
    run(sock, route_request(_core.RTM_NEWROUTE, _core.NLM_F_CREATE | _core.NLM_F_REPLACE,
                            family=socket.AF_INET, dst=v4("198.51.100.0"), dst_len=24,
                            gateway=v4("192.0.2.250"), oif=index, priority=100))
    routes = net.ip("route", "show", "198.51.100.0/24")
    assert [(r.get("gateway"), r.get("metric")) for r in routes] == [("192.0.2.250", 100)]


def test_route_added_without_replace_flag_is_refused_when_it_exists(net, sock):
    index = net.link("va")["ifindex"]
    reply, = sock.exchange([route_request(
        _core.RTM_NEWROUTE, _core.NLM_F_CREATE | _core.NLM_F_EXCL, family=socket.AF_INET,
        dst=v4("198.51.100.0"), dst_len=24, oif=index, priority=100,
        scope=_core.RT_SCOPE_LINK)])
    assert reply.errno == errno.EEXIST


def test_route_deleted_by_exact_metric_leaves_the_same_prefix_of_another_metric(net, sock):
    sh("ip", "-n", net.name, "route", "add", "198.51.100.0/24", "dev", "va", "metric", "200")
    index = net.link("va")["ifindex"]
    run(sock, route_request(_core.RTM_DELROUTE, 0, family=socket.AF_INET, dst=v4("198.51.100.0"),
                            dst_len=24, oif=index, priority=200, scope=_core.RT_SCOPE_NOWHERE))
    assert [r["metric"] for r in net.ip("route", "show", "198.51.100.0/24")] == [100]


def test_route_deleted_from_table_1000_goes_from_that_table_only(net, sock):
    sh("ip", "-n", net.name, "route", "add", "203.0.113.128/25", "via", "192.0.2.252")
    run(sock, route_request(_core.RTM_DELROUTE, 0, family=socket.AF_INET,
                            dst=v4("203.0.113.128"), dst_len=25, gateway=v4("192.0.2.252"),
                            table=1000, scope=_core.RT_SCOPE_NOWHERE))
    assert not net.ip("route", "show", "table", "1000")
    assert len(net.ip("route", "show", "203.0.113.128/25")) == 1


def test_ipv6_route_deleted_by_exact_spec_is_gone(net, sock):
    run(sock, route_request(_core.RTM_DELROUTE, 0, family=socket.AF_INET6,
                            dst=v6("2001:db8:1::"), dst_len=48, gateway=v6("2001:db8::fe"),
                            priority=200))
    assert not net.ip("-6", "route", "show", "2001:db8:1::/48")


def test_dump_of_many_routes_spans_several_datagrams(net, sock):
    lines = "".join(f"route add 203.0.113.{i}/32 dev va table {2000 + j}\n"
                    for j in range(12) for i in range(1, 101))
    subprocess.run(["ip", "-n", net.name, "-batch", "-"], input=lines, text=True, check=True,
                   capture_output=True, timeout=60)
    got = [r for r in route_dump(sock, socket.AF_INET) if r["table"] >= 2000]
    assert len({(r["dst"], r["table"]) for r in got}) == len(got) == 1200


def test_dump_of_a_request_that_lists_nothing_is_refused_before_sending(sock):
    request = Request("add", (), None, _core.addr_encoder(
        _core.RTM_NEWADDR, _core.NLM_F_CREATE, index=1, family=socket.AF_INET, prefixlen=32,
        local=v4("192.0.2.200")))
    with pytest.raises(ValueError):
        sock.dump(request)
    assert not [a for a in addr_dump(sock) if a["local"] == "192.0.2.200"]


@pytest.mark.parametrize("dump", [addr_dump, route_dump])
def test_dump_whose_parts_outgrow_the_receive_buffer_grows_it_and_lists_everything(net, sock, dump):
    def small_buffers_then_dump():
        b = _core._buffers                          # this thread's own
        b.rbuf, b.rcap = _core._scratch("unsigned char[]", 256), 256
        return dump(sock), b.rcap

    got, rcap = in_thread(small_buffers_then_dump)
    assert rcap > 256
    assert got == dump(sock)
