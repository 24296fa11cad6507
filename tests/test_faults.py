"""Faults the exchange must survive: no answer, signals, overflow (ENOBUFS),
replies larger than the buffer, interrupted dumps, bad specs."""
from __future__ import annotations

import errno
import signal
import struct
import subprocess
import threading
import time

import pytest

import pynetlink as pn
from conftest import in_thread, sh
from pynetlink import _core, links
from pynetlink._core import Request, ffi, lib
from pynetlink.batch import OK, SKIPPED, UNKNOWN

pytestmark = pytest.mark.unit


def get(name: str) -> Request:
    """The RTM_GETLINK of ``get_link(name)``."""
    return Request("get_link", (name,), name, links.get(name), reads=True)


def getlink_without_ack(name: bytes) -> Request:
    """A request the kernel answers with data but never ACKs (no NLM_F_ACK)."""
    def encode(buf, seq):
        ifi = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
        start = lib.pn_msg_start(buf, lib.RTM_GETLINK, lib.NLM_F_REQUEST, seq, ifi, len(ifi))
        if start < 0:
            return start
        return lib.pn_attr_put_str(buf, lib.IFLA_IFNAME, name) or lib.pn_msg_end(buf, start)
    return Request("raw_getlink", (name,), None, encode)


@pytest.fixture
def sock(ns):
    from pynetlink.netns import netns_fd
    with netns_fd(ns.path) as fd:
        s = _core.Socket(fd, timeout=0.3)
    yield s
    s.close()


NO_HANG = 30.0      # seconds: "it ended", not a timing (the timeout is 0.3 s; the machine may be busy)


def test_unanswered_request_times_out_with_etimedout(sock):
    start = time.monotonic()
    with pytest.raises(OSError) as info:
        sock.exchange([getlink_without_ack(b"lo")])
    assert info.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - start < NO_HANG


def test_signals_do_not_extend_the_timeout(sock):
    """SIGALRM every 20 ms interrupts the wait again and again; the deadline holds."""
    old = signal.signal(signal.SIGALRM, lambda *a: None)
    signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
    try:
        start = time.monotonic()
        with pytest.raises(OSError) as info:
            sock.exchange([getlink_without_ack(b"lo")])
        elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert info.value.errno == errno.ETIMEDOUT
    assert elapsed < NO_HANG            # a timer restarted by every signal would never expire


def test_a_timeout_says_so_in_detail_not_in_ext_ack(sock):
    with pytest.raises(pn.ExchangeError) as info:
        sock.exchange([getlink_without_ack(b"lo")])
    assert (info.value.ext_ack, info.value.detail) == ("", "no answer from the kernel within 0.3 s of waiting")


def test_socket_works_after_a_timed_out_request(sock):
    with pytest.raises(OSError):
        sock.exchange([getlink_without_ack(b"lo")])
    from pynetlink import links
    [reply] = sock.exchange([get("lo")])
    assert reply.errno == 0 and reply.link["name"] == "lo"


def test_a_dump_request_completes_at_its_done_message(ns, sock):
    """A dump sent as one request ends at NLMSG_DONE (not at the timeout),
    holding the dump's last link as ip lists it, and leaves nothing queued:
    the next request gets its own answer."""
    sh("ip", "-n", ns.name, "link", "add", "da0", "type", "veth", "peer", "name", "db0")
    encode = _core.link_encoder(lib.RTM_GETLINK, lib.NLM_F_DUMP)
    [reply] = sock.exchange([Request("dump", (), None, encode)])
    last = max(ns.ip("link", "show"), key=lambda link: link["ifindex"])
    assert (reply.errno, reply.link["name"], reply.link["index"]) == (0, last["ifname"], last["ifindex"])
    [after] = sock.exchange([get("lo")])
    assert (after.errno, after.link["name"], after.link["index"]) == (0, "lo", 1)


def test_link_spec_refuses_an_address_longer_than_its_field():
    with pytest.raises(ValueError):
        _core.link_spec(address=b"x" * 64)


def test_link_spec_takes_a_full_length_address():
    spec = _core.link_spec(address=bytes(range(32)))
    assert bytes(spec.address) == bytes(range(32)) and spec.address_len == 32


