"""Every test of test_cni.py that drives the plugin through its ``runtime``
fixture, run again as on a node with the daemon: the runtime executes the
installed C shim, which hands each request to ``pynetlink-cni daemon``
serving in the test's host namespace.  The shim's directory holds no
exec-mode launcher, so a request the daemon did not serve fails rather than
falling back; and the daemon's log must show every request.  (test_cni.py
itself runs the same tests through the shim with no daemon: the fallback.)"""
from __future__ import annotations

import inspect

import pytest

import test_cni
import test_cni_daemon
from test_cni import *  # noqa: F401,F403  (its tests, collected again here)
from test_cni_daemon import DaemonRuntime, shim_dir, sockdir, start_daemon  # noqa: F401

REFERENCE = test_cni.REFERENCE

# Only the tests that run the plugin through ``runtime``: the others (which
# build their own Runtime) would only run test_cni.py's exec mode a second time.
for _name, _test in list(globals().items()):
    if _name.startswith("test_") and inspect.isfunction(_test) \
            and "runtime" not in inspect.signature(_test).parameters:
        del globals()[_name]


@pytest.fixture
def runtime(host, shim_dir, start_daemon):  # noqa: F811  (test_cni's, served by the daemon)
    daemon = start_daemon(host)
    served = DaemonRuntime(host, [shim_dir, REFERENCE], daemon.path)
    yield served
    plugin_calls = served.calls
    assert len(daemon.log_lines(" container=")) >= plugin_calls, daemon.log()
