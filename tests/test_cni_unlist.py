"""A link deletion answered once the kernel has unlisted the links
(``pynetlink.cni.unlist``), on the real kernel in scratch namespaces, judged
with ``ip -j``; then the daemon's DELs, which use it.  No timing is
asserted: only the state once an answer has come, and that every deletion
still running in the background is joined (``unlist.finish``)."""
from __future__ import annotations

import errno
import os
import select
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import test_cni
import test_cni_daemon
from conftest import sh
from pynetlink import Handle
from pynetlink._core import AF_UNSPEC, RTM_DELLINK, RTM_NEWLINK, Monitor
from pynetlink.cni import bridge_del, unlist
from pynetlink.errors import NetlinkError, error_for
from test_cni import PLUGIN, Outcome, allocations, bridge_conf, host_veths
from test_cni_daemon import _try, served, shim_dir, slow_bin, sockdir, start_daemon  # noqa: F401

host, container, make_ns, plugin_dir = test_cni.host, test_cni.container, test_cni.make_ns, test_cni.plugin_dir
daemon = test_cni_daemon.daemon
JOIN = 30.0                     # seconds the background deletions get to finish after a test
PODS = 10


@pytest.fixture
def joined():
    """Every deletion still running in the background is over after the test."""
    yield
    assert unlist.finish(time.monotonic() + JOIN), "deletions still running"


@pytest.fixture
def early(monkeypatch, joined):
    """Daemon mode: the CNI deletions answer once unlisted."""
    monkeypatch.setattr(unlist, "EARLY", True)


@pytest.fixture
def target(ns, veth):
    """(fd of ``ns``, a Handle on it, the ifindex of va) for a veth va <-> vb in ``ns``."""
    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Handle(netns=fd) as h:
            yield fd, h, h.get_link("va").index
    finally:
        os.close(fd)


def events_until_deleted(monitor: Monitor, index: int, seconds: float = 10.0) -> list:
    """The link events read until an RTM_DELLINK of ``index`` (at most ``seconds``)."""
    events: list = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        select.select([monitor], [], [], max(0.0, deadline - time.monotonic()))
        events += monitor.link_events()
        if any(e.type == RTM_DELLINK and e.index == index for e in events):
            break
    return events


def test_a_monitor_reads_the_kernels_notifications_of_a_link_made_and_deleted(ns):
    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Monitor(fd) as monitor:
            sh("ip", "-n", ns.name, "link", "add", "pnd0", "type", "veth", "peer", "name", "pnd1")
            index = ns.link("pnd0")["ifindex"]
            sh("ip", "-n", ns.name, "link", "del", "pnd0")
            events = [(e.type, e.family) for e in events_until_deleted(monitor, index) if e.index == index]
    finally:
        os.close(fd)
    assert events[0] == (RTM_NEWLINK, AF_UNSPEC) and events[-1] == (RTM_DELLINK, AF_UNSPEC)


def test_leaving_a_bridge_is_not_being_unlisted(ns, target, joined):
    """A bridge port's removal is an RTM_DELLINK too (of family AF_BRIDGE):
    the link is still there, so the deletion's own outcome is the answer."""
    fd, _, index = target
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "link", "set", "va", "master", "br0")

    def leave_only() -> None:
        sh("ip", "-n", ns.name, "link", "set", "va", "nomaster")
        raise RuntimeError("refused after leaving the bridge")

    with pytest.raises(RuntimeError, match="refused after leaving the bridge"):
        unlist.delete_unlisted(fd, (index,), leave_only)
    assert "va" in ns.link_names()


def test_when_it_returns_the_link_and_its_peer_are_unlisted(ns, target, joined):
    fd, h, index = target
    unlist.delete_unlisted(fd, (index,), lambda: h.delete_link("va"))
    assert ns.link_names() == {"lo"}