def test_transact_refuses_a_zero_timeout(sock):
    buf = ffi.new("struct pn_buf *", {"data": ffi.new("unsigned char[]", 64), "cap": 64})
    res = ffi.new("struct pn_result[]", 1)
    rbuf = ffi.new("unsigned char[]", 64)
    assert lib.pn_transact(sock.fd, sock.portid, buf, 1, 0, 1, 0, res, rbuf, 64) == -errno.EINVAL


# -- receive buffer overflow (ENOBUFS) ------------------------------------------------

def make_bridges(ns, count: int) -> list:
    names = [f"ob{i}" for i in range(count)]
    batch = "".join(f"link add {n} type bridge\n" for n in names)
    subprocess.run(["ip", "-n", ns.name, "-batch", "-"], input=batch, text=True, check=True,
                   capture_output=True, timeout=60)
    return names


def test_overflow_reports_which_replies_are_unknown_and_the_handle_recovers(ns):
    """64 link reads in one send overflow a 16 KiB receive buffer: the kernel
    drops replies and says ENOBUFS.  The error tells which answers are known,
    and the next request on the same handle gets its own answer."""
    names = make_bridges(ns, 64)
    with pn.Handle(netns=ns.path, rcvbuf=16384) as h:
        with pytest.raises(OSError) as info:
            h.socket.exchange([get(n) for n in names])
        assert info.value.errno == errno.ENOBUFS
        replies = info.value.replies
        assert len(replies) == 64 and None in replies
        known = [(n, r) for n, r in zip(names, replies) if r is not None]
        assert all(r.errno == 0 and r.link["name"] == n for n, r in known)
        for name in ("ob7", "lo", "ob63"):            # no stale reply taken for a new one
            assert h.get_link(name).name == name
            assert h.link_index(name) == ns.link(name)["ifindex"]


def test_batch_after_overflow_reports_unknown_and_skipped_operations(ns):
    names = make_bridges(ns, 200)
    with pn.Handle(netns=ns.path, rcvbuf=16384) as h:
        batch = h.batch("continue")
        for name in names:
            batch.set_mtu(name, 1400)
        results = batch.run()
    statuses = {r.status for r in results}
    assert UNKNOWN in statuses and SKIPPED in statuses
    unknown = [r for r in results if r.status == UNKNOWN]
    assert all(r.errno == errno.ENOBUFS for r in unknown)
    mtu = {link["ifname"]: link["mtu"] for link in ns.ip("link", "show")}
    for name, r in zip(names, results):
        if r.status == OK:
            assert mtu[name] == 1400, name
        elif r.status == SKIPPED:                  # never sent
            assert mtu[name] == 1500, name
    first_skipped = next(i for i, r in enumerate(results) if r.status == SKIPPED)
    assert all(r.status == SKIPPED for r in results[first_skipped:])


def test_overflow_in_a_batch_block_raises_with_every_result(ns):
    names = make_bridges(ns, 100)
    with pn.Handle(netns=ns.path, rcvbuf=16384) as h:
        with pytest.raises(OSError) as info:
            with h.batch("continue") as b:
                for name in names:
                    b.interface_up(name)
        assert info.value.errno == errno.ENOBUFS
        assert len(info.value.results) == 100
        assert h.get_link("ob0").name == "ob0"


# -- replies larger than the receive buffer --------------------------------------------

@pytest.fixture
def small_receive_buffer(monkeypatch):
    """Threads started under this fixture begin with a 256-byte receive
    buffer: smaller than any link reply."""
    monkeypatch.setattr(_core, "RECV_BUFFER", 256)


def test_a_reply_larger_than_the_receive_buffer_is_read_whole(ns, small_receive_buffer):
    def read():
        with pn.Handle(netns=ns.path) as h:
            return h.get_link("lo"), _core._buffers.rcap
    link, rcap = in_thread(read)
    assert link.name == "lo" and link.index == ns.link("lo")["ifindex"]
    assert link.mtu == ns.link("lo")["mtu"] and link.stats is not None
    assert rcap > 256


