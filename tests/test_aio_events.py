"""``AsyncHandle.events`` and the awaited waits: the events of a scratch
namespace as an async iterator, on one event loop, with no thread; judged
with ``ip -j``."""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import os

import pytest

from conftest import settled_fds, sh
from pynetlink._core import IFF_LOWER_UP, MIN_RCVBUF
from pynetlink.aio import AsyncHandle
from pynetlink.errors import EventsLost
from pynetlink.events import Subscription


def v4(i: int) -> str:
    return str(ipaddress.ip_address("192.0.2.0") + i)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_events_of_the_handles_operations_arrive_in_order(ns, veth):
    async def main():
        async with AsyncHandle(ns.path) as h:
            stream = h.events("address", timeout=5)
            await asyncio.gather(*(h.set_interface_ip("va", f"{v4(i)}/32") for i in range(1, 51)))
            got = []
            async for event in stream:
                got.append((event.action, event.object.ifname, event.object.local))
                if len(got) == 50:
                    break
            await stream.aclose()
            return got
    assert run(main()) == [("new", "va", v4(i)) for i in range(1, 51)]
    assert len([a for a in ns.addresses("va") if a["family"] == "inet"]) == 50


def test_events_follow_the_handles_namespace_not_the_fd_it_was_made_from(ns, ns2):
    """The fd an AsyncHandle was made from may be closed (or name another
    namespace) afterwards: its events are still its socket's namespace's."""
    async def main():
        fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            h = AsyncHandle(fd)
        finally:
            os.close(fd)
        async with h:
            stream = h.events("link", timeout=5)          # subscribed now
            sh("ip", "-n", ns2.name, "link", "add", "o0", "type", "veth", "peer", "name", "o1")
            sh("ip", "-n", ns.name, "link", "add", "i0", "type", "veth", "peer", "name", "i1")
            async for event in stream:
                await stream.aclose()
                return event.object.name
    assert run(main()) in ("i0", "i1")


def test_the_loop_runs_on_while_an_iteration_waits_and_it_ends_at_its_timeout(ns):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1
        task = asyncio.ensure_future(ticker())
        async with AsyncHandle(ns.path) as h:
            loop = asyncio.get_running_loop()
            start = loop.time()
            events = [e async for e in h.events("route", timeout=0.5)]
            elapsed = loop.time() - start
        task.cancel()
        return events, elapsed, ticks
    events, elapsed, ticks = run(main())
    assert events == [] and 0.5 <= elapsed < 2.0
    assert ticks >= 20                      # ~50 at 10 ms: the loop was never held


def assert_no_fd_left(ns, act) -> None:
    """``await act(h)`` on an AsyncHandle of ``ns`` leaves the fds open as they were."""
    async def main():
        async with AsyncHandle(ns.path) as h:
            before = settled_fds()
            await act(h)
            return before, settled_fds()
    before, after = run(main())
    assert after == before


def test_cancelling_an_iteration_closes_its_subscription(ns, veth):
    async def act(h):
        stream = h.events("link", "address")    # kept: not the collector's to close

        async def consume():
            async for _ in stream:
                pass
        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.1)
        await h.interface_up("va")          # events reach the consumer while it runs
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert_no_fd_left(ns, act)


def test_an_overflow_reaches_the_consumer_as_events_lost_after_the_events_before_it(ns, veth):
    async def main():
        async with AsyncHandle(ns.path) as h:
            stream = h.events("address", rcvbuf=MIN_RCVBUF, timeout=5)
            async with h.batch("stop") as b:
                for i in range(200):
                    b.set_interface_ip("va", f"{v4(i)}/32")
            got = []
            with pytest.raises(EventsLost) as lost:
                async for event in stream:
                    got.append(event.object.local)
            return got, lost.value
    got, lost = run(main())
    assert lost.errno == errno.ENOBUFS and isinstance(lost, OSError)
    assert got == [v4(i) for i in range(len(got))] and len(got) < 200     # an in-order prefix


def test_link_names_are_read_awaited_never_with_a_blocking_dump(ns, veth, monkeypatch):
    """Address events name their link: the names are read through the
    AsyncHandle (awaited) once it has subscribed, for an iteration and for
    a wait, never with the subscription's blocking dump on the loop."""
    def blocking(self):
        raise AssertionError("a blocking link dump on the event loop")
    monkeypatch.setattr(Subscription, "_refresh_names", blocking)

    async def main():
        async with AsyncHandle(ns.path) as h:
            stream = h.events("address", timeout=5)
            await h.set_interface_ip("va", "192.0.2.1/24")
            async for event in stream:
                await stream.aclose()
                first = event.object.ifname
            async def add():
                await asyncio.sleep(0.1)
                await h.set_interface_ip("vb", "198.51.100.1/24")
            waited, _ = await asyncio.gather(
                h.wait_for_address("vb", "198.51.100.1/24", timeout=5), add())
            return first, waited.ifname
    assert run(main()) == ("va", "vb")


def test_an_awaited_wait_for_link_sees_carrier_appear(ns, veth):
    async def main():
        async with AsyncHandle(ns.path) as h:
            async def bring_up():
                await asyncio.sleep(0.2)
                await h.interface_up("va")
                await h.interface_up("vb")
            link, _ = await asyncio.gather(h.wait_for_link("va", carrier=True, timeout=5),
                                           bring_up())
            return link
    link = run(main())
    assert link.name == "va" and link.flags & IFF_LOWER_UP
    assert "LOWER_UP" in ns.link("va")["flags"]


def test_an_awaited_wait_for_address_times_out_with_timeout_error(ns, veth):
    async def main():
        async with AsyncHandle(ns.path) as h:
            await h.wait_for_address("va", "192.0.2.1/24", timeout=0.2)
    with pytest.raises(TimeoutError):
        run(main())


def test_an_awaited_wait_for_address_returns_the_address_added_meanwhile(ns, veth):
    async def main():
        async with AsyncHandle(ns.path) as h:
            async def add():
                await asyncio.sleep(0.1)
                await h.set_interface_ip("va", "192.0.2.1/24")
            address, _ = await asyncio.gather(h.wait_for_address("va", "192.0.2.1/24", timeout=5),
                                              add())
            return address
    address = run(main())
    assert (address.ifname, address.local, address.prefixlen) == ("va", "192.0.2.1", 24)


@pytest.mark.parametrize("kinds, options, error", [
    ((), {}, ValueError), (("bogus",), {}, ValueError), ((3,), {}, TypeError),
    (("link",), {"timeout": -1}, ValueError), (("link",), {"rcvbuf": 1}, ValueError)])
def test_bad_arguments_are_refused_before_any_socket_is_made(ns, kinds, options, error):
    async def act(h):
        with pytest.raises(error):
            h.events(*kinds, **options)
    assert_no_fd_left(ns, act)


def test_ended_iterations_and_waits_leave_no_fd_behind(ns, veth):
    async def act(h):
        for _ in range(10):
            assert [e async for e in h.events("neigh", "fdb", timeout=0)] == []
            await h.wait_for_link("va", timeout=1)
    assert_no_fd_left(ns, act)
