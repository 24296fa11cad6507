"""Network statistics from the container's point of view.

The counters are read from the host end of the veth over netlink
(IFLA_STATS64 in an RTM_GETLINK reply), and turned around: what the host end
received, the container sent.  libcontainer v1.2.0 read sysfs and reported
the host end's view unswapped.
"""
from __future__ import annotations

from typing import Iterable, Optional

from .handle import Handle, default_handle
from .types import NetworkState, NetworkStats

__all__ = ["get_stats", "get_stats_many"]


def _container_view(host: NetworkStats) -> NetworkStats:
    return NetworkStats(rx_bytes=host.tx_bytes, rx_packets=host.tx_packets,
                        rx_errors=host.tx_errors, rx_dropped=host.tx_dropped,
                        tx_bytes=host.rx_bytes, tx_packets=host.rx_packets,
                        tx_errors=host.rx_errors, tx_dropped=host.rx_dropped)


def get_stats(state: NetworkState, *, handle: Optional[Handle] = None) -> NetworkStats:
    """The container's counters for ``state``: one RTM_GETLINK for
    ``state.veth_host`` in the calling thread's namespace (or ``handle``'s).

    An empty ``veth_host`` gives all zeros, as in libcontainer; a host end
    that no longer exists raises ``OSError`` (ENODEV) — libcontainer
    returned zeros, which hid dead containers.
    """
    if not state.veth_host:
        return NetworkStats()
    link = (handle or default_handle()).get_link(state.veth_host)
    return _container_view(link.stats)


def get_stats_many(states: Iterable[NetworkState], *,
                   handle: Optional[Handle] = None) -> list[Optional[NetworkStats]]:
    """``get_stats`` for many containers with one link dump, not one request
    each: for monitoring thousands of containers.

    Returns one entry per state, in order: zeros for an empty ``veth_host``,
    and ``None`` (not zeros) for a host end that does not exist.
    """
    states = list(states)
    if not any(s.veth_host for s in states):
        return [NetworkStats() for _ in states]
    by_name = {link.name: link.stats for link in (handle or default_handle()).list_links()}
    out: list[Optional[NetworkStats]] = []
    for state in states:
        if not state.veth_host:
            out.append(NetworkStats())
        else:
            host = by_name.get(state.veth_host)
            out.append(None if host is None else _container_view(host))
    return out
