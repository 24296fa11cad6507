"""The CNI shim (csrc/shim/, installed as ``pynetlink-cni`` by
``python3 -m pynetlink.cni --install DIR``), executed as a runtime executes
a plugin:

- VERSION: the shim's answer is byte for byte the Python plugin's, for any
  stdin, and no other program is executed;
- with no daemon listening, every command is answered by the Python plugin
  (``pynetlink-cni-exec``) exactly as in exec mode, with the same stdin;
- with a daemon (a fake one here, speaking the protocol of
  pynetlink/cni/wire.py), the request carries the filtered environment and
  the whole stdin, the answer is passed through unchanged, and every way the
  daemon can fail ends in exec mode (nothing answered yet) or in a CNI error
  document (code 11) within the timeout — never a hang.

Every test that runs the installed shim runs twice: with the shim as built
(on x86-64: over rt_nolibc.c, no C library) and, marked slow (CI runs
them), with the shim over the C library (rt_libc.c, what other
architectures get), built here.
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Callable, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import sh
from pynetlink.cni import dispatch, installer, spec
from test_cni import (FAKE_IPAM_SOURCE, PLUGIN, REFERENCE, Runtime, assert_nothing_left, bridge_conf,
                      fake_ipam, host_veths, ipam_calls, make_ns, needs_reference)

MAGIC = b"PNCNI1"
ROOT = pathlib.Path(__file__).resolve().parent.parent
EXEC = PLUGIN + installer.EXEC_SUFFIX
SUPPORTED = list(spec.SUPPORTED_VERSIONS)

needs_shim = pytest.mark.skipif(installer.shim_executable() is None,
                                reason="the shim was not built (python3 setup.py build_ext --inplace)")
pytestmark = needs_shim
unit = pytest.mark.unit         # kernel-free: no root, no namespace (python3 -m pytest -m unit)


# -- the installed plugin ----------------------------------------------------------------------------

def shim_builder():
    """csrc/shim/build_shim.py, as setup.py loads it."""
    import importlib.util
    spec_ = importlib.util.spec_from_file_location("build_shim", ROOT / "csrc" / "shim" / "build_shim.py")
    builder = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(builder)
    return builder


def build_shim(tmp_path_factory, runtime: str) -> str:
    """The shim over rt_<runtime>.c, built in a temporary directory; its path."""
    import sysconfig
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler
    builder = shim_builder()
    compiler = new_compiler()
    customize_compiler(compiler)
    compiler.add_include_dir(sysconfig.get_paths()["include"])
    d = tmp_path_factory.mktemp(f"shim-{runtime}")
    return builder.link(compiler, str(d / "build"), str(d), runtime)


@pytest.fixture(scope="module", params=["as built", pytest.param("libc", marks=pytest.mark.slow)])
def shim(request, tmp_path_factory) -> str:
    """The shim executable: the package's, or one over the C library (what
    other architectures get: with the slow tests, run by CI)."""
    if request.param == "libc":
        return build_shim(tmp_path_factory, "libc")
    return installer.SHIM


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory, shim):
    """A CNI bin directory as ``--install DIR`` writes it (the shim, and the
    Python plugin beside it), with test_cni's fake IPAM plugin."""
    d = tmp_path_factory.mktemp("cni-shim-bin")
    out = subprocess.run([sys.executable, "-m", "pynetlink.cni", "--install", str(d)],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == str(d / PLUGIN)
    if shim != installer.SHIM:
        shutil.copyfile(shim, d / PLUGIN)
    fake = d / "pntest-ipam"
    fake.write_text(FAKE_IPAM_SOURCE.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    return d


@pytest.fixture
def no_daemon(tmp_path) -> dict:
    """The environment naming a socket nobody listens on."""
    return {"PYNETLINK_CNI_SOCKET": str(tmp_path / "no-daemon.sock")}


def base_env(command: str, **extra: str) -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": "pntest-ctr1", "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def run(executable, env: dict, stdin: bytes, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(executable)], input=stdin, env=env, capture_output=True, timeout=timeout)


def outcome(proc: subprocess.CompletedProcess) -> tuple:
    return proc.returncode, proc.stdout, proc.stderr


def error_doc(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 1, proc
    return json.loads(proc.stdout)


@unit
def test_install_writes_the_shim_and_the_python_plugin_beside_it(plugin_dir):
    with open(plugin_dir / PLUGIN, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    with open(plugin_dir / EXEC) as f:
        assert f.readline().startswith(f"#!{sys.executable}")
    assert os.access(plugin_dir / PLUGIN, os.X_OK) and os.access(plugin_dir / EXEC, os.X_OK)


@unit
def test_install_exec_only_writes_the_python_plugin(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pynetlink.cni", "--install", str(tmp_path), "--exec-only"],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == str(tmp_path / PLUGIN)
    assert (tmp_path / PLUGIN).read_text().startswith(f"#!{sys.executable} -IS\n# {PLUGIN}: ")


@unit
def test_install_without_a_shim_writes_the_python_plugin_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(installer, "SHIM", str(tmp_path / "not-built"))
    path = installer.install(str(tmp_path))
    with open(path) as f:
        assert f.readline().startswith("#!")
    assert "no shim" in capsys.readouterr().err


@unit
def test_the_shim_needs_nothing_but_libc(shim):
    """Static (no dynamic section) where libc.a exists, else libc.so.6 only."""
    needed = sh("readelf", "-d", shim).stdout
    libraries = {line.split("[")[1].split("]")[0] for line in needed.splitlines() if "(NEEDED)" in line}
    assert libraries <= {"libc.so.6"}


@unit
def test_the_shim_starts_without_a_c_library_where_built_without_one(tmp_path):
    """Built over rt_nolibc.c (x86-64's default), no C-library start-up
    (its CPU detection costs ~0.5 ms on a virtual machine): the shim's own
    first system call comes right after execve, and none of glibc's
    start-up calls (TLS, brk) is made.  Built over the C library (other
    architectures, PYNETLINK_SHIM_RUNTIME=libc), its start-up shows."""
    trace = tmp_path / "trace"
    subprocess.run(["strace", "-o", str(trace), installer.SHIM], input=b'{"cniVersion": "1.0.0"}',
                   env={"CNI_COMMAND": "VERSION"}, capture_output=True, check=True, timeout=30)
    calls = [line.split("(")[0] for line in trace.read_text().splitlines()[1:]]      # after execve
    libc_start = {"arch_prctl", "set_tid_address", "brk"} & set(calls)
    if shim_builder().default_runtime() == "nolibc":
        assert calls[0] == "rt_sigaction" and not libc_start, calls
    else:
        assert libc_start, calls


# -- VERSION -------------------------------------------------------------------------------------------

def python_version_answer(stdin: bytes) -> tuple:
    """What the Python plugin answers to VERSION: dispatch.run's bytes, exit code."""
    out, code = dispatch.run({"CNI_COMMAND": "VERSION"}, stdin)
    return code, out, b""


def shim_version_answer(plugin_dir, stdin: bytes) -> tuple:
    return outcome(run(plugin_dir / PLUGIN, {"CNI_COMMAND": "VERSION"}, stdin))


def escaped(text: str, draw) -> str:
    """``text`` as a JSON string's body, each character escaped or not."""
    return "".join(f"\\u{ord(c):04{draw(st.sampled_from('xX'))}}" if draw(st.booleans()) else c
                   for c in text)


@st.composite
def version_strings(draw) -> str:
    """A cniVersion value as JSON text: supported, near-miss or any, maybe escaped."""
    version = draw(st.sampled_from(SUPPORTED) | st.sampled_from(SUPPORTED) | st.sampled_from(["0.3.1", "1.1.0 ", "1.0", "", "1.1.0\x00"])
                   | st.text(max_size=8))
    body = escaped(version, draw) if version.isascii() and "\x00" not in version and draw(st.booleans()) \
        else json.dumps(version, ensure_ascii=draw(st.booleans()))[1:-1]
    return '"' + body + '"'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["cniVersion", "name", "type", "ipam"]) | st.text(max_size=6), children, max_size=4),
    max_leaves=12)

whitespace = st.text(alphabet=" \t\n\r", max_size=3)      # JSON's
rarely = st.sampled_from([False] * 4 + [True])      # shrinks to False
odd_whitespace = st.text(alphabet=" \t\x0b\x0c\xa0", min_size=1, max_size=2)   # not JSON's


@st.composite
def configurations(draw) -> bytes:
    """JSON objects with top-level cniVersion keys (none, one, duplicated;
    escaped keys; nested decoys), in odd whitespace and encodings."""
    members = [json.dumps(k) + ":" + json.dumps(v) for k, v in draw(st.dictionaries(
        st.text(max_size=6), json_values, max_size=4)).items()]
    for _ in range(draw(st.sampled_from([1, 1, 2, 0, 1, 3]))):
        key = '"' + (escaped("cniVersion", draw) if draw(st.booleans()) else "cniVersion") + '"'
        value = draw(st.builds(json.dumps, json_values)) if draw(rarely) else draw(version_strings())
        members.insert(draw(st.integers(0, len(members))), key + draw(whitespace) + ":" + draw(whitespace) + value)
    sep = draw(st.sampled_from([",", ", ", ",\n  ", " ,\t"]))
    around = [draw(odd_whitespace if draw(rarely) else whitespace) for _ in range(2)]
    text = around[0] + "{" + sep.join(members) + "}" + around[1]
    encoding = draw(st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"]))
    return text.encode(encoding, errors="surrogatepass")


@st.composite
def damaged(draw, inputs) -> bytes:
    """An input with bytes cut, inserted or replaced."""
    data = bytearray(draw(inputs))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["cut", "insert", "replace"]))
        byte = draw(st.sampled_from(b'{}[]",:\\ \x00\xff\xc3\xed') | st.integers(0, 255))
        if action == "cut":
            del data[at:at + draw(st.integers(1, 4))]
        elif action == "insert":
            data.insert(at, byte)
        elif at < len(data):
            data[at] = byte
    return bytes(data)


