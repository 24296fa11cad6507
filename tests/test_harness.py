"""The suite's own harness (tests/conftest.py): a test cannot hang the run,
and a run cannot leave a namespace behind, even when it is killed.  Each
test runs pytest on a small test file of its own, with this conftest loaded
as a plugin (``-p conftest``)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import PRIVATE_NS_ENV

pytestmark = pytest.mark.slow      # left out of the README command; .ci/run runs it

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def inner_pytest(tmp_path, source: str, *options: str, private: bool = False,
                 seconds: float = 120) -> subprocess.CompletedProcess:
    """Run pytest on ``source`` (a test module) with our conftest as a
    plugin; ``private``: let it make its own private namespace, as the
    README's command does."""
    test = tmp_path / "test_inner.py"
    test.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, ROOT]))
    env.pop(PRIVATE_NS_ENV, None) if private else env.update({PRIVATE_NS_ENV: "0"})
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "conftest", "--rootdir", str(tmp_path), *options, str(test)],
                          capture_output=True, text=True, timeout=seconds, cwd=tmp_path, env=env)


@pytest.mark.unit
def test_a_test_past_its_time_limit_fails_saying_so_and_the_run_goes_on(tmp_path):
    """The limit of a test's mark, or else of ``--test-timeout``, fails it
    with a message naming the limit; the next test runs."""
    started = time.monotonic()
    done = inner_pytest(tmp_path, """
        import time
        import pytest

        @pytest.mark.time_limit(1)
        def test_marked():
            time.sleep(60)

        def test_unmarked():
            time.sleep(60)

        def test_after():
            pass
    """, "--test-timeout", "2")
    assert time.monotonic() - started < 60, "the limits did not end the sleeps"
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("test_marked still running after its time limit of 1 s" in done.stdout,
            "test_unmarked still running after its time limit of 2 s" in done.stdout,
            "2 failed, 1 passed" in done.stdout) == (True, True, True), done.stdout


@pytest.mark.unit
def test_a_test_that_takes_the_alarm_for_itself_is_ended_by_the_backstop(tmp_path):
    """A test that ignores SIGALRM cannot be failed by it: faulthandler ends
    the run, showing where every thread was."""
    done = inner_pytest(tmp_path, """
        import signal
        import time

        def test_sleeps_with_sigalrm_ignored():
            signal.signal(signal.SIGALRM, signal.SIG_IGN)
            time.sleep(60)
    """, "--test-timeout", "1", "--test-timeout-backstop", "1")
    assert done.returncode != 0
    assert "Timeout (0:00:02)!" in done.stderr and "test_sleeps_with_sigalrm_ignored" in done.stderr, \
        done.stdout + done.stderr


def netns_names() -> set:
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def test_a_killed_run_in_its_own_namespace_leaves_no_namespace(tmp_path):
    """The README's command, run from here: it lives in a network namespace
    that is not the one it was started in, and once killed (SIGKILL: no
    clean-up at all) while a test holds a scratch namespace, that name is
    nowhere on this side."""
    made, where = tmp_path / "made", tmp_path / "where"
    done = inner_pytest(tmp_path, f"""
        import os
        import signal

        def test_killed_holding_a_namespace(ns):
            open({str(where)!r}, "w").write(os.readlink("/proc/self/ns/net"))
            open({str(made)!r}, "w").write(ns.name)
            os.kill(os.getpid(), signal.SIGKILL)
    """, private=True)
    name = made.read_text()
    assert done.returncode == -9 and name.startswith("pntest-"), done.stdout + done.stderr
    assert where.read_text() != os.readlink("/proc/self/ns/net")
    assert name not in netns_names()
