"""Soak: many create/configure/delete cycles leak nothing.

Each cycle, in a scratch host namespace with a bridge ``br0``
(192.0.2.1/24), makes a veth whose peer is born as ``eth0`` inside one of a
few container namespaces (anonymous, from ``pn.netns.create()``, reused
round-robin), puts the host end on the bridge, sets MTUs, brings both ends
up, gives ``eth0`` an address and a default route through a Handle made on
the container's fd, reads the links back, then deletes the pair.  Every
``BULK_EVERY`` cycles a ``pn.bulk.setup``/``teardown`` round runs over the
same containers, and every ``BIG_BULK_EVERY`` cycles one over
``BIG_BULK`` fresh scratch namespaces (more than a bulk chunk, so bulk's
helper thread runs too).

After a warm-up (caches, per-thread buffers, lazy imports), it measures:

- open fds (``/proc/self/fd``): must be exactly equal after;
- RSS (``/proc/self/statm``): may grow by at most ``RSS_SLACK`` (4 MiB:
  allocator fragmentation and Python's own caches).  That catches a leak
  of about 4 KiB per cycle at the default 1000 cycles, 420 bytes per cycle
  at 10,000; the growth measured here is about 20 KiB either way;
- kernel objects, with iproute2: the links of the host and of every
  container (``ip -j link``: names exactly as before the first cycle;
  names, flags, MTU and master exactly as after the warm-up; carrier
  flags, which lag behind through linkwatch, aside), their IPv4 and IPv6
  routes (link-local ones aside), and ``ip netns list``: no name of ours
  may appear in it.  On a quiet machine the list is simply unchanged; a
  change by another test run beside us is printed, not failed on.

Every Handle has the default timeout: while another process destroys
namespaces holding hundreds of links (tests/test_faults.py running beside
this test does), the kernel holds RTNL, and so every request of ours, for
seconds — time our sends spend blocked in the kernel, which the timeout
does not count (tests/test_busy_kernel.py).  The slowest cycle is part of
the figures.

The figures are printed (run with ``-s``) and recorded as the test's
properties (``--junitxml``).

Cycles: ``PYNETLINK_SOAK_CYCLES`` (default 1000, about half a minute).
The full figure of the issue is 10,000::

    PYNETLINK_SOAK_CYCLES=10000 python3 -m pytest -m soak -s

The loop is bounded in time too: ``PYNETLINK_SOAK_TIMEOUT`` seconds
(default 600); running past it fails the test, naming the cycle reached.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import resource
import subprocess
import time

import pytest

import pynetlink as pn
from conftest import Netns, _made, open_fds, sh

CYCLES = int(os.environ.get("PYNETLINK_SOAK_CYCLES", "1000"))
TIMEOUT = float(os.environ.get("PYNETLINK_SOAK_TIMEOUT", "600"))
WARMUP = 50
CONTAINERS = 4
BULK_EVERY = 20
BIG_BULK_EVERY = 250
BIG_BULK = 17                       # > bulk._CHUNK (16): the threaded path
CHECK_EVERY = 100                   # cycles between iproute2 spot checks mid-cycle
RSS_SLACK = 4 * 1024 * 1024
GATEWAY = "192.0.2.1"
HOST_END = "soak0"

pytestmark = pytest.mark.soak


# -- measuring -------------------------------------------------------------------

def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def settle() -> None:
    """Collect garbage (twice: finalizers may free more) before a reading."""
    gc.collect()
    gc.collect()


def ip_in(fd: int, *args: str):
    """``ip -j ARGS`` inside the namespace held by fd (decoded JSON)."""
    out = subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", "ip", "-j", *args],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    return json.loads(out, strict=False) if out.strip() else []


def netns_list() -> list:
    """Names only: the "(id: N)" after a name is the nsid the caller's
    namespace gives it, which the kernel may assign at any time."""
    return sorted(line.split()[0] for line in sh("ip", "netns", "list").stdout.splitlines()
                  if line.strip())


def named_by_us(names: list, inodes: set) -> list:
    """Those of ``names`` that are ours: made by this process (conftest's
    record) or bound to one of the namespaces we hold (``inodes``).  Other
    test runs on the machine may add and remove their own meanwhile."""
    ours = []
    for name in names:
        try:
            ino = os.stat(f"/run/netns/{name}").st_ino
        except OSError:
            ino = None
        if name in _made or ino in inodes:
            ours.append(name)
    return ours


# Carrier follows the bridge's ports through linkwatch, which lags by up to
# a second: not a leak, and not ours to compare (nor routes' "linkdown").
CARRIER_FLAGS = {"LOWER_UP", "NO-CARRIER", "M-DOWN"}


def link_view(links: list) -> set:
    return {(l["ifname"], tuple(sorted(set(l.get("flags", [])) - CARRIER_FLAGS)),
             l.get("mtu"), l.get("master")) for l in links}


def route_view(routes: list) -> set:
    """Routes, without IPv6 link-local ones (they follow carrier, see above)."""
    return {json.dumps(dict(r, flags=sorted(set(r.get("flags", [])) - {"linkdown"})),
                       sort_keys=True)
            for r in routes if not str(r.get("dst", "")).startswith("fe80::")}


def kernel_state(host: Netns, fds: list) -> dict:
    """What iproute2 says of every namespace the soak works in."""
    state = {"host": (link_view(host.ip("link", "show") or []),
                      route_view(host.ip("-4", "route", "show") or []),
                      route_view(host.ip("-6", "route", "show") or []))}
    for i, fd in enumerate(fds):
        state[f"container{i}"] = (link_view(ip_in(fd, "link", "show")),
                                  route_view(ip_in(fd, "-4", "route", "show")),
                                  route_view(ip_in(fd, "-6", "route", "show")))
    return state


def names(state: dict) -> dict:
    return {where: {link[0] for link in links} for where, (links, _, _) in state.items()}


# -- the scratch world -------------------------------------------------------------

@pytest.fixture
def world():
    """(host Netns with br0 up, list of container fds); all removed after,
    whatever happened: the host namespace's deletion takes its links along,
    closing a container fd destroys that namespace and what is left in it."""
    host = Netns()
    fds: list = []
    try:
        for cmd in (["link", "add", "br0", "type", "bridge"],
                    ["addr", "add", f"{GATEWAY}/24", "dev", "br0"],
                    ["link", "set", "br0", "up"]):
            sh("ip", "-n", host.name, *cmd)
        for _ in range(CONTAINERS):
            fds.append(pn.netns.create())
        yield host, fds
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        host.remove()


def one_cycle(h: pn.Handle, i: int, fd: int, slot: int, check: bool, host: Netns) -> None:
    """Create, configure, (check), delete: one container's veth."""
    mtu = 1280 + i % 200
    address = f"192.0.2.{10 + slot}/24"
    if i % 2:
        # one message: host end on the bridge, MTU, up; peer born in the container
        h.create_veth_pair(HOST_END, "eth0", mtu=mtu, master="br0", up=True,
                           peer_mtu=mtu, peer_netns=fd)
    else:
        # libcontainer v1.2.0's way, step by step
        h.create_veth_pair(HOST_END, "eth0", peer_netns=fd)
        h.set_interface_master(HOST_END, "br0")
        h.set_mtu(HOST_END, mtu)
        h.interface_up(HOST_END)
    try:
        with pn.Handle(netns=fd) as c:
            if not i % 2:
                c.set_mtu("eth0", mtu)
            c.interface_up("eth0")
            c.set_interface_ip("eth0", address)
            c.set_default_gateway(GATEWAY, "eth0")
            eth0 = c.get_link("eth0")
            assert (eth0.mtu, eth0.name) == (mtu, "eth0"), eth0
            assert "eth0" in {l.name for l in c.list_links()}
        if check:
            hl = host.link(HOST_END)
            assert hl["master"] == "br0" and hl["mtu"] == mtu and "UP" in hl["flags"], hl
            [e] = [l for l in ip_in(fd, "addr", "show") if l["ifname"] == "eth0"]
            assert e["mtu"] == mtu and "UP" in e["flags"], e
            assert (address.split("/")[0], 24) in {(a["local"], a["prefixlen"])
                                                   for a in e["addr_info"]}, e
            assert [r["gateway"] for r in ip_in(fd, "-4", "route", "show")
                    if r["dst"] == "default"] == [GATEWAY]
    finally:
        h.delete_link(HOST_END)       # eth0 goes with it, and its address and route


