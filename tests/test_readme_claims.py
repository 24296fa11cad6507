"""A test for every promise of README.md that no other test pins down.

Messages are judged as the kernel gets them: ``Wire`` stands in for the
compiled core's ``lib`` in ``pynetlink._core`` (its only caller) and
decodes the buffer of every ``pn_transact`` (a window of requests) and
``pn_send`` (a dump request) with the independent codec (``nlwire``)
before passing the call on unchanged.  Kernel state is read with ``ip -j``.

Index: README section -> the tests that hold it to its word (new here,
or elsewhere where noted).

"A short tour" (the table: one request each, its type and fields)
    test_each_operation_sends_the_requests_the_table_names (every row)
    test_set_interface_in_namespace_pid_is_one_setlink_with_the_pid
    test_set_interface_in_namespace_fd_is_one_setlink_with_the_fd
    test_set_hairpin_is_one_newlink_with_brport_mode
    test_list_addresses_is_a_link_dump_then_one_getaddr_dump (and _of_one_link_...)
    test_list_routes_is_a_link_dump_then_one_getroute_dump (and _out_of_one_link_...)
    test_links_are_named_by_ifname_not_looked_up
    test_create_veth_pair_with_options_is_one_message
    test_a_multipath_route_is_listed_without_its_next_hops
    records: test_links.py, test_addresses_routes.py, test_routes.py, test_dumps.py
"Namespaces": test_netns.py, test_handle.py
"Errors"
    test_a_kernel_refusal_reads_as_the_readme_shows
    test_a_missing_link_reads_as_the_readme_shows
    validation: test_validation.py; fields: test_error_detail.py, test_operations.py
"Batches, transactions, bulk setup"
    test_claims_batches.py (windows of 64, "stop" one at a time, reads in the
    same send, timeouts inside a batch and in a single call, rollback_failed,
    a failed undo exchange, bulk: eth0 born in place, chunks of 16, two
    exchanges per container, bad input sends nothing); ENOBUFS: test_faults.py
"The pynetlink command": test_claims_cli.py; test_cli.py
"CNI plugin": test_cni_claims.py; test_cni.py
"Strategies"
    test_veth_create_makes_the_pair_on_the_bridge_in_one_request
    test_veth_create_then_move_is_libcontainers_path
    test_get_stats_sends_one_getlink_and_no_dump
    test_get_stats_of_an_empty_state_sends_nothing
    test_get_stats_many_sends_one_link_dump_for_any_number_of_containers
    values: test_stats.py
"Hardening"
    test_interrupted_dumps_are_tried_four_times_as_documented
    (relative to the constant: test_faults.py::test_a_dump_interrupted_every_time_gives_up_with_eagain)
"""
from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional

import pytest

import nlwire
import pynetlink as pn
from conftest import sh
from nlwire import C
from pynetlink import _core
from test_batch import ns2_fd  # noqa: F401  (fixture)

TYPE_NAMES = {getattr(C, n): n for n in ("RTM_NEWLINK", "RTM_DELLINK", "RTM_GETLINK", "RTM_SETLINK",
                                          "RTM_NEWADDR", "RTM_DELADDR", "RTM_GETADDR",
                                          "RTM_NEWROUTE", "RTM_DELROUTE", "RTM_GETROUTE")}


# -- the recorder ------------------------------------------------------------------------------

class Send(NamedTuple):
    fd: int                         # the socket it went out on
    kind: str                       # "transact" (requests, each ACKed) or "dump"
    messages: List[nlwire.Message]


def name_of(msg: nlwire.Message) -> str:
    """``RTM_GETLINK``, with ``+DUMP`` for a dump request."""
    name = TYPE_NAMES.get(msg.type, str(msg.type))
    return name + "+DUMP" if msg.flags & C.NLM_F_DUMP == C.NLM_F_DUMP else name


