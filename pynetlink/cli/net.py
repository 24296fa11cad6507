"""``pynetlink net create|init``: whole container networks from
libcontainer's JSON, through the strategies (``loopback``, ``veth``,
``netns``), in the order of the config."""
from __future__ import annotations

import argparse
from typing import List

from .. import Handle, NotValidStrategyType, get_strategy
from ..types import Network, NetworkState, loads
from .common import UsageError, emit
from .state import check_writable, read_state, state_text, write_state

STRATEGY_TYPES = ("loopback", "veth", "netns")


def read_networks(path: str) -> List[Network]:
    """The networks of a config file (one Network object or a list of
    them), each with a known strategy; a UsageError naming the bad one."""
    with open(path) as f:
        text = f.read()
    try:
        data = loads(text, path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    items = data if isinstance(data, list) else [data]
    if not items:
        raise UsageError(f"{path}: no network in it")
    networks = []
    for i, item in enumerate(items):
        try:
            network = Network.from_dict(item)
            get_strategy(network.type)
        except NotValidStrategyType as e:
            raise UsageError(f"{path}: network {i}: type {e.type!r} is not one of "
                             f"{', '.join(STRATEGY_TYPES)}") from None
        except ValueError as e:
            raise UsageError(f"{path}: network {i}: {e}") from None
        networks.append(network)
    return networks


def create(args: argparse.Namespace) -> None:
    """Host side of every network, in order; if one fails, what the earlier
    ones made is removed (a veth's host end takes its peer with it)."""
    networks = read_networks(args.config)
    if args.pid is None and args.netns is None:
        raise UsageError("net create needs the container: --pid PID or --netns PATH")
    check_writable(args.state)
    state = NetworkState()
    try:
        for n in networks:
            get_strategy(n.type).create(n, args.pid, state, netns=args.netns)
        write_state(args.state, state)
    except BaseException:                   # nothing half-made stays, nor unrecorded
        if state.veth_host:
            try:
                Handle().delete_link(state.veth_host)
            except OSError:
                pass
        raise
    emit(args, state.to_dict(), lambda: state_text(state))


def init(args: argparse.Namespace) -> None:
    """Container side of every network, in order, from the state that
    ``net create`` wrote (from outside with ``--netns``)."""
    networks = read_networks(args.config)
    state = read_state(args.state)
    for n in networks:
        get_strategy(n.type).initialize(n, state, netns=args.netns)
    write_state(args.state, state)
    emit(args, state.to_dict(), lambda: state_text(state))