def bulk_round(h: pn.Handle, i: int, fds: list) -> None:
    containers = [pn.bulk.Container(pn.Network(
        type="veth", bridge="br0", veth_prefix="sk", address=f"192.0.2.{100 + j}/24",
        gateway=GATEWAY, mtu=1400 + i % 50), netns=fd) for j, fd in enumerate(fds)]
    done = pn.bulk.setup(containers, handle=h)
    try:
        failed = [(r.container.network.address, r.error) for r in done.results if not r.ok]
        assert not failed, failed
    finally:
        pn.bulk.teardown(done, handle=h)


def big_bulk_round(h: pn.Handle, i: int) -> None:
    with contextlib.ExitStack() as stack:
        fds = [stack.enter_context(pn.netns.scratch()) for _ in range(BIG_BULK)]
        bulk_round(h, i, fds)


def run_cycles(h: pn.Handle, host: Netns, fds: list, start: int, stop: int,
               deadline: float) -> float:
    """Cycles start..stop-1 with their bulk rounds; the slowest cycle's seconds."""
    slowest = 0.0
    for i in range(start, stop):
        began = time.monotonic()
        if began > deadline:
            pytest.fail(f"soak ran past its time bound of {TIMEOUT:.0f} s "
                        f"(PYNETLINK_SOAK_TIMEOUT) at cycle {i - WARMUP} of {CYCLES}")
        slot = i % len(fds)
        one_cycle(h, i, fds[slot], slot, check=i % CHECK_EVERY == 0, host=host)
        slowest = max(slowest, time.monotonic() - began)
        if i % BULK_EVERY == BULK_EVERY - 1:
            bulk_round(h, i, fds)
        if i % BIG_BULK_EVERY == BIG_BULK_EVERY - 1:
            big_bulk_round(h, i)
    return slowest


