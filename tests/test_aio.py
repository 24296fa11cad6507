"""``pynetlink.aio.AsyncHandle``: operations, reads and batches awaited on
one event loop, judged with ``ip -j``.  No thread is started; the loop keeps
running while the kernel answers; cancelled calls leave the handle usable;
errors are Handle's.  The tests without a scratch namespace (the sans-IO
pieces, waiting for an fd) are unit tests."""
from __future__ import annotations

import asyncio
import errno
import gc
import struct
import threading
import time

import pytest

import pynetlink as pn
import pynetlink.aio
from conftest import open_fds, sh
from pynetlink.aio import AsyncHandle
from test_faults import getlink_without_ack

pytestmark = pytest.mark.unit

CONTAINERS = 100
GROUP = 7                   # the link group of the host ends: one request tears them down


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


async def setup_container(host: AsyncHandle, peer: AsyncHandle, i: int, peer_ns: str) -> None:
    """A container's network as a runtime makes it: a veth pair whose peer
    is born in the container's namespace, MTU, addresses, up, routes."""
    h, c = f"h{i}", f"c{i}"
    await host.create_veth_pair(h, c, mtu=1400, peer_mtu=1400, peer_netns=peer_ns, up=True,
                                group=GROUP)
    await asyncio.gather(host.set_interface_ip(h, f"198.51.100.{i + 1}/32"),
                         peer.set_interface_ip(c, f"203.0.113.{i + 1}/32"),
                         peer.interface_up(c))
    await asyncio.gather(host.add_route(f"203.0.113.{i + 1}/32", h),
                         peer.add_route(f"198.51.100.{i + 1}/32", c))


def test_100_container_setups_run_concurrently_on_one_loop(ns, ns2):
    threads = threading.active_count()

    async def main():
        async with AsyncHandle(ns.path) as host, AsyncHandle(ns2.path) as peer:
            await asyncio.gather(*[setup_container(host, peer, i, ns2.path)
                                   for i in range(CONTAINERS)])
            assert threading.active_count() == threads
    run(main())
    links = {link["ifname"]: link for link in ns.ip("link", "show")}
    peers = {link["ifname"]: link for link in ns2.ip("link", "show")}
    routes = {r["dst"]: r["dev"] for r in ns.ip("route", "show")}
    for i in range(CONTAINERS):
        h, c = f"h{i}", f"c{i}"
        assert links[h]["mtu"] == 1400 and "UP" in links[h]["flags"]
        assert peers[c]["mtu"] == 1400 and "UP" in peers[c]["flags"]
        assert ipv4(ns.addresses(h)) == [f"198.51.100.{i + 1}"]
        assert ipv4(ns2.addresses(c)) == [f"203.0.113.{i + 1}"]
        assert routes[f"203.0.113.{i + 1}"] == h
    assert len(ns2.ip("route", "show")) == CONTAINERS
    run(_teardown(ns.path))
    assert ns.link_names() == {"lo"} and ns2.link_names() == {"lo"}


def ipv4(addresses: list) -> list:
    return [a["local"] for a in addresses if a["family"] == "inet"]


async def _teardown(path: str) -> None:
    async with AsyncHandle(path) as host:
        await host.delete_group(GROUP)


def test_the_loop_keeps_running_during_a_large_dump(ns):
    """A dump of 3,000 addresses arrives in many datagrams: the reader
    yields to the loop after each, so a ticker runs in between."""
    sh("ip", "-n", ns.name, "link", "add", "d0", "type", "bridge")
    lines = "".join(f"addr add 2001:db8::{i:x}/128 dev d0 nodad\n" for i in range(1, 3001))
    _ip_batch(ns.name, lines)
    ticks: list = []

    async def main():
        async with AsyncHandle(ns.path) as h:
            stop = asyncio.Event()
            tick = asyncio.ensure_future(ticker(stop, ticks))
            await asyncio.sleep(0)
            before = len(ticks)
            found = await h.list_addresses("d0", family=6)
            during = len(ticks) - before
            stop.set()
            await tick
            return found, during
    found, during = run(main())
    assert len([a for a in found if a.local.startswith("2001:db8::")]) == 3000
    assert during >= 5, f"the ticker ran {during} times during the dump"


def _ip_batch(name: str, lines: str) -> None:
    import subprocess
    subprocess.run(["ip", "-n", name, "-batch", "-"], input=lines, text=True, check=True,
                   timeout=60)


