"""Bridge mode, DEL (the reference's cmdDel): the container's end of the
veth goes (its host end with it) and the IPAM plugin releases the address.
A missing namespace or link is no error: DEL may come twice, or after the
container is gone."""
from __future__ import annotations

import errno
import os

from .delegate import start_ipam
from .kernel import open_container
from .netconf import BridgeConf
from .spec import CNIError, Env


def delete(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> None:
    """DEL: the container's end of the veth (its host end goes with it) and
    the IPAM plugin's DEL, which runs meanwhile (the kernel's deletion waits
    for an RCU grace period).  A missing namespace or link is no error."""
    ipam = start_ipam(bc.ipam_type, env, raw, "DEL")
    try:
        if env.netns:
            remove_container_link(env.netns, env.ifname)
    except BaseException:
        if ipam:
            ipam.finish()                   # reaped; the link's error is the one reported
        raise
    if ipam:
        ipam.wait()


def remove_container_link(netns_path: str, ifname: str) -> None:
    """``ip -n NETNS link del IFNAME``, if both are there."""
    try:
        fd, cont = open_container(netns_path)
    except CNIError:
        return                                  # no namespace (any more): nothing to remove
    try:
        with cont:
            cont.delete_link(ifname)
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
    finally:
        os.close(fd)
