"""The ``pynetlink`` command (also ``python -m pynetlink``): the library's
operations, whole container networks from libcontainer JSON, counters, a
demo and a churn run — thin over the public API.

Exit status: 0 success, 1 a kernel or runtime error (one line on stderr:
operation, interface, errno name, the kernel's text; ``--debug`` adds the
traceback), 2 a usage error (bad arguments or values), 130 interrupted.
"""
from __future__ import annotations

import argparse
import errno as _errno
import json
import os
import sys
import traceback
from typing import Callable, List, Optional, Sequence

from . import demo, netns
from .errors import NetlinkError
from .handle import Handle
from .stats import get_stats
from .strategies import NotValidStrategyType, get_strategy
from .types import Network, NetworkState

PROG = "pynetlink"
STRATEGY_TYPES = ("loopback", "veth", "netns")


class UsageError(Exception):
    """Arguments argparse accepted but that make no sense together."""


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("pynetlink")
    except Exception:                       # running from a source tree
        return "unknown"


# -- output -------------------------------------------------------------------------

def _emit(args: argparse.Namespace, data: object, human: Callable[[], str]) -> None:
    """``data`` as JSON with ``--json``, else the human text (if any)."""
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        text = human()
        if text:
            print(text)


def _table(header: Sequence[str], rows: List[Sequence[object]]) -> str:
    cells = [list(map(str, header))] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def error_line(e: BaseException) -> str:
    """One line for stderr: operation, interface, errno name, the kernel's text."""
    if isinstance(e, NetlinkError):
        name = _errno.errorcode.get(e.errno, str(e.errno))
        where = f" dev {e.interface}" if e.interface else ""
        text = f": {e.ext_ack}" if e.ext_ack else ""
        return f"{PROG}: {e.operation}{where}: {name} ({e.strerror}){text}"
    if isinstance(e, OSError) and e.errno:
        name = _errno.errorcode.get(e.errno, str(e.errno))
        subject = f": {e.filename}" if e.filename else ""
        return f"{PROG}: {name} ({e.strerror}){subject}"
    return f"{PROG}: {e}"


# -- link, addr, route ----------------------------------------------------------------

def _handle(args: argparse.Namespace) -> Handle:
    return Handle(netns=args.netns)


def cmd_link_add_veth(args):
    with _handle(args) as h:
        h.create_veth_pair(args.name, args.peer, mtu=args.mtu, master=args.master, up=args.up,
                           peer_netns=args.peer_netns)
        _emit(args, {"host": args.name, "peer": args.peer}, lambda: "")


def cmd_link_add_bridge(args):
    with _handle(args) as h:
        h.create_bridge(args.name, mtu=args.mtu, up=args.up)
        _emit(args, {"bridge": args.name}, lambda: "")


def _simple(method: str, *fields: str):
    def run(args):
        with _handle(args) as h:
            getattr(h, method)(*(getattr(args, f) for f in fields))
            _emit(args, {"operation": method, **{f: getattr(args, f) for f in fields}}, lambda: "")
    return run


def cmd_link_netns(args):
    with _handle(args) as h:
        if args.pid is not None:
            h.set_interface_in_namespace_pid(args.name, args.pid)
        else:
            with netns.netns_fd(args.path) as fd:
                h.set_interface_in_namespace_fd(args.name, fd)
        _emit(args, {"operation": "set_netns", "name": args.name}, lambda: "")


def _link_dict(link) -> dict:
    return {"index": link.index, "name": link.name, "up": link.up, "mtu": link.mtu,
            "master": link.master, "group": link.group, "txqlen": link.txqlen,
            "address": link.address, "stats": link.stats.to_dict() if link.stats else None}


def cmd_link_show(args):
    with _handle(args) as h:
        found = [h.get_link(args.name)] if args.name else h.list_links()
    names = {link.index: link.name for link in found}
    rows = [(link.index, link.name, "UP" if link.up else "DOWN", link.mtu,
             names.get(link.master, link.master or ""), link.address) for link in found]
    _emit(args, [_link_dict(link) for link in found],
          lambda: _table(("index", "name", "state", "mtu", "master", "address"), rows))


# -- net: libcontainer networks from JSON ---------------------------------------------

def _read_networks(path: str) -> List[Network]:
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON: {e}") from None
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


def _write_state(path: Optional[str], state: NetworkState) -> None:
    if path:
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(state.to_json() + "\n")
        os.replace(tmp, path)


def _state_text(state: NetworkState) -> str:
    return "\n".join(f"{k}: {v}" for k, v in state.to_dict().items()) or "(no state)"


def cmd_net_create(args):
    """Host side of every network, in order; if one fails, what the earlier
    ones made is removed (a veth's host end takes its peer with it)."""
    networks = _read_networks(args.config)
    if args.pid is None and args.netns is None:
        raise UsageError("net create needs the container: --pid PID or --netns PATH")
    state = NetworkState()
    try:
        for n in networks:
            get_strategy(n.type).create(n, args.pid, state, netns=args.netns)
    except BaseException:
        if state.veth_host:
            try:
                Handle().delete_link(state.veth_host)
            except OSError:
                pass
        raise
    _write_state(args.state, state)
    _emit(args, state.to_dict(), lambda: _state_text(state))


