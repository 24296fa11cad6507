"""Set up and tear down the networks of many containers at once.

``setup(containers)`` gives each container — its network namespace (a
path, an fd, or a pid) and a ``Network`` — what ``Loopback`` + ``Veth``
would: a veth whose host end is on ``network.bridge`` (MTU, txqueuelen,
hairpin, up) and whose other end is ``eth0`` inside the container (MTU,
MAC, txqueuelen, up, ``address``/``ipv6_address``, default routes), and
``lo`` up.  It takes the kernel's fastest path: every container end is
born inside its namespace already named ``eth0`` (no move, no rename), the
host side goes out in pipelined chunks from one socket, each container
gets one socket (made without fork, closed when done) and two pipelined
exchanges, and every host end is tagged with one link group, so
``teardown`` removes them all with a single RTM_DELLINK — one RCU grace
period for the lot, not one each.  The kernel handles one request at a
time (RTNL); for more than a chunk of containers, a helper thread
configures the containers whose pairs exist while the calling thread's
next chunk is in the kernel, so the library's Python work hides behind
the kernel's.

A container that fails is reported with its error and leaves nothing
behind; the others are set up.  Bad input (any container's) raises
``ValueError``/``TypeError`` before anything is sent.  An error that is no
container's own — the host namespace's socket failing, a lookup of a
taken host name failing with anything but ENODEV — stops the setup: what
it made is deleted (one group delete) and the error is raised.
"""
from __future__ import annotations

import contextlib
import errno as _errno
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, Union

from . import _validate as v
from . import _names, _veth
from . import netns as _netns
from ._core import Request, Socket
from ._names import DEFAULT_DEVICE
from .handle import Handle, default_handle
from .ops import Op, failure, lookup, make
from .types import Network, NetworkState

__all__ = ["Container", "ContainerResult", "Setup", "setup", "teardown", "remove"]


_CHUNK = 16                 # veth pairs per send on the host side


@dataclass
class Container:
    """One container to set up: its namespace as ``netns`` (a path or an
    open fd) or as ``pid`` (its process), and its veth ``network``."""
    network: Network
    netns: Optional[_netns.Target] = None
    pid: Optional[int] = None


@dataclass
class ContainerResult:
    container: Container
    state: Optional[NetworkState] = None    # veth_host, veth_child ("eth0"), ns_path
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Setup:
    """What ``setup`` did: one result per container, in order, and the link
    group that tags every host end it made."""
    group: int
    results: List[ContainerResult]

    @property
    def states(self) -> List[NetworkState]:
        return [r.state for r in self.results if r.state is not None]


@dataclass
class _Plan:
    container: Container
    veth: _veth.VethPlan
    fd: int = -1
    host: str = ""
    error: Optional[BaseException] = None

    @property
    def network(self) -> Network:
        return self.veth.network


def _plan(i: int, c: Container) -> _Plan:
    """Validate container i completely, before anything is sent."""
    if not isinstance(c, Container):
        raise TypeError(f"container {i}: expected pynetlink.bulk.Container, not {type(c).__name__}")
    try:
        if (c.netns is None) == (c.pid is None):
            raise ValueError("give the container's namespace as netns= or as pid=, exactly one")
        if c.pid is not None:
            v.pid(c.pid)
        elif isinstance(_netns.check_target(c.netns), int):
            v.fd(c.netns)
        else:
            v.path(c.netns)
        return _Plan(c, _veth.plan(c.network))
    except (ValueError, TypeError) as e:
        raise type(e)(f"container {i}: {e}") from None


