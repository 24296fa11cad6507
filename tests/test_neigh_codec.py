"""Kernel-free tests of the neighbour codec: the C encoder's bytes decoded by
the independent codec (``nlwire_neigh``, from the UAPI headers), the
codec's bytes decoded by the C decoder, and arbitrary or mutated bytes
decoded to a result or -EBADMSG, never a crash."""
from __future__ import annotations

import errno
import ipaddress
import pathlib
import re
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nlwire as w
import nlwire_neigh as nn
from nlwire_neigh import C
from pynetlink import _core as core
from pynetlink import neighbours
from pynetlink._core import ffi, lib
from test_decoders import FIRST, MUTATION, PORT, mutate, parse_dump
from test_encoders import Buf, encode

pytestmark = pytest.mark.unit

FAST = settings(deadline=None)
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
REQ = C.NLM_F_REQUEST | C.NLM_F_ACK
MSG_FLAGS = st.sampled_from([0, C.NLM_F_CREATE | C.NLM_F_EXCL, C.NLM_F_CREATE | C.NLM_F_REPLACE,
                             C.NLM_F_CREATE | C.NLM_F_APPEND])
OPTIONS = ("vlan", "port", "vni", "via", "master")
OPTION_ATTRS = {"vlan": C.NDA_VLAN, "port": C.NDA_PORT, "vni": C.NDA_VNI, "via": C.NDA_IFINDEX,
                "master": C.NDA_MASTER}


# -- the constants ----------------------------------------------------------------

def _neigh_constant_names():
    """The constants of csrc/pn_neigh_constants.cdef (``#define NAME ...``)."""
    cdef = pathlib.Path(__file__).resolve().parents[1] / "csrc" / "pn_neigh_constants.cdef"
    names = re.findall(r"^#define\s+(\w+)\s+\.\.\.", cdef.read_text(), re.M)
    assert names, "no constants found in pn_neigh_constants.cdef"
    return names


@pytest.mark.parametrize("name", _neigh_constant_names())
def test_neighbour_constants_agree_with_the_headers(name):
    expected = socket.AF_BRIDGE if name == "AF_BRIDGE" else C[name]
    assert getattr(lib, name) == expected


# -- the encoder ------------------------------------------------------------------

@st.composite
def entries(draw):
    """A valid spec: a neighbour (dst of its family, any lladdr) or an FDB
    entry (6-byte MAC, dst of either family or none), any options."""
    family = draw(st.sampled_from([socket.AF_INET, socket.AF_INET6, nn.AF_BRIDGE]))
    fields = {"family": family, "index": draw(st.integers(1, 2**31 - 1)),
              "state": draw(U16), "flags": draw(st.integers(0, 255))}
    if family == nn.AF_BRIDGE:
        fields["lladdr"] = draw(st.binary(min_size=6, max_size=6))
        fields["dst"] = draw(st.one_of(st.none(), st.binary(min_size=4, max_size=4),
                                       st.binary(min_size=16, max_size=16)))
    else:
        fields["dst"] = draw(st.binary(min_size=4 if family == socket.AF_INET else 16,
                                       max_size=4 if family == socket.AF_INET else 16))
        fields["lladdr"] = draw(st.one_of(st.none(), st.binary(min_size=1, max_size=32)))
    for key in OPTIONS:
        value = draw(st.one_of(st.none(), U16 if key in ("vlan", "port") else U32))
        if value is not None:
            fields[key] = value
    return fields


def encode_entry(msg_type: int, nlflags: int, seq: int, fields: dict) -> bytes:
    encoder = core.neigh_encoder(msg_type, nlflags, **fields)
    return encode(lambda b: encoder(b, seq))


@FAST
@given(entry=entries(), msg_type=st.sampled_from([C.RTM_NEWNEIGH, C.RTM_DELNEIGH]),
       nlflags=MSG_FLAGS, seq=U32)
