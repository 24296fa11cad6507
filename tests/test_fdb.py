"""Forwarding entries (``add_fdb``, ``append_fdb``, ``replace_fdb``,
``delete_fdb``, ``list_fdb``) on a vxlan device and a bridge port: judged
with ``bridge -j fdb show`` in scratch namespaces (devices made with ``ip``)."""
from __future__ import annotations

import errno
import json
import time

import pytest

from conftest import sh
from pynetlink import BatchError, NetlinkError, ops
from test_neighbours import cli

pytestmark = pytest.mark.unit       # for the tests that take no namespace

ZERO = "00:00:00:00:00:00"


@pytest.fixture
def vx(ns, handle):
    """vx0: a vxlan device (VNI 42, port 4789, no learning), up."""
    sh("ip", "-n", ns.name, "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789",
       "nolearning")
    sh("ip", "-n", ns.name, "link", "set", "vx0", "up")
    return "vx0"


@pytest.fixture
def port(ns, handle, veth):
    """va: a port of bridge br0."""
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "link", "set", "va", "master", "br0")
    return "va"


def fdb(ns, *args: str) -> list:
    """``bridge -j fdb show ARGS``."""
    out = sh("bridge", "-n", ns.name, "-j", "fdb", "show", *args).stdout
    return json.loads(out) if out.strip() else []


def entries_of(ns, mac: str, *args: str) -> list:
    return [e for e in fdb(ns, *args) if e["mac"] == mac]


def test_add_fdb_sends_a_mac_to_a_remote_vtep(ns, handle, vx):
    handle.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2", vni=7, port=4790)
    [entry] = entries_of(ns, "02:00:00:00:00:01", "dev", vx)
    assert (entry["dst"], entry["vni"], entry["port"], entry["flags"], entry["state"]) == \
        ("198.51.100.2", 7, 4790, ["self"], "permanent")


def test_add_fdb_twice_is_eexist(handle, vx):
    handle.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2")
    with pytest.raises(FileExistsError):
        handle.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2")


def test_append_fdb_lists_every_remote_of_the_default_destination(ns, handle, vx):
    for remote in ("198.51.100.1", "198.51.100.2", "198.51.100.3"):
        handle.append_fdb(ZERO, vx, dst=remote)
    assert sorted(e["dst"] for e in entries_of(ns, ZERO, "dev", vx)) == \
        ["198.51.100.1", "198.51.100.2", "198.51.100.3"]


def test_delete_fdb_with_dst_removes_that_remote_only(ns, handle, vx):
    handle.append_fdb(ZERO, vx, dst="198.51.100.1")
    handle.append_fdb(ZERO, vx, dst="198.51.100.2")
    handle.delete_fdb(ZERO, vx, dst="198.51.100.1")
    assert [e["dst"] for e in entries_of(ns, ZERO, "dev", vx)] == ["198.51.100.2"]


def test_replace_fdb_moves_a_mac_to_another_vtep(ns, handle, vx):
    handle.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2")
    handle.replace_fdb("02:00:00:00:00:01", vx, dst="198.51.100.3")
    assert [e["dst"] for e in entries_of(ns, "02:00:00:00:00:01", "dev", vx)] == ["198.51.100.3"]


def test_ipv6_remote_on_an_ipv6_vxlan(ns, handle):
    sh("ip", "-n", ns.name, "link", "add", "vx6", "type", "vxlan", "id", "43", "dstport", "4789",
       "local", "2001:db8::1")
    handle.add_fdb("02:00:00:00:00:06", "vx6", dst="2001:db8::2")
    assert [e["dst"] for e in entries_of(ns, "02:00:00:00:00:06", "dev", "vx6")] == ["2001:db8::2"]
    assert [n.dst for n in handle.list_fdb("vx6") if n.lladdr == "02:00:00:00:00:06"] == \
        ["2001:db8::2"]


def test_ipv6_remote_on_an_ipv4_vxlan_is_the_kernels_eafnosupport(ns, handle, vx):
    with pytest.raises(NetlinkError) as e:
        handle.add_fdb("02:00:00:00:00:01", vx, dst="2001:db8::2")
    assert (e.value.errno, e.value.operation, e.value.interface) == \
        (errno.EAFNOSUPPORT, "add_fdb", vx)
    assert not entries_of(ns, "02:00:00:00:00:01", "dev", vx)


def test_add_fdb_master_goes_in_the_bridges_table(ns, handle, port):
    handle.add_fdb("02:00:00:00:00:05", port, master=True, state="static")
    [entry] = entries_of(ns, "02:00:00:00:00:05", "dev", port)
    assert (entry["master"], entry["state"], entry["flags"]) == ("br0", "static", [])
    handle.delete_fdb("02:00:00:00:00:05", port, master=True)
    assert not entries_of(ns, "02:00:00:00:00:05", "dev", port)


