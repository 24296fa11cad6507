"""``pynetlink-cni daemon``: the resident plugin, driven over its socket by the
installed C shim (and by wire.py's client), beside exec mode (the installed
``pynetlink-cni`` executable, run as a runtime runs it).  The daemon runs
as a subprocess inside a scratch "host" namespace (``ip netns exec``), on a
socket in a temporary directory; containers are scratch namespaces; IPAM is
the reference host-local (on temporary data directories) or test plugins."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import pytest

from conftest import Netns, sh
from pynetlink.cni import daemon as cni_daemon
from pynetlink.cni import dispatch, spec, wire
from pynetlink.cni.installer import shim_executable
import test_cni
from test_cni import (CONTAINER_SYSCTLS, HOST_SYSCTLS, PLUGIN, REFERENCE, Outcome, Runtime, allocations,
                      assert_nothing_left, assert_same_state, bridge_conf, fake_ipam, host_veths,
                      ipam_calls, needs_reference, normalized_result, validate_result, wait_until)

# test_cni's fixtures: scratch namespaces, the installed plugin and its test IPAM plugin
make_ns, host, container, plugin_dir = test_cni.make_ns, test_cni.host, test_cni.container, test_cni.plugin_dir

SLOW_IPAM = "pntest-slow-ipam"
SLOW_SECONDS = 2.0
SLOW_IPAM_SOURCE = f"""#!/bin/sh
# host-local, with ADD held back {SLOW_SECONDS} s (a request surely in flight meanwhile)
if [ "$CNI_COMMAND" = ADD ]; then echo $$ >> "$0.pids"; sleep {SLOW_SECONDS}; fi
exec {REFERENCE}/host-local
"""
NOBODY = 65534


# -- the daemon as a subprocess ------------------------------------------------------------------

class Resident:
    """``pynetlink-cni daemon`` in the namespace ``host``, on ``path``; its
    stderr (the log) in a file."""

    def __init__(self, host: Netns, path: str, *args: str, prefix: tuple = (),
                 program: tuple = (sys.executable, "-m", "pynetlink.cni")):
        self.host, self.path = host, path
        self.log_path = os.path.join(os.path.dirname(os.path.dirname(path)), f"log{time.monotonic_ns()}")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", host.name, *prefix, *program, "daemon", *args], stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def wait_ready(self, seconds: float = 20.0) -> "Resident":
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                wire.call({"CNI_COMMAND": "VERSION"}, b"", self.path, timeout=5)
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the daemon did not answer: {self.log()}")

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def log_lines(self, needle: str) -> list:
        return [line for line in self.log().splitlines() if needle in line]

    def stop(self, signum: int = signal.SIGTERM, seconds: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
        try:
            return self.proc.wait(seconds)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise


@pytest.fixture
def sockdir():
    """A short temporary directory (socket paths are limited to 107 bytes): DIR/run/cni.sock."""
    d = tempfile.mkdtemp(prefix="pncni-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def start_daemon(sockdir):
    """start(host, *args): a daemon, answering, stopped (SIGTERM, then SIGKILL) after the test."""
    started = []

    def start(host: Netns, *args: str, ready: bool = True, **kw) -> Resident:
        path = os.path.join(sockdir, "run", "cni.sock")
        d = Resident(host, path, *(args or ("--socket", path)), **kw)
        started.append(d)
        return d.wait_ready() if ready else d

    yield start
    for d in started:
        if d.proc.poll() is None:
            try:
                d.stop()
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def daemon(start_daemon, host):
    return start_daemon(host)


@pytest.fixture(scope="module")
def slow_bin(tmp_path_factory):
    """A CNI bin directory with SLOW_IPAM (host-local whose ADD takes SLOW_SECONDS)."""
    d = tmp_path_factory.mktemp("cni-slow")
    (d / SLOW_IPAM).write_text(SLOW_IPAM_SOURCE)
    (d / SLOW_IPAM).chmod(0o755)
    return str(d)


@pytest.fixture(scope="module")
def shim_dir(tmp_path_factory, plugin_dir):
    """A CNI bin directory holding the shim as ``pynetlink-cni`` and test_cni's
    fake IPAM plugin — and no exec-mode launcher beside the shim, so a request
    the daemon does not serve fails instead of falling back to exec mode."""
    d = tmp_path_factory.mktemp("cni-shim")
    shim = shim_executable()
    assert shim is not None, "the CNI shim was not built (python3 setup.py build_ext --inplace)"
    shutil.copy(shim, d / PLUGIN)
    shutil.copy(os.path.join(plugin_dir, test_cni.FAKE_IPAM), d / test_cni.FAKE_IPAM)
    return str(d)


class DaemonRuntime(Runtime):
    """A runtime whose pynetlink-cni is the installed C shim talking to the
    daemon on ``socket_path`` (``PYNETLINK_CNI_SOCKET``), as on a node."""

    def __init__(self, host: Netns, cni_path: list, socket_path: str):
        super().__init__(host, cni_path)
        self.socket_path = socket_path
        self.calls = 0                      # requests for pynetlink-cni other than VERSION

    def exec(self, command: str, conf, **kw) -> Outcome:
        kw["env"] = dict(kw.get("env") or {}, PYNETLINK_CNI_SOCKET=self.socket_path)
        kind = kw.get("kind") or (conf.get("type") if isinstance(conf, dict) else None)
        self.calls += kind == PLUGIN and command != "VERSION"
        return super().exec(command, conf, **kw)


@pytest.fixture
def served(host, shim_dir, slow_bin, daemon):
    return DaemonRuntime(host, [shim_dir, slow_bin, REFERENCE], daemon.path)


@pytest.fixture
def execd(host, plugin_dir, slow_bin):
    return Runtime(host, [plugin_dir, slow_bin, REFERENCE])


def slow_conf(data_dir, subnet: str = "192.0.2.0/24") -> dict:
    conf = bridge_conf(PLUGIN, data_dir)
    conf["ipam"]["type"] = SLOW_IPAM
    return conf


def raw_exchange(path: str, data: bytes, shut: bool = True) -> bytes:
    """Send ``data`` on a fresh connection; everything the daemon answers before closing."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(60)
        s.connect(path)
        try:
            s.sendall(data)
            if shut:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# -- exactly exec mode's answers ---------------------------------------------------------------

