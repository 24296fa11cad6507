#!/usr/bin/env python3
"""Container network churn: N containers set up and torn down again, by every
contender, in one run — iproute2 (one `ip` per operation, and `ip -batch`),
pyroute2 (forking `IPRoute(netns=...)` and without fork), pynetlink
(strategies in place and create-then-move, and `pynetlink.bulk`), and a C
floor of raw rtnetlink (floor.c, compiled here with gcc -O2).

Per container: a veth whose host end is on br0 (MTU 1450, up) and whose
other end is eth0 inside the container's network namespace (MTU 1450, up,
192.0.2.X/24, default route via 192.0.2.1), and lo up; with --dual-stack
also 2001:db8::Y/64 and a default route via 2001:db8::1.  Teardown removes the
host ends (their peers go with them).  Setup and teardown are timed
separately (wall time; user and sys CPU of this process and its children);
every container is verified with `ip -j` after setup and after teardown,
untimed, and a contender that fails is reported as FAILED, never as a number.

Everything runs inside a private network + mount namespace: the script
re-executes itself under `unshare --net --mount --propagation private`,
covers /run with a tmpfs of its own and names its namespaces there, so the
machine's own network and /run/netns are never touched and nothing can be
left behind, even if the run is killed.  Container namespaces (fresh for
every contender and repeat) and the host namespace with br0 are made before
timing starts.  Repeats interleave the contenders (rotating their order);
the table shows medians.  IPv6 keeps the kernel's defaults in every namespace
of the run (links that come up get fe80:: and send DAD, RS and MLD, as they
would on a real host) unless --ipv6-disabled.  Nothing asserts a timing: the exit status is 1
only when a contender's results are wrong (or it failed / hit its time bound).

Usage (as root):
    python benchmarks/churn/run.py [-n 100] [--repeat 3] [--only ID[:PATH],...]
                                   [--quick] [--json PATH] [--run-timeout S]
                                   [--ipv6-disabled | --dual-stack]
"""
from __future__ import annotations

import argparse
import datetime
import gc
import glob
import json
import os
import platform
import resource
import signal
import statistics
import sys
import time
import traceback

sys.dont_write_bytecode = True          # leave no __pycache__ in the checkout
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# Measure the pynetlink of this checkout when it is built in place (editable
# install or `python setup.py build_ext -i`), whatever else is on sys.path.
if glob.glob(os.path.join(ROOT, "pynetlink", "_pynetlink_cffi*.so")):
    sys.path.insert(1, ROOT)

# (contender, path) in table order; contenders.CONTENDERS has the same list with factories
SPECS = [("floor", "in-place"), ("pynetlink-bulk", "in-place"),
         ("pynetlink", "in-place"), ("pynetlink", "move"),
         ("pyroute2", "in-place"), ("pyroute2", "move"),
         ("pyroute2-fork", "in-place"), ("pyroute2-fork", "move"),
         ("ip-batch", "in-place"), ("ip-batch", "move"),
         ("ip", "in-place"), ("ip", "move")]
