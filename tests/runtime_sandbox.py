"""A sandbox for running real container runtimes (podman, containerd) against
pynetlink-cni, with nothing reaching the machine.

``Sandbox`` starts an init process in new network, mount and pid namespaces
(``unshare --net --mount --pid --fork --mount-proc``) and mounts tmpfs over
every place a runtime writes: /run (so /run/netns, /run/containers,
/run/containerd, /run/pynetlink: the CNI daemon's default socket), /var/lib
(/var/lib/cni: host-local's leases and libcni's cache; /var/lib/containers),
/opt (/opt/cni/bin) and /etc/cni/net.d.  Commands run inside with
``nsenter`` (``Sandbox.run``); files inside are read and written from the
test through ``/proc/INIT/root`` (``Sandbox.path``).

Ending the sandbox kills its init, and with it every process of its pid
namespace (runtimes, conmon, shims, containers, the CNI daemon); the network
namespace (links, addresses, iptables and nftables rules), the container
namespaces pinned under its /run/netns and every mount go with it.  The
init also dies if the test process dies, even by SIGKILL (``setpriv
--pdeathsig`` on ``unshare --kill-child``).  Cgroups are the one thing a
runtime makes outside: containers get the cgroup parent
``Sandbox.cgroup_parent`` (unique to the sandbox), removed by ``close``.

``Podman`` and ``Containerd`` configure the two runtimes inside a sandbox:
podman through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF (CNI backend,
cgroupfs, file events, runc, vfs storage), containerd with its own root,
state and socket; both start containers with ``--rootfs`` on a static
busybox tree (``Sandbox.make_rootfs``), so no image is needed.  The CNI
plugin is installed in one of its two execution modes (``install_plugin``):
"daemon" (the C shim, with ``pynetlink-cni daemon`` on the default socket and
no exec-mode fallback beside the shim) or "exec" (``--exec-only``).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import Optional

from pynetlink.cni import wire

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TMPFS_DIRS = ("/run", "/var/lib", "/opt", "/etc/cni/net.d")
HOME = "/run/pnsandbox"                 # the sandbox's own files (on its /run tmpfs)
ROOTFS = HOME + "/rootfs"
PLUGIN_DIR = HOME + "/bin"              # podman's CNI plugin directory (before /usr/lib/cni)
REFERENCE_DIR = "/usr/lib/cni"          # Debian's containernetworking-plugins
DAEMON_SOCKET = wire.DEFAULT_SOCKET     # /run/pynetlink/cni.sock, where the shim looks
MODES = ("daemon", "exec")
COMMAND_TIMEOUT = 90.0
PROGRAMS = ("unshare", "setpriv", "nsenter", "podman", "runc", "conmon", "busybox",
            "iptables-save", "ip6tables-save", "nft")

# The sandbox's pid 1: mounts the tmpfs dirs, says "ready", then reaps
# orphans (conmon and the containerd shims double-fork) until it is killed:
# by Sandbox.close, or by unshare --kill-child when the test process dies.
INIT = f"""
import os, subprocess, sys, time
for d in {TMPFS_DIRS!r}:
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "pnsandbox", d], check=True)
for d in ("/run/netns", "/run/pynetlink", "/opt/cni/bin", {HOME!r}):
    os.makedirs(d, exist_ok=True)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
