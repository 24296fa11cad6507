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

import ipaddress
import json
import os
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import Netns
from pynetlink.cni import ipmasq
from test_cni import (FAKE_IPAM, PLUGIN, REFERENCE, Runtime, assert_error, container, host, host_local,  # noqa: F401
                      make_ns, needs_reference, plugin_dir, runtime)
from test_cni_daemon import DaemonRuntime, shim_dir, sockdir, start_daemon  # noqa: F401

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


# -- the reference's rules -------------------------------------------------------------------

@pytest.mark.parametrize("ranges", [(V4,), (V4, V6)], ids=["ipv4", "dual-stack"])
def test_add_makes_the_same_rules_as_the_reference(runtime, host, container, make_ns, tmp_path, ranges):
    """The reference runs in a host namespace of its own, on the same
    network and container id."""
    reference_host, reference_container = make_ns(), make_ns()
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


# -- DEL -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ranges", [(V4,), (V4, V6)], ids=["ipv4", "dual-stack"])
def test_del_removes_the_rules(runtime, host, container, tmp_path, ranges):
    conf = masq_conf(PLUGIN, tmp_path, *ranges)
    before = {family: nat_rules(host, family) for family in (4, 6)}
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID)
    assert (pod_rules(host, 4), pod_rules(host, 6)) == ([], [])
    assert {family: nat_rules(host, family) for family in (4, 6)} == before or \
        all(line.startswith((":", "*", "COMMIT")) for f in (4, 6) for line in nat_rules(host, f))


def test_del_without_prev_result_removes_the_rules_of_the_interfaces_addresses(runtime, host,
                                                                               container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path, V4, V6)
    runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    runtime.ok("DEL", conf, netns=container.path, container_id=CONTAINER_ID)
    assert (pod_rules(host, 4), pod_rules(host, 6)) == ([], [])


def test_del_after_the_namespace_is_gone_finds_the_rules_by_listing(runtime, host, make_ns, tmp_path):
    """No prevResult and no interface to read addresses from: the
    POSTROUTING jumps to the pod's chain are found in the listing."""
    gone = make_ns()
    conf = masq_conf(PLUGIN, tmp_path, V4, V6)
    runtime.ok("ADD", conf, netns=gone.path, container_id=CONTAINER_ID)
    gone.remove()
    runtime.ok("DEL", conf, netns=gone.path, container_id=CONTAINER_ID)
    assert (pod_rules(host, 4), pod_rules(host, 6)) == ([], [])


def test_del_twice_succeeds(runtime, host, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    for _ in range(2):
        runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID)
    assert pod_rules(host) == []


@pytest.mark.parametrize("by_hand", [("-D", "POSTROUTING", "1"), ("-F",), ("-F", "-X")])
def test_del_after_the_rules_were_removed_by_hand_succeeds(runtime, host, container, tmp_path, by_hand):
    conf = masq_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    chain = ipmasq.chain_name(NETWORK, CONTAINER_ID)
    if by_hand[0] == "-D":
        host.run("iptables", "-t", "nat", *by_hand)
    else:
        host.run("iptables", "-t", "nat", "-D", "POSTROUTING", "1")
        for flag in by_hand:
            host.run("iptables", "-t", "nat", flag, chain)
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID)
    assert pod_rules(host) == []


@pytest.mark.parametrize("adder,deleter", [("bridge", PLUGIN), (PLUGIN, "bridge")],
                         ids=["reference-add-pynetlink-del", "pynetlink-add-reference-del"])
def test_either_plugins_del_removes_the_others_rules(runtime, host, container, tmp_path, adder, deleter):
    result = runtime.ok("ADD", masq_conf(adder, tmp_path, V4, V6), netns=container.path,
                        container_id=CONTAINER_ID)
    assert len(pod_rules(host, 4)) == len(pod_rules(host, 6)) == 4
    runtime.ok("DEL", dict(masq_conf(deleter, tmp_path, V4, V6), prevResult=result),
               netns=container.path, container_id=CONTAINER_ID)
    assert (pod_rules(host, 4), pod_rules(host, 6)) == ([], [])


def test_del_leaves_another_pods_rules(runtime, host, make_ns, tmp_path):
    first, second = make_ns(), make_ns()
    conf = masq_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=first.path, container_id=CONTAINER_ID)
    runtime.ok("ADD", conf, netns=second.path, container_id="pntest-masq2")
    runtime.ok("DEL", dict(conf, prevResult=result), netns=first.path, container_id=CONTAINER_ID)
    assert (pod_rules(host), len(pod_rules(host, container_id="pntest-masq2"))) == ([], 4)


