"""pynetlink.bulk: many containers at once, checked with ``ip -j``.

``ns`` is the host (bridge br0, 192.0.2.1/24 and 2001:db8::1/64); the
containers are scratch namespaces from ``ip netns add`` (by path), an open
fd, or a process (by pid).
"""
from __future__ import annotations

import errno
import os

import pytest

import pynetlink as pn
from pynetlink import _names
from conftest import Netns, in_thread, settled_fds, sh
from test_strategies import bridge  # noqa: F401  (fixture)


def net(i: int = 0, **changes) -> pn.Network:
    base = dict(type="veth", bridge="br0", veth_prefix="veth", address=f"192.0.2.{10 + i}/24",
                gateway="192.0.2.1", mtu=1450)
    base.update(changes)
    return pn.Network(**base)


@pytest.fixture
def containers():
    made = []
    yield lambda n: made.extend(Netns() for _ in range(n)) or made[-n:]
    for c in made:
        c.remove()


def run_setup(host, entries, **kwargs) -> pn.bulk.Setup:
    return in_thread(lambda: pn.bulk.setup(entries, **kwargs), netns_path=host.path)


def host_ends(host) -> set:
    return {l["ifname"] for l in host.ip("link", "show") if l["ifname"] not in ("lo", "br0")}


def assert_container_ready(host, c, state, address, mtu=1450):
    h = host.link(state.veth_host)
    assert h["master"] == "br0" and h["mtu"] == mtu and "UP" in h["flags"]
    eth0 = c.link("eth0")
    assert eth0["mtu"] == mtu and {"UP", "MULTICAST"} <= set(eth0["flags"])
    assert "UP" in c.link("lo")["flags"]
    assert (address, 24) in {(a["local"], a["prefixlen"]) for a in c.addresses("eth0")}
    assert [r["gateway"] for r in c.routes("-4") if r["dst"] == "default"] == ["192.0.2.1"]


def test_setup_gives_every_container_what_the_strategies_would(ns, bridge, containers):
    cs = containers(5)
    done = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    assert all(r.ok for r in done.results)
    for i, (c, r) in enumerate(zip(cs, done.results)):
        assert_container_ready(ns, c, r.state, f"192.0.2.{10 + i}")
        assert r.state.veth_child == "eth0" and r.state.ns_path == c.path


def test_setup_tags_host_ends_with_one_group(ns, bridge, containers):
    cs = containers(3)
    done = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    groups = {ns.link(r.state.veth_host)["group"] for r in done.results}
    assert groups == {str(done.group)}


def test_setup_with_every_option(ns, bridge, containers):
    [c] = containers(1)
    full = net(0, mac_address="02:42:c0:00:02:0a", txqueuelen=600, hairpin_mode=True,
               ipv6_address="2001:db8::a/64", ipv6_gateway="2001:db8::1")
    [r] = run_setup(ns, [pn.bulk.Container(full, netns=c.path)]).results
    assert r.ok, r.error
    host, eth0 = ns.link(r.state.veth_host), c.link("eth0")
    assert host["txqlen"] == 600 and host["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert (eth0["address"], eth0["txqlen"]) == ("02:42:c0:00:02:0a", 600)
    assert ("2001:db8::a", 64) in {(a["local"], a["prefixlen"]) for a in c.addresses("eth0")}
    assert [r["gateway"] for r in c.routes("-6") if r["dst"] == "default"] == ["2001:db8::1"]


def test_setup_by_fd_and_by_pid(ns, ns2, bridge, sleeper, containers):
    [c] = containers(1)
    fd = os.open(c.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        done = run_setup(ns, [pn.bulk.Container(net(0), netns=fd), pn.bulk.Container(net(1), pid=sleeper)])
    finally:
        os.close(fd)
    assert [r.ok for r in done.results] == [True, True]
    assert_container_ready(ns, c, done.results[0].state, "192.0.2.10")
    assert_container_ready(ns, ns2, done.results[1].state, "192.0.2.11")


def test_a_failing_container_leaves_nothing_and_the_others_succeed(ns, bridge, containers):
    cs = containers(4)
    sh("ip", "-n", cs[2].name, "link", "add", "eth0", "type", "bridge")    # eth0 taken there
    entries = [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)]
    entries[1] = pn.bulk.Container(net(1, bridge="nobr0"), netns=cs[1].path)  # no such bridge
    entries[3] = pn.bulk.Container(net(3, gateway="203.0.113.1"), netns=cs[3].path)  # unreachable gateway
    done = run_setup(ns, entries)
    assert [r.ok for r in done.results] == [True, False, False, False]
    assert done.results[1].error.errno == errno.ENODEV and "nobr0" in str(done.results[1].error)
    assert done.results[2].error.errno == errno.EEXIST
    assert done.results[3].error.errno == errno.ENETUNREACH
    assert host_ends(ns) == {done.results[0].state.veth_host}
    assert cs[1].link_names() == {"lo"} and cs[3].link_names() == {"lo"}
    assert cs[2].link("eth0")["linkinfo"]["info_kind"] == "bridge"


def test_a_missing_namespace_is_that_containers_error(ns, bridge, containers):
    [c] = containers(1)
    done = run_setup(ns, [pn.bulk.Container(net(0), netns="/run/netns/pntest-nope"),
                          pn.bulk.Container(net(1), netns=c.path)])
    assert isinstance(done.results[0].error, FileNotFoundError)
    assert done.results[1].ok


@pytest.mark.parametrize("bad,exc", [
    (dict(bridge=""), ValueError), (dict(address="192.0.2.300/24"), ValueError),
    (dict(mtu=-5), ValueError), (dict(mac_address="zz"), ValueError),
    (dict(veth_prefix="p" * 12), ValueError), (dict(gateway="x"), ValueError),
])
def test_bad_input_in_any_container_sends_nothing(ns, bridge, containers, bad, exc):
    cs = containers(2)
    with pytest.raises(exc, match="container 1"):
        run_setup(ns, [pn.bulk.Container(net(0), netns=cs[0].path),
                       pn.bulk.Container(net(1, **bad), netns=cs[1].path)])
    assert host_ends(ns) == set() and cs[0].link_names() == {"lo"}


def test_container_needs_exactly_one_of_netns_and_pid(ns, bridge):
    with pytest.raises(ValueError):
        pn.bulk.setup([pn.bulk.Container(net(0))])
    with pytest.raises(ValueError):
        pn.bulk.setup([pn.bulk.Container(net(0), netns="/run/netns/x", pid=1)])


def test_teardown_removes_every_host_end_and_container_end(ns, bridge, containers):
    cs = containers(5)
    done = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    in_thread(lambda: pn.bulk.teardown(done), netns_path=ns.path)
    assert host_ends(ns) == set()
    assert all(c.link_names() == {"lo"} for c in cs)
    assert "br0" in ns.link_names()


def test_teardown_is_idempotent(ns, bridge, containers):
    cs = containers(2)
    done = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    in_thread(lambda: pn.bulk.teardown(done), netns_path=ns.path)
    in_thread(lambda: pn.bulk.teardown(done), netns_path=ns.path)
    assert host_ends(ns) == set()


def test_teardown_leaves_links_of_other_groups(ns, bridge, containers):
    cs = containers(4)
    first = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs[:2])])
    second = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs[2:])])
    assert first.group != second.group
    in_thread(lambda: pn.bulk.teardown(first), netns_path=ns.path)
    assert host_ends(ns) == {r.state.veth_host for r in second.results}


