"""Kernel-free tests of the link kinds' encoders and decoders against the
independent codec (``nlwire`` + ``nlwire_kinds``, written from the UAPI
headers): every request's IFLA_LINKINFO/IFLA_INFO_DATA and IFLA_LINK, the C
core's typed attributes on any input, and the decoding of any
IFLA_INFO_DATA into ``Link.info``."""
from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nlwire as w
import nlwire_kinds as nk
from nlwire import C
from pynetlink import _core as core
from pynetlink import ops
from pynetlink._core import ffi, lib
from pynetlink.links import Link

pytestmark = pytest.mark.unit

# A fifth of the profile's examples where the value spaces are small (the
# "long" profile still runs thousands); the C core on arbitrary input gets all
FEW = settings(max_examples=max(settings.default.max_examples // 5, 10), deadline=None)

REQ = C.NLM_F_REQUEST | C.NLM_F_ACK
CREATE = C.NLM_F_CREATE | C.NLM_F_EXCL
NAMES = st.text("abcdefghij0123456789", min_size=1, max_size=15)
INDEX = st.integers(1, 2**31 - 1)
MTU = st.none() | st.integers(68, 65535)
IPV4 = st.ip_addresses(v=4)
IPV6 = st.ip_addresses(v=6)


def wire(op: ops.Op, indexes: dict, cap: int = 4096) -> bytes:
    data = ffi.new("unsigned char[]", cap)
    buf = ffi.new("struct pn_buf *", {"data": data, "cap": cap})
    rc = op.build(indexes)(buf, 9)
    assert rc == 0, rc
    return bytes(ffi.buffer(data, buf.len))


def check_request(message: bytes, name: str, flags: int = CREATE):
    """The message is one RTM_NEWLINK for NAME with ``flags``; its attributes."""
    msg = w.decode_one(message)
    assert (msg.header.type, msg.header.flags) == (C.RTM_NEWLINK, REQ | flags)
    assert msg.attrs.get(C.IFLA_IFNAME).string() == name.encode()
    return msg.attrs


def data_of(attrs) -> w.Attrs:
    return w.linkinfo(attrs).data


# -- requests --------------------------------------------------------------------------

@FEW
@given(name=NAMES, parent=INDEX, mode=st.sampled_from(sorted(nk.MACVLAN_MODES)),
       nopromisc=st.booleans(), mtu=MTU, up=st.booleans())
def test_a_macvlan_request_is_the_references(name, parent, mode, nopromisc, mtu, up):
    nopromisc = nopromisc and mode == "passthru"        # an option of that mode only
    op = ops.make.create_macvlan(name, "p0", mode=mode, nopromisc=nopromisc, mtu=mtu, up=up)
    attrs = check_request(wire(op, {"p0": parent}), name)
    info = w.linkinfo(attrs)
    assert info.kind == b"macvlan" and info.slave_kind is None
    assert w.rtattr(C.IFLA_INFO_DATA, nk.macvlan_data(mode, nopromisc)) == w.rtattr(
        C.IFLA_INFO_DATA, b"".join(w.rtattr(a.type, a.payload) for a in info.data))
    assert attrs.get(C.IFLA_LINK).u32() == parent
    assert (attrs.get(C.IFLA_MTU).u32() if mtu else None) == mtu
    assert w.decode_one(wire(op, {"p0": parent})).fixed.flags == (C.IFF_UP if up else 0)


@FEW
@given(name=NAMES, parent=INDEX, mode=st.sampled_from(sorted(nk.IPVLAN_MODES)),
       flag=st.none() | st.sampled_from(sorted(nk.IPVLAN_FLAGS)))
def test_an_ipvlan_request_is_the_references(name, parent, mode, flag):
    op = ops.make.create_ipvlan(name, "p0", mode=mode, flag=flag)
    message = wire(op, {"p0": parent})
    check_request(message, name)
    assert nk.kind_and_data(message) == (b"ipvlan", nk.ipvlan_data(mode, flag), parent)


@FEW
@given(name=NAMES, parent=INDEX, vid=st.integers(1, 4094),
       protocol=st.none() | st.sampled_from(sorted(nk.VLAN_PROTOCOLS)))
def test_a_vlan_request_is_the_references(name, parent, vid, protocol):
    message = wire(ops.make.create_vlan(name, "p0", vid, protocol=protocol), {"p0": parent})
    check_request(message, name)
    assert nk.kind_and_data(message) == (b"vlan", nk.vlan_data(vid, protocol), parent)


@FEW
@given(name=NAMES, mtu=MTU)
def test_a_dummy_request_has_its_kind_and_no_options(name, mtu):
    message = wire(ops.make.create_dummy(name, mtu=mtu), {})
    attrs = check_request(message, name)
    assert w.linkinfo(attrs) == w.LinkInfo(b"dummy", None, None, None)
    assert C.IFLA_LINK not in attrs


@st.composite
def vxlans(draw):
    v6 = draw(st.booleans())
    family = IPV6 if v6 else IPV4
    local = draw(st.none() | family.map(str))
    which = draw(st.sampled_from(("remote", "group", None)))
    peer = None
    if which == "remote":
        peer = str(draw(family.filter(lambda a: not a.is_multicast)))
    elif which == "group":                  # 224.0.0.0/4, ff00::/8
        low = draw(st.integers(0, 2**120 - 1 if v6 else 2**28 - 1))
        peer = str(ipaddress.ip_address((0xFF << 120 if v6 else 0xE << 28) | low))
    return dict(vni=draw(st.integers(0, 2**24 - 1)), local=local,
                remote=peer if which == "remote" else None,
                group=peer if which == "group" else None,
                dev="u0" if which == "group" or draw(st.booleans()) else None,
                dstport=draw(st.integers(0, 65535)), learning=draw(st.booleans()),
                ttl=draw(st.none() | st.integers(0, 255)))


@FEW
@given(name=NAMES, underlay=INDEX, options=vxlans())
def test_a_vxlan_request_is_the_references(name, underlay, options):
    message = wire(ops.make.create_vxlan(name, **options), {"u0": underlay})
    data = data_of(check_request(message, name))
    expected = nk.vxlan_attrs(options["vni"], link=underlay if options["dev"] else None,
                              local=options["local"],
                              peer=options["remote"] or options["group"], ttl=options["ttl"],
                              learning=options["learning"], port=options["dstport"])
    assert nk.info_data_types(data) == expected


BRIDGE_VALUES = {"vlan_filtering": st.booleans(), "stp_state": st.integers(0, 2),
                 "mcast_snooping": st.booleans(),
                 "ageing_time": st.integers(0, 10**6) | st.floats(0, 10**6),
                 "vlan_default_pvid": st.integers(0, 4094), "mcast_querier": st.booleans()}


@FEW
@given(name=NAMES, options=st.fixed_dictionaries({}, optional=BRIDGE_VALUES))
def test_bridge_options_go_in_the_creating_request_as_the_reference_packs_them(name, options):
    data = data_of(check_request(wire(ops.make.create_bridge(name, **options), {}), name))
    if not options:
        assert data is None             # the message create_bridge always sent
    else:
        assert nk.info_data_types(data) == nk.bridge_attrs(**options)


@FEW
@given(name=NAMES, options=st.fixed_dictionaries({}, optional=BRIDGE_VALUES).filter(bool))
def test_set_bridge_changes_the_link_by_name_without_creating(name, options):
    attrs = check_request(wire(ops.make.set_bridge(name, **options), {}), name, flags=0)
    assert w.linkinfo(attrs).kind == b"bridge"
    assert nk.info_data_types(data_of(attrs)) == nk.bridge_attrs(**options)


# -- the C core's typed attributes, on any input ---------------------------------------

KINDS = {core.ATTR_FLAG: None, core.ATTR_U8: "=B", core.ATTR_U16: "=H", core.ATTR_U32: "=I",
         core.ATTR_BE16: "!H", core.ATTR_BYTES: None}
ATTRS = st.lists(st.tuples(st.integers(0, 0xFFFF), st.integers(0, 8),
                           st.integers(0, 2**32 - 1), st.binary(max_size=20)), max_size=70)


def reference(attr_type: int, kind: int, value: int, payload: bytes):
    """The attribute's bytes, or None where the core must refuse it (-EINVAL)."""
    if attr_type == 0 or attr_type & (w.NLA_F_NESTED | w.NLA_F_NET_BYTEORDER) or kind not in KINDS:
        return None
    if kind == core.ATTR_FLAG:
        return w.rtattr(attr_type)
    if kind == core.ATTR_BYTES:
        return w.rtattr(attr_type, payload) if 1 <= len(payload) <= 16 else None
    fmt = KINDS[kind]
    if value >= 1 << (8 * struct.calcsize(fmt)):
        return None
    return w.rtattr(attr_type, struct.pack(fmt, value))


@given(attrs=ATTRS, cap=st.integers(0, 1200))
def test_typed_attributes_encode_as_the_reference_or_are_refused_leaving_the_buffer(attrs, cap):
    array = ffi.new("struct pn_kind_attr[]", max(len(attrs), 1))
    for slot, (t, kind, value, payload) in zip(array, attrs):
        slot.type, slot.kind, slot.value = t, kind, value
        slot.len = min(len(payload), 255)
        ffi.memmove(slot.bytes, payload[:16], min(len(payload), 16))
    spec = core.link_spec(name=b"k0")
    data = ffi.new("unsigned char[]", max(cap, 1))
    ffi.memmove(data, b"\xa5" * cap, cap)
    buf = ffi.new("struct pn_buf *", {"data": data, "cap": cap})
    rc = lib.pn_kind_data_msg(buf, 0, 3, spec, b"kind", array, len(attrs))
    parts = [reference(t, k, v, p if len(p) <= 16 else p) for t, k, v, p in attrs]
    if len(attrs) > lib.PN_KIND_ATTRS_MAX or any(p is None for p in parts):
        assert (rc, buf.len) == (-22, 0)
        return
    expected_body = (w.str_attr(C.IFLA_IFNAME, b"k0")
                     + w.rtattr(C.IFLA_LINKINFO, w.str_attr(C.IFLA_INFO_KIND, b"kind")
                                + (w.rtattr(C.IFLA_INFO_DATA, b"".join(parts)) if attrs else b"")))
    expected = w.nlmsg(C.RTM_NEWLINK, REQ, 3, 0, w.ifinfomsg() + expected_body)
    if len(expected) > cap:
        assert rc < 0 and buf.len == 0
        return
    assert rc == 0 and bytes(ffi.buffer(data, buf.len)) == expected


@pytest.mark.parametrize("kind", [b"", b"a" * 16])
def test_an_empty_or_unterminated_kind_is_refused(kind):
    spec = core.link_spec(name=b"k0")
    data = ffi.new("unsigned char[]", 256)
    buf = ffi.new("struct pn_buf *", {"data": data, "cap": 256})
    name = ffi.new("char[17]", kind)
    assert lib.pn_kind_data_msg(buf, 0, 1, spec, name, ffi.NULL, 0) == -22 and buf.len == 0


# -- decoding --------------------------------------------------------------------------

INFO_ATTRS = st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=24)), max_size=80)


