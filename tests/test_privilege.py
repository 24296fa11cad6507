"""Least privilege: what the library needs, what it opens, what it runs.

- Without CAP_NET_ADMIN every mutating operation is refused with a clear
  ``PermissionError`` (EPERM) naming the operation, reads still work, the
  handle and the process go on, and the namespace is left exactly as it was.
  The same script, run with CAP_NET_ADMIN on an identically prepared
  namespace, succeeds at every operation: so each refusal is the missing
  capability, not a bad target.
- Every fd the library opens is close-on-exec, and namespace files are
  opened read-only.
- The library never runs a shell or another program.
"""
from __future__ import annotations

import ast
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time

import pytest

import pynetlink as pn
from conftest import Netns, in_thread, sh

pytestmark = pytest.mark.unit

PACKAGE = pathlib.Path(pn.__file__).resolve().parent
CSRC = PACKAGE.parent / "csrc"
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
O_CLOEXEC = 0o2000000


# -- without CAP_NET_ADMIN -------------------------------------------------------

# Links every operation below can act on, made as root with iproute2.
PREPARE = """\
link add up0 type veth peer name up1
link add mt0 type veth peer name mt1
link add dn0 type veth peer name dn1
link set dn0 up
link set dn1 up
link add gw0 type veth peer name gw1
link set gw0 up
link set gw1 up
addr add 198.51.100.2/24 dev gw0
link add br0 type bridge
link add pa type veth peer name pb
link set pa master br0
link add rn0 type veth peer name rn1
link add del0 type veth peer name del1
link add grp0 type veth peer name grp1
link set grp0 group 77
link set grp1 group 77
link add mv0 type veth peer name mv1
link add mp0 type veth peer name mp1
"""

# The child: argv = mode ("denied" | "control"), its namespace's path, a second
# namespace's path, the pid of a process in that second namespace.  It prints
# one JSON object.  In "denied" mode every operation is tried through every
# route (module-level function, Handle(), Handle(netns=path), a batch);
# in "control" mode once each, through a Handle().
CHILD = r'''
import errno, json, os, sys
mode, ns_path, ns2_path, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open("/proc/self/status") as f:
    caps = int(next(l for l in f if l.startswith("CapEff:")).split()[1], 16)
out = {"net_admin": bool(caps >> 12 & 1), "sys_admin": bool(caps >> 21 & 1)}
if (mode == "denied") == out["net_admin"]:
    print(json.dumps(out))
    sys.exit(3)

import pynetlink as pn

fd2 = os.open(ns2_path, os.O_RDONLY | os.O_CLOEXEC)
OPS = [   # (key, operation name, call on a target with the Handle's methods)
    ("create_veth_pair", "create_veth_pair", lambda t: t.create_veth_pair("new0", "new1")),
    ("interface_up", "interface_up", lambda t: t.interface_up("up0")),
    ("interface_down", "interface_down", lambda t: t.interface_down("dn0")),
    ("set_mtu", "set_mtu", lambda t: t.set_mtu("up1", 1400)),
    ("set_link", "set_link", lambda t: t.set_link("mt0", mtu=1300, txqueuelen=500, up=True)),
    ("set_interface_master", "set_interface_master", lambda t: t.set_interface_master("pb", "br0")),
    ("set_hairpin", "set_hairpin", lambda t: t.set_hairpin("pa", True)),
    ("change_interface_name", "change_interface_name", lambda t: t.change_interface_name("rn0", "rn2")),
    ("set_interface_ip", "set_interface_ip", lambda t: t.set_interface_ip("gw1", "192.0.2.2/24")),
    ("set_interface_ip6", "set_interface_ip", lambda t: t.set_interface_ip("gw1", "2001:db8::2/64")),
    ("set_default_gateway", "set_default_gateway", lambda t: t.set_default_gateway("198.51.100.1", "gw0")),
    ("set_default_gateway6", "set_default_gateway", lambda t: t.set_default_gateway("2001:db8::1", "gw1")),
    ("delete_link", "delete_link", lambda t: t.delete_link("del0")),
    ("delete_group", "delete_group", lambda t: t.delete_group(77)),
    ("set_interface_in_namespace_fd", "set_interface_in_namespace_fd",
     lambda t: t.set_interface_in_namespace_fd("mv0", fd2)),
    ("set_interface_in_namespace_pid", "set_interface_in_namespace_pid",
     lambda t: t.set_interface_in_namespace_pid("mp0", pid)),
]


def outcome(fn, target):
    try:
        fn(target)
    except Exception as e:
        return {"ok": False, "type": type(e).__name__, "errno": getattr(e, "errno", None),
                "permission": isinstance(e, PermissionError),
                "operation": getattr(e, "operation", None), "text": str(e)}
    return {"ok": True}


def reads(t):
    up0 = t.get_link("up0")
    return {"up0": {"index": up0.index, "name": up0.name, "mtu": up0.mtu, "up": up0.up,
                    "master": up0.master, "group": up0.group, "txqlen": up0.txqlen,
                    "address": up0.address},
            "pa_hairpin": t.get_link("pa").hairpin,
            "br0_index": t.link_index("br0"),
            "names": sorted(l.name for l in t.list_links())}


if mode == "control":
    with pn.Handle() as h:
        out["results"] = {"handle": {key: outcome(fn, h) for key, _, fn in OPS}}
else:
    out["results"], out["reads"] = {}, {}
    handle, by_path = pn.Handle(), pn.Handle(netns=ns_path)
    out["reads"]["before"] = reads(handle)
    for route, target in (("module", pn), ("handle", handle), ("by_path", by_path)):
        out["results"][route] = {key: outcome(fn, target) for key, _, fn in OPS}
        out["reads"][route] = reads(target)          # the same handle, after its refusals
    batch = by_path.batch()
    for key, _, fn in OPS:
        if key != "delete_group":                    # not a batch operation
            fn(batch)
    out["batch"] = [{"operation": r.operation, "status": r.status, "errno": r.errno}
                    for r in batch.run()]
    try:
        with handle.batch() as b:
            b.interface_up("up0")
        out["batch_with"] = {"ok": True}
    except Exception as e:
        out["batch_with"] = {"ok": False, "permission": isinstance(e, PermissionError),
                             "operation": getattr(e, "operation", None)}
    out["reads"]["after_batch"] = reads(by_path)
    handle.close(); by_path.close()
    with pn.Handle() as fresh:                       # the process goes on
        out["reads"]["fresh"] = reads(fresh)
out["operations"] = {key: op for key, op, _ in OPS}
out["done"] = True
print(json.dumps(out))
'''


