#!/usr/bin/env python3
"""CNI plugin latency: pynetlink-cni's two modes against the reference
`bridge` plugin (Debian's containernetworking-plugins), executed as a
runtime executes them: fork/exec of the plugin with the CNI_* environment
and the network configuration on stdin.  Three contenders, in one run,
interleaved:

- exec: pynetlink-cni installed with ``--install DIR --exec-only`` (the
  Python plugin started per call);
- shim+daemon: the C shim (``--install DIR``) forwarding to a
  ``pynetlink-cni daemon`` started inside the sandbox on a socket in its
  tmpfs (PYNETLINK_CNI_SOCKET); the shim's exec fallback is removed, so
  every request is served by the daemon or fails;
- bridge: the reference bridge plugin with the reference host-local.

Both pynetlink modes run host-local in-process (the default), on the same
network configuration; the reference execs its host-local.  Each execution
is timed from fork/exec to the moment its exit is seen — through a pidfd,
as a runtime's blocking wait sees it (``Popen.communicate(timeout=)`` would
poll with sleeps and add about a millisecond to every call of every
contender).

Per run and contender: N pods ADDed one at a time (each: a veth from the
bridge cnibench0 into the pod's own network namespace, an address from
192.0.2.0/24, the gateway on the bridge, a default route), checked
(untimed: every pod's eth0 up, N ports on the bridge, N addresses held by
host-local), then DELeted one at a time (with the ADD's result as
prevResult, as runtimes give it), checked again; then C fresh pods
ADDed all at once (C processes started together; the wall time until the
last exits), checked, DELeted all at once, checked.  VERSION: V calls per
contender per run.  Reported: ADD and DEL latency (p50, p99 over every pod
of every repeat), VERSION p50, the concurrent phases' wall time (median of
the repeats), CPU time of the plugin processes per pod (the daemon's CPU is
not a child's: not counted), and ratios against the reference.  Also: the
kernel's share of a DEL, in every repeat: N pods ADDed (untimed), each
pod's eth0 deleted by an in-process RTM_DELLINK from a ready netlink socket
(``ip -n POD link del eth0``), the RCU grace period included.

Everything runs inside a private network + mount namespace (the churn
benchmark's sandbox: benchmarks/churn/sandbox.py): the plugins' "host" (and
the daemon's) is the sandbox's own network namespace, the pods' namespaces
are named in a tmpfs on /run/netns, IPAM state, the socket and the plugin
executables live in a tmpfs on /run.  Nothing can be left behind, even if
the run is killed.  IPv6 is disabled in every namespace of the run (no DAD,
router solicitations or MLD), for every contender alike.  Repeats rotate
which contender goes first.

Usage (as root; the reference plugins: apt-get install containernetworking-plugins):
    python3 benchmarks/cni.py [-n 50] [--repeat 3] [--concurrent 20] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import selectors
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True          # leave no __pycache__ in the checkout
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "churn"))     # the churn benchmark's sandbox helpers
sys.path.insert(1, ROOT)                            # this checkout's pynetlink

REFERENCE_DIR = "/usr/lib/cni"
BRIDGE = "cnibench0"
SUBNET = "192.0.2.0/24"
MAX_PODS = 250                          # host-local hands out .2 to .254 of the /24
QUICK_N, QUICK_REPEAT, QUICK_CONCURRENT, QUICK_VERSIONS = 5, 1, 5, 5
DAEMON_START_TIMEOUT = 30.0             # seconds the daemon may take to listen
DAEMON_STOP_TIMEOUT = 30.0
EXEC, SHIM, REFERENCE = "exec", "shim+daemon", "bridge"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=50, help=f"pods per run (default 50, at most {MAX_PODS})")
    p.add_argument("--repeat", type=int, default=3, help="runs per contender, interleaved (default 3)")
    p.add_argument("--concurrent", type=int, default=20, metavar="C",
                   help="pods ADDed (then DELeted) all at once per run (default 20)")
    p.add_argument("--versions", type=int, default=30, metavar="V",
                   help="VERSION calls per contender per run (default 30)")
    p.add_argument("--quick", action="store_true",
                   help=f"n={QUICK_N}, {QUICK_REPEAT} repeat, {QUICK_CONCURRENT} concurrent, "
                        f"{QUICK_VERSIONS} VERSIONs: a CI smoke run")
    p.add_argument("--reference-dir", default=REFERENCE_DIR,
                   help=f"where bridge and host-local are (default {REFERENCE_DIR})")
    p.add_argument("--json", metavar="PATH", help="write every sample and the summary to PATH")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="the daemon's worker processes (default: the daemon's own default, the "
                        "CPUs up to 4; --profile uses 1)")
    p.add_argument("--profile", metavar="PATH",
                   help="run the daemon (one worker) under cProfile and write its statistics to PATH")
    p.add_argument("--run-timeout", type=float, default=None, metavar="S",
                   help="time bound of one contender's run (default 60 + 2 s per pod)")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.repeat, a.concurrent, a.versions = QUICK_N, QUICK_REPEAT, QUICK_CONCURRENT, QUICK_VERSIONS
    if not 1 <= a.n <= MAX_PODS or not 1 <= a.concurrent <= MAX_PODS:
        p.error(f"-n and --concurrent must be in [1, {MAX_PODS}]")
    if not 1 <= a.repeat <= 50 or not 1 <= a.versions <= 1000:
        p.error("--repeat must be in [1, 50], --versions in [1, 1000]")
    if a.workers is not None and not 1 <= a.workers <= 64:
        p.error("--workers must be in [1, 64]")
    a.run_timeout = a.run_timeout or 60 + 2.0 * (a.n + a.concurrent)
    return a


# -- executing a plugin as a runtime does ----------------------------------------------------------

def network_config(kind: str, data_dir: str) -> bytes:
    """The same network for every contender but for ``type``."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "pnbench", "type": kind, "bridge": BRIDGE,
        "isGateway": True, "isDefaultGateway": True,
        "ipam": {"type": "host-local", "subnet": SUBNET, "dataDir": data_dir},
    }).encode()