def test_no_thread_is_started(ns):
    before = threading.active_count()

    async def main():
        async with AsyncHandle(ns.path) as h:
            await asyncio.gather(*[h.create_bridge(f"br{i}") for i in range(20)])
            counts = {threading.active_count()}
            await asyncio.gather(*[h.get_link(f"br{i}") for i in range(20)], h.list_links())
            counts.add(threading.active_count())
            return counts
    assert run(main()) == {before}
    assert len(ns.link_names()) == 21


async def sent(h: AsyncHandle) -> None:
    """Return once a call's requests are sent (its answer not read yet)."""
    for _ in range(100):
        if h.socket._calls:
            return
        await asyncio.sleep(0)
    raise AssertionError("nothing was sent")


def test_a_cancelled_call_may_be_applied_and_leaves_the_handle_usable(ns):
    async def main():
        async with AsyncHandle(ns.path) as h:
            task = asyncio.ensure_future(h.create_bridge("br0"))
            await sent(h)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            link = await h.get_link("br0")      # the kernel did apply it
            await h.set_mtu("br0", 1400)
            return link, h.socket
    link, sock = run(main())
    assert link.name == "br0" and ns.link("br0")["mtu"] == 1400
    assert not sock._calls and sock._inflight == 0


def test_a_call_cancelled_before_it_is_sent_is_not_applied(ns):
    async def main():
        async with AsyncHandle(ns.path) as h:
            task = asyncio.ensure_future(h.create_bridge("br0"))
            await asyncio.sleep(0)              # queued for the next send
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await h.link_exists("br0"), h.socket
    exists, sock = run(main())
    assert not exists and ns.link_names() == {"lo"}
    assert not sock._calls and sock._inflight == 0


def test_the_loop_runs_between_sends(ns, monkeypatch):
    """Deleting a veth waits inside the send (an RCU grace period): 20
    deletions at once are sent one by one (with no time for more than one
    send in a row), with the loop running between."""
    monkeypatch.setattr(pn.aio, "PUMP_SECONDS", 0)
    sh("ip", "-n", ns.name, "link", "add", "dev", "x", "type", "veth", "peer", "y")
    for i in range(20):
        sh("ip", "-n", ns.name, "link", "add", f"v{i}", "type", "veth", "peer", f"p{i}")
    ticks = []

    async def main():
        async with AsyncHandle(ns.path) as h:
            stop = asyncio.Event()
            tick = asyncio.ensure_future(ticker(stop, ticks))
            await asyncio.gather(*[h.delete_link(f"v{i}") for i in range(20)])
            stop.set()
            await tick
    run(main())
    assert ns.link_names() == {"lo", "x", "y"}
    assert len(ticks) >= 19, f"the ticker ran {len(ticks)} times during 20 deletions"


async def ticker(stop: asyncio.Event, ticks: list) -> None:
    while not stop.is_set():
        ticks.append(time.monotonic())
        await asyncio.sleep(0)


def test_a_late_answer_to_a_timed_out_call_is_not_taken_for_the_next(ns):
    async def main():
        async with AsyncHandle(ns.path, timeout=0.2) as h:
            with pytest.raises(pn.ExchangeError) as info:
                await h.socket.exchange([getlink_without_ack(b"lo")])
            return info.value, await h.get_link("lo"), h.socket
    error, lo, sock = run(main())
    assert error.errno == errno.ETIMEDOUT and error.replies == [None] and error.sent == 1
    assert "within 0.2 s" in error.detail
    assert lo.name == "lo" and not sock._calls and sock._inflight == 0


def test_a_cancelled_wait_for_room_gives_nothing_away(ns):
    """200 calls at once (more than a window in flight), half cancelled
    while they wait for room: the rest complete."""
    async def main():
        async with AsyncHandle(ns.path) as h:
            tasks = [asyncio.ensure_future(h.link_exists(f"x{i}")) for i in range(200)]
            await asyncio.sleep(0)
            for t in tasks[::2]:
                t.cancel()
            done = await asyncio.gather(*tasks[1::2])
            return done, h.socket
    done, sock = run(main())
    assert done == [False] * 100 and not sock._calls and sock._inflight == 0


def _error_fields(e: BaseException) -> tuple:
    return (type(e), e.errno, e.operation, e.arguments, e.interface, e.ext_ack, e.detail, str(e))


CALLS = [("create_veth_pair", ("va", "x1")), ("set_mtu", ("nosuch", 1400)),
         ("set_mtu", ("va", 10)), ("set_interface_ip", ("nosuch", "192.0.2.1/24")),
         ("add_route", ("192.0.2.0/24", "nosuch")), ("get_link", ("nosuch",)),
         ("delete_address", ("va", "192.0.2.9/24")), ("list_addresses", ("nosuch",))]


