"""README "Batches, transactions, bulk setup": what goes on the wire, what a
lost exchange leaves in the results, what a refused or lost undo reports,
and the bulk path's shape (container ends born as eth0, chunks of 16, two
exchanges per container, nothing sent for bad input).  Messages are read with ``Wire`` (see
test_readme_claims.py); kernel state with ``ip -j``."""
from __future__ import annotations

import errno
import os
import subprocess

import nlwire
import pytest

import pynetlink as pn
from conftest import sh
from nlwire import C
from pynetlink import batch
from pynetlink.batch import FAILED, OK, ROLLBACK_FAILED, SKIPPED, UNKNOWN
from test_readme_claims import ifname, name_of, wire  # noqa: F401  (fixture)
from test_strategies import bridge  # noqa: F401  (fixture)


def make_bridges(ns, count: int) -> list:
    names = [f"ob{i}" for i in range(count)]
    subprocess.run(["ip", "-n", ns.name, "-batch", "-"], check=True, capture_output=True, timeout=60,
                   text=True, input="".join(f"link add {n} type bridge\n" for n in names))
    return names


def mtus(ns) -> dict:
    return {link["ifname"]: link["mtu"] for link in ns.ip("link", "show")}


def window_sizes(wire) -> list:
    return [len(s.messages) for s in wire.sends if s.kind == "transact"]


# -- pipelining ----------------------------------------------------------------------------------

def test_a_batch_sends_up_to_64_requests_per_send(ns, handle, wire):
    names = make_bridges(ns, 130)
    with handle.batch() as b:
        for name in names:
            b.set_mtu(name, 1400)
    assert window_sizes(wire) == [64, 64, 2]
    now = mtus(ns)
    assert {now[n] for n in names} == {1400}


def test_stop_mode_sends_one_request_at_a_time(ns, handle, wire):
    names = make_bridges(ns, 3)
    with handle.batch("stop") as b:
        for name in names:
            b.set_mtu(name, 1400)
    assert window_sizes(wire) == [1, 1, 1]


def test_a_transaction_reads_a_link_in_the_same_send_as_its_change(ns, handle, wire):
    [name] = make_bridges(ns, 1)
    with handle.batch("rollback") as b:
        b.interface_up(name)
    [send] = wire.sends
    assert [name_of(m) for m in send.messages] == ["RTM_GETLINK", "RTM_SETLINK"]
    assert [ifname(m) for m in send.messages] == [name.encode()] * 2


def test_a_lookup_rides_in_the_same_send_after_what_was_queued(ns, handle, wire):
    """"Operations that need an ifindex may name links made earlier in the
    same batch": the pair, then its lookup, in one send."""
    with handle.batch() as b:
        b.create_veth_pair("t0", "t1")
        b.set_interface_ip("t0", "192.0.2.7/24")
    assert [[name_of(m) for m in s.messages] for s in wire.sends] == [
        ["RTM_NEWLINK", "RTM_GETLINK"], ["RTM_NEWADDR"]]
    assert ("192.0.2.7", 24) in {(a["local"], a["prefixlen"]) for a in ns.addresses("t0")}


# -- a lost exchange: timeouts --------------------------------------------------------------------

def answers_lost_after(keep: int):
    """A pn_transact whose window is sent and answered, but of which only
    the first ``keep`` answers are read before the deadline: the rest are
    pending, and the call reports ETIMEDOUT, as on a real timeout."""
    def transact(real, fd, portid, buf, first, count, window, timeout_ms, results, *rest):
        rc = real.pn_transact(fd, portid, buf, first, count, window, timeout_ms, results, *rest)
        assert rc == 0
        for i in range(keep, count):
            results[i].error = real.PN_PENDING
        return -errno.ETIMEDOUT
    return transact


def nothing_answered(real, fd, portid, buf, first, count, window, timeout_ms, results, *rest):
    """A pn_transact that times out before anything is sent: every answer pending."""
    for i in range(count):
        results[i].error = real.PN_PENDING
    return -errno.ETIMEDOUT


@pytest.fixture
def timed_out_batch(ns, handle, wire):
    """100 MTU changes; the first window (64) times out after 10 answers."""
    names = make_bridges(ns, 100)
    wire.before_transact = answers_lost_after(10)
    b = handle.batch()
    for name in names:
        b.set_mtu(name, 1400)
    results = b.run()
    wire.before_transact = None
    return names, results


