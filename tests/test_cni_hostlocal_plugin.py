"""pynetlink-cni with host-local IPAM in-process, executed as a runtime
executes it (the machinery of test_cni.py): no host-local executable is
needed, PYNETLINK_CNI_IPAM=exec brings it back, the reference bridge
plugin (executing the reference host-local) and ours share one network's
addresses, and a failed allocation leaves nothing behind."""
from __future__ import annotations

import ipaddress

import pytest

import test_cni
from test_cni import (PLUGIN, REFERENCE, Runtime, allocations, assert_error, assert_nothing_left,
                      bridge_conf, host_local, needs_reference, validate_result)

# test_cni.py's fixtures: its CNI bin directory, scratch host and container namespaces
plugin_dir, make_ns, host, container = test_cni.plugin_dir, test_cni.make_ns, test_cni.host, test_cni.container


@pytest.fixture
def alone(host, plugin_dir):
    """A runtime whose CNI_PATH has our plugin only: no host-local executable."""
    return Runtime(host, [plugin_dir])


def test_add_check_del_allocate_in_process_without_the_executable(alone, host, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0",
                       ipam=host_local(tmp_path, "192.0.2.0/24", "2001:db8:1::/64"))
    result = alone.ok("ADD", conf, netns=container.path)
    validate_result(result, "1.1.0")
    assert [ip["address"] for ip in result["ips"]] == ["192.0.2.2/24", "2001:db8:1::2/64"]
    assert sorted(allocations(tmp_path)) == ["192.0.2.2", "2001:db8:1::2"]
    alone.ok("CHECK", dict(conf, prevResult=result), netns=container.path)
    alone.ok("DEL", conf, netns=container.path)
    assert_nothing_left(host, container, tmp_path)


def test_pynetlink_cni_ipam_exec_executes_host_local(alone, host, container, tmp_path):
    out = alone.exec("ADD", bridge_conf(PLUGIN, tmp_path), netns=container.path,
                     env={"PYNETLINK_CNI_IPAM": "exec"})
    assert_error(out, 7, "1.0.0", "host-local", "not found in CNI_PATH")
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)


def test_exhaustion_is_the_references_error_and_leaves_no_veth(alone, host, make_ns, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, ipam=host_local(tmp_path, "192.0.2.0/30"))
    first, second = make_ns(), make_ns()
    alone.ok("ADD", conf, netns=first.path)
    out = alone.exec("ADD", conf, netns=second.path, container_id="pntest-ctr2")
    assert_error(out, 999, "1.0.0", "no IP addresses available in range set: 192.0.2.1-192.0.2.2")
    assert second.link_names() == {"lo"}
    alone.ok("DEL", conf, netns=first.path)
    assert_nothing_left(host, first, tmp_path)


@needs_reference
def test_the_reference_bridge_and_ours_share_a_network_without_collision(host, plugin_dir, make_ns,
                                                                         tmp_path):
    runtime = Runtime(host, [plugin_dir, REFERENCE])
    containers, given = [], []
    for i in range(6):
        kind = ("bridge", PLUGIN)[i % 2]
        containers.append((kind, make_ns(), f"pntest-ctr{i}"))
        conf = bridge_conf(kind, tmp_path)
        result = runtime.ok("ADD", conf, netns=containers[-1][1].path, container_id=containers[-1][2])
        given.append(ipaddress.ip_interface(result["ips"][0]["address"]))
    assert len(set(given)) == 6 and sorted(allocations(tmp_path)) == sorted(str(g.ip) for g in given)
    for kind, ns, cid in containers:                 # each DEL by the other implementation
        other = PLUGIN if kind == "bridge" else "bridge"
        runtime.ok("DEL", bridge_conf(other, tmp_path), netns=ns.path, container_id=cid)
    assert allocations(tmp_path) == []
    assert host.link_names() <= {"lo", "cnitest0"}


def test_runtime_config_ips_give_the_container_the_requested_address(alone, host, container, tmp_path):
    conf = dict(bridge_conf(PLUGIN, tmp_path), runtimeConfig={"ips": ["192.0.2.77/24"]})
    result = alone.ok("ADD", conf, netns=container.path)
    assert [ip["address"] for ip in result["ips"]] == ["192.0.2.77/24"]
    assert [a["local"] for a in container.addresses("eth0") if a["family"] == "inet"] == ["192.0.2.77"]
    alone.ok("DEL", conf, netns=container.path)
    assert_nothing_left(host, container, tmp_path)


def test_gc_through_the_plugin_releases_what_no_valid_attachment_holds(alone, host, make_ns, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0",
                       ipam=host_local(tmp_path, "192.0.2.0/24"))
    kept, stale = make_ns(), make_ns()
    alone.ok("ADD", conf, netns=kept.path, container_id="pntest-kept")
    alone.ok("ADD", conf, netns=stale.path, container_id="pntest-stale")
    attachments = [{"containerID": "pntest-kept", "ifname": "eth0"}]
    alone.ok("GC", dict(conf, **{"cni.dev/valid-attachments": attachments}), netns=None)
    assert allocations(tmp_path) == ["192.0.2.2"]


def test_status_through_the_plugin_is_ready_with_host_local_in_process(alone, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0",
                       ipam=host_local(tmp_path, "192.0.2.0/24"))
    assert alone.exec("STATUS", conf, netns=None).rc == 0
