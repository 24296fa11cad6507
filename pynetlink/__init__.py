"""pynetlink: container networking over raw rtnetlink.

docker libcontainer's ``network`` package (v1.2.0) for Python, without its
bugs, over a small C core.  The module-level functions act in the calling
thread's current network namespace through a per-thread default ``Handle``;
use ``Handle(netns=...)`` to act in another namespace without entering it.
"""
from __future__ import annotations

import importlib

from . import netns
from .errors import NetlinkError
from .handle import Handle, default_handle
from .links import Link

# Imported on first use (PEP 562), so that a short-lived process — a CNI
# plugin runs once per pod — pays only for what it uses.
_LAZY = {
    "bulk": (".bulk", None), "Batch": (".batch", "Batch"), "Result": (".batch", "Result"),
    "get_stats": (".stats", "get_stats"), "get_stats_many": (".stats", "get_stats_many"),
    "NetworkStrategy": (".strategies", "NetworkStrategy"), "Loopback": (".strategies", "Loopback"),
    "Veth": (".strategies", "Veth"), "NetNS": (".strategies", "NetNS"),
    "NotValidStrategyType": (".strategies", "NotValidStrategyType"),
    "get_strategy": (".strategies", "get_strategy"),
    "Network": (".types", "Network"), "NetworkState": (".types", "NetworkState"),
    "NetworkStats": (".types", "NetworkStats"),
}


def __getattr__(name: str):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pynetlink' has no attribute {name!r}") from None
    value = importlib.import_module(module, __name__)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "Handle", "Link", "NetlinkError", "netns", "bulk", "Batch", "Result", "default_handle",
    "create_veth_pair", "create_bridge", "interface_up", "interface_down", "set_mtu",
    "set_interface_master", "change_interface_name", "set_interface_in_namespace_pid",
    "set_interface_in_namespace_fd", "set_interface_ip", "set_default_gateway",
    "delete_link", "link_index", "get_link", "set_link", "set_hairpin", "list_links", "delete_group",
    "Network", "NetworkState", "NetworkStats", "get_stats", "get_stats_many",
    "NetworkStrategy", "Loopback", "Veth", "NetNS", "NotValidStrategyType", "get_strategy",
]


def create_veth_pair(name1: str, name2: str, **options) -> None:
    """Create a veth pair (``ip link add NAME1 type veth peer name NAME2``);
    see ``Handle.create_veth_pair`` for the keyword options."""
    default_handle().create_veth_pair(name1, name2, **options)


def create_bridge(name: str, **options) -> None:
    """Create a bridge (``ip link add NAME type bridge``); see
    ``Handle.create_bridge`` for the keyword options."""
    default_handle().create_bridge(name, **options)


def interface_up(name: str) -> None:
    """Set IFF_UP only (``ip link set NAME up``)."""
    default_handle().interface_up(name)


def interface_down(name: str) -> None:
    """Clear IFF_UP only (``ip link set NAME down``)."""
    default_handle().interface_down(name)


def set_mtu(name: str, mtu: int) -> None:
    """Set the MTU only (``ip link set NAME mtu MTU``)."""
    default_handle().set_mtu(name, mtu)


def set_interface_master(name: str, master: str) -> None:
    """Enslave NAME to MASTER (``ip link set NAME master MASTER``)."""
    default_handle().set_interface_master(name, master)


def change_interface_name(old: str, new: str) -> None:
    """Rename a link (``ip link set OLD name NEW``)."""
    default_handle().change_interface_name(old, new)


def set_interface_in_namespace_pid(name: str, pid: int) -> None:
    """Move a link into PID's network namespace (``ip link set NAME netns PID``)."""
    default_handle().set_interface_in_namespace_pid(name, pid)


def set_interface_in_namespace_fd(name: str, fd: int) -> None:
    """Move a link into the namespace open at FD (``ip link set NAME netns /proc/self/fd/FD``)."""
    default_handle().set_interface_in_namespace_fd(name, fd)


def set_interface_ip(name: str, raw_ip) -> None:
    """Add an address from a CIDR (``ip addr add RAW_IP dev NAME``)."""
    default_handle().set_interface_ip(name, raw_ip)


def set_default_gateway(ip, iface_name: str) -> None:
    """Add the default route (``ip route add default via IP dev IFACE_NAME``)."""
    default_handle().set_default_gateway(ip, iface_name)


def delete_link(name: str) -> None:
    """Delete a link (``ip link del NAME``)."""
    default_handle().delete_link(name)


def link_index(name: str) -> int:
    """The ifindex of NAME: one RTM_GETLINK, never a dump."""
    return default_handle().link_index(name)


def get_link(name: str) -> Link:
    """What the kernel says of NAME, counters included (``ip -d -s link show NAME``)."""
    return default_handle().get_link(name)


def set_link(name: str, **changes) -> None:
    """Change several attributes in one request (``ip link set NAME ...``);
    see ``Handle.set_link``."""
    default_handle().set_link(name, **changes)


def set_hairpin(name: str, on: bool = True) -> None:
    """Hairpin mode of a bridge port (``ip link set NAME type bridge_slave hairpin on``)."""
    default_handle().set_hairpin(name, on)


def delete_group(group: int) -> None:
    """Delete every link of a link group with one request (``ip link delete group GROUP``)."""
    default_handle().delete_group(group)


def list_links() -> list:
    """Every link of the namespace with its counters, in one dump (``ip -s link show``)."""
    return default_handle().list_links()