class Plugin:
    """One contender: its executable, the network type naming it, and the
    environment the runtime gives it (CNI_PATH; the daemon's socket)."""

    def __init__(self, name: str, executable: str, kind: str, env: dict):
        self.name, self.executable, self.kind, self.env = name, executable, kind, env

    def environ(self, command: str, pod: str, netns_path: str) -> dict:
        return dict(self.env, PATH=os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    CNI_COMMAND=command, CNI_CONTAINERID=f"pnbench-{pod}", CNI_NETNS=netns_path,
                    CNI_IFNAME="eth0", CNI_ARGS="")

    def start(self, command: str, pod: str, netns_path: str, stdin: bytes) -> subprocess.Popen:
        """The plugin started, its stdin written whole and closed (it fits in
        the pipe: a configuration is far below 64 KiB)."""
        proc = subprocess.Popen([self.executable], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.environ(command, pod, netns_path),
                                bufsize=0)
        try:
            proc.stdin.write(stdin)
        except BrokenPipeError:
            pass                                # it exited early: its answer says why
        proc.stdin.close()
        proc.stdin = None                       # communicate() then only reads
        return proc

    def finish(self, proc: subprocess.Popen, command: str, pod: str, deadline) -> bytes:
        """The plugin's stdout; a failure raises with the plugin's own error."""
        try:
            out, err = collect(proc, deadline.timeout())
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        if proc.returncode:
            raise RuntimeError(f"{self.name} {command} pod {pod}: exit {proc.returncode}: "
                               f"{out.decode(errors='replace').strip()} "
                               f"{err.decode(errors='replace').strip()[-500:]}")
        return out

    def invoke(self, command: str, pod: str, netns_path: str, config: bytes, deadline) -> bytes:
        """fork/exec with the CNI_* environment and the config on stdin."""
        return self.finish(self.start(command, pod, netns_path, config), command, pod, deadline)


