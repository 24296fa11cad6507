"""The NetworkState JSON file: ``net create`` writes it, ``net init``
updates it, ``stats`` reads it."""
from __future__ import annotations

import os
from typing import Optional

from ..types import NetworkState
from .common import UsageError


def read_state(path: str) -> NetworkState:
    """The state in ``path``; a UsageError if it is not a NetworkState."""
    try:
        with open(path) as f:
            return NetworkState.from_json(f.read())
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None


def check_writable(path: Optional[str]) -> None:
    """A UsageError, before anything is made, if the state file ``path``
    could not be written: its directory is missing or not writable."""
    if path:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise UsageError(f"{path}: no such directory {folder!r} for the state file")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"{path}: the directory {folder!r} is not writable")


def write_state(path: Optional[str], state: NetworkState) -> None:
    """Replace ``path`` (if given) with ``state`` in one rename: a reader
    sees the old file or the new one, never half of it."""
    if path:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(state.to_json() + "\n")
        os.replace(tmp, path)


def state_text(state: NetworkState) -> str:
    """One "key: value" line per field that is set."""
    return "\n".join(f"{k}: {v}" for k, v in state.to_dict().items()) or "(no state)"