IDS = ["floor", "pynetlink-bulk", "pynetlink", "pyroute2", "pyroute2-fork", "ip-batch", "ip"]
PATHS = ["in-place", "move"]
QUICK_N = 10
QUICK_SKIP: set = set()        # (id, path) left out of --quick runs; see README


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", type=int, default=100, help="containers per run (default 100)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs per contender and path, interleaved; the median is shown (default 3)")
    p.add_argument("--only", default=None, metavar="ID[:PATH],...",
                   help=f"run only these contenders (ids: {', '.join(IDS)}; paths: "
                        f"{', '.join(PATHS)}), e.g. --only pynetlink-bulk,floor,ip:in-place")
    p.add_argument("--quick", action="store_true",
                   help=f"n={QUICK_N}, one repeat: a CI smoke run (exit 0 when results are correct)")
    p.add_argument("--json", metavar="PATH", help="write every run and the summary to PATH")
    p.add_argument("--report", metavar="PATH",
                   help="print the table of a file written by --json again, and exit")
    p.add_argument("--ipv6-disabled", action="store_true",
                   help="disable IPv6 in every namespace of the run (untimed), so that nothing is "
                        "sent. By default the kernel's defaults stay: every link that comes up and "
                        "keeps IPv6 on gets an fe80:: address and sends DAD, router solicitations "
                        "and MLD reports, which br0 floods to every port (work that grows as N^2)")
    p.add_argument("--dual-stack", action="store_true",
                   help="every container also gets 2001:db8::X/64 (X = its index + 2, in hex) and "
                        "a default IPv6 route via 2001:db8::1, which br0 gets (untimed)")
    p.add_argument("--ipv6", action="store_true", help=argparse.SUPPRESS)   # old flag: now the default
    p.add_argument("--settle", type=float, default=2.0, metavar="S",
                   help="seconds after each setup during which the machine's busy CPU is still "
                        "counted (the 'machine' column; default 2, --quick 0.2)")
    p.add_argument("--run-timeout", type=float, default=None, metavar="S",
                   help="time bound of one contender's run, setup + teardown "
                        "(default 60 + 0.6 s per container)")
    a = p.parse_args(argv)
    if a.dual_stack and a.ipv6_disabled:
        p.error("--dual-stack needs IPv6: it cannot be combined with --ipv6-disabled")
    if a.quick:
        a.n, a.repeat, a.settle = QUICK_N, 1, min(a.settle, 0.2)
    if not 0 <= a.settle <= 60:
        p.error("--settle must be in [0, 60] seconds")
    if not 1 <= a.n <= 20000:
        p.error("-n must be in [1, 20000]")
    if not 1 <= a.repeat <= 100:
        p.error("--repeat must be in [1, 100]")
    if a.run_timeout is None:
        a.run_timeout = 60 + 0.6 * a.n
    if not 1 <= a.run_timeout <= 86400:
        p.error("--run-timeout must be in [1, 86400] seconds")
    a.selected = select(p, a.only, a.quick)
    return a


def select(p, only, quick):
    specs = SPECS
    if only is None:
        return [s for s in specs if not (quick and s in QUICK_SKIP)]
    chosen = []
    for item in (x.strip() for x in only.split(",") if x.strip()):
        cid, _, path = item.partition(":")
        if cid not in IDS:
            p.error(f"--only: unknown contender {cid!r} (known: {', '.join(IDS)})")
        if path and path not in PATHS:
            p.error(f"--only: unknown path {path!r} (known: {', '.join(PATHS)})")
        matches = [s for s in specs if s[0] == cid and (not path or s[1] == path)]
        if not matches:
            p.error(f"--only: {item} does not exist (floor and pynetlink-bulk are in-place only)")
        chosen += [m for m in matches if m not in chosen]
    return [s for s in specs if s in chosen]


# -- signals: orderly unwinding on SIGTERM/SIGHUP, and a hard bound per run ---------------

MAIN_PID = os.getpid()


class Terminated(BaseException):
    pass


class RunTimeout(Exception):
    """A run outlived its hard time bound (SIGALRM): a contender hung."""


def _in_forked_child(signum) -> bool:
    """pyroute2's IPRoute(netns=...) forks a helper and ends it with SIGTERM:
    a forked child must die the default way, never unwind into this run."""
    if os.getpid() == MAIN_PID:
        return False
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    os._exit(128 + signum)


def _terminate(signum, _frame):
    if not _in_forked_child(signum):
        raise Terminated(f"signal {signum}")


def _alarm(signum, _frame):
    if not _in_forked_child(signum):
        raise RunTimeout("hard time bound of the run exceeded (a contender hung)")


def _main_process_only() -> None:
    """Cleanup code never runs in a forked child (it shares our mounts)."""
    if os.getpid() != MAIN_PID:
        os._exit(1)


# -- one run -----------------------------------------------------------------------------

