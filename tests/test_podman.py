"""pynetlink-cni under podman 4 with its CNI backend, in a sandbox
(tests/runtime_sandbox.py: private net + mount + pid namespaces, tmpfs
state): containers on a dual-stack network get their addresses and routes,
ping the gateway and each other, publish a port (``-p``), keep their
addresses across ``podman network reload``, honour ``--ip``/``--ip6`` and
``--mac-address``, and ``--rm`` leaves nothing.  Every test runs through
both execution modes: the C shim with ``pynetlink-cni daemon`` on its
default socket, and exec mode (``--install DIR --exec-only``); and on two
networks: a minimal hand-written conflist, and the one ``podman network
create`` writes (podman's chain: portmap, firewall, tuning; ``ipMasq: true``)
with the first plugin's ``type`` changed to pynetlink-cni.  Kernel state is
judged with ``ip -j``, podman's own view with ``podman inspect``."""
from __future__ import annotations

import ipaddress
import re
import subprocess
import time

import pytest

from runtime_sandbox import (MODES, PLUGIN_DIR, ROOTFS, Node, Podman, Sandbox, cni_cache,
                             dual_stack_conflist, global_addresses, leases, missing_programs)

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.skipif(bool(missing_programs()), reason=f"not installed: {missing_programs()}"),
]

SUBNET4, GATEWAY4 = "192.0.2.0/24", "192.0.2.1"
SUBNET6, GATEWAY6 = "2001:db8:1::/64", "2001:db8:1::1"
MINIMAL = "pnmin"
PODMAN_MADE = "pnmade"
MINIMAL_BRIDGE = "pnbr0"
MINIMAL_CONFLIST = dual_stack_conflist(MINIMAL, MINIMAL_BRIDGE, SUBNET4, GATEWAY4, SUBNET6, GATEWAY6,
                                       {"type": "portmap", "capabilities": {"portMappings": True}})
NETWORKS = [pytest.param(MINIMAL, id="minimal"), pytest.param(PODMAN_MADE, id="podman-made")]
# chains the reference plugins share between containers and leave in place
SHARED_CHAINS = re.compile(r"^CNI-(HOSTPORT-(DNAT|MASQ|SETMARK)|FORWARD|ADMIN)$")
SECONDS = 15.0                      # bound on every wait for the network to answer


class PodmanNode(Node):
    """A sandboxed node with podman configured in it."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode, PLUGIN_DIR)
        try:
            self.podman = Podman(self.sandbox)
        except BaseException:
            self.close()
            raise


@pytest.fixture(scope="module", params=MODES)
def world(request):
    """A sandbox with podman, pynetlink-cni in one execution mode (and its
    daemon in "daemon" mode); everything in it ends with the module."""
    node = PodmanNode(request.param)
    yield node
    node.close()


@pytest.fixture
def podman(world) -> Podman:
    return world.podman


@pytest.fixture
def sandbox(world) -> Sandbox:
    return world.sandbox


def create_podman_network(podman: Podman, name: str, *subnets: str) -> dict:
    """``podman network create`` with ``subnets``, then the one edit:
    the first plugin's type becomes pynetlink-cni.  The edited conflist."""
    podman("network", "create", *(a for s in subnets for a in ("--subnet", s)), name)
    conflist = podman.read_network(name)
    assert conflist["plugins"][0]["type"] == "bridge", conflist
    conflist["plugins"][0]["type"] = "pynetlink-cni"
    podman.write_network(conflist)
    return conflist


def bridge_of(conflist: dict) -> str:
    return conflist["plugins"][0]["bridge"]


def remove_network(world: PodmanNode, name: str, bridge: str) -> None:
    """Containers, the network, its bridge and host-local's directory: gone."""
    world.podman("rm", "--all", "--force", "--time", "0")
    world.podman("network", "rm", "--force", name, check=False)
    world.sandbox.run("ip", "link", "del", bridge, check=False)
    world.sandbox.run("rm", "-rf", f"/var/lib/cni/networks/{name}")


@pytest.fixture(params=NETWORKS)
def net(request, world) -> str:
    """A dual-stack network (the minimal conflist, or podman's own made by
    ``podman network create`` with the type edit), removed after the test
    with its containers; in daemon mode the daemon must have served it."""
    served = world.served()
    if request.param == MINIMAL:
        world.podman.write_network(MINIMAL_CONFLIST)
        bridge = MINIMAL_BRIDGE
    else:
        bridge = bridge_of(create_podman_network(world.podman, PODMAN_MADE, SUBNET4, SUBNET6))
    yield request.param
    remove_network(world, request.param, bridge)
    if world.daemon:
        assert world.served() > served, "the daemon served none of this test's requests"