def collect(proc: subprocess.Popen, timeout: float) -> tuple:
    """(stdout, stderr) of ``proc`` once it has exited, as ``communicate``
    with a timeout — but woken by the process's exit itself (a pidfd), as a
    runtime's blocking wait is: ``Popen.wait(timeout)`` polls with sleeps
    that would add about a millisecond to every call."""
    end = time.monotonic() + timeout
    chunks: dict = {proc.stdout: [], proc.stderr: []}
    pidfd = os.pidfd_open(proc.pid)
    try:
        with selectors.DefaultSelector() as sel:
            for stream in chunks:
                sel.register(stream, selectors.EVENT_READ)
            sel.register(pidfd, selectors.EVENT_READ)
            open_streams, exited = len(chunks), False
            while open_streams or not exited:
                left = end - time.monotonic()
                if left <= 0:
                    raise subprocess.TimeoutExpired(proc.args, timeout)
                for key, _ in sel.select(left):
                    if key.fileobj == pidfd:
                        exited = True
                        sel.unregister(pidfd)
                        continue
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fileobj].append(data)
                    else:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
    finally:
        os.close(pidfd)
    proc.wait()                                 # it has exited: reaped at once
    for stream in chunks:
        stream.close()
    return b"".join(chunks[proc.stdout]), b"".join(chunks[proc.stderr])


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def with_prev_results(config: bytes, outputs: list) -> list:
    """The configuration of each pod's DEL, as a runtime gives it (libcni):
    the network's, with the pod's ADD result as ``prevResult``."""
    conf = json.loads(config)
    return [json.dumps(dict(conf, prevResult=json.loads(out))).encode() for out in outputs]


def phase(plugin: Plugin, command: str, pods: dict, configs: list, deadline) -> dict:
    """Run ``command`` for every pod in turn (each with its configuration);
    per-pod latencies, wall time, CPU."""
    latencies, outputs = [], []
    cpu0, start = children_cpu(), time.perf_counter()
    for (pod, path), config in zip(pods.items(), configs):
        deadline.check()
        t0 = time.perf_counter()
        outputs.append(plugin.invoke(command, pod, path, config, deadline))
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    return {"latencies": latencies, "seconds": wall, "cpu_s": children_cpu() - cpu0,
            "outputs": outputs}


def concurrent_phase(plugin: Plugin, command: str, pods: dict, configs: list, deadline) -> dict:
    """Start ``command`` for every pod at once (each with its stdin written:
    none waits for another); the wall time until the last one exits."""
    start = time.perf_counter()
    procs = [(pod, plugin.start(command, pod, path, config))
             for (pod, path), config in zip(pods.items(), configs)]
    outputs, errors = [], []
    for pod, proc in procs:
        try:
            outputs.append(plugin.finish(proc, command, pod, deadline))
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            errors.append(str(e))
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(pods)} concurrent {command}s failed: {errors[0]}")
    return {"seconds": wall, "outputs": outputs}


def versions(plugin: Plugin, count: int, deadline) -> list:
    """``count`` VERSION calls, each one's latency."""
    stdin = b'{"cniVersion": "1.0.0"}'
    latencies = []
    for _ in range(count):
        deadline.check()
        t0 = time.perf_counter()
        out = plugin.invoke("VERSION", "version", "", stdin, deadline)
        latencies.append(time.perf_counter() - t0)
        if "supportedVersions" not in json.loads(out):
            raise AssertionError(f"{plugin.name} VERSION answered {out!r}")
    return latencies


# -- checking what the plugins did (untimed) ---------------------------------------------------------

def held_addresses(data_dir: str) -> int:
    import ipaddress
    count = 0
    for _, _, files in os.walk(data_dir):
        for name in files:
            try:
                ipaddress.ip_address(name)
                count += 1
            except ValueError:
                pass
    return count


def bridge_ports(host) -> list:
    bridge = host.get_link(BRIDGE)
    return [link.name for link in host.list_links() if link.master == bridge.index]


def check_added(pods: dict, outputs: list, data_dir: str) -> None:
    """Every pod: eth0 up with the result's address; N ports on the bridge."""
    import pynetlink as pn
    for path, out in zip(pods.values(), outputs):
        result = json.loads(out)
        if not result.get("ips") or not result["ips"][0]["address"].startswith("192.0.2."):
            raise AssertionError(f"unexpected result for {path}: {result}")
        with pn.Handle(netns=path) as h:
            if not h.get_link("eth0").up:
                raise AssertionError(f"eth0 of {path} is down")
    with pn.Handle() as host:
        ports = bridge_ports(host)
    if len(ports) != len(pods) or held_addresses(data_dir) != len(pods):
        raise AssertionError(f"{len(ports)} bridge ports and {held_addresses(data_dir)} addresses "
                             f"held for {len(pods)} pods")


def check_deleted(pods: dict, data_dir: str) -> None:
    """No pod keeps eth0; no port is left on the bridge; no address is held."""
    import pynetlink as pn
    for path in pods.values():
        with pn.Handle(netns=path) as h:
            if any(link.name == "eth0" for link in h.list_links()):
                raise AssertionError(f"eth0 is still in {path}")
    with pn.Handle() as host:
        ports = bridge_ports(host)
    if ports or held_addresses(data_dir):
        raise AssertionError(f"left after DEL: ports {ports}, {held_addresses(data_dir)} addresses")


