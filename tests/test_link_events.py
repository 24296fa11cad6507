"""The C decoder of link notifications (``pn_link_events``: what ``ip monitor
link`` reads of each RTM_NEWLINK/RTM_DELLINK), fed crafted datagrams built
with the independent codec (``nlwire``), and arbitrary bytes: a count or
-EBADMSG, never a read past the datagram (each input sits in storage of
exactly its size; tools/valgrind-check and tools/sanitize-tests catch any
access past it) nor a write past the events reported."""
from __future__ import annotations

import errno
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nlwire as w
from nlwire import C
from pynetlink import _core
from pynetlink._core import LinkEvent, ffi, lib
from pynetlink.errors import NetlinkError

pytestmark = pytest.mark.unit

GUARD = 2                       # events past the count, which must never be written
EVENT_SIZE = ffi.sizeof("struct pn_link_event")
FAST = settings(deadline=None)


def link_msg(msg_type: int, index: int, flags: int = 0, family: int = socket.AF_UNSPEC,
             attrs: bytes = b"") -> bytes:
    """An RTM_NEWLINK/RTM_DELLINK notification as the kernel multicasts it (seq 0, pid 0)."""
    return w.nlmsg(msg_type, 0, 0, 0, w.ifinfomsg(family, 1, index, flags, 0) + attrs)


def decode(data: bytes, cap: int = 16):
    """(rc, events) of pn_link_events over ``data`` in storage of exactly its
    size; the events past rc (and GUARD more past cap) are checked unwritten."""
    buf = ffi.new("unsigned char[]", len(data)) if data else ffi.NULL
    if data:
        ffi.memmove(buf, data, len(data))
    out = ffi.new("struct pn_link_event[]", cap + GUARD)
    ffi.memmove(out, b"\xee" * (EVENT_SIZE * (cap + GUARD)), EVENT_SIZE * (cap + GUARD))
    rc = lib.pn_link_events(buf, len(data), out, cap)
    if data:
        assert bytes(ffi.buffer(buf, len(data))) == data, "the datagram was written to"
    written = rc if rc >= 0 else cap
    untouched = bytes(ffi.buffer(out, EVENT_SIZE * (cap + GUARD)))[EVENT_SIZE * written:]
    assert untouched == b"\xee" * len(untouched), "an event past the count was written"
    return rc, [LinkEvent(e.type, e.family, e.index, e.flags) for e in out[0:max(rc, 0)]]


def test_a_dellink_gives_its_type_family_index_and_flags():
    msg = link_msg(C.RTM_DELLINK, 7, C.IFF_UP | C.IFF_BROADCAST, attrs=w.str_attr(C.IFLA_IFNAME, b"eth0"))
    assert decode(msg) == (1, [LinkEvent(C.RTM_DELLINK, socket.AF_UNSPEC, 7, C.IFF_UP | C.IFF_BROADCAST)])


def test_a_bridge_ports_dellink_keeps_its_family():
    msg = link_msg(C.RTM_DELLINK, 3, family=socket.AF_BRIDGE)
    assert decode(msg) == (1, [LinkEvent(C.RTM_DELLINK, socket.AF_BRIDGE, 3, 0)])


def test_link_messages_come_in_order_and_others_are_skipped():
    data = (link_msg(C.RTM_NEWLINK, 4) + w.done(1, 0) +
            w.nlmsg(C.RTM_NEWADDR, 0, 0, 0, w.ifaddrmsg(index=4)) + link_msg(C.RTM_DELLINK, 5) +
            w.nlmsg(C.RTM_DELADDR, 0, 0, 0, w.ifaddrmsg(index=5)))
    rc, events = decode(data)
    assert rc == 2
    assert [(e.type, e.index) for e in events] == [(C.RTM_NEWLINK, 4), (C.RTM_DELLINK, 5)]


def test_an_empty_datagram_has_no_events():
    assert decode(b"") == (0, [])


def test_trailing_bytes_shorter_than_a_header_are_ignored():
    assert decode(link_msg(C.RTM_DELLINK, 9) + b"\0" * (w.NLMSG_HDRLEN - 1))[0] == 1


def test_a_link_message_shorter_than_its_family_header_is_ebadmsg():
    short = w.nlmsg(C.RTM_DELLINK, 0, 0, 0, w.ifinfomsg(index=2)[:8])
    assert decode(short)[0] == -errno.EBADMSG


