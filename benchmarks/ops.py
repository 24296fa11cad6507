#!/usr/bin/env python3
"""Per-operation latency: pynetlink vs iproute2 (``ip``, ``bridge``) vs pyroute2, in one run;
then events decoded per second, pynetlink vs pyroute2 (``benchmarks/events.py``).

Each contender works in a scratch network namespace of its own that this
script creates and always removes, never in the machine's own namespace:

* pynetlink: ``pn.netns.create()`` (anonymous, held by an fd) and
  ``Handle(netns=fd)``;
* iproute2: ``ip netns add pnbench-PID-XXXXXX`` and one ``ip -n NAME ...``
  subprocess per operation (removed with ``ip netns del``);
* pyroute2: another anonymous namespace; ``IPRoute()`` is opened while the
  calling thread is inside it (``pn.netns.entered(fd)``), so the socket lives
  there without a fork.  ``IPRoute(netns=...)`` would fork a child to make the
  socket: that only changes the cost of opening the handle, which is shown
  apart ("opening a handle") and is not part of the per-operation numbers.

Every operation is given an interface *name*, as a user would: pynetlink and
``ip`` resolve it themselves; for pyroute2 the idiomatic ``link_lookup`` /
``ifname=`` calls are timed with the operation.

Timing: ``time.perf_counter_ns`` around each single operation (or pair, for the
up+down and create+delete cycles); contenders are interleaved in rounds, in
rotating order, so that noise on this shared machine falls on all of them; the
result is the median (and p90) per contender and the ratio peer / pynetlink.
Absolute numbers are noisy, ratios less so.  Nothing here asserts a timing.

Usage (as root)::

    python benchmarks/ops.py [--repeat N] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

import pynetlink as pn
from _common import dist_version, markdown_table, run_meta, write_report

try:
    import pyroute2
    from pyroute2 import IPRoute
except ImportError:             # benchmark-only extra: pip install -e '.[bench]'
    pyroute2 = None
    IPRoute = None

# Names and documentation-range addresses used inside the scratch namespaces.
NS_PREFIX = "pnbench-"
NETNS_DIR = "/run/netns"
LINK, PEER = "bench0", "bench1"          # the long-lived veth pair every op works on
CYCLE_A, CYCLE_B = "benchc0", "benchc1"  # created and deleted by the veth cycle
KIND_CYCLE = "benchk0"                   # created and deleted by the macvlan/vxlan cycles
VXLAN = "benchvx0"                       # the long-lived vxlan device the FDB ops work on
VNI, VXLAN_PORT, VXLAN_LOCAL = 42, 4789, "192.0.2.1"
CYCLE_VNI = 43
NEIGH_IP, NEIGH_MAC = "192.0.2.7", "02:00:00:00:00:07"
FDB_MAC, FDB_DST = "02:00:00:00:00:08", "198.51.100.2"
ADDR_IP, ADDR_PREFIX, ADDR_BRD = "192.0.2.1", 24, "192.0.2.255"
ADDR = f"{ADDR_IP}/{ADDR_PREFIX}"
MTUS = (1400, 1450)                      # alternate: setting the same MTU is a kernel no-op

CMD_TIMEOUT = 20.0                       # seconds, any one ip subprocess


def now_ns() -> int:
    return time.perf_counter_ns()


# -- signals: turn SIGTERM/SIGHUP into an exception so every finally runs -----------

class Terminated(BaseException):
    pass


MAIN_PID = os.getpid()


def _raise_terminated(signum, _frame):
    if os.getpid() != MAIN_PID:
        # a forked child (pyroute2's IPRoute(netns=...) makes one): die the
        # default way; never unwind into this run's cleanup from there
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def signals_ignored():
    """Cleanup must not be cut short by a second Ctrl-C (children inherit SIG_IGN too)."""
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def run(args, *, input=None, capture=False) -> subprocess.CompletedProcess:
    """One subprocess, bounded in time; raises with ip's own message on failure."""
    proc = subprocess.run(args, input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=CMD_TIMEOUT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


# -- the contenders ---------------------------------------------------------------
#
# Each has the same methods; each method is one user-level operation by name.

class PynetlinkContender:
    label = "pynetlink"

    def __init__(self):
        self.fd = -1
        self.h: Optional[pn.Handle] = None

    def __enter__(self):
        try:
            self.fd = pn.netns.create()
            self.h = pn.Handle(netns=self.fd)
            self.h.create_veth_pair(LINK, PEER)
            self.h.create_vxlan(VXLAN, VNI, local=VXLAN_LOCAL, dstport=VXLAN_PORT)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if os.getpid() != MAIN_PID:
            return
        with signals_ignored():
            if self.h is not None:
                self.h.close()
                self.h = None
            if self.fd >= 0:                 # the namespace (and its links) go with it
                os.close(self.fd)
                self.fd = -1

    def link_index(self):
        return self.h.link_index(LINK)

    def set_mtu(self, mtu):
        self.h.set_mtu(LINK, mtu)

    def up_down(self):
        self.h.interface_up(LINK)
        self.h.interface_down(LINK)

    def add_ip(self):
        self.h.set_interface_ip(LINK, ADDR)

    def reset_link(self):                    # untimed: pynetlink has no address removal
        self.h.delete_link(LINK)
        self.h.create_veth_pair(LINK, PEER)

    def veth_cycle(self):
        self.h.create_veth_pair(CYCLE_A, CYCLE_B)
        self.h.delete_link(CYCLE_A)

    def macvlan_cycle(self):
        self.h.create_macvlan(KIND_CYCLE, LINK, mode="bridge")
        self.h.delete_link(KIND_CYCLE)

    def vxlan_cycle(self):
        self.h.create_vxlan(KIND_CYCLE, CYCLE_VNI, local=VXLAN_LOCAL, dstport=VXLAN_PORT)
        self.h.delete_link(KIND_CYCLE)

    def neigh_pair(self):
        self.h.add_neighbour(NEIGH_IP, NEIGH_MAC, LINK)
        self.h.delete_neighbour(NEIGH_IP, LINK)

    def fdb_pair(self):
        self.h.add_fdb(FDB_MAC, VXLAN, dst=FDB_DST)
        self.h.delete_fdb(FDB_MAC, VXLAN, dst=FDB_DST)


class IpContender:
    label = "ip"

    def __init__(self):
        self.ns = f"{NS_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.path = os.path.join(NETNS_DIR, self.ns)

    def __enter__(self):
        try:
            run(["ip", "netns", "add", self.ns])
            self.ip("link", "add", LINK, "type", "veth", "peer", "name", PEER)
            self.ip("link", "add", VXLAN, "type", "vxlan", "id", str(VNI), "local", VXLAN_LOCAL,
                    "dstport", str(VXLAN_PORT))
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if os.getpid() != MAIN_PID:          # only the run that made it removes it
            return
        with signals_ignored():
            if os.path.lexists(self.path):
                subprocess.run(["ip", "netns", "del", self.ns], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=CMD_TIMEOUT)
            if os.path.lexists(self.path):
                print(f"WARNING: could not remove namespace {self.ns}: "
                      f"run `ip netns del {self.ns}`", file=sys.stderr)

    def ip(self, *args, capture=False):
        return run(["ip", "-n", self.ns, *args], capture=capture)

    def link_index(self):
        out = self.ip("-j", "link", "show", "dev", LINK, capture=True).stdout
        return json.loads(out)[0]["ifindex"]

    def set_mtu(self, mtu):
        self.ip("link", "set", "dev", LINK, "mtu", str(mtu))

    def up_down(self):
        self.ip("link", "set", "dev", LINK, "up")
        self.ip("link", "set", "dev", LINK, "down")

    def add_ip(self):
        self.ip("addr", "add", ADDR, "brd", "+", "dev", LINK)

    def reset_link(self):
        run(["ip", "-n", self.ns, "-batch", "-"],
            input=f"link del {LINK}\nlink add {LINK} type veth peer name {PEER}\n")

    def veth_cycle(self):
        self.ip("link", "add", CYCLE_A, "type", "veth", "peer", "name", CYCLE_B)
        self.ip("link", "del", CYCLE_A)

    def macvlan_cycle(self):
        self.ip("link", "add", KIND_CYCLE, "link", LINK, "type", "macvlan", "mode", "bridge")
        self.ip("link", "del", KIND_CYCLE)

    def vxlan_cycle(self):
        self.ip("link", "add", KIND_CYCLE, "type", "vxlan", "id", str(CYCLE_VNI), "local",
                VXLAN_LOCAL, "dstport", str(VXLAN_PORT))
        self.ip("link", "del", KIND_CYCLE)

    def neigh_pair(self):
        self.ip("neigh", "add", NEIGH_IP, "lladdr", NEIGH_MAC, "dev", LINK, "nud", "permanent")
        self.ip("neigh", "del", NEIGH_IP, "dev", LINK)

    def fdb_pair(self):
        run(["bridge", "-n", self.ns, "fdb", "add", FDB_MAC, "dev", VXLAN, "dst", FDB_DST])
        run(["bridge", "-n", self.ns, "fdb", "del", FDB_MAC, "dev", VXLAN, "dst", FDB_DST])


class Pyroute2Contender:
    label = "pyroute2"

    def __init__(self):
        self.fd = -1
        self.ipr = None

    def __enter__(self):
        try:
            self.fd = pn.netns.create()
            with pn.netns.entered(self.fd):  # the socket is made in the namespace, no fork
                self.ipr = IPRoute()
            self.ipr.link("add", ifname=LINK, kind="veth", peer=PEER)
            self.ipr.link("add", ifname=VXLAN, kind="vxlan", vxlan_id=VNI, vxlan_local=VXLAN_LOCAL,
                          vxlan_port=VXLAN_PORT)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if os.getpid() != MAIN_PID:
            return
        with signals_ignored():
            if self.ipr is not None:
                self.ipr.close()
                self.ipr = None
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def link_index(self):
        return self.ipr.link_lookup(ifname=LINK)[0]

    def set_mtu(self, mtu):
        self.ipr.link("set", ifname=LINK, mtu=mtu)

    def up_down(self):
        self.ipr.link("set", ifname=LINK, state="up")
        self.ipr.link("set", ifname=LINK, state="down")

    def add_ip(self):
        index = self.ipr.link_lookup(ifname=LINK)[0]
        self.ipr.addr("add", index=index, address=ADDR_IP, prefixlen=ADDR_PREFIX,
                      broadcast=ADDR_BRD)

    def reset_link(self):
        self.ipr.link("del", ifname=LINK)
        self.ipr.link("add", ifname=LINK, kind="veth", peer=PEER)

    def veth_cycle(self):
        self.ipr.link("add", ifname=CYCLE_A, kind="veth", peer=CYCLE_B)
        self.ipr.link("del", ifname=CYCLE_A)

    def macvlan_cycle(self):
        parent = self.ipr.link_lookup(ifname=LINK)[0]
        self.ipr.link("add", ifname=KIND_CYCLE, kind="macvlan", link=parent, macvlan_mode="bridge")
        self.ipr.link("del", ifname=KIND_CYCLE)

    def vxlan_cycle(self):
        self.ipr.link("add", ifname=KIND_CYCLE, kind="vxlan", vxlan_id=CYCLE_VNI,
                      vxlan_local=VXLAN_LOCAL, vxlan_port=VXLAN_PORT)
        self.ipr.link("del", ifname=KIND_CYCLE)

    def neigh_pair(self):
        index = self.ipr.link_lookup(ifname=LINK)[0]
        self.ipr.neigh("add", dst=NEIGH_IP, lladdr=NEIGH_MAC, ifindex=index, state="permanent")
        index = self.ipr.link_lookup(ifname=LINK)[0]
        self.ipr.neigh("del", dst=NEIGH_IP, ifindex=index)

    def fdb_pair(self):
        index = self.ipr.link_lookup(ifname=VXLAN)[0]
        self.ipr.fdb("add", ifindex=index, lladdr=FDB_MAC, dst=FDB_DST)
        index = self.ipr.link_lookup(ifname=VXLAN)[0]
        self.ipr.fdb("del", ifindex=index, lladdr=FDB_MAC, dst=FDB_DST)


# -- operations -------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    name: str
    unit: str                                       # what one sample is
    timed: Callable[[object, int], object]
    after: Optional[Callable[[object, int], object]] = None   # untimed, after each sample


OPS = [
    Op("link_index", "op", lambda c, i: c.link_index()),
    Op("set_mtu", "op", lambda c, i: c.set_mtu(MTUS[i % 2])),
    Op("interface_up+interface_down", "pair", lambda c, i: c.up_down()),
    Op("set_interface_ip", "op", lambda c, i: c.add_ip(), lambda c, i: c.reset_link()),
    Op("create_veth_pair+delete_link", "cycle", lambda c, i: c.veth_cycle()),
    Op("create_macvlan+delete_link", "cycle", lambda c, i: c.macvlan_cycle()),
    Op("create_vxlan+delete_link", "cycle", lambda c, i: c.vxlan_cycle()),
    Op("add_neighbour+delete_neighbour", "pair", lambda c, i: c.neigh_pair()),
    Op("add_fdb+delete_fdb", "pair", lambda c, i: c.fdb_pair()),
]


# -- statistics -------------------------------------------------------------------

def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(samples_ns, truncated):
    xs = sorted(x / 1000.0 for x in samples_ns)

    def r(v):
        return None if v is None else round(v, 2)
    return {
        "n": len(xs),
        "median_us": r(percentile(xs, 0.5)),
        "p90_us": r(percentile(xs, 0.9)),
        "min_us": r(xs[0] if xs else None),
        "mean_us": r(sum(xs) / len(xs) if xs else None),
        "truncated": truncated,
    }


# -- measuring ----------------------------------------------------------------------

class Clock:
    """The whole run's deadline; every loop also has a count."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds

    def expired(self):
        return time.monotonic() >= self.deadline


def measure(op, contenders, counts, rounds, warmup, budget_s, clock):
    """Samples of ``op`` for each contender, interleaved by rounds in rotating order.

    Each (op, contender) gets at most ``counts[label]`` samples and at most
    ``budget_s`` seconds (warm-up and untimed steps included); one sample at
    least unless the run's deadline has passed."""
    samples = {c.label: [] for c in contenders}
    spent = {c.label: 0.0 for c in contenders}
    truncated = {c.label: False for c in contenders}
    iteration = {c.label: 0 for c in contenders}

    def step(c, record):
        i = iteration[c.label]
        iteration[c.label] += 1
        t0 = now_ns()
        op.timed(c, i)
        t1 = now_ns()
        if op.after is not None:
            op.after(c, i)
        spent[c.label] += (now_ns() - t0) / 1e9
        if record:
            samples[c.label].append(t1 - t0)

    gc.collect()
    for c in contenders:
        for _ in range(warmup[c.label]):
            if spent[c.label] >= budget_s or clock.expired():
                break
            step(c, record=False)
    for r in range(rounds):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            want = counts[c.label]
            per_round = math.ceil(want / rounds)
            goal = min(want, per_round * (r + 1))
            while len(samples[c.label]) < goal:
                have = len(samples[c.label])
                if have and (spent[c.label] >= budget_s or clock.expired()):
                    truncated[c.label] = True
                    break
                if not have and clock.expired():
                    truncated[c.label] = True
                    break
                step(c, record=True)
    return {label: summarize(samples[label], truncated[label]) for label in samples}


def measure_setup(contenders_present, pyroute2_fd, pn_fd, count, clock):
    """One-off cost of opening a handle bound to a namespace (not per operation)."""
    out = {}

    def bench(label, fn):
        xs = []
        for _ in range(count):
            if xs and clock.expired():
                break
            t0 = now_ns()
            fn()
            xs.append(now_ns() - t0)
        out[label] = summarize(xs, len(xs) < count)

    def pn_open():
        pn.Handle(netns=pn_fd).close()
    bench("pynetlink Handle(netns=fd)", pn_open)
    if "pyroute2" in contenders_present:
        def p2_entered():
            with pn.netns.entered(pyroute2_fd):
                ipr = IPRoute()
            ipr.close()

        def p2_fork():
            IPRoute(netns=pyroute2_fd, flags=0).close()
        bench("pyroute2 IPRoute() inside pn.netns.entered(fd)", p2_entered)
        bench("pyroute2 IPRoute(netns=fd) (forks a child)", p2_fork)
    return out


# -- housekeeping ---------------------------------------------------------------------

def sweep_stale():
    """Remove pnbench- namespaces left by a run that was killed (its pid is gone)."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return
    for name in names:
        m = re.fullmatch(re.escape(NS_PREFIX) + r"(\d+)-[0-9a-f]{6}", name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue                        # its run is still alive
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        print(f"removing stale namespace {name} (pid {pid} is gone)", file=sys.stderr)
        subprocess.run(["ip", "netns", "del", name], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=CMD_TIMEOUT)


def ours_left():
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(f"{NS_PREFIX}{os.getpid()}-"))
    except FileNotFoundError:
        return []


def root_has(name):
    try:
        pn.link_index(name)
        return True
    except OSError:
        return False


def ip_version():
    try:
        return run(["ip", "-V"], capture=True).stdout.strip()
    except Exception as e:              # noqa: BLE001 - informational only
        return f"unknown ({e})"


# -- output ---------------------------------------------------------------------------

def fmt_us(v):
    if v is None:
        return "-"
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def fmt_cell(s):
    if not s or not s["n"]:
        return "-"
    mark = "*" if s["truncated"] else ""
    return f"{fmt_us(s['median_us'])} ({fmt_us(s['p90_us'])}){mark}"


def table(results, labels):
    peers = [lb for lb in labels if lb != "pynetlink"]
    head = ["operation"] + [f"{lb} µs median (p90)" for lb in labels] + [f"{p} / pynetlink" for p in peers]
    rows = []
    for op in OPS:
        res = results[op.name]
        name = op.name if op.unit == "op" else f"{op.name} (per {op.unit})"
        row = [name] + [fmt_cell(res["stats"].get(lb)) for lb in labels]
        for p in peers:
            ratio = res["ratios"].get(p)
            row.append("-" if ratio is None else f"{ratio:.1f}x")
        rows.append(row)
    return markdown_table(head, rows)


def counts_line(results, labels):
    parts = []
    for lb in labels:
        ns = sorted({results[op.name]["stats"][lb]["n"] for op in OPS if lb in results[op.name]["stats"]})
        parts.append(f"{lb} n={'/'.join(map(str, ns))}")
    return "samples per operation: " + ", ".join(parts)


# -- main -----------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=None,
                   help="samples per operation for pynetlink and pyroute2 (default 200; "
                        "ip gets half of it, at least 5: one subprocess is ~1-2 ms)")
    p.add_argument("--quick", action="store_true",
                   help="tiny counts, a few seconds in all (for CI); numbers are only indicative")
    p.add_argument("--json", metavar="PATH", help="write the results (and metadata) to PATH")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="deadline for the whole measurement (default 100, 15 with --quick)")
    a = p.parse_args(argv)
    if a.repeat is None:
        a.repeat = 8 if a.quick else 200
    if not 1 <= a.repeat <= 100_000:
        p.error("--repeat must be in [1, 100000]")
    if a.max_seconds is None:
        a.max_seconds = 15.0 if a.quick else 100.0
    if not 0 < a.max_seconds <= 3600:
        p.error("--max-seconds must be in (0, 3600]")
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("ops.py needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("ip") is None:
        print("ops.py needs iproute2's `ip`", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_terminated)
    signal.signal(signal.SIGHUP, _raise_terminated)

    ip_repeat = max(3 if args.quick else 5, args.repeat // 2)
    rounds = 2 if args.quick else 5
    counts = {"pynetlink": args.repeat, "pyroute2": args.repeat, "ip": ip_repeat}
    warmup = {"pynetlink": 1 if args.quick else 10, "pyroute2": 1 if args.quick else 10,
              "ip": 1 if args.quick else 3}
    setup_count = 3 if args.quick else 20

    meta = {
        **run_meta(args.quick),
        "pynetlink": getattr(pn, "__version__", None) or dist_version("pynetlink"),
        "pyroute2": getattr(pyroute2, "__version__", None) if pyroute2 else None,
        "iproute2": ip_version(),
        "counts": counts, "rounds": rounds, "warmup": warmup,
        "max_seconds": args.max_seconds,
    }
    print(f"pynetlink benchmark  {meta['date']}  kernel {meta['kernel']}  {meta['cpus']} CPUs  "
          f"Python {meta['python']}")
    print(f"pynetlink {meta['pynetlink']}, {meta['iproute2']}, "
          f"pyroute2 {meta['pyroute2'] or '(not importable)'}")
    if pyroute2 is None:
        print("pyroute2 is not importable: its column is skipped "
              "(pip install -e '.[bench]' to include it)")

    sweep_stale()
    for name in (LINK, PEER, CYCLE_A, CYCLE_B, KIND_CYCLE, VXLAN):
        if root_has(name):
            print(f"refusing to run: a link named {name} exists in this namespace", file=sys.stderr)
            return 2

    started = time.monotonic()
    results = {}
    setup = {}
    with contextlib.ExitStack() as stack:
        contenders = [stack.enter_context(PynetlinkContender()),
                      stack.enter_context(IpContender())]
        if pyroute2 is not None:
            contenders.append(stack.enter_context(Pyroute2Contender()))
        labels = [c.label for c in contenders]
        # per (operation, contender): twice its even share of the deadline, so that
        # no one slow measurement starves the rest; the deadline bounds them all
        budget_s = 2 * args.max_seconds / (len(OPS) * len(contenders))
        meta["budget_seconds_per_measurement"] = round(budget_s, 2)
        for name in (LINK, PEER):
            if root_has(name):              # a contender would be in the wrong namespace
                raise RuntimeError(f"{name} appeared in the machine's own namespace")
        print(f"namespaces: pynetlink anonymous fd, ip `{contenders[1].ns}`"
              + (", pyroute2 anonymous fd (IPRoute() opened inside it, no fork)"
                 if pyroute2 is not None else ""))
        counts = {lb: counts[lb] for lb in labels}
        meta["counts"] = counts
        print(f"samples per operation: {counts} (after {warmup['pynetlink']}/{warmup['ip']} warm-up), "
              f"{rounds} interleaved rounds; running...", flush=True)

        clock = Clock(args.max_seconds)
        for op in OPS:
            t0 = time.monotonic()
            stats = measure(op, contenders, counts, rounds, warmup, budget_s, clock)
            base = stats["pynetlink"]["median_us"]
            ratios = {lb: (stats[lb]["median_us"] / base if stats[lb]["n"] and base else None)
                      for lb in labels if lb != "pynetlink"}
            results[op.name] = {"unit": op.unit, "stats": stats, "ratios": ratios}
            print(f"  {op.name}: {time.monotonic() - t0:.1f}s", flush=True)

        setup_clock = Clock(10.0 if not args.quick else 3.0)
        setup = measure_setup(labels, contenders[2].fd if pyroute2 is not None else -1,
                              contenders[0].fd, setup_count, setup_clock)
    event_figures = None
    if pyroute2 is not None:                # events/s decoded: only pyroute2 has a peer API
        import events as event_bench        # benchmarks/events.py, beside this script
        t0 = time.monotonic()
        event_figures = event_bench.measure(200 if args.quick else 1000, 2 if args.quick else 5)
        print(f"  events decoded per second: {time.monotonic() - t0:.1f}s", flush=True)
    elapsed = time.monotonic() - started

    left = ours_left()
    print()
    print(table(results, labels))
    print()
    print("µs per operation (per pair/cycle where marked), median with p90 in brackets; "
          "ratio = peer median / pynetlink median (higher: pynetlink faster).")
    print(counts_line(results, labels) + ("; * = cut short by the time bound"
                                          if any(s["truncated"] for r in results.values()
                                                 for s in r["stats"].values()) else ""))
    print("\nopening a handle bound to the namespace (one-off, not in the table above):")
    for label, s in setup.items():
        print(f"  {label:48s} {fmt_us(s['median_us']):>8} µs median (p90 {fmt_us(s['p90_us'])}), n={s['n']}")
    if event_figures is not None:
        print(f"\nevents decoded per second (address notifications, {event_figures['events']} per "
              f"round, median of {event_figures['rounds']} rounds; benchmarks/events.py):")
        print(f"  pynetlink {event_figures['pynetlink']:>12,.0f} /s   pyroute2 "
              f"{event_figures['pyroute2']:>12,.0f} /s   pynetlink / pyroute2 "
              f"{event_figures['ratio']:.1f}x")
    print(f"\nwall time {elapsed:.1f}s; namespaces of this run left: {left or 'none'}")

    if args.json:
        meta["wall_seconds"] = round(elapsed, 2)
        write_report(args.json, {"meta": meta, "results": results, "handle_open": setup,
                                 "events": event_figures, "leftover_namespaces": left})
    return 1 if left else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, Terminated) as e:
        print(f"\ninterrupted ({type(e).__name__}); scratch namespaces removed", file=sys.stderr)
        sys.exit(130)
