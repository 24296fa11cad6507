"""get_stats / get_stats_many: the container's counters, from known one-way
traffic, checked exactly and against ``ip -s -j link`` of the host end (with
rx and tx swapped)."""
from __future__ import annotations

import errno
import socket

import pytest

import pynetlink as pn
from conftest import in_thread, sh

pytestmark = pytest.mark.unit

COUNTERS = ("bytes", "packets", "errors", "dropped")

# Known one-way traffic: raw Ethernet frames of a local experimental EtherType (IEEE 802,
# 0x88B5), which no stack answers, between the ends of a veth with IPv6 disabled (no DAD,
# router or multicast listener messages) and no IPv4 address (no ARP): the counters hold
# these frames and nothing else.
ETHERTYPE = 0x88B5
FRAME = 142                         # bytes on the wire, Ethernet header included
TO_HOST, TO_CONTAINER = 37, 11      # frames each way: different, so a swap shows
# The receiving device counts a frame that no protocol takes as dropped as well: the host
# end's rx_dropped (the container's tx_dropped) is TO_HOST.
EXPECTED = pn.NetworkStats(rx_packets=TO_CONTAINER, rx_bytes=TO_CONTAINER * FRAME,
                           tx_packets=TO_HOST, tx_bytes=TO_HOST * FRAME, tx_dropped=TO_HOST)


def ip_host_stats(ns, name: str) -> dict:
    """``ip -s -j link show NAME``: the host end's own stats64."""
    [link] = ns.ip("-s", "link", "show", "dev", name)
    return link["stats64"]


def as_container(host: dict) -> pn.NetworkStats:
    """What the container sees: the host end's tx is its rx, and back."""
    return pn.NetworkStats(**{f"rx_{c}": host["tx"][c] for c in COUNTERS},
                           **{f"tx_{c}": host["rx"][c] for c in COUNTERS})


def send_frames(ifname: str, count: int) -> None:
    """``count`` broadcast frames of FRAME bytes out of ``ifname`` (in the
    calling thread's namespace)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((ifname, 0))
        header = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETHERTYPE.to_bytes(2, "big")
        for i in range(count):
            assert s.send(header + bytes([i]) * (FRAME - len(header))) == FRAME


@pytest.fixture
def quiet(ns):
    """A veth in ``ns`` (host end ``vh0``, container end ``vc0``), both up,
    IPv6 disabled, no address; TO_HOST frames sent from vc0 to vh0 and
    TO_CONTAINER from vh0 to vc0.  Its NetworkState."""
    ns.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "-n", ns.name, "link", "add", "vh0", "type", "veth", "peer", "name", "vc0")
    sh("ip", "-n", ns.name, "link", "set", "vh0", "up")
    sh("ip", "-n", ns.name, "link", "set", "vc0", "up")
    in_thread(send_frames, "vc0", TO_HOST, netns_path=ns.path)
    in_thread(send_frames, "vh0", TO_CONTAINER, netns_path=ns.path)
    return pn.NetworkState(veth_host="vh0", veth_child="vc0")


def test_known_traffic_is_all_ip_counts_on_the_host_end(ns, quiet):
    """The fixture's premise, judged by iproute2 alone: our frames, nothing else."""
    assert as_container(ip_host_stats(ns, "vh0")) == EXPECTED


def test_get_stats_is_the_host_ends_counters_swapped(ns, quiet):
    assert in_thread(pn.get_stats, quiet, netns_path=ns.path) == EXPECTED


def test_get_stats_with_a_handle(ns, quiet):
    with pn.Handle(netns=ns.path) as h:
        assert pn.get_stats(quiet, handle=h) == EXPECTED


def test_get_stats_of_an_empty_state_is_zeros():
    assert pn.get_stats(pn.NetworkState()) == pn.NetworkStats()


def test_get_stats_of_a_missing_host_end_raises_enodev(ns):
    with pytest.raises(OSError) as info:
        in_thread(pn.get_stats, pn.NetworkState(veth_host="gone0"), netns_path=ns.path)
    assert info.value.errno == errno.ENODEV
    assert "gone0" in str(info.value)


def test_get_stats_many_reads_every_container_in_one_dump(ns, quiet):
    states = [quiet, pn.NetworkState(), pn.NetworkState(veth_host="gone0"), quiet]
    got = in_thread(pn.get_stats_many, states, netns_path=ns.path)
    assert got == [EXPECTED, pn.NetworkStats(), None, EXPECTED]


def test_list_links_matches_ip(ns, quiet):
    with pn.Handle(netns=ns.path) as h:
        links = h.list_links()
    assert {(l.name, l.index) for l in links} == {(l["ifname"], l["ifindex"]) for l in ns.ip("link", "show")}


def test_list_links_of_many_links_spans_many_datagrams(ns):
    with pn.Handle(netns=ns.path) as h:
        for i in range(300):
            h.create_veth_pair(f"many{i}", f"many{i}p")
        links = h.list_links()
    assert len(links) == 601 and all(l.stats is not None for l in links)
