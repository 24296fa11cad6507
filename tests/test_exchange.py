"""Many requests in one exchange: one reply per request, in order.

This is what batches build on: rtnetlink processes the messages of one
sendmsg one after another and ACKs each, continuing after errors.
"""
from __future__ import annotations

import errno

from pynetlink import _core, links
from pynetlink._core import Request


def veth_pair(name1: str, name2: str) -> Request:
    return Request("create_veth_pair", (name1, name2), name1,
                   links.create_veth_pair(*links.veth_fields(name1, name2)))


def set_mtu(name: str, mtu: int) -> Request:
    return Request("set_mtu", (name, mtu), name, links.set_mtu(name, mtu))


def get(name: str) -> Request:
    return Request("get_link", (name,), name, links.get(name), reads=True)


def test_exchange_returns_one_reply_per_request_in_order(ns, handle):
    requests = [veth_pair(f"x{i}", f"y{i}") for i in range(150)]
    replies = handle.socket.exchange(requests)
    assert [r.errno for r in replies] == [0] * 150
    assert {f"x{i}" for i in range(150)} <= ns.link_names()


def test_exchange_goes_on_after_a_failed_request(ns, handle, veth):
    requests = [set_mtu("va", 1400), set_mtu("ghost0", 1400),
                veth_pair("va", "vz"), set_mtu("vb", 1300)]
    replies = handle.socket.exchange(requests)
    assert [r.errno for r in replies] == [0, errno.ENODEV, errno.EEXIST, 0]
    assert ns.link("va")["mtu"] == 1400 and ns.link("vb")["mtu"] == 1300


def test_exchange_carries_extended_ack_per_request(ns, handle, veth):
    replies = handle.socket.exchange([set_mtu("va", 10), set_mtu("vb", 1400)])
    assert "mtu less than device minimum" in replies[0].ext_ack
    assert replies[1] == (0, "", None)


def test_exchange_larger_than_one_window(ns, handle):
    count = 5 * _core.WINDOW + 3
    names = [f"w{i}" for i in range(count)]
    handle.socket.exchange([veth_pair(n, n + "p") for n in names])
    replies = handle.socket.exchange([get(n) for n in names])
    assert [r.link["name"] for r in replies] == names
    indexes = {link["ifname"]: link["ifindex"] for link in ns.ip("link", "show")}
    assert [r.link["index"] for r in replies] == [indexes[n] for n in names]


def test_sequence_numbers_keep_running_across_exchanges(handle):
    first = handle._sock._seq
    handle.socket.exchange([get("lo")] * 3)
    handle.socket.exchange([get("lo")])
    assert handle._sock._seq == first + 4