class Wire:
    """The real ``lib`` with ``pn_transact`` and ``pn_send`` recorded (from
    every thread).  ``before_transact``, if set, is called instead of the
    real ``pn_transact`` (with it as first argument): a test's fault."""

    def __init__(self, real) -> None:
        self._real = real
        self.sends: List[Send] = []
        self.before_transact: Optional[Callable] = None

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def _take(self, fd: int, kind: str, buf) -> None:
        data = bytes(_core.ffi.buffer(buf.data, buf.len))
        self.sends.append(Send(fd, kind, nlwire.decode(data)))

    def pn_transact(self, fd, portid, buf, first, count, *rest):
        self._take(fd, "transact", buf)
        fault = self.before_transact
        if fault is not None:
            return fault(self._real, fd, portid, buf, first, count, *rest)
        return self._real.pn_transact(fd, portid, buf, first, count, *rest)

    def pn_send(self, fd, buf):
        self._take(fd, "dump", buf)
        return self._real.pn_send(fd, buf)

    def messages(self) -> List[nlwire.Message]:
        return [m for s in self.sends for m in s.messages]

    def names(self) -> List[str]:
        """Each message's type name, in the order sent."""
        return [name_of(m) for m in self.messages()]

    def clear(self) -> None:
        del self.sends[:]


@pytest.fixture
def wire(monkeypatch) -> Wire:
    """Every message sent from here to the end of the test."""
    recorder = Wire(_core.lib)
    monkeypatch.setattr(_core, "lib", recorder)
    return recorder


def ifname(msg: nlwire.Message) -> bytes:
    return msg.attrs.get(C.IFLA_IFNAME).string()


def u32(msg: nlwire.Message, attr: int) -> int:
    return msg.attrs.get(attr).u32()


# -- "A short tour": each row of the table -------------------------------------------------------

def wire_up(ns, *more: tuple):
    """In ns: va (up, 192.0.2.1/24, a route to 198.51.100.0/24) with its
    peer vb (up); br0; then the ``ip`` commands ``more``.  Returns ns."""
    for cmd in (("link", "add", "va", "type", "veth", "peer", "name", "vb"),
                ("link", "add", "br0", "type", "bridge"),
                ("addr", "add", "192.0.2.1/24", "dev", "va"),
                ("link", "set", "vb", "up"), ("link", "set", "va", "up"),
                ("route", "add", "198.51.100.0/24", "dev", "va")) + more:
        sh("ip", "-n", ns.name, *cmd)
    return ns


@pytest.fixture
def scene(ns, handle):
    """``wire_up``, and vc on br0 with its peer vd."""
    return wire_up(ns, ("link", "add", "vc", "type", "veth", "peer", "name", "vd"),
                   ("link", "set", "vc", "master", "br0"))


def index_of(ns, name: str) -> int:
    return ns.link(name)["ifindex"]


def check_veth(ns, m):
    assert m.flags & (C.NLM_F_CREATE | C.NLM_F_EXCL) == C.NLM_F_CREATE | C.NLM_F_EXCL
    assert nlwire.linkinfo(m.attrs).kind == b"veth"


def check_up(ns, m):
    assert (m.fixed.flags, m.fixed.change) == (C.IFF_UP, C.IFF_UP)


def check_down(ns, m):
    assert (m.fixed.flags, m.fixed.change) == (0, C.IFF_UP)


def check_mtu(ns, m):
    assert (u32(m, C.IFLA_MTU), m.fixed.change) == (1400, 0)


def check_master(ns, m):
    assert u32(m, C.IFLA_MASTER) == index_of(ns, "br0")


def check_rename(ns, m):
    assert (m.fixed.index, ifname(m)) == (index_of(ns, "vz"), b"vz")


def check_address(ns, m):
    assert (m.fixed.index, m.fixed.prefixlen) == (index_of(ns, "va"), 24)


def check_gateway(ns, m):
    assert (m.fixed.table, m.fixed.dst_len, m.fixed.protocol) == (C.RT_TABLE_MAIN, 0, C.RTPROT_BOOT)


def check_bridge(ns, m):
    assert nlwire.linkinfo(m.attrs).kind == b"bridge"
    assert m.flags & (C.NLM_F_CREATE | C.NLM_F_EXCL) == C.NLM_F_CREATE | C.NLM_F_EXCL


def check_group(ns, m):
    assert (u32(m, C.IFLA_GROUP), m.fixed.index) == (77, 0)


def check_route_main(ns, m):
    assert (m.fixed.table, m.fixed.dst_len) == (C.RT_TABLE_MAIN, 24)


def check_replace(ns, m):
    assert m.flags & C.NLM_F_REPLACE and m.fixed.table == C.RT_TABLE_MAIN


def check_any_protocol(ns, m):
    assert m.fixed.protocol == C.RTPROT_UNSPEC


def check_read(ns, m):
    assert not m.flags & C.NLM_F_DUMP and ifname(m) == b"va"


