"""``pynetlink-cni daemon --workers N``: N processes serving one socket,
watched by the first: a worker that dies is replaced, SIGTERM reaches every
worker (each finishes its requests), and no worker outlives the daemon.
The daemon runs as in test_cni_daemon.py: a subprocess in a scratch "host"
namespace; pods are scratch namespaces; judged with ``ip -j`` and /proc."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pynetlink.cni import daemon as cni_daemon
from pynetlink.cni import wire
import test_cni
import test_cni_daemon
from test_cni import PLUGIN, REFERENCE, assert_nothing_left, bridge_conf, needs_reference, wait_until
from test_cni_daemon import DaemonRuntime, _try, all_at_once

make_ns, host, container, plugin_dir = test_cni.make_ns, test_cni.host, test_cni.container, test_cni.plugin_dir
sockdir, start_daemon, shim_dir, slow_bin = (test_cni_daemon.sockdir, test_cni_daemon.start_daemon,
                                             test_cni_daemon.shim_dir, test_cni_daemon.slow_bin)
BOUND = 30.0        # seconds: "it happened", not a timing


def children(pid: int) -> set:
    """The pids whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def two_workers(start_daemon, host, sockdir):
    path = os.path.join(sockdir, "run", "cni.sock")
    d = start_daemon(host, "--socket", path, "--workers", "2")
    assert wait_until(lambda: len(children(d.proc.pid)) == 2, BOUND), d.log()
    return d


def test_two_workers_are_two_processes_under_the_daemon(two_workers):
    assert len(children(two_workers.proc.pid)) == 2
    assert "2 worker(s)" in two_workers.log()


def test_one_worker_serves_in_the_daemons_own_process(start_daemon, host, sockdir):
    path = os.path.join(sockdir, "run", "cni.sock")
    d = start_daemon(host, "--socket", path, "--workers", "1")
    assert wire.call({"CNI_COMMAND": "VERSION"}, b"", path, timeout=10).status == 0
    assert children(d.proc.pid) == set()


@pytest.mark.parametrize("count", ["0", "65", "two"])
def test_a_worker_count_out_of_range_is_refused_at_start(count):
    with pytest.raises(SystemExit) as info:
        cni_daemon.parse_args(["--workers", count])
    assert info.value.code == 2


def test_default_workers_are_the_cpus_at_most_four():
    assert cni_daemon.default_workers() == max(1, min(4, len(os.sched_getaffinity(0))))


def test_a_worker_that_dies_is_replaced_and_requests_are_served(two_workers):
    first = children(two_workers.proc.pid)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(children(two_workers.proc.pid) - {victim}) == 2, BOUND), two_workers.log()
    assert victim not in children(two_workers.proc.pid)
    assert f"worker {victim} exited" in two_workers.log()
    for _ in range(6):
        assert wire.call({"CNI_COMMAND": "VERSION"}, b"", two_workers.path, timeout=10).status == 0


class SlowToStart:
    """A worker's Daemon that takes STARTUP seconds to make, then serves
    until ``stop`` (at most 10 s); what its SIGTERM handler does is all the
    test looks at."""
    STARTUP = 0.5

    def __init__(self, *args):
        time.sleep(self.STARTUP)
        self.stopping = False

    def stop(self, *_args):
        self.stopping = True

    def serve(self) -> bool:
        end = time.monotonic() + 10
        while not self.stopping and time.monotonic() < end:
            time.sleep(0.01)
        return self.stopping


@pytest.mark.unit
def test_a_sigterm_before_the_workers_handler_is_in_is_not_lost(monkeypatch):
    """SIGTERM to a worker still making its Daemon (the parent's ``stop``
    right after a start): it waits, pending, and the worker stops once its
    handler is in — ignored, it would keep the daemon for its whole grace."""
    monkeypatch.setattr(cni_daemon, "Daemon", SlowToStart)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    workers = cni_daemon.Workers(listener, cni_daemon.Log(sys.stderr), frozenset(), 1)
    try:
        workers.spawn(0)
        [pid] = workers.pids
        time.sleep(SlowToStart.STARTUP / 5)          # forked, still making its Daemon
        os.kill(pid, signal.SIGTERM)
        end, status = time.monotonic() + 20, None
        while status is None and time.monotonic() < end:
            time.sleep(0.02)
            ended, code = os.waitpid(pid, os.WNOHANG)
            status = os.waitstatus_to_exitcode(code) if ended else None
        if status is None:                          # still serving: it lost the SIGTERM
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert status == 0
    finally:
        listener.close()
        os.close(workers.wake_r)
        os.close(workers.wake_w)