def cmd_net_init(args):
    """Container side of every network, in order, from the state that
    ``net create`` wrote."""
    networks = _read_networks(args.config)
    try:
        with open(args.state) as f:
            state = NetworkState.from_json(f.read())
    except ValueError as e:
        raise UsageError(f"{args.state}: {e}") from None
    for n in networks:
        get_strategy(n.type).initialize(n, state, netns=args.netns)
    _write_state(args.state, state)
    _emit(args, state.to_dict(), lambda: _state_text(state))


# -- stats ------------------------------------------------------------------------------

def cmd_stats(args):
    if args.state:
        try:
            with open(args.state) as f:
                state = NetworkState.from_json(f.read())
        except ValueError as e:
            raise UsageError(f"{args.state}: {e}") from None
    else:
        state = NetworkState(veth_host=args.host)
    if args.netns:
        with Handle(netns=args.netns) as h:
            stats = get_stats(state, handle=h)
    else:
        stats = get_stats(state)
    _emit(args, stats.to_dict(), lambda: _table(
        ("counter", "rx", "tx"),
        [(k, getattr(stats, f"rx_{k}"), getattr(stats, f"tx_{k}"))
         for k in ("bytes", "packets", "errors", "dropped")]))


# -- demo and churn ---------------------------------------------------------------------

def cmd_demo(args):
    rows = demo.run_demo(args.containers)
    data = [{"container": r.container, "eth0": r.address, "host_end": r.host_end,
             "ping_ms": r.rtt_ms, "rx_packets": r.rx_packets, "tx_packets": r.tx_packets}
            for r in rows]

    def human() -> str:
        lines = [f"{len(rows)} containers on bridge {demo.BRIDGE} ({demo.GATEWAY}/{demo.PREFIX}) "
                 "in a private network namespace; each pinged the bridge:", ""]
        lines.append(_table(("container", "eth0 address", "host end", "ping ms", "rx packets",
                             "tx packets"),
                            [(f"c{r.container}", r.address, r.host_end,
                              "no reply" if r.rtt_ms is None else f"{r.rtt_ms:.3f}",
                              r.rx_packets, r.tx_packets) for r in rows]))
        lines += ["", "torn down: nothing is left behind."]
        return "\n".join(lines)
    _emit(args, data, human)
    if any(r.rtt_ms is None for r in rows):
        raise RuntimeError("a container got no reply to its ping")


def cmd_churn(args):
    live = sys.stderr.isatty() and not args.json
    phases = {"namespaces": "making namespaces", "setup": "setting up", "teardown": "tearing down"}

    def progress(phase: str, k: int, result) -> None:
        if phase != "done":
            line = f"[{k}/{args.repeat}] {args.containers} containers: {phases[phase]}..."
            if live:
                sys.stderr.write("\r\033[K" + line)
                sys.stderr.flush()
            return
        line = (f"[{k}/{args.repeat}] {result.containers} containers: "
                f"setup {result.setup_s:.3f} s ({result.setup_rate:.0f}/s), "
                f"teardown {result.teardown_s:.3f} s ({result.teardown_rate:.0f}/s), "
                f"CPU {result.cpu_s * 1000 / result.containers:.2f} ms/container")
        sys.stderr.write(("\r\033[K" if live else "") + line + "\n")
        sys.stderr.flush()

    summary = demo.churn_summary(demo.run_churn(args.containers, args.repeat, progress))
    _emit(args, summary, lambda: (
        f"{summary['containers']} containers x {summary['repeat']} (median): "
        f"setup {summary['setup_per_s']:.0f}/s, teardown {summary['teardown_per_s']:.0f}/s, "
        f"CPU {summary['cpu_ms_per_container']:.2f} ms per container"))


# -- the parser -----------------------------------------------------------------------------

