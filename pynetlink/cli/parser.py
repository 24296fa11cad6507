"""The ``pynetlink`` command line: every command's arguments, help and
example, and the function that runs it, named "MODULE:FUNCTION" within
``pynetlink.cli`` (``args.target``).  Nothing here imports a command's
module: ``main`` imports the chosen one on dispatch."""
from __future__ import annotations

import argparse
from typing import Optional, Sequence, Union

from .common import PROG

# ip's names of the IPv6 link-local modes (pynetlink._core.ADDR_GEN_MODES, which needs the C core)
ADDR_GEN_MODES = ("eui64", "none", "stable_secret", "random")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("pynetlink")
    except Exception:                       # running from a source tree
        return "unknown"


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (the package
    metadata costs more to read than a command's whole run)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the version and exit"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog} {_version()}")
        parser.exit()


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


def _group(top, name: str, help: str, example: str):
    """A command group (``link``, ``addr``...): its subcommands' parser."""
    group = top.add_parser(name, help=help, formatter_class=_fmt, epilog=f"example:\n  {example}")
    return group.add_subparsers(dest="action", metavar="ACTION", required=True)


def _command(sub, name: str, help: str, example: str, target: str, netns_option: bool = True):
    """A command run by ``target`` ("MODULE:FUNCTION"), with ``--json``,
    ``--debug`` and (unless it has its own) ``--netns``."""
    p = sub.add_parser(name, help=help, description=help, formatter_class=_fmt,
                       epilog=f"example:\n  {example}")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of an error")
    if netns_option:
        p.add_argument("--netns", metavar="PATH", default=argparse.SUPPRESS,
                       help="act inside that network namespace (e.g. /run/netns/NAME); "
                            "also accepted before the command, as `ip -n`")
    p.set_defaults(target=target, acts_inside=netns_option)
    return p


def _link_commands(top) -> None:
    ls = _group(top, "link", "links: add, up/down, mtu, master, rename, netns, del, show",
                "pynetlink link mtu veth0 1400")
    p = _command(ls, "add-veth", "create a veth pair NAME <-> PEER",
                 "pynetlink link add-veth veth0 ceth0 --mtu 1450 --master br0 --up",
                 "link:add_veth")
    p.add_argument("name")
    p.add_argument("peer")
    p.add_argument("--mtu", type=int)
    p.add_argument("--master", metavar="BRIDGE", help="put NAME on this bridge")
    p.add_argument("--up", action="store_true", help="bring NAME up")
    p.add_argument("--peer-netns", metavar="PATH", help="create PEER inside this namespace")
    p.add_argument("--addrgenmode", choices=ADDR_GEN_MODES,
                   help="how NAME gets its IPv6 link-local address (none: no address, nothing "
                        "sent on IPv6: a quiet bridge port)")
    p = _command(ls, "add-bridge", "create a bridge", "pynetlink link add-bridge br0 --up",
                 "link:add_bridge")
    p.add_argument("name")
    p.add_argument("--mtu", type=int)
    p.add_argument("--up", action="store_true")
    for name, function, help in (("up", "up", "set a link up (IFF_UP only)"),
                                 ("down", "down", "set a link down (IFF_UP only)"),
                                 ("del", "delete", "delete a link (a veth takes its peer)")):
        p = _command(ls, name, help, f"pynetlink link {name} veth0", f"link:{function}")
        p.add_argument("name")
    p = _command(ls, "mtu", "set a link's MTU", "pynetlink link mtu veth0 1400", "link:mtu")
    p.add_argument("name")
    p.add_argument("mtu", type=int)
    p = _command(ls, "addrgenmode", "set how a link gets its IPv6 link-local address",
                 "pynetlink link addrgenmode veth0 none", "link:addrgenmode")
    p.add_argument("name")
    p.add_argument("mode", choices=ADDR_GEN_MODES,
                   help="none: no link-local address when it next comes up, so no DAD, router "
                        "solicitation or MLD report")
    p = _command(ls, "master", "put a link on a bridge", "pynetlink link master veth0 br0",
                 "link:master")
    p.add_argument("name")
    p.add_argument("bridge")
    p = _command(ls, "rename", "rename a link", "pynetlink link rename veth1 eth1", "link:rename")
    p.add_argument("old")
    p.add_argument("new")
    p = _command(ls, "netns", "move a link into another network namespace",
                 "pynetlink link netns veth1 --pid 4242", "link:move")
    p.add_argument("name")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pid", type=int, help="the namespace of this process")
    where.add_argument("--path", help="the namespace at this path (/run/netns/NAME, /proc/PID/ns/net)")
    p = _command(ls, "show", "show one link, or all", "pynetlink link show --netns /run/netns/ns1",
                 "link:show")
    p.add_argument("name", nargs="?")
    _kind_commands(ls)      # -- link kinds (issue 16) --


# -- link kinds (issue 16) ------------------------------------------------------------
# ip's names of the kinds' modes (pynetlink._core's tables need the C core)
MACVLAN_MODES = ("bridge", "private", "vepa", "passthru", "source")
IPVLAN_MODES = ("l2", "l3", "l3s")
IPVLAN_FLAGS = ("bridge", "private", "vepa")
VLAN_PROTOCOLS = ("802.1Q", "802.1ad")


def _bool01(text: str) -> bool:
    """ip's 0/1 for an on/off bridge option."""
    if text not in ("0", "1"):
        raise argparse.ArgumentTypeError(f"{text!r} is not 0 or 1")
    return text == "1"


def _bridge_options(p) -> None:
    p.add_argument("--vlan-filtering", type=_bool01, metavar="0|1")
    p.add_argument("--stp-state", type=int, choices=(0, 1, 2), help="0 off, 1 on")
    p.add_argument("--mcast-snooping", type=_bool01, metavar="0|1")
    p.add_argument("--ageing-time", type=float, metavar="SECONDS",
                   help="how long a learned MAC address is kept")
    p.add_argument("--vlan-default-pvid", type=int, metavar="VID")
    p.add_argument("--mcast-querier", type=_bool01, metavar="0|1")


def _child(p, mac: bool = True) -> None:
    """A new link's own options, and the namespace it is born in."""
    p.add_argument("--mtu", type=int)
    p.add_argument("--up", action="store_true")
    if mac:
        p.add_argument("--address", metavar="MAC")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--child-netns", metavar="PATH",
                       help="create NAME inside this namespace (PARENT is found in this one)")
    where.add_argument("--child-pid", type=int, metavar="PID",
                       help="create NAME inside the namespace of this process")


