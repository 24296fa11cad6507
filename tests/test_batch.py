"""Batches and transactions (``Handle.batch``) against the real kernel.

Every test works in scratch namespaces (``ns``, ``ns2``) and judges what the
kernel did with iproute2 (``ip -j``), not only with the batch's own Results.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import pynetlink as pn
from pynetlink import _core
from conftest import Netns, sh

OK, FAILED, SKIPPED, ROLLED_BACK = "ok", "failed", "skipped", "rolled_back"
BRIDGE_MAC = "02:00:00:00:0b:00"


def ip(ns, *args: str) -> None:
    """Prepare state with iproute2 (``ip -n NS ARGS``)."""
    sh("ip", "-n", ns.name, *args)


def add_bridge(ns, name: str = "br0") -> str:
    # With an address of its own: a bridge whose address the kernel picked takes its
    # ports' and is left all-zero when its last port leaves (see the limit test below).
    ip(ns, "link", "add", name, "address", BRIDGE_MAC, "type", "bridge")
    return name


def statuses(results) -> list:
    return [r.status for r in results]


def settled(read, expected, tries: int = 150):
    """``read()`` once it equals ``expected`` or after ``tries`` x 20 ms: the
    kernel's linkwatch work sets a link's operstate a moment after an admin-state
    or carrier change, not within the request."""
    got = read()
    for _ in range(tries):
        if got == expected:
            break
        time.sleep(0.02)
        got = read()
    return got


def ipv4_default_gateways(ns) -> list:
    return [r.get("gateway") for r in ns.routes("-4") if r["dst"] == "default"]


def ipv6_default_gateways(ns) -> list:
    return [r.get("gateway") for r in ns.routes("-6") if r["dst"] == "default"]


def local_addresses(ns, name: str) -> set:
    return {(a["local"], a["prefixlen"]) for a in ns.addresses(name)}


# -- continue mode: a mixed batch ----------------------------------------------------

MIXED = [
    ("create_veth_pair", ("c0", "c1")),
    ("create_veth_pair", ("d0", "d1")),
    ("set_mtu", ("c0", 1400)),
    ("interface_up", ("c0",)),
    ("set_interface_ip", ("c0", "192.0.2.10/24")),
    ("create_veth_pair", ("c0", "x1")),             # fails: EEXIST, no ext_ack
    ("set_mtu", ("c1", 10)),                        # fails: EINVAL with the kernel's text
    ("change_interface_name", ("d0", "eth7")),
    ("set_interface_ip", ("eth7", "2001:db8::7/64")),    # the renamed link, by its new name
    ("set_mtu", ("d1", 1280)),
    ("interface_up", ("d1",)),
]
EEXIST_AT, EINVAL_AT = 5, 6


@pytest.fixture
def mixed(ns, handle):
    """The MIXED batch run in continue mode: its results."""
    batch = handle.batch("continue")
    for operation, arguments in MIXED:
        getattr(batch, operation)(*arguments)
    return batch.run()


def test_continue_gives_one_result_per_op_in_queue_order(mixed):
    assert [(r.operation, r.arguments) for r in mixed] == MIXED


def test_continue_reports_each_op_ok_or_failed(mixed):
    expected = [OK] * len(MIXED)
    expected[EEXIST_AT] = expected[EINVAL_AT] = FAILED
    assert statuses(mixed) == expected


def test_continue_failed_results_carry_errno_and_ext_ack(mixed):
    assert [(r.errno, r.ext_ack) for r in mixed if r.status == FAILED] == [
        (errno.EEXIST, ""), (errno.EINVAL, "mtu less than device minimum")]


def test_continue_ok_results_carry_no_error(mixed):
    assert {(r.errno, r.ext_ack, r.exception()) for r in mixed if r.ok} == {(0, "", None)}


def test_continue_applies_the_ops_before_the_failure(ns, mixed):
    c0 = ns.link("c0")
    assert (c0["mtu"], "UP" in c0["flags"], ("192.0.2.10", 24) in local_addresses(ns, "c0")) \
        == (1400, True, True)


def test_continue_applies_the_ops_after_the_failure(ns, mixed):
    d1 = ns.link("d1")
    assert (("2001:db8::7", 64) in local_addresses(ns, "eth7"), d1["mtu"], "UP" in d1["flags"],
            "d0" in ns.link_names()) == (True, 1280, True, False)


def test_continue_failed_op_changed_nothing(ns, mixed):
    assert ("x1" not in ns.link_names(), ns.link("c1")["mtu"]) == (True, 1500)


def test_continue_result_exception_is_the_builtin_oserror_subclass(mixed):
    error = mixed[EEXIST_AT].exception()
    assert isinstance(error, FileExistsError) and isinstance(error, pn.NetlinkError)


def test_continue_result_exception_names_operation_and_arguments(mixed):
    assert str(mixed[EEXIST_AT].exception()) == "create_veth_pair('c0', 'x1'): [Errno 17] File exists"


def test_continue_result_exception_carries_the_kernel_text(mixed):
    assert str(mixed[EINVAL_AT].exception()) == (
        "set_mtu('c1', 10): [Errno 22] Invalid argument: mtu less than device minimum")


@pytest.mark.parametrize("at", [EEXIST_AT, EINVAL_AT], ids=["EEXIST", "EINVAL"])
def test_continue_result_exception_is_what_the_single_call_raises(handle, mixed, at):
    operation, arguments = MIXED[at]
    with pytest.raises(OSError) as single:
        getattr(handle, operation)(*arguments)          # the same call, alone, on the same state
    error = mixed[at].exception()
    assert (type(error), error.errno, str(error), error.operation, error.arguments, error.interface) \
        == (type(single.value), single.value.errno, str(single.value), single.value.operation,
            single.value.arguments, single.value.interface)


# -- operations that need an ifindex, naming links made earlier in the batch -------------

def test_set_interface_ip_on_a_link_made_earlier_in_the_batch(ns, handle):
    b = handle.batch()
    b.create_veth_pair("n0", "n1")
    b.set_interface_ip("n0", "198.51.100.7/24")
    b.set_interface_ip("n1", "2001:db8:1::7/64")
    b.run()
    assert (local_addresses(ns, "n0"), local_addresses(ns, "n1")) == (
        {("198.51.100.7", 24)}, {("2001:db8:1::7", 64)})


@pytest.mark.parametrize("cidr, gateway, read", [
    ("203.0.113.7/24", "203.0.113.1", ipv4_default_gateways),
    ("2001:db8:2::7/64", "2001:db8:2::1", ipv6_default_gateways),
], ids=["ipv4", "ipv6"])
def test_set_default_gateway_on_a_link_made_earlier_in_the_batch(ns, handle, cidr, gateway, read):
    b = handle.batch()
    b.create_veth_pair("n0", "n1")
    b.interface_up("n0")                    # a route needs its device up
    b.set_interface_ip("n0", cidr)
    b.set_default_gateway(gateway, "n0")
    b.run()
    assert read(ns) == [gateway]


def test_change_interface_name_on_a_link_made_earlier_in_the_batch(ns, handle):
    b = handle.batch()
    b.create_veth_pair("n0", "n1")
    b.change_interface_name("n1", "ceth0")
    b.run()
    assert ns.link("ceth0")["link"] == "n0"


def test_set_interface_master_to_a_name_given_earlier_in_the_batch(ns, handle):
    add_bridge(ns, "br0")
    b = handle.batch()
    b.create_veth_pair("n0", "n1")
    b.change_interface_name("br0", "brn")   # the master's index is looked up by its new name
    b.set_interface_master("n0", "brn")
    b.run()
    assert ns.link("n0")["master"] == "brn"


def test_set_link_new_name_and_master_on_a_link_made_earlier_in_the_batch(ns, handle):
    add_bridge(ns, "br0")
    b = handle.batch()
    b.create_veth_pair("n0", "n1")
    b.set_link("n0", new_name="eth3", master="br0", mtu=1400)
    b.set_interface_ip("eth3", "192.0.2.33/24")
    b.run()
    eth3 = ns.link("eth3")
    assert (eth3["master"], eth3["mtu"], local_addresses(ns, "eth3")) == (
        "br0", 1400, {("192.0.2.33", 24)})


def test_every_op_on_links_made_earlier_in_the_batch_is_ok(ns, handle):
    add_bridge(ns, "br0")
    b = handle.batch()
    b.create_veth_pair("n0", "n1")
    b.create_veth_pair("m0", "m1")
    b.interface_up("n0")
    b.set_interface_ip("n0", "192.0.2.5/24")
    b.set_default_gateway("192.0.2.1", "n0")
    b.change_interface_name("n1", "n9")
    b.set_interface_master("m0", "br0")
    b.set_link("m1", new_name="m9", master="br0")
    assert statuses(b.run()) == [OK] * 8


# -- names that do not exist ---------------------------------------------------------

MISSING = [
    ("set_interface_ip", ("ghost0", "192.0.2.9/24"), {}),
    ("set_default_gateway", ("192.0.2.1", "ghost0"), {}),
    ("change_interface_name", ("ghost0", "eth9"), {}),
    ("set_interface_master", ("va", "ghost0"), {}),
    ("set_link", ("va",), {"master": "ghost0"}),
    ("set_link", ("ghost0",), {"new_name": "eth9"}),
]
MISSING_IDS = ["set_interface_ip", "set_default_gateway", "change_interface_name",
               "set_interface_master", "set_link-master", "set_link-new_name"]


def run_missing(handle, operation, args, kwargs):
    b = handle.batch()
    getattr(b, operation)(*args, **kwargs)
    b.set_mtu("va", 1400)                   # continue mode: the next op still runs
    return b.run()


@pytest.mark.parametrize("operation, args, kwargs", MISSING, ids=MISSING_IDS)
def test_missing_name_gives_a_failed_result_with_enodev_about_it(veth, handle, operation, args, kwargs):
    missing = run_missing(handle, operation, args, kwargs)[0]
    assert (missing.status, missing.errno, missing.interface) == (FAILED, errno.ENODEV, "ghost0")


@pytest.mark.parametrize("operation, args, kwargs", MISSING, ids=MISSING_IDS)
def test_missing_name_is_named_in_the_exception(veth, handle, operation, args, kwargs):
    error = run_missing(handle, operation, args, kwargs)[0].exception()
    assert "'ghost0'" in str(error) and str(error).startswith(f"{operation}(")


def test_missing_name_does_not_stop_a_continue_batch(ns, veth, handle):
    run_missing(handle, "set_interface_ip", ("ghost0", "192.0.2.9/24"), {})
    assert ns.link("va")["mtu"] == 1400


# -- stop mode ---------------------------------------------------------------------------

@pytest.fixture
def stopped(ns, handle):
    b = handle.batch("stop")
    b.create_veth_pair("s0", "s1")
    b.set_mtu("s0", 1400)
    b.create_veth_pair("s0", "s9")          # fails: EEXIST
    b.set_mtu("s1", 1300)
    b.interface_up("s1")
    return b.run()


def test_stop_applies_nothing_after_the_first_failure(ns, stopped):
    s1 = ns.link("s1")
    assert (s1["mtu"], "UP" in s1["flags"]) == (1500, False)


def test_stop_reports_the_ops_after_the_failure_skipped(stopped):
    assert statuses(stopped) == [OK, OK, FAILED, SKIPPED, SKIPPED]


def test_stop_applies_the_ops_before_the_failure(ns, stopped):
    assert ns.link("s0")["mtu"] == 1400


def test_stop_failed_op_carries_its_errno(stopped):
    error = stopped[2].exception()
    assert (isinstance(error, FileExistsError), error.errno) == (True, errno.EEXIST)


def test_stop_after_a_missing_name_sends_nothing_more(ns, veth, handle):
    b = handle.batch("stop")
    b.set_interface_ip("ghost0", "192.0.2.9/24")
    b.set_mtu("va", 1400)
    b.run()
    assert ns.link("va")["mtu"] == 1500


# -- rollback mode: a transaction whose last step fails ----------------------------------

def transaction_state(ns) -> dict:
    """What ``ip -j`` shows of the namespace, in full."""
    return {"link": ns.ip("link", "show"), "addr": ns.ip("addr", "show"),
            "route4": ns.ip("-4", "route", "show"), "route6": ns.ip("-6", "route", "show")}


def transaction_setup(ns) -> None:
    """Links the transaction changes, in a state the kernel does not change on its own:
    br0 (a bridge with an address of its own), va/vb (down, never up), vc and ve (up
    with their peers down: no carrier, so no IPv6 autoconfiguration) and an address and
    a route of each family that must survive."""
    add_bridge(ns, "br0")
    for a, b in (("va", "vb"), ("vc", "vd"), ("ve", "vf")):
        ip(ns, "link", "add", a, "type", "veth", "peer", "name", b)
    ip(ns, "link", "set", "vc", "up")
    ip(ns, "link", "set", "ve", "up")
    ip(ns, "addr", "add", "198.51.100.2/24", "dev", "vc")
    ip(ns, "addr", "add", "2001:db8:1::2/64", "dev", "vc")
    ip(ns, "route", "add", "203.0.113.0/24", "via", "198.51.100.1", "dev", "vc")
    ip(ns, "-6", "route", "add", "2001:db8:3::/64", "via", "2001:db8:1::1", "dev", "vc")
    # vc's and ve's operstate settles (LOWERLAYERDOWN) a moment after they come up
    operstates = lambda: {l["ifname"]: l["operstate"] for l in ns.ip("link", "show")
                          if l["ifname"] in ("vc", "ve")}
    settled(operstates, {"vc": "LOWERLAYERDOWN", "ve": "LOWERLAYERDOWN"})


def queue_transaction(b) -> None:
    """Every reversible operation at least once, on new and on existing links."""
    b.create_veth_pair("tx0", "tx1")
    b.set_mtu("tx0", 1400)
    b.interface_up("tx0")
    b.set_mtu("va", 1400)
    b.set_link("va", mac_address="02:00:00:00:00:01", txqueuelen=500, mtu=1300)
    b.set_interface_master("va", "br0")
    b.set_hairpin("va", True)
    b.change_interface_name("vb", "vbx")
    b.set_link("vbx", new_name="vby", mtu=1280, txqueuelen=100, mac_address="02:00:00:00:00:02")
    b.set_interface_ip("vc", "192.0.2.2/24")
    b.set_interface_ip("vc", "2001:db8::2/64")
    b.set_default_gateway("192.0.2.1", "vc")
    b.set_default_gateway("2001:db8::1", "vc")
    b.interface_down("ve")


TRANSACTION_OPS = 14


@pytest.fixture
def transaction(ns, handle):
    """The transaction, its last step failing: (state before, state after, results)."""
    transaction_setup(ns)
    before = transaction_state(ns)
    b = handle.batch("rollback")
    queue_transaction(b)
    b.set_mtu("va", 10)                     # the last step fails: EINVAL
    results = b.run()
    # ve is brought up again by the undo: wait for the kernel to settle its operstate
    after = settled(lambda: transaction_state(ns), before)
    return before, after, results


def test_transaction_commits_when_nothing_fails(ns, handle):
    # the control: without the failing step, every view of the namespace changes
    transaction_setup(ns)
    before = transaction_state(ns)
    b = handle.batch("rollback")
    queue_transaction(b)
    assert statuses(b.run()) == [OK] * TRANSACTION_OPS
    after = transaction_state(ns)
    assert [k for k in before if before[k] == after[k]] == []


def test_rollback_leaves_links_as_they_were(transaction):
    before, after, _ = transaction
    assert after["link"] == before["link"]


def test_rollback_leaves_addresses_as_they_were(transaction):
    before, after, _ = transaction
    assert after["addr"] == before["addr"]


def test_rollback_leaves_ipv4_routes_as_they_were(transaction):
    before, after, _ = transaction
    assert after["route4"] == before["route4"]


def test_rollback_leaves_ipv6_routes_as_they_were(transaction):
    before, after, _ = transaction
    assert after["route6"] == before["route6"]


def test_rollback_marks_every_applied_op_rolled_back(transaction):
    _, _, results = transaction
    assert statuses(results) == [ROLLED_BACK] * TRANSACTION_OPS + [FAILED]


def test_rollback_failed_step_carries_its_errno_and_ext_ack(transaction):
    _, _, results = transaction
    assert (results[-1].errno, results[-1].ext_ack) == (errno.EINVAL, "mtu less than device minimum")


def test_rollback_marks_ops_not_sent_skipped(ns, veth, handle):
    b = handle.batch("rollback")
    b.create_veth_pair("t0", "t1")
    b.set_mtu("t0", 10)                     # fails
    b.set_interface_ip("t0", "192.0.2.5/24")    # its look-up comes after the failure: not sent
    assert statuses(b.run()) == [ROLLED_BACK, FAILED, SKIPPED]


def test_rollback_undoes_ops_sent_after_the_failure_in_the_same_send(ns, veth, handle):
    before = transaction_state(ns)
    b = handle.batch("rollback")
    b.set_mtu("va", 10)                     # fails
    b.create_veth_pair("t0", "t1")          # in the same send: applied, then undone
    b.set_mtu("vb", 1400)
    b.run()
    assert transaction_state(ns) == before


def test_rollback_of_a_missing_name_as_last_step_undoes_the_rest(ns, veth, handle):
    before = transaction_state(ns)
    b = handle.batch("rollback")
    b.create_veth_pair("t0", "t1")
    b.set_mtu("va", 1400)
    b.set_interface_ip("ghost0", "192.0.2.5/24")
    b.run()
    assert transaction_state(ns) == before


def test_rollback_undoes_a_failure_seen_before_the_end_of_the_queue(ns, handle):
    before = ns.link_names()
    b = handle.batch("rollback")
    b.create_veth_pair("t0", "t1")
    b.set_mtu("t0", 10)                     # fails
    b.set_interface_ip("t0", "192.0.2.5/24")    # needs a look-up: flushes, sees the failure
    b.set_mtu("t1", 1400)                   # any op after it: go() returns here
    b.run()
    assert ns.link_names() == before


def test_rollback_undoes_a_failure_seen_at_a_flush_inside_a_long_transaction(ns, handle):
    before = ns.link_names()
    b = handle.batch("rollback")
    b.create_veth_pair("t0", "t1")
    b.set_mtu("t0", 10)                     # fails
    for i in range(2100):                   # a read and a set each: past FLUSH_AT requests
        b.set_mtu("t1", 1280 + i % 100)
    b.run()
    assert ns.link_names() == before


# What the undo log does not hold: the kernel's own reactions to the operations.

def test_rollback_limit_the_qdisc_attached_when_a_link_first_came_up_stays(ns, veth, handle):
    assert ns.link("va")["qdisc"] == "noop"     # never up yet
    b = handle.batch("rollback")
    b.interface_up("va")
    b.set_mtu("va", 10)                     # fails: va is brought down again
    b.run()
    va = ns.link("va")
    assert ("UP" in va["flags"], va["qdisc"]) == (False, "noqueue")


def test_rollback_puts_back_ipv6_addresses_the_kernel_dropped_for_a_small_mtu(ns, veth, handle):
    ip(ns, "addr", "add", "2001:db8::5/64", "dev", "va")
    b = handle.batch("rollback")
    b.set_mtu("va", 1200)                   # below IPv6's 1280: the kernel drops va's IPv6
    b.set_mtu("vb", 10)                     # fails: va's MTU goes back to 1500, its address too
    b.run()
    assert (ns.link("va")["mtu"], local_addresses(ns, "va")) == (1500, {("2001:db8::5", 64)})


def test_rollback_limit_a_bridge_with_a_kernel_chosen_address_loses_it(ns, veth, handle):
    ip(ns, "link", "add", "br1", "type", "bridge")      # address chosen by the kernel
    before = ns.link("br1")["address"]
    b = handle.batch("rollback")
    b.set_interface_master("va", "br1")     # br1 takes its port's address ...
    b.set_mtu("va", 10)                     # fails: va leaves, br1 is left all-zero
    b.run()
    assert (before != "00:00:00:00:00:00", ns.link("br1")["address"]) == (True, "00:00:00:00:00:00")


# -- rollback mode refuses what it cannot undo -------------------------------------------

@pytest.fixture
def ns2_fd(ns2):
    fd = os.open(ns2.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


IRREVERSIBLE = [
    ("delete_link", lambda pid, fd: ("vb",)),
    ("set_interface_in_namespace_pid", lambda pid, fd: ("vb", pid)),
    ("set_interface_in_namespace_fd", lambda pid, fd: ("vb", fd)),
]


@pytest.mark.parametrize("operation, arguments", IRREVERSIBLE, ids=[o for o, _ in IRREVERSIBLE])
def test_rollback_refuses_irreversible_ops_at_queue_time(veth, handle, sleeper, ns2_fd,
                                                         operation, arguments):
    b = handle.batch("rollback")
    with pytest.raises(ValueError, match="cannot be part of a transaction"):
        getattr(b, operation)(*arguments(sleeper, ns2_fd))


@pytest.mark.parametrize("operation, arguments", IRREVERSIBLE, ids=[o for o, _ in IRREVERSIBLE])
def test_rollback_refused_op_is_not_queued(veth, handle, sleeper, ns2_fd, operation, arguments):
    b = handle.batch("rollback")
    b.set_mtu("va", 1400)
    with contextlib.suppress(ValueError):
        getattr(b, operation)(*arguments(sleeper, ns2_fd))
    assert len(b) == 1


@pytest.mark.parametrize("operation, arguments", IRREVERSIBLE, ids=[o for o, _ in IRREVERSIBLE])
def test_rollback_refused_op_is_never_sent(ns, ns2, veth, handle, sleeper, ns2_fd, operation,
                                           arguments):
    b = handle.batch("rollback")
    with contextlib.suppress(ValueError):
        getattr(b, operation)(*arguments(sleeper, ns2_fd))
    b.run()
    assert ("vb" in ns.link_names(), "vb" in ns2.link_names()) == (True, False)


def test_rollback_refusing_a_move_by_fd_leaves_the_callers_fd_open(veth, handle, ns2_fd):
    with contextlib.suppress(ValueError):
        handle.batch("rollback").set_interface_in_namespace_fd("vb", ns2_fd)
    os.fstat(ns2_fd)                        # raises if the refusal closed it


# -- the context manager -----------------------------------------------------------------

def test_with_block_runs_the_batch_when_it_ends(ns, handle):
    with handle.batch() as b:
        b.create_veth_pair("w0", "w1")
        queued_only = "w0" not in ns.link_names()
    assert (queued_only, "w0" in ns.link_names()) == (True, True)


def test_with_block_keeps_the_results(ns, handle):
    with handle.batch() as b:
        b.create_veth_pair("w0", "w1")
        b.set_mtu("w0", 1400)
    assert statuses(b.results) == [OK, OK]


def test_with_block_failure_raises_the_first_failure(veth, handle):
    with pytest.raises(FileExistsError) as info:
        with handle.batch() as b:
            b.set_mtu("va", 1400)
            b.create_veth_pair("va", "x1")      # the first failure: EEXIST
            b.set_mtu("vb", 10)                 # the second: EINVAL
    assert (info.value.errno, info.value.operation, info.value.arguments) == (
        errno.EEXIST, "create_veth_pair", ("va", "x1"))


def test_with_block_failure_is_a_netlink_error(veth, handle):
    with pytest.raises(pn.NetlinkError) as info:
        with handle.batch() as b:
            b.set_mtu("va", 10)
    assert (isinstance(info.value, OSError), info.value.errno, info.value.ext_ack) == (
        True, errno.EINVAL, "mtu less than device minimum")


def test_with_block_failure_carries_every_result(veth, handle):
    with pytest.raises(FileExistsError) as info:
        with handle.batch() as b:
            b.set_mtu("va", 1400)
            b.create_veth_pair("va", "x1")
            b.set_mtu("vb", 10)
    assert statuses(info.value.results) == [OK, FAILED, FAILED]


def test_with_block_failure_in_rollback_mode_leaves_nothing(ns, veth, handle):
    before = transaction_state(ns)
    with pytest.raises(FileExistsError):
        with handle.batch("rollback") as b:
            b.create_veth_pair("w0", "w1")
            b.set_mtu("va", 1400)
            b.create_veth_pair("va", "x1")
    assert transaction_state(ns) == before


def test_exception_inside_the_block_runs_nothing(ns, handle):
    with pytest.raises(KeyError):
        with handle.batch() as b:
            b.create_veth_pair("w0", "w1")
            b.interface_up("lo")
            raise KeyError("abandon")
    assert (ns.link_names(), "UP" in ns.link("lo")["flags"]) == ({"lo"}, False)


def test_exception_inside_the_block_is_not_replaced(ns, handle):
    with pytest.raises(KeyError, match="abandon"):
        with handle.batch() as b:
            b.create_veth_pair("lo", "w1")      # would fail with EEXIST if it ran
            raise KeyError("abandon")


def fds_on(netns) -> list:
    """This process's fds open on the namespace ``netns``."""
    target = os.stat(netns.path)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):      # e.g. listdir's own fd, closed by now
            st = os.stat(int(fd))
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                found.append(int(fd))
    return found


