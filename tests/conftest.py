"""Fixtures for real-kernel tests.

Every test that touches the network works in scratch network namespaces it
creates (``ip netns add pntest-...``) and removes, also when it fails; a
sweep at the end of the session removes any that a crash left behind.
Kernel state is judged with iproute2 (``ip -j``), independently of our own
decoder.

With the privilege to make namespaces, a run re-executes itself once under
``unshare --net --mount``: the whole run lives in a private network
namespace with a private tmpfs on /run/netns, so even a run killed with
SIGKILL leaves no ``pntest-*`` namespace (nor any link) on the machine
(``PYNETLINK_TEST_PRIVATE_NS=0`` runs in the caller's namespaces instead).

Every test has a time limit (``--test-timeout``, default 120 s;
``@pytest.mark.time_limit(SECONDS)`` for one test): SIGALRM fails the test
with a clear message, and a faulthandler watchdog 30 s later dumps every
thread's stack and ends the run if even that could not stop it.

Kernel-free tests (``python3 -m pytest -m unit``: no root, no capability,
no namespace) carry the ``unit`` mark.  On a module (``pytestmark =
pytest.mark.unit``) it means: those of its tests that take none of the
scratch-namespace fixtures below (``KERNEL_FIXTURES``, directly or through
another fixture).  CI runs ``-m unit`` with every capability dropped, so a
unit test that needs privilege fails there.
"""
from __future__ import annotations

import faulthandler
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid

import pytest
from hypothesis import HealthCheck, settings

# Property tests: "quick" (the default: the README's command) keeps the whole
# suite near three minutes; "ci" is CI's kernel-free run (HYPOTHESIS_PROFILE=ci,
# .ci/run); "long" is the thorough run: HYPOTHESIS_PROFILE=long python3 -m pytest
settings.register_profile("quick", max_examples=100, deadline=None, print_blob=True)
settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=20_000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

PREFIX = "pntest-"
KERNEL_FIXTURES = frozenset({"ns", "ns2", "handle", "veth", "sleeper"})
_made: set = set()          # namespaces this test process created and not yet removed


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    # surrogateescape: interface names are bytes, and need not be UTF-8
    return subprocess.run(args, check=check, capture_output=True, text=True,
                          errors="surrogateescape", timeout=60)


class Netns:
    """A scratch network namespace, read with ``ip -n NAME -j``."""

    def __init__(self) -> None:
        self.name = PREFIX + uuid.uuid4().hex[:12]
        sh("ip", "netns", "add", self.name)
        _made.add(self.name)
        self.path = f"/run/netns/{self.name}"

    def remove(self) -> None:
        sh("ip", "netns", "del", self.name, check=False)
        _made.discard(self.name)

    def ip(self, *args: str):
        """Run ``ip -n NAME -j ARGS``; the decoded JSON (or None if empty)."""
        out = sh("ip", "-n", self.name, "-j", *args).stdout
        # strict=False: iproute2 writes control characters in names unescaped
        return json.loads(out, strict=False) if out.strip() else None

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command inside the namespace (``ip netns exec``)."""
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def link(self, name: str) -> dict:
        """``ip -d link show dev NAME`` as a dict; KeyError if it is absent."""
        for link in self.ip("-d", "link", "show") or []:
            if link["ifname"] == name:
                return link
        raise KeyError(f"no link {name!r} in {self.name}")

    def link_names(self) -> set:
        return {link["ifname"] for link in self.ip("link", "show") or []}

    def addresses(self, name: str) -> list:
        """``ip addr show dev NAME``: its addr_info list."""
        return self.ip("addr", "show", "dev", name)[0]["addr_info"]

    def routes(self, family: str = "-4") -> list:
        """``ip -d route show``: with type, protocol and scope spelled out."""
        return self.ip("-d", family, "route", "show") or []

    def __repr__(self) -> str:
        return f"<Netns {self.name}>"


def _scratch_netns():
    n = Netns()
    try:
        yield n
    finally:
        n.remove()


@pytest.fixture
def ns():
    """A fresh network namespace, removed after the test."""
    yield from _scratch_netns()


@pytest.fixture
def ns2():
    """A second fresh network namespace."""
    yield from _scratch_netns()


@pytest.fixture
def handle(ns):
    """A pynetlink Handle bound to ``ns`` by path."""
    import pynetlink as pn

    with pn.Handle(netns=ns.path) as h:
        yield h


@pytest.fixture
def veth(ns, handle):
    """A veth pair (va <-> vb), both down, in ``ns`` (made with iproute2)."""
    sh("ip", "-n", ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
    return "va", "vb"


@pytest.fixture
def sleeper(ns2):
    """A process living in ``ns2``: (pid); killed after the test."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns2.name, "sleep", "120"])
    try:
        # wait until the child has entered the namespace
        target = os.stat(ns2.path).st_ino
        for _ in range(500):
            try:
                if os.stat(f"/proc/{proc.pid}/ns/net").st_ino == target:
                    break
            except FileNotFoundError:
                pass
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("sleeper never entered its namespace")
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=10)


