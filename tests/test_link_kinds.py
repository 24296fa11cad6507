"""Link kinds on a real kernel: macvlan (also born inside another
namespace), vxlan, dummy, ipvlan, vlan and the bridge's options, made with
pynetlink and judged with ``ip -j -d link show``.

This kernel has macvlan, vxlan and bridge, and lacks dummy, ipvlan and vlan
(EOPNOTSUPP): for those, the request is compared with what ``ip`` sends
for the same command (captured with strace), and the kernel's refusal must
come back as our OSError with nothing left behind — or, on a kernel that
has the kind, the link is judged with ``ip -j -d`` like the others.
"""
from __future__ import annotations

import errno
import json

import pytest

import nlwire_kinds as nk
import pynetlink as pn
from conftest import in_thread, sh
from pynetlink import ops
from pynetlink._core import ffi


def info_data(ns, name: str) -> dict:
    return ns.link(name)["linkinfo"]["info_data"]


def wire(op: ops.Op, indexes: dict) -> bytes:
    """The request ``op`` sends, once the indexes it needs are known."""
    data = ffi.new("unsigned char[]", 4096)
    buf = ffi.new("struct pn_buf *", {"data": data, "cap": 4096})
    assert op.build(indexes)(buf, 1) == 0
    return bytes(ffi.buffer(data, buf.len))


@pytest.fixture
def br0(ns):
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    return ns.link("br0")["ifindex"]


# -- macvlan -------------------------------------------------------------------------

def test_create_macvlan_makes_the_link_ip_shows_on_its_parent(ns, handle, br0):
    handle.create_macvlan("mv0", "br0", mode="private", mtu=1400, mac_address="02:00:00:00:00:07")
    link = ns.link("mv0")
    assert (link["link"], link["mtu"], link["address"]) == ("br0", 1400, "02:00:00:00:00:07")
    assert link["linkinfo"]["info_kind"] == "macvlan"
    assert info_data(ns, "mv0")["mode"] == "private"


def test_get_link_decodes_the_macvlan_ip_shows(ns, handle, br0):
    sh("ip", "-n", ns.name, "link", "add", "link", "br0", "name", "mv0", "type", "macvlan",
       "mode", "vepa")
    link = handle.get_link("mv0")
    assert (link.kind, link.link_index, link.info) == ("macvlan", br0,
                                                       {"mode": "vepa", "nopromisc": False})


def test_a_passthru_macvlan_keeps_its_nopromisc_flag(ns, handle, br0):
    handle.create_macvlan("mv0", "br0", mode="passthru", nopromisc=True)
    assert info_data(ns, "mv0")["nopromisc"] is True
    assert handle.get_link("mv0").info == {"mode": "passthru", "nopromisc": True}


def test_a_macvlan_is_born_up_inside_another_namespace_from_a_parent_in_this_one(ns, ns2, handle,
                                                                                   br0):
    handle.create_macvlan("mv0", "br0", mode="bridge", netns=ns2.path, mtu=1300, up=True)
    assert ns.link_names() == {"lo", "br0"}
    link = ns2.link("mv0")
    assert link["linkinfo"]["info_data"]["mode"] == "bridge"
    assert (link["mtu"], "UP" in link["flags"]) == (1300, True)


def test_a_macvlan_is_born_inside_the_namespace_of_a_pid(ns, ns2, handle, br0, sleeper):
    handle.create_macvlan("mv0", "br0", pid=sleeper)
    assert "mv0" in ns2.link_names() and "mv0" not in ns.link_names()


def test_a_missing_parent_fails_with_enodev_naming_it(ns, handle):
    with pytest.raises(pn.NetlinkError) as info:
        handle.create_macvlan("mv0", "nope0")
    assert (info.value.errno, info.value.operation, info.value.interface) == (
        errno.ENODEV, "create_macvlan", "nope0")
    assert ns.link_names() == {"lo"}


@pytest.mark.parametrize("call", [
    lambda h: h.create_macvlan("mv0", "br0", mode="bridgee"),
    lambda h: h.create_ipvlan("ip0", "br0", mode="l4"),
    lambda h: h.create_vlan("v0", "br0", 4095),
    lambda h: h.create_vxlan("vx0", 1, remote="198.51.100.1", group="239.1.1.1", dev="br0"),
    lambda h: h.create_vxlan("vx0", 1, group="239.1.1.1"),
    lambda h: h.create_vxlan("vx0", 1, remote="239.1.1.1"),
    lambda h: h.create_vxlan("vx0", 1, local="2001:db8::1", remote="198.51.100.1"),
    lambda h: h.create_macvlan("mv0", "br0", netns="/run/netns/x", pid=4242),
    lambda h: h.set_bridge("br0"),
    lambda h: h.create_macvlan("mv0", "br0", mode="bridge", nopromisc=True),
    lambda h: h.create_bridge("br1", ageing_time=float("inf")),
    lambda h: h.set_bridge("br0", ageing_time=float("nan")),
])
def test_bad_options_raise_value_error_before_anything_is_sent(ns, handle, monkeypatch, call):
    def refuse(*args, **kwargs):
        raise AssertionError("something was sent")
    monkeypatch.setattr(handle.socket, "exchange", refuse)
    with pytest.raises(ValueError):
        call(handle)