def setup(containers: Iterable[Container], *, group: Optional[int] = None,
          handle: Optional[Handle] = None) -> Setup:
    """Set up every container's network; see the module documentation.

    The host side acts in the calling thread's namespace (or ``handle``'s).
    ``group`` tags the host ends (default: a fresh random group); pass the
    returned ``Setup`` to ``teardown``.
    """
    plans = [_plan(i, c) for i, c in enumerate(containers)]
    own_group = group is None
    # below 2**31: iproute2 prints groups as signed numbers
    group = v.group(group) if group is not None else _names.random_group()
    if group == 0:
        raise ValueError("group 0 is every link's default group")
    host = handle or default_handle()
    with contextlib.ExitStack() as stack:
        for p in plans:
            _open_namespace(p, stack)
        live = [p for p in plans if not p.error]
        try:
            timeout = host.socket.timeout_ms / 1000
            with _Configurator(timeout, threaded=len(live) > _CHUNK) as configurator:
                hairpin_errors = _create_host_side(host, live, group, configurator.submit)
        except BaseException:
            # Nothing half-made stays: a fresh group tags only what this call made,
            # also pairs whose answer was lost with the exchange; else our names.
            with contextlib.suppress(Exception):
                if own_group:
                    host.delete_group(group)
                else:
                    _delete(host, [p.host for p in plans if p.host])
            raise
        for p, error in hairpin_errors:
            p.error = p.error or error
        failed = [p for p in plans if p.error and p.host]
        if failed:
            _delete(host, [p.host for p in failed])
    return Setup(group, [ContainerResult(p.container, None if p.error else NetworkState(
        veth_host=p.host, veth_child=DEFAULT_DEVICE,
        ns_path=p.container.netns if isinstance(p.container.netns, str) else ""), p.error)
        for p in plans])


def _open_namespace(p: _Plan, stack: contextlib.ExitStack) -> None:
    c = p.container
    try:
        if c.pid is not None:
            p.fd = stack.enter_context(_netns.netns_fd(f"/proc/{c.pid}/ns/net"))
        elif c.netns is not None:
            p.fd = stack.enter_context(_netns.netns_fd(c.netns))
    except OSError as e:
        p.error = e


def _create_host_side(host: Handle, plans: Sequence[_Plan], group: int,
                      made: Callable[[List[_Plan]], None]) -> list:
    """Pipelined, one request per pair: the peer born as eth0 inside its
    container, the host end on its bridge, up, in ``group``; fresh host
    names on EEXIST.  Sent in chunks; ``made`` gets each chunk's containers
    whose pair exists.  Then hairpin, where asked for: returns its failures
    as (plan, error) pairs."""
    bridges = _bridge_indexes(host, plans)
    todo = [p for p in plans if not p.error]
    for attempt in range(_names.NAME_ATTEMPTS):
        retry = []
        for start in range(0, len(todo), _CHUNK):
            chunk = todo[start:start + _CHUNK]
            names = [_names.random_name(p.network.veth_prefix, p.veth.suffix_len) for p in chunk]
            ops = [_create_pair(p, name, group) for p, name in zip(chunk, names)]
            requests = [op.built({p.network.bridge: bridges[p.network.bridge]})
                        for p, op in zip(chunk, ops)]
            ok = []
            for p, op, name, request, reply in zip(chunk, ops, names, requests,
                                                   host.socket.exchange(requests)):
                if not reply.errno:
                    p.host = name                   # ours: only now may a clean-up delete it
                    ok.append((p, op))
                elif (reply.errno == _errno.EEXIST and attempt < _names.NAME_ATTEMPTS - 1
                      and host.link_exists(name)):
                    retry.append(p)
                else:
                    p.error = failure(request, reply)
            made(_finish_pairs(host, ok))
        todo = retry
    hairpins = [(p, make.set_hairpin(p.host, True).built({}))
                for p in plans if p.host and p.network.hairpin_mode]
    replies = host.socket.exchange([request for _, request in hairpins]) if hairpins else []
    return [(p, failure(request, reply))
            for (p, request), reply in zip(hairpins, replies) if reply.errno]


def _finish_pairs(host: Handle, made: Sequence[tuple]) -> List[_Plan]:
    """The host ends' IPv6 link-local mode (quiet: none), which the kernel
    refuses in the creating request, for the pairs made (one exchange for
    the chunk, and only for these: sent with the creations, it would act
    on a stranger's link when a name is taken).  The peers are still down,
    so no host end has carrier yet.  Returns the pairs finished; the
    others get their error (and are deleted with the failed).  ``made``:
    (plan, op) pairs."""
    finishing = [(p, op, r) for p, op in made for r in op.finishing()]
    if finishing:
        replies = host.socket.exchange([r for _, _, r in finishing])
        for (p, op, request), reply in zip(finishing, replies):
            if op.finish_failure(reply) and not p.error:
                p.error = failure(request, reply)
    return [p for p, _ in made if not p.error]


