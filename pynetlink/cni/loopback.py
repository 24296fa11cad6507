"""Loopback mode (``"loopback": true``), DEL and CHECK: the reference
``loopback`` plugin's job on the container's ``lo``.  ADD, which reports a
result, is in loopback_add.py: DEL and CHECK need no result code."""
from __future__ import annotations

import os

from .kernel import open_container
from .spec import E_CHECK, CNIError, Env


def delete(env: Env, raw: bytes, conf: dict) -> None:
    """DEL: ``lo`` down, as the reference does; no namespace is no error."""
    if not env.netns:
        return
    try:
        netns_fd, cont = open_container(env.netns)
    except CNIError:
        return
    try:
        with cont:
            cont.interface_down("lo")
    finally:
        os.close(netns_fd)


def check(env: Env, raw: bytes, conf: dict) -> None:
    """CHECK: ``lo`` is up."""
    netns_fd, cont = open_container(env.netns)
    try:
        with cont:
            if not cont.get_link("lo").up:
                raise CNIError(E_CHECK, "CHECK: loopback interface is down")
    finally:
        os.close(netns_fd)
