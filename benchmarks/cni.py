#!/usr/bin/env python3
"""CNI plugin latency: pynetlink-cni against the reference `bridge` plugin
(Debian's containernetworking-plugins), both with the reference `host-local`
IPAM, executed as a runtime executes them: fork/exec of the plugin with the
CNI_* environment and the network configuration on stdin, one pod at a time.

Per run and plugin: N pods ADDed (each: a veth from the bridge cnibench0 into
the pod's own network namespace, an address from 192.0.2.0/24, the gateway on
the bridge, a default route), checked (untimed: every pod's eth0 up, N ports
on the bridge, N addresses held by host-local), then DELeted, checked again.
Reported: ADD and DEL latency (p50, p99 over every pod of every repeat), pods
per second (N / wall time of the phase, median of the repeats) and the CPU
time of the plugin processes per pod (user + sys of the children).

Everything runs inside a private network + mount namespace (the churn
benchmark's sandbox: benchmarks/churn/sandbox.py): the plugins' "host" is the
sandbox's own network namespace, the pods' namespaces are named in a tmpfs on
/run/netns, IPAM state and the plugin executable live in a tmpfs on /run.
Nothing can be left behind, even if the run is killed.  IPv6 is disabled in
every namespace of the run (no DAD, router solicitations or MLD), for both
plugins alike.  Repeats interleave the plugins, alternating which goes first.

Usage (as root; the reference plugins: apt-get install containernetworking-plugins):
    python3 benchmarks/cni.py [-n 50] [--repeat 3] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
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
QUICK_N, QUICK_REPEAT = 5, 1


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=50, help=f"pods per run (default 50, at most {MAX_PODS})")
    p.add_argument("--repeat", type=int, default=3, help="runs per plugin, interleaved (default 3)")
    p.add_argument("--quick", action="store_true",
                   help=f"n={QUICK_N}, {QUICK_REPEAT} repeat: a CI smoke run")
    p.add_argument("--reference-dir", default=REFERENCE_DIR,
                   help=f"where bridge and host-local are (default {REFERENCE_DIR})")
    p.add_argument("--json", metavar="PATH", help="write every sample and the summary to PATH")
    p.add_argument("--run-timeout", type=float, default=None, metavar="S",
                   help="time bound of one plugin's run (default 60 + 2 s per pod)")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.repeat = QUICK_N, QUICK_REPEAT
    if not 1 <= a.n <= MAX_PODS:
        p.error(f"-n must be in [1, {MAX_PODS}]")
    if not 1 <= a.repeat <= 50:
        p.error("--repeat must be in [1, 50]")
    a.run_timeout = a.run_timeout or 60 + 2.0 * a.n
    return a


# -- executing a plugin as a runtime does ----------------------------------------------------------

def network_config(kind: str, data_dir: str) -> bytes:
    """The same network for both plugins but for ``type``."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "pnbench", "type": kind, "bridge": BRIDGE,
        "isGateway": True, "isDefaultGateway": True,
        "ipam": {"type": "host-local", "subnet": SUBNET, "dataDir": data_dir},
    }).encode()


class Plugin:
    """One contender: its executable and the CNI_PATH the runtime gives it."""

    def __init__(self, name: str, executable: str, cni_path: str):
        self.name, self.executable, self.cni_path = name, executable, cni_path

    def invoke(self, command: str, pod: int, netns_path: str, config: bytes, deadline) -> bytes:
        """fork/exec with the CNI_* environment and the config on stdin; the
        plugin's stdout.  A failure raises with the plugin's own error."""
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CNI_COMMAND": command, "CNI_CONTAINERID": f"pnbench-{pod}",
               "CNI_NETNS": netns_path, "CNI_IFNAME": "eth0", "CNI_ARGS": "",
               "CNI_PATH": self.cni_path}
        proc = subprocess.run([self.executable], input=config, env=env, capture_output=True,
                              timeout=deadline.timeout())
        if proc.returncode:
            raise RuntimeError(f"{self.name} {command} pod {pod}: exit {proc.returncode}: "
                               f"{proc.stdout.decode(errors='replace').strip()} "
                               f"{proc.stderr.decode(errors='replace').strip()[-500:]}")
        return proc.stdout


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def phase(plugin: Plugin, command: str, pods: list, config: bytes, deadline) -> dict:
    """Run ``command`` for every pod in turn; per-pod latencies, wall time, CPU."""
    latencies, outputs = [], []
    cpu0, start = children_cpu(), time.perf_counter()
    for i, path in enumerate(pods):
        deadline.check()
        t0 = time.perf_counter()
        outputs.append(plugin.invoke(command, i, path, config, deadline))
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    return {"latencies": latencies, "seconds": wall, "cpu_s": children_cpu() - cpu0,
            "outputs": outputs}


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