def test_a_bad_option_type_raises_type_error():
    with pytest.raises(TypeError):
        ops.make.create_macvlan("mv0", "br0", nopromisc="yes")     # type: ignore[arg-type]


# -- vxlan ---------------------------------------------------------------------------

def test_create_vxlan_makes_the_tunnel_ip_shows(ns, handle):
    handle.create_vxlan("vx0", 42, local="192.0.2.1", remote="198.51.100.2", learning=False,
                        ttl=5)
    data = info_data(ns, "vx0")
    assert {k: data[k] for k in ("id", "local", "remote", "port", "learning", "ttl")} == {
        "id": 42, "local": "192.0.2.1", "remote": "198.51.100.2", "port": 4789,
        "learning": False, "ttl": 5}
    assert handle.get_link("vx0").info == {"id": 42, "local": "192.0.2.1",
                                           "remote": "198.51.100.2", "port": 4789,
                                           "learning": False, "ttl": 5}


def test_a_vxlan_joins_an_ipv6_group_on_its_underlay_dev(ns, handle, br0):
    handle.create_vxlan("vx0", 7, group="ff05::7", dev="br0", dstport=8472)
    data = info_data(ns, "vx0")
    assert (data["group6"], data["link"], data["port"]) == ("ff05::7", "br0", 8472)
    info = handle.get_link("vx0").info
    assert (info["group6"], info["link"], info["port"]) == ("ff05::7", br0, 8472)


def test_dstport_zero_leaves_the_port_to_the_kernel_as_ip_without_dstport(ns, handle):
    handle.create_vxlan("vx0", 8, dstport=0)
    sh("ip", "-n", ns.name, "link", "add", "vx1", "type", "vxlan", "id", "9")
    assert info_data(ns, "vx0")["port"] == info_data(ns, "vx1")["port"]


# -- bridge options -----------------------------------------------------------------

def test_create_bridge_sets_its_options_in_the_creating_request(ns, handle):
    handle.create_bridge("br0", stp_state=True, mcast_snooping=False, ageing_time=20,
                         mcast_querier=True)
    data = info_data(ns, "br0")
    assert (data["stp_state"], data["mcast_snooping"], data["mcast_querier"]) == (1, 0, 1)
    assert abs(data["ageing_time"] - 2000) <= 1        # centiseconds, through jiffies


def test_set_bridge_changes_only_the_options_given(ns, handle, br0):
    before = info_data(ns, "br0")
    handle.set_bridge("br0", ageing_time=45.5, mcast_snooping=False)
    after = info_data(ns, "br0")
    assert abs(after["ageing_time"] - 4550) <= 1 and after["mcast_snooping"] == 0
    assert after["stp_state"] == before["stp_state"]
    info = handle.get_link("br0").info
    assert abs(info["ageing_time"] - 45.5) <= 0.01 and info["mcast_snooping"] is False


def test_vlan_filtering_is_set_or_refused_as_the_kernel_can(ns, handle, br0):
    probe = sh("ip", "-n", ns.name, "link", "set", "br0", "type", "bridge", "vlan_filtering",
               "1", check=False)
    sh("ip", "-n", ns.name, "link", "set", "br0", "type", "bridge", "vlan_filtering", "0",
       check=False)
    if probe.returncode == 0:
        handle.set_bridge("br0", vlan_filtering=True, vlan_default_pvid=7)
        data = info_data(ns, "br0")
        assert (data["vlan_filtering"], data["vlan_default_pvid"]) == (1, 7)
        return
    with pytest.raises(pn.NetlinkError) as info:
        handle.set_bridge("br0", vlan_filtering=True)
    assert (info.value.errno, info.value.operation, info.value.interface) == (
        errno.EOPNOTSUPP, "set_bridge", "br0")
    assert info_data(ns, "br0")["vlan_filtering"] == 0


# -- the kinds this kernel may lack -------------------------------------------------

LACKING = {
    "vlan": (["type", "vlan", "id", "100", "protocol", "802.1ad"], True,
             lambda x: x.create_vlan("k0", "br0", 100, protocol="802.1ad"),
             {"id": 100, "protocol": "802.1ad"}),
    "ipvlan": (["type", "ipvlan", "mode", "l3", "vepa"], True,
               lambda x: x.create_ipvlan("k0", "br0", mode="l3", flag="vepa"),
               {"mode": "l3", "flags": "vepa"}),
    "dummy": (["type", "dummy"], False, lambda x: x.create_dummy("k0"), None),
}


@pytest.mark.parametrize("kind", sorted(LACKING))
def test_the_request_carries_the_linkinfo_ip_sends(ns, br0, kind):
    argv, on_parent, call, _ = LACKING[kind]
    parent = ["link", "br0"] if on_parent else []
    [sent] = nk.ip_sent(["link", "add", *parent, "name", "k0", *argv], ns.name)
    ours = wire(call(ops.make), {"br0": br0})
    assert nk.kind_and_data(ours) == nk.kind_and_data(sent)
    assert nk.kind_and_data(ours)[0] == kind.encode()