def _on_parent(ls, command: str, help: str, example: str):
    """``link add-KIND NAME PARENT``, run by ``link:add_KIND``."""
    p = _command(ls, command, help, example, "link:" + command.replace("-", "_"))
    p.add_argument("name")
    p.add_argument("parent")
    return p


def _kind_commands(ls) -> None:
    _bridge_options(ls.choices["add-bridge"])
    p = _on_parent(ls, "add-macvlan", "create a macvlan NAME on PARENT",
                   "pynetlink link add-macvlan mv0 eth0 --mode bridge --child-netns /run/netns/c1")
    p.add_argument("--mode", choices=MACVLAN_MODES, default="bridge")
    p.add_argument("--nopromisc", action="store_true", help="passthru without promiscuous mode")
    _child(p)
    p = _on_parent(ls, "add-ipvlan", "create an ipvlan NAME on PARENT",
                   "pynetlink link add-ipvlan ipv0 eth0 --mode l2 --child-netns /run/netns/c1")
    p.add_argument("--mode", choices=IPVLAN_MODES, default="l2")
    p.add_argument("--flag", choices=IPVLAN_FLAGS)
    _child(p, mac=False)
    p = _on_parent(ls, "add-vlan", "create NAME, VLAN ID of PARENT",
                   "pynetlink link add-vlan eth0.100 eth0 100")
    p.add_argument("id", type=int)
    p.add_argument("--protocol", choices=VLAN_PROTOCOLS)
    _child(p)
    p = _command(ls, "add-vxlan", "create a VXLAN endpoint NAME of network VNI",
                 "pynetlink link add-vxlan vx0 42 --local 192.0.2.1 --dev eth0", "link:add_vxlan")
    p.add_argument("name")
    p.add_argument("vni", type=int)
    p.add_argument("--local", metavar="ADDRESS")
    peer = p.add_mutually_exclusive_group()
    peer.add_argument("--remote", metavar="ADDRESS")
    peer.add_argument("--group", metavar="ADDRESS", help="a multicast group (needs --dev)")
    p.add_argument("--dev", metavar="NAME", help="the underlay link")
    p.add_argument("--dstport", type=int, default=4789, help="UDP port (default: 4789, IANA's)")
    p.add_argument("--nolearning", action="store_true", help="do not learn remote MACs")
    p.add_argument("--ttl", type=int)
    p.add_argument("--mtu", type=int)
    p.add_argument("--up", action="store_true")
    p = _command(ls, "add-dummy", "create a dummy link", "pynetlink link add-dummy d0 --up",
                 "link:add_dummy")
    p.add_argument("name")
    p.add_argument("--mtu", type=int)
    p.add_argument("--up", action="store_true")
    p.add_argument("--address", metavar="MAC")
    p = _command(ls, "set-bridge", "change a bridge's options",
                 "pynetlink link set-bridge br0 --stp-state 1 --ageing-time 30",
                 "link:set_bridge")
    p.add_argument("name")
    _bridge_options(p)

