"""``pynetlink churn``: rounds of N containers set up and torn down by
``pynetlink.bulk`` in the private lab, each phase timed (wall and this
process's CPU).  The wiring is ``lab.BulkContainers``, which the churn
benchmark's ``pynetlink-bulk`` contender also runs (benchmarks/churn)."""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from typing import Callable, List, NamedTuple, Optional

from .common import emit
from .lab import BulkContainers, containers, private_host

PHASES = {"namespaces": "making namespaces", "setup": "setting up", "teardown": "tearing down"}


class ChurnRound(NamedTuple):
    repeat: int
    containers: int
    setup_s: float
    teardown_s: float
    cpu_s: float

    @property
    def setup_rate(self) -> float:
        return self.containers / self.setup_s

    @property
    def teardown_rate(self) -> float:
        return self.containers / self.teardown_s


Progress = Callable[[str, int, Optional[ChurnRound]], None]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def churn_round(k: int, count: int, progress: Progress) -> ChurnRound:
    """``count`` fresh container namespaces (untimed), bulk setup, bulk
    teardown; the calling thread is in the lab's host namespace."""
    progress("namespaces", k, None)
    with containers(count) as fds, BulkContainers(fds) as wired:
        progress("setup", k, None)
        cpu0, t0 = _cpu(), time.perf_counter()
        wired.setup()
        t1 = time.perf_counter()
        progress("teardown", k, None)
        t2 = time.perf_counter()
        wired.teardown()
        t3, cpu1 = time.perf_counter(), _cpu()
    return ChurnRound(k, count, t1 - t0, t3 - t2, cpu1 - cpu0)


def run_churn(count: int, repeat: int, progress: Progress) -> List[ChurnRound]:
    """``repeat`` rounds in one private lab.  ``progress(phase, round,
    result)`` is called as each phase starts ("namespaces", "setup",
    "teardown") and with the round's result when it ends ("done")."""
    rounds: List[ChurnRound] = []
    with private_host():
        for k in range(1, repeat + 1):
            rounds.append(churn_round(k, count, progress))
            progress("done", k, rounds[-1])
    return rounds


def churn_summary(rounds: List[ChurnRound]) -> dict:
    """Medians over the rounds, and CPU per container."""
    n = rounds[0].containers
    return {"containers": n, "repeat": len(rounds),
            "setup_per_s": statistics.median(r.setup_rate for r in rounds),
            "teardown_per_s": statistics.median(r.teardown_rate for r in rounds),
            "cpu_ms_per_container": statistics.median(r.cpu_s for r in rounds) * 1000 / n,
            "rounds": [{"repeat": r.repeat, "setup_s": r.setup_s, "teardown_s": r.teardown_s,
                        "cpu_s": r.cpu_s} for r in rounds]}


def _reporter(args: argparse.Namespace) -> Progress:
    """Progress on stderr: one line per finished round; on a terminal, the
    current phase too (overwritten in place)."""
    live = sys.stderr.isatty() and not args.json

    def progress(phase: str, k: int, result: Optional[ChurnRound]) -> None:
        if result is None:                  # a phase starts
            if live:
                sys.stderr.write(f"\r\033[K[{k}/{args.repeat}] {args.containers} containers: "
                                 f"{PHASES[phase]}...")
                sys.stderr.flush()
            return
        line = (f"[{k}/{args.repeat}] {result.containers} containers: "
                f"setup {result.setup_s:.3f} s ({result.setup_rate:.0f}/s), "
                f"teardown {result.teardown_s:.3f} s ({result.teardown_rate:.0f}/s), "
                f"CPU {result.cpu_s * 1000 / result.containers:.2f} ms/container")
        sys.stderr.write(("\r\033[K" if live else "") + line + "\n")
        sys.stderr.flush()
    return progress


def churn(args: argparse.Namespace) -> None:
    """The rounds' progress on stderr, then their medians (or JSON)."""
    summary = churn_summary(run_churn(args.containers, args.repeat, _reporter(args)))
    emit(args, summary, lambda: (
        f"{summary['containers']} containers x {summary['repeat']} (median): "
        f"setup {summary['setup_per_s']:.0f}/s, teardown {summary['teardown_per_s']:.0f}/s, "
        f"CPU {summary['cpu_ms_per_container']:.2f} ms per container"))