def check_added(pods: list, outputs: list, data_dir: str) -> None:
    """Every pod: eth0 up with the result's address; N ports on the bridge."""
    import pynetlink as pn
    for path, out in zip(pods, outputs):
        result = json.loads(out)
        if not result.get("ips") or not result["ips"][0]["address"].startswith("192.0.2."):
            raise AssertionError(f"unexpected result for {path}: {result}")
        with pn.Handle(netns=path) as h:
            if not h.get_link("eth0").up:
                raise AssertionError(f"eth0 of {path} is down")
    with pn.Handle() as host:
        bridge = host.get_link(BRIDGE)
        ports = [link for link in host.list_links() if link.master == bridge.index]
    if len(ports) != len(pods) or held_addresses(data_dir) != len(pods):
        raise AssertionError(f"{len(ports)} bridge ports and {held_addresses(data_dir)} addresses "
                             f"held for {len(pods)} pods")


def check_deleted(pods: list, data_dir: str) -> None:
    """No pod keeps eth0; no port is left on the bridge; no address is held."""
    import pynetlink as pn
    for path in pods:
        with pn.Handle(netns=path) as h:
            if any(link.name == "eth0" for link in h.list_links()):
                raise AssertionError(f"eth0 is still in {path}")
    with pn.Handle() as host:
        bridge = host.get_link(BRIDGE)
        ports = [link.name for link in host.list_links() if link.master == bridge.index]
    if ports or held_addresses(data_dir):
        raise AssertionError(f"left after DEL: ports {ports}, {held_addresses(data_dir)} addresses")


# -- one run -------------------------------------------------------------------------------------------

def one_run(plugin: Plugin, args, netns, workdir: str, repeat: int) -> dict:
    """N pods ADDed then DELeted by one plugin on fresh namespaces and a fresh bridge."""
    import pynetlink as pn
    from sandbox import Deadline, wait_netns_cleanup
    out = {"plugin": plugin.name, "repeat": repeat, "n": args.n, "ok": False}
    deadline = Deadline(args.run_timeout, f"{plugin.name} run {repeat}")
    data_dir = os.path.join(workdir, f"ipam-{plugin.name}-{repeat}")
    config = network_config(plugin.name, data_dir)
    try:
        pods = [netns.add(f"pod{i}") for i in range(args.n)]
        add = phase(plugin, "ADD", pods, config, deadline)
        check_added(pods, add.pop("outputs"), data_dir)
        delete = phase(plugin, "DEL", pods, config, deadline)
        delete.pop("outputs")
        check_deleted(pods, data_dir)
        out.update(add=add, delete=delete, ok=True)
    except Exception as e:                          # noqa: BLE001 - reported as FAILED
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
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
    return out


# -- reporting -----------------------------------------------------------------------------------------

