"""Faults the kernel or a peer can produce, on real sockets in scratch namespaces.

- Datagrams that are not the kernel's answer to the request at hand are
  ignored: forgeries from another netlink socket aimed at our port (even
  carrying our port id and next sequence number), and the kernel's own stale
  answers to requests of other sequence numbers (a late reply to a request
  that timed out, say).
- A handle outlives the name of its namespace: the socket keeps the
  namespace alive, operations go on there, and closing the handle lets it go.
  A handle asked for by a path that is gone fails at once (FileNotFoundError).
- Signals arriving every millisecond do not disturb long exchanges.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import pynetlink as pn
from pynetlink._core import ffi, lib
from conftest import in_thread, settled_fds, sh
from test_faults import getlink_without_ack

pytestmark = pytest.mark.unit

NLMSG_HDR = struct.Struct("=IHHII")         # len, type, flags, seq, pid
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
RTM_NEWLINK, RTM_GETLINK = 16, 18
IFLA_IFNAME = 3


def nlmsg(msg_type: int, flags: int, seq: int, pid: int, payload: bytes) -> bytes:
    payload += b"\0" * (-len(payload) % 4)
    return NLMSG_HDR.pack(NLMSG_HDR.size + len(payload), msg_type, flags, seq, pid) + payload


def forged_error(seq: int, pid: int, error: int) -> bytes:
    """An NLMSG_ERROR (an ACK if ``error`` is 0) as the kernel would word it."""
    request = NLMSG_HDR.pack(NLMSG_HDR.size, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, pid)
    return nlmsg(NLMSG_ERROR, 0x100, seq, pid, struct.pack("=i", error) + request)  # NLM_F_CAPPED


def forged_done(seq: int, pid: int) -> bytes:
    return nlmsg(NLMSG_DONE, 0x2, seq, pid, struct.pack("=i", 0))     # NLM_F_MULTI


def getlink(name: str, seq: int, flags: int = NLM_F_REQUEST | NLM_F_ACK) -> bytes:
    """A raw RTM_GETLINK for one name (or a dump, with NLM_F_DUMP)."""
    ifi = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
    attr = b""
    if name:
        raw = name.encode() + b"\0"
        attr = struct.pack("=HH", 4 + len(raw), IFLA_IFNAME) + raw + b"\0" * (-len(raw) % 4)
    return nlmsg(RTM_GETLINK, flags, seq, 0, ifi + attr)


def peer_socket(ns) -> socket.socket:
    """A plain rtnetlink socket in ``ns`` (netlink port ids are per namespace)."""
    s = in_thread(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                        socket.NETLINK_ROUTE), netns_path=ns.path)
    s.bind((0, 0))
    return s


def queued(h: pn.Handle, timeout: float = 1.0) -> list:
    """The datagrams waiting on the handle's socket, as (sender port, bytes),
    read without taking them off its queue."""
    fd = os.dup(h.fileno())
    peek = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE, fileno=fd)
    try:
        if not select.select([peek], [], [], timeout)[0]:
            return []
        data, (port, _groups) = peek.recvfrom(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return [(port, data)]
    finally:
        peek.close()


def next_seqs(h: pn.Handle, n: int = 8) -> range:
    """The sequence numbers the handle's next requests will carry."""
    return range(h._sock._seq, h._sock._seq + n)


# -- a peer forging the kernel's answers -----------------------------------------------

FORGERIES = {
    # a refusal of our next requests, with our own port id in the header
    "error_our_pid": lambda seqs, ours, theirs: b"".join(
        forged_error(s, ours, -errno.EPERM) for s in seqs),
    # the same with the forger's port id in the header
    "error_their_pid": lambda seqs, ours, theirs: b"".join(
        forged_error(s, theirs, -errno.EPERM) for s in seqs),
    # bytes that are no netlink message at all
    "garbage": lambda seqs, ours, theirs: b"\xff" * 7 + NLMSG_HDR.pack(1 << 30, 2, 0, seqs[0], ours),
}


