"""Faults the exchange must survive: no answer, signals, dumps, bad specs."""
from __future__ import annotations

import errno
import signal
import struct
import threading
import time

import pytest

from pynetlink import _core
from pynetlink._core import K, Request, ffi, lib


def getlink_without_ack(name: bytes) -> Request:
    """A request the kernel answers with data but never ACKs (no NLM_F_ACK)."""
    def encode(buf, seq):
        ifi = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
        start = lib.pn_msg_start(buf, K.RTM_GETLINK, K.NLM_F_REQUEST, seq, ifi, len(ifi))
        if start < 0:
            return start
        return lib.pn_attr_put_str(buf, K.IFLA_IFNAME, name) or lib.pn_msg_end(buf, start)
    return Request("raw_getlink", (name,), None, encode)


@pytest.fixture
def sock(ns):
    from pynetlink.netns import netns_fd
    with netns_fd(ns.path) as fd:
        s = _core.Socket(fd, timeout=0.3)
    yield s
    s.close()


def test_unanswered_request_times_out_with_etimedout(sock):
    start = time.monotonic()
    with pytest.raises(OSError) as info:
        sock.exchange([getlink_without_ack(b"lo")])
    assert info.value.errno == errno.ETIMEDOUT
    assert time.monotonic() - start < 3


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
    assert elapsed < 3


def test_socket_works_after_a_timed_out_request(sock):
    with pytest.raises(OSError):
        sock.exchange([getlink_without_ack(b"lo")])
    from pynetlink import links
    [reply] = sock.exchange([links.get("lo")])
    assert reply.errno == 0 and reply.link["name"] == "lo"


def test_a_dump_request_completes_at_its_done_message(sock):
    encode = _core.link_encoder(K.RTM_GETLINK, K.NLM_F_DUMP)
    [reply] = sock.exchange([Request("dump", (), None, encode)])
    assert reply.errno == 0


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
