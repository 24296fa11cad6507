"""Promiscuous mode (``set_link(promisc=)``, pynetlink.links): the flag the
CNI plugin's ``promiscMode`` needs, checked against the kernel with ``ip -j``
in scratch namespaces, and ``Link.promisc`` read from the flags."""
from __future__ import annotations

import pytest

import pynetlink as pn
from pynetlink._core import IFF_PROMISC


# The carrier flags follow the link's carrier, which the kernel updates
# asynchronously (linkwatch) after a link comes up: not ours to compare.
CARRIER = {"NO-CARRIER", "LOWER_UP", "M-DOWN"}


def flags(ns, name: str) -> set:
    return set(ns.link(name)["flags"]) - CARRIER


def test_promisc_on_sets_only_promisc(ns, handle, veth):
    handle.interface_up("va")
    before = flags(ns, "va")
    handle.set_link("va", promisc=True)
    assert flags(ns, "va") == before | {"PROMISC"}
    assert ns.link("va")["promiscuity"] == 1
    assert handle.get_link("va").promisc is True


def test_promisc_off_clears_it_and_keeps_the_admin_state(ns, handle, veth):
    handle.set_link("va", promisc=True, up=True)
    handle.set_link("va", promisc=False)
    link = ns.link("va")
    assert "PROMISC" not in link["flags"] and "UP" in link["flags"]
    assert link["promiscuity"] == 0
    assert handle.get_link("va").promisc is False


def test_promisc_twice_counts_once(ns, handle, veth):
    handle.set_link("va", promisc=True)
    handle.set_link("va", promisc=True)
    assert ns.link("va")["promiscuity"] == 1
    handle.set_link("va", promisc=False)
    assert ns.link("va")["promiscuity"] == 0


def test_promisc_must_be_a_bool(handle, veth):
    with pytest.raises(TypeError, match="promisc"):
        handle.set_link("va", promisc=1)


def test_promisc_is_undone_by_a_failed_transaction(ns, handle, veth):
    with pytest.raises(OSError, match="No such device"):
        with handle.batch("rollback") as b:
            b.set_link("va", promisc=True)
            b.set_mtu("nope0", 1400)
    assert "PROMISC" not in ns.link("va")["flags"]


@pytest.mark.unit
def test_link_promisc_property_reads_the_flag():
    link = pn.Link(index=1, name="x", flags=IFF_PROMISC, mtu=1500, master=0,
                   group=0, txqlen=0)
    assert link.promisc and not link.up
