"""The C walker over one notification datagram (``pn_parse_events``: what a
subscription decodes of each message ``ip monitor`` would print), judged
against the independent codec (``nlwire``): datagrams of link, address,
route and neighbour notifications (RTM_NEW* and RTM_DEL*, every attribute
the decoders read, among messages of other kinds) give every event, in
order, with the records the codec reads; mutated datagrams give what the
codec, reading as the kernel does, says (or -EBADMSG where it refuses a
length); arbitrary bytes give a count or -EBADMSG, never a write past the
events reported (each input sits in storage of exactly its size)."""
from __future__ import annotations

import errno
import socket
import struct
from typing import List, NamedTuple, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlwire as w
import nlwire_neigh as nn
from nlwire import C
from pynetlink import _core
from pynetlink._core import ffi, lib
from pynetlink.errors import NetlinkError
from test_decoders import addr_view, mutate
from test_decoders_fuzz import (MUTATION, addr_messages, link_messages, link_record, read_route,
                                route_messages, route_record)
from test_neigh_codec import kernel_messages, view_of

pytestmark = pytest.mark.unit

# examples: a third of the hypothesis profile's count (conftest; "long" is the thorough run)
FAST = settings(deadline=None, max_examples=settings.default.max_examples // 3,
                suppress_health_check=[HealthCheck.too_slow])
FEWER = settings(deadline=None, max_examples=settings.default.max_examples // 10,
                 suppress_health_check=[HealthCheck.too_slow])
GUARD = 2                               # events past the count, which must never be written
EVENT_SIZE = ffi.sizeof("struct pn_event")


class Kind(NamedTuple):
    new: int
    delete: int
    generate: object                    # strategy of Generated (an RTM_NEW* message)
    read: object                        # nlwire Message (as RTM_NEW*) -> record; a
                                        # neighbour's: the message's bytes -> record
    view: object                        # the C body -> record


def neigh_read(msg: bytes) -> nn.NeighView:
    """The neighbour codec's reading of an RTM_NEWNEIGH/DELNEIGH, but for
    its type (the event's, checked as every kind's)."""
    return nn.read_neigh(msg)._replace(type=0)


def neigh_view(c) -> nn.NeighView:
    """The C decoder's struct pn_neigh_info as the neighbour codec tests view it."""
    return view_of(c)._replace(type=0)


class Generated(NamedTuple):
    msg: bytes
    want: tuple


@st.composite
def neigh_messages(draw, seq=0, pid=0, msg_flags=0):
    """A neighbour message of the neighbour codec tests' generator (any
    ndmsg, every attribute, duplicated, short, unknown): its reading is
    what those tests hold the C decoder to."""
    msg = draw(kernel_messages())
    return Generated(msg, neigh_read(msg))


KINDS = {
    "link": Kind(C.RTM_NEWLINK, C.RTM_DELLINK, link_messages, w.read_link,
                 lambda b: link_record(b.link)),
    "address": Kind(C.RTM_NEWADDR, C.RTM_DELADDR, addr_messages, w.read_addr,
                    lambda b: addr_view(b.addr)),
    "route": Kind(C.RTM_NEWROUTE, C.RTM_DELROUTE, route_messages, read_route,
                  lambda b: route_record(b.route)),
    "neighbour": Kind(C.RTM_NEWNEIGH, C.RTM_DELNEIGH, neigh_messages, neigh_read,
                      lambda b: neigh_view(b.neigh)),
}
BY_TYPE = {t: k for k in KINDS.values() for t in (k.new, k.delete)}
# Messages of other kinds a notification socket may see: skipped.
OTHER_TYPES = [C.NLMSG_NOOP, C.RTM_GETLINK, C.RTM_GETADDR, C.RTM_GETROUTE, C.RTM_SETLINK,
               C.RTM_NEWLINK + 100]


def retyped(msg: bytes, msg_type: int) -> bytes:
    return msg[:4] + struct.pack("=H", msg_type) + msg[6:]


@st.composite
def datagrams(draw):
    """(datagram, [(type, family, record)]): notifications of every kind,
    RTM_NEW* and RTM_DEL*, in any order among messages of other kinds."""
    parts, want = [], []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 4)) == 0:
            body = draw(st.binary(max_size=24))
            parts.append(w.nlmsg(draw(st.sampled_from(OTHER_TYPES)), 0, 0, 0, body))
            continue
        kind = KINDS[draw(st.sampled_from(sorted(KINDS)))]
        gen = draw(kind.generate(seq=0, pid=0, msg_flags=0))
        msg_type = draw(st.sampled_from([kind.new, kind.delete]))
        parts.append(retyped(gen.msg, msg_type))
        want.append((msg_type, gen.msg[w.NLMSG_HDRLEN], gen.want))
    return b"".join(parts), want


