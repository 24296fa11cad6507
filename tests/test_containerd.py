"""pynetlink-cni under containerd: ``ctr run --cni --rootfs DIR`` wires a
container through go-cni (the library containerd's CRI uses for Kubernetes
pods) from the conflist in /etc/cni/net.d, with plugins from /opt/cni/bin,
both tmpfs inside the sandbox (tests/runtime_sandbox.py), where containerd
runs with its own root, state and socket.  Through both execution modes:
the shim with ``pynetlink-cni daemon``, and exec mode.  Kernel state is
judged with ``ip -j``."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time

import pytest

from runtime_sandbox import (MODES, REFERENCE_DIR, Containerd, Node, cni_cache, dual_stack_conflist,
                             global_addresses, leases, missing_programs)

pytestmark = [
    pytest.mark.runtime,
    pytest.mark.skipif(bool(missing_programs(("containerd", "ctr"))),
                       reason=f"not installed: {missing_programs(('containerd', 'ctr'))}"),
]

NETWORK, BRIDGE = "pnctr", "pnctr0"
SUBNET4, GATEWAY4 = "198.51.100.0/24", "198.51.100.1"
SUBNET6, GATEWAY6 = "2001:db8:2::/64", "2001:db8:2::1"
CONFLIST = dual_stack_conflist(NETWORK, BRIDGE, SUBNET4, GATEWAY4, SUBNET6, GATEWAY6)
BIN_DIR, CONF_DIR = "/opt/cni/bin", "/etc/cni/net.d"
REFERENCE_PLUGINS = ("host-local", "loopback")      # go-cni adds the loopback network itself
SECONDS = 15


class ContainerdNode(Node):
    """A sandboxed node: pynetlink-cni and the reference plugins it needs in
    /opt/cni/bin, the conflist in /etc/cni/net.d, containerd running."""

    def __init__(self, mode: str) -> None:
        super().__init__(mode, BIN_DIR)
        try:
            for plugin in REFERENCE_PLUGINS:
                os.symlink(os.path.join(REFERENCE_DIR, plugin), self.sandbox.path(f"{BIN_DIR}/{plugin}"))
            self.sandbox.write(f"{CONF_DIR}/10-{NETWORK}.conflist", json.dumps(CONFLIST))
            self.ctr = Containerd(self.sandbox)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            if getattr(self, "ctr", None) is not None:
                assert self.ctr.stop() == 0, self.sandbox.read(Containerd.LOG)
        finally:
            super().close()


@pytest.fixture(params=MODES)
def node(request):
    """containerd and pynetlink-cni (in one execution mode) in a fresh
    sandbox; in daemon mode the daemon must have served the test."""
    n = ContainerdNode(request.param)
    yield n
    try:
        if n.daemon:
            assert n.served() > 0, "the daemon served none of this test's requests"
    finally:
        n.close()


def bounded_wait(script: str, iterations: int = 300) -> str:
    """Shell: run ``script`` at most ``iterations`` times, 0.1 s apart, until it succeeds."""
    return f"i=0; until {script}; do i=$((i+1)); [ $i -ge {iterations} ] && exit 9; sleep 0.1; done"


def pings(address: str) -> str:
    """Shell: ping ``address`` until it answers (IPv6 waits for DAD), or exit 9."""
    return bounded_wait(f"ping -c 1 -W 1 {address} >/dev/null", iterations=SECONDS * 10)


def links_settle_to(node: ContainerdNode, names: set) -> bool:
    """The sandbox's links become ``names`` within SECONDS."""
    deadline = time.monotonic() + SECONDS
    while {link["ifname"] for link in node.sandbox.ip("link", "show")} != names:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def task_pid(node: ContainerdNode, name: str, proc: subprocess.Popen) -> int:
    """The pid (in the sandbox) of container ``name``'s task once it runs:
    ctr hands go-cni /proc/PID/ns/net as the container's namespace."""
    deadline = time.monotonic() + SECONDS
    while proc.poll() is None and time.monotonic() < deadline:
        for line in node.ctr("tasks", "list").stdout.splitlines()[1:]:
            task, pid, status = line.split()
            if task == name and status == "RUNNING":
                return int(pid)
        time.sleep(0.05)
    raise AssertionError(f"task {name} never ran; ctr: {proc.poll()}")


def test_ctr_container_gets_both_addresses_from_the_conflist(node):
    go = "/tmp/pntest-go"
    proc = subprocess.Popen(node.ctr.run_command("c1", "/bin/sh", "-c", bounded_wait(f"[ -e {go} ]")),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        pid = task_pid(node, "c1", proc)
        link = json.loads(node.sandbox.run("nsenter", "-t", str(pid), "-n", "ip", "-j", "addr", "show",
                                           "dev", "eth0").stdout)[0]
        got = global_addresses(link)
    finally:
        node.sandbox.write(f"/run/pnsandbox/rootfs{go}", "")
        out, _ = proc.communicate(timeout=60)
        os.unlink(node.sandbox.path(f"/run/pnsandbox/rootfs{go}"))
    assert proc.returncode == 0, out
    assert ipaddress.ip_interface(got["inet"]).network == ipaddress.ip_network(SUBNET4)
    assert ipaddress.ip_interface(got["inet6"]).network == ipaddress.ip_network(SUBNET6)


def test_ctr_container_pings_the_gateway_over_ipv4_and_ipv6(node):
    done = subprocess.run(node.ctr.run_command("c1", "/bin/sh", "-c", f"{pings(GATEWAY4)} && {pings(GATEWAY6)}"),
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ctr_run_rm_leaves_no_link_lease_cache_or_netns(node):
    done = subprocess.run(node.ctr.run_command("c1", "/bin/ip", "-o", "addr", "show", "dev", "eth0"),
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0 and "scope global" in done.stdout, done.stdout + done.stderr
    # ctr's DEL names no namespace (its task has gone): the kernel removes the
    # host-side veth with the container's namespace, asynchronously
    assert links_settle_to(node, {"lo", BRIDGE}), node.sandbox.ip("link", "show")
    assert leases(node.sandbox, NETWORK) == set()
    assert cni_cache(node.sandbox) == []
    assert node.ctr("containers", "list", "--quiet").stdout == ""