def test_encoded_entry_is_what_the_codec_reads(entry, msg_type, nlflags, seq):
    h, fixed, attrs = nn.decode(encode_entry(msg_type, nlflags, seq, entry))
    assert (h.type, h.flags, h.seq, h.pid) == (msg_type, nlflags | REQ, seq, 0)
    assert fixed == nn.Ndmsg(entry["family"], 0, 0, entry["index"], entry["state"],
                             entry["flags"], 0)
    expected = {C.NDA_DST: entry["dst"], C.NDA_LLADDR: entry["lladdr"]}
    for key, attr in OPTION_ATTRS.items():
        if key in entry:
            fmt = nn.U16_ATTRS.get(attr, "=I")
            expected[attr] = struct.pack(fmt, entry[key])
    expected = {t: p for t, p in expected.items() if p is not None}
    assert sorted(attrs.types()) == sorted(expected)
    assert {a.type: a.payload for a in attrs} == expected


def test_fdb_entry_sends_the_mac_first_as_bridge_fdb_does():
    raw = encode_entry(C.RTM_NEWNEIGH, 0, 1, {"family": nn.AF_BRIDGE, "index": 2,
                                              "lladdr": bytes(6), "dst": bytes(4)})
    assert nn.decode(raw)[2].types() == [C.NDA_LLADDR, C.NDA_DST]


def test_neighbour_sends_the_address_first_as_ip_neigh_does():
    raw = encode_entry(C.RTM_NEWNEIGH, 0, 1, {"family": socket.AF_INET, "index": 2,
                                              "lladdr": bytes(6), "dst": bytes(4)})
    assert nn.decode(raw)[2].types() == [C.NDA_DST, C.NDA_LLADDR]


def test_ip_neigh_add_bytes_are_iproute2s():
    """`ip neigh add 192.0.2.5 lladdr 02:00:00:00:00:07 dev IDX4` as
    iproute2 6.1 sends it (captured with strace), but for the sequence number."""
    spec = neighbours.spec_neighbour("192.0.2.5", "02:00:00:00:00:07", "d1")
    ours = encode(lambda b: neighbours.add(spec, 4)(b, 7))
    body = (b"\x02\x00\x00\x00\x04\x00\x00\x00\x80\x00\x00\x00\x08\x00\x01\x00\xc0\x00\x02\x05"
            b"\x0a\x00\x02\x00\x02\x00\x00\x00\x00\x07\x00\x00")
    assert ours == w.nlmsg(C.RTM_NEWNEIGH, REQ | C.NLM_F_CREATE | C.NLM_F_EXCL, 7, 0, body)


def test_ip_neigh_add_proxy_bytes_are_iproute2s():
    """`ip neigh add proxy 192.0.2.7 dev IDX3` as iproute2 6.1 sends it."""
    spec = neighbours.spec_neighbour("192.0.2.7", None, "d0", proxy=True)
    ours = encode(lambda b: neighbours.add(spec, 3)(b, 7))
    body = b"\x02\x00\x00\x00\x03\x00\x00\x00\x80\x00\x08\x00\x08\x00\x01\x00\xc0\x00\x02\x07"
    assert ours == w.nlmsg(C.RTM_NEWNEIGH, REQ | C.NLM_F_CREATE | C.NLM_F_EXCL, 7, 0, body)


def test_bridge_fdb_add_bytes_are_iproute2s():
    """`bridge fdb add 02:00:00:00:00:01 dev IDX2 dst 198.51.100.2` as
    iproute2 6.1 sends it (captured with strace), but for the sequence number."""
    spec = neighbours.spec_fdb("02:00:00:00:00:01", "vx0", dst="198.51.100.2")
    ours = encode(lambda b: neighbours.add(spec, 2)(b, 7))
    body = (b"\x07\x00\x00\x00\x02\x00\x00\x00\xc0\x00\x02\x00\x0a\x00\x02\x00\x02\x00\x00\x00"
            b"\x00\x01\x00\x00\x08\x00\x01\x00\xc6\x33\x64\x02")
    assert ours == w.nlmsg(C.RTM_NEWNEIGH, REQ | C.NLM_F_CREATE | C.NLM_F_EXCL, 7, 0, body)