OTHER_STDIN = (damaged(configurations()) | st.binary(max_size=64)
               | st.builds(lambda v: json.dumps(v).encode(), json_values))


@pytest.mark.slow
@unit
@settings(deadline=None)          # the count: the hypothesis profile
@given(stdin=configurations())
def test_version_answer_is_the_python_plugins_for_any_configuration(plugin_dir, stdin):
    assert shim_version_answer(plugin_dir, stdin) == python_version_answer(stdin)


@unit
@settings(deadline=None)          # the count: the hypothesis profile
@given(stdin=OTHER_STDIN)
def test_version_answer_is_the_python_plugins_for_any_stdin(plugin_dir, stdin):
    assert shim_version_answer(plugin_dir, stdin) == python_version_answer(stdin)


@pytest.mark.parametrize("stdin", [
    b'{"cniVersion": "1.0.0", "name": "' + b"x" * (4 << 20) + b'"}',
    b'{"a": [' + b'{"cniVersion": "0.4.0"},' * 50000 + b'1], "cniVersion": "0.4.0"}',
    b'{"cniVersion": "0.4.0", "n": ' + b"[" * 150 + b"]" * 150 + b"}",
    b'{"cniVersion": "0.4.0", "big": 1' + b"0" * 600 + b"}",
], ids=["4MiB string", "many nested decoys", "deep nesting", "long integer"])
@unit
def test_version_answer_is_the_python_plugins_for_large_inputs(plugin_dir, stdin):
    assert shim_version_answer(plugin_dir, stdin) == python_version_answer(stdin)


