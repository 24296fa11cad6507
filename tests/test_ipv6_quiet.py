"""IPv6-quiet veths (issue 15), judged with ``ip -j`` on a real kernel.

A link whose IPv6 link-local generation mode is "none" when it first
comes up with carrier gets no IPv6 address, so it sends no DAD, router
solicitation or MLD report.  These tests check that ``addr_gen_mode``
reads and sets the mode as ``ip -d`` shows it, that the strategies,
``bulk`` and ``create_veth_pair`` leave host ends (and container ends
without IPv6 configuration) without any IPv6 address, that addresses
given with ``nodad`` are usable at once, that the opt-outs bring the
link-local address back, and that a container on the same bridge hears
nothing while a hundred others come up.

``ns`` plays the host; containers are scratch namespaces (by path).  An
absent address proves something only once the link's carrier event has
been handled: ``settled`` waits until ``ip`` reports the link's operstate
UP, which the kernel sets in the same step (under the same lock) as it
hands the carrier change to IPv6.
"""
from __future__ import annotations

import errno
import json
import time
from typing import List

import pytest

import pynetlink as pn
from pynetlink import _veth
from conftest import Netns, in_thread, sh
from test_cni import wait_until
from test_strategies import bridge  # noqa: F401  (fixture: br0, 192.0.2.1/24, 2001:db8::1/64)

pytestmark = pytest.mark.unit

MODES = ["eui64", "none", "stable_secret", "random"]
SECRET = "2001:db8::5ec:1"          # any IPv6 address serves as a link's stable_secret
CARRIER = 5.0       # seconds a carrier event (and the link-local address it brings) may take


# -- reading the kernel with iproute2 ----------------------------------------------------------

def ip_mode(n: Netns, name: str):
    """``ip -j -d link show``'s inet6_addr_gen_mode (None: no IPv6 on the link)."""
    return n.link(name).get("inet6_addr_gen_mode")


def inet6(n: Netns, name: str) -> List[dict]:
    """The IPv6 addresses ``ip -j addr show dev NAME`` lists."""
    return [a for a in n.addresses(name) if a["family"] == "inet6"]


def link_locals(n: Netns, name: str) -> List[str]:
    return [a["local"] for a in inet6(n, name) if a["local"].startswith("fe80:")]


def gets_link_local(n: Netns, name: str) -> bool:
    """Whether the link has an fe80:: address within CARRIER seconds."""
    return wait_until(lambda: link_locals(n, name) != [], CARRIER)


def settled(n: Netns, name: str) -> None:
    """Wait until the link's carrier event has been handled (operstate UP)."""
    assert wait_until(lambda: n.link(name)["operstate"] == "UP", CARRIER), n.link(name)


def assert_usable_at_once(n: Netns, name: str, address: str) -> None:
    """``address`` is on the link, neither tentative nor dadfailed."""
    [found] = [a for a in inet6(n, name) if a["local"] == address]
    assert not found.get("tentative") and not found.get("dadfailed"), found


def set_secret(n: Netns, name: str) -> None:
    n.run("sysctl", "-q", "-w", f"net.ipv6.conf.{name}.stable_secret={SECRET}")


@pytest.fixture
def closed():
    """A closed handle: anything that reaches the socket raises EBADF."""
    h = pn.Handle()
    h.close()
    return h


@pytest.fixture
def containers():
    """Scratch namespaces made on demand, all removed after the test."""
    made: List[Netns] = []

    def make(count: int) -> List[Netns]:
        new = [Netns() for _ in range(count)]
        made.extend(new)
        return new

    yield make
    for c in made:
        c.remove()


def network(i: int = 0, **changes) -> pn.Network:
    base = dict(type="veth", bridge="br0", veth_prefix="veth", address=f"192.0.2.{10 + i}/24",
                gateway="192.0.2.1", mtu=1450)
    base.update(changes)
    return pn.Network(**base)


def dual(i: int = 0, **changes) -> pn.Network:
    return network(i, ipv6_address=f"2001:db8::{0xa + i:x}/64", **changes)


# -- Link.addr_gen_mode ------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_link_addr_gen_mode_reads_what_ip_set(ns, handle, veth, mode):
    if mode == "stable_secret":
        set_secret(ns, "va")
    sh("ip", "-n", ns.name, "link", "set", "va", "addrgenmode", mode)
    assert handle.get_link("va").addr_gen_mode == ip_mode(ns, "va") == mode


