"""README "CNI plugin": the claims tests/test_cni.py does not pin down —
the IPAM plugin run with the same stdin and environment, one RTM_NEWLINK
making the veth with the container end born inside CNI_NETNS, the
container end's MAC from ``runtimeConfig.mac`` and ``args.cni.mac``,
``dns`` replacing the IPAM plugin's, the refusal (error 2) of
``disableContainerInterface`` and ``portIsolation``,
error 5 (I/O) and error 101 (a delegated plugin failing without a CNI
error), each failure leaving nothing behind.

The plugin runs as a runtime runs it (as test_cni.py does): the executable
that ``python3 -m pynetlink.cni --install DIR`` writes, executed inside a
scratch host namespace with the CNI_* environment and the configuration on
stdin, for a scratch container namespace; its IPAM plugin is a fake that
answers what its configuration says (no reference plugins needed).  One
test runs ``pynetlink.cni.run`` in a thread inside the host namespace, to
read the messages it sends."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Optional

import pytest

import nlwire
from conftest import Netns, in_thread
from nlwire import C
from pynetlink import cni
from test_readme_claims import name_of, wire  # noqa: F401  (fixture)

PLUGIN = "pynetlink-cni"
FAKE_IPAM = "pntest-claims-ipam"
FAKE_IPAM_SOURCE = """#!PYTHON -I
import json, os, sys
raw = sys.stdin.read()
ipam = json.loads(raw)["ipam"]
if "log" in ipam:
    with open(ipam["log"], "a") as f:
        f.write(json.dumps({"stdin": raw, "env": {k: v for k, v in os.environ.items()
                                                  if k.startswith("CNI_")}}) + "\\n")
if os.environ["CNI_COMMAND"] == "ADD":
    if ipam.get("garbage"):
        print("panic: not a CNI answer")
        sys.exit(3)
    print(json.dumps(ipam["result"]))
