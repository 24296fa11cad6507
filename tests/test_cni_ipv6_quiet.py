"""pynetlink-cni and IPv6 link-local addresses (issue 15), judged with ``ip -j``.

The plugin runs as a runtime runs it (see test_cni.py), with host-local
IPAM, in scratch namespaces.  The host end of the veth is a bridge port
and gets no IPv6 address unless ``"hostIPv6LinkLocal": true``; the
container end keeps the kernel's link-local address, as the reference
plugin leaves it, unless ``"ipv6LinkLocal": false`` and IPAM gives it no
IPv6 address.  An absent address proves something only once the link's
carrier event has been handled (``settled``: operstate UP).
"""
from __future__ import annotations

import pytest

from conftest import Netns
from test_cni import (PLUGIN, REFERENCE, Runtime, assert_error, bridge_conf,  # noqa: F401
                      container, host, host_local, host_veths, make_ns,  # (fixtures)
                      needs_reference, plugin_dir)
from test_ipv6_quiet import assert_usable_at_once, gets_link_local, inet6, settled

pytestmark = needs_reference        # host-local comes from the reference plugins

DUAL = ("192.0.2.0/24", "2001:db8::/64")


class ExecRuntime(Runtime):
    """test_cni's Runtime with the plugin always in exec mode (this tree's
    code, not whatever daemon may listen on the shim's default socket)."""

    def __init__(self, host: Netns, cni_path: list, no_daemon: str):
        super().__init__(host, cni_path)
        self.no_daemon = no_daemon

    def exec(self, command, conf, **kw):
        kw["env"] = dict(kw.get("env") or {}, PYNETLINK_CNI_SOCKET=self.no_daemon)
        return super().exec(command, conf, **kw)


@pytest.fixture
def runtime(host, plugin_dir, tmp_path):
    return ExecRuntime(host, [plugin_dir, REFERENCE], str(tmp_path / "no-daemon.sock"))


def add(runtime, container: Netns, data_dir, *ranges: str, **options) -> dict:
    """One ADD of the bridge plugin for ``container``; its result."""
    conf = bridge_conf(PLUGIN, data_dir, ipam=host_local(data_dir, *(ranges or DUAL[:1])),
                       **options)
    return runtime.ok("ADD", conf, netns=container.path)


def host_end(host: Netns) -> str:
    [name] = host_veths(host)
    return name


def v6_address(result: dict) -> str:
    [address] = [ip["address"].split("/")[0] for ip in result["ips"] if ":" in ip["address"]]
    return address


def test_host_end_has_no_ipv6_address(runtime, host, container, tmp_path):
    add(runtime, container, tmp_path)
    settled(host, host_end(host))
    assert inet6(host, host_end(host)) == []


def test_host_end_of_a_dual_stack_container_has_no_ipv6_address(runtime, host, container, tmp_path):
    add(runtime, container, tmp_path, *DUAL)
    settled(host, host_end(host))
    assert inet6(host, host_end(host)) == []


def test_host_ipv6_link_local_gives_the_host_end_a_link_local(runtime, host, container, tmp_path):
    add(runtime, container, tmp_path, hostIPv6LinkLocal=True)
    assert gets_link_local(host, host_end(host))


def test_container_end_keeps_the_kernels_link_local_by_default(runtime, host, container, tmp_path):
    add(runtime, container, tmp_path)
    assert gets_link_local(container, "eth0")


def test_ipv6_link_local_false_without_ipv6_from_ipam_leaves_the_container_end_without_ipv6(
        runtime, host, container, tmp_path):
    add(runtime, container, tmp_path, ipv6LinkLocal=False)
    settled(container, "eth0")
    assert inet6(container, "eth0") == []


def test_ipv6_link_local_false_with_ipv6_from_ipam_keeps_the_link_local(runtime, host, container,
                                                                        tmp_path):
    add(runtime, container, tmp_path, *DUAL, ipv6LinkLocal=False)
    assert gets_link_local(container, "eth0")


def test_dual_stack_container_address_is_usable_at_once(runtime, host, container, tmp_path):
    result = add(runtime, container, tmp_path, *DUAL)
    assert_usable_at_once(container, "eth0", v6_address(result))


def test_two_dual_stack_containers_ping6_each_other_at_the_first_try(runtime, host, make_ns,
                                                                     tmp_path):
    first, second = make_ns(), make_ns()
    conf = bridge_conf(PLUGIN, tmp_path, ipam=host_local(tmp_path, *DUAL))
    runtime.ok("ADD", conf, netns=first.path, container_id="pntest-ctr1")
    target = v6_address(runtime.ok("ADD", conf, netns=second.path, container_id="pntest-ctr2"))
    out = first.run("ping", "-6", "-n", "-c1", "-W2", target, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("key", ["ipv6LinkLocal", "hostIPv6LinkLocal"])
def test_a_link_local_key_that_is_not_a_boolean_is_error_7_and_makes_nothing(runtime, host,
                                                                             container, tmp_path,
                                                                             key):
    conf = bridge_conf(PLUGIN, tmp_path, **{key: "yes"})
    assert_error(runtime.exec("ADD", conf, netns=container.path), 7, conf["cniVersion"], key)
    assert host.link_names() == {"lo"} and container.link_names() == {"lo"}