def test_link_addr_gen_mode_is_none_for_a_link_without_ipv6(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "mtu", "1000")    # < 1280: IPv6 leaves the link
    assert ip_mode(ns, "va") is None
    assert handle.get_link("va").addr_gen_mode is None


def test_list_links_reports_each_links_mode(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "vb", "addrgenmode", "random")
    modes = {link.name: link.addr_gen_mode for link in handle.list_links()}
    assert modes == {name: ip_mode(ns, name) for name in ("lo", "va", "vb")}


# -- set_link(addr_gen_mode=...) ---------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_set_link_sets_the_mode(ns, handle, veth, mode):
    if mode == "stable_secret":
        set_secret(ns, "va")
    sh("ip", "-n", ns.name, "link", "set", "va", "addrgenmode", "none" if mode == "eui64" else "eui64")
    handle.set_link("va", addr_gen_mode=mode)
    assert ip_mode(ns, "va") == mode


def test_set_link_in_a_batch_sets_the_mode(ns, handle, veth):
    with handle.batch() as b:
        b.set_link("va", addr_gen_mode="random")
        b.set_link("vb", addr_gen_mode="none", up=True)
    assert (ip_mode(ns, "va"), ip_mode(ns, "vb")) == ("random", "none")
    assert "UP" in ns.link("vb")["flags"]


def test_module_level_set_link_sets_the_mode(ns, veth):
    in_thread(lambda: pn.set_link("va", addr_gen_mode="none"), netns_path=ns.path)
    assert ip_mode(ns, "va") == "none"


def test_set_link_stable_secret_without_a_secret_is_the_kernels_einval(ns, handle, veth):
    with pytest.raises(OSError) as info:
        handle.set_link("va", addr_gen_mode="stable_secret")
    assert info.value.errno == errno.EINVAL
    assert ip_mode(ns, "va") == "eui64"


def test_set_link_on_a_link_without_ipv6_is_eafnosupport(ns, handle, veth):
    sh("ip", "-n", ns.name, "link", "set", "va", "mtu", "1000")
    with pytest.raises(OSError) as info:
        handle.set_link("va", addr_gen_mode="none")
    assert info.value.errno == errno.EAFNOSUPPORT


@pytest.mark.parametrize("bad,exc", [("off", ValueError), ("", ValueError), ("EUI64", ValueError),
                                     ("stable_privacy", ValueError), (1, TypeError),
                                     (b"none", TypeError), (True, TypeError)],
                         ids=repr)
@pytest.mark.parametrize("call", [
    lambda h, mode: h.set_link("va", addr_gen_mode=mode),
    lambda h, mode: h.set_link("va", up=True, addr_gen_mode=mode),
    lambda h, mode: h.create_veth_pair("qa0", "qb0", addr_gen_mode=mode),
], ids=["set_link", "set_link up", "create_veth_pair"])
def test_a_bad_mode_is_refused_before_anything_is_sent(closed, call, bad, exc):
    with pytest.raises(exc, match="addr_gen_mode"):
        call(closed, bad)


def test_a_bad_mode_changes_nothing_on_a_live_link(ns, handle, veth):
    with pytest.raises(ValueError):
        handle.set_link("va", up=True, mtu=1400, addr_gen_mode="quiet")
    link = ns.link("va")
    assert (link["inet6_addr_gen_mode"], link["mtu"], "UP" in link["flags"]) == ("eui64", 1500, False)


# -- coming up quiet ---------------------------------------------------------------------------

ROUNDS = 20


def test_a_fresh_veth_brought_up_quiet_never_gets_an_ipv6_address(ns, handle):
    """Each pair's peer is up first, so the end comes up with carrier at
    once: the mode must be in force before the flags are."""
    for i in range(ROUNDS):
        handle.create_veth_pair(f"qa{i}", f"qb{i}")
        handle.set_link(f"qb{i}", up=True)
        handle.set_link(f"qa{i}", up=True, addr_gen_mode="none")
        assert inet6(ns, f"qa{i}") == [], i
    for i in range(ROUNDS):
        settled(ns, f"qa{i}")
    assert {i: inet6(ns, f"qa{i}") for i in range(ROUNDS)} == {i: [] for i in range(ROUNDS)}


def test_the_peer_of_a_quiet_end_still_gets_its_link_local(ns, handle):
    """The control: carrier came, and IPv6 is live in the namespace."""
    handle.create_veth_pair("qa0", "qb0")
    handle.set_link("qb0", up=True)
    handle.set_link("qa0", up=True, addr_gen_mode="none")
    assert gets_link_local(ns, "qb0")