@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_concurrent_pods_get_and_lose_their_rules(runtime, host, make_ns, tmp_path, backend):
    """Six pods' ADDs at once, then their DELs at once (iptables waits for
    its lock; each nft run is one transaction)."""
    conf = masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend=backend)
    pods = [(make_ns(), f"pntest-masq{i}") for i in range(6)]
    with ThreadPoolExecutor(len(pods)) as pool:
        results = list(pool.map(lambda pod: runtime.ok("ADD", conf, netns=pod[0].path, container_id=pod[1]),
                                pods, timeout=120))
        made = rule_count(host, [cid for _, cid in pods], backend)
        list(pool.map(lambda pod, result: runtime.ok("DEL", dict(conf, prevResult=result), netns=pod[0].path,
                                                     container_id=pod[1]), pods, results, timeout=120))
    left = rule_count(host, [cid for _, cid in pods], backend)
    per_pod = 8 if backend == "iptables" else 2                 # both families
    assert (made, left) == ([per_pod] * len(pods), [0] * len(pods))


def rule_count(host: Netns, container_ids: list, backend: str) -> list:
    """Each pod's rules: iptables lines of both families, or nftables rules."""
    if backend == "iptables":
        return [len(pod_rules(host, 4, cid)) + len(pod_rules(host, 6, cid)) for cid in container_ids]
    comments = [r["comment"] for r in nft_rules(host, ipmasq.NFT_CHAIN)]
    return [comments.count(ipmasq.nft_comment(NETWORK, "eth0", cid)) for cid in container_ids]


# -- CHECK -----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_check_passes_after_add(runtime, container, tmp_path, backend):
    conf = masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend=backend)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    runtime.ok("CHECK", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID)


def test_check_reports_a_missing_masquerade_rule(runtime, host, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    host.run("iptables", "-t", "nat", "-D", ipmasq.chain_name(NETWORK, CONTAINER_ID), "2")
    out = runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path,
                       container_id=CONTAINER_ID)
    assert_error(out, 102, "1.0.0", "MASQUERADE", "not found")


def test_check_reports_a_missing_chain(runtime, host, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path, V4, V6)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    chain = ipmasq.chain_name(NETWORK, CONTAINER_ID)
    host.run("ip6tables", "-t", "nat", "-D", "POSTROUTING", "1")
    host.run("ip6tables", "-t", "nat", "-F", chain)
    host.run("ip6tables", "-t", "nat", "-X", chain)
    out = runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path,
                       container_id=CONTAINER_ID)
    doc = assert_error(out, 102, "1.0.0", "ip6tables rule", "MASQUERADE", "POSTROUTING")
    assert "iptables rule" not in doc["details"].replace("ip6tables rule", "")


def test_check_reports_a_missing_nftables_rule(runtime, host, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend="nftables")
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    host.run("nft", "flush", "chain", "inet", ipmasq.NFT_TABLE, ipmasq.NFT_CHAIN)
    out = runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path,
                       container_id=CONTAINER_ID)
    assert_error(out, 102, "1.0.0", "masquerading 192.0.2.", "masquerading 2001:db8:7::")


# -- the nftables backend --------------------------------------------------------------------

def test_nftables_backend_makes_the_newer_references_table(runtime, host, container, tmp_path):
    result = runtime.ok("ADD", masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend="nftables"),
                        netns=container.path, container_id=CONTAINER_ID)
    v4, v6 = (a.split("/")[0] for a in pod_addresses(result))
    out = host.run("nft", "list", "table", "inet", ipmasq.NFT_TABLE).stdout
    comment = f'"{ipmasq.nft_instance(NETWORK, "eth0", CONTAINER_ID)}, net: {NETWORK}, if: eth0, id: {CONTAINER_ID}"'
    assert [line.strip() for line in out.splitlines() if line.strip()] == [
        f"table inet {ipmasq.NFT_TABLE} {{",
        '''comment "Masquerading for plugins from github.com/containernetworking/plugins"''',
        "chain masq_checks {",
        '''comment "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"''',
        f"ip saddr {v4} ip daddr != {V4} masquerade comment {comment}",
        f"ip6 saddr {v6} ip6 daddr != {V6} masquerade comment {comment}",
        "}",
        "chain postrouting {",
        "type nat hook postrouting priority srcnat; policy accept;",
        "ip daddr 224.0.0.0/4 return",
        "ip6 daddr ff00::/8 return",
        "goto masq_checks",
        "}",
        "}"]
    assert pod_rules(host, 4) == pod_rules(host, 6) == []       # no iptables rule


def test_nftables_del_removes_the_pods_rules_only(runtime, host, make_ns, tmp_path):
    first, second = make_ns(), make_ns()
    conf = masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend="nftables")
    result = runtime.ok("ADD", conf, netns=first.path, container_id=CONTAINER_ID)
    runtime.ok("ADD", conf, netns=second.path, container_id="pntest-masq2")
    for _ in range(2):
        runtime.ok("DEL", dict(conf, prevResult=result), netns=first.path, container_id=CONTAINER_ID)
    left = [r["comment"] for r in nft_rules(host, ipmasq.NFT_CHAIN)]
    assert left == [ipmasq.nft_comment(NETWORK, "eth0", "pntest-masq2")] * 2


