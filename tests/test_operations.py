"""One definition per operation: Handle, Batch and the module level are
executors of the same ``Operations``; and the operations added with it
(delete_address, replace_route, delete_route, link_exists), judged with
``ip -j``."""
from __future__ import annotations

import errno
import inspect
import pickle

import pytest

import pynetlink as pn
from pynetlink import ops
from pynetlink.batch import Batch
from conftest import in_thread, sh

pytestmark = pytest.mark.unit

OPERATIONS = [name for name, f in vars(ops.Operations).items()
              if inspect.isfunction(f) and not name.startswith("_")]
READS = [name for name, f in vars(ops.Reads).items()
         if inspect.isfunction(f) and not name.startswith("_")]


# -- one definition, three executors ----------------------------------------------

@pytest.mark.parametrize("name", OPERATIONS)
def test_handle_batch_and_module_share_each_operation_signature(name):
    expected = inspect.signature(getattr(ops.Operations, name))
    for executor in (pn.Handle, Batch):
        assert inspect.signature(getattr(executor, name)) == expected
    module_level = inspect.signature(getattr(pn, name))
    assert list(module_level.parameters) == list(expected.parameters)[1:]


@pytest.mark.parametrize("name", OPERATIONS + READS)
def test_public_operations_spell_out_their_parameters_and_ip_equivalent(name):
    function = getattr(pn, name)
    kinds = {p.kind for p in inspect.signature(function).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds
    assert inspect.Parameter.VAR_POSITIONAL not in kinds
    assert "Equivalent to" in inspect.getdoc(function)
    assert name in pn.__all__


def test_a_batch_method_returns_the_batch_so_calls_chain(handle, veth):
    with handle.batch() as b:
        assert b.set_mtu("va", 1400).set_mtu("vb", 1300) is b
    assert len(b.results) == 2


def test_batch_delete_group_deletes_the_group_in_one_operation(ns, handle):
    for name in ("g1", "g2"):
        sh("ip", "-n", ns.name, "link", "add", name, "group", "77", "type", "veth", "peer",
           "name", name + "p")
    with handle.batch() as b:
        b.delete_group(77)
    assert [r.operation for r in b.results] == ["delete_group"]
    assert ns.link_names() == {"lo"}


@pytest.mark.parametrize("call", [lambda b: b.delete_group(77), lambda b: b.delete_link("va"),
                                  lambda b: b.delete_address("va", "192.0.2.1/24"),
                                  lambda b: b.delete_route("203.0.113.0/24", "va"),
                                  lambda b: b.replace_route("203.0.113.0/24", "va")])
def test_a_transaction_refuses_what_it_cannot_undo(handle, veth, call):
    with pytest.raises(ValueError, match="cannot be part of a transaction"):
        call(handle.batch("rollback"))


def test_module_level_add_route_acts_in_the_calling_threads_namespace(ns, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "up")
    in_thread(pn.add_route, "203.0.113.0/24", "va", netns_path=ns.path)
    [route] = ns.routes()
    assert (route["dst"], route["dev"], route["scope"]) == ("203.0.113.0/24", "va", "link")


# -- declared errors --------------------------------------------------------------

def test_a_failed_batch_raises_batch_error_with_every_result(handle, veth):
    with pytest.raises(pn.BatchError) as info:
        with handle.batch() as b:
            b.set_mtu("va", 1400)
            b.create_veth_pair("va", "vz")
    error = info.value
    assert isinstance(error, FileExistsError) and error.errno == errno.EEXIST
    assert [r.status for r in error.results] == ["ok", "failed"]
    assert error.results == b.results


def test_declared_errors_survive_pickling_with_their_fields(handle, veth):
    with pytest.raises(pn.BatchError) as info:
        with handle.batch() as b:
            b.create_veth_pair("va", "vz")
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is type(info.value) and isinstance(copy, FileExistsError)
    assert (copy.errno, copy.operation, copy.results) == (errno.EEXIST, "create_veth_pair",
                                                          info.value.results)
    exchange = pn.errors.error_for(errno.ETIMEDOUT, "get_link", ("lo",), "lo",
                                   cls=pn.ExchangeError, replies=[None], sent=1)
    copy = pickle.loads(pickle.dumps(exchange))
    assert isinstance(copy, pn.ExchangeError) and isinstance(copy, TimeoutError)
    assert (copy.replies, copy.sent) == ([None], 1)


# -- link_exists ----------------------------------------------------------------------

def test_link_exists_is_true_for_a_link_and_false_for_none(handle, veth):
    assert handle.link_exists("va") and not handle.link_exists("ghost0")


def test_link_exists_raises_what_is_not_a_missing_link():
    h = pn.Handle()
    h.close()
    with pytest.raises(OSError) as info:
        h.link_exists("lo")
    assert info.value.errno == errno.EBADF


# -- delete_address ------------------------------------------------------------------

def test_delete_address_removes_only_that_address(ns, handle, veth):
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.1/24", "dev", "va")
    sh("ip", "-n", ns.name, "addr", "add", "198.51.100.1/24", "dev", "va")
    handle.delete_address("va", "192.0.2.1/24")
    assert [a["local"] for a in ns.addresses("va")] == ["198.51.100.1"]


def test_delete_address_removes_an_ipv6_address(ns, handle, veth):
    sh("ip", "-n", ns.name, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad")
    handle.delete_address("va", "2001:db8::1/64")
    assert [a for a in ns.addresses("va") if a["scope"] == "global"] == []


def test_delete_address_that_is_not_there_raises_eaddrnotavail(handle, veth):
    with pytest.raises(OSError) as info:
        handle.delete_address("va", "192.0.2.1/24")
    assert info.value.errno == errno.EADDRNOTAVAIL and info.value.operation == "delete_address"


# -- replace_route and delete_route ------------------------------------------------------

@pytest.fixture
def up_va(ns, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "up")
    sh("ip", "-n", ns.name, "link", "set", "vb", "up")
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.1/24", "dev", "va")
    sh("ip", "-n", ns.name, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad")
    return "va"


def test_replace_route_adds_a_route_that_is_not_there(ns, handle, up_va):
    handle.replace_route("203.0.113.0/24", "va", "192.0.2.9")
    assert [(r["dst"], r.get("gateway")) for r in ns.routes() if r["dst"] == "203.0.113.0/24"] \
        == [("203.0.113.0/24", "192.0.2.9")]


def test_replace_route_puts_a_new_gateway_in_place(ns, handle, up_va):
    sh("ip", "-n", ns.name, "route", "add", "203.0.113.0/24", "via", "192.0.2.9")
    handle.replace_route("203.0.113.0/24", "va", "192.0.2.10")
    assert [r.get("gateway") for r in ns.routes() if r["dst"] == "203.0.113.0/24"] == ["192.0.2.10"]


def test_replace_route_replaces_an_ipv6_route(ns, handle, up_va):
    sh("ip", "-n", ns.name, "-6", "route", "add", "2001:db8:9::/48", "via", "2001:db8::9")
    handle.replace_route("2001:db8:9::/48", "va", "2001:db8::10")
    assert [r.get("gateway") for r in ns.routes("-6") if r["dst"] == "2001:db8:9::/48"] \
        == ["2001:db8::10"]


def test_delete_route_deletes_whatever_its_protocol(ns, handle, up_va):
    sh("ip", "-n", ns.name, "route", "add", "203.0.113.0/24", "dev", "va", "proto", "static")
    handle.delete_route("203.0.113.0/24", "va")
    assert [r for r in ns.routes() if r["dst"] == "203.0.113.0/24"] == []


def test_delete_route_with_a_gateway_deletes_the_default_route(ns, handle, up_va):
    sh("ip", "-n", ns.name, "-6", "route", "add", "default", "via", "2001:db8::9")
    handle.delete_route("::/0", "va", "2001:db8::9")
    assert [r for r in ns.routes("-6") if r["dst"] == "default"] == []


def test_delete_route_that_is_not_there_raises_esrch(handle, up_va):
    with pytest.raises(ProcessLookupError) as info:
        handle.delete_route("203.0.113.0/24", "va")
    assert info.value.operation == "delete_route"


def test_route_of_the_wrong_family_for_its_gateway_is_refused_before_sending():
    h = pn.Handle()
    h.close()                       # anything sent would fail with EBADF
    with pytest.raises(ValueError, match="family"):
        h.replace_route("203.0.113.0/24", "va", "2001:db8::1")


def test_a_listed_route_can_be_deleted_by_what_the_listing_says(ns, handle, up_va):
    sh("ip", "-n", ns.name, "route", "add", "default", "via", "192.0.2.9")
    sh("ip", "-n", ns.name, "-6", "route", "add", "default", "via", "2001:db8::9")
    for route in [r for r in handle.list_routes() if r.dst == "default"]:
        handle.delete_route(route.dst, route.dev, route.gateway)
    assert [r for r in ns.routes("-4") + ns.routes("-6") if r["dst"] == "default"] == []