def _create_pair(p: _Plan, name: str, group: int) -> Op:
    """The host end on its bridge, up, in ``group``; the peer born as eth0
    inside the container; both with the network's MTU; its ``finishing``
    request sets the host end's IPv6 link-local mode."""
    return make.create_veth_pair(name, DEFAULT_DEVICE, mtu=p.veth.mtu, master=p.network.bridge,
                                 up=True, txqueuelen=p.veth.txqueuelen, group=group,
                                 peer_mtu=p.veth.mtu, peer_netns=p.fd,
                                 addr_gen_mode=p.veth.host_mode)


def _bridge_indexes(host: Handle, plans: Sequence[_Plan]) -> dict:
    """Each bridge's ifindex, looked up once (one pipelined exchange); the
    containers whose bridge is missing fail with the kernel's answer."""
    names = list(dict.fromkeys(p.network.bridge for p in plans if not p.error))
    found = dict(zip(names, host.socket.exchange(
        [lookup("create_veth_pair", (), name) for name in names])))
    for p in plans:
        if p.error:
            continue
        reply = found[p.network.bridge]
        if reply.errno:
            request = lookup("create_veth_pair", (p.network.veth_prefix, DEFAULT_DEVICE),
                             p.network.bridge)
            p.error = failure(request, reply)
    return {name: reply.link["index"] for name, reply in found.items() if not reply.errno}


def _apply(exchange: Callable[[list], list], planned: Sequence[tuple]) -> list:
    """Run (plan, request) pairs in one pipelined ``exchange`` (a Socket's);
    a request the kernel refuses sets its plan's error.  Returns the replies."""
    if not planned:
        return []
    replies = exchange([request for _, request in planned])
    for (p, request), reply in zip(planned, replies):
        if reply.errno and not p.error:
            p.error = failure(request, reply)
    return replies


class _Configurator:
    """Configures container sides as their pairs are made.  ``threaded``:
    on a helper thread, so that its Python work overlaps the host side's
    time in the kernel (which runs one request at a time: RTNL); else
    inline, in ``submit``."""

    def __init__(self, timeout: float, threaded: bool):
        self.timeout = timeout
        self.shared = _Shared()
        self.failure: Optional[BaseException] = None
        self.stopping = False
        self.queue: "queue.SimpleQueue[Optional[List[_Plan]]]" = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name="pynetlink-bulk",
                                       daemon=True) if threaded else None

    def __enter__(self) -> "_Configurator":
        if self.thread:
            self.thread.start()
        return self

    def submit(self, plans: List[_Plan]) -> None:
        if self.thread:
            self.queue.put(plans)
        else:
            self._configure(plans, -1)

    def __exit__(self, *exc) -> None:
        if self.thread:
            self.stopping = exc[0] is not None      # the host side failed: configure no more
            self.queue.put(None)
            interrupted = None
            while self.thread.is_alive():           # never leave it running on our fds
                try:
                    self.thread.join()
                except KeyboardInterrupt as e:
                    self.stopping, interrupted = True, e
            if interrupted is not None:
                raise interrupted
        if self.failure is not None and exc[0] is None:
            raise self.failure

    def _configure(self, plans: List[_Plan], home: int) -> None:
        for p in plans:
            if self.stopping:
                return
            _configure_container(p, self.shared, self.timeout, home)

    def _work(self) -> None:
        try:
            with _netns.netns_fd("/proc/thread-self/ns/net") as home:
                while (plans := self.queue.get()) is not None:
                    self._configure(plans, home)
        except BaseException as e:          # a bug, not a kernel answer: re-raised by __exit__
            self.failure = e
            while self.queue.get() is not None:
                pass


class _Shared(dict):
    """Requests that are the same for many containers (lo up, eth0 up, the
    lookup of eth0, a default route through the same gateway and index),
    built once per setup: a request is immutable and any socket may send it."""

    def get_or_build(self, key: tuple, build, *args) -> Request:
        request = self.get(key)
        if request is None:
            request = self[key] = build(*args)
        return request