@pytest.mark.parametrize("stdin", [
    b"[" * 5000 + b"]" * 5000,
    b'{"cniVersion": "1.0.0", "n": ' + b"{\"a\":" * 300 + b"1" + b"}" * 300 + b"}",
    b'{"cniVersion": "1.0.0", "n": 1' + b"0" * 5000 + b"}",
    json.dumps({"cniVersion": "0.4.0"}).encode("utf-16"),
    json.dumps({"cniVersion": "0.4.0"}).encode("utf-32-be"),
    b" " * (spec.MAX_STDIN + 1),
], ids=["nesting beyond the recursion limit", "deep objects", "5000-digit integer", "UTF-16", "UTF-32",
        "over MAX_STDIN"])
@unit
def test_version_inputs_the_shim_leaves_to_python_are_answered_as_python_does(plugin_dir, stdin):
    """Deep nesting, long integers and UTF-16/32 depend on the interpreter:
    the shim execs the Python plugin with the same stdin; over MAX_STDIN it
    prints the Python plugin's own error."""
    env = {"CNI_COMMAND": "VERSION"}
    assert outcome(run(plugin_dir / PLUGIN, env, stdin)) == outcome(run(plugin_dir / EXEC, env, stdin))


@unit
def test_version_with_a_terminal_on_stdin_reads_nothing(plugin_dir):
    """As the Python plugin: VERSION from a shell, stdin a terminal, answers at once."""
    import pty
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run([str(plugin_dir / PLUGIN)], stdin=terminal, env={"CNI_COMMAND": "VERSION"},
                              capture_output=True, timeout=10)
    finally:
        os.close(controller)
        os.close(terminal)
    assert outcome(proc) == python_version_answer(b"")