def _family(p) -> None:
    """``-4`` / ``-6`` / ``--family 4|6`` (both families when absent)."""
    family = p.add_mutually_exclusive_group()
    family.add_argument("-4", dest="family", action="store_const", const=4, help="IPv4 only")
    family.add_argument("-6", dest="family", action="store_const", const=6, help="IPv6 only")
    family.add_argument("--family", type=int, choices=(4, 6), help="4 or 6 only")


def _table(text: str) -> Union[int, str]:
    """A routing table: a number, or a name the library knows ("main", "all"...)."""
    return int(text) if text.isdigit() else text


def _addr_commands(top) -> None:
    a = _group(top, "addr", "addresses: add, del, show", "pynetlink addr add eth0 192.0.2.7/24")
    p = _command(a, "add", "add an address (IPv4 gets its broadcast)",
                 "pynetlink addr add eth0 192.0.2.7/24", "addr:add")
    p.add_argument("name")
    p.add_argument("cidr")
    p.add_argument("--nodad", action="store_true",
                   help="IPv6: no duplicate address detection, usable at once")
    p = _command(a, "del", "remove an address from a link", "pynetlink addr del eth0 192.0.2.7/24",
                 "addr:delete")
    p.add_argument("name")
    p.add_argument("cidr")
    p = _command(a, "show", "show the addresses of one link, or of all",
                 "pynetlink addr show eth0 -4 --netns /run/netns/ns1", "addr:show")
    p.add_argument("name", nargs="?")
    _family(p)


def _route_commands(top) -> None:
    r = _group(top, "route", "routes: show, add, replace, del, default",
               "pynetlink route add 198.51.100.0/24 eth0 --via 192.0.2.1")
    p = _command(r, "default", "add a default route via GATEWAY out of DEV",
                 "pynetlink route default 192.0.2.1 eth0", "route:default")
    p.add_argument("gateway")
    p.add_argument("dev")
    for name, function, help in (
            ("add", "add", "add a route to DST out of DEV (on-link without --via)"),
            ("replace", "replace", "add a route to DST, or put it in place of the one there"),
            ("del", "delete", "delete the main table's route to DST out of DEV")):
        p = _command(r, name, help, f"pynetlink route {name} 198.51.100.0/24 eth0 --via 192.0.2.1",
                     f"route:{function}")
        p.add_argument("dst", help='a network (NET/PREFIX), or "default"')
        p.add_argument("dev")
        p.add_argument("--via", metavar="GW", help="the gateway")
    p = _command(r, "show", "show the routes of a table (main unless --table)",
                 "pynetlink route show -6 --dev eth0 --netns /run/netns/ns1", "route:show")
    p.add_argument("--table", type=_table, default="main", metavar="T",
                   help="a number, main, local, default or all")
    p.add_argument("--dev", metavar="NAME", help="only routes out of this link")
    _family(p)


