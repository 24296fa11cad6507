"""The one module that touches the compiled C core (``_pynetlink_cffi``).

It turns Python values into the core's request specs, and runs requests over
an rtnetlink socket: encode each into a buffer the socket owns, send them in
as few ``send`` calls as the window allows, and return one ``Reply`` per
request.  One cffi call per request to encode and one per window to send and
read the ACKs; cffi releases the GIL around both.
"""
from __future__ import annotations

import errno as _errno
import os
import threading
from collections import namedtuple
from typing import Callable, Dict, Optional, Sequence

from ._pynetlink_cffi import ffi, lib
from .errors import ExchangeError, NetlinkError, error_for

# Kernel constants, straight from the system headers at build time.
K = lib

SEND_BUFFER = 64 * 1024     # bytes of requests per exchange window
RECV_BUFFER = 64 * 1024     # receive buffer to start with: grown for a reply that does not fit
MAX_RECV_BUFFER = 64 << 20  # ... up to this
RCVBUF = 1 << 20            # socket receive buffer: room for a window of ACKs
WINDOW = 64                 # requests per send before reading their ACKs
DUMP_CAP = 4096             # links decoded per cffi call while receiving a dump
DUMP_RETRIES = 3            # a dump the kernel marks interrupted is redone this often

Encoder = Callable[[object, int], int]

# For buffers the C core writes before it reads them (send, receive, results):
# no point zero-filling them.
_scratch = ffi.new_allocator(should_clear_after_alloc=False)