"""
RESULT = {"cniVersion": "1.0.0", "ips": [{"address": "192.0.2.7/24", "gateway": "192.0.2.1"}],
          "dns": {"nameservers": ["192.0.2.53"], "search": ["ipam.example"]}}


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("cni-claims-bin")
    subprocess.run([sys.executable, "-m", "pynetlink.cni", "--install", str(d)], check=True,
                   capture_output=True, timeout=60)
    fake = d / FAKE_IPAM
    fake.write_text(FAKE_IPAM_SOURCE.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    return str(d)


@pytest.fixture
def host():
    n = Netns()
    yield n
    n.remove()


@pytest.fixture
def container():
    n = Netns()
    yield n
    n.remove()


def conf(**options) -> dict:
    base = {"cniVersion": "1.0.0", "name": "pntest-claims", "type": PLUGIN, "bridge": "cnitest0",
            "isGateway": True, "ipam": {"type": FAKE_IPAM, "result": RESULT}}
    base.update(options)
    return base


def cni_env(plugin_dir: str, container: Netns, cni_args: str = "") -> dict:
    return {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pntest-claims1", "CNI_NETNS": container.path,
            "CNI_IFNAME": "eth0", "CNI_ARGS": cni_args, "CNI_PATH": plugin_dir}


def run(plugin_dir: str, host: Netns, container: Netns, config, *, cni_args: str = "",
        wrapper: tuple = ()) -> tuple:
    """One ADD of ``config`` (a dict, or the exact text to send): (exit
    status, decoded stdout or None).  ``wrapper``: words to run the plugin
    through, inside the host namespace."""
    env = dict(cni_env(plugin_dir, container, cni_args),
               PATH=os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))
    text = config if isinstance(config, str) else json.dumps(config)
    proc = subprocess.run(["ip", "netns", "exec", host.name, *wrapper,
                           os.path.join(plugin_dir, PLUGIN)], input=text, env=env,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else None)


def assert_nothing_left(host: Netns, container: Netns) -> None:
    """No veth on the host (the bridge may stay), nothing but lo in the container."""
    assert host.link_names() <= {"lo", "cnitest0"}
    assert container.link_names() == {"lo"}


def error_code(out: Optional[dict]) -> int:
    assert out is not None and set(out) <= {"cniVersion", "code", "msg", "details"}, out
    return out["code"]


# -- the IPAM plugin ----------------------------------------------------------------------------

def test_the_ipam_plugin_gets_the_same_stdin_and_environment(plugin_dir, host, container, tmp_path):
    log = tmp_path / "ipam.log"
    text = json.dumps(conf(ipam={"type": FAKE_IPAM, "result": RESULT, "log": str(log)}), indent=1)
    rc, result = run(plugin_dir, host, container, text, cni_args="IgnoreUnknown=1;K8S_POD_NAME=p")
    assert rc == 0, result
    [call] = [json.loads(line) for line in log.read_text().splitlines()]
    assert call == {"stdin": text, "env": cni_env(plugin_dir, container, "IgnoreUnknown=1;K8S_POD_NAME=p")}


# -- the container end's MAC -------------------------------------------------------------------

@pytest.mark.parametrize("where", ["runtimeConfig", "args"])
def test_the_container_ends_mac_comes_from_the_config(plugin_dir, host, container, where):
    mac = "02:00:00:00:00:42"
    option = ({"runtimeConfig": {"mac": mac}} if where == "runtimeConfig"
              else {"args": {"cni": {"mac": mac}}})
    rc, result = run(plugin_dir, host, container, conf(**option))
    assert rc == 0, result
    assert container.link("eth0")["address"] == mac
    assert [i["mac"] for i in result["interfaces"] if i["name"] == "eth0"] == [mac]


# -- dns --------------------------------------------------------------------------------------

def test_dns_of_the_config_replaces_the_ipam_plugins(plugin_dir, host, container):
    dns = {"nameservers": ["198.51.100.53"], "domain": "conf.example"}
    rc, result = run(plugin_dir, host, container, conf(dns=dns))
    assert rc == 0, result
    assert result["dns"] == dns


def test_without_dns_in_the_config_the_ipam_plugins_is_passed_on(plugin_dir, host, container):
    rc, result = run(plugin_dir, host, container, conf())
    assert rc == 0, result
    assert result["dns"] == RESULT["dns"]


# -- refused options -----------------------------------------------------------------------------

REFUSED = {"disableContainerInterface": True, "portIsolation": True}


@pytest.mark.parametrize("key", list(REFUSED))
def test_unimplemented_option_is_refused_with_error_2(plugin_dir, host, container, key):
    rc, out = run(plugin_dir, host, container, conf(**{key: REFUSED[key]}))
    assert (rc != 0, error_code(out)) == (True, 2)
    assert key in out["msg"] + out.get("details", "")
    assert_nothing_left(host, container)


DEFAULTS = {"ipMasqBackend": "", "disableContainerInterface": False, "portIsolation": False}


def test_those_options_at_their_defaults_are_accepted(plugin_dir, host, container):
    rc, result = run(plugin_dir, host, container, conf(**DEFAULTS))
    assert rc == 0, result
    assert "eth0" in container.link_names()


# -- error codes 5 and 101 -------------------------------------------------------------------------

READ_ONLY_PROC_SYS = ("unshare", "-m", "--propagation", "private", "sh", "-c",
                      'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys '
                      '&& exec "$0"')


def test_a_sysctl_that_cannot_be_written_is_error_5_and_leaves_nothing(plugin_dir, host, container):
    """isGateway turns forwarding on; with /proc/sys read-only (in a mount
    namespace of the plugin's own) that write fails: an I/O error."""
    host.run("sysctl", "-qw", "net.ipv4.ip_forward=0")
    rc, out = run(plugin_dir, host, container, conf(), wrapper=READ_ONLY_PROC_SYS)
    assert (rc != 0, error_code(out)) == (True, 5)
    assert "ip_forward" in out["msg"]
    assert_nothing_left(host, container)


def test_an_ipam_plugin_failing_without_a_cni_error_is_error_101(plugin_dir, host, container):
    ipam = {"type": FAKE_IPAM, "garbage": True}
    rc, out = run(plugin_dir, host, container, conf(ipam=ipam))
    assert (rc != 0, error_code(out)) == (True, 101)
    assert FAKE_IPAM in out["msg"] and "panic: not a CNI answer" in out.get("details", "")
    assert_nothing_left(host, container)


# -- one RTM_NEWLINK: the container end born inside CNI_NETNS --------------------------------------

def test_add_makes_the_veth_in_one_request_with_the_container_end_born_inside(plugin_dir, host,
                                                                             container, wire):
    """Run in-process, in a thread inside the host namespace (no isGateway:
    nothing is written under /proc/sys of the host)."""
    environ = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pntest-claims1", "CNI_NETNS": container.path,
               "CNI_IFNAME": "eth0", "CNI_PATH": plugin_dir,
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    out, code = in_thread(cni.run, environ, json.dumps(conf(isGateway=False)).encode(),
                          netns_path=host.path)
    assert code == 0, out
    veths = [m for m in wire.messages() if name_of(m) == "RTM_NEWLINK"
             and C.IFLA_LINKINFO in m.attrs and nlwire.linkinfo(m.attrs).kind == b"veth"]
    [veth] = veths
    _, peer = nlwire.veth_peer(nlwire.linkinfo(veth.attrs).data)
    assert (peer.get(C.IFLA_IFNAME).string(), C.IFLA_NET_NS_FD in peer) == (b"eth0", True)
    assert veth.attrs.get(C.IFLA_MASTER).u32() == host.link("cnitest0")["ifindex"]
    assert veth.fixed.flags & C.IFF_UP == C.IFF_UP
    links = [m for m in wire.messages() if m.type in nlwire.LINK_TYPES and m is not veth]
    moved_or_renamed = [m for m in links if C.IFLA_NET_NS_FD in m.attrs or C.IFLA_NET_NS_PID in m.attrs
                        or (m.fixed.index and C.IFLA_IFNAME in m.attrs)]
    assert moved_or_renamed == []
    assert "UP" in container.link("eth0")["flags"]
