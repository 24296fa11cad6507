"""The ``pynetlink`` command (also ``python -m pynetlink``): the library's
operations, whole container networks from libcontainer JSON, counters, a
demo and a churn run — thin over the public API.

``parser`` knows every command's arguments and, for each, the module of this
package that runs it ("link:show" is ``link.show``); ``main`` imports that
one module only, so ``pynetlink link show`` never loads bulk, the strategies
or the demo.

Exit status: 0 success, 1 a kernel or runtime error (one line on stderr:
operation, interface, errno name, the kernel's text; ``--debug`` adds the
traceback), 2 a usage error (bad arguments or values), 130 interrupted.
"""
from __future__ import annotations

import argparse
import errno as _errno
import importlib
import sys
import traceback
from typing import Callable, Optional, Sequence

from ..errors import NetlinkError
from .common import PROG, UsageError
from .parser import build_parser, parse


def error_line(e: BaseException) -> str:
    """One line for stderr: operation, interface, errno name, the kernel's text."""
    if isinstance(e, NetlinkError):
        name = _errno.errorcode.get(e.errno or 0, str(e.errno))
        where = f" dev {e.interface}" if e.interface else ""
        text = f": {e.ext_ack}" if e.ext_ack else ""
        text += f" ({e.detail})" if e.detail else ""
        return f"{PROG}: {e.operation}{where}: {name} ({e.strerror}){text}"
    if isinstance(e, OSError) and e.errno:
        name = _errno.errorcode.get(e.errno, str(e.errno))
        subject = f": {e.filename}" if e.filename else ""
        return f"{PROG}: {name} ({e.strerror}){subject}"
    return f"{PROG}: {e}"


def command_for(target: str) -> Callable[[argparse.Namespace], None]:
    """The function behind a parser target "MODULE:FUNCTION": its module of
    this package is imported here, on dispatch, and nowhere else."""
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)


def _fail(args: argparse.Namespace, message: str) -> None:
    if args.debug:
        traceback.print_exc()
    print(message, file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; the exit status (see the module docstring)."""
    args = parse(build_parser(), argv)
    try:
        command_for(args.target)(args)
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, TypeError) as e:
        _fail(args, f"{PROG}: {e}")
        return 2
    except Exception as e:                  # kernel and runtime errors
        _fail(args, error_line(e))
        return 1


__all__ = ["main", "error_line", "command_for"]
