"""The demo and the churn run of the ``pynetlink`` command.

Both work only in anonymous network namespaces of their own (held by fds,
see ``netns.create``): a "host" namespace with a bridge ``br0`` and one
namespace per container.  Nothing of the machine's own network is touched,
and closing the fds — on success, on an error, on Ctrl-C, or by the kernel
when the process dies — destroys every namespace with its links.

The demo's ping is an ICMP echo sent from a raw socket made inside the
container's namespace: no ``ping`` program is run.
"""
from __future__ import annotations

import contextlib
import os
import resource
import select
import socket
import statistics
import struct
import time
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional

from . import bulk, netns
from .handle import Handle
from .stats import get_stats_many
from .types import Network

BRIDGE = "br0"
GATEWAY = "192.0.2.1"                   # documentation range (RFC 5737)
PREFIX = 24
MAX_CONTAINERS = 250                    # one /24 of container addresses
MTU = 1450


def container_network(i: int) -> Network:
    return Network(type="veth", bridge=BRIDGE, veth_prefix="veth", mtu=MTU,
                   address=f"192.0.2.{2 + i}/{PREFIX}", gateway=GATEWAY)


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


# -- ping -------------------------------------------------------------------------

def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(netns_fd: int, address: str, *, ident: int, timeout: float = 2.0) -> Optional[float]:
    """Send one ICMP echo request to ``address`` from inside the namespace
    behind ``netns_fd``; the round-trip time in seconds, or None if no reply
    came within ``timeout``."""
    with netns.entered(netns_fd):                   # the socket stays in that namespace
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        ident &= 0xFFFF
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        payload = b"pynetlink demo"
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
        start = time.monotonic()
        sock.sendto(packet, (address, 0))
        while True:
            left = start + timeout - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None
            data, (source, _) = sock.recvfrom(2048)
            icmp = data[(data[0] & 0x0F) * 4:]             # after the IP header
            if source != address or len(icmp) < 8:
                continue
            kind, _, _, reply_ident, reply_seq = struct.unpack("!BBHHH", icmp[:8])
            if (kind, reply_ident, reply_seq) == (0, ident, 1):    # our echo reply
                return time.monotonic() - start


# -- demo ---------------------------------------------------------------------------

@dataclass
class DemoRow:
    container: int
    address: str
    host_end: str
    rtt_ms: Optional[float]
    rx_packets: int
    tx_packets: int


def run_demo(count: int) -> List[DemoRow]:
    """Bridge + ``count`` containers (bulk setup), one ping from each to the
    bridge, every container's eth0 counters, then teardown."""
    with private_host(), containers(count) as fds:
        done = bulk.setup([bulk.Container(container_network(i), netns=fd)
                           for i, fd in enumerate(fds)])
        try:
            failed = next((r.error for r in done.results if not r.ok), None)
            if failed is not None:
                raise failed
            rtts = [ping(fd, GATEWAY, ident=os.getpid() + i) for i, fd in enumerate(fds)]
            stats = get_stats_many([r.state for r in done.results])
            return [DemoRow(i, container_network(i).address, r.state.veth_host,
                            None if rtt is None else rtt * 1000,
                            s.rx_packets if s else 0, s.tx_packets if s else 0)
                    for i, (r, rtt, s) in enumerate(zip(done.results, rtts, stats))]
        finally:
            bulk.teardown(done)


# -- churn --------------------------------------------------------------------------

@dataclass
class ChurnRound:
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


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_churn(count: int, repeat: int,
              progress: Callable[[str, int, Optional[ChurnRound]], None]) -> List[ChurnRound]:
    """``repeat`` rounds of: ``count`` fresh container namespaces, bulk
    setup, bulk teardown.  ``progress(phase, round, result)`` is called as
    each phase starts ("namespaces", "setup", "teardown") and with the
    round's result when it ends ("done")."""
    rounds: List[ChurnRound] = []
    with private_host():
        for k in range(1, repeat + 1):
            progress("namespaces", k, None)
            with containers(count) as fds:
                entries = [bulk.Container(container_network(i % MAX_CONTAINERS), netns=fd)
                           for i, fd in enumerate(fds)]
                progress("setup", k, None)
                cpu0, t0 = _cpu(), time.perf_counter()
                done = bulk.setup(entries)
                t1 = time.perf_counter()
                try:
                    failed = next((r.error for r in done.results if not r.ok), None)
                    if failed is not None:
                        raise failed
                    progress("teardown", k, None)
                    t2 = time.perf_counter()
                finally:
                    bulk.teardown(done)
                t3, cpu1 = time.perf_counter(), _cpu()
            result = ChurnRound(k, count, t1 - t0, t3 - t2, cpu1 - cpu0)
            rounds.append(result)
            progress("done", k, result)
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


__all__ = ["run_demo", "run_churn", "churn_summary", "ping", "DemoRow", "ChurnRound"]
