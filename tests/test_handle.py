"""Handle: binding to a namespace, life cycle, module-level functions,
threads, and no fd growth."""
from __future__ import annotations

import ast
import errno
import os
import select
import signal
import threading

import pytest

import pynetlink as pn
from pynetlink import _core
from conftest import Netns, in_thread, settled_fds, sh


def test_handle_by_path_acts_in_that_namespace_only(ns):
    with pn.Handle(netns=ns.path) as h:
        h.create_veth_pair("pa0", "pb0")
    assert {"pa0", "pb0"} <= ns.link_names()
    own = {line.split(":")[1].strip().split("@")[0]
           for line in sh("ip", "-o", "link", "show").stdout.splitlines()}
    assert "pa0" not in own


def test_handle_by_pathlike(ns):
    import pathlib
    with pn.Handle(netns=pathlib.Path(ns.path)) as h:
        h.interface_up("lo")
    assert "UP" in ns.link("lo")["flags"]


def test_handle_by_fd_acts_in_that_namespace_and_keeps_fd_open(ns):
    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pn.Handle(netns=fd) as h:
            h.create_veth_pair("pa0", "pb0")
        os.fstat(fd)                        # still ours, still open
    finally:
        os.close(fd)
    assert {"pa0", "pb0"} <= ns.link_names()


def test_handle_by_proc_pid_path(ns2, sleeper):
    with pn.Handle(netns=f"/proc/{sleeper}/ns/net") as h:
        h.create_veth_pair("pa0", "pb0")
    assert "pa0" in ns2.link_names()


def test_handle_leaves_the_calling_thread_in_its_namespace(ns):
    before = pn.netns.current_id()
    with pn.Handle(netns=ns.path) as h:
        assert pn.netns.current_id() == before
        h.interface_up("lo")
    assert pn.netns.current_id() == before


def test_handle_on_missing_path_raises_file_not_found():
    with pytest.raises(FileNotFoundError):
        pn.Handle(netns="/run/netns/pntest-does-not-exist")


def test_handle_on_a_file_that_is_not_a_namespace_raises_einval(tmp_path):
    path = tmp_path / "plain"
    path.write_text("")
    with pytest.raises(OSError) as info:
        pn.Handle(netns=str(path))
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize("bad", [1.5, b"\0", object(), True], ids=["float", "nul", "object", "bool"])
def test_handle_rejects_bad_netns_argument(bad):
    with pytest.raises((TypeError, ValueError)):
        pn.Handle(netns=bad)


def test_handle_close_closes_its_socket(ns):
    h = pn.Handle(netns=ns.path)
    fd = h.fileno()
    os.fstat(fd)
    h.close()
    assert h.closed
    with pytest.raises(OSError):
        os.fstat(fd)


def test_closed_handle_raises_ebadf(ns):
    h = pn.Handle(netns=ns.path)
    h.close()
    with pytest.raises(OSError) as info:
        h.interface_up("lo")
    assert info.value.errno == errno.EBADF


def test_a_second_close_leaves_a_reused_fd_number_alone(ns):
    """close() twice closes the socket once: the second does not close
    whatever file has been given the same fd number since."""
    h = pn.Handle(netns=ns.path)
    number = h.fileno()
    h.close()
    opened = []                                 # lower free numbers go first: up to the socket's
    try:
        while number not in opened and len(opened) < 256:
            opened.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
        assert number in opened
        h.close()
        os.fstat(number)                        # still open
    finally:
        for fd in opened:
            os.close(fd)
    assert (h.closed, h.fileno()) == (True, -1)


@pytest.fixture
def closed(ns):
    """A Handle on ``ns``, already closed."""
    h = pn.Handle(netns=ns.path)
    h.close()
    return h


def test_closed_handle_error_names_the_operation_and_its_arguments(closed):
    with pytest.raises(pn.NetlinkError) as info:
        closed.get_link("lo")
    assert str(info.value) == ("get_link('lo'): [Errno 9] Bad file descriptor "
                               "(the netlink handle is closed)")


def test_closed_handle_says_so_in_detail_not_in_ext_ack(closed):
    with pytest.raises(pn.NetlinkError) as info:
        closed.set_mtu("lo", 1400)
    assert (info.value.ext_ack, info.value.detail) == ("", "the netlink handle is closed")


def test_closed_handle_error_names_the_link_an_operation_changes(closed):
    with pytest.raises(pn.NetlinkError) as info:
        closed.set_interface_master("va", "br0")
    e = info.value
    assert (e.errno, e.operation, e.arguments, e.interface) == (
        errno.EBADF, "set_interface_master", ("va", "br0"), "va")


def test_closed_handle_refuses_a_dump_as_that_dump(closed):
    with pytest.raises(pn.NetlinkError) as info:
        closed.list_links()
    assert (info.value.errno, info.value.operation, info.value.detail) == (
        errno.EBADF, "list_links", "the netlink handle is closed")