def test_an_abandoned_batch_cannot_run_with_the_fds_it_closed(ns, ns2, handle):
    intended = Netns()
    try:
        with pytest.raises(KeyError):
            with handle.batch() as b:
                b.create_veth_pair("h0", "c0", peer_netns=intended.path)
                [number] = fds_on(intended)     # the fd the queued op opened
                raise KeyError("abandon")
        assert fds_on(intended) == []           # closed with the block
        other = os.open(ns2.path, os.O_RDONLY | os.O_CLOEXEC)   # likely that number again
        if other != number:                     # make sure another namespace holds that number
            os.dup2(other, number)
            os.close(other)
        try:
            with contextlib.suppress(RuntimeError, OSError):
                b.run()
        finally:
            os.close(number)
        assert "c0" not in ns2.link_names()
    finally:
        intended.remove()


def test_batch_cannot_run_twice(veth, handle):
    b = handle.batch()
    b.set_mtu("va", 1400)
    b.run()
    with pytest.raises(RuntimeError, match="already run"):
        b.run()


def test_batch_run_by_its_block_cannot_run_again(veth, handle):
    with handle.batch() as b:
        b.set_mtu("va", 1400)
    with pytest.raises(RuntimeError, match="already run"):
        b.run()


def test_batch_that_ran_queues_nothing_more(ns, veth, handle):
    b = handle.batch()
    b.set_mtu("va", 1400)
    b.run()
    with pytest.raises(RuntimeError, match="already run"):
        b.create_veth_pair("w0", "w1")


