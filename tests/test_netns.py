"""pynetlink.netns: scratch namespaces and per-thread entering."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

import pynetlink as pn
from conftest import in_thread, open_fds, settled_fds


def ip_in(fd: int, *args: str) -> str:
    """iproute2's view of the namespace held by fd."""
    return subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", "ip", *args],
                          capture_output=True, text=True, check=True, timeout=30).stdout


def test_create_gives_a_new_empty_namespace():
    with pn.netns.scratch() as fd:
        assert os.fstat(fd).st_ino != os.stat("/proc/thread-self/ns/net").st_ino
        assert [line.split(":")[1].strip() for line in ip_in(fd, "-o", "link").splitlines()] == ["lo"]


def test_create_does_not_move_the_calling_thread():
    before = pn.netns.current_id()
    fd = pn.netns.create()
    try:
        assert pn.netns.current_id() == before
    finally:
        os.close(fd)


def test_scratch_namespace_is_usable_by_a_handle():
    with pn.netns.scratch() as fd, pn.Handle(netns=fd) as h:
        h.create_veth_pair("sa0", "sb0")
        assert "sa0" in ip_in(fd, "-br", "link")


def test_scratch_closes_its_fd():
    before = settled_fds()
    with pn.netns.scratch():
        assert open_fds() == before + 1
    assert settled_fds() == before


def test_scratch_fd_is_close_on_exec():
    import fcntl
    with pn.netns.scratch() as fd:
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC


def test_enter_moves_only_the_calling_thread(ns):
    main_before = pn.netns.current_id()
    inside = in_thread(lambda: (pn.netns.enter(ns.path), pn.netns.current_id())[1])
    assert inside == (os.stat(ns.path).st_dev, os.stat(ns.path).st_ino)
    assert pn.netns.current_id() == main_before


def test_enter_a_file_that_is_not_a_namespace_raises_einval(tmp_path):
    path = tmp_path / "plain"
    path.write_text("")
    with pytest.raises(OSError) as info:
        in_thread(pn.netns.enter, str(path))
    assert info.value.errno == 22


def test_entered_returns_home_when_the_block_raises(ns):
    def body():
        home = pn.netns.current_id()
        with pytest.raises(RuntimeError):
            with pn.netns.entered(ns.path):
                raise RuntimeError("boom")
        return home == pn.netns.current_id()

    assert in_thread(body)


NOT_NETNS = ["/proc/self/status", "/proc/self/ns/mnt"]  # a file; another kind of namespace


@pytest.mark.parametrize("path", NOT_NETNS)
@pytest.mark.parametrize("use", [
    lambda p: pn.Handle(netns=p),
    lambda p: pn.netns.entered(p).__enter__(),
    lambda p: pn.netns.enter(p),
], ids=["Handle", "entered", "enter"])
def test_a_path_that_is_not_a_network_namespace_is_named_in_the_error(path, use):
    before = settled_fds()
    for _ in range(50):                     # and the error path leaves no fd open
        with pytest.raises(OSError) as info:
            use(path)
        assert info.value.errno == errno.EINVAL
        assert str(info.value) == f"[Errno 22] not a network namespace: {path!r}"
    assert settled_fds() == before


def test_an_fd_that_is_not_a_network_namespace_is_named_in_the_error():
    fd = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError, match=f"not a network namespace: 'fd {fd}'"):
            pn.Handle(netns=fd)
    finally:
        os.close(fd)


def test_a_peer_namespace_that_is_not_one_is_refused_before_any_link_is_made(ns, handle):
    with pytest.raises(OSError, match="not a network namespace: '/proc/self/status'"):
        handle.create_veth_pair("va", "vb", peer_netns="/proc/self/status")
    assert ns.link_names() == {"lo"}


NO_PROC_PROBE = """
import pynetlink as pn
for call in (lambda: pn.link_index("lo"), pn.netns.create,
             lambda: pn.Handle(netns=PATH), lambda: pn.netns.entered(PATH).__enter__()):
    try:
        call()
        print("worked")
    except FileNotFoundError as e:
        print(e)
"""


def test_without_proc_every_entry_point_says_proc_is_missing(ns):
    """In a mount namespace of its own with /proc unmounted (the machine's
    is untouched), each way in names what is missing."""
    probe = NO_PROC_PROBE.replace("PATH", repr(ns.path))
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'umount -l /proc && exec "$0" -c "$1"', sys.executable, probe],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(pn.__file__))))
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 4, done.stderr
    assert all("is /proc mounted?" in line for line in lines), lines