def c_events(data: bytes, cap=None) -> Tuple[int, List[tuple]]:
    """(rc, [(type, family, record)]) of pn_parse_events over data, in
    storage of exactly its size; the events past rc (past cap on failure,
    when out may be partly written) must be untouched."""
    cap = len(data) // lib.PN_EVENT_MSG_MIN + 1 if cap is None else cap
    buf = ffi.new("unsigned char[]", data or b"\0")
    out = ffi.new("struct pn_event[]", cap + GUARD)
    ffi.memmove(out, b"\xee" * (EVENT_SIZE * (cap + GUARD)), EVENT_SIZE * (cap + GUARD))
    rc = lib.pn_parse_events(buf, len(data), out, cap)
    written = rc if rc >= 0 else cap
    untouched = bytes(ffi.buffer(out + written, EVENT_SIZE * (cap + GUARD - written)))
    assert untouched == b"\xee" * len(untouched), "an event past the count was written"
    assert bytes(ffi.buffer(buf, len(data))) == data, "the datagram was written to"
    events = [(e.type, e.family, BY_TYPE[e.type].view(e.body)) for e in out[0:max(rc, 0)]]
    return rc, events


def codec_events(data: bytes) -> Tuple[int, List[tuple]]:
    """What pn_parse_events must give: the codec's reading of each
    notification (as the kernel reads, strict=False), or -EBADMSG where it
    refuses a length."""
    found = []
    try:
        for h, raw in w.split(data, strict=False):
            kind = BY_TYPE.get(h.type)
            if kind is None:
                continue
            if kind.new == C.RTM_NEWNEIGH:
                record = kind.read(raw)
            else:
                record = kind.read(w.decode_body(h._replace(type=kind.new), raw, strict=False))
            found.append((h.type, raw[w.NLMSG_HDRLEN], record))
    except (w.WireError, ValueError):
        return -errno.EBADMSG, []
    return len(found), found


@FAST
@given(case=datagrams())
def test_every_notification_of_a_datagram_is_decoded_in_order(case):
    data, want = case
    assert c_events(data) == (len(want), want)


@FEWER
@given(case=datagrams())
def test_the_codec_reads_what_was_generated(case):
    """The reference the mutation test relies on."""
    data, want = case
    assert codec_events(data) == (len(want), want)


@FAST
@given(case=datagrams(), ops=st.lists(MUTATION.filter(lambda op: op[0] != "len"),
                                      min_size=1, max_size=3))
def test_mutated_datagrams_are_decoded_as_the_codec_reads_them(case, ops):
    data = mutate(case[0], ops)
    assert c_events(data) == codec_events(data)


@FAST
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_give_a_count_or_ebadmsg(data):
    rc, events = c_events(data)
    assert rc == -errno.EBADMSG or 0 <= rc == len(events) <= len(data) // lib.PN_EVENT_MSG_MIN


@FAST
@given(case=datagrams())
def test_more_events_than_room_is_enospc(case):
    data, want = case
    if want:
        assert c_events(data, cap=len(want) - 1)[0] == -errno.ENOSPC


def test_a_bridge_port_message_keeps_its_family():
    msg = w.nlmsg(C.RTM_DELLINK, 0, 0, 0, w.ifinfomsg(socket.AF_BRIDGE, 1, 5, 0, 0)
                  + w.str_attr(C.IFLA_IFNAME, b"veth0"))
    [(msg_type, family, body)] = _core.parse_events(msg)
    assert (msg_type, family, body["index"], body["name"]) == (C.RTM_DELLINK, socket.AF_BRIDGE, 5,
                                                               "veth0")


def test_parse_events_raises_ebadmsg_for_malformed_bytes():
    with pytest.raises(NetlinkError) as e:
        _core.parse_events(b"\xff" * 20)
    assert e.value.errno == errno.EBADMSG


def test_the_decoders_of_replies_still_refuse_a_del_message():
    """pn_parse_link (replies, dumps) reads RTM_NEWLINK only; the notification
    walker reads RTM_DELLINK through pn_parse_link_as."""
    msg = retyped(w.newlink(0, 0, 3, name=b"eth0"), C.RTM_DELLINK)
    buf = ffi.new("unsigned char[]", msg)
    out = ffi.new("struct pn_link_info *")
    assert lib.pn_parse_link(buf, len(msg), out) == -errno.EBADMSG
    assert lib.pn_parse_link_as(buf, len(msg), C.RTM_DELLINK, out) == 0
    assert (out.index, ffi.string(out.name)) == (3, b"eth0")
