"""get_stats / get_stats_many: the container's counters, checked against
``ip -s -j link`` of the host end (with rx and tx swapped)."""
from __future__ import annotations

import errno

import pytest

import pynetlink as pn
from conftest import in_thread, sh
from test_strategies import bridge, create, network, ping  # noqa: F401  (fixture)

pytestmark = pytest.mark.unit

COUNTERS = ("bytes", "packets", "errors", "dropped")


def ip_host_stats(ns, name: str) -> dict:
    """``ip -s -j link show NAME``: the host end's own stats64."""
    [link] = ns.ip("-s", "link", "show", "dev", name)
    return link["stats64"]


def as_container(host: dict) -> dict:
    """What the container sees: the host end's tx is its rx, and back."""
    return {f"rx_{c}": host["tx"][c] for c in COUNTERS} | {f"tx_{c}": host["rx"][c] for c in COUNTERS}


@pytest.fixture
def container(ns, ns2, bridge):  # noqa: F811
    """A container on the bridge, set up and with some traffic."""
    net = network()
    state = create(ns, net, netns=ns2.path)
    pn.Loopback().initialize(net, state, netns=ns2.path)
    pn.Veth().initialize(net, state, netns=ns2.path)
    ping(ns2, "192.0.2.1")
    return state


def bracketed(before: dict, got: pn.NetworkStats, after: dict) -> bool:
    """Every counter we read lies between ip's readings before and after
    (a stray IPv6 packet may arrive in between)."""
    return all(before[k] <= getattr(got, k) <= after[k] for k in before)


def test_get_stats_is_the_host_ends_counters_swapped(ns, container):
    before = as_container(ip_host_stats(ns, container.veth_host))
    got = in_thread(pn.get_stats, container, netns_path=ns.path)
    after = as_container(ip_host_stats(ns, container.veth_host))
    assert bracketed(before, got, after)
    assert got.tx_packets >= 2 and got.rx_packets >= 2          # the pings and their replies


def test_get_stats_with_a_handle(ns, container):
    with pn.Handle(netns=ns.path) as h:
        before = as_container(ip_host_stats(ns, container.veth_host))
        got = pn.get_stats(container, handle=h)
        after = as_container(ip_host_stats(ns, container.veth_host))
    assert bracketed(before, got, after)


def test_get_stats_of_an_empty_state_is_zeros():
    assert pn.get_stats(pn.NetworkState()) == pn.NetworkStats()


def test_get_stats_of_a_missing_host_end_raises_enodev(ns):
    with pytest.raises(OSError) as info:
        in_thread(pn.get_stats, pn.NetworkState(veth_host="gone0"), netns_path=ns.path)
    assert info.value.errno == errno.ENODEV
    assert "gone0" in str(info.value)


def test_get_stats_many_reads_every_container_in_one_dump(ns, ns2, container):
    states = [container, pn.NetworkState(), pn.NetworkState(veth_host="gone0"), container]
    before = as_container(ip_host_stats(ns, container.veth_host))
    got = in_thread(pn.get_stats_many, states, netns_path=ns.path)
    after = as_container(ip_host_stats(ns, container.veth_host))
    assert len(got) == 4
    assert bracketed(before, got[0], after) and bracketed(before, got[3], after)
    assert got[1] == pn.NetworkStats()
    assert got[2] is None


def test_list_links_matches_ip(ns, container):
    with pn.Handle(netns=ns.path) as h:
        links = h.list_links()
    assert {(l.name, l.index) for l in links} == {(l["ifname"], l["ifindex"]) for l in ns.ip("link", "show")}


def test_list_links_of_many_links_spans_many_datagrams(ns):
    with pn.Handle(netns=ns.path) as h:
        for i in range(300):
            h.create_veth_pair(f"many{i}", f"many{i}p")
        links = h.list_links()
    assert len(links) == 601 and all(l.stats is not None for l in links)