@pytest.mark.parametrize("kind", sorted(LACKING))
def test_the_kind_is_made_or_refused_as_the_kernel_can(ns, handle, br0, kind):
    argv, on_parent, call, expected = LACKING[kind]
    try:
        call(handle)
    except pn.NetlinkError as e:
        assert (e.errno, e.operation, e.interface) == (errno.EOPNOTSUPP, f"create_{kind}", "k0")
        assert e.ext_ack        # the kernel's words: "Unknown device type"
        assert ns.link_names() == {"lo", "br0"}
        refused = sh("ip", "-n", ns.name, "link", "add", "k1", *argv, check=False)
        assert refused.returncode != 0          # ip is refused alike
        return
    link = ns.link("k0")
    assert link["linkinfo"]["info_kind"] == kind
    if expected is not None:
        assert {k: link["linkinfo"]["info_data"][k] for k in expected} == expected
        assert handle.get_link("k0").info == expected


# -- transactions, batches, the module level, the command ----------------------------

def test_a_transaction_rolls_back_a_macvlan_and_a_bridge_option(ns, handle, br0):
    ageing = info_data(ns, "br0")["ageing_time"]
    with pytest.raises(pn.BatchError):
        with handle.batch("rollback") as b:
            b.create_macvlan("mv0", "br0")
            b.set_bridge("br0", ageing_time=99, mcast_snooping=False)
            b.create_macvlan("mv1", "nope0")
    assert ns.link_names() == {"lo", "br0"}
    data = info_data(ns, "br0")
    assert abs(data["ageing_time"] - ageing) <= 1 and data["mcast_snooping"] == 1


def test_a_bridge_change_refused_part_way_is_undone_by_the_rollback(ns, handle, br0):
    """The kernel applies a bridge's options in its own order and stops at
    the first it refuses (this kernel has no VLAN filtering: ageing_time,
    applied first, stays); the rollback restores what it had changed.  On a
    kernel with VLAN filtering the change succeeds and the failing op after
    it makes the rollback undo it the same way."""
    ageing = info_data(ns, "br0")["ageing_time"]
    with pytest.raises(pn.BatchError):
        with handle.batch("rollback") as b:
            b.set_bridge("br0", ageing_time=99, vlan_filtering=True)
            b.create_macvlan("mv1", "nope0")
    data = info_data(ns, "br0")
    assert abs(data["ageing_time"] - ageing) <= 1 and data["vlan_filtering"] == 0
    first = b.results[0]
    # refused part-way: still the failure, undone (the option the kernel refuses whatever
    # its value was never changed: its restore's EOPNOTSUPP is its goal holding); else
    # rolled back
    assert (first.status, first.errno, first.detail) == ("failed", errno.EOPNOTSUPP, "") \
        or first.status == "rolled_back"


def test_a_transaction_refuses_a_link_born_in_another_namespace(handle, ns2):
    with pytest.raises(ValueError, match="cannot be part of a transaction"):
        handle.batch("rollback").create_macvlan("mv0", "br0", netns=ns2.path)


def test_a_batch_makes_every_kind_in_one_exchange(ns, handle, br0):
    with handle.batch() as b:
        b.create_macvlan("mv0", "br0").create_vxlan("vx0", 5, dev="br0")
        b.set_bridge("br0", stp_state=True)
    assert [r.status for r in b.results] == ["ok", "ok", "ok"]
    assert {"mv0", "vx0"} <= ns.link_names() and info_data(ns, "br0")["stp_state"] == 1


def test_the_module_level_makes_the_kinds_in_the_calling_threads_namespace(ns, br0):
    in_thread(pn.create_macvlan, "mv0", "br0", netns_path=ns.path)
    in_thread(lambda: pn.set_bridge("br0", ageing_time=12), netns_path=ns.path)
    links = in_thread(pn.list_links, netns_path=ns.path)
    [mv] = [link for link in links if link.name == "mv0"]
    assert (mv.kind, mv.link_index, mv.info["mode"]) == ("macvlan", br0, "bridge")
    assert abs(info_data(ns, "br0")["ageing_time"] - 1200) <= 1


def test_the_command_adds_the_kinds_and_shows_their_options(ns, br0):
    for argv in (["add-macvlan", "mv0", "br0", "--mode", "vepa"],
                 ["add-vxlan", "vx0", "11", "--remote", "198.51.100.9", "--dev", "br0"],
                 ["set-bridge", "br0", "--stp-state", "1"]):
        sh("pynetlink", "--netns", ns.path, "link", *argv)
    shown = json.loads(sh("pynetlink", "--netns", ns.path, "link", "show", "--json").stdout)
    data = {r["ifname"]: r["linkinfo"].get("info_data") for r in shown if "linkinfo" in r}
    assert data["mv0"]["mode"] == info_data(ns, "mv0")["mode"] == "vepa"
    assert data["vx0"]["link"] == info_data(ns, "vx0")["link"] == "br0"
    assert data["br0"]["stp_state"] == info_data(ns, "br0")["stp_state"] == 1