def decode(message: bytes):
    out = ffi.new("struct pn_link_info *")
    assert lib.pn_parse_link(message, len(message), out) == 0
    return core._raw_link(out)


@given(attrs=INFO_ATTRS, junk=st.binary(max_size=3))
def test_info_data_keeps_each_attribute_of_1_to_16_bytes_in_order(attrs, junk):
    data = b"".join(w.rtattr(t, p) for t, p in attrs) + junk
    raw = decode(nk.newlink(b"anykind", data))
    kept = [(t & w.NLA_TYPE_MASK, p) for t, p in attrs if 1 <= len(p) <= 16][:64]
    expected = [(t, {1: "=B", 2: "=H", 4: "=I"}.get(len(p)), p) for t, p in kept]
    assert (raw["info_data"] or []) == [
        (t, struct.unpack(fmt, p)[0] if fmt else None, p) for t, fmt, p in expected]
    assert raw["kind"] == "anykind" and raw["name"] == "k0"


@FEW
@given(good=INFO_ATTRS, bad_len=st.integers(0, 0xFFFF))
def test_a_malformed_info_data_keeps_what_came_before_and_the_link(good, bad_len):
    data = b"".join(w.rtattr(t, p) for t, p in good)
    broken = data + struct.pack("=HH", bad_len, 1)
    raw = decode(nk.newlink(b"vxlan", broken))
    assert raw["name"] == "k0"
    before = decode(nk.newlink(b"vxlan", data))["info_data"]
    assert (raw["info_data"] or [])[:len(before or [])] == (before or [])