# -- one run -------------------------------------------------------------------------------------------

def add_then_delete(plugin: Plugin, run_phase, pods: dict, config: bytes, data_dir: str,
                    deadline) -> tuple:
    """``run_phase`` (one at a time, or all at once) of ADD, checked, then of
    DEL (with each pod's result as prevResult), checked; both phases' figures."""
    add = run_phase(plugin, "ADD", pods, [config] * len(pods), deadline)
    results = add.pop("outputs")
    check_added(pods, results, data_dir)
    delete = run_phase(plugin, "DEL", pods, with_prev_results(config, results), deadline)
    delete.pop("outputs")
    check_deleted(pods, data_dir)
    return add, delete


def one_run(plugin: Plugin, args, netns, workdir: str, repeat: int) -> dict:
    """VERSION; N pods ADDed then DELeted one at a time; C pods ADDed then
    DELeted all at once; by one contender on fresh namespaces and a fresh bridge."""
    out = {"plugin": plugin.name, "repeat": repeat, "n": args.n, "ok": False}
    from sandbox import Deadline
    deadline = Deadline(args.run_timeout, f"{plugin.name} run {repeat}")
    data_dir = os.path.join(workdir, f"ipam-{plugin.name.replace('+', '-')}-{repeat}")
    config = network_config(plugin.kind, data_dir)
    try:
        out["version"] = versions(plugin, args.versions, deadline)
        out["cversion"] = concurrent_phase(plugin, "VERSION", {f"v{i}": "" for i in range(args.concurrent)},
                                           [b'{"cniVersion": "1.0.0"}'] * args.concurrent, deadline)["seconds"]
        pods = {f"s{i}": netns.add(f"pod{i}") for i in range(args.n)}
        add, delete = add_then_delete(plugin, phase, pods, config, data_dir, deadline)
        pods = {f"c{i}": netns.add(f"cpod{i}") for i in range(args.concurrent)}
        cadd, cdel = add_then_delete(plugin, concurrent_phase, pods, config, data_dir, deadline)
        out.update(add=add, delete=delete, cadd=cadd, cdel=cdel, ok=True)
    except Exception as e:                          # noqa: BLE001 - reported as FAILED
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        reset_host(netns, out)
    return out


def reset_host(netns, out: dict) -> None:
    """The bridge deleted, every pod namespace dropped, their destruction awaited."""
    import pynetlink as pn
    from sandbox import wait_netns_cleanup
    with pn.Handle() as host:
        try:
            host.delete_link(BRIDGE)
        except OSError:
            pass
    netns.reset()
    try:
        out["cleanup_wait_seconds"] = wait_netns_cleanup()
    except TimeoutError as e:
        out["cleanup_warning"] = str(e)


def kernel_delete(plugin: Plugin, args, netns, workdir: str, repeat: int) -> list:
    """The kernel's share of a DEL: N pods ADDed by ``plugin`` (untimed: the
    same veth on the bridge, addresses and routes as a DEL meets), each
    pod's eth0 then deleted from inside the pod by one RTM_DELLINK on a
    ready netlink socket (``ip -n POD link del eth0``), as the daemon
    deletes (pynetlink.cni.unlist, a monitor joined first); per pod
    (seconds until the kernel unlisted the link — its RTM_DELLINK
    notification, when the daemon answers —, seconds until its ACK)."""
    import pynetlink as pn
    from pynetlink.cni import unlist
    from sandbox import Deadline
    deadline = Deadline(args.run_timeout, f"kernel share, run {repeat}")
    config = network_config(plugin.kind, os.path.join(workdir, f"ipam-kernel-{repeat}"))
    pods = {f"k{i}": netns.add(f"kpod{i}") for i in range(args.n)}
    latencies: list = []
    out: dict = {}
    try:
        phase(plugin, "ADD", pods, [config] * len(pods), deadline)
        for path in pods.values():
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                with pn.Handle(netns=fd) as pod:
                    index, acked = pod.link_index("eth0"), []

                    def delete() -> None:
                        pod.delete_link("eth0")
                        acked.append(time.perf_counter())
                    t0 = time.perf_counter()
                    unlist.delete_unlisted(fd, [index], delete)
                    unlisted = time.perf_counter()
                    if not unlist.finish(time.monotonic() + 30):
                        raise RuntimeError("a deletion did not finish within 30 s")
                    latencies.append((unlisted - t0, acked[0] - t0))
            finally:
                os.close(fd)
    finally:
        reset_host(netns, out)
    return latencies