def _prepare(n: Netns, tmp_path) -> None:
    # no automatic IPv6 link-local addresses: a snapshot then holds still
    n.run("sysctl", "-qw", "net.ipv6.conf.default.addr_gen_mode=1")
    script = tmp_path / f"{n.name}.ip"
    script.write_text(PREPARE)
    sh("ip", "-n", n.name, "-batch", str(script))


def _run_child(n: Netns, ns2: Netns, pid: int, mode: str) -> dict:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    drop = [setpriv, "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"]
    argv = ["ip", "netns", "exec", n.name, *(drop if mode == "denied" else []),
            sys.executable, "-c", CHILD, mode, n.path, ns2.path, str(pid)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(PACKAGE.parent), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["done"]
    return out


def _snapshot(n: Netns) -> dict:
    """What the operations could change, in iproute2's words."""
    links = {}
    for link in n.ip("-d", "link", "show") or []:
        slave = link.get("linkinfo", {}).get("info_slave_data", {})
        links[link["ifname"]] = {
            "index": link["ifindex"], "flags": sorted(link["flags"]), "mtu": link["mtu"],
            "master": link.get("master"), "group": link.get("group"),
            "txqlen": link.get("txqlen"), "address": link.get("address"),
            "hairpin": slave.get("hairpin")}
    addrs = sorted((a["ifname"], i["family"], i["local"], i["prefixlen"])
                   for a in n.ip("addr", "show") or [] for i in a.get("addr_info", [])
                   if i.get("scope") != "link")
    routes = sorted(json.dumps(r, sort_keys=True) for fam in ("-4", "-6") for r in n.routes(fam))
    return {"links": links, "addresses": addrs, "routes": routes}


def test_without_net_admin_every_mutation_is_refused_and_reads_still_work(ns, ns2, sleeper,
                                                                          tmp_path):
    _prepare(ns, tmp_path)
    before, before2 = _snapshot(ns), _snapshot(ns2)

    out = _run_child(ns, ns2, sleeper, "denied")

    assert out["net_admin"] is False and out["sys_admin"] is True
    operations = out["operations"]
    for route, results in out["results"].items():
        assert set(results) == set(operations)
        for key, r in results.items():
            op = operations[key]
            assert not r["ok"], f"{route}: {key} was not refused"
            assert r["permission"] and r["errno"] == 1, (route, key, r)        # EPERM
            assert r["type"].startswith("Netlink"), (route, key, r)            # a NetlinkError
            assert r["operation"] == op, (route, key, r)
            assert r["text"].startswith(f"{op}(") and "[Errno 1]" in r["text"], r["text"]
    batch_ops = [operations[k] for k in operations if k != "delete_group"]
    assert [r["operation"] for r in out["batch"]] == batch_ops
    assert all(r["status"] == "failed" and r["errno"] == 1 for r in out["batch"]), out["batch"]
    assert out["batch_with"] == {"ok": False, "permission": True, "operation": "interface_up"}

    # reads: right before, and still right through the same handles after the refusals
    after = _snapshot(ns)
    up0 = after["links"]["up0"]
    for when, seen in out["reads"].items():
        assert seen["names"] == sorted(after["links"]), when
        assert seen["up0"] == {"index": up0["index"], "name": "up0", "mtu": up0["mtu"],
                               "up": False, "master": 0, "group": 0,
                               "txqlen": up0["txqlen"], "address": up0["address"]}, when
        assert seen["pa_hairpin"] is False, when
        assert seen["br0_index"] == after["links"]["br0"]["index"], when

    # and the kernel agrees that nothing changed, here or in the move targets' namespace
    assert after == before
    assert _snapshot(ns2) == before2


def test_with_net_admin_the_same_operations_succeed(ns, ns2, sleeper, tmp_path):
    """The control: identical targets, the capability kept, every operation
    applies — so the refusals above are the capability's doing."""
    _prepare(ns, tmp_path)
    out = _run_child(ns, ns2, sleeper, "control")
    assert out["net_admin"] is True
    assert out["results"]["handle"] == {k: {"ok": True} for k in out["operations"]}

    names = ns.link_names()
    assert {"new0", "new1", "rn2"} <= names
    assert not names & {"rn0", "del0", "del1", "grp0", "grp1", "mv0", "mp0"}
    assert {"mv0", "mp0"} <= ns2.link_names()
    assert "UP" in ns.link("up0")["flags"] and "UP" not in ns.link("dn0")["flags"]
    assert ns.link("up1")["mtu"] == 1400
    mt0 = ns.link("mt0")
    assert (mt0["mtu"], mt0["txqlen"], "UP" in mt0["flags"]) == (1300, 500, True)
    assert ns.link("pb")["master"] == "br0"
    assert ns.link("pa")["linkinfo"]["info_slave_data"]["hairpin"] is True
    assert {a["local"] for a in ns.addresses("gw1")} >= {"192.0.2.2", "2001:db8::2"}
    assert any(r["dst"] == "default" and r.get("gateway") == "198.51.100.1"
               for r in ns.routes("-4"))
    assert any(r["dst"] == "default" and r.get("gateway") == "2001:db8::1"
               for r in ns.routes("-6"))


# -- close-on-exec, read-only --------------------------------------------------------

def _fd_flags(fd: int) -> int:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    raise AssertionError(f"no flags in fdinfo of fd {fd}")


def _assert_cloexec(fd: int, kind: str) -> None:
    target = os.readlink(f"/proc/self/fd/{fd}")
    assert target.startswith(kind), (fd, target)    # (a bind mount reads as its path)
    assert _fd_flags(fd) & O_CLOEXEC, f"fd {fd} ({target}) is not close-on-exec"
    assert not os.get_inheritable(fd)


def _assert_netns_fd(fd: int, path: str = "") -> None:
    """A close-on-exec, read-only fd of a network namespace (of ``path``, if given)."""
    _assert_cloexec(fd, path or "net:[")
    if path:
        assert os.path.samestat(os.fstat(fd), os.stat(path))
    assert _fd_flags(fd) & os.O_ACCMODE == os.O_RDONLY, f"namespace fd {fd} is not read-only"


def test_handle_sockets_are_close_on_exec(ns):
    def in_ns():
        with pn.Handle() as h:
            _assert_cloexec(h.fileno(), "socket:[")
        h = pn.default_handle()
        try:
            _assert_cloexec(h.fileno(), "socket:[")
        finally:
            h.close()
    in_thread(in_ns, netns_path=ns.path)

    with pn.Handle(netns=ns.path) as h:
        _assert_cloexec(h.fileno(), "socket:[")
    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pn.Handle(netns=fd) as h:
            _assert_cloexec(h.fileno(), "socket:[")
    finally:
        os.close(fd)


def test_namespace_fds_are_close_on_exec_and_read_only(ns):
    fd = pn.netns.create()
    try:
        _assert_netns_fd(fd)
    finally:
        os.close(fd)
    with pn.netns.scratch() as fd:
        _assert_netns_fd(fd)
    with pn.netns.netns_fd(ns.path) as fd:
        _assert_netns_fd(fd, ns.path)
    fd = pn.netns.open_netns(ns.path)
    try:
        _assert_netns_fd(fd, ns.path)
    finally:
        os.close(fd)


def test_every_namespace_file_the_python_layer_opens_is_read_only_and_cloexec(ns, ns2,
                                                                            monkeypatch):
    """Transient opens too (a peer's namespace by path, entering and leaving
    a namespace): every os.open the library makes is recorded."""
    opened = []
    real_open = os.open

    def recording_open(path, flags, *args, **kwargs):
        opened.append((os.fspath(path), flags))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    with pn.Handle(netns=ns.path) as h:
        h.create_veth_pair("pa0", "pb0", peer_netns=ns2.path)
        with h.batch() as b:
            b.create_veth_pair("pa1", "pb1", peer_netns=ns2.path)

    def inside():
        with pn.netns.entered(ns2.path):
            pn.interface_up("pb0")
        pn.netns.enter(ns.path)
    in_thread(inside)
    monkeypatch.undo()

    assert "pb0" in ns2.link_names() and "pb1" in ns2.link_names()
    assert [path for path, _ in opened] == [
        ns.path,                                # the Handle
        ns2.path,                               # the single call's peer
        ns2.path,                               # the batch's peer, once for the batch
        "/proc/thread-self/ns/net",             # entered(): the way home ...
        ns2.path,                               # ... and the way in
        ns.path,                                # enter()
    ]
    for path, flags in opened:
        assert flags & os.O_CLOEXEC, f"{path} opened without O_CLOEXEC"
        assert flags & os.O_ACCMODE == os.O_RDONLY, f"{path} not opened read-only"


def test_the_c_core_opens_every_fd_close_on_exec():
    """Static: every call in csrc that makes an fd asks for close-on-exec,
    and none makes an fd that cannot (dup, pipe, accept)."""
    makers = re.compile(r"\b(open|openat|socket|accept4?|dup[23]?|pipe2?|socketpair|"
                        r"memfd_create|eventfd|epoll_create1?|signalfd|timerfd_create)\s*\(")
    sources = sorted(CSRC.glob("*.c"))
    assert sources, f"no C sources in {CSRC}"
    calls = 0
    for src in sources:
        text = re.sub(r"/\*.*?\*/", "", src.read_text(), flags=re.S)     # not comments
        for m in makers.finditer(text):
            statement = text[m.start():text.index(";", m.start())]
            calls += 1
            assert m.group(1) in ("open", "openat", "socket"), f"{src.name}: {statement}"
            assert "CLOEXEC" in statement, f"{src.name}: {statement}"
    assert calls >= 2                                   # the socket and the namespace opens


def test_no_fd_of_the_library_reaches_a_program_started_meanwhile(ns):
    """Dynamic: while another thread makes handles and namespaces (each with
    transient fds in the C core), programs started from this process see no
    netlink socket and no namespace fd among what they inherit."""
    def inherited() -> list:
        out = subprocess.run(["ls", "-l", "/proc/self/fd"], close_fds=False,
                             capture_output=True, text=True, timeout=30).stdout
        return [line for line in out.splitlines() if "socket:[" in line or "net:[" in line]

    assert inherited() == []                            # nothing of anyone's to begin with
    stop = threading.Event()
    made = [0]

    def churn():
        while not stop.is_set() and made[0] < 300:
            with pn.Handle(netns=ns.path):
                pass
            with pn.netns.scratch() as fd:
                with pn.Handle(netns=fd):
                    pass
            made[0] += 1

    t = threading.Thread(target=churn)
    t.start()
    seen, overlapping = [], 0
    try:
        for _ in range(300):                            # bounded: 300 programs at most
            made_before = made[0]
            seen += inherited()
            overlapping += made[0] != made_before       # the churn went on meanwhile
            if not t.is_alive():
                break
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive()
    assert overlapping >= 20, f"only {overlapping} programs started while handles were being made"
    assert seen == []


# -- no programs ---------------------------------------------------------------------

FORBIDDEN_MODULES = {"subprocess", "pty", "multiprocessing", "popen2", "commands"}
FORBIDDEN_OS = re.compile(r"^(system|popen|exec\w*|spawn\w*|posix_spawnp?|fork|forkpty)$")


def _program_runs(source: str, filename: str = "<source>") -> list:
    """Where ``source`` imports or calls something that starts a program."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names
                      if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"{where}: from {node.module} import ...")
            elif top in ("os", "posix", "_os", "_posix"):
                found += [f"{where}: from {node.module} import {a.name}" for a in node.names
                          if FORBIDDEN_OS.match(a.name)]
        elif isinstance(node, ast.Attribute):
            if (isinstance(node.value, ast.Name) and node.value.id in ("os", "posix", "_os", "_posix")
                    and FORBIDDEN_OS.match(node.attr)):
                found.append(f"{where}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            if name in ("__import__", "import_module", "getattr"):
                found += [f"{where}: {name}({a.value!r})" for a in node.args
                          if isinstance(a, ast.Constant) and isinstance(a.value, str)
                          and (a.value.split(".")[0] in FORBIDDEN_MODULES
                               or FORBIDDEN_OS.match(a.value))]
    return found


def test_the_scanner_finds_program_runs():
    """The scan below is not vacuous: each way of starting a program is caught."""
    samples = ["import subprocess", "import pty", "from subprocess import run",
               "import os\nos.system('ip link')", "import os\nos.popen('ip')",
               "import os\nos.execvp('ip', ['ip'])", "import os\nos.spawnlp(0, 'ip', 'ip')",
               "import os\nos.posix_spawn('/bin/ip', [], {})", "from os import execv",
               "import os\nos.fork()", "__import__('subprocess')",
               "import importlib\nimportlib.import_module('subprocess')",
               "import os\ngetattr(os, 'system')('x')", "import multiprocessing"]
    for sample in samples:
        assert _program_runs(sample), sample
    assert _program_runs("import os\nos.open('/x', os.O_RDONLY)\nos.close(3)") == []


# The CNI plugin (the package pynetlink/cni) is a program of its own, not the
# library: the CNI spec has it execute the IPAM plugin named in its
# configuration (no shell).
PROGRAM = "cni"


def _library_files() -> list:
    return sorted(f for f in PACKAGE.rglob("*.py") if f.relative_to(PACKAGE).parts[0] != PROGRAM)


def test_the_library_never_runs_a_shell_or_another_program():
    files = _library_files()
    assert any(f.name == "handle.py" for f in files)
    found = [hit for f in files for hit in _program_runs(f.read_text(), str(f.relative_to(PACKAGE)))]
    assert found == []


def test_nothing_the_library_imports_loads_the_cni_plugin():
    """The exemption above holds only while the library itself never
    imports the plugin module."""
    for f in _library_files():
        assert not re.search(r"\bimport\s+cni\b|from\s+\.\s+import\s+.*\bcni\b|\.cni\b",
                             f.read_text()), f.name


def test_the_c_core_never_runs_a_program():
    calls = re.compile(r"\b(system|popen|exec[lv]p?e?|execvpe|fexecve|posix_spawnp?|fork|vfork|"
                       r"clone3?)\s*\(")
    for src in sorted(CSRC.glob("*.[ch]")):
        text = re.sub(r"/\*.*?\*/", "", src.read_text(), flags=re.S)
        assert not calls.search(text), f"{src.name}: {calls.search(text).group(0)}"
