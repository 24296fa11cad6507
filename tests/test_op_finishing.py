"""An operation finished by a second message in the same send (a new veth
end's IPv6 link-local mode, which the kernel refuses in the creating
request): when that message fails, nothing half-made stays where the
caller asked for that, and the failure is reported as the op's."""
from __future__ import annotations

import errno

import pytest

import pynetlink as pn
from pynetlink import links, ops


@pytest.fixture
def unfinishable(monkeypatch):
    """create_veth_pair's finishing message names a link that does not
    exist, so the kernel refuses it (ENODEV) after the pair is made."""
    real = links.set_addr_gen_mode
    monkeypatch.setattr(ops.links, "set_addr_gen_mode", lambda name, mode: real("nosuch0", mode))


def names(ns) -> set:
    return {link["ifname"] for link in ns.ip("link", "show")}


def test_create_veth_pair_sets_the_first_ends_mode_in_the_same_call(ns, handle):
    handle.create_veth_pair("va", "vb", addr_gen_mode="none")
    modes = {link["ifname"]: link.get("inet6_addr_gen_mode")
             for link in ns.ip("-d", "link", "show")}
    assert (modes["va"], modes["vb"]) == ("none", "eui64")


def test_handle_deletes_the_pair_when_its_finishing_message_fails(ns, handle, unfinishable):
    with pytest.raises(pn.NetlinkError) as caught:
        handle.create_veth_pair("va", "vb", addr_gen_mode="none")
    assert caught.value.errno == errno.ENODEV
    assert caught.value.operation == "create_veth_pair"
    assert not {"va", "vb"} & names(ns)


def test_rollback_undoes_an_unfinished_creation_and_reports_it_failed(ns, handle, unfinishable):
    with pytest.raises(pn.BatchError) as caught:
        with handle.batch("rollback") as b:
            b.create_bridge("br0")
            b.create_veth_pair("va", "vb", addr_gen_mode="none")
    statuses = [(r.operation, r.status, r.errno) for r in caught.value.results]
    assert statuses == [("create_bridge", "rolled_back", 0),
                        ("create_veth_pair", "failed", errno.ENODEV)]
    assert not {"br0", "va", "vb"} & names(ns)


def test_continue_mode_reports_an_unfinished_creation_failed_and_leaves_it(ns, handle, unfinishable):
    results = handle.batch().create_veth_pair("va", "vb", addr_gen_mode="none").run()
    assert (results[0].status, results[0].errno) == ("failed", errno.ENODEV)
    assert "left as made" in results[0].detail
    assert {"va", "vb"} <= names(ns)


def test_set_link_sends_the_mode_before_the_flags(ns, handle, veth):
    """Brought up at once after creation, a veth end whose carrier comes up
    in the same request would get its link-local address before a mode
    applied after the flags: the mode goes first."""
    handle.interface_up("va")
    handle.set_link("vb", up=True, addr_gen_mode="none")
    assert [a for a in ns.addresses("vb") if a["family"] == "inet6"] == []
    assert handle.get_link("vb").addr_gen_mode == "none"


def test_the_commands_modes_are_the_librarys():
    from pynetlink._core import ADDR_GEN_MODES
    from pynetlink.cli.parser import ADDR_GEN_MODES as CLI_MODES
    assert list(CLI_MODES) == list(ADDR_GEN_MODES)


def test_command_sets_a_links_mode_and_shows_it(ns, veth):
    from conftest import sh
    sh("pynetlink", "link", "addrgenmode", "va", "none", "--netns", ns.path)
    assert ns.link("va")["inet6_addr_gen_mode"] == "none"
    shown = sh("pynetlink", "link", "show", "va", "--netns", ns.path, "--json").stdout
    import json
    assert json.loads(shown)[0]["inet6_addr_gen_mode"] == "none"


def test_command_adds_an_ipv6_address_without_dad(ns, veth):
    from conftest import sh
    sh("ip", "-n", ns.name, "link", "set", "va", "up")
    sh("pynetlink", "addr", "add", "va", "2001:db8::7/64", "--nodad", "--netns", ns.path)
    [addr] = [a for a in ns.addresses("va") if a["local"] == "2001:db8::7"]
    assert addr.get("nodad") is True and "tentative" not in addr


def test_a_taken_name_leaves_the_strangers_mode_alone(ns, handle, veth):
    """The finishing message goes only once the creation succeeded: sent
    with it, it would set the mode of the link that already has the name."""
    with pytest.raises(FileExistsError):
        handle.create_veth_pair("va", "vc", addr_gen_mode="none")
    assert ns.link("va")["inet6_addr_gen_mode"] == "eui64"


def test_a_batch_leaves_the_strangers_mode_alone(ns, handle, veth):
    results = handle.batch().create_veth_pair("va", "vc", addr_gen_mode="none").run()
    assert results[0].errno == errno.EEXIST
    assert ns.link("va")["inet6_addr_gen_mode"] == "eui64"


def test_bulk_leaves_the_mode_of_a_link_whose_name_it_drew_alone(ns, handle, monkeypatch):
    """A random host name that is taken is drawn again; the link that has it
    keeps its mode."""
    from conftest import Netns, sh
    from pynetlink import _names, bulk
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "link", "add", "vqtaken", "type", "veth", "peer", "name", "vqpeer")
    drawn = iter(["vqtaken"])
    real = _names.random_name
    monkeypatch.setattr(_names, "random_name", lambda prefix, n: next(drawn, None) or real(prefix, n))
    container = Netns()
    try:
        net = pn.Network(type="veth", bridge="br0", veth_prefix="vq", address="192.0.2.2/24")
        done = bulk.setup([bulk.Container(net, netns=container.path)], handle=handle)
        assert done.results[0].ok and done.results[0].state.veth_host != "vqtaken"
        assert ns.link("vqtaken")["inet6_addr_gen_mode"] == "eui64"
        assert ns.link(done.results[0].state.veth_host)["inet6_addr_gen_mode"] == "none"
        bulk.teardown(done, handle=handle)
    finally:
        container.remove()