def test_second_run_sends_nothing(ns, veth, handle):
    b = handle.batch()
    b.set_mtu("va", 1400)
    b.run()
    sh("ip", "-n", ns.name, "link", "set", "va", "mtu", "1500")
    with contextlib.suppress(RuntimeError):
        b.run()
    assert ns.link("va")["mtu"] == 1500


def test_batch_rejects_an_unknown_mode(handle):
    with pytest.raises(ValueError, match="on_error"):
        handle.batch("abort")


# -- bad input at queue time -------------------------------------------------------------

BAD = [
    ("create_veth_pair", ("a" * 16, "b0"), {}, ValueError),
    ("create_veth_pair", ("a0", "b0"), {"mtu": 0}, ValueError),
    ("create_veth_pair", ("a0", "b0"), {"up": "yes"}, TypeError),
    ("create_veth_pair", ("a0", "b0"), {"master": "bad name"}, ValueError),
    ("create_veth_pair", ("a0", "b0"), {"peer_netns": "/run/netns/x", "peer_pid": 1}, ValueError),
    ("create_veth_pair", ("a0", "b0"), {"peer_netns": 3.5}, TypeError),
    ("interface_up", (5,), {}, TypeError),
    ("interface_down", ("",), {}, ValueError),
    ("set_mtu", ("va", 0), {}, ValueError),
    ("set_mtu", ("va", "1500"), {}, TypeError),
    ("set_mtu", ("va", True), {}, TypeError),
    ("set_interface_master", ("va", "a/b"), {}, ValueError),
    ("change_interface_name", ("va", "x" * 16), {}, ValueError),
    ("change_interface_name", ("va", None), {}, TypeError),
    ("set_interface_ip", ("va", "192.0.2.1"), {}, ValueError),
    ("set_interface_ip", ("va", "192.0.2.300/24"), {}, ValueError),
    ("set_interface_ip", ("va", 3232235777), {}, TypeError),
    ("set_default_gateway", ("not-an-ip", "va"), {}, ValueError),
    ("set_default_gateway", (b"\xc0\x00\x02\x01", "va"), {}, TypeError),
    ("set_link", ("va",), {"mac_address": "zz:00:00:00:00:00"}, ValueError),
    ("set_link", ("va",), {"txqueuelen": -1}, ValueError),
    ("set_link", ("va",), {"up": 1}, TypeError),
    ("set_link", ("va",), {"new_name": "."}, ValueError),
    ("set_hairpin", ("va", 1), {}, TypeError),
    ("set_interface_in_namespace_pid", ("va", 0), {}, ValueError),
    ("set_interface_in_namespace_fd", ("va", -1), {}, ValueError),
    ("delete_link", ("va:0",), {}, ValueError),
]


