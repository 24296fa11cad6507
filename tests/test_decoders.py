"""Kernel-free tests of the C reply decoders (pn_parse_link, pn_parse_replies).

Replies are built by ``nlwire`` the way the kernel builds them
(``netlink_ack()``, ``rtnl_fill_ifinfo()``), then handed to the C core;
hypothesis also feeds it arbitrary bytes and mutated replies.
"""
from __future__ import annotations

import errno
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlwire as w
from nlwire import C
from pynetlink._core import _reply, ffi, lib

pytestmark = pytest.mark.unit

FAST = settings(deadline=None)            # examples: the hypothesis profile (conftest)
FUZZ = settings(deadline=None, max_examples=settings.default.max_examples * 5 // 3,
                suppress_health_check=[HealthCheck.too_slow])

PENDING = lib.PN_PENDING
PORT = 0x5EED0042
FIRST = 1000
GUARD = 2                       # results past `count`, which must never be written
RESULT_SIZE = ffi.sizeof("struct pn_result")
REQ = C.NLM_F_REQUEST | C.NLM_F_ACK
U32 = st.integers(0, 0xFFFFFFFF)
U64 = st.integers(0, 2**64 - 1)
COUNTERS = w.STATS64_FIELDS[:8]     # the eight pn_link_info carries


# -- calling the decoders --------------------------------------------------------

def pending(count: int, first: int = FIRST):
    """Results as pn_transact sets them up, plus GUARD extra entries."""
    res = ffi.new("struct pn_result[]", count + GUARD)
    for i in range(count + GUARD):
        res[i].seq = (first + i) & 0xFFFFFFFF
        res[i].error = PENDING
    return res


def raw_result(res, i: int) -> bytes:
    return bytes(ffi.buffer(res + i, RESULT_SIZE))


def parse(data: bytes, res, count: int, portid: int = PORT, first: int = FIRST) -> int:
    buf = ffi.new("unsigned char[]", bytes(data) or b"\0")
    rc = lib.pn_parse_replies(buf, len(data), portid, first, count, res)
    assert bytes(ffi.buffer(buf, len(data))) == bytes(data), "the datagram was written to"
    return rc


def parse_link(msg: bytes, length=None):
    buf = ffi.new("unsigned char[]", bytes(msg) or b"\0")
    out = ffi.new("struct pn_link_info *")
    ffi.memmove(out, b"\xee" * ffi.sizeof(out[0]), ffi.sizeof(out[0]))   # garbage in
    rc = lib.pn_parse_link(buf, len(msg) if length is None else length, out)
    return rc, out


def ext_msg(r) -> bytes:
    return ffi.string(r.ext_msg)


def counters(info) -> tuple:
    return tuple(getattr(info, f) for f in COUNTERS)


def request(seq: int, name: bytes = b"eth0", mtu: int = 1500) -> bytes:
    """An RTM_SETLINK request as the kernel received it (for quoting in ACKs)."""
    return w.nlmsg(C.RTM_SETLINK, REQ, seq, PORT,
                   w.ifinfomsg() + w.str_attr(C.IFLA_IFNAME, name) + w.u32_attr(C.IFLA_MTU, mtu))


# ===============================================================================
# The reference builders, read back by the reference decoder
# ===============================================================================

def test_reference_uncapped_ack_quotes_the_request_then_its_tlvs():
    req = request(FIRST, b"eth0", 9000)
    m = w.decode_one(w.ack(FIRST, PORT, -errno.EINVAL, req, capped=False, ext_msg=b"why"))
    assert m.flags == C.NLM_F_ACK_TLVS
    assert m.fixed == w.NlmsgErr(-errno.EINVAL, w.Header(*w.NLMSGHDR.unpack_from(req)), req[16:])
    assert [(a.type, a.string()) for a in m.attrs] == [(C.NLMSGERR_ATTR_MSG, b"why")]


def test_reference_success_ack_is_capped_with_the_request_header_only():
    m = w.decode_one(w.ack(FIRST, PORT, 0, request(FIRST)))
    assert (m.flags, m.fixed.error, m.fixed.msg.seq, m.fixed.payload, m.attrs) == (
        C.NLM_F_CAPPED, 0, FIRST, b"", ())


def test_reference_newlink_reply_carries_the_attributes_given():
    st64 = w.stats64(rx_packets=3)
    m = w.decode_one(w.newlink(FIRST, PORT, 7, C.IFF_UP, name=b"eth0", mtu=1500, master=2,
                               group=4, txqlen=1000, stats=st64))
    got = {a.type: a.payload for a in m.attrs}
    assert (m.type, m.fixed.index, m.fixed.flags) == (C.RTM_NEWLINK, 7, C.IFF_UP)
    assert got == {C.IFLA_IFNAME: b"eth0\0", C.IFLA_MTU: struct.pack("=I", 1500),
                   C.IFLA_MASTER: struct.pack("=I", 2), C.IFLA_GROUP: struct.pack("=I", 4),
                   C.IFLA_TXQLEN: struct.pack("=I", 1000), C.IFLA_STATS64: st64}


# ===============================================================================
# ACKs
# ===============================================================================

def test_success_ack_completes_its_request():
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, 0), res, 1) == 1
    assert res[0].error == 0


@FAST
@given(err=st.integers(1, 4095))
def test_error_ack_reports_the_negative_errno(err):
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, -err, request(FIRST)), res, 1) == 1
    assert res[0].error == -err


@FAST
@given(err=st.integers(1, 2**31 - 1))
def test_positive_error_code_is_reported_as_eproto(err):
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, err), res, 1) == 1
    assert res[0].error == -errno.EPROTO


def test_ack_does_not_fill_link_data():
    res = pending(1)
    parse(w.ack(FIRST, PORT, 0), res, 1)
    assert res[0].has_link == 0


def test_uncapped_error_ack_quoting_the_request_is_accepted():
    msg = w.ack(FIRST, PORT, -errno.EINVAL, request(FIRST), capped=False)
    assert not w.decode_one(msg).flags & C.NLM_F_CAPPED
    res = pending(1)
    assert parse(msg, res, 1) == 1
    assert (res[0].error, ext_msg(res[0])) == (-errno.EINVAL, b"")


def test_ack_without_tlvs_leaves_ext_msg_empty():
    res = pending(1)
    parse(w.ack(FIRST, PORT, -errno.ENODEV, request(FIRST), capped=True), res, 1)
    assert ext_msg(res[0]) == b""


@pytest.mark.parametrize("capped", [True, False], ids=["capped", "uncapped"])
def test_ext_ack_text_is_copied(capped):
    msg = w.ack(FIRST, PORT, -errno.EINVAL, request(FIRST), capped=capped,
                ext_msg=b"mtu greater than device maximum")
    res = pending(1)
    assert parse(msg, res, 1) == 1
    assert (res[0].error, ext_msg(res[0])) == (-errno.EINVAL, b"mtu greater than device maximum")


@FAST
@given(text=st.binary(max_size=240).filter(lambda b: 0 not in b), capped=st.booleans(),
       err=st.integers(-4095, 0))
def test_ext_ack_text_roundtrips(text, capped, err):
    msg = w.ack(FIRST, PORT, err, request(FIRST, b"x" * 7), capped=capped, ext_msg=text)
    res = pending(1)
    assert parse(msg, res, 1) == 1
    assert ext_msg(res[0]) == text


def test_success_ack_may_carry_ext_ack_text():
    res = pending(1)
    parse(w.ack(FIRST, PORT, 0, ext_msg=b"warning: something"), res, 1)
    assert (res[0].error, ext_msg(res[0])) == (0, b"warning: something")