def in_thread(fn, *args, netns_path=None):
    """Run fn(*args) in a new thread (inside ``netns_path`` if given) and
    return its result or raise its exception.  The thread ends, so its
    namespace switch never leaks into the test's own thread."""
    import pynetlink as pn

    box = {}

    def body():
        try:
            if netns_path is not None:
                pn.netns.enter(netns_path)
            box["result"] = fn(*args)
        except BaseException as e:  # handed to the caller
            box["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join(timeout=120)
    if t.is_alive():
        raise TimeoutError("thread did not finish")
    if "error" in box:
        raise box["error"]
    return box.get("result")


def _kernel_fixtures(item: pytest.Item) -> set:
    """The scratch-namespace fixtures the test uses, directly or not."""
    return KERNEL_FIXTURES & set(getattr(item, "fixturenames", ()))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Hand a module's ``unit`` mark down to those of its tests that take no
    scratch-namespace fixture (before ``-m`` selects), and refuse a test
    marked ``unit`` itself that takes one."""
    modules = {}
    for item in items:
        module = item.getparent(pytest.Module)
        if module is not None:
            modules.setdefault(module, []).append(item)
    for module, module_items in modules.items():
        marks = [m for m in module.own_markers if m.name == "unit"]
        for item in module_items:
            uses = _kernel_fixtures(item)
            if uses and any(m.name == "unit" for m in item.own_markers):
                raise pytest.UsageError(f"{item.nodeid} is marked unit but uses {sorted(uses)}")
            if marks and not uses:
                item.add_marker("unit")
        for mark in marks:
            module.own_markers.remove(mark)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With PYNETLINK_NO_SKIP=1 (CI sets it) a skipped test fails: CI
    installs everything the tests use, so a skip there hides a test that
    did not run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") \
            and os.environ.get("PYNETLINK_NO_SKIP") == "1":
        report.outcome = "failed"
        report.longrepr = f"skipped, but PYNETLINK_NO_SKIP=1: {report.longrepr}"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(seconds: float = 5.0, samples: int = 3) -> int:
    """The open fd count once it stops moving (the same in ``samples``
    readings 20 ms apart): a thread that has just ended, in this test or
    an earlier one, may still be dropping its thread-local handle."""
    import gc
    import time
    deadline = time.monotonic() + seconds
    gc.collect()
    last, same = open_fds(), 1
    while same < samples and time.monotonic() < deadline:
        time.sleep(0.02)
        gc.collect()
        now = open_fds()
        same = same + 1 if now == last else 1
        last = now
    return last


THREAD_GRACE = 10.0         # seconds a test's threads get to end after it


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    """Fail a test that leaves a thread of its own running (bounded join):
    such a thread would go on acting, and opening fds, during later tests."""
    import time
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE
    for t in set(threading.enumerate()) - before:
        if not t.daemon:
            t.join(max(0.0, deadline - time.monotonic()))
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive() and not t.daemon]
    assert not left, f"threads still running {THREAD_GRACE:g} s after the test: {left}"


# -- the whole run in a private network + mount namespace -------------------------------------

PRIVATE_NS_ENV = "PYNETLINK_TEST_PRIVATE_NS"    # "1": inside one already; "0": never make one
CAP_SYS_ADMIN = 21                              # capability(7): unshare(CLONE_NEWNS|CLONE_NEWNET)
# Inside the new namespaces, before pytest runs again: every mount private (unshare's
# --propagation private), a tmpfs of our own on /run/netns where `ip netns add` puts its names.
PRIVATE_SETUP = 'mkdir -p /run/netns && mount -t tmpfs -o mode=0755 pntest /run/netns && exec "$@"'


def _may_make_namespaces() -> bool:
    """CAP_SYS_ADMIN in the effective set (CI's unprivileged run has none)."""
    with open("/proc/self/status") as f:
        caps = next(line for line in f if line.startswith("CapEff:"))
    return bool(int(caps.split()[1], 16) >> CAP_SYS_ADMIN & 1)


def _pytest_command() -> "list | None":
    """The command line that started this pytest, to run again; None when
    pytest runs inside another program (pytest.main), which must not be
    replaced."""
    if not (os.path.basename(sys.argv[0]) in ("pytest", "py.test")
            or sys.argv[0].endswith(os.path.join("pytest", "__main__.py"))):
        return None
    orig_argv = getattr(sys, "orig_argv", None)     # Python 3.10+: keeps -X/-W options too
    if orig_argv:
        return [sys.executable, *orig_argv[1:]]
    return [sys.executable, "-m", "pytest", *sys.argv[1:]]


def _private_namespace_command() -> "list | None":
    """``unshare`` running this pytest again in its own network + mount
    namespace, or None where that is not wanted or not possible."""
    if os.environ.get(PRIVATE_NS_ENV) in ("0", "1") or not _may_make_namespaces():
        return None
    unshare, command = shutil.which("unshare"), _pytest_command()
    if unshare is None or command is None:
        return None
    probe = subprocess.run([unshare, "--net", "--mount", "true"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        return None
    return [unshare, "--net", "--mount", "--propagation", "private", "--",
            "sh", "-c", PRIVATE_SETUP, "pntest-private", *command]


# A copy of the terminal's stderr, made while pytest's capture is suspended: the
# backstop's dump must reach the terminal, not a capture file that dies with the process.
_REAL_STDERR = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Re-execute the run inside a private network + mount namespace (see
    the module docstring), before anything is collected or printed; pytest
    has its output capture suspended here, so the new process writes to
    the real stdout and stderr."""
    command = _private_namespace_command()
    if command is None:
        config.stash[_REAL_STDERR] = os.dup(2)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.environ[PRIVATE_NS_ENV] = "1"
    os.execv(command[0], command)


# -- a time limit for every test ------------------------------------------------------------------

DEFAULT_TIMEOUT = 120.0
BACKSTOP_GRACE = 30.0       # after the limit: dump every thread's stack and end the run


def pytest_addoption(parser):
    parser.addoption("--test-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help="fail a test that runs longer (setup, call and teardown; 0: no limit; "
                          f"default {DEFAULT_TIMEOUT:g})")
    parser.addoption("--test-timeout-backstop", type=float, default=BACKSTOP_GRACE, metavar="SECONDS",
                     help="this long after a test's limit, if the test is still running (its own "
                          "SIGALRM use disarmed the limit, or it is stuck in C), dump every "
                          f"thread's stack and end the run (default {BACKSTOP_GRACE:g})")


class TimeLimitExceeded(pytest.fail.Exception):
    """The per-test time limit ran out (a BaseException, as pytest.fail's:
    a test's ``except Exception`` cannot swallow it)."""


def _time_limit(item: pytest.Item) -> float:
    mark = item.get_closest_marker("time_limit")
    return float(mark.args[0]) if mark else item.config.getoption("--test-timeout")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Arm SIGALRM (ITIMER_REAL) for the test's setup, call and teardown;
    a test that installs its own SIGALRM handler or timer disarms it, and
    is still covered by the faulthandler backstop."""
    limit = _time_limit(item)
    if limit <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise TimeLimitExceeded(f"{item.nodeid} still running after its time limit of {limit:g} s "
                           "(--test-timeout, or @pytest.mark.time_limit(SECONDS))", pytrace=True)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, limit)
    backstop = item.config.getoption("--test-timeout-backstop")
    faulthandler.dump_traceback_later(limit + backstop, exit=True,
                                      file=item.config.stash[_REAL_STDERR])
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pytest_sessionfinish(session, exitstatus):
    """Remove any scratch namespace of this run that a failed clean-up left
    (only ours: another test run may be going on beside this one)."""
    for name in list(_made):
        sh("ip", "netns", "del", name, check=False)