@pytest.mark.slow
def test_many_replies_larger_than_the_receive_buffer_in_one_exchange(ns, small_receive_buffer):
    names = make_bridges(ns, 20)

    def read():
        with pn.Handle(netns=ns.path) as h:
            return [r.link["name"] for r in h.socket.exchange([get(n) for n in names])]
    assert in_thread(read) == names


def test_an_error_ack_still_completes_with_a_small_buffer(ns, small_receive_buffer):
    [bridge] = make_bridges(ns, 1)

    def fail():
        with pn.Handle(netns=ns.path) as h:
            h.set_mtu(bridge, 10)
    with pytest.raises(OSError) as info:
        in_thread(fail)
    assert info.value.errno == errno.EINVAL and ns.link(bridge)["mtu"] == 1500


def test_a_dump_larger_than_the_receive_buffer_is_read_whole(ns, small_receive_buffer):
    names = make_bridges(ns, 30)

    def dump():
        with pn.Handle(netns=ns.path) as h:
            return {link.name for link in h.list_links()}
    assert in_thread(dump) == set(names) | {"lo"} == ns.link_names()


# -- interrupted dumps -----------------------------------------------------------------

def test_a_dump_interrupted_every_time_gives_up_with_eagain(handle, monkeypatch):
    tries = []

    def always_interrupted(self, request):
        tries.append(1)
        return [], True
    monkeypatch.setattr(_core.Socket, "_dump_once", always_interrupted)
    with pytest.raises(OSError) as info:
        handle.list_links()
    assert info.value.errno == errno.EAGAIN
    assert len(tries) == _core.DUMP_RETRIES + 1


def test_a_dump_that_gives_up_says_why_in_detail_not_in_ext_ack(handle, monkeypatch):
    monkeypatch.setattr(_core.Socket, "_dump_once", lambda self, request: ([], True))
    with pytest.raises(pn.NetlinkError) as info:
        handle.list_links()
    assert info.value.ext_ack == "" and "interrupted" in info.value.detail


def test_a_dump_during_link_churn_is_consistent_or_eagain(ns, handle):
    """Links made and removed by another thread while we dump: every dump
    either lists a consistent set or says EAGAIN after bounded retries; at
    least one of them lists (so EAGAIN every time fails), the churn really
    ran during the dumps, and it met no error itself."""
    make_bridges(ns, 300)
    stop = threading.Event()
    cycles, churn_errors = [0], []

    def churn():
        try:
            with pn.Handle(netns=ns.path) as h:
                for _ in range(5000):
                    if stop.is_set():
                        return
                    h.create_veth_pair("cx0", "cx1")
                    h.delete_link("cx0")
                    cycles[0] += 1
        except BaseException as e:              # handed to the test below
            churn_errors.append(e)

    worker = threading.Thread(target=churn)
    worker.start()
    listed, refused, overlapped = 0, 0, 0      # overlapped: dumps that listed while the churn ran
    deadline = time.monotonic() + 60
    try:
        for _ in range(3000):                   # until 10 dumps listed during the churn
            if overlapped >= 10 or time.monotonic() > deadline:
                break
            before = cycles[0]
            try:
                names = {link.name for link in handle.list_links()}
            except OSError as e:
                assert e.errno == errno.EAGAIN
                refused += 1
                continue
            assert {f"ob{i}" for i in range(300)} <= names
            assert ("cx0" in names) == ("cx1" in names)      # a pair is listed whole or not at all
            listed += 1
            overlapped += cycles[0] != before
    finally:
        stop.set()
        worker.join(timeout=60)
    assert (churn_errors, worker.is_alive()) == ([], False)
    assert overlapped >= 10, f"{listed} dumps listed, {overlapped} of them during the churn; {refused} EAGAIN"
    assert {link.name for link in handle.list_links()} == ns.link_names()


def test_dumps_still_work_after_the_receive_buffer_grew(ns):
    """A grown receive buffer takes the dump's link array along (one
    datagram of it can hold rcap / 32 + 1 links)."""
    names = make_bridges(ns, 5)

    def dump():
        _core._buffers.grow(300_000)
        with pn.Handle(netns=ns.path) as h:
            return {link.name for link in h.list_links()}, _core._buffers.dump.cap
    listed, cap = in_thread(dump)
    assert listed == set(names) | {"lo"} and cap > _core.DUMP_CAP
