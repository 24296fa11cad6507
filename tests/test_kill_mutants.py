"""Behaviour that a deliberate bug in the code would break and that no other
test pinned down (see ``tools/mutants``, which runs each of these against
the bug it names): hairpin read back and rolled back, the flags a link keeps
when it goes up, exact counters of known one-way traffic, the order of a
rollback, the documented default timeout.  The kernel is judged with ``ip -j``."""
from __future__ import annotations

import errno
import socket

import pytest

import pynetlink as pn
from pynetlink import batch
from conftest import in_thread, sh
from test_faults import getlink_without_ack
from test_faults_kernel import _send_raw, getlink


def ip(ns, *args: str) -> None:
    sh("ip", "-n", ns.name, *args)


@pytest.fixture
def port(ns, handle, veth):
    """va, a port of bridge br0 (hairpin off), its peer vb; both down."""
    ip(ns, "link", "add", "br0", "type", "bridge")
    ip(ns, "link", "set", "va", "master", "br0")
    return "va"


def port_data(ns, name: str) -> dict:
    """``ip -d -j link show NAME``'s bridge-port data, without its timers
    (which run by themselves)."""
    data = ns.link(name)["linkinfo"]["info_slave_data"]
    return {k: v for k, v in data.items() if not k.endswith("_timer")}


# -- hairpin ---------------------------------------------------------------------------

@pytest.mark.parametrize("on", [True, False])
def test_get_link_reads_back_hairpin_set_on_and_off(ns, handle, port, on):
    handle.set_hairpin(port, True)
    handle.set_hairpin(port, on)
    assert ns.link(port)["linkinfo"]["info_slave_data"]["hairpin"] is on
    assert handle.get_link(port).hairpin is on


def test_a_rollback_puts_hairpin_back_as_ip_d_shows_it(ns, handle, port):
    before = port_data(ns, port)
    assert before["hairpin"] is False
    b = handle.batch("rollback")
    b.set_hairpin(port, True)
    b.set_mtu("vb", 10)                                     # refused: below the minimum
    results = b.run()
    assert [r.status for r in results] == ["rolled_back", "failed"]
    assert port_data(ns, port) == before


# -- flags -----------------------------------------------------------------------------

def test_set_link_up_keeps_multicast_and_broadcast_as_ip_shows(ns, handle, veth):
    before = set(ns.link("va")["flags"])
    assert {"BROADCAST", "MULTICAST"} <= before and "UP" not in before
    handle.set_link("va", up=True)
    after = set(ns.link("va")["flags"])
    assert after - {"LOWER_UP", "NO-CARRIER"} == (before | {"UP"}) - {"LOWER_UP", "NO-CARRIER"}


# -- counters --------------------------------------------------------------------------

FRAMES, FRAME_LEN = 7, 64
ETH_P_LOCAL_EXPERIMENTAL = 0x88B5      # IEEE 802 local experimental EtherType


def send_frames(name: str) -> None:
    """FRAMES broadcast frames of FRAME_LEN bytes out of NAME (a packet socket)."""
    frame = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + ETH_P_LOCAL_EXPERIMENTAL.to_bytes(2, "big")
    frame += bytes(FRAME_LEN - len(frame))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((name, 0))
        for _ in range(FRAMES):
            assert s.send(frame) == FRAME_LEN


def ip_counters(ns, name: str) -> dict:
    stats = ns.ip("-s", "link", "show", "dev", name)[0]["stats64"]
    return {f"{d}_{k}": stats[d][k] for d in ("rx", "tx") for k in ("bytes", "packets")}


def test_link_counters_of_one_way_traffic_are_exactly_what_ip_shows(ns, handle, veth):
    """No IPv6 and no IPv4 address: the frames sent are the only traffic."""
    ns.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.va.disable_ipv6=1",
           "net.ipv6.conf.vb.disable_ipv6=1")
    ip(ns, "link", "set", "vb", "up")
    ip(ns, "link", "set", "va", "up")
    in_thread(send_frames, "va", netns_path=ns.path)
    stats = handle.get_link("va").stats
    ours = {k: getattr(stats, k) for k in ("rx_bytes", "rx_packets", "tx_bytes", "tx_packets")}
    assert ours == ip_counters(ns, "va") == {"rx_bytes": 0, "rx_packets": 0,
                                             "tx_bytes": FRAMES * FRAME_LEN, "tx_packets": FRAMES}


# -- rollback order --------------------------------------------------------------------

def test_a_rollback_undoes_the_last_change_first(ns, handle, veth):
    """Two MTU changes of one link: undone last first, the first MTU is back."""
    before = ns.link("va")["mtu"]
    b = handle.batch("rollback")
    b.set_mtu("va", 1400)
    b.set_mtu("va", 1300)
    b.set_mtu("vb", 10)                                     # refused: below the minimum
    assert [r.status for r in b.run()] == ["rolled_back", "rolled_back", "failed"]
    assert ns.link("va")["mtu"] == before


def test_an_undo_that_finds_its_address_already_gone_has_succeeded(ns, handle, veth, monkeypatch):
    """Someone else deletes the address between the failure and the undo:
    the kernel's EADDRNOTAVAIL says the undo's goal holds."""
    real_undo = batch._Run.undo

    def address_gone_first(run, undos):
        ip(ns, "addr", "del", "192.0.2.10/24", "dev", "va")
        real_undo(run, undos)

    monkeypatch.setattr(batch._Run, "undo", address_gone_first)
    b = handle.batch("rollback")
    b.set_interface_ip("va", "192.0.2.10/24")
    b.set_mtu("vb", 10)                                     # refused: below the minimum
    assert [r.status for r in b.run()] == ["rolled_back", "failed"]
    assert ns.addresses("va") == []


# -- sequence numbers -------------------------------------------------------------------

def test_a_late_refusal_of_a_timed_out_request_is_not_taken_for_the_next_answer(ns, veth):
    """The timed-out request's number is read off the request as it was
    encoded (not from the library's counter); a late ENODEV carrying it
    waits in the socket, and the next operations get their own answers."""
    carried = []
    unacked = getlink_without_ack(b"va")

    def encode(buf, seq):
        carried.append(seq)
        return unacked.encode(buf, seq)
    with pn.Handle(netns=ns.path, timeout=0.2) as h:
        with pytest.raises(OSError) as info:
            h.socket.exchange([unacked._replace(encode=encode)])
        assert info.value.errno == errno.ETIMEDOUT
        _send_raw(h, getlink("nosuch0", carried[0]))    # its late "answer": ENODEV
        assert h.get_link("vb").name == "vb"
        h.interface_up("vb")
    assert "UP" in ns.link("vb")["flags"]


# -- the documented default timeout ----------------------------------------------------

def test_a_handle_waits_five_seconds_by_default(ns):
    with pn.Handle(netns=ns.path) as h:
        assert h.timeout == 5.0