def test_a_short_message_of_another_type_is_skipped():
    assert decode(w.nlmsg(C.RTM_NEWADDR, 0, 0, 0, b"") + link_msg(C.RTM_DELLINK, 2))[0] == 1


def test_a_length_past_the_datagram_is_ebadmsg():
    msg = link_msg(C.RTM_DELLINK, 2)
    assert decode(msg[:-4])[0] == -errno.EBADMSG


def test_a_length_below_a_header_is_ebadmsg():
    msg = bytearray(link_msg(C.RTM_DELLINK, 2))
    struct.pack_into("=I", msg, 0, w.NLMSG_HDRLEN - 1)
    assert decode(bytes(msg))[0] == -errno.EBADMSG


def test_more_events_than_room_is_enospc():
    data = b"".join(link_msg(C.RTM_DELLINK, i) for i in range(1, 5))
    assert decode(data, cap=3)[0] == -errno.ENOSPC
    assert decode(data, cap=4)[0] == 4


def test_nothing_past_len_is_read():
    data = link_msg(C.RTM_DELLINK, 2) + link_msg(C.RTM_DELLINK, 3)
    buf = ffi.new("unsigned char[]", data)
    out = ffi.new("struct pn_link_event[]", 4)
    assert lib.pn_link_events(buf, len(data) // 2, out, 4) == 1


def test_parse_link_events_returns_link_events():
    data = link_msg(C.RTM_NEWLINK, 11, C.IFF_UP) + link_msg(C.RTM_DELLINK, 11)
    assert _core.parse_link_events(data) == [LinkEvent(C.RTM_NEWLINK, socket.AF_UNSPEC, 11, C.IFF_UP),
                                             LinkEvent(C.RTM_DELLINK, socket.AF_UNSPEC, 11, 0)]


def test_parse_link_events_raises_ebadmsg_for_malformed_bytes():
    with pytest.raises(NetlinkError) as info:
        _core.parse_link_events(b"\xff" * 20)
    assert info.value.errno == errno.EBADMSG


# -- properties ----------------------------------------------------------------------------------

def expected(data: bytes):
    """What the codec, reading as a receiver does (``strict=False``), says
    pn_link_events must return: the link events, or -EBADMSG."""
    events = []
    try:
        for h, raw in w.split(data, strict=False):
            if h.type not in (C.RTM_NEWLINK, C.RTM_DELLINK):
                continue
            if h.len < w.NLMSG_HDRLEN + len(w.ifinfomsg()):
                return -errno.EBADMSG, []
            family, _, index, flags, _ = w.IFINFOMSG.unpack_from(raw, w.NLMSG_HDRLEN)
            events.append(LinkEvent(h.type, family, index, flags))
    except w.WireError:
        return -errno.EBADMSG, []
    return len(events), events


MSG_TYPES = st.sampled_from([C.RTM_NEWLINK, C.RTM_DELLINK, C.RTM_NEWADDR, C.NLMSG_DONE,
                             C.NLMSG_ERROR, C.RTM_NEWROUTE])


@st.composite
def datagrams(draw):
    """Well-formed datagrams of link and other messages, some then mutated."""
    parts = []
    for msg_type in draw(st.lists(MSG_TYPES, max_size=6)):
        body = draw(st.binary(max_size=40))
        if msg_type in (C.RTM_NEWLINK, C.RTM_DELLINK) and draw(st.booleans()):
            body = w.ifinfomsg(draw(st.integers(0, 255)), 1, draw(st.integers(-(2**31), 2**31 - 1)),
                               draw(st.integers(0, 2**32 - 1)), 0) + body
        parts.append(w.nlmsg(msg_type, 0, 0, 0, body))
    data = bytearray(b"".join(parts))
    for _ in range(draw(st.integers(0, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if data and draw(st.booleans()):
        del data[draw(st.integers(0, len(data) - 1)):]
    return bytes(data)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_count_or_ebadmsg(data):
    rc, events = decode(data, cap=len(data) // w.NLMSG_HDRLEN + 1)
    assert rc >= 0 or rc == -errno.EBADMSG
    assert (rc, events) == expected(data)


@FAST
@given(datagrams())
def test_datagrams_decode_as_the_codec_reads_them(data):
    assert decode(data, cap=len(data) // w.NLMSG_HDRLEN + 1) == expected(data)