@pytest.mark.parametrize("operation, args, kwargs, error", BAD,
                         ids=[f"{o}-{i}" for i, (o, *_) in enumerate(BAD)])
def test_bad_input_raises_at_queue_time(handle, operation, args, kwargs, error):
    b = handle.batch()
    with pytest.raises(error):
        getattr(b, operation)(*args, **kwargs)


@pytest.mark.parametrize("operation, args, kwargs, error", BAD,
                         ids=[f"{o}-{i}" for i, (o, *_) in enumerate(BAD)])
def test_bad_input_queues_nothing(handle, operation, args, kwargs, error):
    b = handle.batch()
    b.interface_up("lo")
    with contextlib.suppress(error):
        getattr(b, operation)(*args, **kwargs)
    assert len(b) == 1


def test_bad_input_sends_nothing(ns, veth, handle):
    b = handle.batch()
    b.set_mtu("va", 1400)
    with contextlib.suppress(ValueError):
        b.set_link("vb", mtu=1400, mac_address="not-a-mac")     # vb's MTU would change
    b.run()
    assert (ns.link("va")["mtu"], ns.link("vb")["mtu"]) == (1400, 1500)


# -- a Handle bound to another namespace by fd ---------------------------------------------

def run_in_ns2_by_fd(ns2_fd):
    with pn.Handle(netns=ns2_fd) as h:
        b = h.batch()
        b.create_veth_pair("fdb0", "fdb1")
        b.set_interface_ip("fdb0", "192.0.2.77/24")
        b.interface_up("lo")
        return b.run()