def test_the_forgery_is_convincing():
    """Fed to the reply parser as if the kernel had sent it, the forged
    refusal passes for the answer to our requests: only the check of who
    sent a datagram can keep it out."""
    seqs = range(100, 108)
    data = FORGERIES["error_our_pid"](seqs, 4242, 9999)
    results = ffi.new("struct pn_result[]", len(seqs))
    for i, seq in enumerate(seqs):
        results[i].seq, results[i].error = seq, lib.PN_PENDING
    assert lib.pn_parse_replies(data, len(data), 4242, seqs[0], len(seqs), results) == len(seqs)
    assert [results[i].error for i in range(len(seqs))] == [-errno.EPERM] * len(seqs)


@pytest.mark.slow
@pytest.mark.parametrize("operation", ["interface_up", "set_interface_ip"])
@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_a_forged_answer_from_another_port_is_ignored(ns, handle, veth, forgery, operation):
    h, ours = handle, handle._sock.portid
    with peer_socket(ns) as peer:
        theirs = peer.getsockname()[0]
        forged = FORGERIES[forgery](next_seqs(h), ours, theirs)
        peer.sendto(forged, (ours, 0))
        assert queued(h) == [(theirs, forged)]          # it is there, waiting, before we ask

        start = time.monotonic()
        if operation == "interface_up":
            h.interface_up("va")
        else:
            h.set_interface_ip("va", "192.0.2.1/24")
        assert time.monotonic() - start < 20          # answered, not left to time out

    assert queued(h, 0) == []                           # read and dropped
    if operation == "interface_up":
        assert "UP" in ns.link("va")["flags"]
    else:
        assert [(a["local"], a["prefixlen"]) for a in ns.addresses("va")] == [("192.0.2.1", 24)]
    assert h.get_link("va").name == "va"                # and the handle goes on


def test_a_forged_ack_does_not_hide_the_kernels_refusal(ns, handle, veth):
    h, ours = handle, handle._sock.portid
    with peer_socket(ns) as peer:
        peer.sendto(b"".join(forged_error(s, ours, 0) for s in next_seqs(h)), (ours, 0))
        with pytest.raises(OSError) as info:
            h.interface_up("nosuch0")
    assert info.value.errno == errno.ENODEV
    assert ns.link_names() == {"lo", "va", "vb"}


def test_a_forged_end_of_dump_does_not_cut_a_dump_short(ns, handle, veth):
    h, ours = handle, handle._sock.portid
    with peer_socket(ns) as peer:
        peer.sendto(b"".join(forged_done(s, ours) for s in next_seqs(h)), (ours, 0))
        assert {link.name for link in h.list_links()} == {"lo", "va", "vb"}


def test_an_oversized_forged_datagram_is_ignored(ns, handle, veth):
    """A peer's datagram larger than the receive buffer (64 KiB) aimed at our
    port: it is not the kernel's, so it should be dropped like any other."""
    h, ours = handle, handle._sock.portid
    with peer_socket(ns) as peer:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        big = forged_error(h._sock._seq, ours, -errno.EPERM) + b"\0" * (100 * 1024)
        peer.sendto(big, (ours, 0))
        assert queued(h)[0][0] == peer.getsockname()[0]
        h.interface_up("va")                            # not EMSGSIZE
    assert "UP" in ns.link("va")["flags"]
    assert queued(h, 0) == []


# -- the kernel's stale answers -------------------------------------------------------

def _send_raw(h: pn.Handle, data: bytes) -> None:
    """Send on the handle's own socket, past the library (as if an earlier
    request of ours were still being answered)."""
    fd = os.dup(h.fileno())
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE, fileno=fd) as s:
        s.sendto(data, (0, 0))


def test_stale_answers_of_the_kernel_are_skipped(ns, handle, veth):
    """A reply (a link, an ACK), an error and a whole dump, all for sequence
    numbers already used, wait in the socket; each operation after them gets
    its own answer."""
    h = handle
    for _ in range(5):
        h.link_index("lo")
    old = h._sock._seq - 3
    _send_raw(h, getlink("lo", old))                    # RTM_NEWLINK lo + ACK
    _send_raw(h, getlink("nosuch0", old + 1))           # ENODEV
    _send_raw(h, getlink("", old + 2, NLM_F_REQUEST | NLM_F_DUMP))   # a dump of 3 links
    assert queued(h)[0][0] == 0                         # the kernel's, waiting

    vb = h.get_link("vb")                               # not lo
    assert (vb.name, vb.index) == ("vb", ns.link("vb")["ifindex"])
    h.interface_up("va")                                # not ENODEV
    assert "UP" in ns.link("va")["flags"]
    names = [link.name for link in h.list_links()]      # not the stale dump's, not twice
    assert sorted(names) == ["lo", "va", "vb"]
    assert h.link_index("va") == ns.link("va")["ifindex"]
    assert queued(h, 0) == []