@pytest.mark.parametrize("n, kept", [(255, 255), (256, 255), (300, 255), (4000, 255)])
@pytest.mark.parametrize("capped", [True, False], ids=["capped", "uncapped"])
def test_ext_ack_text_longer_than_255_bytes_is_cut_and_terminated(n, kept, capped):
    text = bytes((0x41 + i % 26) for i in range(n))
    res = pending(1)
    parse(w.ack(FIRST, PORT, -errno.EINVAL, request(FIRST), capped=capped, ext_msg=text), res, 1)
    raw = bytes(ffi.buffer(res[0].ext_msg))
    assert raw[:kept] == text[:kept] and raw[kept] == 0


def test_ext_ack_text_without_terminator_is_terminated():
    res = pending(1)
    parse(w.ack(FIRST, PORT, -errno.EINVAL, ext_msg=b"abc", msg_terminated=False), res, 1)
    assert ext_msg(res[0]) == b"abc"


def test_ext_ack_other_tlvs_are_skipped():
    tlvs = (w.u32_attr(C.NLMSGERR_ATTR_OFFS, 32) + w.rtattr(C.NLMSGERR_ATTR_COOKIE, b"\1\2\3")
            + w.rtattr(C.NLMSGERR_ATTR_MISS_TYPE, b"\3\0\0\0"))
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, -errno.EINVAL, tlvs=tlvs, ext_msg=b"hello"), res, 1) == 1
    assert ext_msg(res[0]) == b"hello"


def test_ext_ack_tlvs_without_a_message_leave_ext_msg_empty():
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, -errno.EINVAL, tlvs=w.u32_attr(C.NLMSGERR_ATTR_OFFS, 20)),
                 res, 1) == 1
    assert (res[0].error, ext_msg(res[0])) == (-errno.EINVAL, b"")