def check_set_link(ns, m):
    assert ((u32(m, C.IFLA_MTU), u32(m, C.IFLA_TXQLEN), m.attrs.get(C.IFLA_ADDRESS).payload)
            == (1400, 7, bytes.fromhex("020000000001")))
    assert (m.fixed.flags, m.fixed.change) == (C.IFF_PROMISC, C.IFF_UP | C.IFF_PROMISC)


def check_nothing(ns, m):
    pass


# method[/case]: (args, kwargs, the message types sent in order, a check of the last one)
TABLE = {
    "create_veth_pair": (("t0", "t1"), {}, ["RTM_NEWLINK"], check_veth),
    "interface_up": (("vd",), {}, ["RTM_SETLINK"], check_up),
    "interface_down": (("va",), {}, ["RTM_SETLINK"], check_down),
    "set_mtu": (("va", 1400), {}, ["RTM_SETLINK"], check_mtu),
    "set_interface_master": (("va", "br0"), {}, ["RTM_GETLINK", "RTM_SETLINK"], check_master),
    "change_interface_name": (("vb", "vz"), {}, ["RTM_GETLINK", "RTM_SETLINK"], check_rename),
    "set_interface_ip": (("va", "192.0.2.2/24"), {}, ["RTM_GETLINK", "RTM_NEWADDR"], check_address),
    "set_default_gateway": (("192.0.2.254", "va"), {}, ["RTM_GETLINK", "RTM_NEWROUTE"], check_gateway),
    "delete_link": (("va",), {}, ["RTM_DELLINK"], check_nothing),
    "link_index": (("va",), {}, ["RTM_GETLINK"], check_read),
    "get_link": (("va",), {}, ["RTM_GETLINK"], check_read),
    "create_bridge": (("br9",), {"mtu": 1400, "up": True}, ["RTM_NEWLINK"], check_bridge),
    "set_link": (("va",), {"mac_address": "02:00:00:00:00:01", "mtu": 1400, "txqueuelen": 7,
                           "up": False, "promisc": True}, ["RTM_SETLINK"], check_set_link),
    "set_link/new_name": (("vb",), {"new_name": "vz", "mtu": 1400},
                          ["RTM_GETLINK", "RTM_SETLINK"], check_rename),
    "delete_group": ((77,), {}, ["RTM_DELLINK"], check_group),
    "delete_address": (("va", "192.0.2.1/24"), {}, ["RTM_GETLINK", "RTM_DELADDR"], check_address),
    "add_route": (("203.0.113.0/24", "va"), {}, ["RTM_GETLINK", "RTM_NEWROUTE"], check_route_main),
    "replace_route": (("198.51.100.0/24", "va", "192.0.2.9"), {},
                      ["RTM_GETLINK", "RTM_NEWROUTE"], check_replace),
    "delete_route": (("198.51.100.0/24", "va"), {}, ["RTM_GETLINK", "RTM_DELROUTE"],
                     check_any_protocol),
    "link_exists": (("va",), {}, ["RTM_GETLINK"], check_read),
    "list_links": ((), {}, ["RTM_GETLINK+DUMP"], check_nothing),
}


@pytest.mark.parametrize("method", list(TABLE))
def test_each_operation_sends_the_requests_the_table_names(scene, handle, wire, method):
    """One request per operation; the operations on addresses, routes,
    renames and masters look the ifindex up with one RTM_GETLINK first."""
    args, kwargs, names, check = TABLE[method]
    if method == "delete_group":
        sh("ip", "-n", scene.name, "link", "set", "vd", "group", "77")
    getattr(handle, method.split("/")[0])(*args, **kwargs)
    assert wire.names() == names
    assert [len(s.messages) for s in wire.sends] == [1] * len(names)    # one exchange each
    check(scene, wire.messages()[-1])


def test_set_interface_in_namespace_pid_is_one_setlink_with_the_pid(scene, handle, wire, sleeper):
    handle.set_interface_in_namespace_pid("va", sleeper)
    [m] = wire.messages()
    assert (name_of(m), u32(m, C.IFLA_NET_NS_PID), ifname(m)) == ("RTM_SETLINK", sleeper, b"va")


def test_set_interface_in_namespace_fd_is_one_setlink_with_the_fd(scene, handle, wire, ns2_fd):
    handle.set_interface_in_namespace_fd("va", ns2_fd)
    [m] = wire.messages()
    assert (name_of(m), u32(m, C.IFLA_NET_NS_FD), ifname(m)) == ("RTM_SETLINK", ns2_fd, b"va")


