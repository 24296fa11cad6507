"""pynetlink: container networking over raw rtnetlink.

docker libcontainer's ``network`` package (v1.2.0) for Python, without its
bugs, over a small C core.  The module-level functions act in the calling
thread's current network namespace through a per-thread default ``Handle``;
use ``Handle(netns=...)`` to act in another namespace without entering it.

libcontainer's module-level functions (and the rest) are the operations of
``Handle`` run on the calling thread's default handle: each is defined once,
in ``pynetlink.ops``, and the names here are bound methods of that executor
(``pynetlink.handle.default``), so help() and signatures show the real
parameters.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Everything is imported on first use (PEP 562), so that a short-lived
# process — a CNI plugin runs once per pod, and answers VERSION without
# netlink — pays only for what it uses.
_LAZY = {
    "netns": (".netns", None),
    "Handle": (".handle", "Handle"), "default_handle": (".handle", "default_handle"),
    "NetlinkError": (".errors", "NetlinkError"), "ExchangeError": (".errors", "ExchangeError"),
    "BatchError": (".errors", "BatchError"),
    "Link": (".links", "Link"), "Address": (".addresses", "Address"),
    "Route": (".routes", "Route"),
    "bulk": (".bulk", None), "Batch": (".batch", "Batch"), "Result": (".batch", "Result"),
    "get_stats": (".stats", "get_stats"), "get_stats_many": (".stats", "get_stats_many"),
    "NetworkStrategy": (".strategies", "NetworkStrategy"), "Loopback": (".strategies", "Loopback"),
    "Veth": (".strategies", "Veth"), "NetNS": (".strategies", "NetNS"),
    "NotValidStrategyType": (".strategies", "NotValidStrategyType"),
    "get_strategy": (".strategies", "get_strategy"),
    "Network": (".types", "Network"), "NetworkState": (".types", "NetworkState"),
    "NetworkStats": (".types", "NetworkStats"),
    # -- events (issue 16) --
    "events": (".events", None), "Event": (".events", "Event"),
    "Subscription": (".events", "Subscription"), "EventsLost": (".errors", "EventsLost"),
    "subscribe": (".events", "subscribe"), "wait_for_link": (".events", "wait_for_link"),
    "wait_for_address": (".events", "wait_for_address"),
}

# The module-level operations: bound methods of the default executor.
_OPERATIONS: "tuple[str, ...]" = (
    "create_veth_pair", "create_bridge", "interface_up", "interface_down", "set_mtu",
    "set_interface_master", "change_interface_name", "set_interface_in_namespace_pid",
    "set_interface_in_namespace_fd", "set_interface_ip", "set_default_gateway",
    "delete_link", "delete_group", "set_link", "set_hairpin", "delete_address",
    "add_route", "replace_route", "delete_route",
    "get_link", "get_links", "link_index", "link_exists", "list_links", "list_addresses", "list_routes",
)
# -- link kinds (issue 16) --
_OPERATIONS += ("create_macvlan", "create_ipvlan", "create_vlan",
                "create_vxlan", "create_dummy", "set_bridge")

# -- neighbours (issue 16) --
_LAZY["Neighbour"] = (".neighbours", "Neighbour")
_OPERATIONS += ("add_neighbour", "replace_neighbour", "delete_neighbour", "add_fdb", "append_fdb",
                "replace_fdb", "delete_fdb", "list_neighbours", "list_fdb")

__all__ = [*_LAZY, *_OPERATIONS]


def __getattr__(name: str):
    if name in _OPERATIONS:
        value = getattr(importlib.import_module(".handle", __name__).default, name)
    elif name in _LAZY:
        module, attribute = _LAZY[name]
        value = importlib.import_module(module, __name__)
        if attribute is not None:
            value = getattr(value, attribute)
    else:
        raise AttributeError(f"module 'pynetlink' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:       # what the names above are, for type checkers
    from . import bulk, netns
    from .addresses import Address
    from .batch import Batch, Result
    from .errors import BatchError, ExchangeError, NetlinkError
    from .handle import Handle, default_handle
    from .handle import default as _default
    from .links import Link
    from .routes import Route
    from .stats import get_stats, get_stats_many
    from .strategies import (Loopback, NetNS, NetworkStrategy, NotValidStrategyType, Veth,
                             get_strategy)
    from .types import Network, NetworkState, NetworkStats
    # -- events (issue 16) --
    from . import events
    from .errors import EventsLost
    from .events import Event, Subscription, subscribe, wait_for_address, wait_for_link

    create_veth_pair = _default.create_veth_pair
    create_bridge = _default.create_bridge
    interface_up = _default.interface_up
    interface_down = _default.interface_down
    set_mtu = _default.set_mtu
    set_interface_master = _default.set_interface_master
    change_interface_name = _default.change_interface_name
    set_interface_in_namespace_pid = _default.set_interface_in_namespace_pid
    set_interface_in_namespace_fd = _default.set_interface_in_namespace_fd
    set_interface_ip = _default.set_interface_ip
    set_default_gateway = _default.set_default_gateway
    delete_link = _default.delete_link
    delete_group = _default.delete_group
    set_link = _default.set_link
    set_hairpin = _default.set_hairpin
    delete_address = _default.delete_address
    add_route = _default.add_route
    replace_route = _default.replace_route
    delete_route = _default.delete_route
    get_link = _default.get_link
    get_links = _default.get_links
    link_index = _default.link_index
    link_exists = _default.link_exists
    list_links = _default.list_links
    list_addresses = _default.list_addresses
    list_routes = _default.list_routes
    # -- link kinds (issue 16) --
    create_macvlan = _default.create_macvlan
    create_ipvlan = _default.create_ipvlan
    create_vlan = _default.create_vlan
    create_vxlan = _default.create_vxlan
    create_dummy = _default.create_dummy
    set_bridge = _default.set_bridge
    # -- neighbours (issue 16) --
    from .neighbours import Neighbour
    add_neighbour = _default.add_neighbour
    replace_neighbour = _default.replace_neighbour
    delete_neighbour = _default.delete_neighbour
    add_fdb = _default.add_fdb
    append_fdb = _default.append_fdb
    replace_fdb = _default.replace_fdb
    delete_fdb = _default.delete_fdb
    list_neighbours = _default.list_neighbours
    list_fdb = _default.list_fdb
