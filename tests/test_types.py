"""Unit tests for pynetlink.types: libcontainer's network JSON (no kernel needed).

``Network``, ``NetworkState`` and ``NetworkStats`` mirror libcontainer's Go
structs.  Writing follows Go's ``omitempty``; reading is strict (unknown key,
wrong JSON type, negative counter -> ValueError naming the key), ``null``
reads as the zero value, and anything but a JSON object is a ValueError.

The addresses below are the ones libcontainer used in its own sample
configurations; here they are only JSON strings, nothing touches a network.
"""
from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynetlink.types import Network, NetworkState, NetworkStats

pytestmark = pytest.mark.unit

# --- the libcontainer keys, in the order to_json writes them ----------------

NETWORK_KEYS = ["type", "ns_path", "bridge", "veth_prefix", "address", "gateway", "mtu",
                "mac_address", "ipv6_address", "ipv6_gateway", "txqueuelen", "hairpin_mode"]
STATE_KEYS = ["veth_host", "veth_child", "ns_path"]
STATS_KEYS = ["rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"]

# The JSON type each key holds: "str", "int" (signed Go int) or "uint" (uint64), "bool".
FIELD_KINDS = {
    Network: {**{k: "str" for k in NETWORK_KEYS}, "mtu": "int", "txqueuelen": "int",
              "hairpin_mode": "bool"},
    NetworkState: {k: "str" for k in STATE_KEYS},
    NetworkStats: {k: "uint" for k in STATS_KEYS},
}
FIELD_CASES = [(cls, key, kind) for cls, kinds in FIELD_KINDS.items()
               for key, kind in kinds.items()]
FIELD_IDS = [f"{cls.__name__}.{key}" for cls, key, _ in FIELD_CASES]
ALL_TYPES = [Network, NetworkState, NetworkStats]

# --- strategies --------------------------------------------------------------

GO_INT = st.integers(min_value=-2**63, max_value=2**63 - 1)
UINT64 = st.integers(min_value=0, max_value=2**64 - 1)
# Arbitrary unicode, lone surrogates, control and unassigned code points included.
UNICODE = st.text(st.characters(exclude_categories=()))

_VALUE_STRATEGIES = {"str": UNICODE, "int": GO_INT, "uint": UINT64, "bool": st.booleans()}


def instances(cls):
    """Any instance of cls with in-range values."""
    return st.builds(cls, **{key: _VALUE_STRATEGIES[kind]
                             for key, kind in FIELD_KINDS[cls].items()})


ANY_INSTANCE = st.one_of(*(instances(cls) for cls in ALL_TYPES))

_JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
_JSON_VALUES = st.recursive(_JSON_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


def wrong_values(kind):
    """Non-null JSON values that are not of the given kind."""
    containers = st.one_of(st.lists(_JSON_VALUES, max_size=3),
                           st.dictionaries(st.text(max_size=5), _JSON_VALUES, max_size=3))
    floats = st.floats(allow_nan=False, allow_infinity=False)   # 1500.0 is not an int either
    if kind == "str":
        return st.one_of(st.integers(), floats, st.booleans(), containers)
    if kind in ("int", "uint"):
        return st.one_of(st.text(), floats, st.booleans(), containers)
    return st.one_of(st.integers(), st.text(), floats, containers)          # bool


def assert_names(exc_info, key):
    assert key in str(exc_info.value), f"{key!r} not named in: {exc_info.value}"


# --- round trips -------------------------------------------------------------

@given(instances(Network))
def test_network_round_trips_through_json(net):
    assert Network.from_json(net.to_json()) == net


@given(instances(NetworkState))
def test_network_state_round_trips_through_json(state):
    assert NetworkState.from_json(state.to_json()) == state


@given(instances(NetworkStats))
def test_network_stats_round_trips_through_json(stats):
    assert NetworkStats.from_json(stats.to_json()) == stats


@given(ANY_INSTANCE)
def test_every_type_round_trips_through_dict(obj):
    assert type(obj).from_dict(obj.to_dict()) == obj


@given(ANY_INSTANCE)
def test_to_json_text_decodes_to_to_dict(obj):
    assert json.loads(obj.to_json()) == obj.to_dict()


@given(instances(Network), instances(NetworkState))
def test_round_trip_survives_non_ascii_output(net, state):
    # ensure_ascii=False leaves unicode unescaped, as Go writes it
    assert Network.from_json(net.to_json(ensure_ascii=False)) == net
    assert NetworkState.from_json(state.to_json(ensure_ascii=False)) == state


@pytest.mark.parametrize("value", [0, 1, 2**32, 2**63, 2**64 - 1])
def test_stats_counters_round_trip_up_to_uint64_max(value):
    stats = NetworkStats(**{k: value for k in STATS_KEYS})
    assert NetworkStats.from_json(stats.to_json()) == stats
    assert json.loads(stats.to_json()) == {k: value for k in STATS_KEYS}


@pytest.mark.parametrize("value", [-2**63, -1, 2**63 - 1])
def test_mtu_and_txqueuelen_round_trip_over_go_int_range(value):
    net = Network(mtu=value, txqueuelen=value)
    assert Network.from_json(net.to_json()) == net


# --- omitempty on writing ----------------------------------------------------

def test_to_json_omits_empty_fields_like_go():
    net = Network(type="veth", mtu=1500)
    assert net.to_json() == '{"type": "veth", "mtu": 1500}'
    # with Go's separators the text is byte for byte what encoding/json writes
    assert net.to_json(separators=(",", ":")) == '{"type":"veth","mtu":1500}'


def test_zero_network_and_state_write_an_empty_object():
    assert Network().to_json() == "{}"
    assert NetworkState().to_json() == "{}"
    assert Network().to_dict() == {}
    assert NetworkState().to_dict() == {}


def test_omitempty_drops_false_zero_and_empty_string():
    net = Network(type="loopback", bridge="", mtu=0, txqueuelen=0, hairpin_mode=False)
    assert net.to_dict() == {"type": "loopback"}


def test_omitempty_keeps_negative_numbers_true_and_whitespace():
    # Go omits only the zero value: -1, true and " " are all written
    net = Network(gateway=" ", mtu=-1, txqueuelen=-5, hairpin_mode=True)
    assert net.to_json() == '{"gateway": " ", "mtu": -1, "txqueuelen": -5, "hairpin_mode": true}'


@given(instances(Network))
def test_network_writes_exactly_its_non_empty_fields_in_field_order(net):
    assert list(net.to_dict()) == [k for k in NETWORK_KEYS if getattr(net, k)]


@given(instances(NetworkState))
def test_network_state_writes_exactly_its_non_empty_fields_in_field_order(state):
    assert list(state.to_dict()) == [k for k in STATE_KEYS if getattr(state, k)]


def test_full_network_writes_every_libcontainer_key_in_field_order():
    net = Network(type="veth", ns_path="/var/run/netns/c1", bridge="docker0",
                  veth_prefix="veth", address="172.17.0.5/16", gateway="172.17.42.1",
                  mtu=1500, mac_address="02:42:ac:11:00:05", ipv6_address="fe80::42:acff:fe11:5/64",
                  ipv6_gateway="fe80::1", txqueuelen=1000, hairpin_mode=True)
    assert list(json.loads(net.to_json())) == NETWORK_KEYS


def test_network_state_writes_only_set_keys():
    assert NetworkState(veth_child="eth0").to_json() == '{"veth_child": "eth0"}'
    assert list(NetworkState("vethA", "vethB", "/proc/1/ns/net").to_dict()) == STATE_KEYS


def test_network_stats_always_writes_all_eight_keys_including_zeros():
    assert NetworkStats().to_json() == (
        '{"rx_bytes": 0, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0, '
        '"tx_bytes": 0, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}')


@given(instances(NetworkStats))
def test_network_stats_writes_all_eight_keys_whatever_the_values(stats):
    assert list(stats.to_dict()) == STATS_KEYS


def test_stats_missing_keys_read_as_zero_and_are_written_back():
    stats = NetworkStats.from_json('{"rx_bytes": 42}')
    assert stats == NetworkStats(rx_bytes=42)
    assert json.loads(stats.to_json()) == {**{k: 0 for k in STATS_KEYS}, "rx_bytes": 42}


# --- documents as libcontainer wrote them ------------------------------------

CONTAINER_CONFIG = """
{
    "hostname": "koye",
    "tty": true,
    "environment": ["HOME=/", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "namespaces": {"NEWIPC": true, "NEWNET": true, "NEWNS": true, "NEWPID": true, "NEWUTS": true},
    "capabilities": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID"],
    "networks": [
        {"type":"loopback","address":"127.0.0.1/0","gateway":"localhost"},
        {"type":"veth","bridge":"docker0","veth_prefix":"veth","address":"172.17.0.5/16","gateway":"172.17.42.1","mtu":1500}
    ],
    "cgroups": {"name": "docker-koye", "parent": "docker"},
    "mount_config": {"mount_label": ""}
}
"""


def test_reads_network_list_of_libcontainer_container_config():
    config = json.loads(CONTAINER_CONFIG)
    nets = [Network.from_dict(d) for d in config["networks"]]
    assert nets == [
        Network(type="loopback", address="127.0.0.1/0", gateway="localhost"),
        Network(type="veth", bridge="docker0", veth_prefix="veth",
                address="172.17.0.5/16", gateway="172.17.42.1", mtu=1500),
    ]


@pytest.mark.parametrize("line", [
    '{"type":"loopback","address":"127.0.0.1/0","gateway":"localhost"}',
    '{"type":"veth","bridge":"docker0","veth_prefix":"veth","address":"172.17.0.5/16",'
    '"gateway":"172.17.42.1","mtu":1500}',
    '{"type":"netns","ns_path":"/var/run/netns/shared"}',
])
def test_libcontainer_network_document_is_rewritten_byte_for_byte(line):
    assert Network.from_json(line).to_json(separators=(",", ":")) == line


def test_reads_network_with_fields_added_after_v1_2_0():
    doc = ('{"type":"veth","bridge":"docker0","veth_prefix":"veth",'
           '"mac_address":"02:42:ac:11:00:05","address":"172.17.0.5/16",'
           '"ipv6_address":"2001:db8::5/64","gateway":"172.17.42.1",'
           '"ipv6_gateway":"2001:db8::1","mtu":1500,"txqueuelen":0,"hairpin_mode":true}')
    assert Network.from_json(doc) == Network(
        type="veth", bridge="docker0", veth_prefix="veth", mac_address="02:42:ac:11:00:05",
        address="172.17.0.5/16", ipv6_address="2001:db8::5/64", gateway="172.17.42.1",
        ipv6_gateway="2001:db8::1", mtu=1500, txqueuelen=0, hairpin_mode=True)


def test_reads_network_state_of_libcontainer_state_document():
    state_json = ('{"init_pid":2751,"init_start_time":"1406041474",'
                  '"network_state":{"veth_host":"veth3fc9d42","veth_child":"veth4b1a3f0",'
                  '"ns_path":"/proc/2751/ns/net"},'
                  '"cgroup_paths":{"memory":"/sys/fs/cgroup/memory/docker/koye"}}')
    state = NetworkState.from_dict(json.loads(state_json)["network_state"])
    assert state == NetworkState(veth_host="veth3fc9d42", veth_child="veth4b1a3f0",
                                 ns_path="/proc/2751/ns/net")


def test_reads_network_stats_of_libcontainer_stats_document():
    stats_json = ('{"network_stats":{"rx_bytes":5213460542,"rx_packets":3812049,'
                  '"rx_errors":0,"rx_dropped":0,"tx_bytes":18446744073709551615,'
                  '"tx_packets":1964385,"tx_errors":0,"tx_dropped":3},'
                  '"cgroup_stats":{"memory_stats":{"usage":4161536}}}')
    stats = NetworkStats.from_dict(json.loads(stats_json)["network_stats"])
    assert stats == NetworkStats(rx_bytes=5213460542, rx_packets=3812049, rx_errors=0,
                                 rx_dropped=0, tx_bytes=2**64 - 1, tx_packets=1964385,
                                 tx_errors=0, tx_dropped=3)


# --- strict reading: unknown keys ----------------------------------------------

@pytest.mark.parametrize("cls,key", [
    (Network, "context"),          # a key of libcontainer's older configs
    (Network, "veth_host"),        # a NetworkState key
    (Network, "rx_bytes"),         # a NetworkStats key
    (Network, "MTU"),              # Go would match this case-insensitively; the contract is strict
    (Network, "mtu "),
    (NetworkState, "type"),
    (NetworkState, "network_state"),
    (NetworkStats, "rx_bytes_total"),
    (NetworkStats, "interface"),
])
def test_unknown_key_is_rejected_naming_the_key(cls, key):
    with pytest.raises(ValueError) as exc_info:
        cls.from_json(json.dumps({key: 1}))
    assert_names(exc_info, key)
    with pytest.raises(ValueError) as exc_info:
        cls.from_dict({key: 1})
    assert_names(exc_info, key)


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_unknown_key_is_rejected_even_with_null_value_and_valid_neighbours(cls):
    first = next(iter(FIELD_KINDS[cls]))
    good = {"str": "x", "int": 1, "uint": 1, "bool": True}[FIELD_KINDS[cls][first]]
    with pytest.raises(ValueError) as exc_info:
        cls.from_json(json.dumps({first: good, "surprise": None}))
    assert_names(exc_info, "surprise")


# Keys whose repr is the key itself in quotes: printable, no backslash, no "'"
# (a key with both quote kinds has its "'" escaped; see the next test).
@given(cls=st.sampled_from(ALL_TYPES),
       key=st.text(st.characters(categories=["L", "N", "P", "S"], include_characters=" ",
                                 exclude_characters="\\'"), min_size=1).filter(str.isprintable))
def test_any_printable_unknown_key_is_named_in_the_error(cls, key):
    if key in FIELD_KINDS[cls]:
        return
    with pytest.raises(ValueError) as exc_info:
        cls.from_json(json.dumps({key: 0}))
    assert_names(exc_info, key)


@given(cls=st.sampled_from(ALL_TYPES), key=UNICODE)
def test_any_unknown_key_is_named_in_the_error_at_least_escaped(cls, key):
    # control characters and backslashes are shown escaped (the key's repr)
    if key in FIELD_KINDS[cls]:
        return
    with pytest.raises(ValueError) as exc_info:
        cls.from_dict({key: 0})
    assert repr(key) in str(exc_info.value)


# --- strict reading: wrong JSON types ----------------------------------------

@pytest.mark.parametrize("cls,key,value", [
    (Network, "type", 1),
    (Network, "address", ["172.17.0.5/16"]),
    (Network, "gateway", {"ip": "172.17.42.1"}),
    (Network, "mtu", "1500"),
    (Network, "mtu", 1500.0),
    (Network, "mtu", 1.5e3),
    (Network, "txqueuelen", [1000]),
    (Network, "hairpin_mode", "true"),
    (NetworkState, "veth_host", 7),
    (NetworkState, "ns_path", False),
    (NetworkStats, "rx_bytes", "5213460542"),
    (NetworkStats, "tx_dropped", 3.0),
    (NetworkStats, "rx_errors", {}),
])
def test_value_of_wrong_json_type_is_rejected_naming_the_key(cls, key, value):
    with pytest.raises(ValueError) as exc_info:
        cls.from_json(json.dumps({key: value}))
    assert_names(exc_info, key)


@settings(max_examples=settings.default.max_examples // 15)
@pytest.mark.parametrize("cls,key,kind", FIELD_CASES, ids=FIELD_IDS)
@given(data=st.data())
def test_every_field_rejects_every_other_json_type_naming_the_key(cls, key, kind, data):
    value = data.draw(wrong_values(kind), label="value")
    with pytest.raises(ValueError) as exc_info:
        cls.from_json(json.dumps({key: value}))
    assert_names(exc_info, key)


@pytest.mark.parametrize("cls,key", [(Network, "mtu"), (Network, "txqueuelen"),
                                     *((NetworkStats, k) for k in STATS_KEYS)])
@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_accepted_as_int(cls, key, value):
    with pytest.raises(ValueError) as exc_info:
        cls.from_json(json.dumps({key: value}))
    assert_names(exc_info, key)
    with pytest.raises(ValueError) as exc_info:
        cls.from_dict({key: value})
    assert_names(exc_info, key)


@pytest.mark.parametrize("value", [0, 1, 1.0, "true", "false"])
def test_int_is_not_accepted_as_bool(value):
    with pytest.raises(ValueError) as exc_info:
        Network.from_json(json.dumps({"hairpin_mode": value}))
    assert_names(exc_info, "hairpin_mode")


@pytest.mark.parametrize("key", STATS_KEYS)
@pytest.mark.parametrize("value", [-1, -2**63, -2**64])
def test_negative_stats_counter_is_rejected_naming_the_key(key, value):
    with pytest.raises(ValueError) as exc_info:
        NetworkStats.from_json(json.dumps({key: value}))
    assert_names(exc_info, key)


@given(key=st.sampled_from(STATS_KEYS), value=st.integers(max_value=-1))
def test_any_negative_stats_counter_is_rejected(key, value):
    with pytest.raises(ValueError) as exc_info:
        NetworkStats.from_dict({key: value})
    assert_names(exc_info, key)


def test_error_names_the_bad_key_among_good_ones():
    doc = '{"type":"veth","bridge":"docker0","mtu":"1500","gateway":"172.17.42.1"}'
    with pytest.raises(ValueError) as exc_info:
        Network.from_json(doc)
    assert_names(exc_info, "mtu")


# --- null ---------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL_TYPES)
def test_null_reads_as_zero_value_for_every_field(cls):
    doc = json.dumps({key: None for key in FIELD_KINDS[cls]})
    assert cls.from_json(doc) == cls()


def test_null_beside_values_leaves_only_that_field_zero():
    doc = '{"type":"veth","bridge":null,"mtu":null,"hairpin_mode":null,"gateway":"172.17.42.1"}'
    assert Network.from_json(doc) == Network(type="veth", gateway="172.17.42.1")
    assert NetworkStats.from_json('{"rx_bytes":null,"tx_bytes":9}') == NetworkStats(tx_bytes=9)


@given(ANY_INSTANCE, st.data())
def test_nulling_a_field_resets_it_to_its_zero_value(obj, data):
    cls = type(obj)
    key = data.draw(st.sampled_from(list(FIELD_KINDS[cls])), label="key")
    doc = {k: getattr(obj, k) for k in FIELD_KINDS[cls]}
    doc[key] = None
    assert cls.from_dict(doc) == dataclasses.replace(obj, **{key: getattr(cls(), key)})


# --- non-objects and invalid text --------------------------------------------

@pytest.mark.parametrize("cls", ALL_TYPES)
@pytest.mark.parametrize("data", [[], [{"type": "veth"}], "veth", "", 1500, 1.5, True, None,
                                  (("type", "veth"),), {"type"}])
def test_from_dict_of_a_non_dict_is_a_value_error(cls, data):
    with pytest.raises(ValueError):
        cls.from_dict(data)


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_from_dict_of_an_instance_is_a_value_error(cls):
    with pytest.raises(ValueError):
        cls.from_dict(cls())


@pytest.mark.parametrize("cls", ALL_TYPES)
@pytest.mark.parametrize("text", ["[]", '[{"type":"veth","mtu":1500}]', '"veth"', "1500",
                                  "-1", "1.5", "true", "false", "null", '""'])
def test_from_json_does_not_accept_non_object_top_level_types(cls, text):
    with pytest.raises(ValueError):
        cls.from_json(text)


@pytest.mark.parametrize("cls", ALL_TYPES)
@pytest.mark.parametrize("text", ["{} {}", "{}[]", '{"type":"veth"}{"type":"loopback"}',
                                  "{} 1", "{}\nnull"])
def test_from_json_does_not_accept_data_after_the_object(cls, text):
    with pytest.raises(ValueError):
        cls.from_json(text)


@pytest.mark.parametrize("cls", ALL_TYPES)
@pytest.mark.parametrize("text", ["", "   ", "{", "}", '{"type": "veth",}', "{'type': 'veth'}",
                                  '{type: "veth"}', '{"mtu": 01500}', '{"mtu": 0x5dc}',
                                  '{"type": "veth"', '{"type" "veth"}', "undefined"])
def test_from_json_of_invalid_json_text_is_a_value_error(cls, text):
    with pytest.raises(ValueError):
        cls.from_json(text)


@pytest.mark.parametrize("text", [
    "[" * 100_000,                                          # invalid JSON text
    "[" * 100_000 + "]" * 100_000,                          # valid JSON, not an object
    '{"type": ' + "[" * 100_000 + "]" * 100_000 + "}",      # wrong type for a key
], ids=["unclosed", "nested-list", "nested-value"])
def test_deeply_nested_json_is_a_value_error(text):
    # The parser gives up before any key is seen, so the message cannot name one.
    with pytest.raises(ValueError, match="nested too deeply"):
        Network.from_json(text)


@pytest.mark.parametrize("key,value", [("mtu", 2**63), ("mtu", -2**63 - 1), ("txqueuelen", 10**23)])
def test_network_int_outside_go_int64_is_rejected_naming_the_key(key, value):
    with pytest.raises(ValueError) as exc_info:
        Network.from_json(json.dumps({key: value}))
    assert_names(exc_info, key)


@pytest.mark.parametrize("key", STATS_KEYS)
def test_stats_counter_above_uint64_is_rejected_naming_the_key(key):
    with pytest.raises(ValueError) as exc_info:
        NetworkStats.from_json(json.dumps({key: 2**64}))
    assert_names(exc_info, key)


def test_an_integer_too_long_to_read_is_a_network_value_error():
    with pytest.raises(ValueError, match="^Network: "):
        Network.from_json('{"type": "veth", "mtu": ' + "9" * 5000 + "}")
