"""pynetlink quickstart: wire a container-style namespace to a veth pair.

Runs as root.  Everything happens in two scratch network namespaces that
exist only while this script holds them: the machine's own network is not
touched, and nothing is left behind.
"""
import os
import subprocess

import pynetlink as pn


def show(label: str, fd: int) -> None:
    """What iproute2 itself sees inside the namespace held by fd."""
    out = subprocess.run(["nsenter", f"--net=/proc/{os.getpid()}/fd/{fd}", "ip", "-br", *label.split()],
                         capture_output=True, text=True, check=True).stdout
    print(f"  ip -br {label}:\n" + "".join(f"    {line}\n" for line in out.splitlines()))


with pn.netns.scratch() as host_ns, pn.netns.scratch() as container_ns:
    with pn.Handle(netns=host_ns) as host, pn.Handle(netns=container_ns) as container:
        host.create_veth_pair("veth-host", "veth-child")
        host.set_mtu("veth-host", 1450)
        host.interface_up("veth-host")
        host.set_interface_ip("veth-host", "192.0.2.1/24")
        host.set_interface_in_namespace_fd("veth-child", container_ns)
        print("host side: veth-host up, 192.0.2.1/24; veth-child moved into the container")

        container.interface_up("lo")
        container.change_interface_name("veth-child", "eth0")
        container.set_mtu("eth0", 1450)
        container.interface_up("eth0")
        container.set_interface_ip("eth0", "192.0.2.2/24")
        container.set_interface_ip("eth0", "2001:db8::2/64")
        container.set_default_gateway("192.0.2.1", "eth0")
        link = container.get_link("eth0")
        print(f"container side: eth0 index {link.index}, mtu {link.mtu}, up={link.up}, "
              "addresses and default route set")

        show("link", host_ns)
        show("addr", container_ns)
        show("route", container_ns)
print("done: both namespaces are gone with their fds")
