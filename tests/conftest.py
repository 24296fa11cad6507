"""Fixtures for real-kernel tests.

Every test that touches the network works in scratch network namespaces it
creates (``ip netns add pntest-...``) and removes, also when it fails; a
sweep at the end of the session removes any that a crash left behind.
Kernel state is judged with iproute2 (``ip -j``), independently of our own
decoder.

Kernel-free tests (``python3 -m pytest -m unit``: no root, no capability,
no namespace) carry the ``unit`` mark.  On a module (``pytestmark =
pytest.mark.unit``) it means: those of its tests that take none of the
scratch-namespace fixtures below (``KERNEL_FIXTURES``, directly or through
another fixture).  CI runs ``-m unit`` with every capability dropped, so a
unit test that needs privilege fails there.
"""
from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid

import pytest
from hypothesis import HealthCheck, settings

# Property tests: "ci" (the default) keeps the whole suite near a minute;
# "long" is the thorough run: HYPOTHESIS_PROFILE=long python3 -m pytest
settings.register_profile("ci", max_examples=300, deadline=None, print_blob=True)
settings.register_profile("long", max_examples=20_000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

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


def settled_fds(seconds: float = 5.0) -> int:
    """The open fd count once it stops moving: a thread that has just ended
    may still be dropping its thread-local handle."""
    import gc
    import time
    deadline = time.monotonic() + seconds
    gc.collect()
    last = open_fds()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        gc.collect()
        now = open_fds()
        if now == last:
            return now
        last = now
    return last


def pytest_sessionfinish(session, exitstatus):
    """Remove any scratch namespace of this run that a failed clean-up left
    (only ours: another test run may be going on beside this one)."""
    for name in list(_made):
        sh("ip", "netns", "del", name, check=False)
