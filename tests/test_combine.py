"""``Handle(combine=True)``: threads using one handle at the same time have
their requests sent together, in one pipelined exchange, and each gets
exactly its own replies (pynetlink/_combine.py).  Real kernel, scratch
namespaces; indexes judged with ``ip -j``."""
from __future__ import annotations

import errno
import threading
import time

import pytest

import pynetlink as pn
from conftest import sh
from pynetlink import _combine, links
from pynetlink._core import Request
from pynetlink.errors import ExchangeError
from test_faults import getlink_without_ack

pytestmark = pytest.mark.unit

SLOW = 1.0          # seconds the blocking exchange waits for an ACK that never comes
NO_HANG = 30.0      # seconds: a bound, not a timing


def get(name: str) -> Request:
    return Request("get_link", (name,), name, links.get(name), reads=True)


@pytest.fixture
def shared(ns):
    """A combining Handle on ``ns`` whose exchanges time out after SLOW s,
    with a record of how many requests each exchange sent."""
    with pn.Handle(netns=ns.path, combine=True, timeout=SLOW) as h:
        sizes: list = []
        real = h.socket._exchange_all

        def recording(requests, replies):
            sizes.append(len(requests))
            return real(requests, replies)

        h.socket._exchange_all = recording
        h.sizes = sizes
        yield h


@pytest.fixture
def dummies(ns):
    """Six links d0..d5 (bridges: this kernel has no dummy) in ``ns``, made with iproute2: name -> ifindex per ``ip -j``."""
    for i in range(6):
        sh("ip", "-n", ns.name, "link", "add", f"d{i}", "type", "bridge")
    return {link["ifname"]: link["ifindex"] for link in ns.ip("link", "show")}


def run_threads(targets: list) -> list:
    """Start every callable at once; their results (or exceptions), in order."""
    box: list = [None] * len(targets)

    def body(i: int) -> None:
        try:
            box[i] = targets[i]()
        except BaseException as e:      # noqa: BLE001 - the test inspects it
            box[i] = e

    threads = [threading.Thread(target=body, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(NO_HANG)
    assert not any(t.is_alive() for t in threads)
    return box


def while_blocked(h: pn.Handle, targets: list) -> tuple:
    """Run ``targets`` in threads while another thread's exchange (a request
    the kernel never ACKs) holds the socket for SLOW s; (the blocked
    exchange's outcome, the targets' outcomes)."""
    blocked: dict = {}

    def block() -> None:
        try:
            h.socket.exchange([getlink_without_ack(b"lo")])
        except BaseException as e:      # noqa: BLE001 - the test inspects it
            blocked["error"] = e

    t = threading.Thread(target=block)
    t.start()
    deadline = time.monotonic() + NO_HANG
    while not h.socket._group.busy and time.monotonic() < deadline:
        time.sleep(0.001)
    outcomes = run_threads(targets)
    t.join(NO_HANG)
    return blocked.get("error"), outcomes


def test_exchanges_waiting_behind_one_in_flight_go_out_as_one(shared, dummies):
    names = ["d0", "d1", "d2", "d3", "d4"]
    blocked, outcomes = while_blocked(shared, [lambda n=n: shared.socket.exchange([get(n)]) for n in names])
    assert isinstance(blocked, ExchangeError) and blocked.errno == errno.ETIMEDOUT
    assert [[r.link["index"] for r in out] for out in outcomes] == [[dummies[n]] for n in names]
    assert shared.sizes == [1, len(names)]


def test_each_thread_gets_its_own_replies_in_its_order(shared, dummies):
    lists = [["d0", "d5", "lo"], ["d3"], ["d2", "d1"], ["d4", "d4", "d0", "d3"]]
    _, outcomes = while_blocked(shared, [lambda ns=ns: shared.socket.exchange([get(n) for n in ns])
                                         for ns in lists])
    assert [[r.link["index"] for r in out] for out in outcomes] == [[dummies[n] for n in ns]
                                                                    for ns in lists]


def test_a_kernel_refusal_is_the_callers_own(shared, dummies):
    _, (ok, missing) = while_blocked(shared, [lambda: shared.get_link("d1"),
                                              lambda: shared.get_link("pntest-nosuch")])
    assert ok.index == dummies["d1"]
    assert isinstance(missing, pn.NetlinkError) and missing.errno == errno.ENODEV
    assert missing.interface == "pntest-nosuch"


def test_a_lost_exchange_fails_only_the_callers_whose_fate_is_unknown(shared, dummies):
    """A no-ACK request and a plain one in one combined exchange: the
    exchange times out; the plain one's reply was read, so its caller gets
    it; the other caller gets ETIMEDOUT with its replies unknown."""
    order = []

    def unanswered():
        order.append("unanswered")
        return shared.socket.exchange([getlink_without_ack(b"lo")])

    def plain():
        time.sleep(0.05)                  # queued after ``unanswered``
        order.append("plain")
        return shared.socket.exchange([get("d2")])

    _, (lost, answered) = while_blocked(shared, [unanswered, plain])
    assert order == ["unanswered", "plain"] and shared.sizes == [1, 2]
    assert isinstance(lost, ExchangeError) and lost.errno == errno.ETIMEDOUT
    assert lost.replies == [None] and lost.operation == "raw_getlink"
    assert [r.link["index"] for r in answered] == [dummies["d2"]]


def test_batches_from_many_threads_all_apply(ns):
    with pn.Handle(netns=ns.path, combine=True) as h:
        def make(i: int):
            b = h.batch()
            b.create_bridge(f"pntest-b{i}")
            b.set_link(f"pntest-b{i}", mtu=1400 + i, up=True)
            return b.run()

        outcomes = run_threads([lambda i=i: make(i) for i in range(12)])
    assert all(all(r.ok for r in out) for out in outcomes), outcomes
    listed = {link["ifname"]: link for link in ns.ip("link", "show")}
    assert all(listed[f"pntest-b{i}"]["mtu"] == 1400 + i for i in range(12))


def test_a_closed_combining_handle_refuses_with_ebadf(ns):
    h = pn.Handle(netns=ns.path, combine=True)
    h.close()
    with pytest.raises(pn.NetlinkError) as info:
        h.get_link("lo")
    assert info.value.errno == errno.EBADF


def test_combine_must_be_a_bool():
    with pytest.raises(TypeError):
        pn.Handle(combine="yes")


def test_a_failure_that_is_no_exchange_error_names_each_callers_first_request():
    """``_share``: an error of the leader's thread (a KeyboardInterrupt, say)
    reaches the other callers as an ExchangeError of their own first request."""
    s = _combine._Submission([get("d0"), get("d1")], None)
    s.replies = [None, None]
    shared = _combine._share(KeyboardInterrupt(), s, 3)
    assert isinstance(shared, ExchangeError) and shared.operation == "get_link"
    assert shared.interface == "d0" and shared.replies == [None, None]
    assert "KeyboardInterrupt" in shared.detail


def test_a_lost_exchange_counts_sent_requests_per_caller():
    s = _combine._Submission([get("a"), get("b"), get("c")], None)
    s.replies = [None, None, None]
    whole = ExchangeError(errno.ENOBUFS, "get_link", ("x",), "x", replies=[None] * 7, sent=5)
    shared = _combine._share(whole, s, 3)
    assert shared.sent == 2 and shared.interface == "a" and shared.errno == errno.ENOBUFS