# -- the daemon ------------------------------------------------------------------------------------

class DaemonProcess:
    """``pynetlink-cni daemon --socket PATH`` as a child of the sandbox
    (so in its network namespace), its log in the work directory."""

    def __init__(self, workdir: str, profile: str = None, workers: int = None):
        self.socket = os.path.join(workdir, "daemon", "cni.sock")
        self.log_path = os.path.join(workdir, "daemon.log")
        launch = ["-m", "pynetlink.cni", "daemon", "--socket", self.socket]
        if workers:
            launch += ["--workers", str(workers)]
        if profile:
            launch = ["-c", PROFILED_DAEMON, profile, self.socket]
        env = dict(os.environ, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE="1")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, *launch], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env, cwd=ROOT)
        end = time.monotonic() + DAEMON_START_TIMEOUT
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"the daemon did not start: {self.log()[-1000:]}")
            time.sleep(0.01)

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def requests_served(self) -> int:
        return sum(1 for line in self.log().splitlines() if " container=" in line)

    def durations(self, command: str) -> list:
        """The daemon's own time (ms, from its log lines) of each ``command``
        of the one-at-a-time phases (container ids pnbench-sN)."""
        found = []
        for line in self.log().splitlines():
            words = line.split()
            if f": {command} container=pnbench-s" in line and len(words) >= 2 and words[-2].endswith("ms"):
                found.append(float(words[-2][:-2]))
        return found

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(DAEMON_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


# The daemon with each request's handling (daemon.answer, in its own thread)
# under cProfile; the requests' statistics merged when SIGTERM ends it.
PROFILED_DAEMON = """
import cProfile, pstats, sys, threading
from pynetlink.cni import daemon
out, sock = sys.argv[1], sys.argv[2]
profiles, lock, answer = [], threading.Lock(), daemon.answer
def profiled(environ, stdin):
    prof = cProfile.Profile()
    try:
        return prof.runcall(answer, environ, stdin)
    finally:
        prof.create_stats()
        with lock:
            profiles.append(prof)
daemon.answer = profiled
code = daemon.main(["--socket", sock, "--workers", "1"])
if profiles:
    pstats.Stats(*profiles).dump_stats(out)
sys.exit(code)
"""


def daemon_default_workers() -> int:
    """The daemon's worker count when none is given."""
    from pynetlink.cni.daemon import default_workers
    return default_workers()


# -- reporting -----------------------------------------------------------------------------------------

def percentile(samples: list, p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))]


def summarize(runs: list) -> dict:
    add = [x for r in runs for x in r["add"]["latencies"]]
    dele = [x for r in runs for x in r["delete"]["latencies"]]
    version = [x for r in runs for x in r["version"]]
    n = runs[0]["n"]
    return {
        "add_p50_ms": percentile(add, 50) * 1e3, "add_p99_ms": percentile(add, 99) * 1e3,
        "del_p50_ms": percentile(dele, 50) * 1e3, "del_p99_ms": percentile(dele, 99) * 1e3,
        "version_p50_ms": percentile(version, 50) * 1e3,
        "cadd_s": statistics.median(r["cadd"]["seconds"] for r in runs),
        "cdel_s": statistics.median(r["cdel"]["seconds"] for r in runs),
        "cversion_s": statistics.median(r["cversion"] for r in runs),
        "cpu_ms_per_pod": statistics.median(
            (r["add"]["cpu_s"] + r["delete"]["cpu_s"]) * 1e3 / n for r in runs),
        "samples": len(add),
    }


RATIOS = (("add_p50_ms", "ADD"), ("del_p50_ms", "DEL"), ("cadd_s", "C×ADD"), ("cdel_s", "C×DEL"))


