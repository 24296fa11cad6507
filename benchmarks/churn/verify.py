"""Untimed checks of every container with iproute2's JSON output, after each
setup and after each teardown.  A contender that fails them is reported as
FAILED, never as a number."""
from __future__ import annotations

import concurrent.futures
import random
from typing import Optional, Sequence

from contenders import BRIDGE, GATEWAY, GATEWAY6, MTU, PREFIXLEN, PREFIXLEN6
from sandbox import Deadline, json_documents, run

WORKERS = 4                 # ip processes in flight while verifying (not timed)
MAX_PROBLEMS = 8            # problems listed in a report (all are counted)
TEARDOWN_SAMPLE = 10        # container namespaces looked into after a teardown


class Problems:
    def __init__(self):
        self.count = 0
        self.examples: list[str] = []

    def add(self, text: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_PROBLEMS:
            self.examples.append(text)

    def __bool__(self) -> bool:
        return self.count > 0

    def summary(self) -> str:
        more = f" (+{self.count - len(self.examples)} more)" if self.count > len(self.examples) else ""
        return "; ".join(self.examples) + more


def _links(ns: str, deadline: Deadline) -> list:
    out = run(["ip", "-n", ns, "-j", "-d", "link", "show"], capture=True,
              timeout=deadline.timeout()).stdout
    return json_documents(out)[0] if out.strip() else []


def verify_setup(host_ns: str, containers: Sequence, host_names: Sequence[str],
                 group: Optional[int], deadline: Deadline, link_local: bool = False) -> Problems:
    """Host ends on br0, up, MTU 1450 (and in ``group`` if given), one veth
    per container and no other; in each container: lo up, eth0 (the peer of
    that container's host end) up with MTU 1450, its address and the default
    route via 192.0.2.1 - and, when the container has ``address6``, that
    address (not failed DAD) and the default route via 2001:db8::1 - and no
    other link.  eth0 has no other address, but for an fe80:: link-local one
    when ``link_local`` (IPv6 left on: the kernel may make one)."""
    problems = Problems()
    if len(host_names) != len(containers):
        problems.add(f"{len(host_names)} host ends reported for {len(containers)} containers")
        return problems
    links = {l["ifname"]: l for l in _links(host_ns, deadline)}
    veths = [n for n, l in links.items() if l.get("linkinfo", {}).get("info_kind") == "veth"]
    if len(veths) != len(containers):
        problems.add(f"host namespace has {len(veths)} veths, expected {len(containers)}")
    host_index = {}
    for c, name in zip(containers, host_names):
        l = links.get(name)
        if l is None:
            problems.add(f"{c.name}: host end {name!r} not in the host namespace")
            continue
        host_index[c.name] = l["ifindex"]
        if l.get("master") != BRIDGE:
            problems.add(f"{c.name}: host end {name} master is {l.get('master')!r}, not {BRIDGE}")
        if "UP" not in l.get("flags", []):
            problems.add(f"{c.name}: host end {name} is not up ({l.get('flags')})")
        if l.get("mtu") != MTU:
            problems.add(f"{c.name}: host end {name} mtu {l.get('mtu')}")
        if group is not None and str(l.get("group")) != str(group):
            problems.add(f"{c.name}: host end {name} group {l.get('group')!r}, expected {group}")

    def one(c) -> list[str]:
        # "table all": routes of every family (a plain "route show" is IPv4's main table)
        out = run(["ip", "-n", c.name, "-j", "-d", "-batch", "-"], capture=True,
                  input="link show\naddr show\nroute show table all\n",
                  timeout=deadline.timeout()).stdout
        docs = json_documents(out)
        if len(docs) != 3:
            return [f"{c.name}: unexpected ip -j -batch output ({len(docs)} documents)"]
        clinks, addrs, routes = docs
        bad = []
        by_name = {l["ifname"]: l for l in clinks}
        if set(by_name) != {"lo", "eth0"}:
            bad.append(f"{c.name}: links {sorted(by_name)}, expected ['eth0', 'lo']")
        lo, eth0 = by_name.get("lo"), by_name.get("eth0")
        if lo is None or "UP" not in lo.get("flags", []):
            bad.append(f"{c.name}: lo is not up")
        if eth0 is None:
            bad.append(f"{c.name}: no eth0")
            return bad
        if "UP" not in eth0.get("flags", []):
            bad.append(f"{c.name}: eth0 is not up ({eth0.get('flags')})")
        if eth0.get("mtu") != MTU:
            bad.append(f"{c.name}: eth0 mtu {eth0.get('mtu')}")
        if eth0.get("linkinfo", {}).get("info_kind") != "veth":
            bad.append(f"{c.name}: eth0 is not a veth")
        want = host_index.get(c.name)
        if want is not None and eth0.get("link_index") != want:
            bad.append(f"{c.name}: eth0's peer is ifindex {eth0.get('link_index')}, "
                       f"not its host end's {want}")
        infos = [a for l in addrs if l.get("ifname") == "eth0" for a in l.get("addr_info", [])]
        bad += _address_problems(c, infos, link_local)
        gateways = [GATEWAY] + ([GATEWAY6] if c.address6 else [])
        for gw in gateways:
            if not any(r.get("dst") == "default" and r.get("gateway") == gw
                       and r.get("dev") == "eth0" and r.get("table", "main") == "main"
                       for r in routes):
                bad.append(f"{c.name}: no default route via {gw} dev eth0")
        return bad

    for bad in _map(one, containers):
        for text in bad:
            problems.add(text)
    return problems


def _address_problems(c, infos: list, link_local: bool) -> list[str]:
    """eth0's addresses (``ip -j addr`` addr_info) against the container's:
    192.0.2.X/24, 2001:db8::Y/64 when it has one (DAD not failed), an
    fe80::/64 link-local only when ``link_local``, nothing else."""
    want = {("inet", c.address, PREFIXLEN)}
    if c.address6:
        want.add(("inet6", c.address6, PREFIXLEN6))
    have = {(a.get("family"), a.get("local"), a.get("prefixlen")): a for a in infos}
    bad = [f"{c.name}: eth0 lacks {addr}/{plen}" for fam, addr, plen in sorted(want)
           if (fam, addr, plen) not in have]
    bad += [f"{c.name}: eth0's {key[1]} failed DAD" for key, a in have.items()
            if key in want and a.get("dadfailed")]
    other = [key[1] for key, a in have.items() if key not in want
             and not (link_local and key[0] == "inet6" and a.get("scope") == "link")]
    if other:
        bad.append(f"{c.name}: eth0 has other addresses: {other}")
    return bad


def verify_teardown(host_ns: str, containers: Sequence, host_names: Sequence[str],
                    deadline: Deadline) -> Problems:
    """Every host end gone (no veth left in the host namespace, br0 still
    there); a sample of container namespaces holds nothing but lo."""
    problems = Problems()
    links = {l["ifname"]: l for l in _links(host_ns, deadline)}
    left = [n for n in host_names if n in links]
    if left:
        problems.add(f"{len(left)} host ends left, e.g. {left[:3]}")
    veths = [n for n, l in links.items() if l.get("linkinfo", {}).get("info_kind") == "veth"]
    if veths:
        problems.add(f"{len(veths)} veths left in the host namespace, e.g. {veths[:3]}")
    if BRIDGE not in links:
        problems.add(f"{BRIDGE} is gone")
    sample = list(containers)
    if len(sample) > TEARDOWN_SAMPLE:
        rng = random.Random(len(sample))
        sample = [sample[0], sample[-1]] + rng.sample(sample[1:-1], TEARDOWN_SAMPLE - 2)

    def one(c) -> list[str]:
        names = sorted(l["ifname"] for l in _links(c.name, deadline))
        return [] if names == ["lo"] else [f"{c.name}: links {names} after teardown"]

    for bad in _map(one, sample):
        for text in bad:
            problems.add(text)
    return problems


def _map(fn, items):
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        yield from pool.map(fn, items)
