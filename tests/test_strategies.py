"""Strategies end to end in scratch namespaces, judged with ``ip -j``.

``ns`` plays the host (a bridge br0 with 192.0.2.1/24 and 2001:db8::1/64),
``ns2`` the container (with a process in it: ``sleeper``).  The host side
runs in a thread inside ``ns``, as a runtime's would run on the host.
"""
from __future__ import annotations

import errno
import json
import os
import sys

import pytest

import pynetlink as pn
from pynetlink import _names, strategies
from conftest import in_thread, open_fds, sh

pytestmark = pytest.mark.unit


@pytest.fixture
def bridge(ns):
    for cmd in (["link", "add", "br0", "type", "bridge"],
                ["addr", "add", "192.0.2.1/24", "dev", "br0"],
                ["addr", "add", "2001:db8::1/64", "dev", "br0", "nodad"],
                ["link", "set", "br0", "up"]):
        sh("ip", "-n", ns.name, *cmd)
    return "br0"


def network(**changes) -> pn.Network:
    base = dict(type="veth", bridge="br0", veth_prefix="veth", address="192.0.2.2/24",
                gateway="192.0.2.1", mtu=1450)
    base.update(changes)
    return pn.Network(**base)


def create(ns, net, nspid=None, netns=None, fast=True) -> pn.NetworkState:
    state = pn.NetworkState()
    in_thread(lambda: pn.Veth(fast=fast).create(net, nspid, state, netns=netns), netns_path=ns.path)
    return state


def host_links(ns) -> set:
    return ns.link_names() - {"lo", "br0"}


# -- Veth.create -------------------------------------------------------------------

@pytest.mark.parametrize("fast", [True, False], ids=["in-place", "create-then-move"])
def test_veth_create_puts_host_end_on_bridge_up_with_mtu(ns, ns2, bridge, sleeper, fast):
    state = create(ns, network(), nspid=sleeper, fast=fast)
    host = ns.link(state.veth_host)
    assert host["master"] == "br0" and host["mtu"] == 1450
    assert {"UP", "MULTICAST", "BROADCAST"} <= set(host["flags"])


@pytest.mark.parametrize("fast", [True, False], ids=["in-place", "create-then-move"])
def test_veth_create_places_child_in_the_container_down(ns, ns2, bridge, sleeper, fast):
    state = create(ns, network(), nspid=sleeper, fast=fast)
    child = ns2.link(state.veth_child)
    assert child["linkinfo"]["info_kind"] == "veth" and child["mtu"] == 1450
    assert "UP" not in child["flags"] and "MULTICAST" in child["flags"]
    assert state.veth_child not in ns.link_names()


def test_veth_create_by_netns_path_needs_no_process(ns, ns2, bridge):
    state = create(ns, network(), netns=ns2.path)
    assert state.veth_child in ns2.link_names()