def test_ack_shorter_than_nlmsgerr_is_ebadmsg_and_completes_nothing():
    bad = w.nlmsg(C.NLMSG_ERROR, C.NLM_F_CAPPED, FIRST, PORT, struct.pack("=i", -1))
    res = pending(1)
    assert parse(bad, res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


def test_uncapped_ack_whose_quoted_length_overruns_is_ebadmsg():
    good = bytearray(w.ack(FIRST, PORT, -errno.EINVAL, request(FIRST), capped=False, ext_msg=b"x"))
    struct.pack_into("=I", good, w.NLMSG_HDRLEN + 4, len(good) + 4)   # nlmsgerr.msg.nlmsg_len
    res = pending(1)
    assert parse(bytes(good), res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


def test_uncapped_ack_whose_quoted_length_is_below_a_header_is_ebadmsg():
    good = bytearray(w.ack(FIRST, PORT, -errno.EINVAL, request(FIRST), capped=False, ext_msg=b"x"))
    struct.pack_into("=I", good, w.NLMSG_HDRLEN + 4, 8)
    res = pending(1)
    assert parse(bytes(good), res, 1) == -errno.EBADMSG


@pytest.mark.parametrize("back", [4, 8, 16, 20])
def test_uncapped_ack_whose_quoted_request_leaves_no_room_for_itself_is_ebadmsg(back):
    # the quoted length fits the message, but the quote (after nlmsgerr.error) does not
    good = bytearray(w.ack(FIRST, PORT, -errno.EINVAL, request(FIRST), capped=False, ext_msg=b"x"))
    struct.pack_into("=I", good, w.NLMSG_HDRLEN + 4, len(good) - back + 4)
    res = pending(1)
    assert parse(bytes(good), res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


@pytest.mark.parametrize("quoted_len", [0, 4, 8, 12])
def test_uncapped_ack_quoting_less_than_a_header_is_ebadmsg_even_if_tlvs_would_parse(quoted_len):
    # Were a quoted length under 16 trusted, the TLV walk would start inside the
    # quoted header; its words are laid out here as valid empty TLVs so that
    # only the length check itself can refuse the message.
    empty_tlv = struct.unpack("=I", struct.pack("=HH", 4, C.NLMSGERR_ATTR_UNUSED))[0]
    msg_type, msg_flags = (4, 0) if quoted_len == 4 else (C.RTM_SETLINK, REQ)
    body = (w.NLMSGERR.pack(-errno.EINVAL, quoted_len, msg_type, msg_flags, empty_tlv, empty_tlv)
            + w.rtattr(C.NLMSGERR_ATTR_MSG, b"hi\0"))
    bad = w.nlmsg(C.NLMSG_ERROR, C.NLM_F_ACK_TLVS, FIRST, PORT, body)
    res = pending(1)
    assert parse(bad, res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


def test_ack_with_malformed_tlv_is_ebadmsg_and_leaves_the_result_pending():
    bad = w.nlmsg(C.NLMSG_ERROR, C.NLM_F_CAPPED | C.NLM_F_ACK_TLVS, FIRST, PORT,
                  w.NLMSGERR.pack(-errno.EINVAL, w.NLMSG_HDRLEN, C.RTM_SETLINK, REQ, FIRST, PORT)
                  + struct.pack("=HH", 200, C.NLMSGERR_ATTR_MSG) + b"abc\0")
    res = pending(1)
    assert parse(bad, res, 1) == -errno.EBADMSG
    assert (res[0].error, ext_msg(res[0])) == (PENDING, b"")


# -- NLMSG_DONE (the end of a dump completes a request like an ACK) -------------

def test_done_ending_a_dump_completes_its_request():
    res = pending(1)
    assert parse(w.done(FIRST, PORT, 0), res, 1) == 1
    assert (res[0].error, ext_msg(res[0])) == (0, b"")


@FAST
@given(err=st.integers(1, 4095))
def test_done_carrying_an_error_reports_the_negative_errno(err):
    res = pending(1)
    assert parse(w.done(FIRST, PORT, -err), res, 1) == 1
    assert res[0].error == -err


def test_done_with_positive_error_is_reported_as_eproto():
    res = pending(1)
    parse(w.done(FIRST, PORT, 7), res, 1)
    assert res[0].error == -errno.EPROTO


def test_done_without_its_error_int_is_ebadmsg_and_completes_nothing():
    res = pending(1)
    assert parse(w.nlmsg(C.NLMSG_DONE, C.NLM_F_MULTI, FIRST, PORT, b""), res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


def test_link_replies_then_done_give_link_and_completion():
    data = w.newlink(FIRST, PORT, 4, name=b"a", msg_flags=C.NLM_F_MULTI) + w.done(FIRST, PORT, 0)
    res = pending(1)
    assert parse(data, res, 1) == 1
    assert (res[0].error, res[0].has_link, res[0].link.index) == (0, 1, 4)


# ===============================================================================
# Matching messages to requests
# ===============================================================================

def test_several_acks_in_one_datagram_complete_each_request():
    data = w.ack(FIRST, PORT, 0) + w.ack(FIRST + 1, PORT, -errno.EEXIST) + w.ack(FIRST + 2, PORT, 0)
    res = pending(3)
    assert parse(data, res, 3) == 3
    assert [res[i].error for i in range(3)] == [0, -errno.EEXIST, 0]


@FAST
@given(order=st.permutations(range(5)), errs=st.lists(st.integers(-200, 0), min_size=5, max_size=5))
def test_acks_in_any_order_complete_their_own_requests(order, errs):
    data = b"".join(w.ack(FIRST + i, PORT, errs[i], ext_msg=b"r%d" % i) for i in order)
    res = pending(5)
    assert parse(data, res, 5) == 5
    assert [(res[i].error, ext_msg(res[i])) for i in range(5)] == [(errs[i], b"r%d" % i) for i in range(5)]


def test_acks_may_arrive_in_separate_datagrams():
    res = pending(2)
    assert parse(w.ack(FIRST + 1, PORT, -errno.ENODEV), res, 2) == 1
    assert parse(w.ack(FIRST, PORT, 0), res, 2) == 1
    assert (res[0].error, res[1].error) == (0, -errno.ENODEV)


@pytest.mark.parametrize("pid", [0, PORT + 1, 1, 0xFFFFFFFF])
def test_message_for_another_port_is_ignored(pid):
    res = pending(1)
    assert parse(w.ack(FIRST, pid, -errno.EPERM), res, 1) == 0
    assert res[0].error == PENDING


@pytest.mark.parametrize("seq", [FIRST - 1, FIRST + 3, FIRST + 4, 0, 0xFFFFFFFF, FIRST + 2**31])
def test_message_with_seq_outside_the_window_is_ignored(seq):
    res = pending(3)
    assert parse(w.ack(seq, PORT, -errno.EPERM), res, 3) == 0
    assert all(res[i].error == PENDING for i in range(3 + GUARD))


def test_window_wrapping_past_uint32_max_matches_by_seq():
    first = 0xFFFFFFFE
    res = pending(4, first)
    data = b"".join(w.ack(s, PORT, -(s % 100)) for s in (0xFFFFFFFE, 0xFFFFFFFF, 0, 1))
    assert parse(data, res, 4, first=first) == 4
    assert [res[i].error for i in range(4)] == [-(s % 100) for s in (0xFFFFFFFE, 0xFFFFFFFF, 0, 1)]


def test_completed_result_is_not_overwritten_by_a_second_ack():
    res = pending(1)
    data = w.ack(FIRST, PORT, -errno.EEXIST, ext_msg=b"first") + w.ack(FIRST, PORT, 0, ext_msg=b"second")
    assert parse(data, res, 1) == 1
    assert (res[0].error, ext_msg(res[0])) == (-errno.EEXIST, b"first")


def test_completed_result_is_not_overwritten_by_a_later_datagram():
    res = pending(1)
    parse(w.ack(FIRST, PORT, -errno.EEXIST), res, 1)
    before = raw_result(res, 0)
    assert parse(w.ack(FIRST, PORT, 0) + w.newlink(FIRST, PORT, 3, name=b"x"), res, 1) == 0
    assert raw_result(res, 0) == before


def test_newlink_after_the_ack_does_not_change_the_result():
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, 0) + w.newlink(FIRST, PORT, 9, name=b"late"), res, 1) == 1
    assert res[0].has_link == 0


@pytest.mark.parametrize("msg_type", ["NLMSG_NOOP", "NLMSG_OVERRUN", "RTM_DELLINK", "RTM_NEWADDR",
                                      "RTM_NEWROUTE"])
def test_other_message_types_with_our_seq_are_ignored(msg_type):
    res = pending(1)
    data = w.nlmsg(C[msg_type], 0, FIRST, PORT, b"\0" * 12) + w.ack(FIRST, PORT, 0)
    assert parse(data, res, 1) == 1
    assert (res[0].error, res[0].has_link) == (0, 0)


def test_empty_datagram_completes_nothing():
    res = pending(2)
    assert parse(b"", res, 2) == 0


@pytest.mark.parametrize("tail", [b"\0", b"\0" * 15, b"\xff" * 12])
def test_trailing_bytes_shorter_than_a_header_are_ignored(tail):
    res = pending(1)
    assert parse(w.ack(FIRST, PORT, 0) + tail, res, 1) == 1


def test_datagram_longer_than_pn_max_buf_is_ebadmsg_unread():
    res = pending(1)
    buf = ffi.new("unsigned char[]", w.ack(FIRST, PORT, 0))
    assert lib.pn_parse_replies(buf, lib.PN_MAX_BUF + 4, PORT, FIRST, 1, res) == -errno.EBADMSG
    assert res[0].error == PENDING


def test_message_length_past_the_datagram_is_ebadmsg():
    msg = bytearray(w.ack(FIRST, PORT, 0))
    struct.pack_into("=I", msg, 0, len(msg) + 4)
    res = pending(1)
    assert parse(bytes(msg), res, 1) == -errno.EBADMSG
    assert res[0].error == PENDING


@pytest.mark.parametrize("n", [0, 1, 15])
def test_message_length_below_a_header_is_ebadmsg(n):
    msg = bytearray(w.ack(FIRST, PORT, 0))
    struct.pack_into("=I", msg, 0, n)
    res = pending(1)
    assert parse(bytes(msg), res, 1) == -errno.EBADMSG


def test_malformed_message_for_a_foreign_port_is_still_ebadmsg_if_its_length_is_wrong():
    msg = bytearray(w.ack(FIRST, PORT + 1, 0))
    struct.pack_into("=I", msg, 0, len(msg) + 100)
    res = pending(1)
    assert parse(bytes(msg), res, 1) == -errno.EBADMSG


def test_unaligned_message_length_is_followed_to_the_next_aligned_message():
    first = bytearray(w.newlink(FIRST, PORT, 5, name=b"ab"))      # IFLA_IFNAME rta_len 7, 1 pad byte
    struct.pack_into("=I", first, 0, len(first) - 1)               # nlmsg_len leaves the pad out
    res = pending(1)
    assert parse(bytes(first) + w.ack(FIRST, PORT, 0), res, 1) == 1
    assert ffi.string(res[0].link.name) == b"ab"


# ===============================================================================
# RTM_NEWLINK replies
# ===============================================================================

def test_newlink_reply_fills_link_but_does_not_complete():
    res = pending(1)
    assert parse(w.newlink(FIRST, PORT, 7, name=b"eth0"), res, 1) == 0
    assert (res[0].error, res[0].has_link, res[0].link.index) == (PENDING, 1, 7)


def test_newlink_reply_then_ack_in_one_datagram_gives_link_and_completion():
    data = w.newlink(FIRST, PORT, 7, C.IFF_UP, name=b"eth0", mtu=1500) + w.ack(FIRST, PORT, 0)
    res = pending(1)
    assert parse(data, res, 1) == 1
    r = res[0]
    assert (r.error, r.has_link, r.link.index, r.link.mtu, ffi.string(r.link.name)) == \
        (0, 1, 7, 1500, b"eth0")


@FAST
@given(index=st.integers(-(2**31), 2**31 - 1), flags=U32, name=st.binary(min_size=1, max_size=15)
       .filter(lambda b: 0 not in b), mtu=U32, master=U32, group=U32, txqlen=U32)
def test_newlink_reply_fields_roundtrip(index, flags, name, mtu, master, group, txqlen):
    res = pending(1)
    parse(w.newlink(FIRST, PORT, index, flags, name=name, mtu=mtu, master=master, group=group,
                    txqlen=txqlen), res, 1)
    li = res[0].link
    assert (li.index, li.flags, ffi.string(li.name), li.mtu, li.master, li.group, li.txqlen) == \
        (index, flags, name, mtu, master, group, txqlen)


def test_newlink_reply_without_stats_has_no_stats():
    res = pending(1)
    parse(w.newlink(FIRST, PORT, 1, name=b"lo"), res, 1)
    assert (res[0].link.has_stats, counters(res[0].link)) == (0, (0,) * 8)


@FAST
@given(values=st.lists(U64, min_size=len(w.STATS64_FIELDS), max_size=len(w.STATS64_FIELDS)))
def test_stats64_counters_are_decoded(values):
    st64 = w.stats64(**dict(zip(w.STATS64_FIELDS, values)))
    res = pending(1)
    parse(w.newlink(FIRST, PORT, 1, name=b"veth0", stats=st64), res, 1)
    assert res[0].link.has_stats == 1
    assert counters(res[0].link) == tuple(values[:8])


@pytest.mark.parametrize("size", [64, 23 * 8, 24 * 8, 25 * 8, 26 * 8, 40 * 8])
def test_stats64_of_older_and_newer_kernels_is_decoded(size):
    full = w.STATS64.pack(*range(1, len(w.STATS64_FIELDS) + 1))
    st64 = (full + bytes(size))[:size]
    res = pending(1)
    parse(w.newlink(FIRST, PORT, 1, stats=st64), res, 1)
    assert (res[0].link.has_stats, counters(res[0].link)) == (1, tuple(range(1, 9)))


@pytest.mark.parametrize("size", [0, 8, 56, 63])
def test_stats64_too_short_for_eight_counters_is_ignored(size):
    res = pending(1)
    parse(w.newlink(FIRST, PORT, 1, stats=bytes(range(size))), res, 1)
    assert (res[0].has_link, res[0].link.has_stats, counters(res[0].link)) == (1, 0, (0,) * 8)


def test_unknown_and_nested_attributes_are_skipped():
    extra = (w.rtattr(C.IFLA_OPERSTATE, b"\6") + w.u32_attr(C.IFLA_PROMISCUITY, 0)
             + w.rtattr(C.IFLA_LINKINFO | w.NLA_F_NESTED, w.str_attr(C.IFLA_INFO_KIND, b"veth"))
             + w.rtattr(C.IFLA_PAD, b"") + w.rtattr(0x3FFF, b"\xff" * 9))
    res = pending(1)
    parse(w.newlink(FIRST, PORT, 4, name=b"v0", extra=extra, mtu=1400), res, 1)
    assert (res[0].has_link, ffi.string(res[0].link.name), res[0].link.mtu) == (1, b"v0", 1400)
    assert ffi.string(res[0].link.kind) == b"veth"


@pytest.mark.parametrize("kind", [b"veth", b"bridge", b"k" * 15, b"k" * 40])
def test_link_kind_is_read_from_linkinfo_and_cut_to_its_field(kind):
    extra = w.rtattr(C.IFLA_LINKINFO | w.NLA_F_NESTED, w.str_attr(C.IFLA_INFO_KIND, kind))
    rc, out = parse_link(w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, w.ifinfomsg(index=2) + extra))
    assert (rc, ffi.string(out.kind)) == (0, kind[:15])


@pytest.mark.parametrize("payload, expected", [(struct.pack("=I", 7), 7), (b"\7\0", 0), (b"", 0)])
def test_link_index_is_ifla_link_when_it_holds_a_u32(payload, expected):
    body = w.ifinfomsg(index=2) + w.rtattr(C.IFLA_LINK, payload)
    rc, out = parse_link(w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, body))
    assert (rc, out.link_index) == (0, expected)


def test_attribute_type_flag_bits_are_masked_off():
    body = w.ifinfomsg(index=2) + w.rtattr(C.IFLA_MTU | w.NLA_F_NET_BYTEORDER, struct.pack("=I", 9000))
    rc, out = parse_link(w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, body))
    assert (rc, out.mtu) == (0, 9000)