def cpu() -> tuple:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + c.ru_utime, s.ru_stime + c.ru_stime


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy, all CPUs together
    (/proc/stat's first line less idle and iowait): it counts the kernel's
    softirq work on packets, which no process's getrusage does."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]   # user nice system idle iowait irq softirq steal
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def timed(fn, ctx, pn) -> dict:
    """One phase, in the host namespace: runner wall time, CPU (self + children)."""
    gc.collect()
    c0, t0 = cpu(), time.perf_counter()
    with pn.netns.entered(ctx.host_path):
        report = fn(ctx)
    t1, c1 = time.perf_counter(), cpu()
    return {"runner_seconds": t1 - t0, "runner_user_s": c1[0] - c0[0],
            "runner_sys_s": c1[1] - c0[1], "report": report}


def phase_numbers(contender, m: dict) -> dict:
    """seconds / user_s / sys_s of a phase: the runner's, or the program's own
    (the C floor times itself; its process is reaped only at the end)."""
    if contender.self_timed:
        r = m["report"]
        return {"seconds": r["seconds"], "user_s": r["user_s"], "sys_s": r["sys_s"]}
    return {"seconds": m["runner_seconds"], "user_s": m["runner_user_s"], "sys_s": m["runner_sys_s"]}


def one_run(spec, factory, args, env, repeat) -> dict:
    import pynetlink as pn
    from contenders import Container, Context, bridge_commands, ipv6_address
    from sandbox import Deadline, run, wait_netns_cleanup
    from verify import verify_setup, verify_teardown

    cid, path = spec
    out = {"contender": cid, "path": path, "repeat": repeat, "n": args.n, "ok": False}
    deadline = Deadline(args.run_timeout, f"{cid} {path}")
    contender = factory()
    netns = env["netns"]
    # the deadline is checked in every loop and bounds every subprocess; the
    # alarm is the backstop for a call that blocks inside a library
    signal.setitimer(signal.ITIMER_REAL, args.run_timeout + 15)
    try:
        t = time.perf_counter()
        ipv6 = not args.ipv6_disabled
        host_path = netns.add("host", ipv6=ipv6)
        run(["ip", "-n", "host", "-batch", "-"], input=bridge_commands(args.dual_stack))
        containers = [Container(index=i, name=f"c{i}", path=netns.add(f"c{i}", ipv6=ipv6),
                                address=f"192.0.2.{2 + i % 250}",
                                address6=ipv6_address(i) if args.dual_stack else "",
                                host=f"ch{i}", child=f"cc{i}")
                      for i in range(args.n)]
        out["namespaces_seconds"] = time.perf_counter() - t
        ctx = Context(host_ns="host", host_path=host_path, containers=containers,
                      deadline=deadline, workdir=env["workdir"], group=env["group"],
                      floor_binary=env["floor_binary"])
        contender.prepare(ctx)

        busy = machine_busy()
        s = timed(contender.setup, ctx, pn)
        time.sleep(args.settle)     # what the new links send once up: the storm comes after
        out["machine_busy_s"] = machine_busy() - busy
        out["setup"] = phase_numbers(contender, s)
        out["setup_runner"] = {k: v for k, v in s.items() if k != "report"}
        t = time.perf_counter()
        problems = verify_setup("host", containers, contender.host_names(ctx),
                                contender.group(ctx), deadline,
                                link_local=not args.ipv6_disabled)
        out["verify_setup_seconds"] = time.perf_counter() - t
        if problems:
            out["error"] = f"setup verification: {problems.summary()}"
            return out

        d = timed(contender.teardown, ctx, pn)
        out["teardown"] = phase_numbers(contender, d)
        out["teardown_runner"] = {k: v for k, v in d.items() if k != "report"}
        problems = verify_teardown("host", containers, contender.host_names(ctx), deadline)
        if problems:
            out["error"] = f"teardown verification: {problems.summary()}"
            return out
        out["ok"] = True
        return out
    except (KeyboardInterrupt, Terminated):
        raise
    except BaseException as e:                      # noqa: BLE001 - a contender's failure
        out["error"] = f"{type(e).__name__}: {e}"
        out["traceback"] = traceback.format_exc(limit=6)
        return out
    finally:
        _main_process_only()
        signal.setitimer(signal.ITIMER_REAL, 0)
        out["details"] = _safe(contender.details)
        try:
            contender.close()
        finally:
            pn.default_handle()      # this thread's handle: drop the one bound to the host namespace
            gc.collect()
            netns.reset()            # every namespace of the run is released here
        try:
            out["cleanup_wait_seconds"] = wait_netns_cleanup()
        except TimeoutError as e:        # the next run may be noisier; say so, go on
            out["cleanup_warning"] = str(e)
            print(f"  warning: {e}", file=sys.stderr, flush=True)


def _safe(fn):
    try:
        return fn()
    except Exception as e:            # noqa: BLE001 - informational only
        return {"details_error": repr(e)}


# -- reporting ---------------------------------------------------------------------------

def summarize(runs: list, n: int) -> dict:
    """Medians over the repeats of one contender and path."""
    def med(key, phase):
        return statistics.median(r[phase][key] for r in runs)
    setup_s, teardown_s = med("seconds", "setup"), med("seconds", "teardown")
    cpu_ms = lambda k: statistics.median(                          # noqa: E731
        (r["setup"][k] + r["teardown"][k]) * 1000 / n for r in runs)
    return {
        "setup_per_s": statistics.median(n / r["setup"]["seconds"] for r in runs),
        "teardown_per_s": statistics.median(n / r["teardown"]["seconds"] for r in runs),
        "setup_seconds": setup_s, "teardown_seconds": teardown_s,
        "user_ms_per_container": cpu_ms("user_s"), "sys_ms_per_container": cpu_ms("sys_s"),
        "cpu_ms_per_container": statistics.median(
            sum(r[ph][k] for ph in ("setup", "teardown") for k in ("user_s", "sys_s")) * 1000 / n
            for r in runs),
        "setup_user_ms_per_container": statistics.median(r["setup"]["user_s"] * 1000 / n for r in runs),
        "setup_sys_ms_per_container": statistics.median(r["setup"]["sys_s"] * 1000 / n for r in runs),
        "machine_ms_per_container": statistics.median(
            r["machine_busy_s"] * 1000 / n for r in runs) if all("machine_busy_s" in r for r in runs)
        else None,
        "repeats": len(runs),
    }


def fmt_rate(v):
    return "-" if v is None else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def fmt_ms(v):
    return "<0.01" if 0 <= v < 0.005 else f"{v:.2f}"


def fmt_ratio(v):
    if v is None:
        return "-"
    return f"{v:.3f}x" if v < 0.1 else f"{v:.2f}x"


def table(rows: list) -> str:
    head = ["contender", "path", "setup ctr/s", "teardown ctr/s", "user ms/ctr", "sys ms/ctr",
            "cpu ms/ctr", "machine ms/ctr", "setup vs floor", "teardown vs floor"]
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])