@needs_reference
def test_add_check_del_answer_and_act_as_exec_mode(make_ns, plugin_dir, slow_bin, start_daemon, tmp_path):
    sides = {}
    for mode in ("exec", "daemon"):
        host, container = make_ns(), make_ns()
        if mode == "daemon":
            rt = DaemonRuntime(host, [plugin_dir, REFERENCE], start_daemon(host).path)
        else:
            rt = Runtime(host, [plugin_dir, REFERENCE])
        conf = bridge_conf(PLUGIN, tmp_path / mode, isDefaultGateway=True, mtu=1400)
        result = rt.ok("ADD", conf, netns=container.path)
        validate_result(result, "1.0.0")
        check = rt.exec("CHECK", dict(conf, prevResult=result), netns=container.path)
        sides[mode] = (host, container, rt, conf, normalized_result(result), (check.rc, check.stdout))
    (h1, c1, _, _, r1, k1), (h2, c2, _, _, r2, k2) = sides["exec"], sides["daemon"]
    assert (r2, k2) == (r1, k1) == (r1, (0, ""))
    assert_same_state([(h1, h2, HOST_SYSCTLS), (c1, c2, CONTAINER_SYSCTLS)])
    for mode, (host, container, rt, conf, _, _) in sides.items():
        for _ in range(2):                                  # DEL, and DEL again
            out = rt.exec("DEL", conf, netns=container.path)
            assert (out.rc, out.stdout) == (0, ""), (mode, out)
        assert_nothing_left(host, container, tmp_path / mode)