def _net_commands(top) -> None:
    n = _group(top, "net", "container networks from libcontainer JSON",
               "pynetlink net create --config net.json --pid 4242 --state state.json")
    p = _command(n, "create", "host side of each network in the config (in order)",
                 "pynetlink net create --config net.json --netns /run/netns/c1 --state state.json",
                 "net:create", netns_option=False)
    p.add_argument("--config", required=True, help="a Network object, or a list of them")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pid", type=int, help="the container's process")
    where.add_argument("--netns", metavar="PATH", help="the container's network namespace")
    p.add_argument("--state", help="write the NetworkState JSON here")
    p = _command(n, "init", "container side of each network (from outside with --netns)",
                 "pynetlink net init --config net.json --state state.json --netns /run/netns/c1",
                 "net:init")
    p.add_argument("--config", required=True)
    p.add_argument("--state", required=True, help="the NetworkState JSON `net create` wrote")


def _lab_commands(top) -> None:
    p = _command(top, "stats", "a container's counters (its view: rx is what it received)",
                 "pynetlink stats --state state.json", "stats:show")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--state", help="the NetworkState JSON of the container")
    which.add_argument("--host", metavar="VETH", help="the host end of the container's veth")
    p = _command(top, "demo", "bridge + N containers in a private namespace, ping, counters",
                 "pynetlink demo --containers 5", "demo:demo", netns_option=False)
    p.add_argument("--containers", type=_positive, default=5, metavar="N",
                   help="how many (at most one /24 of addresses)")
    p = _command(top, "churn", "bulk setup/teardown of N containers in a private namespace",
                 "pynetlink churn --containers 1000 --repeat 3", "churn:churn", netns_option=False)
    p.add_argument("--containers", type=_positive, default=100, metavar="N")
    p.add_argument("--repeat", type=_positive, default=1, metavar="R")


# -- events (issue 16) --
def _monitor_commands(top) -> None:
    p = _command(top, "monitor", "print link/address/route/neighbour/FDB events as JSON lines",
                 "pynetlink monitor link address --count 10 --timeout 5", "monitor:monitor")
    p.add_argument("kinds", nargs="*", metavar="KIND",
                   help="link, address (addr), route, neigh, fdb; all when none is given")
    p.add_argument("--count", type=_positive, metavar="N", help="stop after N events")
    p.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")


# -- neighbours (issue 16) --
NUD_STATES = ("permanent", "noarp", "reachable", "stale", "delay", "probe", "failed", "incomplete",
              "none")
FDB_STATES = ("permanent", "static", "dynamic")