def percentile(samples: list, p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * p // 100) - 1))]


def summarize(runs: list) -> dict:
    add = [x for r in runs for x in r["add"]["latencies"]]
    dele = [x for r in runs for x in r["delete"]["latencies"]]
    n = runs[0]["n"]
    return {
        "add_p50_ms": percentile(add, 50) * 1e3, "add_p99_ms": percentile(add, 99) * 1e3,
        "del_p50_ms": percentile(dele, 50) * 1e3, "del_p99_ms": percentile(dele, 99) * 1e3,
        "add_pods_per_s": statistics.median(n / r["add"]["seconds"] for r in runs),
        "del_pods_per_s": statistics.median(n / r["delete"]["seconds"] for r in runs),
        "cpu_ms_per_pod": statistics.median(
            (r["add"]["cpu_s"] + r["delete"]["cpu_s"]) * 1e3 / n for r in runs),
        "samples": len(add),
    }


def table(summary: dict, failed: dict) -> str:
    head = ["plugin", "ADD p50 ms", "ADD p99 ms", "DEL p50 ms", "DEL p99 ms", "ADD pods/s",
            "DEL pods/s", "CPU ms/pod", "ADD p50 ÷ bridge's", "DEL p50 ÷ bridge's"]
    rows = []
    ref = summary.get("bridge")
    for name in ("pynetlink-cni", "bridge"):
        if name in failed:
            rows.append([name, "FAILED"] + [""] * (len(head) - 2))
        elif name in summary:
            s = summary[name]
            ratios = [f"{s[k] / ref[k]:.2f}x" if ref else "-" for k in ("add_p50_ms", "del_p50_ms")]
            rows.append([name, f"{s['add_p50_ms']:.1f}", f"{s['add_p99_ms']:.1f}",
                         f"{s['del_p50_ms']:.1f}", f"{s['del_p99_ms']:.1f}",
                         f"{s['add_pods_per_s']:.0f}", f"{s['del_pods_per_s']:.0f}",
                         f"{s['cpu_ms_per_pod']:.1f}", *ratios])
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

def main(argv) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("cni benchmark: needs root (network namespaces, mounts)", file=sys.stderr)
        return 2
    from sandbox import ensure_sandbox
    ensure_sandbox(os.path.abspath(__file__), argv)       # re-executes unless inside already

    # -- inside the private network + mount namespace from here on --
    json_file = open(args.json, "w") if args.json else None   # before /run is covered
    sys.stdout.reconfigure(line_buffering=True)
    from sandbox import NetnsDir, cover_run, describe_sandbox, disable_ipv6
    from pynetlink import cni
    workdir = cover_run()
    netns = NetnsDir()
    disable_ipv6("/proc/self/ns/net")            # the plugins' host: the sandbox's namespace
    bindir = os.path.join(workdir, "bin")
    os.mkdir(bindir)
    cni.install(bindir)
    cni_path = f"{bindir}:{args.reference_dir}"
    plugins = [Plugin("pynetlink-cni", os.path.join(bindir, "pynetlink-cni"), cni_path)]
    have_reference = all(os.access(os.path.join(args.reference_dir, p), os.X_OK)
                         for p in ("bridge", "host-local"))
    if have_reference:
        plugins.append(Plugin("bridge", os.path.join(args.reference_dir, "bridge"), cni_path))
    else:
        print(f"cni benchmark: no reference plugins in {args.reference_dir} (apt-get install "
              "containernetworking-plugins); pynetlink-cni runs alone, and needs host-local",
              file=sys.stderr)
        if not os.access(os.path.join(args.reference_dir, "host-local"), os.X_OK):
            return 2

    command = " ".join(["python3", "benchmarks/cni.py", *argv])
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "kernel": platform.release(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "reference": reference_version() if have_reference else None,
            "n": args.n, "repeat": args.repeat, "command": command, "sandbox": describe_sandbox()}
    print(f"cni benchmark  {meta['date']}  kernel {meta['kernel']}  {meta['cpus']} CPUs  "
          f"Python {meta['python']}")
    print(f"reference: {meta['reference']}; n={args.n} pods per run, {args.repeat} repeat(s)")

    runs: dict = {p.name: [] for p in plugins}
    failed: dict = {}
    for repeat in range(args.repeat):
        order = plugins if repeat % 2 == 0 else plugins[::-1]
        for plugin in order:
            r = one_run(plugin, args, netns, workdir, repeat)
            status = "ok" if r["ok"] else f"FAILED: {r['error']}"
            if r["ok"]:
                runs[plugin.name].append(r)
                status += (f"  ADD {r['add']['seconds']:.2f} s, DEL {r['delete']['seconds']:.2f} s")
            else:
                failed[plugin.name] = r["error"]
            print(f"  run {repeat + 1}/{args.repeat} {plugin.name}: {status}")

    summary = {name: summarize(rs) for name, rs in runs.items() if rs and name not in failed}
    print()
    print(table(summary, failed))
    print()
    print(f"latency: one plugin execution (fork/exec to exit), percentiles over every pod of every "
          f"repeat ({args.n * args.repeat} per plugin); pods/s: N / wall time of the phase, median "
          f"of {args.repeat}; CPU: user + sys of the plugin processes (and their IPAM children), "
          "ADD + DEL, per pod; ÷ bridge's: latency over the reference's (above 1: slower).")
    print(f"reproduce (as root): apt-get install containernetworking-plugins && {command}")
    if json_file:
        json.dump({"meta": meta, "summary": summary, "failed": failed,
                   "runs": {k: [{kk: vv for kk, vv in r.items()} for r in v] for k, v in runs.items()}},
                  json_file, indent=1)
        json_file.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