@pytest.mark.parametrize("name,args", CALLS, ids=[f"{n}{a}" for n, a in CALLS])
def test_errors_are_handles_same_classes_and_fields(ns, handle, veth, name, args):
    with pytest.raises(pn.NetlinkError) as sync:
        getattr(handle, name)(*args)

    async def main():
        async with AsyncHandle(ns.path) as h:
            with pytest.raises(pn.NetlinkError) as info:
                await getattr(h, name)(*args)
            return info.value
    assert _error_fields(run(main())) == _error_fields(sync.value)


def test_bad_input_is_refused_when_called_with_nothing_sent(ns):
    async def main():
        async with AsyncHandle(ns.path) as h:
            with pytest.raises(ValueError):
                h.set_mtu("va", -1)
            with pytest.raises(ValueError):
                await h.list_routes(table="nosuch")
    run(main())


def test_a_closed_handle_refuses_as_a_closed_handle(ns):
    async def main():
        h = AsyncHandle(ns.path)
        h.close()
        with pytest.raises(pn.NetlinkError) as op:
            await h.create_bridge("br0")
        with pytest.raises(pn.NetlinkError) as read:
            await h.list_links()
        return op.value, read.value, h
    op, read, h = run(main())
    assert op.errno == read.errno == errno.EBADF and op.operation == "create_bridge"
    assert h.closed and repr(h) == "<pynetlink.aio.AsyncHandle closed>"


def test_a_transaction_that_fails_is_rolled_back(ns, veth):
    async def main():
        async with AsyncHandle(ns.path) as h:
            b = h.batch("rollback")
            b.create_bridge("br0").set_mtu("va", 1400).set_interface_master("va", "br0")
            b.set_interface_ip("nosuch", "192.0.2.1/24")
            return await b.run()
    results = run(main())
    assert [r.status for r in results] == [pn.batch.ROLLED_BACK] * 3 + [pn.batch.FAILED]
    assert results[3].errno == errno.ENODEV
    assert ns.link_names() == {"lo", "va", "vb"}
    assert ns.link("va")["mtu"] == 1500 and "master" not in ns.link("va")


def test_a_batch_in_async_with_raises_batch_error_for_a_failure(ns):
    async def main():
        async with AsyncHandle(ns.path) as h:
            with pytest.raises(pn.BatchError) as info:
                async with h.batch("stop") as b:
                    b.create_bridge("br0").create_bridge("br0").create_bridge("br1")
            return info.value.results
    results = run(main())
    assert [r.status for r in results] == ["ok", "failed", "skipped"]
    assert ns.link_names() == {"lo", "br0"}


def test_a_batch_refuses_a_plain_with(ns):
    async def main():
        async with AsyncHandle(ns.path) as h:
            with pytest.raises(TypeError):
                with h.batch():
                    pass
    run(main())


def test_wait_readable_returns_when_the_fd_has_data():
    import os
    r, w = os.pipe()

    async def main():
        h = AsyncHandle()
        try:
            waiter = asyncio.ensure_future(h.wait_readable(r))
            await asyncio.sleep(0.01)
            assert not waiter.done()
            os.write(w, b"x")
            await asyncio.wait_for(waiter, 5)
        finally:
            h.close()
    try:
        run(main())
    finally:
        os.close(r)
        os.close(w)


def test_closing_fails_the_calls_in_flight_and_waiting(ns):
    """Closed with calls sent and calls waiting to be sent: each fails
    with EBADF, none hangs, and the loop's reader is gone with the fd."""
    async def main():
        h = AsyncHandle(ns.path)
        tasks = [asyncio.ensure_future(h.create_bridge(f"br{i}")) for i in range(100)]
        await sent(h)
        h.close()
        return await asyncio.gather(*tasks, return_exceptions=True), h
    outcomes, h = run(main())
    failed = [o for o in outcomes if isinstance(o, pn.NetlinkError)]
    assert failed and all(o.errno == errno.EBADF for o in failed)
    assert all(o is None or isinstance(o, pn.NetlinkError) for o in outcomes)
    assert h.closed and not h.socket._calls


def test_a_handle_dropped_unclosed_leaves_the_loop_usable(ns):
    async def main():
        h = AsyncHandle(ns.path)
        await h.create_bridge("br0")
        del h                               # its fd closed, and unregistered from the loop
        async with AsyncHandle(ns.path) as again:
            return await again.link_exists("br0")
    assert run(main())


