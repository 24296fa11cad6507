"""Neighbour entries (ARP/NDP: ``add_neighbour``, ``replace_neighbour``,
``delete_neighbour``, ``list_neighbours``): judged with ``ip -j neigh show``
in scratch namespaces."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time

import pytest

import pynetlink
from pynetlink import BatchError, NetlinkError, ops

pytestmark = pytest.mark.unit       # for the tests that take no namespace


@pytest.fixture
def link(ns, handle, veth):
    """va up (its neighbours are kept), vb up."""
    handle.set_link("vb", up=True)
    handle.set_link("va", up=True)
    return "va"


def neigh_of(ns, dst: str, *args: str) -> dict:
    """``ip -j neigh show`` of DST (KeyError if absent)."""
    for entry in ns.ip("neigh", "show", *args) or []:
        if entry["dst"] == dst:
            return entry
    raise KeyError(dst)


def test_add_neighbour_is_permanent_by_default(ns, handle, link):
    handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
    entry = neigh_of(ns, "192.0.2.9")
    assert (entry["dev"], entry["lladdr"], entry["state"]) == (link, "02:00:00:00:00:09",
                                                                ["PERMANENT"])


def test_add_neighbour_ipv6_reachable_router(ns, handle, link):
    handle.add_neighbour("2001:db8::9", "02:00:00:00:00:0a", link, state="reachable", router=True)
    entry = neigh_of(ns, "2001:db8::9")
    assert entry["state"] == ["REACHABLE"] and "router" in entry


def test_add_neighbour_twice_is_eexist(handle, link):
    handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
    with pytest.raises(FileExistsError):
        handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)


def test_replace_neighbour_changes_its_lladdr_and_state(ns, handle, link):
    handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
    handle.replace_neighbour("192.0.2.9", "02:00:00:00:00:0b", link, state="stale")
    entry = neigh_of(ns, "192.0.2.9")
    assert (entry["lladdr"], entry["state"]) == ("02:00:00:00:00:0b", ["STALE"])


def test_delete_neighbour_removes_it(ns, handle, link):
    handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
    handle.delete_neighbour("192.0.2.9", link)
    with pytest.raises(KeyError):
        neigh_of(ns, "192.0.2.9")


def test_delete_missing_neighbour_is_enoent_naming_the_operation_and_link(handle, link):
    with pytest.raises(NetlinkError) as e:
        handle.delete_neighbour("192.0.2.77", link)
    assert (e.value.errno, e.value.operation, e.value.interface) == \
        (errno.ENOENT, "delete_neighbour", link)


def test_neighbour_on_missing_link_is_enodev(handle, link):
    with pytest.raises(NetlinkError) as e:
        handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", "nosuch0")
    assert (e.value.errno, e.value.interface) == (errno.ENODEV, "nosuch0")


def _ip_view(entry: dict) -> tuple:
    return entry["dst"], entry["dev"], entry.get("lladdr"), entry["state"], "router" in entry


def _our_view(n) -> tuple:
    return n.dst, n.dev, n.lladdr, n.states, n.router


def both_views(ns, ours, *ip_args: str) -> tuple:
    """(our listing, ip's) taken while ip's did not change (the kernel adds
    multicast entries of its own as a link comes up): bounded retries."""
    for _ in range(20):
        before = sorted(map(_ip_view, ns.ip("neigh", "show", *ip_args) or []))
        found = sorted(map(_our_view, ours()))
        if before == sorted(map(_ip_view, ns.ip("neigh", "show", *ip_args) or [])):
            return found, before
        time.sleep(0.05)
    raise AssertionError("ip neigh show kept changing")


def test_list_neighbours_is_what_ip_neigh_show_lists(ns, handle, link):
    handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
    handle.add_neighbour("192.0.2.10", None, link, state="noarp")
    handle.add_neighbour("2001:db8::9", "02:00:00:00:00:0a", link, state="stale", router=True)
    ours, ips = both_views(ns, handle.list_neighbours)
    assert ours == ips and len(ours) == 2
    ours, ips = both_views(ns, lambda: handle.list_neighbours(noarp=True), "nud", "all")
    assert ours == ips and ("192.0.2.10", link, "ff:ff:ff:ff:ff:ff", ["NOARP"], False) in ours


def test_list_neighbours_of_one_link_and_family(ns, handle, link):
    handle.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
    handle.add_neighbour("2001:db8::9", "02:00:00:00:00:0a", link)
    handle.add_neighbour("192.0.2.11", "02:00:00:00:00:0b", "vb")
    found = handle.list_neighbours(link, family=6)
    assert [(n.family, n.dst, n.ifindex) for n in found] == \
        [("inet6", "2001:db8::9", handle.link_index(link))]
    assert [n.dst for n in handle.list_neighbours("vb")] == ["192.0.2.11"]


def test_proxy_entries_are_added_listed_and_deleted(ns, handle, link):
    handle.add_neighbour("192.0.2.5", None, link, proxy=True)
    handle.add_neighbour("2001:db8::5", None, link, proxy=True)
    handle.add_neighbour("192.0.2.6", "02:00:00:00:00:06", link)
    assert sorted((n.dst, n.dev, n.proxy) for n in handle.list_neighbours(proxy=True)) == \
        sorted((e["dst"], e["dev"], "proxy" in e) for e in ns.ip("neigh", "show", "proxy"))
    assert [n.dst for n in handle.list_neighbours(link)] == ["192.0.2.6"]
    handle.delete_neighbour("192.0.2.5", link, proxy=True)
    assert [e["dst"] for e in ns.ip("neigh", "show", "proxy")] == ["2001:db8::5"]


def test_proxy_entry_with_an_lladdr_is_refused():
    with pytest.raises(ValueError, match="proxy"):
        ops.make.add_neighbour("192.0.2.5", "02:00:00:00:00:05", "va", proxy=True)


def test_thousands_of_neighbours_in_one_batch(ns, handle, link):
    with handle.batch() as b:
        for i in range(2000):
            b.add_neighbour(f"198.51.{100 + i // 256}.{i % 256}",
                            f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", link)
    assert len(ns.ip("neigh", "show", "dev", link)) == 2000


def test_transaction_rolls_an_added_neighbour_back(ns, handle, link):
    with pytest.raises(BatchError) as e:
        with handle.batch("rollback") as b:
            b.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)
            b.add_neighbour("192.0.2.9", "02:00:00:00:00:09", link)     # EEXIST
    assert [r.status for r in e.value.results] == ["rolled_back", "failed"]
    assert not ns.ip("neigh", "show", "dev", link)


@pytest.mark.parametrize("method", ["replace_neighbour", "delete_neighbour"])
def test_transaction_refuses_what_it_could_not_undo(handle, method):
    b = handle.batch("rollback")
    args = ("192.0.2.9", "02:00:00:00:00:09", "va") if method.startswith("replace") else \
        ("192.0.2.9", "va")
    with pytest.raises(ValueError, match="cannot be part of a transaction"):
        getattr(b, method)(*args)


@pytest.mark.parametrize("args, kwargs, error", [
    (("192.0.2.300", "02:00:00:00:00:09", "va"), {}, ValueError),
    (("192.0.2.9/24", "02:00:00:00:00:09", "va"), {}, ValueError),
    ((42, "02:00:00:00:00:09", "va"), {}, TypeError),
    (("192.0.2.9", "02:00:00:00:00:0g", "va"), {}, ValueError),
    (("192.0.2.9", b"\x02\0\0\0\0\x09", "va"), {}, TypeError),
    (("192.0.2.9", "02:00:00:00:00:09", "v/a"), {}, ValueError),
    (("192.0.2.9", "02:00:00:00:00:09", "va"), {"state": "sleepy"}, ValueError),
    (("192.0.2.9", "02:00:00:00:00:09", "va"), {"state": 128}, TypeError),
    (("192.0.2.9", "02:00:00:00:00:09", "va"), {"router": 1}, TypeError),
])
def test_bad_neighbour_is_refused_before_anything_is_sent(args, kwargs, error):
    with pytest.raises(error):
        ops.make.add_neighbour(*args, **kwargs)       # validated as the op is made


@pytest.mark.parametrize("kwargs", [{"proxy": "yes"}, {"noarp": 1}])
def test_a_listing_with_a_bad_flag_is_refused_before_anything_is_sent(ns, handle, monkeypatch,
                                                                      kwargs):
    def refuse(*args, **kw):
        raise AssertionError("something was sent")
    monkeypatch.setattr(handle.socket, "exchange", refuse)
    monkeypatch.setattr(handle.socket, "dump", refuse)
    with pytest.raises(TypeError):
        handle.list_neighbours("nope", **kwargs)


def test_module_level_names_are_the_default_handles_operations():
    for name in ("add_neighbour", "replace_neighbour", "delete_neighbour", "list_neighbours",
                 "add_fdb", "append_fdb", "replace_fdb", "delete_fdb", "list_fdb"):
        assert name in pynetlink.__all__ and callable(getattr(pynetlink, name))
    assert pynetlink.Neighbour._fields[:5] == ("family", "ifindex", "dev", "dst", "lladdr")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pynetlink", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ})


def test_cli_neigh_add_show_del(ns, link):
    done = cli("--netns", ns.path, "neigh", "add", "192.0.2.9", link, "--lladdr",
               "02:00:00:00:00:09", "--nud", "reachable")
    assert done.returncode == 0, done.stderr
    shown = json.loads(cli("--netns", ns.path, "neigh", "show", "--json").stdout)
    assert shown == ns.ip("neigh", "show")
    assert cli("--netns", ns.path, "neigh", "del", "192.0.2.9", link).returncode == 0
    assert not ns.ip("neigh", "show", "dev", link)


def test_cli_neigh_proxy_show_is_ip_neigh_show_proxy(ns, link):
    done = cli("--netns", ns.path, "neigh", "add", "192.0.2.5", link, "--proxy")
    assert done.returncode == 0, done.stderr
    shown = json.loads(cli("--netns", ns.path, "neigh", "show", "--proxy", "--json").stdout)
    assert shown == ns.ip("neigh", "show", "proxy") == [{"dst": "192.0.2.5", "dev": link,
                                                         "proxy": None}]


def test_cli_neigh_del_of_missing_entry_fails_with_enoent(ns, link):
    done = cli("--netns", ns.path, "neigh", "del", "192.0.2.9", link)
    assert done.returncode == 1 and "ENOENT" in done.stderr