def test_set_hairpin_is_one_newlink_with_brport_mode(scene, handle, wire):
    handle.set_hairpin("vc")
    assert wire.names() == ["RTM_NEWLINK"]


def test_set_hairpin_is_one_message_carrying_brport_mode(scene, handle, wire):
    handle.set_hairpin("vc")
    [m] = wire.messages()
    data = nlwire.linkinfo(m.attrs).slave_data
    assert (ifname(m), data.get(C.IFLA_BRPORT_MODE).payload) == (b"vc", b"\x01")


def test_list_addresses_is_a_link_dump_then_one_getaddr_dump(scene, handle, wire):
    handle.list_addresses()
    assert wire.names() == ["RTM_GETLINK+DUMP", "RTM_GETADDR+DUMP"]


def test_list_addresses_of_one_link_is_a_getlink_then_one_getaddr_dump(scene, handle, wire):
    handle.list_addresses("va")
    assert wire.names() == ["RTM_GETLINK", "RTM_GETADDR+DUMP"]


def test_list_routes_is_a_link_dump_then_one_getroute_dump(scene, handle, wire):
    handle.list_routes()
    assert wire.names() == ["RTM_GETLINK+DUMP", "RTM_GETROUTE+DUMP"]


def test_list_routes_out_of_one_link_adds_one_getlink(scene, handle, wire):
    handle.list_routes(oif="va")
    assert wire.names() == ["RTM_GETLINK", "RTM_GETLINK+DUMP", "RTM_GETROUTE+DUMP"]


@pytest.mark.parametrize("method, args", [("interface_up", ("va",)), ("set_mtu", ("va", 1400)),
                                          ("delete_link", ("va",)), ("link_index", ("va",))])
def test_links_are_named_by_ifname_not_looked_up(scene, handle, wire, method, args):
    getattr(handle, method)(*args)
    [m] = wire.messages()
    assert (m.fixed.index, ifname(m)) == (0, b"va")


def test_create_veth_pair_with_options_is_one_message(scene, handle, wire, ns2):
    """mtu, master, up, txqueuelen, group, peer_mtu and peer_netns: the
    whole pair in one RTM_NEWLINK (after the master's index lookup), the
    peer born inside its namespace."""
    handle.create_veth_pair("t0", "t1", mtu=1400, master="br0", up=True, txqueuelen=50, group=9,
                            peer_mtu=1300, peer_netns=ns2.path)
    assert wire.names() == ["RTM_GETLINK", "RTM_NEWLINK"]
    m = wire.messages()[-1]
    assert u32(m, C.IFLA_MASTER) == index_of(scene, "br0")
    assert ((u32(m, C.IFLA_MTU), u32(m, C.IFLA_TXQLEN), u32(m, C.IFLA_GROUP), m.fixed.flags)
            == (1400, 50, 9, C.IFF_UP))
    _, peer = nlwire.veth_peer(nlwire.linkinfo(m.attrs).data)
    assert (peer.get(C.IFLA_IFNAME).string(), peer.get(C.IFLA_MTU).u32()) == (b"t1", 1300)
    assert C.IFLA_NET_NS_FD in peer
    t0, t1 = scene.link("t0"), ns2.link("t1")
    assert (t0["mtu"], t0["master"], t0["txqlen"], t0["group"], t1["mtu"]) == (1400, "br0", 50, "9", 1300)


# -- "Strategies": get_stats and get_stats_many ---------------------------------------------------

def test_get_stats_sends_one_getlink_and_no_dump(scene, handle, wire):
    pn.get_stats(pn.NetworkState(veth_host="va"), handle=handle)
    [m] = wire.messages()
    assert (name_of(m), ifname(m)) == ("RTM_GETLINK", b"va")


def test_get_stats_of_an_empty_state_sends_nothing(handle, wire):
    assert pn.get_stats(pn.NetworkState(), handle=handle) == pn.NetworkStats()
    assert wire.sends == []


def test_get_stats_many_sends_one_link_dump_for_any_number_of_containers(scene, handle, wire):
    states = [pn.NetworkState(veth_host=n) for n in ("va", "vc", "gone0", "va")] + [pn.NetworkState()]
    got = pn.get_stats_many(states, handle=handle)
    assert wire.names() == ["RTM_GETLINK+DUMP"]
    assert [g is None for g in got] == [False, False, True, False, False]