ERROR_CASES = {
    "no CNI_COMMAND": ({"CNI_COMMAND": ""}, None),
    "unknown command": ({"CNI_COMMAND": "FROB"}, None),
    "bad CNI_ARGS": ({"CNI_ARGS": "FOO=bar"}, None),
    "not JSON": ({}, "{"),
    "unknown cniVersion": ({}, {"cniVersion": "9.9.9", "name": "n", "type": PLUGIN}),
    "missing netns": ({"CNI_NETNS": "/run/netns/pntest-absent"}, None),
    "STATUS of a 1.0.0 config": ({"CNI_COMMAND": "STATUS"}, None),
    "CHECK without prevResult": ({"CNI_COMMAND": "CHECK"}, None),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
def test_errors_are_exec_modes_byte_for_byte(served, execd, container, tmp_path, case):
    env, conf = ERROR_CASES[case]
    conf = bridge_conf(PLUGIN, tmp_path) if conf is None else conf
    ours, theirs = (rt.exec(env.get("CNI_COMMAND", "ADD"), conf, netns=container.path, env=env,
                            kind=PLUGIN) for rt in (served, execd))
    assert ours.rc == 1 and ours.doc["code"] and ours.doc["msg"], ours
    assert (ours.rc, ours.stdout) == (theirs.rc, theirs.stdout)


def test_status_gc_and_version_are_exec_modes_and_reach_ipam(served, execd, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, "1.1.0", ipam=fake_ipam(tmp_path, result={"ips": []}))
    conf["cni.dev/valid-attachments"] = [{"containerID": "pntest-ctr1", "ifname": "eth0"}]
    answers = {}
    for name, rt in (("daemon", served), ("exec", execd)):
        answers[name] = [(o.rc, o.stdout) for o in (rt.exec(c, conf, netns=None, kind=PLUGIN)
                                                    for c in ("STATUS", "GC", "VERSION"))]
    assert answers["daemon"] == answers["exec"]
    assert [rc for rc, _ in answers["daemon"]] == [0, 0, 0]
    calls = [c["command"] for c in ipam_calls(tmp_path)]
    assert calls == ["STATUS", "GC", "STATUS", "GC"]


def test_a_handlers_stderr_goes_to_its_own_response(served, daemon, host, container, tmp_path):
    """The IPAM DEL that undoes a failed ADD fails too: its warning is that
    request's stderr, not the daemon's log."""
    ipam = fake_ipam(tmp_path, result={"ips": [{"address": "192.0.2.7/24"}]},
                     fail={"DEL": {"code": 11, "msg": "pntest del refused"}})
    sh("ip", "-n", container.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    out = served.exec("ADD", bridge_conf(PLUGIN, tmp_path, ipam=ipam), netns=container.path)
    assert out.rc == 1 and "pntest del refused" in out.stderr, out
    assert "pntest del refused" not in daemon.log()


def test_the_installed_plugin_runs_the_daemon_and_debug_logs_the_peer_and_answer(
        start_daemon, host, plugin_dir, sockdir):
    path = os.path.join(sockdir, "run", "cni.sock")
    d = start_daemon(host, "--socket", path, "--debug", program=(os.path.join(plugin_dir, PLUGIN),))
    wire.call({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}', path)
    assert d.log_lines(f"peer pid {os.getpid()} uid 0")
    assert d.log_lines('"supportedVersions"')


def test_one_log_line_per_request(served, daemon, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, ipam=None, isGateway=False)
    served.ok("ADD", conf, netns=container.path, container_id="pntest-logged")
    served.exec("CHECK", conf, netns=container.path, container_id="pntest-logged")
    served.ok("DEL", conf, netns=container.path, container_id="pntest-logged")
    lines = daemon.log_lines("container=pntest-logged")
    assert [line.split("pynetlink-cni: ")[1].split()[0] for line in lines] == ["ADD", "CHECK", "DEL"]
    assert lines[0].endswith(" ok") and "ifname=eth0" in lines[0] and "ms " in lines[0]
    assert lines[1].endswith(" error 7")                 # CHECK without prevResult: invalid config


# -- who may talk to it ----------------------------------------------------------------------------

CLIENT = """
import json, sys
from pynetlink.cni import wire
try:
    r = wire.call({{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pntest-ctr1", "CNI_NETNS": {netns!r},
                    "CNI_IFNAME": "eth0", "CNI_PATH": {cni_path!r}}}, {conf!r}.encode(), {path!r})
except OSError as e:
    print(json.dumps({{"errno": e.errno}}))
else:
    print(json.dumps({{"status": r.status, "stdout": r.stdout.decode()}}))
"""


def as_nobody(code: str, dac_override: bool) -> dict:
    """Run ``code`` under uid/gid 65534 (with CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH kept if ``dac_override``: past file permissions, so
    that only SO_PEERCRED stands in the way); its JSON line."""
    caps = ["--inh-caps=+dac_override,+dac_read_search",
            "--ambient-caps=+dac_override,+dac_read_search"] if dac_override else []
    out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                          *caps, sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.returncode == 0, out
    return json.loads(out.stdout)


def client_code(daemon: Resident, container: Netns, conf: dict, cni_path: str) -> str:
    return CLIENT.format(netns=container.path, cni_path=cni_path, conf=json.dumps(conf), path=daemon.path)


def test_socket_and_its_directory_are_root_only(daemon, container, plugin_dir, tmp_path):
    sock, directory = os.stat(daemon.path), os.stat(os.path.dirname(daemon.path))
    assert (sock.st_mode & 0o777, sock.st_uid) == (0o600, 0)
    assert (directory.st_mode & 0o777, directory.st_uid) == (0o700, 0)
    got = as_nobody(client_code(daemon, container, bridge_conf(PLUGIN, tmp_path), plugin_dir), False)
    assert got["errno"] in (13, 1), got          # EACCES: the directory keeps the user out


def test_a_non_root_peer_is_refused_with_a_cni_error(daemon, host, container, plugin_dir, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, "1.1.0")
    got = as_nobody(client_code(daemon, container, conf, plugin_dir), True)
    assert got["status"] == 1, got
    assert json.loads(got["stdout"]) == {"cniVersion": "1.1.0", "code": 100, "msg": cni_daemon.REFUSAL}
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)
    assert daemon.log_lines(f"refused uid {NOBODY}")


def test_an_allowed_uid_is_served(start_daemon, host, container, plugin_dir, sockdir, tmp_path):
    path = os.path.join(sockdir, "run", "cni.sock")
    d = start_daemon(host, "--socket", path, "--allow-uid", str(NOBODY))
    conf = bridge_conf(PLUGIN, tmp_path, ipam=None, isGateway=False)
    got = as_nobody(client_code(d, container, conf, plugin_dir), True)
    assert got["status"] == 0, got
    assert "eth0" in container.link_names()


# -- no state in memory, and requests that always complete -------------------------------------------

@needs_reference
def test_a_daemon_restarted_between_add_and_del_behaves_as_if_it_never_stopped(
        start_daemon, host, container, plugin_dir, tmp_path):
    first = start_daemon(host)
    rt = DaemonRuntime(host, [plugin_dir, REFERENCE], first.path)
    conf = bridge_conf(PLUGIN, tmp_path)
    result = rt.ok("ADD", conf, netns=container.path)
    assert first.stop() == 0
    start_daemon(host)
    assert rt.ok("CHECK", dict(conf, prevResult=result), netns=container.path) is None
    rt.ok("DEL", conf, netns=container.path)
    assert_nothing_left(host, container, tmp_path)


def pod_complete(host: Netns, container: Netns, data_dir) -> bool:
    return (len(host_veths(host)) == 1 and len(allocations(data_dir)) == 1
            and "eth0" in container.link_names()
            and any(a["family"] == "inet" for a in container.addresses("eth0")))


@needs_reference
def test_a_client_that_leaves_mid_add_still_gets_a_whole_pod(served, daemon, host, container, tmp_path):
    conf = slow_conf(tmp_path)
    environ = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pntest-ctr1", "CNI_NETNS": container.path,
               "CNI_IFNAME": "eth0", "CNI_PATH": ":".join(served.cni_path)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(daemon.path)
        s.sendall(wire.encode_request(environ, json.dumps(conf).encode()))
    assert wait_until(lambda: daemon.log_lines("ADD container=pntest-ctr1"), SLOW_SECONDS + 30)
    assert daemon.log_lines("ADD container=pntest-ctr1")[0].endswith(" ok")
    assert pod_complete(host, container, tmp_path)
    served.ok("DEL", conf, netns=container.path)
    assert_nothing_left(host, container, tmp_path)


@pytest.mark.slow
@needs_reference
def test_sigkill_mid_add_then_restart_and_del_leaves_the_node_clean(
        start_daemon, host, container, plugin_dir, slow_bin, tmp_path):
    d = start_daemon(host)
    rt = DaemonRuntime(host, [plugin_dir, slow_bin, REFERENCE], d.path)
    conf = slow_conf(tmp_path)
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("out", _try(rt.exec, "ADD", conf,
                                                                    netns=container.path)))
    t.start()
    assert wait_until(lambda: host_veths(host), 20)      # the links are made, IPAM still running
    d.stop(signal.SIGKILL)
    t.join(30)
    out = box["out"]                 # EOF before any answer: the shim retries the ADD by exec, which
    assert (out.rc, out.doc["code"], out.doc["msg"]) == (   # finds the pod begun and refuses it
        1, 100, "the container already has an interface named eth0"), out
    ipam_pids = [int(p) for p in open(os.path.join(slow_bin, SLOW_IPAM + ".pids")).read().split()]
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{p}") for p in ipam_pids), SLOW_SECONDS + 30)
    start_daemon(host)
    rt.ok("DEL", conf, netns=container.path)
    assert_nothing_left(host, container, tmp_path)


def _try(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except Exception as e:          # noqa: BLE001 - the test inspects it
        return e


@needs_reference
def all_at_once(rt, command: str, conf: dict, pods: list, prefix: str, bound: float = 180) -> list:
    """``command`` for every pod at once (container ids PREFIX0, PREFIX1...):
    each one's Outcome, or the exception it raised."""
    outs: list = [None] * len(pods)

    def one(i: int) -> None:
        outs[i] = _try(rt.exec, command, conf, netns=pods[i].path, container_id=f"{prefix}{i}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(pods))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bound)
    return outs


def test_50_concurrent_adds_then_dels_leave_nothing(served, host, make_ns, tmp_path):
    containers = [make_ns() for _ in range(50)]
    conf = bridge_conf(PLUGIN, tmp_path)

    def each(command: str) -> list:
        return all_at_once(served, command, conf, containers, "pntest-c")

    adds = each("ADD")
    assert all(isinstance(o, Outcome) and o.rc == 0 for o in adds), [o for o in adds if getattr(o, "rc", 1)]
    assert len({o.doc["ips"][0]["address"] for o in adds}) == 50
    assert len(host_veths(host)) == 50
    dels = each("DEL")
    assert all(isinstance(o, Outcome) and (o.rc, o.stdout) == (0, "") for o in dels), dels
    assert host_veths(host) == [] and allocations(tmp_path) == []
    assert all(c.link_names() == {"lo"} for c in containers)


@needs_reference
def test_sigterm_finishes_requests_in_flight_then_exits_0(served, daemon, host, make_ns, tmp_path):
    containers = [make_ns() for _ in range(3)]
    conf = slow_conf(tmp_path)
    outs: list = [None] * 3

    def one(i: int) -> None:
        outs[i] = _try(served.exec, "ADD", conf, netns=containers[i].path, container_id=f"pntest-t{i}")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(host_veths(host)) == 3, 20)
    assert daemon.stop() == 0
    for t in threads:
        t.join(30)
    assert all(isinstance(o, Outcome) and o.rc == 0 for o in outs), outs
    assert not os.path.exists(daemon.path)              # new requests fall back to exec
    assert len(allocations(tmp_path)) == 3 and len(host_veths(host)) == 3
    assert all("eth0" in c.link_names() for c in containers)


MALFORMED = {
    "bad magic": b"PNCNI9" + struct.pack(">I", 0) + struct.pack(">I", 0),
    "env over its limit": wire.MAGIC + struct.pack(">I", wire.MAX_ENV + 1),
    "stdin over its limit": wire.MAGIC + struct.pack(">I", 0) + struct.pack(">I", spec.MAX_STDIN + 1),
    "EOF inside the environment": wire.MAGIC + struct.pack(">I", 100) + b"CNI_COMMAND=VERSION\0",
    "EOF before stdin": wire.MAGIC + struct.pack(">I", 0) + struct.pack(">I", 10) + b"{}",
    "nothing": b"",
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_a_malformed_request_is_closed_unanswered_and_the_daemon_serves_on(daemon, case):
    assert raw_exchange(daemon.path, MALFORMED[case]) == b""
    assert daemon.log_lines("malformed request")
    r = wire.call({"CNI_COMMAND": "VERSION"}, b"", daemon.path, timeout=30)
    assert r.status == 0 and json.loads(r.stdout)["cniVersion"] == "1.1.0"


# -- the socket --------------------------------------------------------------------------------------

def test_a_stale_socket_file_is_replaced(start_daemon, host, sockdir):
    path = os.path.join(sockdir, "run", "cni.sock")
    os.makedirs(os.path.dirname(path), mode=0o700)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()                                         # the file stays, nobody listens
    d = start_daemon(host)
    assert wire.call({"CNI_COMMAND": "VERSION"}, b"", d.path).status == 0


def test_a_second_daemon_on_the_same_path_refuses_to_start(start_daemon, host, daemon):
    second = start_daemon(host, ready=False)
    assert second.proc.wait(30) == 1
    assert "cannot start: another daemon" in second.log()
    assert wire.call({"CNI_COMMAND": "VERSION"}, b"", daemon.path).status == 0


def test_a_path_that_is_not_a_socket_is_left_alone(start_daemon, host, sockdir):
    path = os.path.join(sockdir, "run", "cni.sock")
    os.makedirs(os.path.dirname(path), mode=0o700)
    with open(path, "w") as f:
        f.write("precious\n")
    d = start_daemon(host, ready=False)
    assert d.proc.wait(30) == 1 and "is not a socket" in d.log()
    assert open(path).read() == "precious\n"


def test_socket_activation_uses_the_socket_systemd_passes(start_daemon, host, sockdir):
    path = os.path.join(sockdir, "run", "cni.sock")
    os.makedirs(os.path.dirname(path), mode=0o700)
    d = start_daemon(host, "--socket", os.path.join(sockdir, "unused.sock"),
                     prefix=("systemd-socket-activate", "-l", path))
    assert "socket activation" in d.log()
    assert not os.path.exists(os.path.join(sockdir, "unused.sock"))
    r = wire.call({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}', path)
    assert (r.status, json.loads(r.stdout)["cniVersion"]) == (0, "1.0.0")
    assert d.stop() == 0


# -- in process ----------------------------------------------------------------------------------------

def test_an_exception_in_a_request_is_its_error_999(monkeypatch):
    def crash(environ, stdin):
        raise RuntimeError("pntest boom")
    monkeypatch.setattr(dispatch, "run", crash)
    r = cni_daemon.answer({"CNI_COMMAND": "DEL"}, b'{"cniVersion": "1.0.0"}')
    doc = json.loads(r.stdout)
    assert (r.status, doc["code"], doc["cniVersion"]) == (1, 999, "1.0.0")
    assert "pntest boom" in doc["msg"]


def test_what_a_request_writes_on_stderr_is_its_own(monkeypatch, capfd):
    def noisy(environ, stdin):
        spec.warn(f"pntest {environ['CNI_CONTAINERID']}")
        return b"", 0
    monkeypatch.setattr(dispatch, "run", noisy)
    monkeypatch.setattr(sys, "stderr", sys.stderr)       # the router installed here is undone after
    answers = {}

    def one(i: int) -> None:
        answers[i] = cni_daemon.answer({"CNI_CONTAINERID": f"c{i}"}, b"")
    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert {i: r.stderr for i, r in answers.items()} == {i: f"pynetlink-cni: pntest c{i}\n".encode()
                                                         for i in range(8)}
    assert "pntest" not in capfd.readouterr().err


def test_wire_round_trips_requests_and_responses():
    environ = {"CNI_COMMAND": "ADD", "CNI_ARGS": "IgnoreUnknown=1;K=a=b", "PATH": "/bin"}
    data = wire.encode_request(environ, b'{"x": 1}')
    a, b = socket.socketpair()
    with a, b:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        assert wire.read_request(b) == (environ, b'{"x": 1}')
        b.sendall(wire.encode_response(3, b"out", b"err"))
        assert wire.read_response(a) == wire.Response(3, b"out", b"err")
    with pytest.raises(ValueError):
        wire.encode_request({"A": "x" * wire.MAX_ENV}, b"")
    with pytest.raises(ValueError):
        wire.encode_request({"A=B": "x"}, b"")
    assert wire.forwarded_environ({"CNI_X": "1", "PYNETLINK_Y": "2", "PATH": "/", "HOME": "/root"}) == \
        {"CNI_X": "1", "PYNETLINK_Y": "2", "PATH": "/"}


class QueueingPool:
    """A thread pool that queues the call, then cannot start a thread for it."""

    def __init__(self):
        self.queued: list = []

    def submit(self, fn, *args):
        self.queued.append((fn, args))
        raise RuntimeError("can't start new thread")


@pytest.mark.unit
def test_a_connection_the_pool_queued_without_a_thread_is_dropped_once(tmp_path):
    """The client is dropped (its connection closed, its slot freed) and the
    queued call, if a thread runs it later, does nothing: the slot is not
    freed twice, the closed connection not served."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener, open(os.devnull, "w") as devnull:
        listener.bind(str(tmp_path / "s"))
        listener.listen()
        server = cni_daemon.Daemon(listener, cni_daemon.Log(devnull))
        server.pool.shutdown()
        server.pool = QueueingPool()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(tmp_path / "s"))
            server.accept_one()
            client.settimeout(5)
            assert client.recv(1) == b""        # dropped: closed without an answer
        [(connection, args)] = server.pool.queued
        connection(*args)                       # a late thread: nothing to do
        free = [server.slots.acquire(blocking=False) for _ in range(cni_daemon.MAX_IN_FLIGHT + 1)]
        assert free.count(True) == cni_daemon.MAX_IN_FLIGHT
        server.close_listener()