def test_a_call_never_awaited_leaves_no_namespace_fd_open(ns, ns2):
    """The peer's namespace is opened when the call is made; a call dropped
    without being awaited closes it."""
    async def main():
        async with AsyncHandle(ns.path) as h:
            before = open_fds()
            call = h.create_veth_pair("v0", "c0", peer_netns=ns2.path)
            opened = open_fds()
            call.close()                    # a coroutine dropped unrun
            del call
            gc.collect()
            return before, opened, open_fds()
    before, opened, after = run(main())
    assert (opened, after) == (before + 1, before)
    assert "v0" not in ns.link_names()


def test_replies_the_kernel_dropped_are_reported_and_the_handle_stays_usable(ns):
    """A receive buffer too small for a window of link replies overflows
    (ENOBUFS): the calls whose answers were dropped fail with ExchangeError,
    the others get theirs, and the next call works."""
    async def main():
        async with AsyncHandle(ns.path, rcvbuf=pn.handle.MIN_RCVBUF) as h:
            outcomes = await asyncio.gather(*[h.get_link("lo") for _ in range(64)],
                                            return_exceptions=True)
            return outcomes, await h.get_link("lo"), h.socket
    outcomes, lo, sock = run(main())
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert lost and all(isinstance(o, pn.ExchangeError) and o.errno == errno.ENOBUFS for o in lost)
    assert all(o.name == "lo" for o in outcomes if not isinstance(o, BaseException))
    assert lo.name == "lo" and not sock._calls and sock._inflight == 0


def test_a_cancelled_transaction_undoes_what_it_may_have_applied(ns):
    """Cancelled once its requests are sent, before their answers are read:
    each is unknown, so each is undone, before the cancellation goes on."""
    async def main():
        async with AsyncHandle(ns.path) as h:
            b = h.batch("rollback")
            for i in range(10):
                b.create_bridge(f"br{i}")
            task = asyncio.ensure_future(b.run())
            await sent(h)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return b.results
    results = run(main())
    assert [r.status for r in results] == [pn.batch.ROLLED_BACK] * 10
    assert ns.link_names() == {"lo"}


# -- the sans-IO pieces, fed datagrams made here ---------------------------------------

PORT = 4242
NLMSG_ERROR, NLMSG_DONE, NLM_F_CAPPED = 2, 3, 0x100


def ack(seq: int, error: int = 0, port: int = PORT) -> bytes:
    """An NLMSG_ERROR (capped: the request's header only) answering ``seq``."""
    quoted = struct.pack("=IHHII", 16, 16, 0, seq, port)
    return struct.pack("=IHHIIi", 36, NLMSG_ERROR, NLM_F_CAPPED, seq, port, error) + quoted


def fed(parts, data: bytes) -> bool:
    datagrams = pn._core.Datagrams()
    datagrams.rbuf[0:len(data)] = data
    assert datagrams.sequence(len(data)) == struct.unpack_from("=I", data, 8)[0]
    return parts.feed(datagrams, len(data))


def requests(n: int) -> list:
    return [pn.ops.lookup("get_link", (), "lo") for _ in range(n)]


def test_replies_take_the_answers_to_their_own_sequence_numbers_only():
    replies = pn._core.Replies(requests(2), 10, 2, PORT)
    assert not fed(replies, ack(9)) and not fed(replies, ack(10, port=PORT + 1))
    assert not fed(replies, ack(11, -errno.ENODEV))
    assert replies.replies() == [None, (errno.ENODEV, "", None)]
    assert fed(replies, ack(10))
    assert replies.replies() == [(0, "", None), (errno.ENODEV, "", None)]


def test_a_reply_longer_than_the_buffer_fails_its_request_only():
    replies = pn._core.Replies(requests(2), 10, 2, PORT)
    datagrams = pn._core.Datagrams()
    datagrams.rbuf[0:36] = ack(11)
    assert not replies.feed(datagrams, datagrams.rcap + 1)
    assert replies.replies() == [None, (errno.EMSGSIZE, "", None)]


def test_dump_parts_end_with_the_kernels_done_or_its_refusal():
    request = pn._core.Request("list_links", (), None, pn._core.addr_dump_encoder(0), reads=True)
    kind = pn._core._DUMP_KINDS[pn._core.RTM_GETADDR]
    done = pn._core.DumpParts(7, PORT, kind, pn._core.RECV_BUFFER)
    assert not fed(done, ack(8)) and fed(done, struct.pack("=IHHIIi", 20, NLMSG_DONE, 0, 7, PORT, 0))
    assert done.result(request) == ([], False)
    refused = pn._core.DumpParts(7, PORT, kind, pn._core.RECV_BUFFER)
    assert fed(refused, ack(7, -errno.EOPNOTSUPP))
    with pytest.raises(pn.NetlinkError) as info:
        refused.result(request)
    assert info.value.errno == errno.EOPNOTSUPP and info.value.operation == "list_links"