# -- "Hardening": interrupted dumps ------------------------------------------------------------------

def test_interrupted_dumps_are_tried_four_times_as_documented(handle, monkeypatch):
    """README: "interrupted dumps (tried at most 4 times, then EAGAIN)"."""
    tries = []

    def always_interrupted(self, request):
        tries.append(request.operation)
        return [], True
    monkeypatch.setattr(_core.Socket, "_dump_once", always_interrupted)
    with pytest.raises(BlockingIOError):
        handle.list_links()
    assert tries == ["list_links"] * 4


# -- "A short tour": records -----------------------------------------------------------------------

def test_a_multipath_route_is_listed_without_its_next_hops(scene, handle):
    sh("ip", "-n", scene.name, "route", "add", "203.0.113.0/24",
       "nexthop", "via", "192.0.2.9", "dev", "va", "nexthop", "via", "192.0.2.10", "dev", "va")
    [route] = [r for r in handle.list_routes(family=4) if r.dst == "203.0.113.0/24"]
    assert (route.gateway, route.dev, route.oif, route.table) == (None, None, 0, C.RT_TABLE_MAIN)


# -- "Errors": what the kernel refuses, as README prints it -----------------------------------------

def test_a_kernel_refusal_reads_as_the_readme_shows(ns, handle):
    sh("ip", "-n", ns.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
    with pytest.raises(pn.NetlinkError) as info:
        handle.set_mtu("veth0", 10)
    assert str(info.value) == ("set_mtu('veth0', 10): [Errno 22] Invalid argument: "
                               "mtu less than device minimum")


def test_a_missing_link_reads_as_the_readme_shows(handle):
    with pytest.raises(pn.NetlinkError) as info:
        handle.interface_up("nope0")
    assert str(info.value) == "interface_up('nope0'): [Errno 19] No such device"


# -- "Strategies": the in-place path against create-then-move ---------------------------------------

STRATEGY_NET = dict(type="veth", bridge="br0", veth_prefix="veth", mtu=1450)


def test_veth_create_makes_the_pair_on_the_bridge_in_one_request(scene, wire, ns2):
    """In place: the child born in the container's namespace with its MTU,
    the host end on the bridge and up, in the same RTM_NEWLINK; then the
    host end's IPv6 link-local mode (none: a quiet bridge port), which the
    kernel refuses in a creating request."""
    state = pn.NetworkState()
    with pn.netns.entered(scene.path):
        pn.Veth().create(pn.Network(**STRATEGY_NET), None, state, netns=ns2.path)
    veths = [m for m in wire.messages() if name_of(m) == "RTM_NEWLINK"]
    assert [name_of(m) for m in wire.messages()] == [
        "RTM_GETLINK", "RTM_NEWLINK", "RTM_SETLINK"]       # br0's index, the pair, its mode
    mode = wire.messages()[-1]
    assert (ifname(mode).decode(), sorted(mode.attrs.types())) == (
        state.veth_host, sorted([C.IFLA_IFNAME, C.IFLA_AF_SPEC]))
    [m] = veths
    _, peer = nlwire.veth_peer(nlwire.linkinfo(m.attrs).data)
    assert ((u32(m, C.IFLA_MASTER), u32(m, C.IFLA_MTU), m.fixed.flags & C.IFF_UP)
            == (index_of(scene, "br0"), 1450, C.IFF_UP))
    assert (peer.get(C.IFLA_IFNAME).string().decode(), peer.get(C.IFLA_MTU).u32()) == (
        state.veth_child, 1450)
    assert C.IFLA_NET_NS_FD in peer
    assert ns2.link(state.veth_child)["mtu"] == 1450


def test_veth_create_then_move_is_libcontainers_path(scene, wire, ns2, sleeper):
    """Veth(fast=False): the pair made here, then the child moved by pid."""
    state = pn.NetworkState()
    with pn.netns.entered(scene.path):
        pn.Veth(fast=False).create(pn.Network(**STRATEGY_NET), sleeper, state)
    moves = [m for m in wire.messages() if C.IFLA_NET_NS_PID in m.attrs]
    assert [(name_of(m), ifname(m).decode(), u32(m, C.IFLA_NET_NS_PID)) for m in moves] == [
        ("RTM_SETLINK", state.veth_child, sleeper)]
    assert state.veth_child in ns2.link_names()