def test_u32_attribute_shorter_than_four_bytes_is_ignored():
    body = w.ifinfomsg(index=2) + w.rtattr(C.IFLA_MTU, b"\1\2")
    rc, out = parse_link(w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, body))
    assert (rc, out.mtu) == (0, 0)


@pytest.mark.parametrize("name", [b"sixteen-bytes-xx", b"a" * 100])
def test_name_longer_than_ifnamsiz_is_cut_and_terminated(name):
    rc, out = parse_link(w.newlink(1, PORT, 1, name=name))
    assert (rc, bytes(ffi.buffer(out.name))) == (0, name[:15] + b"\0")


def test_name_without_terminator_is_terminated():
    body = w.ifinfomsg(index=2) + w.rtattr(C.IFLA_IFNAME, b"abcdef")
    rc, out = parse_link(w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, body))
    assert (rc, ffi.string(out.name)) == (0, b"abcdef")


def test_malformed_attribute_in_a_pending_newlink_is_ebadmsg():
    body = w.ifinfomsg(index=2) + struct.pack("=HH", 40, C.IFLA_MTU) + b"\0" * 4
    res = pending(1)
    assert parse(w.nlmsg(C.RTM_NEWLINK, 0, FIRST, PORT, body), res, 1) == -errno.EBADMSG
    assert (res[0].error, res[0].has_link) == (PENDING, 0)


def test_newlink_too_short_for_ifinfomsg_is_ebadmsg_when_pending():
    res = pending(1)
    assert parse(w.nlmsg(C.RTM_NEWLINK, 0, FIRST, PORT, b"\0" * 8), res, 1) == -errno.EBADMSG


# -- pn_parse_link directly ------------------------------------------------------

def test_parse_link_header_only_message_gives_index_and_flags():
    rc, out = parse_link(w.newlink(1, PORT, 12, C.IFF_UP | C.IFF_LOWER_UP))
    assert (rc, out.index, out.flags, out.mtu, ffi.string(out.name), out.has_stats) == \
        (0, 12, C.IFF_UP | C.IFF_LOWER_UP, 0, b"", 0)


def test_parse_link_zeroes_fields_absent_from_the_message():
    rc, out = parse_link(w.newlink(1, PORT, 3, name=b"x"))
    assert (out.mtu, out.master, out.group, out.txqlen, counters(out)) == (0, 0, 0, 0, (0,) * 8)


@pytest.mark.parametrize("msg_type", ["RTM_DELLINK", "RTM_GETLINK", "NLMSG_ERROR", "RTM_NEWADDR"])
def test_parse_link_refuses_other_message_types(msg_type):
    msg = w.nlmsg(C[msg_type], 0, 1, PORT, w.ifinfomsg(index=1) + w.u32_attr(C.IFLA_MTU, 1))
    assert parse_link(msg)[0] == -errno.EBADMSG


@pytest.mark.parametrize("cut", [0, 4, 16, 31])
def test_parse_link_refuses_buffers_shorter_than_header_and_ifinfomsg(cut):
    msg = w.newlink(1, PORT, 3, name=b"eth0")
    assert parse_link(msg[:cut])[0] == -errno.EBADMSG


def test_parse_link_refuses_nlmsg_len_beyond_the_buffer():
    msg = w.newlink(1, PORT, 3, name=b"eth0")
    assert parse_link(msg, len(msg) - 4)[0] == -errno.EBADMSG


def test_parse_link_refuses_lengths_beyond_pn_max_buf():
    assert parse_link(w.newlink(1, PORT, 3, name=b"eth0"), lib.PN_MAX_BUF + 4)[0] == -errno.EBADMSG


def test_parse_link_reads_no_attributes_past_nlmsg_len():
    msg = w.newlink(1, PORT, 3) + w.u32_attr(C.IFLA_MTU, 1234)     # MTU outside the message
    rc, out = parse_link(msg)
    assert (rc, out.mtu) == (0, 0)


# -- the Python view of results ---------------------------------------------------

def test_reply_view_of_an_error_ack_has_positive_errno_and_text():
    res = pending(1)
    parse(w.ack(FIRST, PORT, -errno.ERANGE, ext_msg=b"mtu out of range"), res, 1)
    assert tuple(_reply(res[0])) == (errno.ERANGE, "mtu out of range", None)