def test_bridge_fdb_add_master_vlan_bytes_are_iproute2s():
    """`bridge fdb add 02:00:00:00:00:04 dev IDX5 master vlan 5` as iproute2
    6.1 sends it (captured with strace; this kernel has no VLAN filtering
    to show the entry with), but for the sequence number."""
    spec = neighbours.spec_fdb("02:00:00:00:00:04", "d0", master=True, vlan=5)
    ours = encode(lambda b: neighbours.add(spec, 5)(b, 7))
    body = (b"\x07\x00\x00\x00\x05\x00\x00\x00\xc0\x00\x04\x00\x0a\x00\x02\x00\x02\x00\x00\x00"
            b"\x00\x04\x00\x00\x06\x00\x05\x00\x05\x00\x00\x00")
    assert ours == w.nlmsg(C.RTM_NEWNEIGH, REQ | C.NLM_F_CREATE | C.NLM_F_EXCL, 7, 0, body)


BAD_SPECS = [
    {"family": socket.AF_INET, "index": 0, "dst": bytes(4)},              # no link
    {"family": socket.AF_INET, "index": -1, "dst": bytes(4)},
    {"family": socket.AF_INET, "index": 1},                               # no address
    {"family": socket.AF_INET, "index": 1, "dst": bytes(16)},             # the other family's
    {"family": socket.AF_INET6, "index": 1, "dst": bytes(4)},
    {"family": socket.AF_PACKET, "index": 1, "dst": bytes(4)},           # not a neighbour family
    {"family": nn.AF_BRIDGE, "index": 1},                                 # no MAC
    {"family": nn.AF_BRIDGE, "index": 1, "lladdr": bytes(8)},             # not Ethernet
    {"family": nn.AF_BRIDGE, "index": 1, "lladdr": bytes(6), "dst": bytes(5)},
]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_spec_the_kernel_could_not_mean_is_einval_and_nothing_written(spec):
    b = Buf(256)
    b.preload(b"\x11" * 8)
    before = b.storage()
    assert core.neigh_encoder(C.RTM_NEWNEIGH, 0, **spec)(b.ptr, 1) == -errno.EINVAL
    assert b.len == 8 and b.storage() == before


def test_entry_that_does_not_fit_is_enospc_and_nothing_written():
    b = Buf(40)
    assert core.neigh_encoder(C.RTM_NEWNEIGH, 0, family=nn.AF_BRIDGE, index=1, lladdr=bytes(6),
                              dst=bytes(16), vni=1)(b.ptr, 1) == -errno.ENOSPC
    assert b.len == 0


@FAST
@given(family=st.sampled_from([socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6, nn.AF_BRIDGE]),
       index=st.integers(0, 2**31 - 1), master=U32, seq=U32, proxy=st.booleans())
def test_dump_request_is_a_whole_ndmsg_with_the_filters(family, index, master, seq, proxy):
    bridge = family == nn.AF_BRIDGE
    flags = C.NTF_PROXY if proxy and not bridge else 0
    raw = encode(lambda b: lib.pn_neigh_dump_msg(b, seq, family, index, master, flags))
    h, fixed, attrs = nn.decode(raw)
    assert (h.type, h.flags, h.seq) == (C.RTM_GETNEIGH, REQ | C.NLM_F_DUMP, seq)
    assert fixed == nn.Ndmsg(family, 0, 0, index if bridge else 0, 0, flags, 0)
    expected = {}
    if index and not bridge:
        expected[C.NDA_IFINDEX] = struct.pack("=I", index)
    if master:
        expected[C.NDA_MASTER] = struct.pack("=I", master)
    assert {a.type: a.payload for a in attrs} == expected and len(attrs) == len(expected)


@pytest.mark.parametrize("family,index,flags", [
    (socket.AF_PACKET, 0, 0), (socket.AF_INET, -1, 0),
    (socket.AF_INET, 0, C.NTF_ROUTER),          # strict checking allows NTF_PROXY alone
    (nn.AF_BRIDGE, 0, C.NTF_PROXY),             # no proxy forwarding entries
])
def test_dump_request_the_kernel_could_not_mean_is_einval(family, index, flags):
    b = Buf(128)
    assert lib.pn_neigh_dump_msg(b.ptr, 1, family, index, 0, flags) == -errno.EINVAL
    assert b.len == 0