def build_rows(specs, summary, status, floor_key=("floor", "in-place")):
    floor = summary.get(floor_key)
    rows = []
    for spec in specs:
        cid, path = spec
        st = status[spec]
        if st != "ok":
            rows.append([cid, path, "FAILED" if st.startswith("FAILED") else st] + [""] * 7)
            continue
        s = summary[spec]
        ratio_setup = s["setup_per_s"] / floor["setup_per_s"] if floor else None
        ratio_teardown = s["teardown_per_s"] / floor["teardown_per_s"] if floor else None
        s["setup_vs_floor"], s["teardown_vs_floor"] = ratio_setup, ratio_teardown
        rows.append([cid, path, fmt_rate(s["setup_per_s"]), fmt_rate(s["teardown_per_s"]),
                     fmt_ms(s["user_ms_per_container"]), fmt_ms(s["sys_ms_per_container"]),
                     fmt_ms(s["cpu_ms_per_container"]),
                     fmt_ms(s["machine_ms_per_container"]) if s.get("machine_ms_per_container")
                     is not None else "-",
                     fmt_ratio(ratio_setup), fmt_ratio(ratio_teardown)])
    return rows


FOOTNOTE = ("ctr = container; rates are N / phase wall time; CPU = user and sys of this process "
            "and its children (the C floor: its own getrusage), setup + teardown, per container; "
            "cpu = user + sys (precise; the user/sys split is the kernel's tick-sampled estimate); "
            "machine = busy CPU of the whole machine (all CPUs, softirq included) from the start "
            "of setup until {settle} s after it, per container: the IPv6 traffic the new links "
            "send, and the bridge floods, mostly comes after setup returns; "
            "vs floor = rate / the C floor's rate in the same run; median of {repeat}; every "
            "container verified with `ip -j` after setup and after teardown.")


