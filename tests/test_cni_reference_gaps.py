"""Where pynetlink-cni used to differ from the reference bridge plugin
(issue 12's "smaller differences"), each side by side with the reference
(Debian's containernetworking-plugins) where it has something to say:

- with ``isGateway``, the bridge's MAC address is pinned to the address
  the bridge had before the pod's port joined (the reference's), not to
  the port's;
- a second network on a bridge that carries another network's IPv4
  gateway (or an overlapping IPv6 one) is refused, as the reference
  refuses it, instead of merging both into one layer-2 domain;
- a prevResult interface that is no interface name is a decoding error
  (6) in CHECK, not an internal error;
- a configuration nested too deeply to decode is error 6 for every
  command, never a traceback."""
from __future__ import annotations

import json

import pytest

from conftest import sh
import test_cni
from test_cni import (PLUGIN, REFERENCE, Runtime, allocations, bridge_conf, host_local, host_veths,
                      needs_reference)

make_ns, host, container, plugin_dir = test_cni.make_ns, test_cni.host, test_cni.container, test_cni.plugin_dir
BRIDGE = "cnitest0"


def bridge_link(host) -> dict:
    [link] = host.ip("-d", "link", "show", BRIDGE)
    return link


def addr_assign_type(host) -> str:
    return host.run("cat", f"/sys/class/net/{BRIDGE}/addr_assign_type").stdout.strip()


@pytest.fixture
def runtime(host, plugin_dir):
    return Runtime(host, [plugin_dir, REFERENCE])


# -- the bridge's MAC ----------------------------------------------------------------------------

@needs_reference
@pytest.mark.parametrize("kind", ["bridge", PLUGIN])
def test_a_gateway_pins_the_bridge_to_the_mac_it_had_before_the_port_joined(kind, host, container,
                                                                            runtime, tmp_path):
    sh("ip", "-n", host.name, "link", "add", BRIDGE, "type", "bridge")
    own = bridge_link(host)["address"]
    result = runtime.ok("ADD", bridge_conf(kind, tmp_path), netns=container.path)
    [veth] = host_veths(host)
    assert bridge_link(host)["address"] == own != host.ip("link", "show", veth)[0]["address"]
    assert addr_assign_type(host) == "3"                 # NET_ADDR_SET: it no longer follows ports
    assert result["interfaces"][0] == {"name": BRIDGE, "mac": own}


@needs_reference
@pytest.mark.parametrize("kind", ["bridge", PLUGIN])
def test_without_a_gateway_the_bridge_follows_its_ports(kind, host, container, runtime, tmp_path):
    runtime.ok("ADD", bridge_conf(kind, tmp_path, isGateway=False), netns=container.path)
    assert addr_assign_type(host) != "3"


# -- two networks, one bridge --------------------------------------------------------------------

def second_network(kind: str, data_dir, subnet: str) -> dict:
    conf = bridge_conf(kind, data_dir)
    conf["name"] = "pntest-other"
    conf["ipam"] = host_local(data_dir, subnet)
    return conf


@needs_reference
@pytest.mark.parametrize("kind", ["bridge", PLUGIN])
def test_a_second_ipv4_network_on_the_bridge_is_refused_as_the_reference_refuses(
        kind, host, make_ns, runtime, tmp_path):
    first, second = make_ns(), make_ns()
    runtime.ok("ADD", bridge_conf(kind, tmp_path / "a"), netns=first.path)
    out = runtime.exec("ADD", second_network(kind, tmp_path / "b", "198.51.100.0/24"),
                       netns=second.path, container_id="pntest-ctr2")
    assert out.rc == 1
    assert ('"cnitest0" already has an IP address different from 198.51.100.1/24'
            in out.doc["msg"] + out.doc.get("details", ""))
    gateways = [a["local"] for a in host.ip("-4", "addr", "show", BRIDGE)[0]["addr_info"]]
    assert gateways == ["192.0.2.1"]