def test_a_timeout_inside_a_batch_marks_lost_answers_unknown_and_the_rest_skipped(timed_out_batch):
    _, results = timed_out_batch
    assert [r.status for r in results] == [OK] * 10 + [UNKNOWN] * 54 + [SKIPPED] * 36


def test_operations_whose_answer_a_timeout_lost_carry_etimedout(timed_out_batch):
    _, results = timed_out_batch
    assert {(r.errno, r.ext_ack) for r in results[10:64]} == {(errno.ETIMEDOUT, "")}


def test_operations_skipped_after_a_timeout_were_never_sent(ns, timed_out_batch, wire):
    names, _ = timed_out_batch
    assert window_sizes(wire) == [64]
    now = mtus(ns)
    assert [now[n] for n in names[64:]] == [1500] * 36


@pytest.mark.slow
def test_the_handle_goes_on_working_after_a_timeout_in_a_batch(ns, handle, timed_out_batch):
    assert handle.get_link("ob99").mtu == 1500
    handle.set_mtu("ob99", 1280)
    assert ns.link("ob99")["mtu"] == 1280


def test_a_timeout_in_a_batch_block_raises_batch_error_with_every_result(ns, handle, wire):
    names = make_bridges(ns, 3)
    wire.before_transact = answers_lost_after(1)
    with pytest.raises(pn.BatchError) as info:
        with handle.batch() as b:
            for name in names:
                b.interface_up(name)
    assert isinstance(info.value, TimeoutError) and info.value.operation == "interface_up"
    assert [r.status for r in info.value.results] == [OK, UNKNOWN, UNKNOWN]


def test_a_single_call_that_times_out_raises_exchange_error(ns, handle, wire):
    [name] = make_bridges(ns, 1)
    wire.before_transact = answers_lost_after(0)
    with pytest.raises(pn.ExchangeError) as info:
        handle.set_mtu(name, 1400)
    e = info.value
    assert isinstance(e, TimeoutError)
    assert (e.errno, e.operation, e.interface, e.replies, e.sent) == (
        errno.ETIMEDOUT, "set_mtu", name, [None], 1)


def test_a_single_call_after_its_lookup_times_out_reports_that_request(ns, handle, wire):
    """set_interface_ip: the lookup is answered, the RTM_NEWADDR's answer is lost."""
    [name] = make_bridges(ns, 1)
    lose = answers_lost_after(0)

    def second_lost(real, *args):
        if len(wire.sends) == 2:                    # the RTM_NEWADDR, after its lookup
            return lose(real, *args)
        return real.pn_transact(*args)
    wire.before_transact = second_lost
    with pytest.raises(pn.ExchangeError) as info:
        handle.set_interface_ip(name, "192.0.2.7/24")
    assert wire.names() == ["RTM_GETLINK", "RTM_NEWADDR"]
    assert (info.value.operation, info.value.replies, info.value.sent) == ("set_interface_ip", [None], 1)


# -- transactions: undos refused or lost ------------------------------------------------------------

def rename_then_fail(handle):
    """A transaction: rename va to vz, then an MTU the kernel refuses."""
    b = handle.batch("rollback")
    b.change_interface_name("va", "vz")
    b.set_mtu("vz", 10)
    return b


def test_an_undo_the_kernel_refuses_is_rollback_failed(ns, handle, veth, monkeypatch):
    real_undo = batch._Run.undo

    def name_taken_first(run, undos):
        sh("ip", "-n", ns.name, "link", "add", "va", "type", "bridge")    # someone takes the name
        real_undo(run, undos)
    monkeypatch.setattr(batch._Run, "undo", name_taken_first)
    results = rename_then_fail(handle).run()
    assert [r.status for r in results] == [ROLLBACK_FAILED, FAILED]
    assert results[0].errno == errno.EEXIST
    assert ns.link("vz")["ifindex"] != ns.link("va")["ifindex"]