def test_closed_handle_refuses_a_batch_as_its_first_operation(closed):
    with pytest.raises(pn.NetlinkError) as info:
        with closed.batch() as b:
            b.set_mtu("lo", 1400)
    assert (info.value.errno, str(info.value)) == (
        errno.EBADF, "set_mtu('lo', 1400): [Errno 9] Bad file descriptor "
                     "(the netlink handle is closed)")


def test_closed_handle_has_no_timeout(closed):
    assert closed.timeout is None


def test_open_handle_timeout_is_what_it_was_given(ns):
    with pn.Handle(netns=ns.path, timeout=2.5) as h:
        assert h.timeout == 2.5


def test_closed_handle_fileno_is_minus_one_and_repr_says_closed(closed):
    assert (closed.fileno(), repr(closed)) == (-1, "<pynetlink.Handle closed>")


def test_open_handle_repr_shows_its_fd(handle):
    assert repr(handle) == f"<pynetlink.Handle fd={handle.fileno()}>"


def test_handle_sockets_are_close_on_exec(ns):
    import fcntl
    with pn.Handle(netns=ns.path) as h:
        assert fcntl.fcntl(h.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC


# -- module-level functions ------------------------------------------------------

def test_module_functions_act_in_the_calling_threads_namespace(ns):
    in_thread(pn.create_veth_pair, "ma0", "mb0", netns_path=ns.path)
    assert {"ma0", "mb0"} <= ns.link_names()


def test_module_functions_do_a_whole_container_setup(ns):
    def setup():
        pn.create_veth_pair("ma0", "mb0")
        pn.interface_up("lo")
        pn.change_interface_name("mb0", "eth0")
        pn.set_mtu("eth0", 1400)
        pn.interface_up("eth0")
        pn.interface_up("ma0")
        pn.set_interface_ip("eth0", "192.0.2.2/24")
        pn.set_default_gateway("192.0.2.1", "eth0")
        return pn.link_index("eth0")

    index = in_thread(setup, netns_path=ns.path)
    eth0 = ns.link("eth0")
    assert eth0["ifindex"] == index and eth0["mtu"] == 1400 and "UP" in eth0["flags"]
    assert [r["gateway"] for r in ns.routes("-4") if r["dst"] == "default"] == ["192.0.2.1"]


def test_default_handle_follows_the_thread_into_another_namespace(ns, ns2):
    def hop():
        pn.netns.enter(ns.path)
        pn.create_veth_pair("first0", "first1")
        pn.netns.enter(ns2.path)
        pn.create_veth_pair("second0", "second1")

    in_thread(hop)
    assert "first0" in ns.link_names() and "second0" not in ns.link_names()
    assert "second0" in ns2.link_names() and "first0" not in ns2.link_names()


def test_netns_entered_returns_the_thread_home(ns):
    def body():
        home = pn.netns.current_id()
        with pn.netns.entered(ns.path):
            pn.create_veth_pair("ea0", "eb0")
            inside = pn.netns.current_id()
        return home, inside, pn.netns.current_id()

    home, inside, after = in_thread(body)
    assert inside != home and after == home
    assert "ea0" in ns.link_names()


def test_eight_threads_use_module_functions_at_once():
    spaces = [Netns() for _ in range(8)]
    try:
        errors, indexes = [], {}
        barrier = threading.Barrier(8, timeout=60)

        def worker(space):
            try:
                pn.netns.enter(space.path)
                barrier.wait()
                for i in range(25):
                    pn.create_veth_pair(f"t{i}a", f"t{i}b")
                    pn.set_mtu(f"t{i}a", 1400 + i)
                    pn.interface_up(f"t{i}a")
                    indexes[space.name, f"t{i}a"] = pn.link_index(f"t{i}a")
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(s,)) for s in spaces]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        for space in spaces:
            links = {link["ifname"]: link for link in space.ip("link", "show")}
            for i in range(25):
                assert links[f"t{i}a"]["mtu"] == 1400 + i
                assert "UP" in links[f"t{i}a"]["flags"]
                assert indexes[space.name, f"t{i}a"] == links[f"t{i}a"]["ifindex"]
    finally:
        for space in spaces:
            space.remove()


def test_eight_threads_share_one_handle(ns, handle):
    errors, indexes = [], {}

    def worker(n):
        try:
            for i in range(20):
                name = f"s{n}x{i}"
                handle.create_veth_pair(name, name + "p")
                indexes[name] = (handle.link_index(name), handle.get_link(name).index)
                handle.set_mtu(name, 1300 + n)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    links = {link["ifname"]: link for link in ns.ip("link", "show")}
    assert all(links[f"s{n}x{i}"]["mtu"] == 1300 + n for n in range(8) for i in range(20))
    assert indexes == {name: (links[name]["ifindex"],) * 2 for name in indexes} and len(indexes) == 160


# -- no leaks --------------------------------------------------------------------

