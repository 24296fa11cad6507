"""One CNI command, start to answer (the reference's ``pkg/skel``): the
environment and configuration checked, the command's handler run, its
result or error rendered.

``run(environ, stdin)`` does it all as a function — the CNI_* environment
and stdin's bytes in, stdout's bytes and the exit code out — touching no
process state, so a resident process can serve requests with the same code.
``main()``, the executable's entry point, is the only place that reads
``os.environ`` and stdin and writes stdout.

Start-up: this module needs only spec.py and netconf.py (no netlink) at
import; each command's handler module is imported when the command runs
(``HANDLERS``, one table-driven import), so VERSION loads nothing more, and
DEL of a loopback network no IPAM or result code.
"""
from __future__ import annotations

import errno
import importlib
import json
import os
import sys
from typing import Any, Callable, Mapping, Optional

from ..errors import NetlinkError
from .netconf import BridgeConf, is_loopback
from .spec import (E_DECODE, E_INCOMPATIBLE_VERSION, E_INTERNAL, E_INVALID_ENV, E_IO, E_KERNEL,
                   E_TRY_AGAIN, ENV_REQUIRED, MAX_STDIN, CNIError, Env, check_common, config_version,
                   decode_config, error_version, version_info)

# The handler of each command, as (module, function) of this package; the
# module is imported when its command runs.  Bridge handlers take
# (env, raw, conf, bridge_conf), loopback ones (env, raw, conf).
HANDLERS = {
    "bridge": {"ADD": ("bridge", "add"), "DEL": ("bridge_del", "delete"),
               "CHECK": ("bridge_check", "check")},
    "loopback": {"ADD": ("loopback_add", "add"), "DEL": ("loopback", "delete"),
                 "CHECK": ("loopback", "check")},
}
# STATUS and GC, for both jobs: (env, raw, conf, bridge_conf or None).
LIFECYCLE = {"STATUS": ("status", "status"), "GC": ("status", "gc")}

TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.ENOBUFS, errno.ETIMEDOUT, errno.EINTR})


def load(module: str, name: str) -> Callable:
    """``name`` of this package's ``module``, imported now."""
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def run_command(command: str, raw: bytes, environ: Mapping[str, str]) -> Any:
    """Run one CNI command on the raw configuration; the document to print, or None."""
    if command == "VERSION":
        return version_info(raw)
    if not command:
        raise CNIError(E_INVALID_ENV, "CNI_COMMAND is required")
    if command not in ENV_REQUIRED:
        raise CNIError(E_INVALID_ENV, f"CNI_COMMAND {command!r} is not one of ADD, DEL, CHECK, "
                                      "STATUS, GC, VERSION")
    env = Env(command, environ)
    conf = decode_config(raw)
    version = config_version(conf)
    check_common(conf)
    if command in LIFECYCLE and version != "1.1.0":
        raise CNIError(E_INCOMPATIBLE_VERSION, f"{command} needs cniVersion 1.1.0, not {version}")
    loopback = is_loopback(conf)
    bc = None if loopback else BridgeConf(conf, env)
    if command in LIFECYCLE:
        return load(*LIFECYCLE[command])(env, raw, conf, bc)
    if loopback:
        return load(*HANDLERS["loopback"][command])(env, raw, conf)
    return load(*HANDLERS["bridge"][command])(env, raw, conf, bc)


def kernel_error(e: OSError, what: str) -> CNIError:
    """A NetlinkError as a CNI error: 11 if trying again may help, else 100;
    the details carry the operation, its arguments and the kernel's text."""
    code = E_TRY_AGAIN if e.errno in TRANSIENT_ERRNOS else E_KERNEL
    return CNIError(code, f"{what}: {getattr(e, 'operation', 'netlink')}: {e.strerror}", str(e))


def as_cni_error(e: BaseException, command: str) -> CNIError:
    """Any failure as a CNI error."""
    if isinstance(e, CNIError):
        return e
    if isinstance(e, NetlinkError):
        return kernel_error(e, command)
    if isinstance(e, OSError):
        return CNIError(E_IO, f"{command}: {e.strerror or e}", str(e))
    return CNIError(E_INTERNAL, f"{command}: internal error: {type(e).__name__}: {e}")


def error_answer(e: BaseException, command: str, raw: bytes) -> bytes:
    """The error document for stdout, in the configuration's version."""
    error = as_cni_error(e, command or "CNI")
    return (json.dumps(error.to_dict(error_version(raw))) + "\n").encode()


def run(environ: Mapping[str, str], stdin: bytes) -> tuple[bytes, int]:
    """One CNI command: ``environ`` (CNI_COMMAND, CNI_* and what delegated
    plugins inherit) and the configuration's bytes in; what to print on
    stdout and the exit code (0, or 1 with a CNI error document) out."""
    command = environ.get("CNI_COMMAND", "")
    try:
        out = run_command(command, stdin, environ)
    except Exception as e:
        return error_answer(e, command, stdin), 1
    return (b"" if out is None else (json.dumps(out) + "\n").encode()), 0


def stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()


def read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_STDIN + 1) if sys.stdin is not None else b""
    if len(data) > MAX_STDIN:
        raise CNIError(E_DECODE, f"the network configuration is larger than {MAX_STDIN} bytes")
    return data


def main(argv: Optional[list] = None) -> int:
    """The plugin: one CNI command from the environment and stdin (with
    arguments: ``daemon ...``, the resident daemon, see daemon.py; else the
    installer, see installer.py)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "daemon":
        return load("daemon", "main")(argv[1:])
    if argv:
        return load("installer", "install_main")(argv)
    command = os.environ.get("CNI_COMMAND", "")
    try:
        stdin = b"" if command == "VERSION" and stdin_is_terminal() else read_stdin()
    except Exception as e:
        out, code = error_answer(e, command, b""), 1
    else:
        out, code = run(os.environ, stdin)
    sys.stdout.write(out.decode())
    return code