# -- the decoder ------------------------------------------------------------------

ATTR_PAYLOADS = {
    C.NDA_DST: st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=16, max_size=16),
                         st.binary(max_size=20)),
    C.NDA_LLADDR: st.binary(max_size=36),
    C.NDA_CACHEINFO: st.binary(min_size=8, max_size=20),
    **{t: st.binary(min_size=0, max_size=6) for t in (C.NDA_VLAN, C.NDA_PORT)},
    **{t: st.binary(min_size=2, max_size=8) for t in nn.U32_ATTRS},
    C.NDA_MAX + 1: st.binary(max_size=8),                  # a newer kernel's
    C.NDA_FDB_EXT_ATTRS: st.binary(max_size=8),             # one the decoder does not read
}
ATTR = st.sampled_from(sorted(ATTR_PAYLOADS)).flatmap(
    lambda t: st.tuples(st.just(t), ATTR_PAYLOADS[t],
                        st.sampled_from([0, 0, C.NLA_F_NESTED, C.NLA_F_NET_BYTEORDER])))


@st.composite
def kernel_messages(draw):
    """An RTM_NEWNEIGH/DELNEIGH as the kernel could send it: any ndmsg,
    attributes in any order, duplicated, short for their type, unknown."""
    fixed = nn.ndmsg(draw(st.integers(0, 255)), draw(st.integers(-(2**31), 2**31 - 1)),
                     draw(U16), draw(st.integers(0, 255)), draw(st.integers(0, 255)))
    attrs = [w.rtattr(t | bits, p) for t, p, bits in draw(st.lists(ATTR, max_size=12))]
    msg_type = draw(st.sampled_from([C.RTM_NEWNEIGH, C.RTM_DELNEIGH]))
    return nn.newneigh(draw(U32), draw(U32), fixed, attrs, msg_type)


def c_parse(msg: bytes):
    out = ffi.new("struct pn_neigh_info *")
    buf = ffi.new("unsigned char[]", bytes(msg) or b"\0")
    rc = lib.pn_parse_neigh(buf, len(msg), out)
    assert bytes(ffi.buffer(buf, len(msg))) == bytes(msg), "the message was written to"
    return rc, out


def view_of(c) -> nn.NeighView:
    """The C decoder's result in the codec's terms."""
    raw = core._raw_neigh(c)
    u16s = {t: raw[k] for t, k in ((C.NDA_VLAN, "vlan"), (C.NDA_PORT, "port"))
            if raw[k] is not None}
    names = {C.NDA_VNI: "vni", C.NDA_SRC_VNI: "src_vni", C.NDA_IFINDEX: "via",
             C.NDA_MASTER: "master", C.NDA_PROBES: "probes", C.NDA_FLAGS_EXT: "flags_ext",
             C.NDA_NH_ID: "nh_id"}
    u32s = {t: raw[k] for t, k in names.items() if raw[k] is not None}
    dst = bytes(ffi.buffer(c.dst, c.dst_len)) if c.dst_len else None
    assert raw["dst"] == (None if dst is None else str(ipaddress.ip_address(dst))
                          if len(dst) in (4, 16) else dst.hex(":"))
    lladdr = bytes(ffi.buffer(c.lladdr, c.lladdr_len)) if c.lladdr_len else None
    return nn.NeighView(raw["type"], raw["family"], raw["index"], raw["state"], raw["flags"],
                        raw["ndm_type"], dst, lladdr, u16s, u32s, raw["cacheinfo"])


@FAST
@given(msg=kernel_messages())
def test_kernel_message_decodes_as_a_receiver_reads_it(msg):
    rc, out = c_parse(msg)
    assert rc == 0
    assert view_of(out) == nn.read_neigh(msg)


