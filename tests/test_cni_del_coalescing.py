"""Concurrent DELs coalesced (pynetlink/cni/bridge_del.py): the host ends of
several pods deleted with one group delete, each pod's answer the one exec
mode gives, anything that cannot be told deleted on its own."""
from __future__ import annotations

import threading

import pytest

from conftest import Netns, in_thread, sh
from pynetlink.cni import bridge_del

BRIDGE = "cbr0"


@pytest.fixture
def pods():
    """Three fresh namespaces (the pods), removed after the test."""
    made = [Netns() for _ in range(3)]
    try:
        yield made
    finally:
        for pod in made:
            pod.remove()


def plug(host: Netns, pods: list) -> None:
    """A bridge in ``host`` and, per pod, a veth whose host end is on it and
    whose other end is the pod's eth0 (as ADD makes them)."""
    sh("ip", "-n", host.name, "link", "add", BRIDGE, "up", "type", "bridge")
    for i, pod in enumerate(pods):
        sh("ip", "-n", host.name, "link", "add", f"hveth{i}", "master", BRIDGE, "up", "type", "veth",
           "peer", "name", "eth0", "netns", pod.name)


def ports(host: Netns) -> list:
    return [link["ifname"] for link in host.ip("link", "show", "master", BRIDGE) or []]


def jobs(pods: list) -> list:
    """One Removal per pod, with prevResult's host end as ``plug`` names it."""
    return [bridge_del.Removal(pod.path, "eth0", BRIDGE, frozenset({f"hveth{i}"}))
            for i, pod in enumerate(pods)]


def grouped(host: Netns, batch: list) -> list:
    """``remove_grouped`` run in ``host``: the jobs it left to delete alone."""
    import pynetlink as pn

    def run():
        with pn.Handle() as h:
            return bridge_del.remove_grouped(h, batch)
    return in_thread(run, netns_path=host.path)


def test_pods_on_the_bridge_go_in_one_group_delete(ns, pods):
    plug(ns, pods)
    batch = jobs(pods)
    assert grouped(ns, batch) == []
    assert ports(ns) == []
    assert all("eth0" not in pod.link_names() for pod in pods)


def test_a_pod_without_its_link_or_namespace_is_done_without_error(ns, pods):
    plug(ns, pods[:2])
    batch = jobs(pods) + [bridge_del.Removal("/run/netns/pynetlink-none", "eth0", BRIDGE)]
    in_thread(bridge_del.remove_all, batch, netns_path=ns.path)
    assert [job.error for job in batch] == [None] * 4
    assert ports(ns) == []