def test_reply_view_replaces_invalid_utf8_in_ext_ack():
    res = pending(1)
    parse(w.ack(FIRST, PORT, -errno.EINVAL, ext_msg=b"bad \xff\xfe byte"), res, 1)
    assert _reply(res[0]).ext_ack == "bad \ufffd\ufffd byte"


# ===============================================================================
# pn_parse_dump (the parts of one link dump)
# ===============================================================================

def new_dump(cap: int = 4):
    links = ffi.new("struct pn_link_info[]", cap + GUARD)
    dump = ffi.new("struct pn_dump *", {"links": links, "cap": cap})
    return dump, links


def parse_dump(data: bytes, dump, seq: int = FIRST, portid: int = PORT) -> int:
    buf = ffi.new("unsigned char[]", bytes(data) or b"\0")
    rc = lib.pn_parse_dump(buf, len(data), portid, seq, dump)
    assert bytes(ffi.buffer(buf, len(data))) == bytes(data), "the datagram was written to"
    return rc


def part(seq, index, name, flags=C.NLM_F_MULTI, pid=PORT, **kw):
    return w.newlink(seq, pid, index, name=name, msg_flags=flags, **kw)


def dumped(dump, links):
    return [(links[i].index, ffi.string(links[i].name)) for i in range(dump.n)]


def test_dump_parts_are_collected_in_order():
    dump, links = new_dump()
    data = part(FIRST, 1, b"lo") + part(FIRST, 2, b"eth0") + part(FIRST, 3, b"veth0")
    assert parse_dump(data, dump) == 3
    assert dumped(dump, links) == [(1, b"lo"), (2, b"eth0"), (3, b"veth0")]
    assert dump.done == 0


def test_dump_part_carries_mtu_and_stats():
    dump, links = new_dump()
    parse_dump(part(FIRST, 2, b"eth0", mtu=1500, stats=w.stats64(rx_bytes=10, tx_dropped=3)), dump)
    li = links[0]
    assert (li.mtu, li.has_stats, li.rx_bytes, li.tx_dropped) == (1500, 1, 10, 3)


def test_dump_done_ends_it_without_error():
    dump, links = new_dump()
    assert parse_dump(part(FIRST, 1, b"lo") + w.done(FIRST, PORT, 0), dump) == 1
    assert (dump.done, dump.error, dump.n) == (1, 0, 1)


@pytest.mark.parametrize("builder", [w.done, w.ack], ids=["done", "error"])
def test_dump_ended_by_an_error_reports_the_errno(builder):
    dump, links = new_dump()
    assert parse_dump(builder(FIRST, PORT, -errno.EPERM), dump) == 0
    assert (dump.done, dump.error) == (1, -errno.EPERM)


def test_dump_ignores_what_follows_its_end():
    dump, links = new_dump()
    data = w.done(FIRST, PORT, 0) + part(FIRST, 9, b"late") + b"\xff" * 20
    assert parse_dump(data, dump) == 0
    assert (dump.done, dump.n) == (1, 0)


def test_dump_continues_across_datagrams():
    dump, links = new_dump()
    assert parse_dump(part(FIRST, 1, b"a"), dump) == 1
    assert parse_dump(part(FIRST, 2, b"b") + w.done(FIRST, PORT, 0), dump) == 1
    assert (dumped(dump, links), dump.done) == ([(1, b"a"), (2, b"b")], 1)


@pytest.mark.parametrize("seq, pid", [(FIRST + 1, PORT), (FIRST - 1, PORT), (FIRST, PORT + 1),
                                      (FIRST, 0)])
def test_dump_ignores_parts_of_other_requests(seq, pid):
    dump, links = new_dump()
    data = part(seq, 5, b"x", pid=pid) + w.done(seq, pid, -errno.EPERM)
    assert parse_dump(data, dump) == 0
    assert (dump.n, dump.done, dump.interrupted) == (0, 0, 0)


def test_dump_intr_flag_marks_the_dump_interrupted():
    dump, links = new_dump()
    parse_dump(part(FIRST, 1, b"a", flags=C.NLM_F_MULTI | C.NLM_F_DUMP_INTR), dump)
    assert (dump.interrupted, dump.n) == (1, 1)


def test_dump_intr_flag_of_another_port_is_ignored():
    dump, links = new_dump()
    parse_dump(part(FIRST, 1, b"a", pid=PORT + 1, flags=C.NLM_F_MULTI | C.NLM_F_DUMP_INTR), dump)
    assert dump.interrupted == 0


def test_dump_full_is_enospc_and_keeps_no_part_of_the_datagram():
    dump, links = new_dump(cap=3)
    assert parse_dump(part(FIRST, 1, b"a"), dump) == 1
    data = part(FIRST, 2, b"b") + part(FIRST, 3, b"c") + part(FIRST, 4, b"d")
    assert parse_dump(data, dump) == -errno.ENOSPC
    assert (dumped(dump, links), dump.done) == ([(1, b"a")], 0)


def test_dump_refused_datagram_does_not_mark_the_dump_interrupted():
    dump, links = new_dump(cap=1)
    data = part(FIRST, 1, b"a", flags=C.NLM_F_MULTI | C.NLM_F_DUMP_INTR) + part(FIRST, 2, b"b")
    assert parse_dump(data, dump) == -errno.ENOSPC
    assert dump.interrupted == 0


def test_dump_malformed_part_is_ebadmsg_and_keeps_nothing():
    dump, links = new_dump()
    bad = w.nlmsg(C.RTM_NEWLINK, C.NLM_F_MULTI, FIRST, PORT,
                  w.ifinfomsg(index=2) + struct.pack("=HH", 99, C.IFLA_MTU))
    assert parse_dump(part(FIRST, 1, b"a") + bad, dump) == -errno.EBADMSG
    assert (dump.n, dump.done) == (0, 0)


def test_dump_malformed_end_is_ebadmsg_and_does_not_end_it():
    dump, links = new_dump()
    bad = w.nlmsg(C.NLMSG_DONE, C.NLM_F_MULTI, FIRST, PORT, b"")
    assert parse_dump(part(FIRST, 1, b"a") + bad, dump) == -errno.EBADMSG
    assert (dump.n, dump.done) == (0, 0)


def test_dump_with_n_beyond_cap_is_ebadmsg():
    dump, links = new_dump(cap=2)
    dump.n = 3
    assert parse_dump(part(FIRST, 1, b"a"), dump) == -errno.EBADMSG


# ===============================================================================
# Contract model and fuzzing
# ===============================================================================

class Sent:
    """What one well-formed message says, for the contract model."""

    def __init__(self, kind, seq, pid, raw, **info):
        self.kind, self.seq, self.pid, self.raw, self.info = kind, seq, pid, raw, info


