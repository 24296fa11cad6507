"""Link operations against the real kernel, judged with ``ip -j``."""
from __future__ import annotations

import errno
import os

import pytest

import pynetlink as pn
from conftest import sh


# What ip derives from the carrier or from the peer's state, not the link's own flags.
DERIVED = {"LOWER_UP", "NO-CARRIER", "M-DOWN"}


def flags(ns, name):
    """The link's own flags as ``ip -j`` shows them."""
    return set(ns.link(name)["flags"]) - DERIVED


# -- create_veth_pair ----------------------------------------------------------

def test_create_veth_pair_makes_a_veth_with_its_peer(ns, handle):
    handle.create_veth_pair("host0", "peer0")
    link = ns.link("host0")
    assert link["linkinfo"]["info_kind"] == "veth"
    assert link["link"] == "peer0"
    assert ns.link("peer0")["link"] == "host0"


def test_create_veth_pair_leaves_both_ends_down(ns, handle):
    handle.create_veth_pair("host0", "peer0")
    assert "UP" not in flags(ns, "host0")
    assert "UP" not in flags(ns, "peer0")


def test_create_veth_pair_twice_raises_file_exists(ns, handle):
    handle.create_veth_pair("host0", "peer0")
    with pytest.raises(FileExistsError) as info:
        handle.create_veth_pair("host0", "peer1")
    assert info.value.errno == errno.EEXIST
    assert "create_veth_pair('host0', 'peer1')" in str(info.value)
    assert "peer1" not in ns.link_names()


def test_create_veth_pair_with_taken_peer_name_creates_nothing(ns, handle, veth):
    with pytest.raises(FileExistsError):
        handle.create_veth_pair("fresh0", "vb")
    assert "fresh0" not in ns.link_names()


def test_create_veth_pair_accepts_fifteen_byte_names(ns, handle):
    handle.create_veth_pair("a" * 15, "b" * 15)
    assert {"a" * 15, "b" * 15} <= ns.link_names()


def test_create_veth_pair_accepts_non_ascii_names(ns, handle):
    handle.create_veth_pair("vé0", "vß1")
    assert {"vé0", "vß1"} <= ns.link_names()


# -- up / down -----------------------------------------------------------------

def test_interface_up_sets_up(ns, handle, veth):
    handle.interface_up("va")
    assert "UP" in flags(ns, "va")


def test_interface_up_keeps_every_other_flag(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "arp", "off", "multicast", "on")
    before = flags(ns, "va")
    handle.interface_up("va")
    after = flags(ns, "va")
    assert {"NOARP", "MULTICAST", "BROADCAST"} <= after
    assert after - before == {"UP"}


def test_interface_down_clears_only_up(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "up", "arp", "off")
    handle.interface_down("va")
    after = flags(ns, "va")
    assert "UP" not in after
    assert {"NOARP", "MULTICAST", "BROADCAST"} <= after


def test_interface_up_on_loopback(ns, handle):
    handle.interface_up("lo")
    assert "UP" in flags(ns, "lo")


# -- set_mtu -------------------------------------------------------------------

def test_set_mtu_changes_mtu(ns, handle, veth):
    handle.set_mtu("va", 1400)
    assert ns.link("va")["mtu"] == 1400


def test_set_mtu_keeps_link_down(ns, handle, veth):
    handle.set_mtu("va", 1400)
    assert "UP" not in flags(ns, "va")


def test_set_mtu_keeps_multicast(ns, handle, veth):
    before = flags(ns, "va")
    handle.set_mtu("va", 9000)
    assert flags(ns, "va") == before
    assert "MULTICAST" in before


def test_set_mtu_keeps_link_up(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "up")
    handle.set_mtu("va", 1280)
    assert "UP" in flags(ns, "va")