def test_nftables_add_again_replaces_the_pods_stale_rules(runtime, host, container, tmp_path):
    """A second ADD for the same pod (its link removed by hand in between,
    another address from IPAM) leaves one rule: the new address's."""
    def conf(address: str) -> dict:
        ipam = {"type": FAKE_IPAM, "log": str(tmp_path / "ipam.log"), "result": {"ips": [{"address": address}]}}
        return masq_conf(PLUGIN, tmp_path, ipMasqBackend="nftables", ipam=ipam)
    runtime.ok("ADD", conf("192.0.2.10/24"), netns=container.path, container_id=CONTAINER_ID)
    container.run("ip", "link", "del", "eth0")
    runtime.ok("ADD", conf("192.0.2.11/24"), netns=container.path, container_id=CONTAINER_ID)
    [rule] = nft_rules(host, ipmasq.NFT_CHAIN)
    assert ipmasq.source_address(rule) == ipaddress.ip_address("192.0.2.11")


def test_unknown_backend_is_the_references_error(runtime, host, container, tmp_path):
    out = runtime.exec("ADD", masq_conf(PLUGIN, tmp_path, ipMasqBackend="ebtables"),
                       netns=container.path, container_id=CONTAINER_ID)
    assert_error(out, 7, "1.0.0", 'unknown ipmasq backend "ebtables"')
    assert container.link_names() == {"lo"}


# -- missing programs ------------------------------------------------------------------------

def bin_dir(tmp_path, *programs: str) -> str:
    """A PATH directory holding only ``programs`` (links to the real ones)
    and ``ip`` (which the runtime runs the plugin with)."""
    d = tmp_path / "bin"
    d.mkdir()
    for p in ("ip", *programs):
        os.symlink(shutil.which(p), d / p)
    return str(d)


@pytest.mark.parametrize("backend,program,package", [(None, "iptables", "iptables"),
                                                     ("iptables", "iptables", "iptables"),
                                                     ("nftables", "nft", "nftables")])
def test_a_missing_program_is_a_clear_error(runtime, host, container, tmp_path, backend, program, package):
    conf = masq_conf(PLUGIN, tmp_path, ipMasqBackend=backend)
    out = runtime.exec("ADD", conf, netns=container.path, container_id=CONTAINER_ID,
                       env={"PATH": bin_dir(tmp_path)})
    assert_error(out, 100, "1.0.0", f"needs the {program} program", f"package {package}")
    assert container.link_names() == {"lo"}


def test_check_without_the_program_is_the_clear_error(runtime, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path, ipMasqBackend="nftables")
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    out = runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path,
                       container_id=CONTAINER_ID, env={"PATH": bin_dir(tmp_path)})
    assert_error(out, 100, "1.0.0", "needs the nft program", "package nftables")


def test_a_missing_ip6tables_fails_the_add_and_leaves_no_ipv4_rule(runtime, host, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path, V4, V6)
    out = runtime.exec("ADD", conf, netns=container.path, container_id=CONTAINER_ID,
                       env={"PATH": bin_dir(tmp_path, "iptables")})
    assert_error(out, 100, "1.0.0", "needs the ip6tables program")
    assert (container.link_names(), pod_rules(host, 4)) == ({"lo"}, [])


def test_without_iptables_the_default_backend_is_nftables(runtime, host, container, tmp_path):
    conf = masq_conf(PLUGIN, tmp_path)
    path = {"PATH": bin_dir(tmp_path, "nft")}
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID, env=path)
    assert len(nft_rules(host, ipmasq.NFT_CHAIN)) == 1
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID,
               env=path)
    assert nft_rules(host, ipmasq.NFT_CHAIN) == []


def broken_iptables(directory: str) -> None:
    """An ``iptables`` in ``directory`` that cannot work (as on a kernel without its tables)."""
    fake = os.path.join(directory, "iptables")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\necho \"iptables: can't initialize iptables table: Permission denied\" >&2\nexit 3\n")
    os.chmod(fake, 0o755)


def test_with_iptables_not_working_the_default_backend_is_nftables(runtime, host, container, tmp_path):
    """As the reference: iptables is the default only if it works; and its
    failure on DEL is then no error."""
    conf = masq_conf(PLUGIN, tmp_path)
    path = bin_dir(tmp_path, "nft")
    broken_iptables(path)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID, env={"PATH": path})
    assert len(nft_rules(host, ipmasq.NFT_CHAIN)) == 1
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID,
               env={"PATH": path})
    assert nft_rules(host, ipmasq.NFT_CHAIN) == []