def test_a_link_that_is_no_veth_of_the_bridge_is_left_to_delete_alone(ns, pods):
    plug(ns, pods[:2])
    sh("ip", "-n", pods[2].name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    batch = jobs(pods)
    assert grouped(ns, batch) == [batch[2]]
    assert "eth0" in pods[2].link_names()
    in_thread(bridge_del.remove_all, batch, netns_path=ns.path)
    assert "eth0" not in pods[2].link_names()


def test_the_host_end_of_another_bridge_is_not_taken(ns, pods):
    plug(ns, pods)
    batch = [bridge_del.Removal(pod.path, "eth0", "otherbr0", job.hosts) for pod, job in zip(pods, jobs(pods))]
    assert grouped(ns, batch) == batch
    assert len(ports(ns)) == 3


def test_a_host_end_prev_result_does_not_name_is_not_taken(ns, pods):
    plug(ns, pods)
    batch = [bridge_del.Removal(pod.path, "eth0", BRIDGE, frozenset({"hveth9"})) for pod in pods]
    assert grouped(ns, batch) == batch
    assert len(ports(ns)) == 3


def test_host_names_are_prev_results_host_interfaces_but_the_bridge():
    conf = {"prevResult": {"interfaces": [{"name": BRIDGE}, {"name": "veth1234abcd"},
                                          {"name": "eth0", "sandbox": "/run/netns/x"}]}}
    assert bridge_del.host_names(conf, BRIDGE) == {"veth1234abcd"}
    assert bridge_del.host_names({}, BRIDGE) == frozenset()


def test_concurrent_callers_share_batches_and_each_returns(ns, pods, monkeypatch):
    plug(ns, pods)
    coalescer, sizes = bridge_del.Coalescer(), []
    real = bridge_del.remove_all
    monkeypatch.setattr(bridge_del, "remove_all", lambda batch: (sizes.append(len(batch)), real(batch)))
    start = threading.Barrier(len(pods))

    def caller(job):
        with coalescer.expecting():
            start.wait(10)
            coalescer.remove(job)
    threads = [threading.Thread(target=in_thread, args=(caller, job), kwargs={"netns_path": ns.path})
               for job in jobs(pods)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert sum(sizes) == 3 and len(sizes) < 3
    assert ports(ns) == []


def test_a_lone_removal_is_an_ordinary_delete(ns, pods):
    plug(ns, pods[:1])
    job = jobs(pods[:1])[0]
    in_thread(bridge_del.Coalescer().remove, job, netns_path=ns.path)
    assert job.done and job.error is None
    assert ports(ns) == []


def test_a_failure_of_the_grouped_path_leaves_each_pod_to_delete_alone(ns, pods, monkeypatch):
    plug(ns, pods)

    def broken(host, batch):
        raise RuntimeError("grouped path broken")
    monkeypatch.setattr(bridge_del, "remove_grouped", broken)
    batch = jobs(pods)
    in_thread(bridge_del.remove_all, batch, netns_path=ns.path)
    assert [job.error for job in batch] == [None] * 3
    assert ports(ns) == []


# -- in the daemon: group deletes answered once unlisted, the next batch not waiting ----------

@pytest.fixture
def early(monkeypatch):
    """Daemon mode (deletions answered once unlisted); every deletion over after the test."""
    import time
    from pynetlink.cni import unlist
    monkeypatch.setattr(unlist, "EARLY", True)
    yield
    assert unlist.finish(time.monotonic() + 30), "deletions still running"


def test_in_the_daemon_each_pod_of_a_group_delete_waits_for_its_unlisting(ns, pods, early):
    plug(ns, pods)
    batch = jobs(pods)
    assert grouped(ns, batch) == []
    assert len({id(job.unlisting) for job in batch}) == 1 and batch[0].unlisting is not None
    for job in batch:
        bridge_del.await_group(job)
    assert [job.error for job in batch] == [None] * 3
    assert ports(ns) == [] and all("eth0" not in pod.link_names() for pod in pods)


def test_a_failed_group_delete_leaves_each_of_its_pods_to_delete_alone(ns, pods, early, monkeypatch):
    plug(ns, pods)

    def refused(group: int) -> None:
        raise PermissionError(1, "group delete refused")
    monkeypatch.setattr(bridge_del, "delete_group", refused)
    batch = jobs(pods)
    assert grouped(ns, batch) == []
    for job in batch:
        in_thread(bridge_del.await_group, job, netns_path=ns.path)
    assert [job.error for job in batch] == [None] * 3
    assert ports(ns) == []


class HeldUnlisting:
    """An Unlisting whose wait() returns once ``release`` is set."""

    def __init__(self, release: threading.Event):
        self.release = release

    def wait(self) -> None:
        assert self.release.wait(30)


def test_the_next_batch_runs_while_the_previous_group_delete_is_unlisting(monkeypatch):
    """No kernel: remove_all replaced by one that starts a group delete
    (held unlisted until released) for each batch."""
    coalescer, batches, release = bridge_del.Coalescer(), [], threading.Event()
    second_ran = threading.Event()

    def remove_all(batch: list) -> None:
        batches.append([job.ifname for job in batch])
        for job in batch:
            job.unlisting = HeldUnlisting(release)
        if len(batches) == 2:
            second_ran.set()
    monkeypatch.setattr(bridge_del, "remove_all", remove_all)
    first = threading.Thread(target=coalescer.remove, args=(bridge_del.Removal("/x", "a", BRIDGE),))
    first.start()
    second = threading.Thread(target=coalescer.remove, args=(bridge_del.Removal("/x", "b", BRIDGE),))
    try:
        for _ in range(3000):                   # the first batch ran (bounded)
            if batches:
                break
            release.wait(0.001)
        second.start()
        assert second_ran.wait(30)              # while the first is still held
        assert batches == [["a"], ["b"]]
    finally:
        release.set()
        first.join(30)
        if second.ident is not None:
            second.join(30)