def test_a_failed_undo_exchange_keeps_every_result(ns, handle, veth, wire, monkeypatch):
    real_undo = batch._Run.undo

    def undo_lost(run, undos):
        wire.before_transact = nothing_answered
        try:
            real_undo(run, undos)
        finally:
            wire.before_transact = None
    monkeypatch.setattr(batch._Run, "undo", undo_lost)
    with pytest.raises(pn.BatchError) as info:
        with rename_then_fail(handle):
            pass
    results = info.value.results
    assert [(r.status, r.errno) for r in results] == [(ROLLBACK_FAILED, errno.ETIMEDOUT),
                                                      (FAILED, errno.EINVAL)]
    assert results[0].detail.startswith("the undo got no answer")
    assert ns.link_names() == {"lo", "vz", "vb"}            # the rename stayed: its undo was lost


# -- bulk ------------------------------------------------------------------------------------------

@pytest.fixture
def namespaces():
    """Anonymous namespaces (an fd each): gone when closed."""
    fds = []
    yield lambda n: fds.extend(pn.netns.create() for _ in range(n)) or fds[-n:]
    for fd in fds:
        os.close(fd)


def bulk_setup(handle, fds, **changes):
    networks = [pn.Network(type="veth", bridge="br0", veth_prefix="veth", mtu=1450,
                           address=f"192.0.2.{10 + i}/24", gateway="192.0.2.1", **changes)
                for i in range(len(fds))]
    return pn.bulk.setup([pn.bulk.Container(n, netns=fd) for n, fd in zip(networks, fds)],
                         handle=handle)


def veth_requests(wire) -> list:
    return [m for m in wire.messages() if name_of(m) == "RTM_NEWLINK"
            and C.IFLA_LINKINFO in m.attrs and _kind(m) == b"veth"]


def _kind(m):
    return nlwire.linkinfo(m.attrs).kind


def test_bulk_container_ends_are_born_as_eth0_in_their_namespace(ns, handle, bridge,
                                                                 namespaces, wire):
    fds = namespaces(3)
    setup = bulk_setup(handle, fds)
    assert all(r.ok for r in setup.results)
    peers = [nlwire.veth_peer(nlwire.linkinfo(m.attrs).data)[1] for m in veth_requests(wire)]
    assert [(p.get(C.IFLA_IFNAME).string(), p.get(C.IFLA_NET_NS_FD).u32(), p.get(C.IFLA_MTU).u32())
            for p in peers] == [(b"eth0", fd, 1450) for fd in fds]


def test_bulk_setup_never_renames_or_moves_a_link(ns, handle, bridge, namespaces, wire):
    bulk_setup(handle, namespaces(3))
    changes = [m for m in wire.messages() if name_of(m) in ("RTM_SETLINK", "RTM_NEWLINK")
               and m not in veth_requests(wire)]
    assert changes                              # eth0 and lo brought up, hairpin, ...
    for m in changes:
        assert C.IFLA_NET_NS_FD not in m.attrs and C.IFLA_NET_NS_PID not in m.attrs
        assert m.fixed.index == 0 or C.IFLA_IFNAME not in m.attrs      # no rename by index


def test_bulk_host_side_goes_out_in_chunks_of_16_pairs(ns, handle, bridge, namespaces, wire):
    bulk_setup(handle, namespaces(40))
    host = [s for s in wire.sends if s.fd == handle.fileno()]
    chunks = [sum(1 for m in s.messages if m in veth_requests(wire)) for s in host]
    assert [c for c in chunks if c] == [16, 16, 8]


def test_bulk_configures_each_container_in_two_exchanges(ns, handle, bridge, namespaces, wire):
    setup = bulk_setup(handle, namespaces(3))
    others = [s for s in wire.sends if s.fd != handle.fileno()]
    assert len(others) == 2 * 3 and all(s.kind == "transact" for s in others)
    assert all(r.ok for r in setup.results)


def test_bulk_bad_input_in_the_last_container_sends_nothing_at_all(ns, handle, bridge, namespaces,
                                                                  wire):
    fds = namespaces(3)
    containers = [pn.bulk.Container(pn.Network(type="veth", bridge="br0", veth_prefix="veth",
                                               mtu=mtu), netns=fd)
                  for mtu, fd in zip((1450, 1450, -5), fds)]
    with pytest.raises(ValueError, match="container 2"):
        pn.bulk.setup(containers, handle=handle)
    assert wire.sends == []