def test_batch_on_a_handle_by_fd_acts_in_that_namespace(ns2, ns2_fd):
    run_in_ns2_by_fd(ns2_fd)
    assert ({"fdb0", "fdb1"} <= ns2.link_names(), local_addresses(ns2, "fdb0"),
            "UP" in ns2.link("lo")["flags"]) == (True, {("192.0.2.77", 24)}, True)


def test_batch_on_a_handle_by_fd_leaves_other_namespaces_alone(ns, ns2_fd):
    run_in_ns2_by_fd(ns2_fd)
    own = {link["ifname"] for link in json.loads(sh("ip", "-j", "link", "show").stdout)}
    assert (ns.link_names() & {"fdb0", "fdb1"}, own & {"fdb0", "fdb1"},
            "UP" in ns.link("lo")["flags"]) == (set(), set(), False)


# -- size ----------------------------------------------------------------------------------

PAIRS = 4000


def queue_ten_thousand(b) -> None:
    """PAIRS veth pairs, an MTU for each host end, and peers brought up: 10,000 ops."""
    for i in range(PAIRS):
        b.create_veth_pair(f"z{i}", f"y{i}")
    for i in range(PAIRS):
        b.set_mtu(f"z{i}", 1280 + i % 200)
    for i in range(10_000 - 2 * PAIRS):
        b.interface_up(f"y{i}")