def test_veth_create_by_netns_fd(ns, ns2, bridge):
    fd = os.open(ns2.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        state = create(ns, network(), netns=fd)
    finally:
        os.close(fd)
    assert state.veth_child in ns2.link_names()


def test_veth_create_names_both_ends_prefix_plus_random(ns, ns2, bridge, sleeper):
    state = create(ns, network(veth_prefix="pnv"), nspid=sleeper)
    for name in (state.veth_host, state.veth_child):
        assert name.startswith("pnv") and len(name) == 10
    assert state.veth_host != state.veth_child


def test_veth_create_long_prefix_leaves_four_random_characters(ns, ns2, bridge, sleeper):
    state = create(ns, network(veth_prefix="p" * 11), nspid=sleeper)
    assert len(state.veth_host.encode()) == 15


def test_veth_create_refuses_a_prefix_too_long_for_four_random_characters(ns, ns2, bridge, sleeper):
    with pytest.raises(ValueError):
        create(ns, network(veth_prefix="p" * 12), nspid=sleeper)
    assert host_links(ns) == set()


@pytest.mark.parametrize("missing", ["bridge", "veth_prefix"])
def test_veth_create_requires_bridge_and_prefix(ns, ns2, bridge, sleeper, missing):
    with pytest.raises(ValueError, match=missing):
        create(ns, network(**{missing: ""}), nspid=sleeper)
    assert host_links(ns) == set()


def test_veth_create_sets_txqueuelen_and_hairpin(ns, ns2, bridge, sleeper):
    state = create(ns, network(txqueuelen=600, hairpin_mode=True), nspid=sleeper)
    host = ns.link(state.veth_host)
    assert host["txqlen"] == 600
    assert host["linkinfo"]["info_slave_data"]["hairpin"] is True


def test_veth_create_in_place_and_create_then_move_give_the_same_links(ns, ns2, bridge, sleeper):
    fast = create(ns, network(txqueuelen=700, hairpin_mode=True), nspid=sleeper, fast=True)
    moved = create(ns, network(txqueuelen=700, hairpin_mode=True), nspid=sleeper, fast=False)
    keys = ("flags", "mtu", "master", "txqlen", "operstate", "group")

    def view(link):
        return {k: link.get(k) for k in keys} | {"hairpin": link["linkinfo"].get(
            "info_slave_data", {}).get("hairpin"), "kind": link["linkinfo"]["info_kind"]}

    assert view(ns.link(fast.veth_host)) == view(ns.link(moved.veth_host))
    assert view(ns2.link(fast.veth_child)) == view(ns2.link(moved.veth_child))


def test_veth_create_retries_fresh_names_when_a_name_is_taken(ns, ns2, bridge, sleeper, monkeypatch):
    sh("ip", "-n", ns.name, "link", "add", "vethtaken", "type", "bridge")
    names = iter(["taken", "peer001", "fresh01", "fresh02"])
    monkeypatch.setattr(_names, "random_name", lambda prefix, n: prefix + next(names))
    state = create(ns, network(), nspid=sleeper)
    assert (state.veth_host, state.veth_child) == ("vethfresh01", "vethfresh02")
    assert ns.link("vethtaken")["linkinfo"]["info_kind"] == "bridge"
    assert "vethpeer001" not in ns.link_names() | ns2.link_names()


# -- Veth.create failures leave nothing behind ------------------------------------

@pytest.mark.parametrize("fast", [True, False], ids=["in-place", "create-then-move"])
@pytest.mark.parametrize("case,changes,exc_errno", [
    ("missing bridge", dict(bridge="nobr0"), errno.ENODEV),
    ("mtu below minimum", dict(mtu=10), errno.EINVAL),
    ("bridge is not a bridge", dict(bridge="lo"), None),
])
def test_veth_create_kernel_failure_leaves_no_link(ns, ns2, bridge, sleeper, fast, case, changes, exc_errno):
    with pytest.raises(OSError) as info:
        create(ns, network(**changes), nspid=sleeper, fast=fast)
    if exc_errno is not None:
        assert info.value.errno == exc_errno
    assert host_links(ns) == set()
    assert ns2.link_names() == {"lo"}


@pytest.mark.parametrize("fast", [True, False], ids=["in-place", "create-then-move"])
def test_veth_create_dead_pid_raises_process_lookup_and_leaves_no_link(ns, ns2, bridge, fast):
    with pytest.raises(ProcessLookupError):
        create(ns, network(), nspid=2**22 + 1, fast=fast)
    assert host_links(ns) == set()


CREATE_THEN_MOVE_STEPS = ["set_interface_master", "set_mtu", "set_link", "set_hairpin", "interface_up",
              "set_interface_in_namespace_pid"]


@pytest.mark.parametrize("step", CREATE_THEN_MOVE_STEPS)
def test_veth_create_create_then_move_failing_at_any_step_leaves_no_link(ns, ns2, bridge, sleeper, monkeypatch, step):
    def fail(self, *args, **kwargs):
        raise pn.errors.error_for(errno.EIO, step, args)

    monkeypatch.setattr(pn.Handle, step, fail)
    with pytest.raises(OSError) as info:
        create(ns, network(txqueuelen=600, hairpin_mode=True), nspid=sleeper, fast=False)
    assert info.value.errno == errno.EIO
    assert host_links(ns) == set()
    assert ns2.link_names() == {"lo"}


def test_veth_create_in_place_failing_at_hairpin_leaves_no_link(ns, ns2, bridge, sleeper, monkeypatch):
    def fail(self, *args, **kwargs):
        raise pn.errors.error_for(errno.EIO, "set_hairpin", args)

    monkeypatch.setattr(pn.Handle, "set_hairpin", fail)
    with pytest.raises(OSError):
        create(ns, network(hairpin_mode=True), nspid=sleeper)
    assert host_links(ns) == set()
    assert ns2.link_names() == {"lo"}


# -- Veth.initialize / Loopback.initialize -------------------------------------------

FULL = dict(mac_address="02:42:c0:00:02:02", ipv6_address="2001:db8::2/64",
            ipv6_gateway="2001:db8::1", txqueuelen=600)


def test_veth_initialize_from_outside_configures_eth0(ns, ns2, bridge):
    net = network(**FULL)
    state = create(ns, net, netns=ns2.path)
    pn.Veth().initialize(net, state, netns=ns2.path)
    eth0 = ns2.link("eth0")
    assert state.veth_child not in ns2.link_names()
    assert (eth0["address"], eth0["mtu"], eth0["txqlen"]) == ("02:42:c0:00:02:02", 1450, 600)
    assert {"UP", "MULTICAST", "BROADCAST"} <= set(eth0["flags"])
    assert {(a["local"], a["prefixlen"]) for a in ns2.addresses("eth0")} >= {
        ("192.0.2.2", 24), ("2001:db8::2", 64)}
    assert [r["gateway"] for r in ns2.routes("-4") if r["dst"] == "default"] == ["192.0.2.1"]
    assert [r["gateway"] for r in ns2.routes("-6") if r["dst"] == "default"] == ["2001:db8::1"]


def test_veth_initialize_without_gateway_adds_no_default_route(ns, ns2, bridge):
    net = network(gateway="")
    state = create(ns, net, netns=ns2.path)
    pn.Veth().initialize(net, state, netns=ns2.path)
    assert all(r["dst"] != "default" for r in ns2.routes("-4"))


def test_veth_initialize_bad_input_changes_nothing(ns, ns2, bridge):
    state = create(ns, network(), netns=ns2.path)
    for bad in (dict(address="192.0.2.2"), dict(gateway="nope"), dict(mac_address="02:42"),
                dict(ipv6_address="2001:db8::2/129"), dict(mtu=-1)):
        with pytest.raises((ValueError, TypeError)):
            pn.Veth().initialize(network(**bad), state, netns=ns2.path)
    assert state.veth_child in ns2.link_names() and "eth0" not in ns2.link_names()


def test_veth_initialize_needs_a_child_in_the_state(ns2):
    with pytest.raises(ValueError, match="veth_child"):
        pn.Veth().initialize(network(), pn.NetworkState(), netns=ns2.path)


def test_loopback_initialize_brings_lo_up_from_outside(ns2):
    pn.Loopback().initialize(pn.Network(type="loopback"), pn.NetworkState(), netns=ns2.path)
    assert "UP" in ns2.link("lo")["flags"]


def test_loopback_initialize_in_the_calling_threads_namespace(ns2):
    in_thread(lambda: pn.Loopback().initialize(pn.Network(), pn.NetworkState()), netns_path=ns2.path)
    assert "UP" in ns2.link("lo")["flags"]


def test_loopback_create_does_nothing(ns):
    before = ns.ip("-d", "link", "show")
    in_thread(lambda: pn.Loopback().create(pn.Network(), 1, pn.NetworkState()), netns_path=ns.path)
    assert ns.ip("-d", "link", "show") == before


# -- the whole container, both ways, then traffic --------------------------------------

def ping(ns, address: str) -> None:
    """Two echo requests from ``ns`` to ``address``; both must be answered."""
    out = sh("ip", "netns", "exec", ns.name, "ping", "-c", "2", "-i", "0.2", "-W", "2", address).stdout
    assert "2 packets transmitted, 2 received" in out, out


def test_container_set_up_from_outside_reaches_the_bridge(ns, ns2, bridge, sleeper):
    net = network(**FULL)
    state = create(ns, net, nspid=sleeper)
    pn.Loopback().initialize(net, state, netns=ns2.path)
    pn.Veth().initialize(net, state, netns=ns2.path)
    ping(ns2, "192.0.2.1")


CONTAINER_SIDE = """
import json, sys
import pynetlink as pn
net, state = pn.Network.from_json(sys.argv[1]), pn.NetworkState.from_json(sys.argv[2])
pn.get_strategy("loopback").initialize(net, state)
pn.get_strategy("veth").initialize(net, state)
"""


def test_container_set_up_inside_as_libcontainer_did_reaches_the_bridge(ns, ns2, bridge, sleeper):
    net = network(**FULL)
    state = create(ns, net, nspid=sleeper)
    sh("ip", "netns", "exec", ns2.name, sys.executable, "-c", CONTAINER_SIDE,
       net.to_json(), state.to_json())
    assert "UP" in ns2.link("lo")["flags"] and "UP" in ns2.link("eth0")["flags"]
    ping(ns2, "192.0.2.1")


# -- NetNS ---------------------------------------------------------------------------

def test_netns_create_records_the_path(ns2):
    state = pn.NetworkState()
    pn.NetNS().create(pn.Network(type="netns", ns_path=ns2.path), 0, state)
    assert state.ns_path == ns2.path


def test_netns_create_requires_a_path():
    with pytest.raises(ValueError):
        pn.NetNS().create(pn.Network(type="netns"), 0, pn.NetworkState())


def test_netns_initialize_moves_the_calling_thread_and_closes_its_fd(ns2):
    state = pn.NetworkState(ns_path=ns2.path)

    def body():
        before = open_fds()
        pn.NetNS().initialize(pn.Network(), state)
        return pn.netns.current_id(), open_fds() - before

    here, leaked = in_thread(body)
    st = os.stat(ns2.path)
    assert here == (st.st_dev, st.st_ino)
    assert leaked == 0


def test_netns_initialize_refuses_to_work_from_outside(ns2):
    with pytest.raises(ValueError):
        pn.NetNS().initialize(pn.Network(), pn.NetworkState(ns_path=ns2.path), netns=ns2.path)


# -- get_strategy --------------------------------------------------------------------

@pytest.mark.parametrize("name,cls", [("veth", pn.Veth), ("loopback", pn.Loopback), ("netns", pn.NetNS)])
def test_get_strategy_returns_the_strategy(name, cls):
    strategy = pn.get_strategy(name)
    assert isinstance(strategy, cls) and isinstance(strategy, pn.NetworkStrategy)


@pytest.mark.parametrize("bad", ["", "bridge", "VETH", None, 1])
def test_get_strategy_refuses_unknown_types(bad):
    with pytest.raises(pn.NotValidStrategyType) as info:
        pn.get_strategy(bad)
    assert str(info.value) == "not a valid network strategy type"
    assert isinstance(info.value, ValueError)
