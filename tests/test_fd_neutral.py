"""Every error path leaves the process's fds as it found them: 50 times over,
no fd is left open by a Handle, ``netns.enter`` or
``netns.entered`` on a path that is missing or not a network namespace, a
socket whose ``setns`` fails, a ``create_veth_pair(peer_netns=PATH)`` that
fails (alone or in a batch), or a bulk setup whose containers fail.

fds are compared as {fd: what it points at}, after the test's own threads
have ended: an fd that an earlier test's thread closes meanwhile does not
hide a leak (as it would in a count), and an fd number reused for
something else counts as a change."""
from __future__ import annotations

import errno
import gc
import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

import pynetlink as pn
from pynetlink import _core
from conftest import Netns, in_thread
from test_strategies import bridge  # noqa: F401  (fixture)

ROUNDS = 50
NOT_NETNS = "/proc/self/status"
MISSING = "/run/netns/pntest-does-not-exist"


def fd_table() -> dict:
    """{fd: readlink target} of this process."""
    table = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            table[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:           # the fd of the listing itself, already closed
            pass
    return table


def opened_by(fn, *args) -> dict:
    """Run fn(*args) ROUNDS times in a thread of its own (namespace switches
    never reach the test's thread); the fds it left open: {fd: target}.
    Read again for up to 2 s while any is left (a Handle dropped by a
    failing call is closed when it is collected)."""
    before = fd_table()

    def rounds():
        for _ in range(ROUNDS):
            fn(*args)
    in_thread(rounds)
    for _ in range(100):
        gc.collect()
        left = {fd: target for fd, target in fd_table().items() if before.get(fd) != target}
        if not left:
            break
        time.sleep(0.02)
    return left


def refused(errnos, fn, *args) -> None:
    """fn(*args) raises OSError with one of ``errnos``."""
    with pytest.raises(OSError) as info:
        fn(*args)
    assert info.value.errno in errnos, info.value


# -- namespaces named by a bad path ---------------------------------------------------

def enter_block(path) -> None:
    with pn.netns.entered(path):
        raise AssertionError("entered a namespace that is not one")


BAD_PATHS = {NOT_NETNS: (errno.EINVAL,), MISSING: (errno.ENOENT,)}


@pytest.mark.parametrize("path", BAD_PATHS, ids=["not-a-namespace", "missing"])
@pytest.mark.parametrize("use", [pn.Handle, pn.netns.enter, enter_block],
                         ids=["Handle", "enter", "entered"])
def test_a_refused_namespace_path_leaves_no_fd_open(path, use):
    assert opened_by(refused, BAD_PATHS[path], use, path) == {}


def test_entered_leaves_no_fd_open(ns):
    def visit():
        with pn.netns.entered(ns.path):
            pass
    assert opened_by(visit) == {}


def test_handles_by_path_leave_no_fd_open(ns):
    def open_and_close():
        with pn.Handle(netns=ns.path) as h:
            h.link_index("lo")
    assert opened_by(open_and_close) == {}


def test_a_socket_whose_setns_fails_leaves_no_fd_open():
    """The C core enters the target only for socket(): a target that setns
    refuses (a mount namespace) fails there, after it opened its way home."""
    fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert opened_by(refused, (errno.EINVAL,), _core.Socket, fd) == {}
    finally:
        os.close(fd)


WITHOUT_SYS_ADMIN = textwrap.dedent("""
    import errno, os, sys
    import pynetlink as pn
    def table():
        return {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in map(int, os.listdir("/proc/self/fd"))
                if os.path.exists(f"/proc/self/fd/{fd}")}
    before = table()
    for _ in range(50):
        try:
            pn.Handle(netns=sys.argv[1])
        except PermissionError:
            pass
        else:
            sys.exit("a Handle was made in another namespace without CAP_SYS_ADMIN")
    after = table()
    print({fd: t for fd, t in after.items() if before.get(fd) != t})
""")


def test_a_handle_that_setns_refuses_for_want_of_privilege_leaves_no_fd_open(ns):
    """Without CAP_SYS_ADMIN the path opens and checks out, and setns says EPERM."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        os.path.dirname(os.path.dirname(pn.__file__)), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([setpriv, "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin",
                           sys.executable, "-c", WITHOUT_SYS_ADMIN, ns.path],
                          capture_output=True, text=True, timeout=120, env=env)
    assert (proc.returncode, proc.stderr, proc.stdout) == (0, "", "{}\n")


# -- a failing create_veth_pair into a namespace path -------------------------------------

FAILING_PAIRS = {
    "name-taken": dict(name1="va", name2="x0"),                          # EEXIST
    "master-missing": dict(name1="n0", name2="x0", master="nobr0"),      # ENODEV, at lookup
}


@pytest.mark.parametrize("failing", FAILING_PAIRS.values(), ids=FAILING_PAIRS.keys())
def test_a_failing_create_veth_pair_into_a_path_leaves_no_fd_open(ns, ns2, handle, veth, failing):
    kw = dict(failing)
    assert opened_by(refused, (errno.EEXIST, errno.ENODEV), lambda: handle.create_veth_pair(
        kw["name1"], kw["name2"], master=kw.get("master"), peer_netns=ns2.path)) == {}
    assert ns2.link_names() == {"lo"}


@pytest.mark.parametrize("mode", ["continue", "stop", "rollback"])
def test_a_failing_batch_into_a_path_leaves_no_fd_open(ns, ns2, handle, veth, mode):
    def failing_batch():
        b = handle.batch(mode)
        b.create_veth_pair("n0", "x0", peer_netns=ns2.path)
        b.create_veth_pair("va", "x1", peer_netns=ns2.path)              # EEXIST
        statuses = [r.status for r in b.run()]
        assert statuses[1] == "failed"
        handle.delete_link("n0") if handle.link_exists("n0") else None
    assert opened_by(failing_batch) == {}
    assert ns2.link_names() == {"lo"}


# -- bulk setups whose containers fail ----------------------------------------------------

@pytest.fixture
def ns3():
    """A third scratch namespace."""
    n = Netns()
    yield n
    n.remove()


def test_bulk_setups_with_failing_containers_leave_no_fd_open(ns, ns2, ns3, bridge):
    """A container whose path is not a namespace, one whose path is missing,
    one whose bridge is missing, one whose gateway is unreachable (it fails
    after its pair was made) — and one that works, torn down each round."""
    net = dict(type="veth", bridge="br0", veth_prefix="veth", address="192.0.2.10/24",
               gateway="192.0.2.1", mtu=1450)
    entries = [
        pn.bulk.Container(pn.Network(**net), netns=NOT_NETNS),
        pn.bulk.Container(pn.Network(**net), netns=MISSING),
        pn.bulk.Container(pn.Network(**{**net, "bridge": "nobr0"}), netns=ns2.path),
        pn.bulk.Container(pn.Network(**{**net, "gateway": "198.51.100.1"}), netns=ns2.path),
        pn.bulk.Container(pn.Network(**net), netns=ns3.path),
    ]
    with pn.Handle(netns=ns.path) as host:
        def setup_and_teardown():
            done = pn.bulk.setup(entries, handle=host)
            assert [r.ok for r in done.results] == [False, False, False, False, True]
            pn.bulk.teardown(done, handle=host)
        assert opened_by(setup_and_teardown) == {}
    assert {link["ifname"] for link in ns.ip("link", "show")} == {"lo", "br0"}
    assert ns2.link_names() == ns3.link_names() == {"lo"}