@st.composite
def replies(draw, count):
    seq = (FIRST + draw(st.integers(-2, count + 1))) & 0xFFFFFFFF
    pid = draw(st.sampled_from([PORT] * 4 + [0, PORT + 1]))
    kind = draw(st.sampled_from(["ack", "ack", "newlink", "noop", "done"]))
    if kind == "done":
        err = draw(st.one_of(st.just(0), st.integers(-4095, -1), st.integers(1, 100)))
        return Sent("ack", seq, pid, w.done(seq, pid, err),
                    error=err if err <= 0 else -errno.EPROTO, text=b"")
    if kind == "ack":
        err = draw(st.one_of(st.just(0), st.integers(-4095, -1), st.integers(1, 100)))
        text = draw(st.one_of(st.none(), st.binary(max_size=300)))
        capped = draw(st.sampled_from([None, True, False]))
        raw = w.ack(seq, pid, err, request(seq) if draw(st.booleans()) else None, capped=capped,
                    ext_msg=text)
        if text is not None:
            text = text.split(b"\0", 1)[0][:255]
        return Sent("ack", seq, pid, raw, error=err if err <= 0 else -errno.EPROTO, text=text or b"")
    if kind == "newlink":
        name = draw(st.binary(min_size=1, max_size=15).filter(lambda b: 0 not in b))
        mtu, index = draw(U32), draw(st.integers(1, 2**31 - 1))
        values = draw(st.one_of(st.none(), st.lists(U64, min_size=len(w.STATS64_FIELDS),
                                                     max_size=len(w.STATS64_FIELDS))))
        st64 = None if values is None else w.stats64(**dict(zip(w.STATS64_FIELDS, values)))
        raw = w.newlink(seq, pid, index, name=name, mtu=mtu, stats=st64)
        return Sent("newlink", seq, pid, raw, index=index, name=name, mtu=mtu,
                    stats=None if values is None else tuple(values[:8]))
    return Sent("noop", seq, pid, w.nlmsg(C.NLMSG_NOOP, 0, seq, pid, b""))


MUTATION = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 2**20), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 2**20)),
    st.tuples(st.just("u32"), st.integers(0, 2**20),
              st.one_of(st.sampled_from([0, 1, 3, 4, 15, 16, 17, 19, 20, 35, 36, 37, 0xFFFF,
                                         0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, 0xFFFFFFFF]),
                        U32)),
    st.tuples(st.just("u16"), st.integers(0, 2**20),
              st.one_of(st.sampled_from([0, 1, 3, 4, 5, 8, 0x7FFF, 0xFFFF]), st.integers(0, 0xFFFF))),
    st.tuples(st.just("insert"), st.integers(0, 2**20), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 2**20), st.integers(1, 8)),
)


def mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op in ops:
        if op[0] == "insert":
            at = op[1] % (len(b) + 1)
        elif b:
            at = op[1] % len(b)
        else:
            continue
        if op[0] == "flip":
            b[at] ^= 1 << op[2]
        elif op[0] == "truncate":
            del b[at:]
        elif op[0] == "u32":
            at &= ~3                             # length fields sit on 4-byte boundaries
            if at + 4 <= len(b):
                struct.pack_into("=I", b, at, op[2])
        elif op[0] == "u16":
            at &= ~1
            if at + 2 <= len(b):
                struct.pack_into("=H", b, at, op[2])
        elif op[0] == "insert":
            b[at:at] = op[2]
        elif op[0] == "delete":
            del b[at:at + op[2]]
    return bytes(b)


def check_invariants(rc, res, count, before, preset):
    """What must hold whatever the datagram was."""
    assert rc == -errno.EBADMSG or 0 <= rc <= count, rc
    for i in range(count, count + GUARD):
        assert raw_result(res, i) == before[i], "a result past count was written"
    completed = 0
    for i in range(count):
        r = res[i]
        assert r.seq == (FIRST + i) & 0xFFFFFFFF
        assert b"\0" in bytes(ffi.buffer(r.ext_msg)), "ext_msg not terminated"
        assert b"\0" in bytes(ffi.buffer(r.link.name)), "link name not terminated"
        assert r.has_link in (0, 1)
        if i in preset:
            assert raw_result(res, i) == before[i], "a completed result was overwritten"
            continue
        if r.error == PENDING:
            assert ext_msg(r) == b"", "text written to a result left pending"
        else:
            assert r.error <= 0
            completed += 1
    if rc >= 0:
        assert completed == rc


def run_fuzz(datagram, count, preset):
    res = pending(count)
    for i in preset:
        res[i].error = -errno.EEXIST
        ffi.memmove(res[i].ext_msg, b"done before\0", 12)
    before = [raw_result(res, i) for i in range(count + GUARD)]
    rc = parse(datagram, res, count)
    check_invariants(rc, res, count, before, preset)
    return rc


@FUZZ
@given(datagram=st.binary(max_size=400), count=st.integers(1, 4))
def test_arbitrary_bytes_give_a_count_or_ebadmsg(datagram, count):
    run_fuzz(datagram, count, set())