@FUZZ
@given(msg=kernel_messages(), ops=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_message_is_read_alike_or_refused_with_ebadmsg(msg, ops):
    bad = mutate(msg, ops)
    rc, out = c_parse(bad)
    try:
        expected = nn.read_neigh(bad)
    except (w.WireError, ValueError):
        assert rc == -errno.EBADMSG
        return
    assert rc == 0
    assert view_of(out) == expected


@FAST
@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_give_a_result_or_ebadmsg(data):
    rc, _ = c_parse(data)
    assert rc in (0, -errno.EBADMSG)


@pytest.mark.parametrize("msg_type", [C.RTM_NEWLINK, C.RTM_GETNEIGH, C.NLMSG_ERROR])
def test_other_message_type_is_ebadmsg(msg_type):
    msg = nn.newneigh(1, 1, nn.ndmsg(), [], msg_type)
    assert c_parse(msg)[0] == -errno.EBADMSG


def test_message_shorter_than_its_ndmsg_is_ebadmsg():
    msg = w.nlmsg(C.RTM_NEWNEIGH, 0, 1, 1, b"\x02\x00\x00\x00")
    assert c_parse(msg)[0] == -errno.EBADMSG


def test_deletion_notification_decodes_with_its_type():
    msg = nn.newneigh(0, 0, nn.ndmsg(socket.AF_INET, 3, C.NUD_STALE),
                      [w.rtattr(C.NDA_DST, bytes([192, 0, 2, 1]))], C.RTM_DELNEIGH)
    raw = core.parse_neigh(msg)
    assert (raw["type"], raw["index"], raw["dst"], raw["state"]) == \
        (C.RTM_DELNEIGH, 3, "192.0.2.1", C.NUD_STALE)


def test_notification_becomes_a_neighbour_record_with_its_links_named():
    msg = nn.newneigh(0, 0, nn.ndmsg(nn.AF_BRIDGE, 3, C.NUD_PERMANENT | C.NUD_NOARP, C.NTF_SELF),
                      [w.rtattr(C.NDA_LLADDR, bytes(6)), w.rtattr(C.NDA_DST, bytes([198, 51, 100, 1])),
                       w.rtattr(C.NDA_VNI, struct.pack("=I", 42)),
                       w.rtattr(C.NDA_MASTER, struct.pack("=I", 9))], C.RTM_DELNEIGH)
    n = neighbours.Neighbour.from_raw(core.parse_neigh(msg), {3: "vx0"})
    assert n == neighbours.Neighbour("bridge", 3, "vx0", "198.51.100.1", "00:00:00:00:00:00",
                                     C.NUD_PERMANENT | C.NUD_NOARP, C.NTF_SELF, None, 42, None,
                                     "if9", None)
    assert (n.fdb_state, n.flag_names, n.states) == ("permanent", ["self"], ["NOARP", "PERMANENT"])


def test_parse_neigh_refuses_bytes_that_are_no_neighbour_message():
    with pytest.raises(OSError) as e:
        core.parse_neigh(b"\x00" * 8)
    assert e.value.errno == errno.EBADMSG


# -- dumps ------------------------------------------------------------------------

def test_dump_collects_neighbour_parts_in_order():
    neighs = ffi.new("struct pn_neigh_info[]", 4)
    dump = ffi.new("struct pn_dump *", {"type": C.RTM_NEWNEIGH, "neighs": neighs, "cap": 4})
    parts = b"".join(nn.newneigh(FIRST, PORT, nn.ndmsg(nn.AF_BRIDGE, i), [
        w.rtattr(C.NDA_LLADDR, bytes([2, 0, 0, 0, 0, i]))], flags=C.NLM_F_MULTI) for i in (1, 2, 3))
    assert parse_dump(parts + w.done(FIRST, PORT), dump) == 3
    assert [neighs[i].index for i in range(3)] == [1, 2, 3]
    assert bytes(neighs[2].lladdr[0:6]) == bytes([2, 0, 0, 0, 0, 3])
    assert dump.done == 1 and dump.error == 0


def test_dump_of_neighbours_without_their_array_is_einval():
    dump = ffi.new("struct pn_dump *", {"type": C.RTM_NEWNEIGH, "cap": 4})
    assert parse_dump(w.done(FIRST, PORT), dump) == -errno.EINVAL
