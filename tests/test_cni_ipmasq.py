"""pynetlink-cni's ``ipMasq``, against the reference bridge plugin of
Debian's containernetworking-plugins (/usr/lib/cni, which makes its rules
with iptables): the plugin runs as a runtime runs it (test_cni.py's
Runtime) inside a scratch "host" namespace, so every rule lands in that
namespace's netfilter tables — never in the machine's — and is read there
with ``iptables-save``/``ip6tables-save``/``nft -j list``.  The reference
in Debian (1.1.1) predates the nftables backend: the nftables rules are
checked against the layout of the newer reference's source (table ``inet
cni_plugins_masquerade``)."""
from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from conftest import Netns
from pynetlink.cni import ipmasq
from test_cni import (PLUGIN, REFERENCE, Runtime, assert_error, container, host, host_local,  # noqa: F401
                      make_ns, needs_reference, plugin_dir, runtime)

needs_tools = pytest.mark.skipif(
    not all(shutil.which(p) for p in ("iptables", "ip6tables", "iptables-save", "ip6tables-save", "nft")),
    reason="iptables and nftables are not installed (apt-get install iptables nftables)")
pytestmark = [needs_reference, needs_tools]

CONTAINER_ID = "pntest-masq1"
NETWORK = "pntest-masqnet"
V4, V6 = "192.0.2.0/24", "2001:db8:7::/64"
COUNTERS = re.compile(r" \[\d+:\d+\]$")


def masq_conf(kind: str, data_dir, *ranges: str, **options) -> dict:
    """A bridge network with ipMasq on (a default route via the bridge)."""
    conf = {"cniVersion": "1.0.0", "name": NETWORK, "type": kind, "bridge": "cnitest0",
            "isGateway": True, "isDefaultGateway": True, "ipMasq": True,
            "ipam": host_local(data_dir, *(ranges or (V4,)))}
    conf.update(options)
    return conf


def nat_rules(ns: Netns, family: int = 4) -> list:
    """``iptables-save -t nat`` (``ip6tables-save`` for 6): the table's
    lines, counters and comments aside."""
    tool = "iptables-save" if family == 4 else "ip6tables-save"
    out = ns.run(tool, "-t", "nat").stdout
    return [COUNTERS.sub("", line) for line in out.splitlines() if line and line[0] not in "#"]


def pod_rules(ns: Netns, family: int = 4, container_id: str = CONTAINER_ID) -> list:
    """The nat lines naming the pod's chain."""
    chain = ipmasq.chain_name(NETWORK, container_id)
    return [line for line in nat_rules(ns, family) if chain in line]


def nft_table(ns: Netns) -> list:
    """The objects of table inet cni_plugins_masquerade (handles aside); [] if there is none."""
    out = ns.run("nft", "-j", "list", "table", "inet", ipmasq.NFT_TABLE, check=False)
    if out.returncode != 0:
        return []
    objects = json.loads(out.stdout)["nftables"][1:]
    for o in objects:
        for body in o.values():
            body.pop("handle", None)
    return objects


def nft_rules(ns: Netns, chain: str) -> list:
    return [o["rule"] for o in nft_table(ns) if "rule" in o and o["rule"]["chain"] == chain]


def pod_addresses(result: dict) -> list:
    return [ip["address"] for ip in result["ips"]]


@pytest.fixture
def reference_host(make_ns):
    """A second scratch host namespace, where the reference plugin runs."""
    return make_ns()


@pytest.fixture
def reference_container(make_ns):
    return make_ns()


# -- the reference's rules -------------------------------------------------------------------

@pytest.mark.parametrize("ranges", [(V4,), (V4, V6)], ids=["ipv4", "dual-stack"])
def test_add_makes_the_same_rules_as_the_reference(runtime, host, container, reference_host,
                                                   reference_container, plugin_dir, tmp_path, ranges):
    reference = Runtime(reference_host, [REFERENCE])
    ours = runtime.ok("ADD", masq_conf(PLUGIN, tmp_path / "ours", *ranges), netns=container.path,
                      container_id=CONTAINER_ID)
    theirs = reference.ok("ADD", masq_conf("bridge", tmp_path / "ref", *ranges),
                          netns=reference_container.path, container_id=CONTAINER_ID)
    assert pod_addresses(ours) == pod_addresses(theirs)
    for family in (4, 6):
        assert nat_rules(host, family) == nat_rules(reference_host, family)
    assert len(pod_rules(host, 4)) == 4                     # -N, ACCEPT, MASQUERADE, POSTROUTING jump
    assert len(pod_rules(host, 6)) == (4 if len(ranges) == 2 else 0)


def test_the_rules_name_the_pod_as_the_reference_does(runtime, host, container, tmp_path):
    result = runtime.ok("ADD", masq_conf(PLUGIN, tmp_path), netns=container.path, container_id=CONTAINER_ID)
    chain = ipmasq.chain_name(NETWORK, CONTAINER_ID)
    address = pod_addresses(result)[0]
    comment = f'"name: \\"{NETWORK}\\" id: \\"{CONTAINER_ID}\\""'
    assert re.fullmatch(r"CNI-[0-9a-f]{24}", chain)
    assert pod_rules(host) == [
        f":{chain} -",
        f"-A POSTROUTING -s {address.split('/')[0]}/32 -m comment --comment {comment} -j {chain}",
        f"-A {chain} -d {V4} -m comment --comment {comment} -j ACCEPT",
        f"-A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE"]