def test_set_mtu_below_minimum_carries_kernel_text(ns, handle, veth):
    with pytest.raises(OSError) as info:
        handle.set_mtu("va", 10)
    e = info.value
    assert e.errno == errno.EINVAL
    assert e.operation == "set_mtu" and e.interface == "va"
    assert "mtu less than device minimum" in e.ext_ack
    assert str(e) == ("set_mtu('va', 10): [Errno 22] Invalid argument: "
                      "mtu less than device minimum")
    assert ns.link("va")["mtu"] == 1500


# -- set_interface_master ------------------------------------------------------

def test_set_interface_master_attaches_to_bridge(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    handle.set_interface_master("va", "br0")
    assert ns.link("va")["master"] == "br0"


def test_set_interface_master_keeps_link_down(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    handle.set_interface_master("va", "br0")
    assert "UP" not in flags(ns, "va")


def test_set_interface_master_missing_master_raises_enodev(ns, handle, veth):
    with pytest.raises(OSError) as info:
        handle.set_interface_master("va", "nobr0")
    assert info.value.errno == errno.ENODEV
    assert "nobr0" in str(info.value)


# -- change_interface_name -----------------------------------------------------

def test_change_interface_name_renames(ns, handle, veth):
    index = ns.link("va")["ifindex"]
    handle.change_interface_name("va", "eth0")
    assert ns.link("eth0")["ifindex"] == index
    assert "va" not in ns.link_names()


def test_change_interface_name_to_taken_name_raises_file_exists(ns, handle, veth):
    with pytest.raises(FileExistsError):
        handle.change_interface_name("va", "vb")
    assert {"va", "vb"} <= ns.link_names()


def test_change_interface_name_keeps_flags_and_mtu(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "mtu", "1400", "arp", "off")
    before = flags(ns, "va")
    handle.change_interface_name("va", "eth0")
    assert flags(ns, "eth0") == before
    assert ns.link("eth0")["mtu"] == 1400


# -- moves between namespaces --------------------------------------------------

def test_set_interface_in_namespace_pid_moves_link(ns, ns2, handle, veth, sleeper):
    handle.set_interface_in_namespace_pid("vb", sleeper)
    assert "vb" not in ns.link_names()
    assert "vb" in ns2.link_names()


def test_set_interface_in_namespace_pid_keeps_link_down_and_multicast(ns, ns2, handle, veth, sleeper):
    before = flags(ns, "vb")
    handle.set_interface_in_namespace_pid("vb", sleeper)
    after = flags(ns2, "vb")
    assert "UP" not in after
    assert after == before


def test_set_interface_in_namespace_pid_dead_pid_raises_process_lookup(ns, handle, veth):
    with pytest.raises(ProcessLookupError):
        handle.set_interface_in_namespace_pid("vb", 2**22 + 1)   # above pid_max's limit
    assert "vb" in ns.link_names()


def test_set_interface_in_namespace_fd_moves_link(ns, ns2, handle, veth):
    fd = os.open(ns2.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        handle.set_interface_in_namespace_fd("vb", fd)
    finally:
        os.close(fd)
    assert "vb" not in ns.link_names()
    assert "DOWN" == ns2.link("vb")["operstate"]


def test_set_interface_in_namespace_fd_keeps_mtu_and_flags(ns, ns2, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "vb", "mtu", "1400")
    before = flags(ns, "vb")
    fd = os.open(ns2.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        handle.set_interface_in_namespace_fd("vb", fd)
    finally:
        os.close(fd)
    moved = ns2.link("vb")
    assert moved["mtu"] == 1400
    assert set(moved["flags"]) - DERIVED == before


def test_set_interface_in_namespace_fd_not_a_namespace_raises_einval(ns, handle, veth, tmp_path):
    path = tmp_path / "plain"
    path.write_text("")
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(OSError) as info:
            handle.set_interface_in_namespace_fd("vb", fd)
    finally:
        os.close(fd)
    assert info.value.errno == errno.EINVAL
    assert "vb" in ns.link_names()


# -- delete_link, link_index, get_link -----------------------------------------

def test_delete_link_removes_both_ends(ns, handle, veth):
    handle.delete_link("va")
    assert not {"va", "vb"} & ns.link_names()


def test_delete_link_missing_raises_enodev(ns, handle):
    with pytest.raises(OSError) as info:
        handle.delete_link("ghost0")
    assert info.value.errno == errno.ENODEV
    assert "ghost0" in str(info.value)


def test_link_index_matches_ip(ns, handle, veth):
    assert handle.link_index("vb") == ns.link("vb")["ifindex"]


def test_link_index_missing_raises_enodev_with_name(ns, handle):
    with pytest.raises(OSError) as info:
        handle.link_index("ghost0")
    assert info.value.errno == errno.ENODEV
    assert info.value.interface == "ghost0"
    assert "ghost0" in str(info.value)


def test_get_link_reports_what_ip_reports(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "link", "set", "va", "master", "br0", "mtu", "1450", "group", "7", "txqlen", "500")
    got = handle.get_link("va")
    want = ns.link("va")
    assert (got.index, got.name, got.mtu, got.group, got.txqlen) == \
        (want["ifindex"], "va", 1450, 7, 500)
    assert got.master == ns.link("br0")["ifindex"]
    assert got.up is False


@pytest.mark.parametrize("call", [
    lambda h: h.interface_up("ghost0"),
    lambda h: h.interface_down("ghost0"),
    lambda h: h.set_mtu("ghost0", 1400),
    lambda h: h.set_interface_master("ghost0", "lo"),
    lambda h: h.change_interface_name("ghost0", "x0"),
    lambda h: h.set_interface_in_namespace_pid("ghost0", os.getpid()),
    lambda h: h.set_interface_ip("ghost0", "192.0.2.1/24"),
    lambda h: h.set_default_gateway("192.0.2.1", "ghost0"),
    lambda h: h.get_link("ghost0"),
], ids=["up", "down", "mtu", "master", "rename", "netns", "addr", "route", "get"])
def test_missing_interface_raises_enodev_naming_it(ns, handle, call):
    with pytest.raises(OSError) as info:
        call(handle)
    assert info.value.errno == errno.ENODEV
    assert "'ghost0'" in str(info.value)


def test_get_link_reports_the_kind_and_a_veths_peer_as_ip_does(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "add", "br9", "type", "bridge")
    va, br, lo = handle.get_link("va"), handle.get_link("br9"), handle.get_link("lo")
    assert (va.kind, br.kind, lo.kind) == (ns.link("va")["linkinfo"]["info_kind"],
                                           ns.link("br9")["linkinfo"]["info_kind"], "")
    assert va.link_index == ns.link("vb")["ifindex"] and br.link_index == 0


def test_get_links_reads_each_link_in_order_in_one_exchange(ns, handle, veth, monkeypatch):
    sh("ip", "-n", ns.name, "link", "add", "br7", "type", "bridge")
    sent = []
    real = handle.socket.exchange
    monkeypatch.setattr(handle.socket, "exchange", lambda reqs, *a: sent.append(len(reqs)) or real(reqs, *a))
    got = handle.get_links(["vb", "br7", "lo", "va"])
    assert [(l.name, l.index) for l in got] == [(n, ns.link(n)["ifindex"]) for n in ("vb", "br7", "lo", "va")]
    assert sent == [4]


def test_get_links_raises_enodev_naming_the_first_missing_link(handle, veth):
    with pytest.raises(OSError) as info:
        handle.get_links(["va", "ghost0", "ghost1"])
    assert info.value.errno == errno.ENODEV and info.value.interface == "ghost0"


def test_get_links_refuses_a_bad_name_before_sending_anything(handle):
    with pytest.raises(ValueError):
        handle.get_links(["lo", "x" * 16])
    with pytest.raises(TypeError):
        handle.get_links("lo")
    assert handle.get_links([]) == []


def test_a_peer_in_another_namespace_is_named_by_its_index_there(ns, ns2, handle):
    handle.create_veth_pair("va", "vb", peer_netns=ns2.path)
    assert handle.get_link("va").link_index == ns2.link("vb")["ifindex"]