def test_del_without_the_programs_succeeds(runtime, host, container, tmp_path):
    """As the reference: a backend whose program is absent is skipped on DEL."""
    conf = masq_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID,
               env={"PATH": bin_dir(tmp_path)})
    assert container.link_names() == {"lo"}


# -- traffic ---------------------------------------------------------------------------------

OUTSIDE = {4: ("198.51.100.1/24", "198.51.100.2"), 6: ("2001:db8:99::1/64", "2001:db8:99::2")}


@pytest.fixture
def outside(host, make_ns):
    """A namespace beyond the host (198.51.100.0/24, 2001:db8:99::/64 on a
    veth to it) with no route back to the pods' subnets: a pod's packet
    gets an answer there only if the host masqueraded it."""
    ns = make_ns()
    host.run("ip", "link", "add", "pnout0", "type", "veth", "peer", "name", "pnout1", "netns", ns.name)
    for family, (host_address, outside_address) in OUTSIDE.items():
        host.run("ip", "addr", "add", host_address, "dev", "pnout0", "nodad")
        ns.run("ip", "addr", "add", f"{outside_address}/{host_address.split('/')[1]}", "dev", "pnout1", "nodad")
    host.run("ip", "link", "set", "pnout0", "up")
    ns.run("ip", "link", "set", "pnout1", "up")
    return ns


def pings(ns: Netns, address: str, seconds: float = 5.0) -> bool:
    """One echo answered within ``seconds`` (tried once a second: new
    addresses may still be settling)."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds) + 1):
        if ns.run("ping", "-n", "-q", "-c", "1", "-W", "1", address, check=False).returncode == 0:
            return True
        if time.monotonic() >= deadline:
            break
    return False


def masquerade_packets(ns: Netns, family: int) -> int:
    """The packet counter of the pod's MASQUERADE rule (``iptables-save -c``)."""
    tool = "iptables-save" if family == 4 else "ip6tables-save"
    chain = ipmasq.chain_name(NETWORK, CONTAINER_ID)
    for line in ns.run(tool, "-c", "-t", "nat").stdout.splitlines():
        if f"-A {chain} " in line and line.endswith("-j MASQUERADE"):
            return int(line[1:line.index(":")])
    raise AssertionError(f"no MASQUERADE rule in {chain}")


@pytest.mark.parametrize("family", [4, 6])
def test_a_pods_traffic_leaving_the_subnet_is_masqueraded(runtime, host, container, outside, tmp_path,
                                                          family):
    runtime.ok("ADD", masq_conf(PLUGIN, tmp_path, V4, V6), netns=container.path, container_id=CONTAINER_ID)
    assert masquerade_packets(host, family) == 0
    assert pings(container, OUTSIDE[family][1])
    assert masquerade_packets(host, family) >= 1


def test_with_the_nftables_backend_too(runtime, host, container, outside, tmp_path):
    runtime.ok("ADD", masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend="nftables"), netns=container.path,
               container_id=CONTAINER_ID)
    assert (pings(container, OUTSIDE[4][1]), pings(container, OUTSIDE[6][1])) == (True, True)


def test_without_ipmasq_the_outside_cannot_answer(runtime, host, container, outside, tmp_path):
    """The control of the two above: no masquerade, no answer."""
    runtime.ok("ADD", masq_conf(PLUGIN, tmp_path, ipMasq=False), netns=container.path,
               container_id=CONTAINER_ID)
    assert not pings(container, OUTSIDE[4][1], seconds=1.0)


# -- through the daemon ----------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["iptables", "nftables"])
def test_through_the_daemon_add_makes_and_del_removes_the_rules(host, container, shim_dir,  # noqa: F811
                                                                start_daemon, tmp_path, backend):
    """The daemon serves in the host namespace: the programs it runs make
    the rules there, found with the request's PATH."""
    daemon = start_daemon(host)
    served = DaemonRuntime(host, [shim_dir, REFERENCE], daemon.path)
    conf = masq_conf(PLUGIN, tmp_path, V4, V6, ipMasqBackend=backend)
    result = served.ok("ADD", conf, netns=container.path, container_id=CONTAINER_ID)
    served.ok("CHECK", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID)
    made = len(pod_rules(host, 4)) + len(pod_rules(host, 6)) + len(nft_rules(host, ipmasq.NFT_CHAIN))
    served.ok("DEL", dict(conf, prevResult=result), netns=container.path, container_id=CONTAINER_ID)
    left = len(pod_rules(host, 4)) + len(pod_rules(host, 6)) + len(nft_rules(host, ipmasq.NFT_CHAIN))
    assert (made, left) == ((8 if backend == "iptables" else 2), 0)