def report(path: str) -> int:
    """Print the table of a saved --json file again."""
    with open(path) as f:
        doc = json.load(f)
    meta = doc["meta"]
    summary = {(x["contender"], x["path"]): x for x in doc["summary"]}
    for x in summary.values():
        if "cpu_ms_per_container" not in x:                 # files from before that column
            x["cpu_ms_per_container"] = x["user_ms_per_container"] + x["sys_ms_per_container"]
    status = {tuple(k.split(":", 1)): v for k, v in doc["status"].items()}
    specs = [s for s in SPECS if s in status]
    print(f"{meta['command']}: {meta['date']}, kernel {meta['kernel']}, {meta['cpus']} CPUs, "
          f"n={meta['n']}, {condition(meta)}, pynetlink {meta.get('pynetlink_commit', '?')}")
    print(table(build_rows(specs, summary, status)))
    print()
    print(FOOTNOTE.format(repeat=meta["repeat"], settle=meta.get("settle", "?")))
    return 0


def condition(meta: dict) -> str:
    """The run's IPv6 condition, as the header and the README tables name it.
    Files from before --ipv6-disabled stored ``ipv6`` as a bool (True: on)."""
    ipv6 = meta.get("ipv6", False)
    if isinstance(ipv6, bool):
        ipv6 = "kernel defaults" if ipv6 else "disabled"
    text = "IPv6 disabled in the run's namespaces" if ipv6 == "disabled" else \
        "IPv6: kernel defaults in the run's namespaces"
    return text + ("; dual-stack (2001:db8::/64 on every container)" if meta.get("dual_stack") else "")


def source_state() -> str:
    """The checkout's commit (read-only git; no index refresh) and whether
    pynetlink's sources differ from it."""
    import subprocess
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], env=env,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "pynetlink",
                                "csrc", "setup.py"], env=env, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" + uncommitted changes" if dirty else "")


# -- main --------------------------------------------------------------------------------

