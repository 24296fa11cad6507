"""libcontainer's strategies with pynetlink: give a "container" its network.

The host and the container are two scratch network namespaces that exist
only while this script holds them (run as root; the machine's own network
is not touched).  The host has a bridge br0 (made here with iproute2, as a
runtime's bridge would already exist); the container gets a veth on it,
lo up, eth0 with an address and a default route; then it pings the bridge
and we read its counters.
"""
import json
import os
import subprocess

import pynetlink as pn

NETWORKS = """[
  {"type": "loopback"},
  {"type": "veth", "bridge": "br0", "veth_prefix": "veth", "mtu": 1450,
   "address": "192.0.2.2/24", "gateway": "192.0.2.1",
   "ipv6_address": "2001:db8::2/64", "ipv6_gateway": "2001:db8::1"}
]"""


def inside(fd: int, *command: str) -> str:
    return subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", *command],
                          capture_output=True, text=True, check=True, timeout=30).stdout


with pn.netns.scratch() as host_ns, pn.netns.scratch() as container_ns:
    inside(host_ns, "sh", "-c", "ip link add br0 type bridge && ip addr add 192.0.2.1/24 dev br0"
                                " && ip addr add 2001:db8::1/64 dev br0 nodad && ip link set br0 up")
    networks = [pn.Network.from_dict(d) for d in json.loads(NETWORKS)]
    states = [pn.NetworkState() for _ in networks]

    with pn.netns.entered(host_ns):                 # host side: this thread is "on the host"
        for net, state in zip(networks, states):
            pn.get_strategy(net.type).create(net, None, state, netns=container_ns)
    for net, state in zip(networks, states):        # container side, done from outside
        pn.get_strategy(net.type).initialize(net, state, netns=container_ns)

    print("state:", states[1].to_json())
    print(inside(container_ns, "ip", "-br", "addr"), end="")
    print(inside(container_ns, "ping", "-c", "3", "-i", "0.2", "192.0.2.1").splitlines()[-2])
    with pn.netns.entered(host_ns):
        print("container's counters:", pn.get_stats(states[1]).to_json())
