"""Every operation, defined once; ``Handle``, ``Batch`` and the module
level are executors of these definitions.

``Operations`` has one method per mutating operation, with its real
signature, its validation and its docstring (with the ``ip`` equivalent).
Each validates all of its arguments — ``ValueError``/``TypeError``, nothing
sent — and hands an ``Op`` to ``self._execute``: ``Handle`` runs it now,
``Batch`` queues it (and returns itself, so calls chain), and the module
level runs it on the calling thread's default handle — as pyroute2's
``IPBatch`` is ``IPRoute`` with another executor.

``Reads`` has the operations that return what the kernel says (links,
addresses, routes); ``Handle`` and the module level have them, a batch
does not.

An ``Op`` says what request it sends (built once the ifindexes it needs
are known), which link it changes (read first in a transaction, for its
undo), how to undo it, and which names' indexes it makes stale.
"""
from __future__ import annotations

import errno as _errno
import os
from typing import Any, Callable, Generic, List, Mapping, Optional, Sequence, TypeVar, Union

from . import _validate as v
from . import addresses, kinds, links, netns, routes
from . import neighbours  # -- neighbours (issue 16) --
from ._core import Encoder, Reply, Request, Socket
from .addresses import Address
from .errors import NetlinkError
from .links import Link
from .routes import Route
from .neighbours import Neighbour  # -- neighbours (issue 16) --

Indexes = Mapping[str, int]
R = TypeVar("R")

# The undo of a creation deletes what was made; these errnos say it is not
# there (any more): the undo's goal holds.
LINK_GONE = (_errno.ENODEV,)
ADDRESS_GONE = (_errno.EADDRNOTAVAIL, _errno.ENODEV)
ROUTE_GONE = (_errno.ESRCH, _errno.ENODEV)
NEIGH_GONE = (_errno.ENOENT, _errno.ENODEV)      # -- neighbours (issue 16) --


class Op:
    """One operation: ``build(indexes)`` gives its message once the
    ifindexes of ``needs`` are known; ``changes``: the link to read first,
    for undo; ``undo(old_link, indexes)``: the message (or messages, in
    order) that reverse it (or None: nothing to undo); ``gone``: the errnos with which that undo finds
    its goal already holds (what it would delete is not there);
    ``flushes``: the change may make the kernel drop the link's addresses
    and routes (down, MTU, master, MAC), so a transaction records them
    first; ``forgets``: names whose index is stale afterwards;
    ``irreversible``: why it cannot be undone, if it cannot; ``fds``: opened
    for this op, closed after it; ``after``: messages that finish the op
    (what the kernel refuses in a creating request: a new link's IPv6
    link-local mode), sent once its own request has succeeded — never in the
    same send, where they would act on whatever link has the name when the
    creation fails (EEXIST: somebody else's) — each successful also when
    the kernel answers with an errno of ``after_ok``; ``partial``: a refusal
    may leave part of the change applied (the kernel applies a link kind's
    options one by one and stops at the first it refuses), so a rolled-back
    transaction undoes it even when it failed."""
    __slots__ = ("operation", "arguments", "interface", "build", "needs", "changes", "undo",
                 "gone", "flushes", "forgets", "irreversible", "fds", "after", "after_ok",
                 "partial")

    def __init__(self, operation: str, arguments: tuple, interface: Optional[str],
                 build: Callable[[Indexes], Encoder], needs: tuple = (),
                 changes: Optional[str] = None,
                 undo: Optional[Callable[[Any, Indexes], Union[Encoder, List[Encoder], None]]] = None,
                 gone: tuple = (), flushes: bool = False,
                 forgets: tuple = (), irreversible: str = "", fds: Optional[List[int]] = None,
                 after: Sequence[Encoder] = (), after_ok: tuple = (), partial: bool = False):
        self.operation, self.arguments, self.interface = operation, arguments, interface
        self.build, self.needs, self.changes, self.undo = build, needs, changes, undo
        self.gone, self.flushes = gone, flushes
        self.forgets, self.irreversible = forgets, irreversible
        self.fds: List[int] = [] if fds is None else fds
        self.after, self.after_ok = tuple(after), after_ok
        self.partial = partial

    def __repr__(self) -> str:
        return f"Op({self.operation}{self.arguments!r})"

    def request(self, encode: Encoder, **flags: bool) -> Request:
        """A message of this op, carrying its name and arguments for errors."""
        return Request(self.operation, self.arguments, self.interface, encode, **flags)

    def built(self, indexes: Indexes) -> Request:
        """The op's own request, once the indexes of ``needs`` are known."""
        return self.request(self.build(indexes))

    def requests(self, indexes: Indexes) -> List[Request]:
        """The op's own request, then those that finish it (``after``): to
        be sent in one exchange only by a caller that removes everything the
        op touched when any of them fails (``bulk``: the whole container)."""
        return [self.built(indexes)] + self.finishing()

    def finishing(self) -> List[Request]:
        """The requests that finish the op (``after``), to send once its own
        request has succeeded."""
        return [self.request(e) for e in self.after]

    def finish_failure(self, reply: Reply) -> bool:
        """Whether the reply to one of ``after`` says it failed."""
        return bool(reply.errno) and reply.errno not in self.after_ok

    def lookup(self, name: str) -> Request:
        """The RTM_GETLINK that learns ``name``'s index for this op."""
        return lookup(self.operation, self.arguments, name)

    def read(self) -> Request:
        """The RTM_GETLINK of the link this op changes, as it is before."""
        assert self.changes is not None
        return Request(self.operation, self.arguments, self.changes, links.get(self.changes),
                       reads=True)

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())

    def __del__(self) -> None:
        """An op dropped unrun (an ``AsyncHandle`` call never awaited, a
        ``make`` op never sent) still closes the fds it opened."""
        self.close()


def lookup(operation: str, arguments: tuple, name: str) -> Request:
    """The RTM_GETLINK that learns ``name``'s index for ``operation`` (a
    missing name fails as that operation, naming ``name``); only the index
    of the reply is decoded."""
    return Request(operation, arguments, name, links.get(name), index_only=True, reads=True)


def _fixed(encode: Encoder) -> Callable[[Indexes], Encoder]:
    """The build of an op that needs no index: the message made (and so
    validated) when the op was, sent as it is."""
    return lambda idx: encode