def _configure_container(p: _Plan, shared: _Shared, timeout: float, home: int) -> None:
    """The container side over one socket made in its namespace (``home``:
    an fd of the namespace the thread is in), in two pipelined exchanges:
    lo up, eth0 up (MAC, txqueuelen) and eth0's index; then, with that
    index, the addresses and default routes."""
    try:
        sock = Socket(p.fd, timeout, home)
    except OSError as e:
        p.error = e
        return
    try:
        eth0 = shared.get_or_build(("eth0", p.veth.mac, p.veth.txqueuelen, p.veth.child_mode),
                                   _eth0_up, p.veth.mac, p.veth.txqueuelen, p.veth.child_mode)
        first = [(p, shared.get_or_build(("lo",), _lo_up))] + [(p, r) for r in eth0]
        if p.veth.addresses or p.veth.gateways:
            first.append((p, shared.get_or_build(("index",), lookup, "set_interface_ip",
                                                 (DEFAULT_DEVICE,), DEFAULT_DEVICE)))
        replies = _apply(sock.exchange, first)
        if p.error or len(replies) == 1 + len(eth0):
            return
        index = replies[-1].link["index"]
        _apply(sock.exchange, [(p, _add_address(raw, iface, index))
                               for raw, iface in p.veth.addresses]
               + [(p, shared.get_or_build(("route", raw, index), _add_default, raw, index))
                  for raw, _ in p.veth.gateways])
    except OSError as e:
        p.error = e
    finally:
        sock.close()


def _lo_up() -> Request:
    return make.interface_up("lo").built({})


def _eth0_up(mac: Optional[str], txqueuelen: Optional[int], mode: Optional[str]) -> List[Request]:
    """eth0 up with its MAC and txqueuelen; with ``mode`` ("none": quiet
    on IPv6) set in a first request, as the kernel applies it after the flags."""
    return make.set_link(DEFAULT_DEVICE, up=True, mac_address=mac, txqueuelen=txqueuelen,
                         addr_gen_mode=mode).requests({})


def _add_address(raw: str, iface, index: int) -> Request:
    """An address of eth0; IPv6 without DAD: usable at once."""
    return make.set_interface_ip(DEFAULT_DEVICE, raw, nodad=iface.version == 6).built(
        {DEFAULT_DEVICE: index})


def _add_default(raw: str, index: int) -> Request:
    return make.set_default_gateway(raw, DEFAULT_DEVICE).built({DEFAULT_DEVICE: index})


def _delete(host: Handle, names: Sequence[str]) -> List[Optional[OSError]]:
    """Delete links by name, pipelined; an already-gone link is not an error."""
    requests = [make.delete_link(name).built({}) for name in names]
    return [None if r.errno == _errno.ENODEV else failure(q, r)
            for q, r in zip(requests, host.socket.exchange(requests))]


def teardown(setup_done: Union[Setup, int], *, handle: Optional[Handle] = None) -> None:
    """Remove every host end ``setup`` made (their peers go with them) with
    one group delete; idempotent.  If the kernel refuses group deletion, the
    host ends are deleted one by one (pipelined) instead.  Given only a
    group number, deletes every link of that group.
    Equivalent to: ``ip link delete group GROUP``."""
    group = setup_done.group if isinstance(setup_done, Setup) else setup_done
    host = handle or default_handle()
    try:
        host.delete_group(group)
    except OSError as e:
        if e.errno == _errno.ENODEV:                # nothing (left) in the group
            return
        if not isinstance(setup_done, Setup) or e.errno not in (_errno.EOPNOTSUPP, _errno.EINVAL):
            raise
        errors = [err for err in remove(setup_done.states, handle=host) if err]
        if errors:
            raise errors[0]


def remove(states: Iterable[NetworkState], *, handle: Optional[Handle] = None) -> List[Optional[OSError]]:
    """Delete the host end of each state (pipelined, one request each);
    one entry per state: None, or the error.  A host end already gone is
    not an error."""
    states = list(states)
    named = [s for s in states if s.veth_host]
    errors = dict(zip(map(id, named), _delete(handle or default_handle(), [s.veth_host for s in named])))
    return [errors.get(id(s)) for s in states]