def table(summary: dict, failed: dict, concurrent: int) -> str:
    head = ["contender", "ADD p50 ms", "ADD p99 ms", "DEL p50 ms", "DEL p99 ms", "VERSION p50 ms",
            f"{concurrent}×VERSION ms", f"{concurrent}×ADD ms", f"{concurrent}×DEL ms", "CPU ms/pod",
            *(f"{label.replace('C', str(concurrent))} ÷ ref" for _, label in RATIOS)]
    rows = []
    ref = summary.get(REFERENCE)
    for name in (EXEC, SHIM, REFERENCE):
        if name in failed:
            rows.append([name, "FAILED"] + [""] * (len(head) - 2))
        elif name in summary:
            s = summary[name]
            ratios = [f"{s[k] / ref[k]:.2f}x" if ref else "-" for k, _ in RATIOS]
            rows.append([name, f"{s['add_p50_ms']:.1f}", f"{s['add_p99_ms']:.1f}",
                         f"{s['del_p50_ms']:.1f}", f"{s['del_p99_ms']:.1f}",
                         f"{s['version_p50_ms']:.2f}", f"{s['cversion_s'] * 1e3:.0f}", f"{s['cadd_s'] * 1e3:.0f}",
                         f"{s['cdel_s'] * 1e3:.0f}", f"{s['cpu_ms_per_pod']:.1f}", *ratios])
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda cells: "| " + " | ".join(                               # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def reference_version() -> str:
    """The Debian package's version of the reference plugins, if dpkg knows it."""
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "containernetworking-plugins"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"containernetworking-plugins {out.stdout.strip()}" if out.returncode == 0 else "?"


# -- main ----------------------------------------------------------------------------------------------

def contenders(workdir: str, args, socket_path: str) -> list:
    """exec, shim+daemon (with no exec fallback beside the shim) and, if
    installed, the reference bridge."""
    from pynetlink import cni
    from pynetlink.cni import installer
    cni_path = args.reference_dir
    exec_dir, shim_dir = os.path.join(workdir, "bin-exec"), os.path.join(workdir, "bin-shim")
    os.mkdir(exec_dir)
    os.mkdir(shim_dir)
    plugins = [Plugin(EXEC, cni.install(exec_dir, exec_only=True), "pynetlink-cni",
                      {"CNI_PATH": f"{exec_dir}:{cni_path}"})]
    if installer.shim_executable() is None:
        print("cni benchmark: this pynetlink has no shim (csrc/shim not built): no shim+daemon",
              file=sys.stderr)
    else:
        shim = cni.install(shim_dir)
        os.unlink(shim + installer.EXEC_SUFFIX)       # served by the daemon, or failed: no fallback
        plugins.append(Plugin(SHIM, shim, "pynetlink-cni",
                              {"CNI_PATH": f"{shim_dir}:{cni_path}", "PYNETLINK_CNI_SOCKET": socket_path}))
    if all(os.access(os.path.join(cni_path, p), os.X_OK) for p in ("bridge", "host-local")):
        plugins.append(Plugin(REFERENCE, os.path.join(cni_path, "bridge"), "bridge",
                              {"CNI_PATH": cni_path}))
    else:
        print(f"cni benchmark: no reference plugins in {cni_path} (apt-get install "
              "containernetworking-plugins); pynetlink-cni runs alone", file=sys.stderr)
    return plugins


def report(args, meta: dict, runs: dict, failed: dict, kernel: list, daemon_note: str) -> dict:
    summary = {name: summarize(rs) for name, rs in runs.items() if rs and name not in failed}
    print()
    print(table(summary, failed, args.concurrent))
    print()
    if kernel:
        unlisted = [u for u, _ in kernel]
        acked = [a for _, a in kernel]
        print(f"kernel's share of a DEL: RTM_DELLINK of a pod's eth0 (as ADD made it: veth on the "
              f"bridge, address, routes) from a ready netlink socket: the link unlisted (its "
              f"RTM_DELLINK notification read) after p50 {percentile(unlisted, 50) * 1e3:.2f} ms, "
              f"p99 {percentile(unlisted, 99) * 1e3:.2f} ms; the ACK after p50 "
              f"{percentile(acked, 50) * 1e3:.2f} ms, p99 {percentile(acked, 99) * 1e3:.2f} ms "
              f"(the RCU barrier and the wait for the device's last references, after RTNL is "
              f"released; {len(kernel)} pods, {args.n} after each repeat's contenders)")
        for name, share, what in ((SHIM, unlisted, "the kernel's unlisting (the daemon answers "
                                   "then; the rest of the deletion finishes after its answer)"),
                                  (REFERENCE, acked, "the kernel's whole deletion")):
            if name in summary:
                total, kern = summary[name]["del_p50_ms"], percentile(share, 50) * 1e3
                print(f"  {name}: DEL p50 {total:.1f} ms = {kern:.1f} ms of {what} + "
                      f"{total - kern:.1f} ms of the rest (process start, IPAM, the plugin's own work)")
    print(f"latency: one plugin execution (fork/exec to exit), percentiles over every pod of every "
          f"repeat ({args.n * args.repeat} per contender); VERSION: {args.versions} calls per run; "
          f"{args.concurrent}×: {args.concurrent} plugin processes started together, wall time until "
          f"the last exits, median of {args.repeat} ({args.concurrent}×VERSION: what starting them "
          f"costs the harness and the plugins, no network work); CPU: user + sys of the plugin processes (and "
          f"their IPAM children; not the daemon's), ADD + DEL, per pod; ÷ ref: over the reference's "
          f"(below 1: faster).  pynetlink-cni (both modes) runs host-local in-process; the "
          f"reference execs its host-local.  {daemon_note}")
    print(f"reproduce (as root): apt-get install containernetworking-plugins && {meta['command']}")
    return summary


def main(argv) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("cni benchmark: needs root (network namespaces, mounts)", file=sys.stderr)
        return 2
    from sandbox import ensure_sandbox
    ensure_sandbox(os.path.abspath(__file__), argv)       # re-executes unless inside already

    # -- inside the private network + mount namespace from here on --
    json_file = open(args.json, "w") if args.json else None   # before /run is covered
    profile = os.path.abspath(args.profile) if args.profile else None
    sys.stdout.reconfigure(line_buffering=True)
    from sandbox import NetnsDir, cover_run, describe_sandbox, disable_ipv6
    workdir = cover_run()
    netns = NetnsDir()
    disable_ipv6("/proc/self/ns/net")            # the plugins' host: the sandbox's namespace
    daemon = DaemonProcess(workdir, profile, args.workers)
    try:
        plugins = contenders(workdir, args, daemon.socket)
        command = " ".join(["python3", "benchmarks/cni.py", *argv])
        meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
                "reference": reference_version() if plugins[-1].name == REFERENCE else None,
                "n": args.n, "repeat": args.repeat, "concurrent": args.concurrent,
                "daemon_workers": 1 if profile else args.workers or daemon_default_workers(),
                "command": command, "sandbox": describe_sandbox()}
        print(f"cni benchmark  {meta['date']}  kernel {meta['kernel']}  {meta['cpus']} CPUs  "
              f"Python {meta['python']}")
        print(f"reference: {meta['reference']}; n={args.n} pods per run, {args.concurrent} concurrent, "
              f"{args.repeat} repeat(s); daemon: {meta['daemon_workers']} worker(s)")
        runs: dict = {p.name: [] for p in plugins}
        failed: dict = {}
        kernel: list = []
        for repeat in range(args.repeat):
            k = repeat % len(plugins)
            for plugin in plugins[k:] + plugins[:k]:
                r = one_run(plugin, args, netns, workdir, repeat)
                status = "ok" if r["ok"] else f"FAILED: {r['error']}"
                if r["ok"]:
                    runs[plugin.name].append(r)
                    status += (f"  ADD {r['add']['seconds']:.2f} s, DEL {r['delete']['seconds']:.2f} s, "
                               f"{args.concurrent}×ADD {r['cadd']['seconds']:.2f} s, "
                               f"{args.concurrent}×DEL {r['cdel']['seconds']:.2f} s")
                else:
                    failed[plugin.name] = r["error"]
                print(f"  run {repeat + 1}/{args.repeat} {plugin.name}: {status}")
            kernel += kernel_delete(plugins[0], args, netns, workdir, repeat)   # in every repeat
    finally:
        served = daemon.requests_served()
        code = daemon.stop()
    inside = {c: daemon.durations(c) for c in ("ADD", "DEL")}
    daemon_note = (f"The daemon served {served} requests and exited {code} on SIGTERM; its own time "
                   f"per request (from its log, one-at-a-time phases), p50: " + ", ".join(
                       f"{c} {percentile(v, 50):.1f} ms" for c, v in inside.items() if v) + ".")
    if code != 0:
        failed["daemon"] = f"exit {code}: {daemon.log()[-1000:]}"
    summary = report(args, meta, runs, failed, kernel, daemon_note)
    if json_file:
        json.dump({"meta": meta, "summary": summary, "failed": failed, "kernel_del_s": kernel,
                   "runs": runs}, json_file, indent=1)
        json_file.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