def test_no_fd_growth_over_100_create_delete_cycles(ns, handle):
    """An fd leaked per cycle shows after one; 100 cycles also catch one
    leaked every few (the soak test runs 1,000)."""
    handle.create_veth_pair("warm0", "warm1")      # allocate lazily made things first
    handle.delete_link("warm0")
    before = settled_fds()
    for _ in range(100):
        handle.create_veth_pair("cyc0", "cyc1")
        handle.delete_link("cyc0")
    assert settled_fds() == before
    assert not {"cyc0", "cyc1"} & ns.link_names()


def test_no_fd_growth_over_1000_handles(ns):
    before = settled_fds()
    for _ in range(1000):
        with pn.Handle(netns=ns.path) as h:
            h.link_index("lo")
    assert settled_fds() == before


def test_no_fd_growth_from_module_functions_in_short_lived_threads(ns):
    in_thread(pn.link_index, "lo", netns_path=ns.path)
    before = settled_fds()
    for _ in range(200):
        in_thread(pn.link_index, "lo", netns_path=ns.path)
    assert settled_fds() == before


def in_child(body) -> bytes:
    """Fork; the child runs ``body()`` (bytes to report), writes it to a
    pipe and leaves at once.  The parent reads the report within 30 s — a
    child that hangs is killed and reported as such, never waited for."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, body())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        ready, _, _ = select.select([f], [], [], 30)
        verdict = f.read() if ready else b"no answer in 30 s"
    if not ready:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return verdict


def ebadf_or_what(call) -> bytes:
    """b"ebadf" if ``call()`` raises EBADF, else what it did."""
    try:
        call()
        return b"worked"
    except OSError as e:
        return b"ebadf" if e.errno == errno.EBADF else repr(e).encode()


def test_after_fork_a_child_does_not_use_the_parents_socket(ns):
    """A Handle made before fork() refuses to work in the child (EBADF);
    the module functions make the child a fresh socket of its own."""
    with pn.Handle(netns=ns.path) as h:
        h.link_index("lo")

        def child() -> bytes:
            verdict = ebadf_or_what(lambda: h.link_index("lo"))
            pn.netns.enter(ns.path)
            return verdict + (b" fresh" if pn.link_index("lo") == 1 else b" wrong")

        assert in_child(child) == b"ebadf fresh"
        assert h.link_index("lo") == 1                  # the parent's is still fine


def test_after_fork_the_childs_error_says_made_before_fork_in_detail(ns):
    with pn.Handle(netns=ns.path) as h:
        def child() -> bytes:
            try:
                h.get_link("lo")
                return b"worked"
            except pn.NetlinkError as e:
                return repr((e.errno, e.operation, e.arguments, e.ext_ack, e.detail,
                             repr(h))).encode()

        errno_, operation, arguments, ext_ack, detail, shown = ast.literal_eval(
            in_child(child).decode())
    assert (errno_, operation, arguments, ext_ack) == (errno.EBADF, "get_link", ("lo",), "")
    assert "made before fork()" in detail and "made before fork()" in shown


def test_fork_while_another_thread_is_in_an_exchange_does_not_hang_the_child(ns):
    """The child inherits the handle's lock held by a parent's thread that
    does not exist in the child: using or closing the handle there must
    fail at once (EBADF), never wait for that lock."""
    with pn.Handle(netns=ns.path) as h:
        entered = threading.Event()
        leave = threading.Event()
        real = h.socket._exchange_all

        def slow(requests, replies):        # hold the lock until the fork is done
            entered.set()
            leave.wait(30)
            return real(requests, replies)

        h.socket._exchange_all = slow
        worker = threading.Thread(target=h.link_index, args=("lo",))
        worker.start()
        try:
            assert entered.wait(30)

            def child() -> bytes:
                verdict = ebadf_or_what(lambda: h.link_index("lo"))
                h.close()
                return verdict + b" closed"

            assert in_child(child) == b"ebadf closed"
        finally:
            leave.set()
            worker.join(30)


def test_the_smallest_receive_buffer_allowed_runs_every_read(ns, veth):
    """Handle(rcvbuf=MIN_RCVBUF) holds a reply and its ACK: every single
    call and every dump works (a smaller buffer dropped get_link's ACK)."""
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "link", "set", "va", "master", "br0")
    with pn.Handle(netns=ns.path, rcvbuf=_core.MIN_RCVBUF) as h:
        assert {h.get_link(n).name for n in ("lo", "va", "vb", "br0")} == {"lo", "va", "vb", "br0"}
        assert {link.name for link in h.list_links()} == ns.link_names()
        h.list_addresses()
        h.list_routes(table="all")
        h.set_mtu("va", 1400)
    assert ns.link("va")["mtu"] == 1400


def test_a_receive_buffer_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="rcvbuf"):
        pn.Handle(rcvbuf=_core.MIN_RCVBUF - 1)
