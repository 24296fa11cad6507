"""What the benchmark scripts share: the run's metadata, the JSON report and
the Markdown table they print.  Imported as ``_common`` by the scripts of
this folder (``python3 benchmarks/NAME.py`` puts the folder on sys.path)."""
from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from typing import Collection, Optional, Sequence


def dist_version(name: str) -> Optional[str]:
    """The installed version of distribution ``name``, or None if unknown."""
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:                   # noqa: BLE001 - informational only
        return None


def run_meta(quick: bool) -> dict:
    """When, where and how this run was made: the start of every report."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "quick": quick,
    }


def write_report(path: str, doc: dict) -> None:
    """Write ``doc`` as indented JSON to ``path`` (NaN refused; anything else
    JSON cannot hold written as its str) and say where."""
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, allow_nan=False, default=str)
        f.write("\n")
    print(f"results written to {path}")


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]],
                   left: Collection[int] = (0,)) -> str:
    """A Markdown table, columns padded to their widest cell; the columns
    whose index is in ``left`` align left, the others right."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i in left else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    sep = "|" + "|".join("-" * (w + 2) if i in left else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep] + [line(r) for r in rows])