print("ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.1)
"""


def missing_programs(extra: tuple = ()) -> list:
    """The programs a runtime test needs that are not on PATH."""
    return [p for p in PROGRAMS + extra if shutil.which(p) is None]


def _pid_namespace(pid: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


class Sandbox:
    """Private net + mount + pid namespaces with tmpfs over the runtimes'
    directories; ``close()`` ends every process in it and removes its cgroups."""

    def __init__(self) -> None:
        self.cgroup_parent = f"/pntest-{uuid.uuid4().hex[:12]}"
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "unshare", "--net", "--mount", "--pid", "--fork",
             "--kill-child", "--mount-proc", "--propagation", "private", sys.executable, "-c", INIT],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()          # "ready", or EOF if the init failed
        if line.strip() != b"ready":
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise RuntimeError(f"the sandbox did not start: {err.decode(errors='replace')}")
        self.init = self._init_pid()
        self.pid_ns = _pid_namespace(self.init)

    def _init_pid(self) -> int:
        """The sandbox's pid 1, as this process sees it: unshare's only child."""
        return only_child(self.proc.pid)

    # -- running things inside -----------------------------------------------------------------

    def command(self, *args: str) -> list:
        """``args`` run inside the sandbox (``nsenter``; cwd /)."""
        return ["nsenter", "-t", str(self.init), "-n", "-m", "-p", "--wd=/", "--", *args]

    def run(self, *args: str, check: bool = True, env: Optional[dict] = None,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """Run ``args`` inside and wait for it (and for whatever keeps its
        stdout or stderr open: a program left in the background must close
        them); AssertionError with its output if it fails and ``check``."""
        done = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout,
                              env=env, errors="surrogateescape")
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n"
                                 f"{done.stdout}\n{done.stderr}")
        return done

    def start(self, *args: str, log: str, env: Optional[dict] = None) -> subprocess.Popen:
        """A long-running program inside, its stdout and stderr in the sandbox file ``log``."""
        with open(self.path(log), "wb") as out:
            return subprocess.Popen(self.command(*args), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env)

    def ip(self, *args: str):
        """``ip -j ARGS`` inside: the decoded JSON (None if empty)."""
        out = self.run("ip", "-j", *args).stdout
        return json.loads(out, strict=False) if out.strip() else None

    def path(self, inside: str) -> str:
        """The path, seen from the test, of the sandbox's file ``inside``."""
        return f"/proc/{self.init}/root{inside}"

    def read(self, inside: str) -> str:
        with open(self.path(inside)) as f:
            return f.read()

    def write(self, inside: str, text: str) -> None:
        with open(self.path(inside), "w") as f:
            f.write(text)

    def listdir(self, inside: str) -> list:
        """The names in a sandbox directory ([] if it does not exist)."""
        try:
            return sorted(os.listdir(self.path(inside)))
        except FileNotFoundError:
            return []

    # -- what runtimes need --------------------------------------------------------------------

    def make_rootfs(self, directory: str = ROOTFS) -> str:
        """A static busybox tree: DIR/bin/busybox with every applet linked to
        it (``busybox --install -s``), and /www/index.html for httpd."""
        for sub in ("bin", "etc", "proc", "sys", "dev", "tmp", "www"):
            os.makedirs(self.path(f"{directory}/{sub}"), exist_ok=True)
        shutil.copy(os.path.realpath(shutil.which("busybox")), self.path(f"{directory}/bin/busybox"))
        self.run("chroot", directory, "/bin/busybox", "--install", "-s", "/bin")
        self.write(f"{directory}/www/index.html", "hello from the container\n")
        return directory

    def install_plugin(self, directory: str, mode: str) -> None:
        """pynetlink-cni in ``directory`` as a node installs it: "daemon"
        (the shim, without the exec-mode launcher beside it, so a request the
        daemon does not serve fails) or "exec" (``--install DIR --exec-only``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        os.makedirs(self.path(directory), exist_ok=True)
        self.run(sys.executable, "-m", "pynetlink.cni", "--install", directory,
                 *(["--exec-only"] if mode == "exec" else []), env=python_env())
        if mode == "daemon":
            os.unlink(self.path(directory + "/pynetlink-cni-exec"))

    def start_cni_daemon(self) -> "CniDaemon":
        """``pynetlink-cni daemon`` on the default socket, answering."""
        return CniDaemon(self).wait_ready()

    def firewall_rules(self) -> str:
        """Every table's rules: iptables-save, ip6tables-save (no counters) and
        ``nft list ruleset`` (where an nftables backend's rules would be)."""
        return "".join(self.run(*c).stdout for c in (("iptables-save",), ("ip6tables-save",),
                                                       ("nft", "list", "ruleset")))

    # -- the end -------------------------------------------------------------------------------

    def processes(self) -> list:
        """Pids of the processes still in the sandbox's pid namespace."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and self.pid_ns is not None and _pid_namespace(int(entry)) == self.pid_ns:
                found.append(int(entry))
        return found

    def cgroups(self) -> list:
        """The sandbox's cgroup directories that exist (one per hierarchy)."""
        roots = [os.path.join("/sys/fs/cgroup", d) for d in os.listdir("/sys/fs/cgroup")]
        return [p for p in (r + self.cgroup_parent for r in ["/sys/fs/cgroup", *roots])
                if os.path.isdir(p)]

    def close(self, seconds: float = 30.0) -> None:
        """Kill the init (the kernel kills the rest of its pid namespace),
        wait until no process of it is left, then remove its cgroups.
        AssertionError if a process or a cgroup outlives ``seconds``."""
        try:
            os.kill(self.init, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(seconds)
        self.proc.stdout.close()
        self.proc.stderr.close()
        deadline = time.monotonic() + seconds
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.processes(), f"processes outlived the sandbox: {self.processes()}"
        while self.cgroups() and time.monotonic() < deadline:
            for top in self.cgroups():
                for directory, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
                    try:
                        os.rmdir(directory)
                    except OSError:     # still emptying: tried again
                        pass
            time.sleep(0.05)
        assert not self.cgroups(), f"cgroups outlived the sandbox: {self.cgroups()}"


def only_child(pid: int, seconds: float = 10.0) -> int:
    """The one child of process ``pid`` (nsenter's or unshare's), once it has forked."""
    deadline = time.monotonic() + seconds
    while True:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = f.read().split()
        if len(children) == 1 or time.monotonic() > deadline:
            (child,) = children
            return int(child)
        time.sleep(0.01)


def terminate(proc: subprocess.Popen, seconds: float = 30.0) -> int:
    """SIGTERM to the program ``proc`` (a ``Sandbox.start``) runs inside the
    sandbox (nsenter does not pass signals on), then nsenter's exit status,
    which is the program's; SIGKILL after ``seconds``."""
    if proc.poll() is None:
        try:
            os.kill(only_child(proc.pid), signal.SIGTERM)
        except (ProcessLookupError, FileNotFoundError, ValueError):
            pass
    try:
        return proc.wait(seconds)
    except subprocess.TimeoutExpired:
        os.kill(only_child(proc.pid), signal.SIGKILL)
        return proc.wait(10)


# host-local's own files in its data directory (the rest are leases, named by address)
HOSTLOCAL_FILES = frozenset({"lock", "last_reserved_ip.0", "last_reserved_ip.1"})


def leases(sandbox: Sandbox, network: str) -> set:
    """host-local's leases for ``network`` (files named by address) in the sandbox."""
    return set(sandbox.listdir(f"/var/lib/cni/networks/{network}")) - HOSTLOCAL_FILES


def cni_cache(sandbox: Sandbox) -> list:
    """libcni's cached results (/var/lib/cni/results) in the sandbox."""
    return sandbox.listdir("/var/lib/cni/results")


def global_addresses(link: dict) -> dict:
    """{"inet": "A/P", "inet6": "A/P"}: the global addresses of an ``ip -j addr`` link."""
    return {a["family"]: f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"]
            if a.get("scope") == "global"}


def dual_stack_conflist(name: str, bridge: str, subnet4: str, gateway4: str, subnet6: str,
                        gateway6: str, *chained: dict) -> dict:
    """A conflist: pynetlink-cni on ``bridge`` as the gateway, host-local
    leasing from both subnets with default routes for both families, then
    the ``chained`` plugins."""
    return {
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {"type": "pynetlink-cni", "bridge": bridge, "isGateway": True,
             "ipam": {"type": "host-local",
                      "ranges": [[{"subnet": subnet4, "gateway": gateway4}],
                                 [{"subnet": subnet6, "gateway": gateway6}]],
                      "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}},
            *chained,
        ],
    }


def python_env() -> dict:
    """The environment for this pynetlink's Python inside the sandbox."""
    return dict(os.environ, PYTHONPATH=REPO)


class CniDaemon:
    """``pynetlink-cni daemon --socket /run/pynetlink/cni.sock`` inside a sandbox."""

    LOG = HOME + "/cni-daemon.log"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.proc = sandbox.start(sys.executable, "-m", "pynetlink.cni", "daemon", "--socket", DAEMON_SOCKET,
                                  log=self.LOG, env=python_env())

    def wait_ready(self, seconds: float = 20.0) -> "CniDaemon":
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                wire.call({"CNI_COMMAND": "VERSION"}, b"", self.sandbox.path(DAEMON_SOCKET), timeout=5)
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"the CNI daemon did not answer: {self.log()}")

    def log(self) -> str:
        return self.sandbox.read(self.LOG)

    def served(self) -> int:
        """How many requests for a container the daemon has logged."""
        return sum(" container=" in line for line in self.log().splitlines())

    def stop(self, seconds: float = 30.0) -> int:
        """SIGTERM, then the daemon's exit status."""
        return terminate(self.proc, seconds)


class Node:
    """A sandbox as a node: the busybox rootfs made, pynetlink-cni installed
    in ``plugin_dir`` in ``mode`` ("daemon": with the daemon answering on
    the default socket; "exec"); ``close()`` checks the daemon ended well
    and ends the sandbox."""

    def __init__(self, mode: str, plugin_dir: str) -> None:
        self.mode = mode
        self.sandbox = Sandbox()
        self.daemon: Optional[CniDaemon] = None
        try:
            self.sandbox.make_rootfs()
            self.sandbox.install_plugin(plugin_dir, mode)
            if mode == "daemon":
                self.daemon = self.sandbox.start_cni_daemon()
        except BaseException:
            self.close()
            raise

    def served(self) -> int:
        """Requests for a container the daemon has served (0 in exec mode)."""
        return self.daemon.served() if self.daemon else 0

    def close(self) -> None:
        try:
            if self.daemon is not None:
                assert self.daemon.stop() == 0, self.daemon.log()
        finally:
            self.sandbox.close()


class Podman:
    """podman 4 with its CNI backend, configured inside a sandbox: its
    config, state and storage (vfs) on the sandbox's tmpfs, networks in
    ``CONFIG_DIR``, plugins from ``PLUGIN_DIR`` then the reference set."""

    CONFIG_DIR = HOME + "/podman-networks"

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        for d in (self.CONFIG_DIR, HOME + "/storage", HOME + "/storage-run", HOME + "/podman-tmp"):
            os.makedirs(sandbox.path(d), exist_ok=True)
        sandbox.write(HOME + "/containers.conf", f"""\
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "{HOME}/podman-tmp"

[network]
network_backend = "cni"
network_config_dir = "{self.CONFIG_DIR}"
cni_plugin_dirs = ["{PLUGIN_DIR}", "{REFERENCE_DIR}"]
""")
        sandbox.write(HOME + "/storage.conf", f"""\
[storage]
driver = "vfs"
graphroot = "{HOME}/storage"
runroot = "{HOME}/storage-run"
""")
        self.env = dict(os.environ, CONTAINERS_CONF=HOME + "/containers.conf",
                        CONTAINERS_STORAGE_CONF=HOME + "/storage.conf")

    def __call__(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """``podman ARGS`` inside the sandbox."""
        return self.sandbox.run("podman", *args, check=check, env=self.env, timeout=timeout)

    def run_args(self) -> list:
        """What every ``podman run`` gets: the sandbox's cgroup parent."""
        return ["--cgroup-parent", self.sandbox.cgroup_parent]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``podman run [cgroup parent] ARGS``."""
        return self("run", *self.run_args(), *args, check=check)

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", name).stdout)[0]

    def conflist_path(self, network: str) -> str:
        return f"{self.CONFIG_DIR}/{network}.conflist"

    def write_network(self, conflist: dict) -> None:
        self.sandbox.write(self.conflist_path(conflist["name"]), json.dumps(conflist, indent=1))

    def read_network(self, network: str) -> dict:
        return json.loads(self.sandbox.read(self.conflist_path(network)))


class Containerd:
    """containerd started inside a sandbox (root, state and socket on its
    tmpfs, the CRI plugin off), driven with ``ctr``; ``ctr run --cni`` reads
    /etc/cni/net.d and /opt/cni/bin, both tmpfs in the sandbox."""

    SOCKET = HOME + "/containerd.sock"
    LOG = HOME + "/containerd.log"

    def __init__(self, sandbox: Sandbox, seconds: float = 30.0) -> None:
        self.sandbox = sandbox
        sandbox.write(HOME + "/containerd.toml", f"""\
version = 2
root = "{HOME}/containerd-root"
state = "{HOME}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{self.SOCKET}"
""")
        self.proc = sandbox.start("containerd", "--config", HOME + "/containerd.toml", log=self.LOG)
        deadline = time.monotonic() + seconds
        while self("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"containerd did not start: {sandbox.read(self.LOG)}")
            time.sleep(0.1)

    def __call__(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """``ctr --address SOCKET ARGS`` inside the sandbox."""
        return self.sandbox.run("ctr", "--address", self.SOCKET, *args, check=check, timeout=timeout)

    def run_command(self, name: str, *command: str) -> list:
        """``ctr run --rm --cni`` of ``command`` in container ``name`` on the
        busybox rootfs, under the sandbox's cgroup parent: the argv to run."""
        return self.sandbox.command("ctr", "--address", self.SOCKET, "run", "--rm", "--cni",
                                    "--cgroup", f"{self.sandbox.cgroup_parent}/{name}",
                                    "--rootfs", ROOTFS, name, *command)

    def stop(self, seconds: float = 30.0) -> int:
        """SIGTERM, then containerd's exit status."""
        return terminate(self.proc, seconds)
