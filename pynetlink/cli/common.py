"""What every command uses: output as a table or as JSON, the handle that
``--netns`` asks for, and the usage error."""
from __future__ import annotations

import argparse
import ipaddress
import json
from typing import Callable, Sequence

from .. import Handle

PROG = "pynetlink"


class UsageError(Exception):
    """Arguments argparse accepted but that make no sense together (exit 2)."""


def emit(args: argparse.Namespace, data: object, human: Callable[[], str]) -> None:
    """``data`` as JSON with ``--json``, else the human text (if any)."""
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        text = human()
        if text:
            print(text)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns under ``header``; None shows as "-"."""
    cells = [list(map(str, header))] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def handle(args: argparse.Namespace) -> Handle:
    """A handle in the namespace of ``--netns`` (the caller's when absent)."""
    return Handle(netns=args.netns)


#: The JSON key of each argument an operation's record gives: ``ip -j``'s
#: word (see ``records``) where it has one, else the argument's own name
#: (``operation``, ``up``, ``peer_netns``, ``pid``, ``new_ifname``).
KEYS = {"name": "ifname", "old": "ifname", "new": "new_ifname", "peer": "link",
        "bridge": "master", "via": "gateway", "path": "netns"}


def operation(method: str, **arguments: object) -> dict:
    """What a command that changes something prints with ``--json``:
    ``{"operation": "Handle.METHOD's name", KEY: value...}``, keys from
    ``KEYS``, an address ("cidr") as ``local`` and ``prefixlen``; an
    argument not given (None) is absent."""
    record: dict = {"operation": method}
    for name, value in arguments.items():
        if name == "cidr":
            interface = ipaddress.ip_interface(value)       # type: ignore[arg-type]
            record.update(local=str(interface.ip), prefixlen=interface.network.prefixlen)
        elif value is not None:
            record[KEYS.get(name, name)] = value
    return record


def simple(method: str, *fields: str) -> Callable[[argparse.Namespace], None]:
    """A command that calls ``Handle.METHOD`` with the arguments named
    ``fields``, and prints nothing (JSON: its ``operation`` record)."""
    def run(args: argparse.Namespace) -> None:
        values = {f: getattr(args, f) for f in fields}
        with handle(args) as h:
            getattr(h, method)(*values.values())
        emit(args, operation(method, **values), lambda: "")
    run.__doc__ = f"``Handle.{method}({', '.join(fields)})``."
    return run
