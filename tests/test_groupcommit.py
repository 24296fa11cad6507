"""Group commit (pynetlink/_groupcommit.py) and its use by host-local's
DEL: concurrent releases on one store take the lock and read the directory
once per group, and release exactly what each DEL owns."""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pynetlink.cni import hostlocal, hostlocal_store
from pynetlink._groupcommit import GroupCommit
from test_cni_hostlocal import environ, held, network, run_ours

pytestmark = pytest.mark.unit
BOUND = 30.0            # s: "it ended", not a timing


def test_a_lone_submitter_runs_its_item_at_once_alone():
    groups: list = []
    GroupCommit(groups.append).submit("a")
    assert groups == [["a"]]


def test_items_submitted_while_a_group_runs_go_together_in_the_next():
    groups: list = []
    started, release = threading.Event(), threading.Event()

    def run(items: list) -> None:
        groups.append(items)
        if items == ["first"]:
            started.set()
            assert release.wait(BOUND)

    gc = GroupCommit(run)
    first = threading.Thread(target=gc.submit, args=("first",))
    first.start()
    assert started.wait(BOUND)
    others = [threading.Thread(target=gc.submit, args=(n,)) for n in ("b", "c", "d")]
    for t in others:
        t.start()
    pause = threading.Event()
    for _ in range(3000):                       # all three queued (bounded)
        with gc.lock:
            if len(gc.waiting) == 3:
                break
        pause.wait(0.001)
    release.set()
    for t in [first, *others]:
        t.join(BOUND)
    assert groups[0] == ["first"] and sorted(groups[1]) == ["b", "c", "d"] and len(groups) == 2


def test_an_error_of_a_group_reaches_each_of_its_submitters():
    def run(items: list) -> None:
        raise OSError(5, "broken store")

    gc = GroupCommit(run)
    errors = []
    for item in ("x", "y"):
        try:
            gc.submit(item)
        except OSError as e:
            errors.append(e.errno)
    assert errors == [5, 5]
    done: list = []
    gc.run = done.append                        # the next group runs as usual
    gc.submit("z")
    assert done == [["z"]]


def test_concurrent_dels_release_exactly_their_own_addresses(tmp_path):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8::/64"}])
    for i in range(30):
        assert run_ours("ADD", conf, cid=f"pntest-c{i}")[1] == 0
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda i: run_ours("DEL", conf, cid=f"pntest-c{i}")[1], range(20)))
    assert codes == [0] * 20
    owners = {data.split(b"\r\n")[0].decode() for data in held(tmp_path).values()}
    assert owners == {f"pntest-c{i}" for i in range(20, 30)} and len(held(tmp_path)) == 20


def test_concurrent_dels_read_the_directory_fewer_times_than_there_are_dels(tmp_path, monkeypatch):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}])
    for i in range(20):
        assert run_ours("ADD", conf, cid=f"pntest-c{i}")[1] == 0
    reads, real = [], hostlocal_store.Store.release_many
    gate = threading.Event()

    def counted(self, owners):
        reads.append(len(owners))
        gate.wait(0.05)                 # hold the first group long enough for the rest to queue
        return real(self, owners)

    monkeypatch.setattr(hostlocal_store.Store, "release_many", counted)
    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(lambda i: run_ours("DEL", conf, cid=f"pntest-c{i}")[1], range(20)))
    assert codes == [0] * 20 and held(tmp_path) == {}
    assert sum(reads) == 20 and len(reads) < 20


def test_a_submitter_interrupted_while_waiting_leaves_the_others_going():
    """Ctrl-C in a thread waiting for its group (here the main thread):
    it leaves the queue, and the lead passes on to the next waiter."""
    import signal
    started, groups = threading.Event(), []

    def run(items: list) -> None:
        groups.append(items)
        if items == ["first"]:
            started.set()
            time.sleep(0.3)                     # the main thread waits meanwhile
    gc = GroupCommit(run)
    first = threading.Thread(target=gc.submit, args=("first",))
    first.start()
    assert started.wait(BOUND)
    main = threading.main_thread().ident
    ctrl_c = threading.Timer(0.1, signal.pthread_kill, args=(main, signal.SIGINT))
    ctrl_c.start()
    with pytest.raises(KeyboardInterrupt):
        gc.submit("interrupted")
    later = threading.Thread(target=gc.submit, args=("later",))
    later.start()
    for t in (first, later, ctrl_c):
        t.join(BOUND)
    assert not later.is_alive() and groups == [["first"], ["later"]]
    assert not gc.busy and gc.waiting == []
