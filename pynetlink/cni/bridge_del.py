"""Bridge mode, DEL (the reference's cmdDel): the container's end of the
veth goes (its host end with it) and the IPAM plugin releases the address.
A missing namespace or link is no error: DEL may come twice, or after the
container is gone.

Deleting a veth waits for RCU grace periods in the kernel (tens of
milliseconds on a busy machine): DELs deleting one link each pay for them
one by one.  In the daemon, DELs that arrive while
another's deletion runs are coalesced (``Coalescer``): the next of them
deletes the links of all that are waiting at once — each host end, checked
to be the container end's peer on this network's bridge and named in
prevResult, tagged with one fresh link group, then one group delete (``ip
link delete group G``), one grace period for all.  Any pod for which that does not apply (no veth, a
peer not found on the bridge, a kernel refusal) is deleted on its own, as
exec mode deletes it, so every DEL's answer is the one exec mode gives.  A
DEL alone (exec mode, an idle daemon) deletes its link at once.

In the daemon (``unlist.EARLY``), both deletions — one container link, or
one group — answer as soon as the kernel has unlisted the links (their
RTM_DELLINK notification read), not when the deleting syscall returns some
20 ms later: that wait (an RCU grace period, the device's last references)
changes nothing anyone can observe, and runs on in a background thread that
the daemon waits for before it exits (``unlist.delete_unlisted``).  The next
batch of the Coalescer does not wait for it: a group delete once started is
waited for by its own DELs, while the next batch is prepared (its links
read and tagged).  A deletion the kernel refuses, or that ends first, is
answered with its own outcome, as in exec mode."""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Optional

from .. import Handle, _names, links
from ..links import Link
from .._core import Request
from ..ops import failure
from . import unlist
from .delegate import start_ipam
from .._groupcommit import GroupCommit
from .kernel import open_container
from .netconf import BridgeConf
from .spec import CNIError, Env