def failure(request: Request, reply: Reply) -> Optional[NetlinkError]:
    """The error for a reply that refused ``request``, or None."""
    return request.error(reply.errno, reply.ext_ack) if reply.errno else None


def indexes(exchange: Callable[[Sequence[Request]], List[Reply]], op: Op,
            names: Sequence[str]) -> dict:
    """The ifindex of each name, with one pipelined RTM_GETLINK per name in
    one ``exchange``; a missing name raises (ENODEV) as ``op``."""
    lookups = [op.lookup(name) for name in names]
    found = {}
    for name, request, reply in zip(names, lookups, exchange(lookups)):
        error = failure(request, reply)
        if error is not None:
            raise error
        found[name] = reply.link["index"]
    return found


class Operations(Generic[R]):
    """The mutating operations; ``_execute`` decides what running one means."""

    def _execute(self, op: Op) -> R:
        raise NotImplementedError

    def _netns_fd(self, target: netns.Target, fds: List[int]) -> int:
        """An fd for a namespace given as an fd (checked) or a path: opened
        now, its fd put in ``fds`` to be closed with the op.  (A batch opens
        each path once for all its operations.)"""
        if isinstance(netns.check_target(target), int):
            with netns.netns_fd(target) as given:       # checked: a network namespace
                return given
        fd = netns.open_netns(target)
        fds.append(fd)
        return fd

    # -- libcontainer v1.2.0's operations ------------------------------------------

    def create_veth_pair(self, name1: str, name2: str, *, mtu: Optional[int] = None,
                         master: Optional[str] = None, up: bool = False,
                         txqueuelen: Optional[int] = None, group: Optional[int] = None,
                         peer_mtu: Optional[int] = None,
                         peer_netns: Optional[netns.Target] = None,
                         peer_pid: Optional[int] = None,
                         addr_gen_mode: Optional[str] = None) -> R:
        """Create a veth pair NAME1 <-> NAME2, both down unless ``up``.

        The keyword options make the whole host end in the same message:
        ``mtu``, ``master`` (a bridge), ``up``, ``txqueuelen`` and ``group``
        apply to NAME1; ``peer_mtu`` and ``peer_netns`` (a path or fd) or
        ``peer_pid`` to NAME2, which is then born inside that namespace —
        no move, no RCU barrier, and nothing left behind if any of it fails.
        ``addr_gen_mode`` ("none", "eui64", "stable_secret", "random") is
        how NAME1 gets its IPv6 link-local address: "none" makes a quiet
        bridge port, with no IPv6 address, that sends no DAD, router
        solicitation or MLD report.  The kernel refuses it in the creating
        request, so it goes in an RTM_SETLINK once the pair is made, before
        the peer can come up (a kernel without IPv6 makes it moot:
        EAFNOSUPPORT is success there); if that fails, the pair is deleted.
        (NAME2's mode is set in its own namespace, with ``set_link``, before
        it comes up: a link that moves to another namespace takes that
        namespace's default.)
        EEXIST if a name is taken.
        Equivalent to: ``ip link add NAME1 [mtu M] [master B] [up] type veth
        peer name NAME2 [mtu M] [netns NS]`` then ``ip link set NAME1
        addrgenmode MODE``."""
        if master is not None:
            v.ifname(master, "master")
        if peer_netns is not None and peer_pid is not None:
            raise ValueError("give the peer's namespace as a netns (path or fd) or as a pid, not both")
        host, peer = links.veth_fields(name1, name2, mtu=mtu, up=up, txqueuelen=txqueuelen,
                                       group=group, peer_mtu=peer_mtu, peer_pid=peer_pid)
        after = () if addr_gen_mode is None else (links.set_addr_gen_mode(name1, addr_gen_mode),)
        fds: List[int] = []
        if peer_netns is not None:
            peer["ns_fd"] = self._netns_fd(peer_netns, fds)
        if master is None:
            build = _fixed(links.create_veth_pair(host, peer))
        else:
            def build(idx: Indexes) -> Encoder:
                return links.create_veth_pair({**host, "master": idx[master]}, peer)
        return self._execute(Op("create_veth_pair", (name1, name2), name1, build,
                                needs=(master,) if master else (),
                                undo=lambda old, idx: links.delete(name1), gone=LINK_GONE,
                                forgets=(name1, name2), fds=fds,
                                after=after, after_ok=(_errno.EAFNOSUPPORT,)))

    def interface_up(self, name: str) -> R:
        """Set IFF_UP only. Equivalent to: ``ip link set NAME up``."""
        return self._set_flags("interface_up", name, True)

    def interface_down(self, name: str) -> R:
        """Clear IFF_UP only. Equivalent to: ``ip link set NAME down``."""
        return self._set_flags("interface_down", name, False)

    def _set_flags(self, operation: str, name: str, up: bool) -> R:
        return self._execute(Op(operation, (name,), name, _fixed(links.set_flags(name, up)),
                                changes=name, flushes=not up,
                                undo=lambda old, idx: links.set_flags(name, old.up)))

    def set_mtu(self, name: str, mtu: int) -> R:
        """Set the MTU; admin state and flags untouched.
        Equivalent to: ``ip link set NAME mtu MTU``."""
        return self._execute(Op("set_mtu", (name, mtu), name, _fixed(links.set_mtu(name, mtu)),
                                changes=name, flushes=True,
                                undo=lambda old, idx: links.set_mtu(name, old.mtu)))

    def set_interface_master(self, name: str, master: str) -> R:
        """Enslave NAME to MASTER (e.g. a bridge) over netlink.
        Equivalent to: ``ip link set NAME master MASTER``."""
        v.ifname(name)
        v.ifname(master, "master")
        return self._execute(Op("set_interface_master", (name, master), name,
                                lambda idx: links.set_master(name, idx[master]), needs=(master,),
                                changes=name, flushes=True,
                                undo=lambda old, idx: _back_to_master(name, old, [])))

    def change_interface_name(self, old: str, new: str) -> R:
        """Rename a link. Equivalent to: ``ip link set OLD name NEW``."""
        v.ifname(old)
        v.ifname(new, "new name")
        return self._execute(Op("change_interface_name", (old, new), old,
                                lambda idx: links.rename(idx[old], new), needs=(old,),
                                forgets=(old, new),
                                undo=lambda was, idx: links.rename(idx[old], old)))

    def set_interface_in_namespace_pid(self, name: str, pid: int) -> R:
        """Move a link into the network namespace of process PID.
        Equivalent to: ``ip link set NAME netns PID``."""
        return self._execute(Op("set_interface_in_namespace_pid", (name, pid), name,
                                _fixed(links.set_netns_pid(name, pid)), forgets=(name,),
                                irreversible="a link moved to another namespace is not moved back"))

    def set_interface_in_namespace_fd(self, name: str, fd: int) -> R:
        """Move a link into the network namespace open at FD.
        Equivalent to: ``ip link set NAME netns /proc/self/fd/FD``."""
        return self._execute(Op("set_interface_in_namespace_fd", (name, fd), name,
                                _fixed(links.set_netns_fd(name, fd)), forgets=(name,),
                                irreversible="a link moved to another namespace is not moved back"))

    def set_interface_ip(self, name: str, raw_ip: Union[str, v.IPInterface], *,
                         nodad: bool = False) -> R:
        """Add an address from a CIDR (str or ipaddress interface), IPv4 or IPv6.
        ``nodad`` (IPv6 only): skip duplicate address detection, so the
        address is usable at once (never ``tentative``) and no neighbour
        solicitation is sent for it.
        Equivalent to: ``ip addr add RAW_IP dev NAME [nodad]`` (with ``brd +`` for IPv4)."""
        v.ifname(name)
        iface = v.cidr(raw_ip)
        nodad = addresses.check_nodad(iface, nodad)
        return self._execute(Op("set_interface_ip", (name, raw_ip), name,
                                lambda idx: addresses.add(iface, idx[name], nodad=nodad),
                                needs=(name,),
                                undo=lambda old, idx: addresses.delete(iface, idx[name]),
                                gone=ADDRESS_GONE))

    def set_default_gateway(self, ip: Union[str, v.IPAddress], iface_name: str) -> R:
        """Add the default route via IP out of IFACE_NAME (IPv4 or IPv6).
        Equivalent to: ``ip route add default via IP dev IFACE_NAME``."""
        gateway = routes.parse_gateway(ip)
        v.ifname(iface_name)
        default = routes.default_network(gateway)
        return self._execute(Op(
            "set_default_gateway", (ip, iface_name), iface_name,
            lambda idx: routes.add(default, gateway, idx[iface_name]), needs=(iface_name,),
            undo=lambda old, idx: routes.remove_added(default, gateway, idx[iface_name]),
            gone=ROUTE_GONE))

    # -- beyond libcontainer ------------------------------------------------------------

    def create_bridge(self, name: str, *, mtu: Optional[int] = None, up: bool = False,
                      vlan_filtering: Optional[bool] = None,
                      stp_state: Union[bool, int, None] = None,
                      mcast_snooping: Optional[bool] = None,
                      ageing_time: Union[int, float, None] = None,
                      vlan_default_pvid: Optional[int] = None,
                      mcast_querier: Optional[bool] = None) -> R:
        """Create a bridge NAME (down unless ``up``), with ``mtu`` if given;
        EEXIST if the name is taken.  The bridge options given (see
        ``set_bridge``) go in the same message; the others keep the kernel's
        defaults.
        Equivalent to: ``ip link add NAME [mtu M] [up] type bridge
        [vlan_filtering 0|1] [stp_state S] [mcast_snooping 0|1] [ageing_time
        CENTISECONDS] [vlan_default_pvid V] [mcast_querier 0|1]``."""
        fields = links.new_link_fields(name, mtu, up)
        options = kinds.bridge_options(
            vlan_filtering=vlan_filtering, stp_state=stp_state, mcast_snooping=mcast_snooping,
            ageing_time=ageing_time, vlan_default_pvid=vlan_default_pvid,
            mcast_querier=mcast_querier)
        encode = (kinds.create(b"bridge", fields, options) if options
                  else links.create_bridge(fields))
        return self._execute(Op("create_bridge", (name,), name, _fixed(encode),
                                undo=lambda old, idx: links.delete(name), gone=LINK_GONE,
                                forgets=(name,)))

    def delete_link(self, name: str) -> R:
        """Delete a link (a veth takes its peer along).
        Equivalent to: ``ip link del NAME``."""
        return self._execute(Op("delete_link", (name,), name, _fixed(links.delete(name)),
                                forgets=(name,),
                                irreversible="a deleted link cannot be brought back"))

    def delete_group(self, group: int) -> R:
        """Delete every link of link group GROUP with one request: one RCU
        grace period for all of them, not one each.  A veth takes its peer
        along; ENODEV if the group has no link.
        Equivalent to: ``ip link delete group GROUP``."""
        return self._execute(Op("delete_group", (group,), None, _fixed(links.delete_group(group)),
                                irreversible="deleted links cannot be brought back"))

    def set_link(self, name: str, *, new_name: Optional[str] = None,
                 mac_address: Optional[str] = None, mtu: Optional[int] = None,
                 txqueuelen: Optional[int] = None, up: Optional[bool] = None,
                 promisc: Optional[bool] = None, master: Optional[str] = None,
                 addr_gen_mode: Optional[str] = None) -> R:
        """Change several attributes of a link in one request; only those
        given change (``up=None`` leaves the admin state alone, and
        ``promisc=None`` promiscuous mode).  The kernel applies the MAC
        address, MTU and name before the flags.
        ``addr_gen_mode`` ("eui64", "none", "stable_secret", "random") is
        how the link gets its IPv6 link-local address when it next comes up
        with carrier: "none" gives it none, so it sends no DAD, router
        solicitation or MLD report (a link that has one keeps it).  The
        kernel applies the mode after the flags, too late for a link it
        brings up at once, so with ``up=True`` the flags go in a second
        RTM_SETLINK, once the first has succeeded.
        Equivalent to: ``ip link set NAME [name NEW] [address MAC] [mtu M]
        [txqueuelen N] [master M] [addrgenmode MODE] [promisc on|off] [up|down]``."""
        given: dict[str, Any] = dict(mac_address=mac_address, mtu=mtu, txqueuelen=txqueuelen,
                                     up=up, promisc=promisc, addr_gen_mode=addr_gen_mode)
        fields = links.change_fields(name, **given)
        after: tuple = ()
        if new_name is not None:
            renamed = v.ifname(new_name, "new name")
        if addr_gen_mode is not None and up is True:
            flags = {key: fields.pop(key) for key in ("flags", "change")}
            after = (links.set_link({"name": renamed if new_name is not None else fields["name"],
                                     **flags}),)
        if master is not None:
            v.ifname(master, "master")
        needs = tuple(n for n in (name if new_name else None, master) if n)

        def build(idx: Indexes) -> Encoder:
            change = dict(fields)
            if new_name is not None:
                change.update(index=idx[name], name=renamed)
            if master is not None:
                change["master"] = idx[master]
            return links.set_link(change)

        def undo(old: Optional[Link], idx: Indexes) -> Union[Encoder, List[Encoder]]:
            assert old is not None
            was: dict[str, Any] = {key: getattr(old, attr) for key, attr in _LINK_ATTRS.items()
                                   if given[key] is not None}
            back = links.change_fields(new_name or name, **was)
            if new_name is not None:
                back.update(index=old.index, name=v.ifname(name))
            if master is None:
                return links.set_link(back)
            back["master"] = old.master
            return _back_to_master(name, old, [links.set_link(back)])

        flushes = up is False or any(x is not None for x in (mtu, master, mac_address))
        return self._execute(Op("set_link", (name,), name, build, needs=needs, changes=name,
                                undo=undo, flushes=flushes,
                                forgets=(name, new_name) if new_name else (), after=after))

    def set_hairpin(self, name: str, on: bool = True) -> R:
        """Let a bridge port send frames back out where they came in
        (hairpin mode; libcontainer's ``hairpin_mode``).
        Equivalent to: ``ip link set NAME type bridge_slave hairpin on``."""
        return self._execute(Op(
            "set_hairpin", (name, on), name, _fixed(links.set_hairpin(name, on)), changes=name,
            undo=lambda old, idx: None if old.hairpin is None else links.set_hairpin(name, old.hairpin)))

    def delete_address(self, name: str, cidr: Union[str, v.IPInterface]) -> R:
        """Remove the address CIDR (IPv4 or IPv6) from NAME;
        EADDRNOTAVAIL if NAME does not have it.  (Not allowed in a
        transaction: its broadcast, label and lifetimes are not recorded.)
        Equivalent to: ``ip addr del CIDR dev NAME``."""
        v.ifname(name)
        iface = v.cidr(cidr)
        return self._execute(Op("delete_address", (name, cidr), name,
                                lambda idx: addresses.delete(iface, idx[name]), needs=(name,),
                                irreversible="the deleted address's attributes are not recorded"))

    def add_route(self, dst: Union[str, routes.IPNetwork], iface_name: str,
                  gateway: Union[str, v.IPAddress, None] = None) -> R:
        """Add a route to DST (a network, IPv4 or IPv6; "default" is the
        gateway's family's 0/0) out of IFACE_NAME, through GATEWAY if given
        (scope global), else on-link (scope link); main table, proto boot.
        EEXIST if there is one.
        Equivalent to: ``ip route add DST [via GATEWAY] dev IFACE_NAME``."""
        return self._route("add_route", dst, iface_name, gateway, routes.add,
                           undo=routes.remove_added)

    def replace_route(self, dst: Union[str, routes.IPNetwork], iface_name: str,
                      gateway: Union[str, v.IPAddress, None] = None) -> R:
        """Add the route ``add_route`` would add, or put it in place of the
        route to DST the main table has.  (Not allowed in a transaction: the
        route it replaces is not restored.)
        Equivalent to: ``ip route replace DST [via GATEWAY] dev IFACE_NAME``."""
        return self._route("replace_route", dst, iface_name, gateway, routes.replace,
                           irreversible="the route it replaces is not recorded")

    def delete_route(self, dst: Union[str, routes.IPNetwork], iface_name: str,
                     gateway: Union[str, v.IPAddress, None] = None) -> R:
        """Delete the main table's route to DST out of IFACE_NAME (through
        GATEWAY, if given), whatever its protocol and scope; ESRCH if there
        is none.  (Not allowed in a transaction: its metric and protocol are
        not recorded.)
        Equivalent to: ``ip route del DST [via GATEWAY] dev IFACE_NAME``."""
        return self._route("delete_route", dst, iface_name, gateway, routes.delete,
                           irreversible="the deleted route's attributes are not recorded")

    def _route(self, operation: str, dst: object, iface_name: str, gateway: object,
               message: Callable, undo: Optional[Callable] = None, irreversible: str = "") -> R:
        """A route operation on the main table's route to DST out of IFACE_NAME."""
        network, via = routes.parse_route(dst, gateway)
        v.ifname(iface_name)
        arguments = (dst, iface_name) if gateway is None else (dst, iface_name, gateway)
        return self._execute(Op(
            operation, arguments, iface_name,
            lambda idx: message(network, via, idx[iface_name]), needs=(iface_name,),
            undo=None if undo is None else lambda old, idx: undo(network, via, idx[iface_name]),
            gone=ROUTE_GONE, irreversible=irreversible))

    # -- link kinds (issue 16) ---------------------------------------------------------

    def create_macvlan(self, name: str, parent: str, *, mode: str = "bridge",
                       nopromisc: bool = False, mtu: Optional[int] = None, up: bool = False,
                       mac_address: Optional[str] = None, netns: Optional[netns.Target] = None,
                       pid: Optional[int] = None) -> R:
        """Create a macvlan NAME on PARENT (a link of this namespace, by
        name): its own MAC address (``mac_address``, or a random one) on
        PARENT's wire; ``mode`` "bridge" (macvlans of one parent talk to each
        other directly), "private", "vepa", "passthru" or "source";
        ``nopromisc``: passthru mode without making PARENT promiscuous.
        With ``netns`` (a path or fd) or ``pid``, NAME is born inside that
        namespace (the CNI macvlan plugin's job): the kernel finds PARENT in
        this one, and ``mtu`` and ``up`` apply in there; nothing is left
        behind if any of it fails.  ENODEV (naming PARENT) if there is no
        PARENT, EEXIST if NAME is taken.  (A macvlan born in another
        namespace cannot be part of a transaction: its undo could not reach it.)
        Equivalent to: ``ip link add link PARENT name NAME [address MAC] [mtu
        M] [netns NS] [up] type macvlan mode MODE [nopromisc]``."""
        options = kinds.macvlan_options(mode, nopromisc)
        return self._create_on_parent("create_macvlan", b"macvlan", name, parent, options,
                                      mtu=mtu, up=up, mac_address=mac_address, netns=netns,
                                      pid=pid)

    def create_ipvlan(self, name: str, parent: str, *, mode: str = "l2",
                      flag: Optional[str] = None, mtu: Optional[int] = None, up: bool = False,
                      netns: Optional[netns.Target] = None, pid: Optional[int] = None) -> R:
        """Create an ipvlan NAME on PARENT (by name), sharing PARENT's MAC
        address: ``mode`` "l2", "l3" or "l3s"; ``flag`` "bridge" (the
        kernel's default when not given), "private" or "vepa".  ``netns`` /
        ``pid``, ``mtu``, ``up`` and the errors as ``create_macvlan``'s (the
        CNI ipvlan plugin's job); EOPNOTSUPP from a kernel without ipvlan.
        Equivalent to: ``ip link add link PARENT name NAME [mtu M] [netns NS]
        [up] type ipvlan mode MODE [FLAG]``."""
        options = kinds.ipvlan_options(mode, flag)
        return self._create_on_parent("create_ipvlan", b"ipvlan", name, parent, options,
                                      mtu=mtu, up=up, netns=netns, pid=pid)

    def create_vlan(self, name: str, parent: str, vlan_id: int, *,
                    protocol: Optional[str] = None, mtu: Optional[int] = None, up: bool = False,
                    mac_address: Optional[str] = None, netns: Optional[netns.Target] = None,
                    pid: Optional[int] = None) -> R:
        """Create NAME, PARENT's 802.1Q VLAN ``vlan_id`` (1 to 4094), or an
        802.1ad one (``protocol`` "802.1ad"; "802.1Q" is the kernel's
        default when not given).  ``netns`` / ``pid``, ``mtu``, ``up`` and
        the errors as ``create_macvlan``'s; EOPNOTSUPP from a kernel
        without 802.1Q support.
        Equivalent to: ``ip link add link PARENT name NAME [address MAC] [mtu
        M] [netns NS] [up] type vlan id VLAN_ID [protocol PROTOCOL]``."""
        options = kinds.vlan_options(vlan_id, protocol)
        return self._create_on_parent("create_vlan", b"vlan", name, parent, options,
                                      mtu=mtu, up=up, mac_address=mac_address, netns=netns,
                                      pid=pid)

    def _create_on_parent(self, operation: str, kind: bytes, name: str, parent: str,
                          options: kinds.Options, *, mtu: Optional[int], up: bool,
                          mac_address: Optional[str] = None,
                          netns: Optional[netns.Target] = None, pid: Optional[int] = None) -> R:
        """A link of ``kind`` on PARENT (IFLA_LINK: PARENT's index, looked up
        first), born in this namespace or in ``netns`` / ``pid``'s."""
        v.ifname(parent, "parent")
        if netns is not None and pid is not None:
            raise ValueError("give the namespace as a netns (path or fd) or as a pid, not both")
        fields = kinds.child_fields(name, mtu=mtu, up=up, mac_address=mac_address, ns_pid=pid)
        fds: List[int] = []
        if netns is not None:
            fields["ns_fd"] = self._netns_fd(netns, fds)
        here = netns is None and pid is None
        return self._execute(Op(
            operation, (name, parent), name,
            lambda idx: kinds.create(kind, {**fields, "link": idx[parent]}, options),
            needs=(parent,), undo=(lambda old, idx: links.delete(name)) if here else None,
            gone=LINK_GONE, forgets=(name,), fds=fds,
            irreversible="" if here else "a link born in another namespace is not deleted "
                                         "from this one"))

    def create_vxlan(self, name: str, vni: int, *, local: Optional[str] = None,
                     remote: Optional[str] = None, group: Optional[str] = None,
                     dev: Optional[str] = None, dstport: int = kinds.IANA_VXLAN_PORT,
                     learning: bool = True, ttl: Optional[int] = None,
                     mtu: Optional[int] = None, up: bool = False) -> R:
        """Create a VXLAN tunnel endpoint NAME for network ``vni`` (0 to
        2**24-1): ``local`` its source address, and ``remote`` (one unicast
        peer) or ``group`` (a multicast group, joined on ``dev``), IPv4 or
        IPv6 — or neither, for an overlay whose forwarding entries a control
        plane writes; ``dev``: the underlay link, by name (ENODEV naming it if
        there is none); ``dstport``: the UDP port, 4789 (IANA's) unless given
        — ``ip`` without ``dstport`` sends none and the kernel then takes
        Linux's older 8472 (``dstport=0`` does the same here);
        ``learning``: learn remote MACs from received packets (sent always,
        as ``ip`` does); ``ttl`` if given.  EEXIST if NAME is taken (or if
        another VXLAN already has this VNI and port).
        Equivalent to: ``ip link add NAME [mtu M] [up] type vxlan id VNI
        [local L] [remote R | group G] [dev D] [ttl T] [no]learning dstport
        PORT``."""
        options = kinds.vxlan_options(vni, local=local, remote=remote, group=group, dev=dev,
                                      dstport=dstport, learning=learning, ttl=ttl)
        fields = kinds.child_fields(name, mtu=mtu, up=up)

        def build(idx: Indexes) -> Encoder:
            underlay = [kinds.vxlan_link(idx[dev])] if dev is not None else []
            return kinds.create(b"vxlan", fields, underlay + options)

        return self._execute(Op("create_vxlan", (name, vni), name, build,
                                needs=(dev,) if dev is not None else (),
                                undo=lambda old, idx: links.delete(name), gone=LINK_GONE,
                                forgets=(name,)))

    def create_dummy(self, name: str, *, mtu: Optional[int] = None, up: bool = False,
                     mac_address: Optional[str] = None) -> R:
        """Create a dummy link NAME (a link that drops what it is given: a
        place for addresses); EEXIST if the name is taken, EOPNOTSUPP from a
        kernel without the dummy driver.
        Equivalent to: ``ip link add NAME [address MAC] [mtu M] [up] type dummy``."""
        encode = kinds.create(b"dummy", kinds.child_fields(name, mtu=mtu, up=up,
                                                           mac_address=mac_address), [])
        return self._execute(Op("create_dummy", (name,), name, _fixed(encode),
                                undo=lambda old, idx: links.delete(name), gone=LINK_GONE,
                                forgets=(name,)))

    def set_bridge(self, name: str, *, vlan_filtering: Optional[bool] = None,
                   stp_state: Union[bool, int, None] = None,
                   mcast_snooping: Optional[bool] = None,
                   ageing_time: Union[int, float, None] = None,
                   vlan_default_pvid: Optional[int] = None,
                   mcast_querier: Optional[bool] = None) -> R:
        """Change the options of bridge NAME; only those given change:
        ``vlan_filtering`` (bool), ``stp_state`` (bool, or 0 off / 1 kernel
        STP / 2 user STP, as ``ip -d`` reports it), ``mcast_snooping``
        (bool), ``ageing_time`` (seconds a learned MAC is kept; the kernel
        takes centiseconds), ``vlan_default_pvid`` (0 to 4094),
        ``mcast_querier`` (bool).  The kernel applies them in its own order
        and stops at the first it refuses (EOPNOTSUPP: vlan_filtering on a
        kernel without bridge VLAN filtering), keeping those before; in a
        transaction the values read before are restored.
        Equivalent to: ``ip link set NAME type bridge [vlan_filtering 0|1]
        [stp_state S] [mcast_snooping 0|1] [ageing_time CENTISECONDS]
        [vlan_default_pvid V] [mcast_querier 0|1]``."""
        given: dict[str, Any] = dict(
            vlan_filtering=vlan_filtering, stp_state=stp_state, mcast_snooping=mcast_snooping,
            ageing_time=ageing_time, vlan_default_pvid=vlan_default_pvid,
            mcast_querier=mcast_querier)
        options = kinds.bridge_options(**given)
        if not options:
            raise ValueError("set_bridge needs at least one bridge option")
        encode = kinds.change(b"bridge", name, options)

        def undo(old: Optional[Link], idx: Indexes) -> Optional[List[Encoder]]:
            # one message per option: the kernel stops at the first it refuses,
            # and one it refuses whatever the value (EOPNOTSUPP: vlan_filtering
            # without bridge VLAN support) was never changed, so its goal holds
            restore = kinds.bridge_restore(None if old is None else old.info, given)
            return [kinds.change(b"bridge", name, [option]) for option in restore] or None

        return self._execute(Op("set_bridge", (name,), name, _fixed(encode), changes=name,
                                undo=undo, gone=(_errno.EOPNOTSUPP,), partial=True))

    # -- neighbours and forwarding entries (issue 16) ---------------------------------

    def add_neighbour(self, dst: Union[str, v.IPAddress], lladdr: Optional[str], dev: str, *,
                      state: str = "permanent", router: bool = False, proxy: bool = False) -> R:
        """Add the neighbour entry DST -> LLADDR on link DEV (ARP for IPv4,
        NDP for IPv6), in ``state`` ("permanent", "reachable", "stale",
        "noarp", "delay", "probe", "failed", "incomplete", "none");
        ``router``: an IPv6 neighbour that is a router.  ``proxy`` (LLADDR
        None) adds a proxy entry instead: DEV answers ARP/NDP for DST with
        its own address (with proxy_arp/proxy_ndp on).  EEXIST if DEV has
        one for DST.  Undone (in a transaction) by deleting it.
        Equivalent to: ``ip neigh add [proxy] DST [lladdr LLADDR] dev DEV
        [nud STATE] [router]``."""
        spec = neighbours.spec_neighbour(dst, lladdr, dev, state, router, proxy)
        return self._neigh("add_neighbour", (dst, lladdr, dev), spec, neighbours.CREATE)

    def replace_neighbour(self, dst: Union[str, v.IPAddress], lladdr: Optional[str], dev: str, *,
                          state: str = "permanent", router: bool = False) -> R:
        """Add the neighbour entry ``add_neighbour`` would add, or put it in
        place of DEV's entry for DST.  (Not allowed in a transaction: the
        entry it replaces is not recorded.)
        Equivalent to: ``ip neigh replace DST lladdr LLADDR dev DEV nud STATE [router]``."""
        spec = neighbours.spec_neighbour(dst, lladdr, dev, state, router)
        return self._neigh("replace_neighbour", (dst, lladdr, dev), spec, neighbours.REPLACE,
                           irreversible="the entry it replaces is not recorded")

    def delete_neighbour(self, dst: Union[str, v.IPAddress], dev: str, *,
                         proxy: bool = False) -> R:
        """Delete DEV's neighbour entry for DST (``proxy``: its proxy entry);
        ENOENT if there is none.  (Not allowed in a transaction: its address
        and state are not recorded.)
        Equivalent to: ``ip neigh del [proxy] DST dev DEV``."""
        spec = neighbours.spec_neighbour_key(dst, dev, proxy)
        return self._neigh("delete_neighbour", (dst, dev), spec, None,
                           irreversible="the deleted entry is not recorded")

    def add_fdb(self, mac: str, dev: str, *, dst: Union[str, v.IPAddress, None] = None,
                vni: Optional[int] = None, port: Optional[int] = None, vlan: Optional[int] = None,
                master: bool = False, state: str = "permanent") -> R:
        """Add a forwarding entry: frames to MAC go out of DEV — with
        ``master``, in the table of the bridge DEV is a port of (``vlan``:
        of that VLAN); else in DEV's own table (``self``), where a vxlan
        device sends them to the remote VTEP ``dst`` (IPv4 or IPv6; ``vni``,
        UDP ``port``: the device's own when not given).  ``state``:
        "permanent", "static" or "dynamic" (ages out).  EEXIST if there is
        one.  Undone (in a transaction) by deleting it.  Thousands of them
        go fastest queued in one ``Batch`` (one ACK each, 64 per send).
        Equivalent to: ``bridge fdb add MAC dev DEV [dst IP] [vni VNI] [port
        PORT] [vlan VID] [self|master] [permanent|static|dynamic]``."""
        spec = neighbours.spec_fdb(mac, dev, dst=dst, vni=vni, port=port, vlan=vlan,
                                   master=master, state=state)
        return self._neigh("add_fdb", (mac, dev), spec, neighbours.CREATE)

    def append_fdb(self, mac: str, dev: str, *, dst: Union[str, v.IPAddress],
                   vni: Optional[int] = None, port: Optional[int] = None,
                   state: str = "permanent") -> R:
        """Add one more remote VTEP ``dst`` to a vxlan device's entry for MAC
        (made if missing): frames to MAC go to every remote of the entry.
        With the all-zeros MAC, this is how an overlay lists the VTEPs that
        flooded (broadcast, unknown, multicast) traffic goes to.  EEXIST if
        the entry has this remote.  Undone (in a transaction) by deleting
        that remote alone.
        Equivalent to: ``bridge fdb append MAC dev DEV dst IP [vni VNI] [port PORT]``."""
        if dst is None:
            raise ValueError("append_fdb needs the remote's dst")
        spec = neighbours.spec_fdb(mac, dev, dst=dst, vni=vni, port=port, state=state)
        return self._neigh("append_fdb", (mac, dev, dst), spec, neighbours.APPEND)

    def replace_fdb(self, mac: str, dev: str, *, dst: Union[str, v.IPAddress, None] = None,
                    vni: Optional[int] = None, port: Optional[int] = None,
                    vlan: Optional[int] = None, master: bool = False,
                    state: str = "permanent") -> R:
        """Add the entry ``add_fdb`` would add, or change the entry for MAC
        to it: on a vxlan device, its (first) remote becomes ``dst`` — what
        an overlay does when a container moves to another host.  (Not
        allowed in a transaction: the entry it replaces is not recorded.)
        Equivalent to: ``bridge fdb replace MAC dev DEV [dst IP] [vni VNI]
        [port PORT] [vlan VID] [self|master] [permanent|static|dynamic]``."""
        spec = neighbours.spec_fdb(mac, dev, dst=dst, vni=vni, port=port, vlan=vlan,
                                   master=master, state=state)
        return self._neigh("replace_fdb", (mac, dev), spec, neighbours.REPLACE,
                           irreversible="the entry it replaces is not recorded")

    def delete_fdb(self, mac: str, dev: str, *, dst: Union[str, v.IPAddress, None] = None,
                   vni: Optional[int] = None, port: Optional[int] = None,
                   vlan: Optional[int] = None, master: bool = False) -> R:
        """Delete the forwarding entry for MAC of DEV's table (``master``:
        of its bridge's, in ``vlan``); on a vxlan device with ``dst`` (and
        ``vni``, ``port`` if it was added with them), only that remote of
        the entry.  ENOENT if there is none.  (Not allowed in a transaction:
        its remotes and state are not recorded.)
        Equivalent to: ``bridge fdb del MAC dev DEV [dst IP] [vni VNI] [port
        PORT] [vlan VID] [self|master]``."""
        spec = neighbours.spec_fdb(mac, dev, dst=dst, vni=vni, port=port, vlan=vlan,
                                   master=master, state=None)
        return self._neigh("delete_fdb", (mac, dev), spec, None,
                           irreversible="the deleted entry is not recorded")

    def _neigh(self, operation: str, arguments: tuple, spec: neighbours.Spec,
               nlflags: Optional[int], irreversible: str = "") -> R:
        """An RTM_NEWNEIGH (``nlflags``) or, with None, RTM_DELNEIGH of
        ``spec`` on its link; an addition that is not irreversible is undone
        by the deletion of what it added."""
        dev = spec.dev
        if nlflags is None:
            def build(idx: Indexes) -> Encoder:
                return neighbours.delete(spec, idx[dev])
        else:
            def build(idx: Indexes) -> Encoder:
                return neighbours.add(spec, idx[dev], nlflags)
        undo = None if irreversible else lambda old, idx: neighbours.delete(spec, idx[dev])
        return self._execute(Op(operation, arguments, dev, build, needs=(dev,), undo=undo,
                                gone=NEIGH_GONE, irreversible=irreversible))