def test_create_veth_pair_quiet_host_end_has_no_ipv6_address_once_the_peer_is_up(ns, ns2, handle,
                                                                                   bridge):
    handle.create_veth_pair("qh0", "qc0", peer_netns=ns2.path, master="br0", up=True,
                            addr_gen_mode="none")
    sh("ip", "-n", ns2.name, "link", "set", "qc0", "up")
    settled(ns, "qh0")
    assert ip_mode(ns, "qh0") == "none" and inet6(ns, "qh0") == []


def test_create_veth_pair_without_a_mode_gets_a_link_local(ns, ns2, handle, bridge):
    """The control: the same pair without the mode has an fe80:: address."""
    handle.create_veth_pair("qh0", "qc0", peer_netns=ns2.path, master="br0", up=True)
    sh("ip", "-n", ns2.name, "link", "set", "qc0", "up")
    assert gets_link_local(ns, "qh0")


def test_a_batch_of_quiet_veth_pairs_has_no_ipv6_address_on_any_host_end(ns, ns2, handle, bridge):
    count = 8
    with handle.batch() as b:
        for i in range(count):
            b.create_veth_pair(f"qh{i}", f"qc{i}", peer_netns=ns2.path, master="br0", up=True,
                               addr_gen_mode="none")
    for i in range(count):
        sh("ip", "-n", ns2.name, "link", "set", f"qc{i}", "up")
    for i in range(count):
        settled(ns, f"qh{i}")
    assert {i: (ip_mode(ns, f"qh{i}"), inet6(ns, f"qh{i}")) for i in range(count)} \
        == {i: ("none", []) for i in range(count)}


def test_create_veth_pair_whose_mode_the_kernel_refuses_leaves_no_link(ns, handle):
    """stable_secret without a secret: EINVAL for the message after the
    creation, and the link it made is deleted."""
    with pytest.raises(OSError) as info:
        handle.create_veth_pair("qa0", "qb0", addr_gen_mode="stable_secret")
    assert info.value.errno == errno.EINVAL
    assert ns.link_names() == {"lo"}


def test_a_transaction_whose_veth_mode_the_kernel_refuses_leaves_no_link(ns, handle):
    b = handle.batch("rollback")
    b.create_veth_pair("qa0", "qb0", addr_gen_mode="none")
    b.create_veth_pair("qa1", "qb1", addr_gen_mode="stable_secret")
    results = b.run()
    assert [r.status for r in results] == ["rolled_back", "failed"]
    assert results[1].errno == errno.EINVAL
    assert ns.link_names() == {"lo"}


# -- transactions ------------------------------------------------------------------------------

@pytest.mark.parametrize("up", [None, True], ids=["mode", "mode and up"])
def test_rollback_restores_the_old_mode(ns, handle, veth, up):
    sh("ip", "-n", ns.name, "link", "set", "va", "addrgenmode", "random")
    b = handle.batch("rollback")
    b.set_link("va", addr_gen_mode="none", up=up)
    b.set_link("pnnosuch0", up=True)                    # ENODEV: the transaction fails
    results = b.run()
    assert [r.status for r in results] == ["rolled_back", "failed"]
    link = ns.link("va")
    assert (link["inet6_addr_gen_mode"], "UP" in link["flags"]) == ("random", False)


# -- set_interface_ip(nodad=True) --------------------------------------------------------------

@pytest.fixture
def carrier(ns, veth):
    """va and vb up with carrier: duplicate address detection runs on va."""
    sh("ip", "-n", ns.name, "link", "set", "vb", "up")
    sh("ip", "-n", ns.name, "link", "set", "va", "up")
    settled(ns, "va")
    return "va"


def test_set_interface_ip_nodad_is_usable_at_once(ns, handle, carrier):
    handle.set_interface_ip("va", "2001:db8::5/64", nodad=True)
    assert_usable_at_once(ns, "va", "2001:db8::5")
    [found] = [a for a in inet6(ns, "va") if a["local"] == "2001:db8::5"]
    assert found.get("nodad") is True


def test_set_interface_ip_without_nodad_is_tentative_at_first(ns, handle, carrier):
    """The control: on this link DAD runs, and ``ip`` shows it."""
    handle.set_interface_ip("va", "2001:db8::5/64")
    [found] = [a for a in inet6(ns, "va") if a["local"] == "2001:db8::5"]
    assert found.get("tentative") is True


def test_set_interface_ip_nodad_in_a_batch(ns, handle, carrier):
    with handle.batch() as b:
        b.set_interface_ip("va", "2001:db8::5/64", nodad=True)
    assert_usable_at_once(ns, "va", "2001:db8::5")


