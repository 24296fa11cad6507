"""The private lab of ``demo`` and ``churn`` (and of the churn benchmark's
``pynetlink-bulk`` contender): container networks on a bridge, wired by
``pynetlink.bulk``.

The demo and churn work only in anonymous network namespaces of their own
(held by fds, see ``netns.create``): a "host" namespace with a bridge
``br0`` and one namespace per container.  Nothing of the machine's own
network is touched, and closing the fds — on success, on an error, on
Ctrl-C, or by the kernel when the process dies — destroys every namespace
with its links.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator, List, Optional, Sequence, Union

from .. import Handle, bulk, netns
from ..types import Network

BRIDGE = "br0"
GATEWAY = "192.0.2.1"                   # documentation range (RFC 5737)
PREFIX = 24
MAX_CONTAINERS = 250                    # one /24 of container addresses
MTU = 1450


def container_network(i: int) -> Network:
    """The i-th container's network: a veth on br0, MTU 1450, eth0
    192.0.2.(2 + i mod 250)/24, default route via the bridge."""
    return Network(type="veth", bridge=BRIDGE, veth_prefix="veth", mtu=MTU,
                   address=f"192.0.2.{2 + i % MAX_CONTAINERS}/{PREFIX}", gateway=GATEWAY)


@contextlib.contextmanager
def private_host() -> Iterator[int]:
    """A scratch "host" namespace with br0 (192.0.2.1/24, up); the calling
    thread works inside it until the block ends."""
    with netns.scratch() as fd, netns.entered(fd):
        with Handle() as h, h.batch("rollback") as b:
            b.create_bridge(BRIDGE, mtu=MTU, up=True)
            b.set_interface_ip(BRIDGE, f"{GATEWAY}/{PREFIX}")
        yield fd


@contextlib.contextmanager
def containers(count: int) -> Iterator[List[int]]:
    """``count`` fresh namespaces, closed (and so destroyed) at the end."""
    fds: List[int] = []
    try:
        for _ in range(count):
            fds.append(netns.create())
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


class BulkContainers:
    """One container per namespace (an fd or a path; the i-th gets
    ``container_network(i)``), set up by one ``bulk.setup`` from the bridge's
    namespace — the calling thread's — and torn down by one
    ``bulk.teardown`` (a group delete).  As a context manager it tears down
    on the way out, whatever happened."""

    def __init__(self, namespaces: Sequence[Union[int, str]]):
        self.entries = [bulk.Container(container_network(i), netns=ns)
                        for i, ns in enumerate(namespaces)]
        self.done: Optional[bulk.Setup] = None
        self.torn_down = False

    def setup(self) -> bulk.Setup:
        """Every container's veth, eth0, address and route; raises the first
        container's error if any failed (what was made stays for teardown)."""
        self.done = bulk.setup(self.entries)
        failed = next((r.error for r in self.done.results if not r.ok), None)
        if failed is not None:
            raise failed
        return self.done

    def teardown(self) -> None:
        """Delete every host end ``setup`` made (the peers go with them); once."""
        if self.done is not None and not self.torn_down:
            self.torn_down = True
            bulk.teardown(self.done)

    def __enter__(self) -> "BulkContainers":
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()
