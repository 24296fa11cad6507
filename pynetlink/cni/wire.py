"""The shim <-> daemon protocol: one CNI request per connection on a Unix
stream socket, its answer back, then the daemon closes.

Request:  ``b"PNCNI1"``, u32 env_len (<= MAX_ENV), the environment as
"KEY=VALUE\\0" entries, u32 stdin_len (<= spec.MAX_STDIN), stdin's bytes.
Response: ``b"PNCNI1"``, u32 status (the exit code), u32 stdout_len and
stdout, u32 stderr_len and stderr.  Integers are unsigned 32-bit
big-endian.  A malformed request gets no response: the daemon closes.

The encoders and decoders are pure; ``read_request``/``read_response``
read a socket; ``call`` is the client (what the C shim does, in Python:
tests and benchmarks use it).
"""
from __future__ import annotations

import os
import socket
import struct
from typing import Mapping, NamedTuple, Optional

from .spec import MAX_STDIN

MAGIC = b"PNCNI1"
MAX_ENV = 65536                 # bytes of environment in a request, at most
MAX_OUTPUT = 64 << 20           # bytes of stdout or stderr a client accepts in a response
DEFAULT_SOCKET = "/run/pynetlink/cni.sock"
SOCKET_ENV = "PYNETLINK_CNI_SOCKET"
FORWARDED_PREFIXES = ("CNI_", "PYNETLINK_")
_U32 = struct.Struct(">I")


class WireError(ValueError):
    """A request or response that breaks the protocol (bad magic, a length
    over its limit, EOF before its end)."""


class Response(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


def socket_path(environ: Mapping[str, str] = os.environ) -> str:
    """The daemon's socket: ``$PYNETLINK_CNI_SOCKET``, else DEFAULT_SOCKET."""
    return environ.get(SOCKET_ENV) or DEFAULT_SOCKET


def forwarded_environ(environ: Mapping[str, str]) -> dict:
    """What the shim forwards: every CNI_* and PYNETLINK_* variable, and PATH."""
    return {k: v for k, v in environ.items() if k.startswith(FORWARDED_PREFIXES) or k == "PATH"}


# -- encoding ----------------------------------------------------------------------------------

def encode_environ(environ: Mapping[str, str]) -> bytes:
    """"KEY=VALUE\\0" per variable (os.environ's surrogateescape for non-UTF-8 bytes)."""
    parts = []
    for key, value in environ.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"environment entries must be str, not {key!r}={value!r}")
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment entry {key!r}={value!r}")
        parts.append(f"{key}={value}\0".encode("utf-8", "surrogateescape"))
    return b"".join(parts)


def decode_environ(data: bytes) -> dict:
    """The environment of a request, as a mapping (an entry without '=' is skipped,
    as execve's environment would leave it unreadable by name)."""
    environ = {}
    for entry in data.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep and key:
            environ[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return environ


def encode_request(environ: Mapping[str, str], stdin: bytes) -> bytes:
    """A whole request; ValueError if the environment or stdin is over its limit."""
    env = encode_environ(environ)
    if len(env) > MAX_ENV:
        raise ValueError(f"the environment is {len(env)} bytes, over the protocol's {MAX_ENV}")
    if len(stdin) > MAX_STDIN:
        raise ValueError(f"stdin is {len(stdin)} bytes, over the protocol's {MAX_STDIN}")
    return b"".join((MAGIC, _U32.pack(len(env)), env, _U32.pack(len(stdin)), bytes(stdin)))


def encode_response(status: int, stdout: bytes, stderr: bytes = b"") -> bytes:
    """A whole response."""
    if not 0 <= status <= 255:
        raise ValueError(f"status {status} is not an exit code (0..255)")
    return b"".join((MAGIC, _U32.pack(status), _U32.pack(len(stdout)), stdout,
                     _U32.pack(len(stderr)), stderr))


# -- reading a socket --------------------------------------------------------------------------

class BufferedReader:
    """A message's bytes (a request, a response) read in large chunks (it
    usually arrives whole: one recv, not one per field), handed out field by
    field."""

    CHUNK = 1 << 16
    MAX_CHUNK = 1 << 20

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()

    def take(self, n: int, what: str) -> bytes:
        """``n`` bytes; WireError on EOF before them.  (Reading ahead is
        harmless: a connection carries one request.)"""
        while len(self.buf) < n:
            chunk = self.sock.recv(min(max(self.CHUNK, n - len(self.buf)), self.MAX_CHUNK))
            if not chunk:
                raise WireError(f"EOF after {len(self.buf)} of {n} bytes of {what}")
            self.buf += chunk
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def magic(self) -> None:
        magic = self.take(len(MAGIC), "the magic")
        if magic != MAGIC:
            raise WireError(f"bad magic {magic!r} (expected {MAGIC!r})")

    def u32(self, what: str, limit: int) -> int:
        value = _U32.unpack(self.take(4, what))[0]
        if value > limit:
            raise WireError(f"{what} is {value}, over the limit {limit}")
        return value


def read_request(sock: socket.socket) -> tuple[dict, bytes]:
    """(environment, stdin) of a request; WireError if it breaks the protocol."""
    reader = BufferedReader(sock)
    reader.magic()
    env = reader.take(reader.u32("env_len", MAX_ENV), "the environment")
    stdin = reader.take(reader.u32("stdin_len", MAX_STDIN), "stdin")
    return decode_environ(env), stdin


def read_response(sock: socket.socket) -> Response:
    """The daemon's response; WireError if it is malformed or cut short."""
    reader = BufferedReader(sock)
    reader.magic()
    status = reader.u32("status", 255)
    stdout = reader.take(reader.u32("stdout_len", MAX_OUTPUT), "stdout")
    stderr = reader.take(reader.u32("stderr_len", MAX_OUTPUT), "stderr")
    return Response(status, stdout, stderr)


# -- the client --------------------------------------------------------------------------------

def call(environ: Mapping[str, str], stdin: bytes, path: Optional[str] = None,
         timeout: Optional[float] = 300.0) -> Response:
    """One request to the daemon at ``path`` (default: ``socket_path()``):
    ``environ`` sent whole (use ``forwarded_environ`` to send what the shim
    sends), ``stdin`` the configuration.  Returns the daemon's Response;
    OSError if it cannot be reached, WireError if it closes without a whole
    answer (socket.timeout after ``timeout`` seconds)."""
    request = encode_request(environ, stdin)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as sock:
        sock.settimeout(timeout)
        sock.connect(path or socket_path())
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        return read_response(sock)