@pytest.mark.parametrize("cidr", ["192.0.2.5/24", "198.51.100.1/32"])
def test_set_interface_ip_nodad_on_ipv4_is_a_value_error_before_anything_is_sent(closed, cidr):
    with pytest.raises(ValueError, match="nodad"):
        closed.set_interface_ip("va", cidr, nodad=True)


@pytest.mark.parametrize("bad", [1, "yes", None], ids=repr)
def test_set_interface_ip_nodad_must_be_a_bool(closed, bad):
    with pytest.raises(TypeError, match="nodad"):
        closed.set_interface_ip("va", "2001:db8::5/64", nodad=bad)


# -- strategies --------------------------------------------------------------------------------

def veth_setup(host: Netns, c: Netns, net: pn.Network, fast: bool) -> pn.NetworkState:
    """``Veth(fast).create`` on the host, then ``initialize`` from outside."""
    state = pn.NetworkState()
    in_thread(lambda: pn.Veth(fast=fast).create(net, None, state, netns=c.path),
              netns_path=host.path)
    pn.Veth(fast=fast).initialize(net, state, netns=c.path)
    return state


def bulk_setup(host: Netns, cs: List[Netns], nets: List[pn.Network]) -> List[pn.NetworkState]:
    with pn.Handle(netns=host.path) as h:
        done = pn.bulk.setup([pn.bulk.Container(n, netns=c.path) for n, c in zip(nets, cs)],
                             handle=h)
    assert all(r.ok for r in done.results), [r.error for r in done.results]
    return [r.state for r in done.results]


PATHS = {
    "in-place": lambda host, cs, nets: [veth_setup(host, c, n, True) for c, n in zip(cs, nets)],
    "create-then-move": lambda host, cs, nets: [veth_setup(host, c, n, False)
                                                for c, n in zip(cs, nets)],
    "bulk": bulk_setup,
}


@pytest.fixture(params=list(PATHS))
def path(request):
    """Each way to set containers up: the strategies (fast and not) and bulk."""
    return PATHS[request.param]


def test_setup_host_end_has_no_ipv6_address(ns, bridge, containers, path):
    [c] = containers(1)
    [state] = path(ns, [c], [network()])
    settled(ns, state.veth_host)
    assert inet6(ns, state.veth_host) == []


def test_setup_container_without_ipv6_config_has_no_ipv6_address(ns, bridge, containers, path):
    [c] = containers(1)
    path(ns, [c], [network()])
    settled(c, "eth0")
    assert inet6(c, "eth0") == []


def test_setup_container_with_ipv6_address_has_it_usable_at_once(ns, bridge, containers, path):
    [c] = containers(1)
    path(ns, [c], [dual()])
    assert_usable_at_once(c, "eth0", "2001:db8::a")


def test_setup_container_with_ipv6_address_keeps_the_kernels_link_local(ns, bridge, containers,
                                                                         path):
    [c] = containers(1)
    path(ns, [c], [dual()])
    assert gets_link_local(c, "eth0")