# -- helpers --------------------------------------------------------------------------------------

def start(podman: Podman, name: str, net: str, *options: str, command: tuple = ("sleep", "600")) -> None:
    """A detached container ``name`` on ``net`` running ``command``."""
    podman.run("-d", "--name", name, "--network", net, *options, "--rootfs", ROOTFS, *command)


def netns_name(podman: Podman, name: str) -> str:
    """The container's network namespace as podman pinned it under /run/netns."""
    key = podman.inspect(name)["NetworkSettings"]["SandboxKey"]
    assert key.startswith("/run/netns/"), key
    return key[len("/run/netns/"):]


def eth0(sandbox: Sandbox, podman: Podman, name: str) -> dict:
    """``ip -j addr show dev eth0`` in the container's namespace."""
    return sandbox.ip("-n", netns_name(podman, name), "addr", "show", "dev", "eth0")[0]


def default_gateway(sandbox: Sandbox, netns: str, family: str) -> str:
    routes = sandbox.ip("-n", netns, family, "route", "show", "default")
    assert routes and len(routes) == 1, routes
    return routes[0]["gateway"]


def inspected(podman: Podman, name: str, net: str) -> dict:
    """podman's view of the container on ``net`` (IPAddress, GlobalIPv6Address, MacAddress...)."""
    return podman.inspect(name)["NetworkSettings"]["Networks"][net]


def pings(podman: Podman, name: str, address: str, seconds: float = SECONDS) -> bool:
    """``ping`` from the container answered within ``seconds`` (IPv6 waits for DAD)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if podman("exec", name, "ping", "-c", "1", "-W", "1", address, check=False).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def fetch(sandbox: Sandbox, url: str, seconds: float = SECONDS) -> str:
    """The body of ``url`` fetched in the sandbox's host namespace (busybox
    wget; not its -T, which makes Debian's static busybox 1.35 crash on a
    successful fetch), or "" if nothing answered within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            done = sandbox.run("busybox", "wget", "-q", "-O", "-", url, check=False, timeout=5)
        except subprocess.TimeoutExpired:
            continue
        if done.returncode == 0:
            return done.stdout
        time.sleep(0.2)
    return ""


def per_container_chains(rules: str) -> list:
    """Chains that belong to one container (shared ones left out), as
    iptables-save (":NAME") or nft ("chain NAME {") lists them."""
    chains = set(re.findall(r"^(?::|\s*chain )(CNI-[\w-]+)", rules, flags=re.M))
    return sorted(c for c in chains if not SHARED_CHAINS.match(c))


# -- addresses, routes, reachability -------------------------------------------------------------

def test_container_gets_both_addresses_from_the_network(sandbox, podman, net):
    start(podman, "c1", net)
    got = global_addresses(eth0(sandbox, podman, "c1"))
    assert ipaddress.ip_interface(got["inet"]).network == ipaddress.ip_network(SUBNET4)
    assert ipaddress.ip_interface(got["inet6"]).network == ipaddress.ip_network(SUBNET6)
    seen = inspected(podman, "c1", net)
    assert (seen["IPAddress"], seen["GlobalIPv6Address"]) == \
        (got["inet"].split("/")[0], got["inet6"].split("/")[0])


def test_container_default_routes_go_through_the_gateways(sandbox, podman, net):
    start(podman, "c1", net)
    netns = netns_name(podman, "c1")
    assert (default_gateway(sandbox, netns, "-4"), default_gateway(sandbox, netns, "-6")) == \
        (GATEWAY4, GATEWAY6)


def test_container_pings_the_gateway_over_ipv4_and_ipv6(podman, net):
    start(podman, "c1", net)
    assert pings(podman, "c1", GATEWAY4)
    assert pings(podman, "c1", GATEWAY6)


def test_containers_ping_each_other_over_ipv4_and_ipv6(podman, net):
    start(podman, "c1", net)
    start(podman, "c2", net)
    other = inspected(podman, "c2", net)
    assert pings(podman, "c1", other["IPAddress"])
    assert pings(podman, "c1", other["GlobalIPv6Address"])


def test_published_port_reaches_the_listener_in_the_container(sandbox, podman, net):
    start(podman, "web", net, "-p", "8080:80", command=("httpd", "-f", "-p", "80", "-h", "/www"))
    assert fetch(sandbox, f"http://{GATEWAY4}:8080/") == "hello from the container\n"
    assert fetch(sandbox, f"http://[{GATEWAY6}]:8080/") == "hello from the container\n"