def _back_to_master(name: str, old: Link, undo: List[Encoder]) -> List[Encoder]:
    """The undo of a change of master: ``undo`` (or the old master set
    again), then — back on a bridge — the hairpin mode it had, which a port
    that leaves and rejoins loses."""
    undo = undo or [links.set_master(name, old.master)]
    if old.master and old.hairpin:
        undo.append(links.set_hairpin(name, True))
    return undo


class OpMaker(Operations[Op]):
    """The operations as ``Op``s, not run: for a caller that sends many of
    them in exchanges of its own (``bulk``) — the same definitions,
    validation and error context as every other executor."""

    def _execute(self, op: Op) -> Op:
        return op


make = OpMaker()

_LINK_ATTRS = {"mac_address": "address", "mtu": "mtu", "txqueuelen": "txqlen", "up": "up",
               "promisc": "promisc", "addr_gen_mode": "addr_gen_mode"}


class Reads:
    """The operations that read what the kernel has, over ``_socket()``."""

    def _socket(self) -> Socket:
        raise NotImplementedError

    def get_link(self, name: str) -> Link:
        """What the kernel says of NAME: index, flags, MTU, master, group,
        txqlen, link-layer address, hairpin and counters; ENODEV if there is
        no such link.  Equivalent to: ``ip -d -s link show NAME``."""
        request = Request("get_link", (name,), name, links.get(name), reads=True)
        [reply] = self._socket().exchange((request,))
        error = failure(request, reply)
        if error is not None:
            raise error
        return Link.from_raw(reply.link)

    def get_links(self, names: Sequence[str]) -> List[Link]:
        """``get_link`` of each of ``names``, in order, in one pipelined
        exchange (one RTM_GETLINK each, never a dump); the first missing link
        raises ENODEV naming it.
        Equivalent to: ``ip -d -s link show NAME`` for each NAME."""
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise TypeError("names must be a list or tuple of interface names")
        for name in names:
            v.ifname(name)
        requests = [Request("get_links", tuple(names), name, links.get(name), reads=True)
                    for name in names]
        found = []
        for request, reply in zip(requests, self._socket().exchange(requests) if requests else []):
            error = failure(request, reply)
            if error is not None:
                raise error
            found.append(Link.from_raw(reply.link))
        return found

    def link_index(self, name: str) -> int:
        """The ifindex of NAME: one RTM_GETLINK for that name, never a dump.
        Equivalent to: ``ip -j link show NAME | jq .[0].ifindex``."""
        return self._index_for("link_index", (name,), name)

    def _index_for(self, operation: str, arguments: tuple, name: str) -> int:
        """NAME's ifindex, a missing link failing as ``operation``."""
        op = Op(operation, arguments, name, _fixed(links.get(name)))
        return indexes(self._socket().exchange, op, (name,))[name]

    def link_exists(self, name: str) -> bool:
        """Whether a link NAME exists (one RTM_GETLINK); an error other than
        ENODEV (no such link) is raised.
        Equivalent to: ``ip link show NAME >/dev/null 2>&1``."""
        try:
            self._index_for("link_exists", (name,), name)
        except NetlinkError as e:
            if e.errno == _errno.ENODEV:
                return False
            raise
        return True

    def list_links(self) -> List[Link]:
        """Every link of the namespace, with its counters, in one dump.
        Equivalent to: ``ip -s link show``."""
        request = Request("list_links", (), None, links.dump(), reads=True)
        return [Link.from_raw(raw) for raw in self._socket().dump(request)]

    def list_addresses(self, name: Optional[str] = None,
                       family: Optional[int] = None) -> List[Address]:
        """Every address of the namespace, or of link NAME (ENODEV if there
        is none), of both families or of ``family`` (4 or 6): one address
        dump (and a link dump for the link names when NAME is not given).
        Equivalent to: ``ip -j [-4|-6] addr show [dev NAME]``."""
        af = addresses.family_number(family)
        if name is not None:
            v.ifname(name)
        sock = self._socket()
        arguments = tuple(a for a in (name, family) if a is not None)
        request = Request("list_addresses", arguments, name, addresses.dump(af), reads=True)
        if name is not None:
            index = self._index_for("list_addresses", arguments, name)
            return [Address.from_raw(raw, name) for raw in sock.dump(request)
                    if raw["index"] == index]
        names = self._link_names("list_addresses", arguments)
        return [Address.from_raw(raw, names.get(raw["index"], "")) for raw in sock.dump(request)]

    def list_routes(self, table: Union[int, str] = "main", family: Optional[int] = None,
                    oif: Optional[str] = None) -> List[Route]:
        """The routes of ``table`` (a number, "main", "local", "default" or
        "all"), of both families or of ``family`` (4 or 6), out of link
        ``oif`` if given: one route dump and one link dump (for ``dev``).
        Cached (cloned) routes are left out, as ``ip route show`` does.
        Equivalent to: ``ip -j -4 route show [table T] [dev OIF]`` and the
        same with ``-6`` (both families unless ``family`` is given)."""
        number = routes.table_number(table)
        af = addresses.family_number(family)
        if oif is not None:
            v.ifname(oif, "oif")
        arguments = tuple(a for a in (table, family, oif) if a is not None)
        request = Request("list_routes", arguments, oif, routes.dump(af), reads=True)
        index = self._index_for("list_routes", arguments, oif) if oif is not None else None
        names = self._link_names("list_routes", arguments)
        return [Route.from_raw(raw, names.get(raw["oif"]) if raw["oif"] else None)
                for raw in self._socket().dump(request)
                if (number is None or raw["table"] == number)
                and (index is None or raw["oif"] == index)
                and not raw["flags"] & routes.CLONED]

    def _link_names(self, operation: str, arguments: tuple) -> dict:
        """ifindex -> name of every link of the namespace (one link dump),
        a failure reported as ``operation`` with its ``arguments``."""
        request = Request(operation, arguments, None, links.dump(), reads=True)
        return {raw["index"]: raw["name"] for raw in self._socket().dump(request)}

    # -- neighbours and forwarding entries (issue 16) ---------------------------------

    def list_neighbours(self, dev: Optional[str] = None, family: Optional[int] = None, *,
                        noarp: bool = False, proxy: bool = False) -> List[Neighbour]:
        """The neighbour entries (ARP, NDP) of the namespace, or of link DEV
        (ENODEV if there is none), of both families or of ``family`` (4 or
        6): one neighbour dump and one link dump (for the names).  Entries
        whose only state is NOARP (the kernel's multicast and broadcast
        entries) are left out, as ``ip neigh show`` leaves them, unless
        ``noarp``.  ``proxy``: the proxy entries, and only them.
        Equivalent to: ``ip -j [-4|-6] neigh show [proxy] [dev DEV] [nud all]``."""
        af = neighbours.family_number(family)
        for flag, what in ((proxy, "proxy"), (noarp, "noarp")):
            if not isinstance(flag, bool):
                raise TypeError(f"{what} must be a bool, not {type(flag).__name__}")
        arguments = tuple(a for a in (dev, family) if a is not None)
        index = 0 if dev is None else self._index_for("list_neighbours", arguments,
                                                      _checked(dev, "dev"))
        request = Request("list_neighbours", arguments, dev,
                          neighbours.dump(af, index, proxy=proxy), reads=True)
        names = self._link_names("list_neighbours", arguments)
        return [Neighbour.from_raw(raw, names) for raw in self._socket().dump(request)
                if (not index or raw["index"] == index) and neighbours.shown(raw, noarp)]

    def list_fdb(self, dev: Optional[str] = None, *, master: Optional[str] = None
                 ) -> List[Neighbour]:
        """The forwarding entries of the namespace: of every link's own table
        (``self``: a vxlan device's remotes, each link's unicast and
        multicast addresses) and every bridge's (``master``); of link DEV
        only, and of bridge ``master`` and its ports only, when given
        (ENODEV if there is no such link): one FDB dump and one link dump
        (for the names and the bridge ports).
        Equivalent to: ``bridge -j fdb show [dev DEV] [br MASTER]``."""
        arguments = tuple(a for a in (dev, master) if a is not None)
        index = 0 if dev is None else self._index_for("list_fdb", arguments, _checked(dev, "dev"))
        bridge = 0 if master is None else self._index_for("list_fdb", arguments,
                                                          _checked(master, "master"))
        request = Request("list_fdb", arguments, dev,
                          neighbours.dump(neighbours.AF_BRIDGE, index, bridge), reads=True)
        found = self._socket().dump(request)
        every = self._socket().dump(Request("list_fdb", arguments, None, links.dump(), reads=True))
        names = {raw["index"]: raw["name"] for raw in every}
        ports = {raw["index"] for raw in every if raw["master"] == bridge} | {bridge}
        return [Neighbour.from_raw(raw, names) for raw in found
                if (not index or raw["index"] == index) and (not bridge or raw["index"] in ports)]


def _checked(name: str, what: str) -> str:
    v.ifname(name, what)
    return name