class Recorder:
    """Wraps a Handle's socket: ``sent`` holds the operations of each
    exchange and dump, in order; a ``delete_group`` request is answered
    with ``refuse_group`` (an errno, without sending it) when that is set."""

    def __init__(self, handle, refuse_group: int = 0):
        sock = handle.socket
        self.sent: list = []
        self._exchange, self._dump, self.refuse_group = sock.exchange, sock.dump, refuse_group
        sock.exchange, sock.dump = self.exchange, self.dump

    def exchange(self, requests, into=None):
        self.sent.append([r.operation for r in requests])
        if self.refuse_group and [r.operation for r in requests] == ["delete_group"]:
            return [pn._core.Reply(self.refuse_group, "", None)]
        return self._exchange(requests, into)

    def dump(self, request):
        self.sent.append([request.operation])
        return self._dump(request)


def host_setup(host, cs, first=0, **kwargs) -> pn.bulk.Setup:
    done = pn.bulk.setup([pn.bulk.Container(net(first + i), netns=c.path)
                          for i, c in enumerate(cs)], handle=host, **kwargs)
    assert all(r.ok for r in done.results), [r.error for r in done.results]
    return done


def test_teardown_is_one_request_for_the_whole_setup(ns, bridge, containers):
    cs = containers(3)
    with pn.Handle(netns=ns.path) as host:
        done = host_setup(host, cs)
        sent = Recorder(host).sent
        pn.bulk.teardown(done, handle=host)
    assert sent == [["delete_group"]]
    assert host_ends(ns) == set() and all(c.link_names() == {"lo"} for c in cs)


@pytest.mark.parametrize("refusal", [errno.EOPNOTSUPP, errno.EINVAL])
def test_teardown_falls_back_to_this_setups_host_ends_when_group_delete_is_refused(
        ns, bridge, containers, refusal):
    """Two setups share a group; the kernel refuses group deletion: tearing
    down the first deletes its host ends only, in one pipelined exchange."""
    cs = containers(4)
    with pn.Handle(netns=ns.path) as host:
        first = host_setup(host, cs[:2], group=4242)
        second = host_setup(host, cs[2:], first=2, group=4242)
        sent = Recorder(host, refuse_group=refusal).sent
        pn.bulk.teardown(first, handle=host)
    assert sent == [["delete_group"], ["delete_link", "delete_link"]]
    assert host_ends(ns) == {s.veth_host for s in second.states}
    assert [c.link_names() for c in cs] == [{"lo"}, {"lo"}, {"lo", "eth0"}, {"lo", "eth0"}]