def test_the_refusal_is_error_7_and_the_refused_pod_leaves_nothing(host, make_ns, runtime, tmp_path):
    first, second = make_ns(), make_ns()
    runtime.ok("ADD", bridge_conf(PLUGIN, tmp_path / "a"), netns=first.path)
    out = runtime.exec("ADD", second_network(PLUGIN, tmp_path / "b", "198.51.100.0/24"),
                       netns=second.path, container_id="pntest-ctr2")
    assert (out.rc, out.doc["code"]) == (1, 7)
    assert out.doc["msg"] == ('failed to set bridge addr: "cnitest0" already has an IP address '
                              'different from 198.51.100.1/24')
    assert len(host_veths(host)) == 1                    # the first pod's only
    assert second.link_names() == {"lo"}
    assert allocations(tmp_path / "b") == []


def ipv6_then(kind: str, make_ns, runtime, tmp_path, subnet: str):
    """A pod on an IPv6 network (2001:db8:1::/64), then one on a second
    network over ``subnet`` on the same bridge: the second ADD's Outcome."""
    first, second = make_ns(), make_ns()
    conf = bridge_conf(kind, tmp_path / "a", ipam=host_local(tmp_path / "a", "2001:db8:1::/64"))
    runtime.ok("ADD", conf, netns=first.path)
    return runtime.exec("ADD", second_network(kind, tmp_path / "b", subnet), netns=second.path,
                        container_id="pntest-ctr2")


@needs_reference
@pytest.mark.parametrize("kind", ["bridge", PLUGIN])
def test_ipv6_networks_that_do_not_overlap_share_the_bridge(kind, host, make_ns, runtime, tmp_path):
    assert ipv6_then(kind, make_ns, runtime, tmp_path, "2001:db8:2::/64").rc == 0
    gateways = {a["local"] for a in host.ip("-6", "addr", "show", BRIDGE)[0]["addr_info"]
                if a["scope"] == "global"}
    assert gateways == {"2001:db8:1::1", "2001:db8:2::1"}


@needs_reference
@pytest.mark.parametrize("kind", ["bridge", PLUGIN])
def test_overlapping_ipv6_networks_are_refused(kind, host, make_ns, runtime, tmp_path):
    out = ipv6_then(kind, make_ns, runtime, tmp_path, "2001:db8:1::/48")
    assert out.rc == 1 and "already has an IP address different from 2001:db8:1::1/48" in (
        out.doc["msg"] + out.doc.get("details", ""))


def test_the_same_network_again_is_no_clash(host, make_ns, runtime, tmp_path):
    pods = [make_ns() for _ in range(3)]
    for i, pod in enumerate(pods):
        runtime.ok("ADD", bridge_conf(PLUGIN, tmp_path), netns=pod.path, container_id=f"pntest-c{i}")
    assert len(host_veths(host)) == 3


# -- CHECK with a prevResult that names no interface ---------------------------------------------

@pytest.mark.parametrize("name", ["x" * 16, "a/b", "", 7])
def test_check_with_a_prevresult_interface_that_is_no_name_is_error_6(name, host, container, runtime,
                                                                      tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path)
    result["interfaces"][1]["name"] = name
    out = runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path)
    assert (out.rc, out.doc["code"]) == (1, 6), out
    assert "Traceback" not in out.stderr


# -- a configuration nested too deeply -----------------------------------------------------------

@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS", "GC"])
def test_a_configuration_nested_a_thousand_deep_is_error_6_not_a_traceback(command, host, container,
                                                                          runtime, tmp_path):
    conf = json.dumps(bridge_conf(PLUGIN, tmp_path))
    deep = conf[:-1] + ', "deep": ' + "[" * 1000 + "]" * 1000 + "}"
    out = runtime.exec(command, deep, netns=container.path, kind=PLUGIN)
    assert (out.rc, out.doc["code"]) == (1, 6), out
    assert "nested too deeply" in out.doc["msg"]
    assert out.stderr == ""
