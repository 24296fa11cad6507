"""Delegated plugins (IPAM), run as the spec prescribes (the reference's
``pkg/invoke`` and ``pkg/ipam``): ``<CNI_PATH>/<type>`` with the same stdin
and environment as ours, CNI_COMMAND set to the command; its result, or its
error passed on unchanged.

``host-local`` is the exception: it runs in-process (hostlocal.py), on the
reference plugin's on-disk store, with its results and errors.  Setting
``PYNETLINK_CNI_IPAM=exec`` (in the plugin's environment, or the daemon's)
executes ``<CNI_PATH>/host-local`` instead, as for any other IPAM type."""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Optional

from .spec import E_DECODE, E_DELEGATE, E_INVALID_CONFIG, E_TRY_AGAIN, CNIError, Env, warn

DELEGATE_TIMEOUT = 60.0         # seconds an IPAM plugin may take per command
IPAM_MODE_VAR = "PYNETLINK_CNI_IPAM"    # "exec": host-local executed, not run in-process
IN_PROCESS = ("host-local",)            # IPAM types run in-process


def find_plugin(kind: str, path: list) -> str:
    """The executable ``kind`` in the first CNI_PATH directory that has it."""
    for directory in path:
        candidate = os.path.join(directory, kind)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(E_INVALID_CONFIG, f"plugin {kind!r} not found in CNI_PATH",
                   f"searched: {':'.join(path) or '(empty)'}")


class Delegate:
    """A delegated plugin run as the spec prescribes: the same stdin and
    environment as ours, CNI_COMMAND set to the command.  ``start`` returns
    at once (the plugin runs while we work); ``wait`` collects its answer."""

    def __init__(self, kind: str, env: Env, stdin: bytes):
        self.kind, self.env, self.stdin = kind, env, stdin
        self.path = find_plugin(kind, env.path)
        self.proc: Optional[subprocess.Popen] = None
        self.command = ""
        self.outcome: Optional[tuple] = None    # (returncode, stdout, stderr) once finished

    def start(self, command: str) -> "Delegate":
        environ = dict(self.env.environ, CNI_COMMAND=command)
        self.command, self.outcome = command, None
        try:
            self.proc = subprocess.Popen([self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=environ, close_fds=True)
        except OSError as e:
            raise CNIError(E_DELEGATE, f"cannot run {self.path}: {e.strerror}") from None
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(self.stdin)       # small: the pipe holds it
            self.proc.stdin.close()
        except BrokenPipeError:
            pass                                    # it exited early: wait() says how
        self.proc.stdin = None                      # communicate() reads its answer only
        return self

    def finish(self) -> tuple:
        """(returncode, stdout, stderr), waiting at most DELEGATE_TIMEOUT."""
        assert self.proc is not None, "finish() before start()"
        if self.outcome is None:
            try:
                out, err = self.proc.communicate(timeout=DELEGATE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
                self.outcome = (-9, b"", b"")
                raise CNIError(E_TRY_AGAIN, f"{self.kind} {self.command} did not answer within "
                                            f"{DELEGATE_TIMEOUT:.0f} s") from None
            self.outcome = (self.proc.returncode, out, err)
        return self.outcome

    def wait(self) -> Any:
        """The decoded answer (None if it printed nothing); its error, if it
        reported one, passed on unchanged."""
        code, out, err = self.finish()
        if code != 0:
            raise self._error(code, out, err)
        if not out.strip():
            return None
        try:
            return json.loads(out)
        except ValueError as e:
            raise CNIError(E_DECODE, f"the answer of {self.kind} {self.command} is not JSON",
                           str(e)) from None

    def run(self, command: str) -> Any:
        return self.start(command).wait()

    def succeeded(self) -> bool:
        return self.proc is not None and self.finish()[0] == 0

    def _error(self, code: int, out: bytes, err: bytes) -> CNIError:
        try:
            doc = json.loads(out)
            return CNIError(int(doc["code"]), str(doc.get("msg", "")), str(doc.get("details", "")))
        except (ValueError, KeyError, TypeError):
            tail = (err or out).decode("utf-8", "replace").strip()[-2000:]
            return CNIError(E_DELEGATE, f"{self.kind} {self.command} failed (exit status {code})", tail)


def exec_forced(env: Env) -> bool:
    """PYNETLINK_CNI_IPAM=exec in the request's environment, or else in this process's."""
    mode = env.environ.get(IPAM_MODE_VAR) or os.environ.get(IPAM_MODE_VAR, "")
    return mode == "exec"


def ipam_plugin(kind: str, env: Env, stdin: bytes) -> Any:
    """The IPAM plugin ``kind``, not started yet, with the Delegate interface
    (``start(command)``, ``wait()``, ``finish()``, ``succeeded()``,
    ``run(command)``, ``kind``): host-local in-process
    (``hostlocal.HostLocal``) unless PYNETLINK_CNI_IPAM=exec, any other
    type (or host-local then) the executable found in CNI_PATH."""
    if kind in IN_PROCESS and not exec_forced(env):
        from .hostlocal import HostLocal
        return HostLocal(env, stdin)
    return Delegate(kind, env, stdin)


def start_ipam(ipam_type: str, env: Env, stdin: bytes, command: str) -> Any:
    """The IPAM plugin's ``command`` started (None when the network has no
    IPAM); see ``ipam_plugin`` for which runs in-process."""
    return ipam_plugin(ipam_type, env, stdin).start(command) if ipam_type else None


def release(ipam: Any) -> None:
    """Undo an IPAM ADD that succeeded (its DEL), reporting a failure on stderr only."""
    try:
        if ipam.succeeded():
            ipam.run("DEL")
    except Exception as e:                  # noqa: BLE001 - the first error is the one reported
        warn(f"releasing the {ipam.kind} allocation failed: {e}")