def test_teardown_by_group_number_raises_the_kernels_refusal(ns, bridge, containers):
    """Given only a group number there is nothing to fall back to."""
    cs = containers(1)
    with pn.Handle(netns=ns.path) as host:
        done = host_setup(host, cs)
        Recorder(host, refuse_group=errno.EOPNOTSUPP)
        with pytest.raises(OSError) as info:
            pn.bulk.teardown(done.group, handle=host)
    assert info.value.errno == errno.EOPNOTSUPP
    assert host_ends(ns) == {done.states[0].veth_host}


def test_remove_deletes_chosen_host_ends_one_by_one(ns, bridge, containers):
    cs = containers(3)
    done = run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    states = done.states
    errors = in_thread(lambda: pn.bulk.remove([states[0], pn.NetworkState(), states[2]]),
                       netns_path=ns.path)
    assert errors == [None, None, None]
    assert host_ends(ns) == {states[1].veth_host}


def test_delete_group_refuses_the_default_group(handle):
    with pytest.raises(ValueError):
        handle.delete_group(0)


def test_setup_closes_every_namespace_fd_and_socket(ns, bridge, containers):
    cs = containers(10)
    entries = [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)]

    def measured():
        pn.link_index("lo")                  # the thread's default handle, made first
        before = settled_fds()
        done = pn.bulk.setup(entries)
        pn.bulk.teardown(done)
        return settled_fds() - before

    assert in_thread(measured, netns_path=ns.path) == 0


def test_setup_of_200_containers(ns, bridge):
    fds = [pn.netns.create() for _ in range(200)]
    try:
        done = run_setup(ns, [pn.bulk.Container(net(i % 200), netns=fd) for i, fd in enumerate(fds)])
        assert all(r.ok for r in done.results)
        assert len(host_ends(ns)) == 200
        in_thread(lambda: pn.bulk.teardown(done), netns_path=ns.path)
        assert host_ends(ns) == set()
    finally:
        for fd in fds:
            os.close(fd)


def test_setup_of_many_containers_with_failures_on_both_sides(ns, bridge, containers):
    """More than one host-side chunk, so the container sides are configured
    on the helper thread while later pairs are still being made."""
    cs = containers(40)
    for i in (5, 33):
        sh("ip", "-n", cs[i].name, "link", "add", "eth0", "type", "bridge")    # host side fails
    entries = [pn.bulk.Container(net(i, gateway="203.0.113.1" if i in (17, 38) else "192.0.2.1"),
                                 netns=c.path) for i, c in enumerate(cs)]     # container side fails
    done = run_setup(ns, entries)
    bad = {5: errno.EEXIST, 33: errno.EEXIST, 17: errno.ENETUNREACH, 38: errno.ENETUNREACH}
    assert {i: r.error.errno for i, r in enumerate(done.results) if not r.ok} == bad
    assert host_ends(ns) == {r.state.veth_host for r in done.results if r.ok}
    for i, (c, r) in enumerate(zip(cs, done.results)):
        if r.ok:
            assert_container_ready(ns, c, r.state, f"192.0.2.{10 + i}")
        elif i in (17, 38):
            assert c.link_names() == {"lo"}


def test_a_bug_on_the_helper_thread_is_raised_and_leaves_nothing(ns, bridge, containers, monkeypatch):
    cs = containers(40)
    real = pn.bulk._configure_container

    def broken(p, *args):
        if p.network.address.startswith("192.0.2.30/"):
            raise RuntimeError("bug")
        real(p, *args)

    monkeypatch.setattr(pn.bulk, "_configure_container", broken)
    with pytest.raises(RuntimeError, match="bug"):
        run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    assert host_ends(ns) == set()
    assert all(c.link_names() == {"lo"} for c in cs)


def test_threaded_setup_closes_every_namespace_fd_and_socket(ns, bridge, containers):
    cs = containers(40)
    entries = [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)]

    def measured():
        pn.link_index("lo")
        before = settled_fds()
        pn.bulk.teardown(pn.bulk.setup(entries))
        return settled_fds() - before

    assert in_thread(measured, netns_path=ns.path) == 0


def test_a_failed_setup_never_deletes_a_link_whose_name_it_only_tried(ns, bridge, containers,
                                                                     monkeypatch):
    """A host name found taken (EEXIST) is somebody else's link: when the
    setup then fails, its clean-up must leave that link alone."""
    sh("ip", "-n", ns.name, "link", "add", "vethtaken", "type", "bridge")
    cs = containers(2)
    real_name = _names.random_name
    names = iter(["vethtaken"])
    monkeypatch.setattr(_names, "random_name", lambda *a: next(names, None) or real_name(*a))
    real_exists = pn.Handle.link_exists

    def taken_then_broken(host, name):
        assert real_exists(host, name)
        raise RuntimeError("bug after a name clash")
    monkeypatch.setattr(pn.Handle, "link_exists", taken_then_broken)
    with pytest.raises(RuntimeError, match="name clash"):
        run_setup(ns, [pn.bulk.Container(net(i), netns=c.path) for i, c in enumerate(cs)])
    assert "vethtaken" in ns.link_names()
    assert host_ends(ns) == {"vethtaken"} and all(c.link_names() == {"lo"} for c in cs)