def test_sigterm_while_the_workers_start_is_not_lost(start_daemon, host, sockdir):
    """SIGTERM as soon as a worker exists (its handler perhaps not yet in):
    each worker still stops, and the daemon exits 0 in a few seconds — a
    worker that ignored it would hold the daemon for its 600 s grace."""
    path = os.path.join(sockdir, "run", "cni.sock")
    for _ in range(4):
        d = start_daemon(host, "--socket", path, "--workers", "2", ready=False)
        assert wait_until(lambda: len(children(d.proc.pid)) >= 1, BOUND), d.log()
        assert d.stop(seconds=20) == 0, d.log()


def test_sigterm_stops_every_worker_removes_the_socket_and_exits_0(two_workers):
    workers = children(two_workers.proc.pid)
    assert two_workers.stop() == 0
    assert not any(alive(p) for p in workers)
    assert not os.path.exists(two_workers.path)


def test_no_worker_outlives_a_killed_daemon_and_a_new_one_starts(two_workers, start_daemon, host):
    workers = children(two_workers.proc.pid)
    two_workers.stop(signal.SIGKILL)
    assert wait_until(lambda: not any(alive(p) for p in workers), BOUND)
    again = start_daemon(host, "--socket", two_workers.path, "--workers", "2")
    assert wire.call({"CNI_COMMAND": "VERSION"}, b"", again.path, timeout=10).status == 0


@needs_reference
def test_concurrent_pods_through_two_workers_leave_nothing(two_workers, host, make_ns, shim_dir,
                                                           slow_bin, tmp_path):
    rt = DaemonRuntime(host, [shim_dir, slow_bin, REFERENCE], two_workers.path)
    pods = [make_ns() for _ in range(16)]
    conf = bridge_conf(PLUGIN, tmp_path)

    def each(command: str) -> list:
        return all_at_once(rt, command, conf, pods, "pntest-w")

    added = each("ADD")
    assert all(getattr(o, "rc", None) == 0 for o in added), added
    addresses = {p.ip("addr", "show", "dev", "eth0")[0]["addr_info"][0]["local"] for p in pods}
    assert len(addresses) == len(pods)                  # one allocation each, across both workers
    served = {line.split()[-1] for line in two_workers.log_lines(" ADD container=pntest-w")}
    assert served == {"ok"}
    deleted = each("DEL")
    assert all(getattr(o, "rc", None) == 0 for o in deleted), deleted
    for p in pods:
        assert_nothing_left(host, p, tmp_path)


@needs_reference
def test_sigterm_lets_every_workers_requests_finish(two_workers, host, make_ns, shim_dir, slow_bin, tmp_path):
    """ADDs held in IPAM (SLOW_IPAM) in both workers when SIGTERM comes: each is answered ok."""
    rt = DaemonRuntime(host, [shim_dir, slow_bin, REFERENCE], two_workers.path)
    pods = [make_ns() for _ in range(4)]
    conf = test_cni_daemon.slow_conf(tmp_path)
    outs: list = [None] * len(pods)

    def one(i: int) -> None:
        outs[i] = _try(rt.exec, "ADD", conf, netns=pods[i].path, container_id=f"pntest-t{i}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(pods))]
    for t in threads:
        t.start()
    pids_file = os.path.join(slow_bin, test_cni_daemon.SLOW_IPAM + ".pids")
    assert wait_until(lambda: os.path.exists(pids_file) and
                      len(open(pids_file).read().split()) >= len(pods), BOUND)
    try:
        assert two_workers.stop() == 0
    finally:
        for t in threads:
            t.join(120)
    assert all(getattr(o, "rc", None) == 0 for o in outs), outs
    assert all(p.ip("link", "show", "eth0") for p in pods)
    with open(pids_file, "w"):
        pass                                           # the next test counts its own