def test_a_late_answer_to_a_timed_out_request_is_not_taken_for_the_next(ns, veth):
    with pn.Handle(netns=ns.path, timeout=0.2) as h:
        with pytest.raises(OSError) as info:
            h._sock.exchange([getlink_without_ack(b"va")])
        assert info.value.errno == errno.ETIMEDOUT
        late = h._sock._seq - 1                         # the timed-out request's number
        _send_raw(h, getlink("nosuch0", late))          # its "answer" comes late: ENODEV
        _send_raw(h, getlink("va", late))               # and again: va, ACK
        assert queued(h)[0][0] == 0

        assert h.get_link("vb").name == "vb"
        h.interface_up("vb")
        assert "UP" in ns.link("vb")["flags"]


# -- a namespace that loses its name ----------------------------------------------------

def _bounded(fn, *args, **kwargs):
    """fn(*args, **kwargs), which must return (not hang: within 20 s)."""
    start = time.monotonic()
    result = fn(*args, **kwargs)
    limit = 20.0                    # "no hang", not a timing: RTNL may be busy elsewhere
    assert time.monotonic() - start < limit, f"{fn.__name__} took too long"
    return result


def _wait_until(predicate, limit: float = 15.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _netns_of(pid: int):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except FileNotFoundError:
        return None


def test_a_handle_keeps_its_namespace_alive_after_ip_netns_del(ns, ns2):
    """``ip netns del`` only unmounts the name; the socket holds a reference
    to the namespace, so operations go on there, normally.  Closing the
    handle lets the kernel destroy it (seen from ns2: the peer of a veth
    that lived in it goes away with it)."""
    sh("ip", "-n", ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb",
       "netns", ns2.name)
    sleeper = subprocess.Popen(["ip", "netns", "exec", ns.name, "sleep", "60"])
    h = pn.Handle(netns=ns.path)
    try:
        assert _wait_until(lambda: _netns_of(sleeper.pid) == os.stat(ns.path).st_ino)
        ns.remove()
        sleeper.kill()
        sleeper.wait(timeout=10)
        assert not os.path.exists(ns.path)

        _bounded(h.interface_up, "va")
        _bounded(h.set_mtu, "va", 1400)
        _bounded(h.set_interface_ip, "va", "203.0.113.1/24")
        _bounded(h.create_veth_pair, "xa", "xb")
        link = _bounded(h.get_link, "va")
        assert (link.up, link.mtu) == (True, 1400)
        assert {l.name for l in _bounded(h.list_links)} == {"lo", "va", "xa", "xb"}
        _bounded(h.delete_link, "xa")
        assert "vb" in ns2.link_names()                 # its namespace is still alive
        assert ns2.link("vb")["mtu"] == 1500
    finally:
        h.close()
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait(timeout=10)
    h.close()                                           # idempotent
    assert h.closed
    with pytest.raises(OSError) as info:
        h.get_link("va")
    assert info.value.errno == errno.EBADF
    # the last reference is gone: the namespace, va, and so vb with it
    assert _wait_until(lambda: "vb" not in ns2.link_names())


def test_a_handle_on_a_created_namespace_outlives_its_fd(ns2):
    """``netns.create()``'s fd closed at once: the handle's socket alone
    keeps the namespace; closing the handle destroys it."""
    with pn.netns.scratch() as fd:
        h = pn.Handle(netns=fd)
    try:
        _bounded(h.create_veth_pair, "a0", "b0", peer_netns=ns2.path)
        _bounded(h.interface_up, "a0")
        assert {l.name for l in h.list_links()} == {"lo", "a0"}
        assert "b0" in ns2.link_names()
    finally:
        h.close()
    assert _wait_until(lambda: "b0" not in ns2.link_names())


def test_a_handle_by_path_after_the_namespace_was_deleted(ns):
    path = ns.path
    ns.remove()
    before = settled_fds()
    with pytest.raises(FileNotFoundError):
        pn.Handle(netns=path)
    with pytest.raises(FileNotFoundError):
        pn.netns.netns_fd(path).__enter__()
    assert settled_fds() == before


# -- signals ---------------------------------------------------------------------------

def test_two_thousand_operations_under_a_signal_every_millisecond(ns, handle, veth):
    """SIGALRM every 1 ms with a Python handler, through single operations,
    index lookups, dumps and pipelined batches: every result right, no
    exception (EINTR is retried, never surfaced)."""
    h = handle
    va, vb = h.link_index("va"), h.link_index("vb")
    alarms = [0]

    def on_alarm(signum, frame):
        alarms[0] += 1

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    done = 0
    start = time.monotonic()
    try:
        for i in range(250):                            # 1,000 single operations
            h.set_mtu("va", 1280 + i)
            assert h.get_link("va").mtu == 1280 + i
            h.set_interface_ip("vb", f"192.0.2.{i + 1}/32")
            assert h.link_index("vb") == vb
            done += 4
            if i % 25 == 0:
                assert {l.name for l in h.list_links()} == {"lo", "va", "vb"}
                done += 1
        for chunk in range(5):                          # 1,000 operations in 5 batches
            b = h.batch()
            for j in range(chunk * 50, chunk * 50 + 50):
                b.set_interface_ip("va", f"198.51.100.{j + 1}/32")
                b.set_interface_ip("va", f"2001:db8::{j + 1:x}/128")
                b.set_mtu("vb", 1300 + j)
                b.set_link("vb", txqueuelen=100 + j, up=j % 2 == 0)
            results = b.run()
            assert len(results) == 200 and all(r.ok for r in results), \
                [r for r in results if not r.ok][:3]
            done += len(results)
        assert time.monotonic() - start < 120
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)

    assert done >= 2000
    assert alarms[0] > 10, "the timer hardly fired: the test proved nothing"
    assert h.link_index("va") == va
    a, b = ns.link("va"), ns.link("vb")
    assert a["mtu"] == 1280 + 249
    assert (b["mtu"], b["txqlen"], "UP" in b["flags"]) == (1300 + 249, 100 + 249, False)
    v4 = {x["local"] for x in ns.addresses("va") if x["family"] == "inet"}
    v6 = {x["local"] for x in ns.addresses("va") if x["family"] == "inet6"
          and x.get("scope") != "link"}
    assert v4 == {f"198.51.100.{j + 1}" for j in range(250)}
    assert v6 == {f"2001:db8::{j + 1:x}" for j in range(250)}
    assert {x["local"] for x in ns.addresses("vb") if x["family"] == "inet"} == \
        {f"192.0.2.{i + 1}" for i in range(250)}