def test_replace_fdb_master_changes_the_bridge_entrys_state(ns, handle, port):
    handle.add_fdb("02:00:00:00:00:05", port, master=True, state="static")
    handle.replace_fdb("02:00:00:00:00:05", port, master=True, state="permanent")
    assert [e["state"] for e in entries_of(ns, "02:00:00:00:00:05", "dev", port)] == ["permanent"]


def test_delete_missing_fdb_entry_is_enoent(handle, vx):
    with pytest.raises(NetlinkError) as e:
        handle.delete_fdb("02:00:00:00:00:01", vx)
    assert (e.value.errno, e.value.operation, e.value.interface) == (errno.ENOENT, "delete_fdb", vx)


def _bridge_view(e: dict) -> tuple:
    return (e["mac"], e["ifname"], e.get("dst"), e.get("vni"), e.get("port"), e.get("vlan"),
            e["flags"], e.get("master"), e["state"] or "dynamic")


def _our_view(n) -> tuple:
    return (n.lladdr, n.dev, n.dst, n.vni, n.port, n.vlan, n.flag_names, n.master, n.fdb_state)


def test_list_fdb_is_what_bridge_fdb_show_lists(ns, handle, vx, port):
    handle.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2", vni=7)
    handle.append_fdb(ZERO, vx, dst="198.51.100.1")
    handle.add_fdb("02:00:00:00:00:05", port, master=True, state="static")
    assert sorted(map(_our_view, handle.list_fdb())) == sorted(map(_bridge_view, fdb(ns)))
    assert sorted(map(_our_view, handle.list_fdb(vx))) == \
        sorted(_bridge_view({**e, "ifname": vx}) for e in fdb(ns, "dev", vx))
    assert sorted(map(_our_view, handle.list_fdb(master="br0"))) == \
        sorted(map(_bridge_view, fdb(ns, "br", "br0")))


def test_thousands_of_fdb_entries_in_one_batch_under_three_seconds(ns, handle, vx):
    start = time.monotonic()
    with handle.batch() as b:
        for i in range(3000):
            b.add_fdb(f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", vx,
                      dst=f"198.51.100.{i % 250 + 1}")
    assert time.monotonic() - start < 3
    assert len(fdb(ns, "dev", vx)) == 3000


def test_transaction_rolls_added_and_appended_entries_back(ns, handle, vx):
    handle.append_fdb(ZERO, vx, dst="198.51.100.1")
    with pytest.raises(BatchError) as e:
        with handle.batch("rollback") as b:
            b.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2")
            b.append_fdb(ZERO, vx, dst="198.51.100.3")
            b.add_fdb("02:00:00:00:00:01", vx, dst="198.51.100.2")          # EEXIST
    assert [r.status for r in e.value.results] == ["rolled_back", "rolled_back", "failed"]
    assert [(x["mac"], x["dst"]) for x in fdb(ns, "dev", vx)] == [(ZERO, "198.51.100.1")]


@pytest.mark.parametrize("kwargs, error", [
    ({"mac": "02:00:00:00:00"}, ValueError),                   # 5 bytes
    ({"mac": "02:00:00:00:00:00:00:00"}, ValueError),          # not Ethernet
    ({"mac": 42}, TypeError),
    ({"dev": "bad dev"}, ValueError),
    ({"dst": "198.51.100.300"}, ValueError),
    ({"vni": 2**24}, ValueError),
    ({"vni": -1}, ValueError),
    ({"port": 0}, ValueError),
    ({"port": 65536}, ValueError),
    ({"vlan": 4095}, ValueError),
    ({"vlan": "5"}, TypeError),
    ({"master": "yes"}, TypeError),
    ({"state": "reachable"}, ValueError),                       # a neighbour's, not an FDB's
])
def test_bad_fdb_entry_is_refused_before_anything_is_sent(kwargs, error):
    args = {"mac": "02:00:00:00:00:01", "dev": "vx0", **kwargs}
    with pytest.raises(error):
        ops.make.add_fdb(args.pop("mac"), args.pop("dev"), **args)


def test_append_fdb_without_dst_is_refused():
    with pytest.raises(ValueError):
        ops.make.append_fdb(ZERO, "vx0", dst=None)      # type: ignore[arg-type]


def test_cli_fdb_append_show_del(ns, vx):
    done = cli("--netns", ns.path, "fdb", "append", ZERO, vx, "--dst", "198.51.100.1")
    assert done.returncode == 0, done.stderr
    cli("--netns", ns.path, "fdb", "add", "02:00:00:00:00:01", vx, "--dst", "198.51.100.2",
        "--vni", "7", "--port", "4790")
    shown = json.loads(cli("--netns", ns.path, "fdb", "show", "--json").stdout)
    assert shown == fdb(ns)
    assert cli("--netns", ns.path, "fdb", "del", ZERO, vx, "--dst", "198.51.100.1").returncode == 0
    assert not entries_of(ns, ZERO, "dev", vx)