class _Buffers(threading.local):
    """The buffers of an exchange, one set per thread: a thread runs one
    exchange at a time whatever socket it uses, so a bulk setup that opens
    a socket per container allocates nothing per socket."""

    def __init__(self) -> None:
        self.data = _scratch("unsigned char[]", SEND_BUFFER)
        self.buf = ffi.new("struct pn_buf *", {"data": self.data, "cap": SEND_BUFFER})
        self.results = _scratch("struct pn_result[]", WINDOW)
        self.rbuf = _scratch("unsigned char[]", RECV_BUFFER)
        self.rcap = RECV_BUFFER
        self.dump_links = _scratch("struct pn_link_info[]", DUMP_CAP)
        self.dump = ffi.new("struct pn_dump *", {"links": self.dump_links, "cap": DUMP_CAP})

    def grow(self, needed: int) -> None:
        """Make the receive buffer hold a datagram of ``needed`` bytes."""
        size = self.rcap
        while size < needed:
            size *= 2
        if size > MAX_RECV_BUFFER:
            raise error_for(_errno.EMSGSIZE, "receive", (), None,
                            f"a {needed}-byte netlink reply is too large")
        self.rbuf, self.rcap = _scratch("unsigned char[]", size), size
        cap = max(DUMP_CAP, size // lib.PN_DUMP_LINK_MIN + 1)     # what pn_dump_recv needs
        if cap > self.dump.cap:
            self.dump_links = _scratch("struct pn_link_info[]", cap)
            self.dump.links, self.dump.cap = self.dump_links, cap


_buffers = _Buffers()

# The current process id, kept by a fork hook rather than asked for on
# every exchange: a socket made before fork() must not be used after it.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


# Records are named tuples, not dataclasses: importing dataclasses costs a
# short-lived process (a CNI plugin runs once per pod) about 10 ms.

class Request(namedtuple("Request", "operation arguments interface encode index_only reads",
                         defaults=(False, False))):
    """One rtnetlink request: what to say in error messages (``operation``,
    ``arguments``, ``interface``), and its ``encode(struct pn_buf *, seq)``
    (0 or -errno).  ``index_only``: of a link in the reply, only its index
    is wanted; ``reads``: it changes nothing, so it is safe to send again."""
    __slots__ = ()

    def error(self, errno: int, ext_ack: str = "") -> NetlinkError:
        return error_for(errno, self.operation, self.arguments, self.interface, ext_ack)


# A decoded struct pn_link_info: the fields of links.Link, "stats" a dict of
# the eight NetworkStats counters or None.
RawLink = Dict[str, object]

STATS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
         "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


class Reply(namedtuple("Reply", "errno ext_ack link")):
    """What the kernel answered to one request: ``errno`` (0 is success),
    ``ext_ack`` (its extended-ack text or ""), ``link`` (a RawLink or None)."""
    __slots__ = ()


# -- request specs -----------------------------------------------------------

_LINK_FIELDS = (("name", lib.PN_LINK_NAME), ("mtu", lib.PN_LINK_MTU),
                ("master", lib.PN_LINK_MASTER), ("ns_fd", lib.PN_LINK_NS_FD),
                ("ns_pid", lib.PN_LINK_NS_PID), ("group", lib.PN_LINK_GROUP),
                ("txqlen", lib.PN_LINK_TXQLEN), ("ext_mask", lib.PN_LINK_EXT_MASK))


def link_spec(*, index: int = 0, flags: int = 0, change: int = 0,
              address: Optional[bytes] = None, **fields):
    """A ``struct pn_link_spec``: one cffi allocation, initialized from a
    dict.  ``fields``: name (bytes), mtu, master, ns_fd, ns_pid, group,
    txqlen, ext_mask — each present one sets its bit in ``fields``."""
    init = {"index": index, "flags": flags, "change": change}
    present = 0
    for key, bit in _LINK_FIELDS:
        value = fields.pop(key, None)
        if value is not None:
            init[key] = value
            present |= bit
    if fields:
        raise TypeError(f"unknown link fields: {', '.join(fields)}")
    if address is not None:
        if not 0 < len(address) <= 32:
            raise ValueError("link-layer address must be 1 to 32 bytes")
        init["address"], init["address_len"] = address, len(address)
        present |= lib.PN_LINK_ADDRESS
    init["fields"] = present
    return ffi.new("struct pn_link_spec *", init)


def link_encoder(msg_type: int, nlflags: int, **fields) -> Encoder:
    spec = link_spec(**fields)
    return lambda buf, seq: lib.pn_link_msg(buf, msg_type, nlflags, seq, spec)


def brport_encoder(attr: int, value: int, **fields) -> Encoder:
    spec = link_spec(**fields)
    return lambda buf, seq: lib.pn_brport_msg(buf, seq, spec, attr, value)


def veth_encoder(nlflags: int, host: dict, peer: dict) -> Encoder:
    hspec, pspec = link_spec(**host), link_spec(**peer)
    return lambda buf, seq: lib.pn_veth_msg(buf, nlflags, seq, hspec, pspec)


def kind_encoder(nlflags: int, kind: bytes, **fields) -> Encoder:
    spec, kind_c = link_spec(**fields), ffi.new("char[]", kind)
    return lambda buf, seq: lib.pn_kind_msg(buf, nlflags, seq, spec, kind_c)


def _put_ip(field, value: bytes, what: str) -> None:
    """Copy an address into a fixed-size spec field, refusing what does not fit."""
    if not 0 < len(value) <= len(field):
        raise ValueError(f"{what} must be 1 to {len(field)} bytes, not {len(value)}")
    field[0:len(value)] = value                         # bounds-checked by cffi


def addr_encoder(msg_type: int, nlflags: int, *, index: int, family: int, prefixlen: int,
                 local: bytes, broadcast: Optional[bytes] = None, scope: int = 0) -> Encoder:
    spec = ffi.new("struct pn_addr_spec *")
    spec.index, spec.family, spec.prefixlen, spec.scope = index, family, prefixlen, scope
    _put_ip(spec.local, local, "local address")
    if broadcast is not None:
        spec.has_broadcast = 1
        _put_ip(spec.broadcast, broadcast, "broadcast address")
    return lambda buf, seq: lib.pn_addr_msg(buf, msg_type, nlflags, seq, spec)


def route_encoder(msg_type: int, nlflags: int, *, family: int, dst: Optional[bytes] = None,
                  dst_len: int = 0, gateway: Optional[bytes] = None, oif: int = 0,
                  table: int, protocol: int, scope: int, rtype: int) -> Encoder:
    spec = ffi.new("struct pn_route_spec *")
    spec.family, spec.dst_len, spec.oif = family, dst_len, oif
    spec.table, spec.protocol, spec.scope, spec.type = table, protocol, scope, rtype
    if dst is not None:
        _put_ip(spec.dst, dst, "destination")
    if gateway is not None:
        spec.has_gateway = 1
        _put_ip(spec.gateway, gateway, "gateway")
    return lambda buf, seq: lib.pn_route_msg(buf, msg_type, nlflags, seq, spec)


# -- replies -----------------------------------------------------------------

def _raw_link(c) -> RawLink:
    return {"index": c.index, "name": ffi.string(c.name).decode("utf-8", "surrogateescape"),
            "flags": c.flags, "mtu": c.mtu, "master": c.master, "group": c.group,
            "txqlen": c.txqlen,
            "address": ffi.buffer(c.address, c.address_len)[:].hex(":"),
            "hairpin": None if c.hairpin < 0 else bool(c.hairpin),
            "stats": {k: getattr(c, k) for k in STATS} if c.has_stats else None}


_ACK = Reply(0, "", None)


def _reply(r, index_only: bool = False) -> Reply:
    if not r.has_link:
        if not r.error and not r.ext_msg[0]:
            return _ACK                     # the common case: a plain ACK
        link = None
    else:
        link = {"index": r.link.index} if index_only else _raw_link(r.link)
    text = ffi.string(r.ext_msg).decode("utf-8", "replace") if r.ext_msg[0] else ""
    return Reply(-r.error, text, link)


# -- namespaces ----------------------------------------------------------------

def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace behind ``fd``."""
    err = lib.pn_setns_net(fd)
    if err:
        raise error_for(-err, "setns", (fd,))


def netns_new() -> int:
    """A new empty network namespace, held by the returned fd."""
    fd = lib.pn_netns_new()
    if fd == -_errno.ENOTRECOVERABLE:
        raise RuntimeError("the calling thread could not return to its own network namespace")
    if fd < 0:
        raise error_for(-fd, "unshare", ("CLONE_NEWNET",))
    return fd


# -- the socket ----------------------------------------------------------------

class Socket:
    """An rtnetlink socket in one network namespace, safe to share between
    threads (one exchange at a time).  ``netns_fd`` -1 means the calling
    thread's current namespace; ``timeout`` (seconds) bounds each exchange
    (signals do not extend it).  ``home_fd``, if given, is an fd of the
    namespace the calling thread is in now (the thread returns there after
    making a socket in ``netns_fd``): a caller making many sockets opens it once."""

    def __init__(self, netns_fd: int = -1, timeout: float = 5.0, home_fd: int = -1,
                 rcvbuf: int = RCVBUF):
        portid = ffi.new("uint32_t *")
        fd = lib.pn_socket_open(netns_fd, home_fd, rcvbuf, portid)
        if fd < 0:
            if fd == -_errno.ENOTRECOVERABLE:
                raise RuntimeError("the calling thread could not return to its own network "
                                   "namespace after opening a socket in another one")
            raise error_for(-fd, "open netlink socket", (netns_fd,) if netns_fd >= 0 else ())
        self.fd = fd
        self.portid = portid[0]
        self.pid = _pid
        self.timeout_ms = max(1, int(timeout * 1000))
        self._seq = 1
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                if self.pid == _pid:
                    lib.pn_socket_close(self.fd)
                else:                       # a forked child closes its own copy only
                    os.close(self.fd)
                self.fd = -1

    def _next_seq(self) -> int:
        """The next sequence number; wraps well before uint32 overflows."""
        if self._seq > 0xFFFFFFFF - WINDOW:
            self._seq = 1
        return self._seq

    def _check_usable(self, operation: str) -> None:
        if self.fd < 0:
            raise error_for(_errno.EBADF, operation, (), None, "the netlink handle is closed")
        if self.pid != _pid:
            raise error_for(_errno.EBADF, operation, (), None, "the netlink handle was made "
                            "before fork(); make a new one in this process")

    def exchange(self, requests: Sequence[Request]) -> list[Reply]:
        """Send ``requests`` and return one Reply each, in order.

        Raises ``ExchangeError`` for a failure of the exchange itself
        (timeout, receive buffer overflow (ENOBUFS), a socket error, ...):
        the operation named is the first request whose fate is unknown, its
        ``replies`` hold what is known — one Reply per request, None for
        each whose fate is unknown — and ``sent`` how many requests were
        sent (those after them were not).  A closed handle, or one made
        before ``fork()``, raises NetlinkError (EBADF) with nothing sent.  The socket stays
        usable: a late reply to an old request is never taken for a new one.
        """
        with self._lock:
            self._check_usable(requests[0].operation if requests else "netlink")
            return self._exchange_all(requests)

    def _exchange_all(self, requests: Sequence[Request]) -> list[Reply]:
        replies: list = []
        start = 0
        try:
            while start < len(requests):
                start = self._exchange_window(requests, start, replies)
        except NetlinkError as e:
            known = e.replies if isinstance(e, ExchangeError) else []   # of the failed window
            sent = len(replies) + len(known)        # requests after these were never sent
            raise error_for(e.errno, e.operation, e.arguments, e.interface, e.ext_ack,
                            cls=ExchangeError, sent=sent,
                            replies=replies + known + [None] * (len(requests) - sent)) from None
        return replies

    def dump_links(self, request: Request) -> list[RawLink]:
        """Run a link dump request (RTM_GETLINK with NLM_F_DUMP) and return
        every link it lists; redone if the kernel says the dump was
        interrupted by a concurrent change."""
        with self._lock:
            self._check_usable(request.operation)
            for _ in range(DUMP_RETRIES + 1):
                links, interrupted = self._dump_once(request)
                if not interrupted:
                    return links
        raise request.error(_errno.EAGAIN, f"the dump was interrupted {DUMP_RETRIES + 1} times "
                            "by concurrent changes")

    def _dump_once(self, request: Request) -> tuple[list[RawLink], bool]:
        b = _buffers
        buf, dump = b.buf, b.dump
        seq = self._next_seq()
        self._seq = seq + 1
        buf.len = 0
        err = request.encode(buf, seq) or lib.pn_send(self.fd, buf)
        if err:
            raise request.error(-err)
        dump.n = dump.done = dump.error = dump.interrupted = dump.truncated = 0
        links: list[RawLink] = []
        while not dump.done:
            err = lib.pn_dump_recv(self.fd, self.portid, seq, self.timeout_ms, b.rbuf, b.rcap, dump)
            links.extend(_raw_link(dump.links[i]) for i in range(dump.n))
            dump.n = 0
            if err == -_errno.EMSGSIZE and dump.truncated:
                b.grow(dump.truncated)              # the next part is bigger: make room, go on
                buf, dump = b.buf, b.dump
                dump.truncated = 0
            elif err:
                raise request.error(-err, "the dump did not complete")
        if dump.error:
            raise request.error(-dump.error)
        return links, bool(dump.interrupted)

    def _exchange_window(self, requests: Sequence[Request], start: int,
                         replies: list[Reply]) -> int:
        b = _buffers
        buf, first = b.buf, self._next_seq()
        buf.len = 0
        end = start
        while end < len(requests) and end - start < WINDOW:
            err = requests[end].encode(buf, first + end - start)
            if err == -_errno.ENOSPC and end > start:
                break                       # buffer full: send what we have
            if err:
                raise requests[end].error(-err, "the C encoder refused the request")
            end += 1
        count = end - start
        self._seq = first + count
        results = b.results
        rc = lib.pn_transact(self.fd, self.portid, buf, first, count, WINDOW, self.timeout_ms,
                             results, b.rbuf, b.rcap)
        if rc < 0:                                  # the exchange failed: say what is known
            window = [None if results[i].error == lib.PN_PENDING
                      else _reply(results[i], requests[start + i].index_only) for i in range(count)]
            pending = requests[start + next((i for i, r in enumerate(window) if r is None), 0)]
            raise error_for(-rc, pending.operation, pending.arguments, pending.interface,
                            "no answer from the kernel", cls=ExchangeError, replies=window)
        window = [_reply(results[i], requests[start + i].index_only) for i in range(count)]
        if rc:                                      # rc replies did not fit the buffer
            cut = [i for i in range(count) if results[i].truncated and not window[i].errno]
            if cut:
                needed = max(results[i].truncated for i in cut)
                window = self._ask_again(requests, start, window, cut, needed)
        replies.extend(window)
        return end

    def _ask_again(self, requests: Sequence[Request], start: int, window: list,
                   cut: list, needed: int) -> list:
        """Replies that did not fit the receive buffer (a link with very
        many VFs, say): grow it and send those requests — reads — again.
        (Bounded: the buffer at least doubles each time, up to PN_MAX_BUF.)"""
        try:
            if any(not requests[start + i].reads for i in cut):
                raise requests[start + cut[0]].error(_errno.EMSGSIZE, "the reply did not fit")
            _buffers.grow(needed)
            again = self._exchange_all([requests[start + i] for i in cut])
        except NetlinkError as e:                   # this window was sent: say what is known
            raise error_for(e.errno, e.operation, e.arguments, e.interface, e.ext_ack,
                            cls=ExchangeError,
                            replies=[None if i in cut else r for i, r in enumerate(window)]) from None
        for i, reply in zip(cut, again):
            window[i] = reply
        return window