def main(argv) -> int:
    args = parse_args(argv)
    if args.report:
        return report(args.report)
    if os.geteuid() != 0:
        print("churn benchmark: needs root (network namespaces, mounts)", file=sys.stderr)
        return 2
    from sandbox import ensure_sandbox
    ensure_sandbox(os.path.abspath(__file__), argv)       # re-executes unless inside already

    # -- inside the private network + mount namespace from here on --
    json_file = open(args.json, "w") if args.json else None   # before /run is covered
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    signal.signal(signal.SIGALRM, _alarm)
    sys.stdout.reconfigure(line_buffering=True)   # nothing unflushed for a fork to duplicate

    import pynetlink as pn
    import contenders as cs
    from sandbox import NetnsDir, cover_run, describe_sandbox, wait_netns_cleanup

    started = time.monotonic()
    workdir = cover_run()                  # tmpfs on /run: our work files and namespace names
    netns = NetnsDir()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "pynetlink_path": os.path.dirname(pn.__file__),
        **cs.versions(), "n": args.n, "repeat": args.repeat, "quick": args.quick,
        "run_timeout": args.run_timeout, "settle": args.settle, "floor_batch": cs.FLOOR_BATCH,
        "ipv6": "disabled" if args.ipv6_disabled else "kernel defaults",
        "dual_stack": args.dual_stack,
        "command": " ".join([os.path.basename(sys.executable), "benchmarks/churn/run.py", *argv]),
        "sandbox": describe_sandbox(), "pynetlink_commit": source_state(),
    }
    print(f"churn benchmark  {meta['date']}  kernel {meta['kernel']}  {meta['cpus']} CPUs  "
          f"Python {meta['python']}")
    print(f"pynetlink from {meta['pynetlink_path']} ({meta['pynetlink_commit']}), {meta['iproute2']}, "
          f"pyroute2 {meta['pyroute2'] or '(not importable)'}")
    print(f"n={args.n} containers per run, {args.repeat} repeat(s), interleaved; "
          f"{condition(meta)}; "
          f"private network + mount namespace (net ns inode {meta['sandbox']['net_ns_inode']})")

    factories = {(cid, path): f for cid, path, f in cs.CONTENDERS}
    assert list(factories) == SPECS, "run.SPECS and contenders.CONTENDERS differ"
    status, unavailable = {}, {}
    env = {"netns": netns, "workdir": workdir, "group": 4242, "floor_binary": None}
    for spec in args.selected:
        why = cs.UNAVAILABLE_CHECK[spec[0]]()
        if spec[0] == "floor" and why is None:
            try:
                env["floor_binary"], why = cs.compile_floor(workdir)
            except Exception as e:              # noqa: BLE001 - floor.c does not build
                status[spec] = f"FAILED: {e}"
                continue
        if why:
            unavailable[spec] = why
            status[spec] = "not available"
            print(f"  {spec[0]} {spec[1]}: not available: {why}")
        else:
            status[spec] = "ok"
    runnable = [s for s in args.selected if status[s] == "ok"]
    meta["pynetlink_bulk"] = "available" if ("pynetlink-bulk", "in-place") in runnable else \
        unavailable.get(("pynetlink-bulk", "in-place"), "not selected")

    runs = []
    interrupted = None
    try:
        meta["initial_cleanup_wait_seconds"] = wait_netns_cleanup()
        for r in range(args.repeat):
            order = runnable[r % len(runnable):] + runnable[:r % len(runnable)] if runnable else []
            for spec in order:
                if status[spec] != "ok":
                    continue                    # failed in an earlier repeat: no more numbers
                try:
                    res = one_run(spec, factories[spec], args, env, r)
                except RunTimeout as e:             # fired while one_run was unwinding
                    res = {"contender": spec[0], "path": spec[1], "repeat": r, "ok": False,
                           "error": str(e)}
                runs.append(res)
                if res["ok"]:
                    print(f"  [{r + 1}/{args.repeat}] {spec[0]:<14} {spec[1]:<8} "
                          f"setup {res['setup']['seconds']:8.3f} s "
                          f"({args.n / res['setup']['seconds']:7.1f}/s)  teardown "
                          f"{res['teardown']['seconds']:8.3f} s "
                          f"({args.n / res['teardown']['seconds']:7.1f}/s)  verified", flush=True)
                else:
                    status[spec] = f"FAILED: {res['error']}"
                    print(f"  [{r + 1}/{args.repeat}] {spec[0]:<14} {spec[1]:<8} FAILED: "
                          f"{res['error']}", flush=True)
                    if res.get("traceback"):
                        print("    " + res["traceback"].rstrip().replace("\n", "\n    "),
                              file=sys.stderr)
    except (KeyboardInterrupt, Terminated) as e:
        interrupted = type(e).__name__
    _main_process_only()

    summary = {}
    for spec in args.selected:
        ok = [x for x in runs if (x["contender"], x["path"]) == spec and x["ok"]]
        if status[spec] == "ok" and ok:
            summary[spec] = summarize(ok, args.n)
        elif status[spec] == "ok":
            status[spec] = "no runs"
    rows = build_rows(args.selected, summary, status)
    elapsed = time.monotonic() - started
    print()
    print(table(rows))
    print()
    print(FOOTNOTE.format(repeat=args.repeat, settle=args.settle))
    failed = {f"{k[0]}:{k[1]}": v for k, v in status.items() if v.startswith("FAILED")}
    for key, why in failed.items():
        print(f"{key}: {why}")
    for spec, why in unavailable.items():
        print(f"{spec[0]}:{spec[1]}: not available: {why}")
    left = netns.listing()
    print(f"wall time {elapsed:.1f} s" + (f"; interrupted ({interrupted})" if interrupted else ""))

    if json_file is not None:
        meta["wall_seconds"] = round(elapsed, 2)
        doc = {"meta": meta,
               "summary": [{"contender": k[0], "path": k[1], **v} for k, v in summary.items()],
               "status": {f"{k[0]}:{k[1]}": v for k, v in status.items()},
               "unavailable": {f"{k[0]}:{k[1]}": v for k, v in unavailable.items()},
               "runs": runs, "interrupted": interrupted, "names_left_in_private_run": left}
        json.dump(doc, json_file, indent=2, default=str)
        json_file.write("\n")
        json_file.close()
        print(f"results written to {args.json}")
    if interrupted:
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