def test_soak_create_configure_delete_leaks_nothing(world, record_property):
    assert CYCLES >= 1, "PYNETLINK_SOAK_CYCLES must be at least 1"
    host, fds = world
    t0 = time.monotonic()
    deadline = t0 + TIMEOUT
    namespaces_before = netns_list()
    first = kernel_state(host, fds)

    with pn.Handle(netns=host.path) as h:
        # warm-up, including a bulk round of each size, before any reading
        run_cycles(h, host, fds, 0, WARMUP, deadline)
        bulk_round(h, 0, fds)
        big_bulk_round(h, 0)
        settle()
        fds_before, rss_before = open_fds(), rss_bytes()
        baseline = kernel_state(host, fds)
        t1 = time.monotonic()

        slowest = run_cycles(h, host, fds, WARMUP, WARMUP + CYCLES, deadline)

        t2 = time.monotonic()
        settle()
        fds_after, rss_after = open_fds(), rss_bytes()
    after = kernel_state(host, fds)
    settle_until = time.monotonic() + 5      # namespace teardown and linkwatch are asynchronous
    while after != baseline and time.monotonic() < settle_until:
        time.sleep(0.2)
        after = kernel_state(host, fds)
    namespaces_after = netns_list()
    held = {os.stat(host.path).st_ino} | {os.fstat(fd).st_ino for fd in fds}
    appeared = sorted(set(namespaces_after) - set(namespaces_before))

    figures = {
        "soak_cycles": CYCLES, "soak_warmup_cycles": WARMUP,
        "soak_bulk_rounds": CYCLES // BULK_EVERY, "soak_big_bulk_rounds": CYCLES // BIG_BULK_EVERY,
        "soak_seconds": round(t2 - t1, 1), "soak_total_seconds": round(time.monotonic() - t0, 1),
        "fds_before": fds_before, "fds_after": fds_after,
        "rss_before_kib": rss_before // 1024, "rss_after_kib": rss_after // 1024,
        "rss_growth_kib": (rss_after - rss_before) // 1024,
        "slowest_cycle_ms": round(slowest * 1000),
        "netns_list_unchanged": namespaces_after == namespaces_before,
    }
    for key, value in figures.items():
        record_property(key, value)
    print("\nsoak: " + ", ".join(f"{k}={v}" for k, v in figures.items()))

    assert fds_after == fds_before, f"fd leak: {fds_before} -> {fds_after} open fds"
    assert rss_after - rss_before < RSS_SLACK, (
        f"RSS grew by {(rss_after - rss_before) / 2**20:.1f} MiB over {CYCLES} cycles "
        f"(allowed {RSS_SLACK / 2**20:.0f} MiB)")
    assert names(after) == names(first), "links left behind (or lost)"
    for where in after:
        assert after[where] == baseline[where], f"kernel state of {where} changed"
    assert not named_by_us(appeared, held), f"named namespaces left: {named_by_us(appeared, held)}"
    if namespaces_after != namespaces_before:   # another test run on this machine, not us
        print(f"soak: note: ip netns list changed beside us: +{appeared} "
              f"-{sorted(set(namespaces_before) - set(namespaces_after))}")