@unit
def test_version_with_stdin_closed_is_answered_as_the_python_plugin_does(plugin_dir):
    def closed_stdin(executable) -> tuple:
        return outcome(subprocess.run([str(executable)], stdin=subprocess.DEVNULL, capture_output=True,
                                      env={"CNI_COMMAND": "VERSION"}, preexec_fn=lambda: os.close(0),
                                      timeout=30))
    assert closed_stdin(plugin_dir / PLUGIN) == closed_stdin(plugin_dir / EXEC) == python_version_answer(b"")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_version_executes_no_other_program(plugin_dir, tmp_path):
    trace = tmp_path / "trace"
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve,connect", "-o", str(trace),
                           str(plugin_dir / PLUGIN)], input=b'{"cniVersion": "1.0.0"}',
                          env={"CNI_COMMAND": "VERSION"}, capture_output=True, timeout=30)
    assert proc.returncode == 0
    calls = [line for line in trace.read_text().splitlines() if "execve(" in line or "connect(" in line]
    assert len(calls) == 1 and str(plugin_dir / PLUGIN) in calls[0], calls


# -- no daemon: exec mode ----------------------------------------------------------------------------------

def make_refusing_socket(path) -> None:
    """A socket file nobody listens on (connect: ECONNREFUSED)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


@unit
@pytest.mark.parametrize("kind", ["missing", "refused", "not a socket"])
def test_without_a_daemon_the_python_plugin_answers(plugin_dir, tmp_path, kind):
    path = tmp_path / "cni.sock"
    if kind == "refused":
        make_refusing_socket(path)
    elif kind == "not a socket":
        path.write_text("")
    env = base_env("DEL", CNI_CONTAINERID=None, PYNETLINK_CNI_SOCKET=str(path))
    stdin = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": PLUGIN}).encode()
    shim = run(plugin_dir / PLUGIN, env, stdin)
    assert outcome(shim) == outcome(run(plugin_dir / EXEC, env, stdin))
    assert error_doc(shim)["code"] == spec.E_INVALID_ENV


@pytest.fixture
def runtime(make_ns, plugin_dir):
    return Runtime(make_ns(), [str(plugin_dir), REFERENCE])


def test_without_a_daemon_loopback_add_check_del_run_in_exec_mode(runtime, make_ns, no_daemon):
    container = make_ns()
    conf = {"cniVersion": "1.1.0", "name": "pntest-lo", "type": PLUGIN, "loopback": True}
    result = runtime.ok("ADD", conf, netns=container.path, env=no_daemon)
    assert "UP" in container.link("lo")["flags"]
    runtime.ok("CHECK", dict(conf, prevResult=result), netns=container.path, env=no_daemon)
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, env=no_daemon)
    assert "UP" not in container.link("lo")["flags"]


def test_without_a_daemon_bridge_add_check_del_run_in_exec_mode(runtime, make_ns, no_daemon, tmp_path):
    container = make_ns()
    conf = bridge_conf(PLUGIN, tmp_path, ipam=fake_ipam(tmp_path))
    result = runtime.ok("ADD", conf, netns=container.path, env=no_daemon)
    assert [ip["address"] for ip in result["ips"]] == ["192.0.2.7/24"]
    assert len(host_veths(runtime.host)) == 1 and "eth0" in container.link_names()
    runtime.ok("CHECK", dict(conf, prevResult=result), netns=container.path, env=no_daemon)
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, env=no_daemon)
    assert [c["command"] for c in ipam_calls(tmp_path)] == ["ADD", "CHECK", "DEL"]
    assert container.link_names() == {"lo"}


@needs_reference
def test_without_a_daemon_host_local_add_del_leaves_nothing(runtime, make_ns, no_daemon, tmp_path):
    container = make_ns()
    conf = bridge_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path, env=no_daemon)
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, env=no_daemon)
    assert_nothing_left(runtime.host, container, tmp_path)


# -- a daemon -------------------------------------------------------------------------------------------------

def recv_exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"EOF after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_request(conn: socket.socket) -> tuple:
    """(environment dict, stdin bytes) of one request, as protocol.md frames it."""
    assert recv_exactly(conn, 6) == MAGIC
    env_len, = struct.unpack(">I", recv_exactly(conn, 4))
    entries = recv_exactly(conn, env_len)
    assert entries == b"" or entries.endswith(b"\0")
    env = dict(e.decode().split("=", 1) for e in entries.split(b"\0")[:-1])
    stdin_len, = struct.unpack(">I", recv_exactly(conn, 4))
    return env, recv_exactly(conn, stdin_len)


def response(status: int, stdout: bytes, stderr: bytes = b"") -> bytes:
    return (MAGIC + struct.pack(">I", status) + struct.pack(">I", len(stdout)) + stdout
            + struct.pack(">I", len(stderr)) + stderr)


class FakeDaemon:
    """A Unix socket server answering each connection with ``handler(conn)``
    in a thread; the requests it read are in ``requests``."""

    def __init__(self, path: str, handler: Callable[["FakeDaemon", socket.socket], None]):
        self.path, self.handler = path, handler
        self.requests: list = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        deadline = time.monotonic() + 120
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(30)
                try:
                    self.handler(self, conn)
                except (OSError, EOFError):
                    pass

    def read(self, conn: socket.socket) -> None:
        self.requests.append(read_request(conn))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def daemon(tmp_path):
    """Start a FakeDaemon with a handler; stopped after the test."""
    started: list = []

    def start(handler) -> FakeDaemon:
        started.append(FakeDaemon(str(tmp_path / "cni.sock"), handler))
        return started[-1]

    yield start
    for d in started:
        d.stop()


CONF = json.dumps({"cniVersion": "1.0.0", "name": "pntest-net", "type": PLUGIN, "loopback": True}).encode()


def daemon_env(d: FakeDaemon, command: str = "ADD", **extra: str) -> dict:
    return base_env(command, PYNETLINK_CNI_SOCKET=d.path, CNI_NETNS="/run/netns/pntest-none", **extra)


def answering(status: int, stdout: bytes, stderr: bytes = b""):
    def handler(d: FakeDaemon, conn: socket.socket) -> None:
        d.read(conn)
        conn.sendall(response(status, stdout, stderr))
    return handler


@unit
def test_request_carries_the_cni_environment_and_the_whole_stdin(plugin_dir, daemon):
    d = daemon(answering(0, b"{}\n"))
    env = daemon_env(d, CNI_ARGS="IgnoreUnknown=1", PYNETLINK_DEBUG="1", HOME="/root", LD_PRELOAD="",
                     KUBERNETES_SERVICE_HOST="x", PATHX="no")
    stdin = CONF[:-1] + b', "pad": "' + b"p" * (2 << 20) + b'"}'
    assert run(plugin_dir / PLUGIN, env, stdin).returncode == 0
    forwarded = {k: v for k, v in env.items() if k.startswith(("CNI_", "PYNETLINK_")) or k == "PATH"}
    assert d.requests == [(forwarded, stdin)]


@unit
def test_response_is_passed_through_unchanged(plugin_dir, daemon):
    stdout, stderr = b'{"cniVersion": "1.0.0", "odd": "\xff bytes"}\n', b"a warning\n"
    d = daemon(answering(7, stdout, stderr))
    assert outcome(run(plugin_dir / PLUGIN, daemon_env(d), CONF)) == (7, stdout, stderr)


@unit
def test_empty_response_and_stdin_pass_through(plugin_dir, daemon):
    d = daemon(answering(0, b""))
    assert outcome(run(plugin_dir / PLUGIN, daemon_env(d, "DEL"), b"")) == (0, b"", b"")
    assert d.requests[0][1] == b""


@unit
def test_daemon_refusal_is_the_clients_answer(plugin_dir, daemon):
    refusal = dispatch.error_answer(spec.CNIError(spec.E_KERNEL, "permission denied: only root (or an "
                                                  "allowed uid) may use the pynetlink CNI daemon"), "ADD", CONF)
    d = daemon(answering(1, refusal))
    assert outcome(run(plugin_dir / PLUGIN, daemon_env(d), CONF)) == (1, refusal, b"")


def closing_after(n: int):
    """A daemon that reads n bytes of the request, then dies (closes)."""
    def handler(d: FakeDaemon, conn: socket.socket) -> None:
        recv_exactly(conn, n)
    return handler


@unit
@pytest.mark.parametrize("n", [0, 6, 40], ids=["at accept", "after the magic", "mid-environment"])
def test_daemon_gone_before_answering_means_exec_mode(plugin_dir, daemon, n):
    d = daemon(closing_after(n))
    env = daemon_env(d, "DEL", CNI_CONTAINERID=None)
    shim = run(plugin_dir / PLUGIN, env, CONF)
    assert outcome(shim) == outcome(run(plugin_dir / EXEC, env, CONF))
    assert error_doc(shim)["code"] == spec.E_INVALID_ENV and d.connections == 1


@unit
def test_daemon_gone_mid_stdin_means_exec_mode_with_the_whole_stdin(plugin_dir, daemon):
    d = daemon(closing_after(4096))
    env = daemon_env(d, "DEL", CNI_CONTAINERID=None)
    stdin = CONF[:-1] + b', "pad": "' + b"p" * (1 << 20) + b'"}'
    shim = run(plugin_dir / PLUGIN, env, stdin)
    assert outcome(shim) == outcome(run(plugin_dir / EXEC, env, stdin))
    assert error_doc(shim)["code"] == spec.E_INVALID_ENV


@unit
def test_daemon_that_reads_and_closes_means_exec_mode(plugin_dir, daemon):
    d = daemon(FakeDaemon.read)
    env = daemon_env(d, "DEL", CNI_CONTAINERID=None)
    assert outcome(run(plugin_dir / PLUGIN, env, CONF)) == outcome(run(plugin_dir / EXEC, env, CONF))
    assert len(d.requests) == 1


def silent(d: FakeDaemon, conn: socket.socket) -> None:
    d.read(conn)
    d.stopping.wait(30)


@pytest.mark.parametrize("timeout", ["0.5", " +5e-1"])      # as strtod reads seconds
@unit
def test_daemon_that_never_answers_is_error_11_within_the_timeout(plugin_dir, daemon, timeout):
    d = daemon(silent)
    start = time.monotonic()
    proc = run(plugin_dir / PLUGIN, daemon_env(d, PYNETLINK_CNI_TIMEOUT=timeout), CONF, timeout=20)
    elapsed = time.monotonic() - start
    doc = error_doc(proc)
    assert (doc["cniVersion"], doc["code"]) == ("1.0.0", spec.E_TRY_AGAIN) and "0.5 s" in doc["msg"]
    assert 0.5 <= elapsed < 15          # its timeout, not the silent daemon's 30 s, ended the wait


def replying(raw: bytes):
    """A daemon that reads the request and sends ``raw`` back."""
    def handler(d: FakeDaemon, conn: socket.socket) -> None:
        d.read(conn)
        conn.sendall(raw)
    return handler


def answer_error(plugin_dir, daemon, raw: bytes) -> dict:
    proc = run(plugin_dir / PLUGIN, daemon_env(daemon(replying(raw))), CONF)
    assert proc.stdout.count(b"\n") == 1, proc
    doc = error_doc(proc)
    assert doc["code"] == spec.E_TRY_AGAIN
    return doc


@pytest.mark.parametrize("raw", [
    response(0, b'{"cniVersion": "1.0.0"}\n')[:-5],
    response(0, b"x")[:7],
    response(0, b"x")[:10],
], ids=["mid-stdout", "mid-status", "before stdout_len"])
@unit
def test_truncated_response_is_error_11(plugin_dir, daemon, raw):
    assert "cut short" in answer_error(plugin_dir, daemon, raw)["msg"]


@pytest.mark.parametrize("raw", [
    b"PNCNI2" + response(0, b"")[6:],
    MAGIC + struct.pack(">I", 256) + response(0, b"")[10:],
    MAGIC + struct.pack(">II", 0, 0xFFFFFFFF),
], ids=["bad magic", "status over 255", "stdout_len over the limit"])
@unit
def test_malformed_response_is_error_11(plugin_dir, daemon, raw):
    assert "could not be read" in answer_error(plugin_dir, daemon, raw)["msg"]


@unit
def test_stdin_over_max_stdin_is_the_python_plugins_error_and_no_request(plugin_dir, daemon):
    d = daemon(answering(0, b""))
    stdin = b" " * (spec.MAX_STDIN + 1)
    env = daemon_env(d)
    shim = run(plugin_dir / PLUGIN, env, stdin)
    assert outcome(shim) == outcome(run(plugin_dir / EXEC, base_env("ADD"), stdin))
    assert error_doc(shim)["code"] == spec.E_DECODE and d.connections == 0


@unit
def test_environment_over_the_protocols_limit_is_error_11_and_no_request(plugin_dir, daemon):
    d = daemon(answering(0, b""))
    proc = run(plugin_dir / PLUGIN, daemon_env(d, PYNETLINK_PAD="x" * 70000), CONF)
    doc = error_doc(proc)
    assert doc["code"] == spec.E_TRY_AGAIN and "65536" in doc["msg"] and d.connections == 0


@unit
def test_a_stdout_closed_by_the_runtime_does_not_kill_the_shim(plugin_dir, daemon):
    """SIGPIPE is ignored: the exit status is still the daemon's."""
    d = daemon(answering(3, b"x" * (1 << 20)))
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([str(plugin_dir / PLUGIN)], input=CONF, stdout=w, stderr=subprocess.PIPE,
                              env=daemon_env(d), timeout=30)
    finally:
        os.close(w)
    assert proc.returncode == 3