@FEW
@given(mode=st.sampled_from(sorted(nk.MACVLAN_MODES)), nopromisc=st.booleans())
def test_a_macvlan_reply_gives_its_mode_and_flags(mode, nopromisc):
    raw = decode(nk.newlink(b"macvlan", nk.macvlan_data(mode, nopromisc)))
    assert Link.from_raw(raw).info == {"mode": mode, "nopromisc": nopromisc}


@FEW
@given(mode=st.sampled_from(sorted(nk.IPVLAN_MODES)),
       flag=st.sampled_from(sorted(nk.IPVLAN_FLAGS)), vid=st.integers(1, 4094),
       protocol=st.sampled_from(sorted(nk.VLAN_PROTOCOLS)))
def test_ipvlan_and_vlan_replies_give_their_options(mode, flag, vid, protocol):
    ipvlan = decode(nk.newlink(b"ipvlan", nk.ipvlan_data(mode, flag)))
    vlan = decode(nk.newlink(b"vlan", nk.vlan_data(vid, protocol)))
    assert Link.from_raw(ipvlan).info == {"mode": mode, "flags": flag}
    assert Link.from_raw(vlan).info == {"id": vid, "protocol": protocol}


@FEW
@given(options=vxlans(), underlay=INDEX)
def test_a_vxlan_reply_gives_its_options_keyed_as_ip_keys_them(options, underlay):
    attrs = nk.vxlan_attrs(options["vni"], link=underlay if options["dev"] else None,
                           local=options["local"], peer=options["remote"] or options["group"],
                           ttl=options["ttl"], learning=options["learning"],
                           port=options["dstport"])
    info = Link.from_raw(decode(nk.newlink(b"vxlan", b"".join(attrs.values())))).info
    expected = {"id": options["vni"], "port": options["dstport"], "learning": options["learning"]}
    for key, value in (("local", options["local"]), ("remote", options["remote"]),
                       ("group", options["group"])):
        if value is not None:
            six = "6" if ipaddress.ip_address(value).version == 6 else ""
            expected[key + six] = value
    if options["dev"]:
        expected["link"] = underlay
    if options["ttl"] is not None:
        expected["ttl"] = options["ttl"]
    assert info == expected


@FEW
@given(options=st.fixed_dictionaries({}, optional=BRIDGE_VALUES).filter(bool))
def test_a_bridge_reply_gives_its_options_in_the_api_units(options):
    info = Link.from_raw(decode(nk.newlink(b"bridge", b"".join(
        nk.bridge_attrs(**options).values())))).info
    expected = {key: (round(value * 100) / 100 if key == "ageing_time" else value)
                for key, value in options.items()}
    assert info == expected


def test_a_link_of_a_kind_without_decoded_options_has_no_info():
    raw = decode(nk.newlink(b"veth", nk.u32(1, 5)))
    assert raw["info_data"] and Link.from_raw(raw).info is None
    assert Link.from_raw(decode(w.newlink(1, 0, 3, name=b"lo"))).info is None


@pytest.mark.parametrize("name", ["ETH_P_8021Q", "ETH_P_8021AD"])
def test_the_ethertypes_of_csrc_pn_kinds_cdef_are_the_headers(name):
    assert getattr(lib, name) == nk.E[name]