def test_the_name_can_be_reused_at_once(ns, target, joined):
    fd, h, index = target
    unlist.delete_unlisted(fd, (index,), lambda: h.delete_link("va"))
    sh("ip", "-n", ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
    assert {"va", "vb"} <= ns.link_names()


def test_finish_joins_the_deletion_still_running(target, joined):
    fd, h, index = target
    unlist.delete_unlisted(fd, (index,), lambda: h.delete_link("va"))
    assert unlist.finish(time.monotonic() + JOIN)
    assert not [t for t in threading.enumerate() if t.name == "pynetlink-cni-delete"]


def synchronous_error(delete) -> NetlinkError:
    with pytest.raises(NetlinkError) as info:
        delete()
    return info.value


def same_error(a: BaseException, b: BaseException) -> bool:
    return (type(a), a.errno, str(a), a.ext_ack) == (type(b), b.errno, str(b), b.ext_ack)


def test_a_delete_the_kernel_refuses_raises_the_synchronous_error(ns, target, joined):
    fd, h, _ = target
    lo = h.get_link("lo").index
    expected = synchronous_error(lambda: h.delete_link("lo"))     # lo cannot be deleted
    with pytest.raises(NetlinkError) as info:
        unlist.delete_unlisted(fd, (lo,), lambda: h.delete_link("lo"))
    assert same_error(info.value, expected)
    assert "lo" in ns.link_names()


def test_a_link_gone_before_the_delete_raises_enodev_as_the_synchronous_delete(ns, target, joined):
    fd, h, index = target
    sh("ip", "-n", ns.name, "link", "del", "va")
    expected = synchronous_error(lambda: h.delete_link("va"))
    with pytest.raises(NetlinkError) as info:
        unlist.delete_unlisted(fd, (index,), lambda: h.delete_link("va"))
    assert info.value.errno == errno.ENODEV and same_error(info.value, expected)


def test_a_link_someone_else_deletes_meanwhile_is_no_error_for_a_del(ns, veth, early, monkeypatch):
    real = bridge_del.open_container

    def racing(path: str):
        fd, cont = real(path)
        ours = cont.delete_link

        def delete_link(name: str) -> None:
            sh("ip", "-n", ns.name, "link", "del", name)        # someone else, just before us
            ours(name)
        cont.delete_link = delete_link
        return fd, cont

    monkeypatch.setattr(bridge_del, "open_container", racing)
    bridge_del.remove_container_link(ns.path, "va")
    assert ns.link_names() == {"lo"}


def test_a_monitor_that_cannot_be_opened_falls_back_to_the_synchronous_delete(ns, target, joined):
    _, h, index = target
    ran_in = []

    def delete() -> None:
        ran_in.append(threading.current_thread())
        h.delete_link("va")

    with open("/dev/null", "rb") as not_a_namespace:
        unlist.delete_unlisted(not_a_namespace.fileno(), (index,), delete)
    assert ran_in == [threading.current_thread()]
    assert ns.link_names() == {"lo"}


class OverflowingMonitor(unlist.Monitor):
    """A monitor whose socket overflowed, as on a host busy with link changes."""

    def link_events(self):
        raise error_for(errno.ENOBUFS, "receive link notifications")


def test_an_overflowing_monitor_falls_back_to_waiting_for_the_deletion(ns, target, joined, monkeypatch):
    fd, h, index = target
    done = threading.Event()

    def delete() -> None:
        h.delete_link("va")
        done.set()

    monkeypatch.setattr(unlist, "Monitor", OverflowingMonitor)
    unlist.delete_unlisted(fd, (index,), delete)
    assert done.is_set()
    assert ns.link_names() == {"lo"}


def test_without_indexes_the_delete_runs_here(target, joined):
    _, h, _ = target
    ran_in = []
    unlist.delete_unlisted(None, (), lambda: ran_in.append(threading.current_thread()))
    assert ran_in == [threading.current_thread()]


def test_a_timeout_that_is_not_positive_is_refused(target):
    fd, _, index = target
    with pytest.raises(ValueError):
        unlist.delete_unlisted(fd, (index,), lambda: None, timeout=0)


def test_finish_with_nothing_running_is_true():
    assert unlist.finish(time.monotonic())


# -- the CNI deletions -------------------------------------------------------------------------

def test_exec_mode_deletes_in_the_calling_thread(ns, veth, joined):
    assert not unlist.EARLY
    bridge_del.remove_container_link(ns.path, "va")
    assert not unlist._running and ns.link_names() == {"lo"}


def test_a_container_link_deleted_early_is_unlisted_with_its_peer(ns, veth, early):
    bridge_del.remove_container_link(ns.path, "va")
    assert ns.link_names() == {"lo"}


def test_a_missing_container_link_is_no_error_early(ns, early):
    bridge_del.remove_container_link(ns.path, "eth0")
    assert ns.link_names() == {"lo"}


# -- through the daemon ------------------------------------------------------------------------

def add_pods(served, conf: dict, pods: list) -> list:
    return [served.ok("ADD", conf, netns=p.path, container_id=f"pntest-u{i}") for i, p in enumerate(pods)]


def del_all_at_once(served, conf: dict, pods: list, results: list) -> list:
    """A DEL of every pod at once (prevResult: its ADD's result); their Outcomes."""
    def one(i: int):
        return _try(served.exec, "DEL", dict(conf, prevResult=results[i]), netns=pods[i].path,
                    container_id=f"pntest-u{i}")
    with ThreadPoolExecutor(len(pods)) as pool:
        return list(pool.map(one, range(len(pods))))


def test_a_del_through_the_daemon_leaves_nothing_once_answered(served, host, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path)
    result = served.ok("ADD", conf, netns=container.path)
    assert len(host_veths(host)) == 1
    assert served.ok("DEL", dict(conf, prevResult=result), netns=container.path) is None
    assert container.link_names() == {"lo"}
    assert host_veths(host) == [] and allocations(tmp_path) == []


def test_concurrent_dels_through_the_daemon_leave_nothing_once_answered(served, host, make_ns, tmp_path):
    pods = [make_ns() for _ in range(PODS)]
    conf = bridge_conf(PLUGIN, tmp_path)
    outs = del_all_at_once(served, conf, pods, add_pods(served, conf, pods))
    assert all(isinstance(o, Outcome) and (o.rc, o.stdout) == (0, "") for o in outs), outs
    assert host_veths(host) == [] and allocations(tmp_path) == []
    assert all(p.link_names() == {"lo"} for p in pods)


def test_sigterm_right_after_a_burst_of_dels_exits_0_with_every_link_gone(served, daemon, host, make_ns,
                                                                          tmp_path):
    pods = [make_ns() for _ in range(PODS)]
    conf = bridge_conf(PLUGIN, tmp_path)
    outs = del_all_at_once(served, conf, pods, add_pods(served, conf, pods))
    assert daemon.stop() == 0, daemon.log()
    assert all(isinstance(o, Outcome) and o.rc == 0 for o in outs), outs
    assert daemon.log_lines(": stopped"), daemon.log()
    assert host_veths(host) == [] and allocations(tmp_path) == []
    assert all(p.link_names() == {"lo"} for p in pods)


def test_every_waiter_of_a_deletion_gets_its_outcome_when_watching_fails(monkeypatch, joined):
    """A monitor that breaks (here: an undecodable notification) leaves
    every waiter with the error, not the first one only."""
    def broken(*_args):
        raise ValueError("undecodable notification")
    monkeypatch.setattr(unlist, "watch", broken)
    unlisting = unlist.start_unlisted(None, [424242], lambda: None)
    outcomes = []
    for _ in range(3):
        try:
            unlisting.wait()
            outcomes.append("success")
        except ValueError as e:
            outcomes.append(str(e))
    assert outcomes == ["undecodable notification"] * 3
