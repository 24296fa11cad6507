"""The kernel's words and the library's kept apart: ``ext_ack`` holds only
what the kernel said in its extended ACK, ``detail`` only our own text."""
from __future__ import annotations

import errno
import pickle

import pytest

import pynetlink as pn
from pynetlink.batch import Result
from pynetlink.errors import error_for

pytestmark = pytest.mark.unit


def test_str_shows_the_kernels_text_after_a_colon():
    e = error_for(errno.EINVAL, "set_mtu", ("va", 10), "va", "mtu less than device minimum")
    assert str(e) == "set_mtu('va', 10): [Errno 22] Invalid argument: mtu less than device minimum"


def test_str_shows_the_librarys_detail_in_parentheses():
    e = error_for(errno.EBADF, "get_link", ("lo",), "lo", detail="the netlink handle is closed")
    assert str(e) == "get_link('lo'): [Errno 9] Bad file descriptor (the netlink handle is closed)"


def test_str_shows_kernel_text_and_detail_apart_after_the_interface():
    e = error_for(errno.ENODEV, "set_interface_master", ("va", "br0"), "br9", "no such bridge",
                  detail="ours")
    assert str(e).endswith("No such device: 'br9': no such bridge (ours)")


def test_detail_and_ext_ack_default_to_empty():
    e = error_for(errno.EEXIST, "create_bridge", ("br0",), "br0")
    assert (e.ext_ack, e.detail, str(e)) == ("", "", "create_bridge('br0'): [Errno 17] File exists")


@pytest.mark.parametrize("cls, fields", [
    (pn.NetlinkError, {}),
    (pn.ExchangeError, {"replies": [None], "sent": 1}),
    (pn.BatchError, {"results": [Result("set_mtu", ("va", 1), "va", "failed", errno.ETIMEDOUT)]}),
], ids=["netlink", "exchange", "batch"])
def test_pickling_keeps_detail_ext_ack_and_the_declared_fields(cls, fields):
    e = error_for(errno.ETIMEDOUT, "set_mtu", ("va", 1), "va", "kernel text", detail="our text",
                  cls=cls, **fields)
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is type(e) and isinstance(copy, TimeoutError)
    assert (copy.ext_ack, copy.detail, str(copy)) == ("kernel text", "our text", str(e))
    assert all(getattr(copy, k) == v for k, v in fields.items())


def test_declared_errors_take_detail_as_a_keyword():
    e = pn.ExchangeError(errno.ENOBUFS, "get_link", ("lo",), "lo", "", [None], 1, detail="dropped")
    assert (e.replies, e.sent, e.detail, e.ext_ack) == ([None], 1, "dropped", "")


def test_kernel_extended_ack_lands_in_ext_ack_with_no_detail(handle, veth):
    with pytest.raises(pn.NetlinkError) as info:
        handle.set_mtu("va", 10)
    assert "mtu less than device minimum" in info.value.ext_ack and info.value.detail == ""