@unit
def test_error_documents_use_the_configurations_version(plugin_dir, daemon):
    d = daemon(silent)
    conf = json.dumps({"cniVersion": "0.4.0", "name": "n", "type": PLUGIN}).encode()
    proc = run(plugin_dir / PLUGIN, daemon_env(d, PYNETLINK_CNI_TIMEOUT="0.2"), conf, timeout=20)
    assert error_doc(proc)["cniVersion"] == "0.4.0"


@unit
def test_an_unknown_version_reports_errors_in_the_latest(plugin_dir, daemon):
    d = daemon(silent)
    proc = run(plugin_dir / PLUGIN, daemon_env(d, PYNETLINK_CNI_TIMEOUT="0.2"), b"{nope", timeout=20)
    assert error_doc(proc)["cniVersion"] == spec.LATEST


@unit
def test_missing_exec_plugin_is_error_11(tmp_path, no_daemon):
    lonely = tmp_path / PLUGIN
    shutil.copy(installer.SHIM, lonely)
    doc = error_doc(run(lonely, base_env("ADD", **no_daemon), CONF))
    assert doc["code"] == spec.E_TRY_AGAIN and doc["details"].endswith(EXEC)


@unit
def test_installer_arguments_go_to_the_python_plugin(plugin_dir, tmp_path):
    proc = subprocess.run([str(plugin_dir / PLUGIN), "--install", str(tmp_path), "--exec-only"],
                          capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == str(tmp_path / PLUGIN) and (tmp_path / EXEC).exists()