def _neigh_commands(top) -> None:
    n = _group(top, "neigh", "neighbour entries (ARP/NDP): add, replace, del, show",
               "pynetlink neigh add 192.0.2.9 eth0 --lladdr 02:00:00:00:00:09")
    for name, function, help in (("add", "add", "add a neighbour entry DST -> LLADDR on DEV"),
                                 ("replace", "replace", "add an entry, or replace DEV's for DST")):
        p = _command(n, name, help, f"pynetlink neigh {name} 192.0.2.9 eth0 --lladdr "
                     "02:00:00:00:00:09 --nud reachable", f"neigh:{function}")
        p.add_argument("dst")
        p.add_argument("dev")
        p.add_argument("--lladdr", metavar="MAC")
        p.add_argument("--nud", choices=NUD_STATES, default="permanent", help="the state")
        p.add_argument("--router", action="store_true", help="the neighbour is a router (IPv6)")
        p.add_argument("--proxy", action="store_true",
                       help="a proxy entry: DEV answers for DST (no --lladdr)")
    p = _command(n, "del", "delete DEV's neighbour entry for DST",
                 "pynetlink neigh del 192.0.2.9 eth0", "neigh:delete")
    p.add_argument("dst")
    p.add_argument("dev")
    p.add_argument("--proxy", action="store_true", help="its proxy entry")
    p = _command(n, "show", "show the neighbour entries of one link, or of all",
                 "pynetlink neigh show eth0 -4 --netns /run/netns/ns1", "neigh:show")
    p.add_argument("dev", nargs="?")
    p.add_argument("--all", action="store_true", help="NOARP entries too (ip's `nud all`)")
    p.add_argument("--proxy", action="store_true", help="the proxy entries instead")
    _family(p)
    f = _group(top, "fdb", "forwarding entries (bridge/vxlan FDB): add, append, replace, del, show",
               "pynetlink fdb append 00:00:00:00:00:00 vx0 --dst 198.51.100.2")
    for name, function, help in (
            ("add", "fdb_add", "add a forwarding entry MAC -> DEV (a vxlan's: -> --dst)"),
            ("append", "fdb_append", "add one more remote --dst to a vxlan device's entry"),
            ("replace", "fdb_replace", "add an entry, or replace the one for MAC"),
            ("del", "fdb_delete", "delete the entry for MAC (with --dst: that remote only)")):
        p = _command(f, name, help, f"pynetlink fdb {name} 02:00:00:00:00:01 vx0 --dst "
                     "198.51.100.2 --vni 42", f"neigh:{function}")
        p.add_argument("mac")
        p.add_argument("dev")
        p.add_argument("--dst", metavar="IP", required=name == "append",
                       help="the remote VTEP (a vxlan device's entry)")
        p.add_argument("--vni", type=int)
        p.add_argument("--port", type=int, help="the remote's UDP port")
        if name != "append":
            p.add_argument("--vlan", type=int)
            p.add_argument("--master", action="store_true",
                           help="the table of the bridge DEV is a port of (default: DEV's own)")
        if name in ("add", "replace", "append"):
            p.add_argument("--state", choices=FDB_STATES, default="permanent")
    p = _command(f, "show", "show the forwarding entries of one link or bridge, or of all",
                 "pynetlink fdb show vx0 --json", "neigh:fdb_show")
    p.add_argument("dev", nargs="?")
    p.add_argument("--br", metavar="BRIDGE", help="only this bridge's and its ports' entries")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; ``parse_args`` gives ``target`` and the
    command's arguments."""
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_fmt,
        description="Container networking over raw rtnetlink (libcontainer's network API).",
        epilog="example:\n  pynetlink demo --containers 5\n"
               "  pynetlink link add-veth veth0 veth1 --netns /run/netns/ns1")
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--netns", metavar="PATH", dest="outer_netns",
                        help="act inside that network namespace, for the link, addr, route "
                             "and stats commands (as `ip -n NS`)")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _link_commands(top)
    _addr_commands(top)
    _route_commands(top)
    _net_commands(top)
    _lab_commands(top)
    _monitor_commands(top)      # events (issue 16)
    _neigh_commands(top)        # neighbours (issue 16)
    return parser


def parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line, with ``--netns`` given before the command (``ip -n``
    style) or after it: one place, one meaning (act inside that namespace)."""
    args = parser.parse_args(argv)
    outer = args.outer_netns
    if not args.acts_inside:
        if outer is not None:
            parser.error(f"--netns before the command applies to the commands that act inside "
                         f"a namespace, not to {args.command}")
    elif outer is not None and getattr(args, "netns", outer) != outer:
        parser.error("--netns given twice, with two namespaces")
    elif not hasattr(args, "netns"):
        args.netns = outer
    return args