@FUZZ
@given(data=st.data(), count=st.integers(1, 4),
       ops=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_replies_give_a_count_or_ebadmsg(data, count, ops):
    sent = data.draw(st.lists(replies(count), min_size=1, max_size=5))
    preset = data.draw(st.sets(st.integers(0, count - 1), max_size=count))
    run_fuzz(mutate(b"".join(s.raw for s in sent), ops), count, preset)


@FUZZ
@given(header=st.tuples(st.integers(0, 200), st.sampled_from([C.NLMSG_ERROR, C.NLMSG_DONE, C.RTM_NEWLINK]),
                        st.integers(0, 0xFFFF), st.integers(FIRST - 1, FIRST + 3),
                        st.sampled_from([PORT, 0])),
       body=st.binary(max_size=200), count=st.integers(1, 3))
def test_random_bodies_under_plausible_headers_give_a_count_or_ebadmsg(header, body, count):
    datagram = w.NLMSGHDR.pack(*header) + body
    run_fuzz(datagram, count, set())


@FUZZ
@given(msg=st.binary(max_size=300))
def test_parse_link_on_arbitrary_bytes_returns_zero_or_ebadmsg(msg):
    rc, out = parse_link(msg)
    assert rc in (0, -errno.EBADMSG)
    assert b"\0" in bytes(ffi.buffer(out.name))
    assert out.has_stats in (0, 1)


# ===============================================================================
# pn_parse_addr / pn_parse_route against the reference codec
# ===============================================================================

FAMILY_SIZES = [(2, 4), (10, 16)]           # AF_INET, AF_INET6 and their address sizes
NAME_BYTES = st.binary(max_size=15).filter(lambda b: 0 not in b)


def _maybe(draw, strategy):
    return draw(st.one_of(st.none(), strategy))


@st.composite
def addr_messages(draw, seq=FIRST, pid=PORT):
    """An RTM_NEWADDR with every attribute pn_addr_info carries, each present or not."""
    family, n = draw(st.sampled_from(FAMILY_SIZES))
    ip = st.binary(min_size=n, max_size=n)
    cache = _maybe(draw, st.tuples(U32, U32, U32, U32))
    return w.newaddr(seq, pid, family=family, prefixlen=draw(st.integers(0, 8 * n)),
                     ifa_flags=draw(st.integers(0, 255)), scope=draw(st.integers(0, 255)),
                     index=draw(U32), address=_maybe(draw, ip), local=_maybe(draw, ip),
                     label=_maybe(draw, NAME_BYTES), broadcast=_maybe(draw, ip),
                     cache=None if cache is None else w.cacheinfo(*cache),
                     flags=_maybe(draw, U32), msg_flags=C.NLM_F_MULTI)


@st.composite
def route_messages(draw, seq=FIRST, pid=PORT):
    """An RTM_NEWROUTE with every attribute pn_route_info carries, each present or not."""
    family, n = draw(st.sampled_from(FAMILY_SIZES))
    ip = st.binary(min_size=n, max_size=n)
    u8 = st.integers(0, 255)
    hop = struct.pack("=HBBi", 8, 0, 0, draw(st.integers(1, 2**31 - 1)))
    return w.newroute(seq, pid, family=family, dst_len=draw(st.integers(0, 8 * n)),
                      src_len=draw(st.integers(0, 8 * n)), tos=draw(u8), rtm_table=draw(u8),
                      protocol=draw(u8), scope=draw(u8), type_=draw(u8), rtm_flags=draw(U32),
                      table=_maybe(draw, U32), dst=_maybe(draw, ip), src=_maybe(draw, ip),
                      oif=_maybe(draw, U32), gateway=_maybe(draw, ip), priority=_maybe(draw, U32),
                      prefsrc=_maybe(draw, ip), multipath=_maybe(draw, st.just(hop * 2)),
                      msg_flags=C.NLM_F_MULTI)


def c_ip(field, length):
    return bytes(ffi.buffer(field, length)) if length else None


def addr_view(c) -> w.AddrInfo:
    """A struct pn_addr_info as the codec's AddrInfo."""
    cache = c.has_cacheinfo
    return w.AddrInfo(c.index, c.family, c.prefixlen, c.scope, c.flags,
                      c_ip(c.local, c.local_len), c_ip(c.address, c.address_len),
                      c_ip(c.broadcast, c.broadcast_len),
                      ffi.string(c.label) if c.has_label else None,
                      c.valid_lft if cache else None, c.preferred_lft if cache else None)


def route_view(c) -> w.RouteInfo:
    """A struct pn_route_info as the codec's RouteInfo."""
    return w.RouteInfo(c.family, c.dst_len, c.src_len, c.tos, c.table, c.protocol, c.scope,
                       c.type, c.flags, c_ip(c.dst, c.dst_alen), c_ip(c.src, c.src_alen),
                       c_ip(c.gateway, c.gateway_alen), c_ip(c.prefsrc, c.prefsrc_alen),
                       c.oif if c.oif else None, c.priority if c.has_priority else None,
                       bool(c.has_multipath))


DECODERS = {"addr": (lib.pn_parse_addr, "struct pn_addr_info *", addr_view, w.addr_info),
            "route": (lib.pn_parse_route, "struct pn_route_info *", route_view, w.route_info)}


def c_parse(kind: str, msg: bytes, length=None):
    """(rc, out) of pn_parse_addr/pn_parse_route over msg (garbage in *out first)."""
    fn, ctype, _, _ = DECODERS[kind]
    buf = ffi.new("unsigned char[]", bytes(msg) or b"\0")
    out = ffi.new(ctype)
    ffi.memmove(out, b"\xee" * ffi.sizeof(out[0]), ffi.sizeof(out[0]))
    rc = fn(buf, len(msg) if length is None else length, out)
    assert bytes(ffi.buffer(buf, len(msg))) == bytes(msg), "the message was written to"
    return rc, out


def agrees_with_codec(kind: str, msg: bytes) -> None:
    rc, out = c_parse(kind, msg)
    assert rc == 0
    _, _, view, reference = DECODERS[kind]
    got = view(out)
    if kind == "route" and got.oif is None:     # 0 is "no oif" to the core
        want = reference(w.decode_one(msg))
        assert want.oif in (None, 0)
        assert got == want._replace(oif=None)
    else:
        assert got == reference(w.decode_one(msg))


@FAST
@given(msg=addr_messages())
def test_addr_decoder_gives_what_the_codec_reads(msg):
    agrees_with_codec("addr", msg)


@FAST
@given(msg=route_messages())
def test_route_decoder_gives_what_the_codec_reads(msg):
    agrees_with_codec("route", msg)


def test_addr_flags_come_from_ifa_flags_when_ifa_flags_attribute_is_absent():
    rc, out = c_parse("addr", w.newaddr(1, PORT, ifa_flags=0x80))
    assert (rc, out.flags) == (0, 0x80)


def test_addr_flags_attribute_overrides_the_u8_header_field():
    rc, out = c_parse("addr", w.newaddr(1, PORT, ifa_flags=0x80, flags=0x302))
    assert (rc, out.flags) == (0, 0x302)


def test_route_table_attribute_overrides_rtm_table():
    rc, out = c_parse("route", w.newroute(1, PORT, rtm_table=C.RT_TABLE_UNSPEC, table=1000))
    assert (rc, out.table) == (0, 1000)


def test_route_without_table_attribute_has_rtm_table():
    rc, out = c_parse("route", w.newroute(1, PORT, rtm_table=C.RT_TABLE_MAIN))
    assert (rc, out.table) == (0, C.RT_TABLE_MAIN)


def test_route_without_priority_says_it_is_absent():
    rc, out = c_parse("route", w.newroute(1, PORT, priority=None))
    assert (rc, out.has_priority) == (0, 0)


def test_route_priority_zero_is_present():
    rc, out = c_parse("route", w.newroute(1, PORT, priority=0))
    assert (rc, out.has_priority, out.priority) == (0, 1, 0)


# (decoder, attribute): how the decoded struct says it is absent
SHORT_ABSENT = {
    ("addr", "IFA_FLAGS"): lambda out: out.flags == 0,
    ("addr", "IFA_CACHEINFO"): lambda out: out.has_cacheinfo == 0,
    ("route", "RTA_TABLE"): lambda out: out.table == 0,
    ("route", "RTA_OIF"): lambda out: out.oif == 0,
    ("route", "RTA_PRIORITY"): lambda out: out.has_priority == 0,
}


@pytest.mark.parametrize("kind, attr", sorted(SHORT_ABSENT))
@pytest.mark.parametrize("size", [0, 1, 3])
def test_attribute_shorter_than_its_type_is_ignored(kind, attr, size):
    build = w.newaddr if kind == "addr" else w.newroute
    rc, out = c_parse(kind, build(1, PORT, extra=w.rtattr(C[attr], b"\xff" * size)))
    assert rc == 0 and SHORT_ABSENT[kind, attr](out)


@pytest.mark.parametrize("kind, attr", [("addr", "IFA_LOCAL"), ("addr", "IFA_ADDRESS"),
                                        ("addr", "IFA_BROADCAST"), ("route", "RTA_DST"),
                                        ("route", "RTA_GATEWAY"), ("route", "RTA_PREFSRC")])
def test_address_attribute_longer_than_16_bytes_is_absent(kind, attr):
    build = w.newaddr if kind == "addr" else w.newroute
    rc, out = c_parse(kind, build(1, PORT, extra=w.rtattr(C[attr], b"\x01" * 17)))
    view = (addr_view if kind == "addr" else route_view)(out)
    field = {"IFA_LOCAL": "local", "IFA_ADDRESS": "address", "IFA_BROADCAST": "broadcast",
             "RTA_DST": "dst", "RTA_GATEWAY": "gateway", "RTA_PREFSRC": "prefsrc"}[attr]
    assert (rc, getattr(view, field)) == (0, None)


@pytest.mark.parametrize("label, kept", [(b"x" * 15, b"x" * 15), (b"y" * 16, b"y" * 15),
                                         (b"z" * 40, b"z" * 15)])
def test_addr_label_longer_than_ifnamsiz_is_cut_and_terminated(label, kept):
    rc, out = c_parse("addr", w.newaddr(1, PORT, label=label))
    assert (rc, out.has_label, ffi.string(out.label)) == (0, 1, kept)


def test_addr_label_without_terminator_is_terminated():
    rc, out = c_parse("addr", w.newaddr(1, PORT, extra=w.rtattr(C.IFA_LABEL, b"eth0")))
    assert (rc, ffi.string(out.label)) == (0, b"eth0")


@pytest.mark.parametrize("kind, other", [("addr", "RTM_NEWROUTE"), ("addr", "RTM_DELADDR"),
                                         ("route", "RTM_NEWADDR"), ("route", "RTM_DELROUTE"),
                                         ("addr", "NLMSG_ERROR"), ("route", "RTM_NEWLINK")])
def test_decoder_refuses_other_message_types(kind, other):
    msg = bytearray(w.newaddr(1, PORT) if kind == "addr" else w.newroute(1, PORT))
    struct.pack_into("=H", msg, 4, C[other])
    assert c_parse(kind, bytes(msg))[0] == -errno.EBADMSG


@pytest.mark.parametrize("kind", ["addr", "route"])
def test_decoder_refuses_message_too_short_for_its_family_header(kind):
    fixed = w.IFADDRMSG.size if kind == "addr" else w.RTMSG.size
    msg = w.newaddr(1, PORT) if kind == "addr" else w.newroute(1, PORT)
    for cut in range(0, w.NLMSG_HDRLEN + fixed):
        assert c_parse(kind, msg[:cut])[0] == -errno.EBADMSG, cut


@pytest.mark.parametrize("kind", ["addr", "route"])
def test_decoder_reads_no_attribute_past_nlmsg_len(kind):
    build = w.newaddr if kind == "addr" else w.newroute
    head = build(1, PORT)
    tail = w.u32_attr(C.IFA_FLAGS if kind == "addr" else C.RTA_PRIORITY, 5)
    rc, out = c_parse(kind, head + tail, length=len(head) + len(tail))
    rc2, out2 = c_parse(kind, head)
    assert rc == rc2 == 0
    assert (addr_view if kind == "addr" else route_view)(out) == \
        (addr_view if kind == "addr" else route_view)(out2)


@FUZZ
@given(kind=st.sampled_from(sorted(DECODERS)), msg=st.binary(max_size=300))
def test_addr_and_route_decoders_on_arbitrary_bytes_return_zero_or_ebadmsg(kind, msg):
    rc, out = c_parse(kind, msg)
    assert rc in (0, -errno.EBADMSG)
    if kind == "addr":
        assert b"\0" in bytes(ffi.buffer(out.label))


# ===============================================================================
# pn_parse_dump of addresses and routes
# ===============================================================================

KINDS = {"addr": (C.RTM_NEWADDR, "addrs", "struct pn_addr_info[]", addr_messages, addr_view),
         "route": (C.RTM_NEWROUTE, "routes", "struct pn_route_info[]", route_messages,
                   route_view)}


def new_kind_dump(kind: str, cap: int = 4):
    msg_type, field, ctype, _, _ = KINDS[kind]
    array = ffi.new(ctype, cap + GUARD)
    dump = ffi.new("struct pn_dump *", {"type": msg_type, field: array, "cap": cap})
    return dump, array


def kind_part(kind: str, seq=FIRST, pid=PORT, flags=C.NLM_F_MULTI, index=1) -> bytes:
    if kind == "addr":
        return w.newaddr(seq, pid, index=index, local=bytes([192, 0, 2, index & 255]),
                         msg_flags=flags)
    return w.newroute(seq, pid, oif=index, dst=bytes([198, 51, 100, index & 255]), dst_len=32,
                      msg_flags=flags)


def kind_indexes(kind: str, dump, array) -> list:
    return [array[i].index if kind == "addr" else array[i].oif for i in range(dump.n)]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_collects_several_parts_of_one_datagram_in_order(kind):
    dump, array = new_kind_dump(kind)
    data = b"".join(kind_part(kind, index=i) for i in (3, 1, 2))
    assert parse_dump(data, dump) == 3
    assert kind_indexes(kind, dump, array) == [3, 1, 2]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("seq, pid", [(FIRST + 1, PORT), (FIRST - 1, PORT), (FIRST, PORT + 1)])
def test_kind_dump_skips_parts_of_other_requests(kind, seq, pid):
    dump, array = new_kind_dump(kind)
    data = kind_part(kind, seq, pid, index=9) + kind_part(kind, index=4) + w.done(seq, pid, -1)
    assert parse_dump(data, dump) == 1
    assert (kind_indexes(kind, dump, array), dump.done) == ([4], 0)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_skips_parts_of_another_kind(kind):
    dump, array = new_kind_dump(kind)
    other = "route" if kind == "addr" else "addr"
    data = kind_part(other, index=7) + w.newlink(FIRST, PORT, 8, name=b"x") + kind_part(kind, index=2)
    assert parse_dump(data, dump) == 1
    assert kind_indexes(kind, dump, array) == [2]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_done_ends_it_and_what_follows_is_ignored(kind):
    dump, array = new_kind_dump(kind)
    data = kind_part(kind, index=1) + w.done(FIRST, PORT) + kind_part(kind, index=2)
    assert parse_dump(data, dump) == 1
    assert (dump.done, dump.error, dump.n) == (1, 0, 1)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_ended_by_an_error_reports_its_errno(kind):
    dump, array = new_kind_dump(kind)
    data = kind_part(kind, index=1) + w.ack(FIRST, PORT, -errno.EOPNOTSUPP, ext_msg=b"no")
    assert parse_dump(data, dump) == 1
    assert (dump.done, dump.error) == (1, -errno.EOPNOTSUPP)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_intr_flag_marks_it_interrupted(kind):
    dump, array = new_kind_dump(kind)
    parse_dump(kind_part(kind, flags=C.NLM_F_MULTI | C.NLM_F_DUMP_INTR), dump)
    assert (dump.interrupted, dump.n) == (1, 1)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_full_is_enospc_and_keeps_nothing_of_the_datagram(kind):
    dump, array = new_kind_dump(kind, cap=2)
    data = b"".join(kind_part(kind, index=i) for i in (1, 2, 3))
    assert parse_dump(data, dump) == -errno.ENOSPC
    assert dump.n == 0


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_kind_dump_without_its_array_is_einval(kind):
    dump = ffi.new("struct pn_dump *", {"type": KINDS[kind][0], "cap": 4,
                                        "links": ffi.new("struct pn_link_info[]", 4)})
    assert parse_dump(kind_part(kind), dump) == -errno.EINVAL


def test_dump_of_an_unknown_kind_is_einval():
    links = ffi.new("struct pn_link_info[]", 4)
    dump = ffi.new("struct pn_dump *", {"type": C.RTM_NEWRULE, "cap": 4, "links": links})
    assert parse_dump(part(FIRST, 1, b"a"), dump) == -errno.EINVAL



def _af_spec(*families) -> bytes:
    """IFLA_AF_SPEC holding one nest per (family, payload)."""
    return w.rtattr(C.IFLA_AF_SPEC | w.NLA_F_NESTED,
                    b"".join(w.rtattr(f | w.NLA_F_NESTED, p) for f, p in families))


INET6_MODE = C.IFLA_INET6_ADDR_GEN_MODE


@pytest.mark.parametrize("spec, expected", [
    (_af_spec((socket.AF_INET6, w.rtattr(INET6_MODE, b"\1"))), 1),
    (_af_spec((socket.AF_INET, w.rtattr(1, b"\0" * 8)),
              (socket.AF_INET6, w.rtattr(C.IFLA_INET6_FLAGS, b"\0" * 4) + w.rtattr(INET6_MODE, b"\3"))), 3),
    (_af_spec((socket.AF_INET, w.rtattr(INET6_MODE, b"\1"))), -1),         # IPv4's part: not the mode
    (_af_spec((socket.AF_INET6, w.rtattr(C.IFLA_INET6_FLAGS, b"\0" * 4))), -1),
    (_af_spec((socket.AF_INET6, w.rtattr(INET6_MODE, b""))), -1),          # too short to hold a u8
    (b"", -1),                                                              # no IPv6 on the link
])
def test_addr_gen_mode_is_read_from_the_af_inet6_part_of_af_spec(spec, expected):
    rc, out = parse_link(w.nlmsg(C.RTM_NEWLINK, 0, 1, PORT, w.ifinfomsg(index=2) + spec))
    assert (rc, out.addr_gen_mode) == (0, expected)