@pytest.mark.slow
def test_ten_thousand_operations_all_succeed_and_reach_the_kernel(ns, handle):
    b = handle.batch()
    queue_ten_thousand(b)
    assert len(b) == 10_000
    results = b.run()                       # an overflowed socket would raise or give ENOBUFS
    assert (len(results), [(r.status, r.errno) for r in results if not r.ok]) == (10_000, [])
    links = {link["ifname"]: link for link in ns.ip("link", "show")}
    sample = range(0, PAIRS, 397)
    seen = [(links[f"z{i}"]["mtu"], links[f"z{i}"]["link"], "UP" in links[f"y{i}"]["flags"])
            for i in sample]
    assert (len(links), seen) == (
        2 * PAIRS + 1, [(1280 + i % 200, f"y{i}", i < 10_000 - 2 * PAIRS) for i in sample])


SEND_COUNT = textwrap.dedent("""
    import pynetlink as pn
    with pn.netns.scratch() as fd, pn.Handle(netns=fd) as h:
        b = h.batch()
        b.create_veth_pair("s0", "p0")
        for i in range(999):
            b.set_mtu("s0", 1280 + i % 100)
        results = b.run()
        print(len(results), sum(r.ok for r in results))
""")


def test_a_thousand_operations_take_one_send_per_window(tmp_path):
    """1,000 operations: ceil(1000 / WINDOW) sendto calls, not one more (so
    a window cut in half, or a send per operation, fails)."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed: cannot count sendto calls")
    summary = tmp_path / "strace.txt"
    proc = subprocess.run([strace, "-f", "-qq", "-e", "trace=sendto", "-c", "-o", str(summary),
                           sys.executable, "-c", SEND_COUNT],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()}")
    counts = re.findall(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?sendto$",
                        summary.read_text(), re.M)
    assert (proc.returncode, proc.stdout.split(), [int(c) for c in counts]) \
        == (0, ["1000", "1000"], [math.ceil(1000 / _core.WINDOW)]), (proc.stderr, summary.read_text())