def test_a_wait_interrupted_by_a_signal_every_millisecond_still_gets_its_answer(ns, handle,
                                                                                 veth):
    """The kernel answers most requests while handling their send, so the
    test above rarely catches the library waiting (strace: no EINTR at all).
    Here it must wait: a request the kernel does not ACK, whose ACK then
    comes 0.3 s later (the same request, with the same number, sent again
    on the same socket from another thread).  SIGALRM interrupts the wait
    about 300 times (counted at C level through the wakeup fd: the Python
    handler itself runs only once the C call returns, signals coalesced);
    each time the wait resumes, and the exchange ends with the kernel's
    answer, well within its timeout."""
    h = handle
    seq = h._sock._seq
    alarms = [0]

    def on_alarm(signum, frame):
        alarms[0] += 1

    def late_ack():
        time.sleep(0.3)
        _send_raw(h, getlink("va", seq))

    helper = threading.Thread(target=late_ack)
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old = signal.signal(signal.SIGALRM, on_alarm)
    old_wakeup = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        helper.start()
        start = time.monotonic()
        [reply] = h._sock.exchange([getlink_without_ack(b"va")])
        elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGALRM, old)
        helper.join(timeout=10)
        delivered = 0
        try:
            while True:
                delivered += len(os.read(r, 1 << 16))
        except BlockingIOError:
            pass
        os.close(r)
        os.close(w)
    assert reply.errno == 0 and reply.link["name"] == "va"
    assert 0.25 < elapsed < 60        # the late ACK was waited for (its sender slept 0.3 s); no hang
    assert delivered > 10, "hardly any signal arrived during the wait"
    assert alarms[0] >= 1             # coalesced: the handler runs once the C call returns
    assert h.get_link("vb").name == "vb"