def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _fmt(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _command(sub, name: str, help: str, example: str, func, netns_option: bool = True):
    p = sub.add_parser(name, help=help, description=help, formatter_class=_fmt,
                       epilog=f"example:\n  {example}")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of an error")
    if netns_option:
        p.add_argument("--netns", metavar="PATH",
                       help="act inside that network namespace (e.g. /run/netns/NAME)")
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_fmt,
        description="Container networking over raw rtnetlink (libcontainer's network API).",
        epilog="example:\n  pynetlink demo --containers 5\n"
               "  pynetlink link add-veth veth0 veth1 --netns /run/netns/ns1")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    link = top.add_parser("link", help="links: add, up/down, mtu, master, rename, netns, del, show",
                          formatter_class=_fmt, epilog="example:\n  pynetlink link mtu veth0 1400")
    ls = link.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _command(ls, "add-veth", "create a veth pair NAME <-> PEER",
                 "pynetlink link add-veth veth0 ceth0 --mtu 1450 --master br0 --up", cmd_link_add_veth)
    p.add_argument("name")
    p.add_argument("peer")
    p.add_argument("--mtu", type=int)
    p.add_argument("--master", metavar="BRIDGE", help="put NAME on this bridge")
    p.add_argument("--up", action="store_true", help="bring NAME up")
    p.add_argument("--peer-netns", metavar="PATH", help="create PEER inside this namespace")
    p = _command(ls, "add-bridge", "create a bridge", "pynetlink link add-bridge br0 --up",
                 cmd_link_add_bridge)
    p.add_argument("name")
    p.add_argument("--mtu", type=int)
    p.add_argument("--up", action="store_true")
    for name, method, help in (("up", "interface_up", "set a link up (IFF_UP only)"),
                               ("down", "interface_down", "set a link down (IFF_UP only)"),
                               ("del", "delete_link", "delete a link (a veth takes its peer)")):
        p = _command(ls, name, help, f"pynetlink link {name} veth0", _simple(method, "name"))
        p.add_argument("name")
    p = _command(ls, "mtu", "set a link's MTU", "pynetlink link mtu veth0 1400",
                 _simple("set_mtu", "name", "mtu"))
    p.add_argument("name")
    p.add_argument("mtu", type=int)
    p = _command(ls, "master", "put a link on a bridge", "pynetlink link master veth0 br0",
                 _simple("set_interface_master", "name", "bridge"))
    p.add_argument("name")
    p.add_argument("bridge")
    p = _command(ls, "rename", "rename a link", "pynetlink link rename veth1 eth1",
                 _simple("change_interface_name", "old", "new"))
    p.add_argument("old")
    p.add_argument("new")
    p = _command(ls, "netns", "move a link into another network namespace",
                 "pynetlink link netns veth1 --pid 4242", cmd_link_netns)
    p.add_argument("name")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pid", type=int, help="the namespace of this process")
    where.add_argument("--path", help="the namespace at this path (/run/netns/NAME, /proc/PID/ns/net)")
    p = _command(ls, "show", "show one link, or all", "pynetlink link show --netns /run/netns/ns1",
                 cmd_link_show)
    p.add_argument("name", nargs="?")

    addr = top.add_parser("addr", help="addresses", formatter_class=_fmt,
                          epilog="example:\n  pynetlink addr add eth0 192.0.2.7/24")
    a = addr.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _command(a, "add", "add an address (IPv4 gets its broadcast)",
                 "pynetlink addr add eth0 192.0.2.7/24", _simple("set_interface_ip", "name", "cidr"))
    p.add_argument("name")
    p.add_argument("cidr")

    route = top.add_parser("route", help="routes", formatter_class=_fmt,
                           epilog="example:\n  pynetlink route default 192.0.2.1 eth0")
    r = route.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _command(r, "default", "add a default route via GATEWAY out of DEV",
                 "pynetlink route default 192.0.2.1 eth0",
                 _simple("set_default_gateway", "gateway", "dev"))
    p.add_argument("gateway")
    p.add_argument("dev")

    net = top.add_parser("net", help="container networks from libcontainer JSON",
                         formatter_class=_fmt,
                         epilog="example:\n  pynetlink net create --config net.json --pid 4242 "
                                "--state state.json")
    n = net.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = _command(n, "create", "host side of each network in the config (in order)",
                 "pynetlink net create --config net.json --netns /run/netns/c1 --state state.json",
                 cmd_net_create, netns_option=False)
    p.add_argument("--config", required=True, help="a Network object, or a list of them")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pid", type=int, help="the container's process")
    where.add_argument("--netns", metavar="PATH", help="the container's network namespace")
    p.add_argument("--state", help="write the NetworkState JSON here")
    p = _command(n, "init", "container side of each network (from outside with --netns)",
                 "pynetlink net init --config net.json --state state.json --netns /run/netns/c1",
                 cmd_net_init)
    p.add_argument("--config", required=True)
    p.add_argument("--state", required=True, help="the NetworkState JSON `net create` wrote")

    p = _command(top, "stats", "a container's counters (its view: rx is what it received)",
                 "pynetlink stats --state state.json", cmd_stats)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--state", help="the NetworkState JSON of the container")
    which.add_argument("--host", metavar="VETH", help="the host end of the container's veth")

    p = _command(top, "demo", "bridge + N containers in a private namespace, ping, counters",
                 "pynetlink demo --containers 5", cmd_demo, netns_option=False)
    p.add_argument("--containers", type=_positive, default=5, metavar="N")
    p = _command(top, "churn", "bulk setup/teardown of N containers in a private namespace",
                 "pynetlink churn --containers 1000 --repeat 3", cmd_churn, netns_option=False)
    p.add_argument("--containers", type=_positive, default=100, metavar="N")
    p.add_argument("--repeat", type=_positive, default=1, metavar="R")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "containers", 0) > demo.MAX_CONTAINERS and args.command == "demo":
        parser.error(f"demo: at most {demo.MAX_CONTAINERS} containers (one /24)")
    try:
        args.func(args)
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, TypeError) as e:
        if args.debug:
            traceback.print_exc()
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except Exception as e:                  # kernel and runtime errors
        if args.debug:
            traceback.print_exc()
        print(error_line(e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