def test_network_reload_keeps_the_container_addresses(sandbox, podman, net):
    start(podman, "c1", net)
    before = eth0(sandbox, podman, "c1")
    podman("network", "reload", "c1")
    after = eth0(sandbox, podman, "c1")
    assert (global_addresses(after), after["address"]) == (global_addresses(before), before["address"])
    assert pings(podman, "c1", GATEWAY4)


def test_static_ip_ip6_and_mac_address_are_honoured(sandbox, podman, net):
    start(podman, "c1", net, "--ip", "192.0.2.50", "--ip6", "2001:db8:1::50",
          "--mac-address", "02:00:00:00:00:50")
    link = eth0(sandbox, podman, "c1")
    assert global_addresses(link) == {"inet": "192.0.2.50/24", "inet6": "2001:db8:1::50/64"}
    assert link["address"] == "02:00:00:00:00:50"
    assert inspected(podman, "c1", net)["MacAddress"] == "02:00:00:00:00:50"


# -- --rm leaves nothing ----------------------------------------------------------------------------

def test_rm_container_leaves_no_link_lease_cache_netns_or_rule(sandbox, podman, net):
    before = {link["ifname"] for link in sandbox.ip("link", "show")}
    done = podman.run("--rm", "--network", net, "-p", "8081:80", "--rootfs", ROOTFS,
                      "ip", "-o", "addr", "show", "dev", "eth0")
    addresses = re.findall(r"inet6? (\S+)/\d+ .*scope global", done.stdout)
    assert len(addresses) == 2, done.stdout
    links = {link["ifname"] for link in sandbox.ip("link", "show")}
    assert links == before | {bridge_of(podman.read_network(net))}, "a host-side veth is left"
    assert leases(sandbox, net) == set(), "host-local leases are left"
    assert cni_cache(sandbox) == [], "libcni's cache is left"
    assert sandbox.listdir("/run/netns") == [], "a network namespace is left"
    rules = sandbox.firewall_rules()
    assert per_container_chains(rules) == [], rules
    assert not [a for a in addresses if a in rules], rules
    assert podman("ps", "--all", "--quiet").stdout == ""


# -- networks made by podman: the bridge name ------------------------------------------------------

@pytest.fixture
def two_podman_networks(world):
    """Two networks made by ``podman network create`` one after the other,
    each with the type edit (and without ipMasq, which is not what these
    tests are about); removed after the test."""
    made = []
    try:
        for name, subnet in (("pna", "192.0.2.0/24"), ("pnb", "198.51.100.0/24")):
            conflist = create_podman_network(world.podman, name, subnet)
            conflist["plugins"][0].pop("ipMasq", None)
            world.podman.write_network(conflist)
            made.append(conflist)
        yield made
    finally:
        for conflist in made:
            remove_network(world, conflist["name"], bridge_of(conflist))


def test_podman_hands_the_edited_network_bridge_name_to_the_next_network(two_podman_networks):
    """Why users must name bridges themselves (--interface-name): once the
    type is edited podman no longer sees the bridge, and reuses its name."""
    first, second = two_podman_networks
    assert bridge_of(first) == bridge_of(second)


def test_second_network_on_a_bridge_already_in_use_is_refused(podman, two_podman_networks):
    first, second = two_podman_networks
    start(podman, "c1", first["name"])
    refused = podman.run("-d", "--name", "c2", "--network", second["name"], "--rootfs", ROOTFS,
                         "sleep", "600", check=False)
    assert refused.returncode != 0, "two networks silently share one bridge"


# -- the sandbox keeps everything to itself -------------------------------------------------------

@pytest.fixture
def bare_sandbox():
    """A sandbox with nothing in it; closed after the test (again, if the test closed it)."""
    s = Sandbox()
    yield s
    s.close()


def test_sandbox_links_rules_and_mounts_are_not_seen_outside(bare_sandbox):
    bare_sandbox.run("ip", "link", "add", "pnsbx0", "type", "veth", "peer", "name", "pnsbx1")
    bare_sandbox.run("iptables", "-t", "nat", "-N", "PNTEST-SANDBOX")
    assert "pnsbx0" in {link["ifname"] for link in bare_sandbox.ip("link", "show")}
    outside = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert "pnsbx0" not in outside
    assert "PNTEST-SANDBOX" not in subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                                                  text=True, check=True).stdout
    with open("/proc/self/mounts") as f:
        assert "pnsandbox" not in f.read()


def test_closing_the_sandbox_ends_its_orphaned_processes(bare_sandbox):
    bare_sandbox.run("sh", "-c", "sleep 300 >/dev/null 2>&1 &")
    assert len(bare_sandbox.processes()) >= 2          # its init and the orphaned sleep
    bare_sandbox.close()
    assert bare_sandbox.processes() == []