def test_setup_two_dual_stack_containers_ping6_each_other_at_the_first_try(ns, bridge, containers,
                                                                           path):
    a, b = containers(2)
    path(ns, [a, b], [dual(0), dual(1)])
    out = a.run("ping", "-6", "-n", "-c1", "-W2", "2001:db8::b", check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_setup_dual_stack_container_ping6s_the_bridge_at_the_first_try(ns, bridge, containers,
                                                                       path):
    [c] = containers(1)
    path(ns, [c], [dual()])
    out = c.run("ping", "-6", "-n", "-c1", "-W2", "2001:db8::1", check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_setup_ipv6_link_local_opt_out_gives_the_container_end_a_link_local(ns, bridge, containers,
                                                                            path):
    [c] = containers(1)
    path(ns, [c], [network(ipv6_link_local=True)])
    assert gets_link_local(c, "eth0")


def test_setup_host_ipv6_link_local_opt_out_gives_the_host_end_a_link_local(ns, bridge, containers,
                                                                            path):
    [c] = containers(1)
    [state] = path(ns, [c], [network(host_ipv6_link_local=True)])
    assert gets_link_local(ns, state.veth_host)


def test_setup_host_opt_out_leaves_the_container_end_quiet(ns, bridge, containers, path):
    [c] = containers(1)
    [state] = path(ns, [c], [network(host_ipv6_link_local=True)])
    assert gets_link_local(ns, state.veth_host)
    assert inet6(c, "eth0") == []


# -- a silent container while many others come up ----------------------------------------------

@pytest.fixture
def quiet_bridge(ns):
    """br0 silent itself: IPv6 link-local generation off before it first
    comes up (else it sends its own router solicitations and MLD reports),
    and multicast snooping off (else it joins the all-snoopers groups,
    ff02::6a and 224.0.0.106, and reports them, twice, into every port)."""
    for cmd in (["link", "add", "br0", "type", "bridge", "mcast_snooping", "0"],
                ["link", "set", "br0", "addrgenmode", "none"],
                ["addr", "add", "192.0.2.1/24", "dev", "br0"],
                ["link", "set", "br0", "up"]):
        sh("ip", "-n", ns.name, *cmd)
    return "br0"


def packets(c: Netns) -> tuple:
    """eth0's (rx packets, tx packets), from ``ip -j -s link``."""
    [link] = c.ip("-s", "link", "show", "dev", "eth0")
    stats = link["stats64"]
    return stats["rx"]["packets"], stats["tx"]["packets"]


OTHERS = 100
LISTEN = 1.5        # seconds the silent container listens once the others are up
HEARD_WITHIN = 5.0  # seconds the control waits for the storm to reach it


def host_ends_up(host: Netns) -> bool:
    """Every bridge port's carrier event handled (one ``ip -j link`` call)."""
    return all(link["operstate"] == "UP" for link in host.ip("link", "show")
               if link["ifname"] not in ("lo", "br0"))


def silent_and_others(host: Netns, containers, **others) -> Netns:
    """One quiet IPv4 container set up, then (once its counters are read:
    returned with it) OTHERS more on the same bridge (``others``: their
    Network fields), up with carrier."""
    [silent] = containers(1)
    bulk_setup(host, [silent], [network()])
    settled(silent, "eth0")
    before = packets(silent)
    bulk_setup(host, containers(OTHERS), [network(1 + i, **others) for i in range(OTHERS)])
    assert wait_until(lambda: host_ends_up(host), CARRIER)
    return silent, before


def test_a_silent_container_hears_nothing_while_100_others_come_up(ns, quiet_bridge, containers):
    silent, before = silent_and_others(ns, containers)
    time.sleep(LISTEN)
    assert packets(silent) == before


def test_with_the_opt_outs_the_silent_container_hears_the_others(ns, quiet_bridge, containers):
    """The control: the storm the quiet default prevents is visible."""
    silent, before = silent_and_others(ns, containers, ipv6_link_local=True,
                                       host_ipv6_link_local=True)
    assert wait_until(lambda: packets(silent)[0] > before[0], HEARD_WITHIN)


# -- without IPv6 in the kernel; JSON --------------------------------------------------------

def test_quiet_modes_are_none_on_a_kernel_without_ipv6(monkeypatch):
    monkeypatch.setattr(_veth, "kernel_has_ipv6", lambda: False)
    assert _veth.quiet_modes(network()) == (None, None)
    assert _veth.quiet_modes(dual()) == (None, None)


@pytest.mark.parametrize("changes,modes", [
    ({}, ("none", "none")),
    ({"ipv6_address": "2001:db8::a/64"}, ("none", None)),
    ({"ipv6_link_local": True}, ("none", None)),
    ({"host_ipv6_link_local": True}, (None, "none")),
    ({"ipv6_link_local": True, "host_ipv6_link_local": True}, (None, None)),
], ids=["default", "ipv6_address", "ipv6_link_local", "host_ipv6_link_local", "both opt-outs"])
def test_quiet_modes_follow_the_network(monkeypatch, changes, modes):
    monkeypatch.setattr(_veth, "kernel_has_ipv6", lambda: True)
    assert _veth.quiet_modes(network(**changes)) == modes


@pytest.mark.parametrize("key", ["ipv6_link_local", "host_ipv6_link_local"])
def test_network_json_round_trips_the_link_local_keys(key):
    net = network(**{key: True})
    text = net.to_json()
    assert json.loads(text)[key] is True
    assert pn.Network.from_json(text) == net


def test_network_json_omits_the_link_local_keys_when_false():
    keys = set(json.loads(network().to_json()))
    assert not keys & {"ipv6_link_local", "host_ipv6_link_local"}


@pytest.mark.parametrize("key", ["ipv6_link_local", "host_ipv6_link_local"])
def test_network_json_refuses_a_link_local_key_that_is_not_a_bool(key):
    with pytest.raises(ValueError, match=key):
        pn.Network.from_json(json.dumps({key: "yes"}))