def delete(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> None:
    """DEL: the container's end of the veth (its host end goes with it) and
    the IPAM plugin's DEL, which runs meanwhile (the kernel's deletion waits
    for an RCU grace period), then the ipMasq rules (ipmasq.py; for the
    addresses of prevResult, else of the link before it goes).  A missing
    namespace, link or rule is no error."""
    masq = None
    if bc.ip_masq:                          # only networks that use it load ipmasq.py (exec mode's start)
        from .ipmasq import masq_teardown
        masq = masq_teardown(env, conf, bc)
    with COALESCER.expecting(bool(env.netns and host_names(conf, bc.bridge))):
        ipam = start_ipam(bc.ipam_type, env, raw, "DEL")
        try:
            if env.netns:
                remove(Removal(env.netns, env.ifname, bc.bridge, host_names(conf, bc.bridge)))
        except BaseException:
            if ipam:
                ipam.finish()               # reaped; the link's error is the one reported
            raise
    if ipam:
        ipam.wait()
    if masq is not None:
        masq()


def remove_container_link(netns_path: str, ifname: str) -> None:
    """``ip -n NETNS link del IFNAME``, if both are there (in the daemon:
    done once the kernel has unlisted it, ``unlist_container_link``)."""
    try:
        fd, cont = open_container(netns_path)
    except CNIError:
        return                                  # no namespace (any more): nothing to remove
    try:
        if unlist.EARLY:
            unlist_container_link(fd, cont, ifname)
        else:
            with cont:
                cont.delete_link(ifname)
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
    finally:
        os.close(fd)


def unlist_container_link(fd: int, cont: Handle, ifname: str) -> None:
    """``cont.delete_link(ifname)``, returning once the kernel has unlisted
    the link (``unlist.delete_unlisted``, watching the namespace of ``fd``);
    the deletion owns ``cont`` and closes it when it ends.  ENODEV if there
    is no such link."""
    def delete() -> None:
        with cont:
            cont.delete_link(ifname)

    try:
        index = cont.get_link(ifname).index
    except BaseException:
        cont.close()
        raise
    unlist.delete_unlisted(fd, (index,), delete)


# -- coalescing concurrent DELs --------------------------------------------------------------

@dataclass
class Removal:
    """One DEL's link: IFNAME in the namespace at NETNS_PATH, whose host end
    should be a port of BRIDGE named one of HOSTS (prevResult's host
    interfaces); ``error`` once done, what exec mode would raise."""
    netns_path: str
    ifname: str
    bridge: str
    hosts: frozenset = frozenset()
    done: bool = False
    error: Optional[BaseException] = None
    unlisting: Optional[unlist.Unlisting] = None    # the group delete that holds its link


def host_names(conf: dict, bridge: str) -> frozenset:
    """The host interfaces prevResult lists (no ``sandbox``), the bridge
    aside: where the runtime says this pod's host end is.  Empty without a
    prevResult (a DEL may come without one)."""
    prev = conf.get("prevResult")
    interfaces = prev.get("interfaces") if isinstance(prev, dict) else None
    if not isinstance(interfaces, list):
        return frozenset()
    return frozenset(i["name"] for i in interfaces if isinstance(i, dict) and not i.get("sandbox")
                     and isinstance(i.get("name"), str) and i["name"] != bridge)


def remove(job: Removal) -> None:
    """``job``'s link deleted: with concurrent others (``COALESCER``) when
    its host end can be told from prevResult, else at once, alone."""
    if not job.hosts:
        remove_container_link(job.netns_path, job.ifname)
        return
    COALESCER.remove(job)


class Coalescer:
    """Group commit of link removals (pynetlink/_groupcommit.py): a caller finding no
    removal running runs every one waiting (its own included); the others
    wait for it, and the first of those still waiting then runs the next
    batch.  DELs announce themselves on arrival (``expecting``): a caller
    about to run a batch first gives the announced ones still on their way
    (in IPAM) up to GATHER seconds to join it; a DEL alone never waits."""

    GATHER = 0.005

    def __init__(self) -> None:
        self.group = GroupCommit(self.run, gather=self.GATHER)

    def expecting(self, coming: bool = True):
        """A DEL on its way to ``remove`` (if ``coming``) for the block."""
        return self.group.expecting(coming)

    def remove(self, job: Removal) -> None:
        """Remove ``job``'s link, alone or with others; raise its own error.
        A group delete is waited for (until the kernel has unlisted the
        links) after the batch, while the next batch is being prepared."""
        self.group.submit(job)
        if job.unlisting is not None:
            await_group(job)
        if job.error is not None:
            raise job.error

    @staticmethod
    def run(batch: list) -> None:
        try:
            remove_all(batch)
        finally:
            for job in batch:
                job.done = True


COALESCER = Coalescer()


def remove_alone(job: Removal) -> None:
    """``job``'s link deleted as exec mode deletes it; its error kept."""
    try:
        remove_container_link(job.netns_path, job.ifname)
    except BaseException as e:              # noqa: BLE001 - the job's own answer
        job.error = e


def await_group(job: Removal) -> None:
    """Wait for the group delete that holds ``job``'s link; if it failed
    (but for ENODEV: gone already), ``job`` is removed alone."""
    assert job.unlisting is not None
    try:
        job.unlisting.wait()
    except Exception as e:                      # noqa: BLE001 - whatever went wrong: alone
        if not (isinstance(e, OSError) and e.errno == errno.ENODEV):
            remove_alone(job)


def remove_all(batch: list) -> None:
    """Every job's link gone: together by one group delete where the host
    end is known, each alone otherwise."""
    if len(batch) == 1:
        remove_alone(batch[0])
        return
    alone = list(batch)
    try:
        with Handle() as host:
            alone = remove_grouped(host, batch)
    except Exception:                           # noqa: BLE001 - whatever went wrong: each alone
        pass
    for job in alone:
        remove_alone(job)


def remove_grouped(host: Handle, batch: list) -> list:
    """Delete, with one group delete in the host namespace, the host ends of
    the jobs whose peer is found (see ``host_end``); the jobs left to delete
    alone.  A job whose namespace or link is gone is done.  In the daemon
    (``unlist.EARLY``) the group delete is started, and each of its jobs
    holds it (``job.unlisting``) to wait for after the batch."""
    by_index = {link.index: link for link in named_links(host, batch)}
    bridges = {link.name: link.index for link in by_index.values() if link.kind == "bridge"}
    found, alone = [], []
    for job in batch:
        index = host_end(job, by_index, bridges.get(job.bridge))
        if index is None:
            alone.append(job)
        elif index > 0:
            found.append((job, index))
    if len(found) < 2:
        return alone + [job for job, _ in found]
    group = _names.random_group()
    tags = [Request("set_link", (f"group {group}",), by_index[i].name,
                    links.set_link({"index": i, "group": group})) for _, i in found]
    tagged = []
    for (job, index), request, reply in zip(found, tags, host.socket.exchange(tags)):
        if failure(request, reply):
            alone.append(job)                   # gone meanwhile, or refused: on its own
        else:
            tagged.append((job, index))
    if unlist.EARLY:
        unlisting = unlist.start_unlisted(None, [i for _, i in tagged], lambda: delete_group(group))
        for job, _ in tagged:
            job.unlisting = unlisting
        return alone
    try:
        host.delete_group(group)
    except OSError as e:
        if e.errno != errno.ENODEV:
            return list(batch)                  # left as they were: each deleted alone
    return alone


def named_links(host: Handle, batch: list) -> list:
    """The host links the batch names (its bridges, prevResult's host ends)
    that exist, read in one pipelined exchange (one RTM_GETLINK each: no
    dump of every link of the host)."""
    names = sorted({job.bridge for job in batch} | {name for job in batch for name in job.hosts})
    requests = []
    for name in names:
        try:
            requests.append(Request("get_link", (name,), name, links.get(name), reads=True))
        except ValueError:
            continue                            # not an interface name: no link has it
    return [Link.from_raw(reply.link) for request, reply in zip(requests, host.socket.exchange(requests))
            if failure(request, reply) is None]


def delete_group(group: int) -> None:
    """``ip link delete group GROUP`` on a socket of its own (the daemon's
    deletion runs on in a thread of its own after its answer)."""
    with Handle() as host:
        host.delete_group(group)


def host_end(job: Removal, by_index: dict, bridge: Optional[int]) -> Optional[int]:
    """The ifindex of ``job``'s host end: the link of the host namespace
    named as prevResult says, a veth on the job's bridge, whose peer is the
    container's IFNAME and the other way round (ifindexes alone do not
    tell: every namespace numbers its links from 1); 0 if the namespace or
    IFNAME is gone (nothing to delete); None if it cannot be told (the job
    is deleted alone)."""
    try:
        fd, cont = open_container(job.netns_path)
    except CNIError:
        return 0
    try:
        with cont:
            inside = cont.get_link(job.ifname)
    except OSError as e:
        return 0 if e.errno == errno.ENODEV else None
    finally:
        os.close(fd)
    peer = by_index.get(inside.link_index)
    if (bridge is None or inside.kind != "veth" or peer is None or peer.kind != "veth"
            or peer.master != bridge or peer.link_index != inside.index
            or peer.name not in job.hosts):
        return None
    return peer.index
