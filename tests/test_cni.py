"""pynetlink-cni, executed as a runtime executes a CNI plugin: fork/exec of
``<CNI_PATH>/<type>`` with the CNI_* environment and the configuration on
stdin, inside a scratch "host" namespace (``ip netns exec``), for a scratch
container namespace.  The reference plugins of Debian's
``containernetworking-plugins`` (/usr/lib/cni) run beside it on the same
configurations: same kernel state (``ip -j`` on both sides, random names,
MACs and indexes aside), same results, and results that have the spec's
structure.  IPAM state lives in temporary directories; every address comes
from the documentation ranges."""
from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import sys
import time
from typing import Optional

import pytest

from conftest import Netns, sh
from pynetlink import cni

REFERENCE = "/usr/lib/cni"
PLUGIN = "pynetlink-cni"
FAKE_IPAM = "pntest-ipam"

needs_reference = pytest.mark.skipif(
    not all(os.access(f"{REFERENCE}/{p}", os.X_OK) for p in ("bridge", "host-local", "loopback", "tuning")),
    reason=f"the reference CNI plugins are not installed in {REFERENCE} "
           "(apt-get install containernetworking-plugins)")

MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")
HOST_VETH_RE = re.compile(r"^veth[0-9a-f]{8}$")


# -- executing plugins as a runtime does ---------------------------------------------------

class Outcome:
    """What a plugin run printed and returned."""

    def __init__(self, proc: subprocess.CompletedProcess):
        self.rc, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        self.doc = json.loads(proc.stdout) if proc.stdout.strip() else None

    def __repr__(self) -> str:
        return f"<Outcome rc={self.rc} stdout={self.stdout!r} stderr={self.stderr[-500:]!r}>"


class Runtime:
    """Runs plugins like a CNI runtime: the plugin named by ``type`` is
    looked up in CNI_PATH and executed inside the host namespace, with the
    CNI_* variables and the configuration on stdin."""

    def __init__(self, host: Netns, cni_path: list):
        self.host, self.cni_path = host, cni_path

    def find(self, kind: str) -> str:
        for directory in self.cni_path:
            if os.access(os.path.join(directory, kind), os.X_OK):
                return os.path.join(directory, kind)
        raise LookupError(f"{kind} not in {self.cni_path}")

    def exec(self, command: str, conf, *, netns: Optional[str], ifname: str = "eth0",
             container_id: str = "pntest-ctr1", cni_args: str = "", kind: Optional[str] = None,
             env: Optional[dict] = None) -> Outcome:
        """One plugin invocation; ``conf`` a dict (sent as JSON) or raw text."""
        kind = kind or conf["type"]
        environ = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                   "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
                   "CNI_NETNS": netns or "", "CNI_IFNAME": ifname, "CNI_ARGS": cni_args,
                   "CNI_PATH": ":".join(self.cni_path)}
        environ.update(env or {})
        environ = {k: v for k, v in environ.items() if v is not None}
        stdin = conf if isinstance(conf, str) else json.dumps(conf)
        proc = subprocess.run(["ip", "netns", "exec", self.host.name, self.find(kind)], input=stdin,
                              env=environ, capture_output=True, text=True, timeout=120)
        return Outcome(proc)

    def ok(self, command: str, conf, **kw) -> Optional[dict]:
        out = self.exec(command, conf, **kw)
        assert out.rc == 0, out
        return out.doc

    # a conflist, driven as libcni drives it

    def chain(self, conflist: dict, command: str, prev: Optional[dict] = None, **kw) -> Optional[dict]:
        """ADD each plugin in order, each getting the previous result as
        prevResult; DEL in reverse and CHECK in order, each with ``prev`` (the
        chain's final ADD result).  Returns the final result of an ADD."""
        plugins = conflist["plugins"] if command != "DEL" else conflist["plugins"][::-1]
        result = prev
        for plugin in plugins:
            conf = dict(plugin, cniVersion=conflist["cniVersion"], name=conflist["name"])
            if (result if command == "ADD" else prev) is not None:
                conf["prevResult"] = result if command == "ADD" else prev
            out = self.ok(command, conf, **kw)
            if command == "ADD":
                result = out
        return result


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    """A CNI bin directory with the pynetlink-cni executable (as
    ``python3 -m pynetlink.cni --install DIR`` writes it) and a fake IPAM
    plugin that logs its calls and answers what its config says."""
    d = tmp_path_factory.mktemp("cni-bin")
    out = subprocess.run([sys.executable, "-m", "pynetlink.cni", "--install", str(d)],
                         capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == str(d / PLUGIN)
    fake = d / FAKE_IPAM
    fake.write_text(FAKE_IPAM_SOURCE.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    return str(d)


FAKE_IPAM_SOURCE = """#!PYTHON -I
import json, os, sys
conf = json.load(sys.stdin)
ipam, command = conf["ipam"], os.environ["CNI_COMMAND"]
with open(ipam["log"], "a") as f:
    f.write(json.dumps({"command": command, "containerID": os.environ.get("CNI_CONTAINERID"),
                        "attachments": conf.get("cni.dev/valid-attachments")}) + "\\n")
failure = ipam.get("fail", {}).get(command)
if failure:
    print(json.dumps(dict(failure, cniVersion=conf["cniVersion"])))
    sys.exit(1)
if command == "ADD":
    print(json.dumps(dict(ipam["result"], cniVersion=conf["cniVersion"])))
"""


@pytest.fixture
def make_ns():
    """Scratch namespaces, made on demand and all removed after the test."""
    made = []

    def make() -> Netns:
        made.append(Netns())
        return made[-1]

    yield make
    for n in made:
        n.remove()


@pytest.fixture
def host(make_ns):
    return make_ns()


@pytest.fixture
def container(make_ns):
    return make_ns()


@pytest.fixture
def runtime(host, plugin_dir):
    return Runtime(host, [plugin_dir, REFERENCE])


def host_local(data_dir, *ranges, routes=None) -> dict:
    """A host-local IPAM section over ``ranges`` (one subnet each)."""
    conf = {"type": "host-local", "dataDir": str(data_dir),
            "ranges": [[{"subnet": r}] for r in ranges]}
    if routes is not None:
        conf["routes"] = routes
    return conf


def bridge_conf(kind: str, data_dir, version: str = "1.0.0", **options) -> dict:
    conf = {"cniVersion": version, "name": "pntest-net", "type": kind, "bridge": "cnitest0",
            "isGateway": True, "ipam": host_local(data_dir, "192.0.2.0/24")}
    conf.update(options)
    return {k: v for k, v in conf.items() if v is not None}


def allocations(data_dir) -> list:
    """The addresses host-local holds (one file named by each address)."""
    found = []
    for _, _, files in os.walk(data_dir):
        for name in files:
            try:
                found.append(str(ipaddress.ip_address(name)))
            except ValueError:
                pass
    return found


def host_veths(ns: Netns) -> list:
    return sorted(n for n in ns.link_names() if HOST_VETH_RE.match(n))


def assert_nothing_left(host: Netns, container: Netns, data_dir, bridge_allowed: bool = True) -> None:
    """No veth on the host (a bridge may stay: it is shared), nothing but lo
    in the container, no address held by host-local."""
    allowed = {"lo", "cnitest0"} if bridge_allowed else {"lo"}
    assert host.link_names() <= allowed, host.link_names()
    assert container.link_names() == {"lo"}
    assert allocations(data_dir) == []


# -- the spec's structures -------------------------------------------------------------------

def validate_result(doc: dict, version: str) -> None:
    """A success result as the spec (``version``) defines it."""
    assert doc["cniVersion"] == version
    assert set(doc) <= {"cniVersion", "interfaces", "ips", "routes", "dns"}
    interfaces = doc.get("interfaces", [])
    for iface in interfaces:
        assert set(iface) <= {"name", "mac", "sandbox", "mtu", "socketPath", "pciID"}
        assert isinstance(iface["name"], str) and iface["name"]
        assert MAC_RE.match(iface.get("mac", "00:00:00:00:00:00"))
        assert isinstance(iface.get("sandbox", ""), str)
    for ip in doc.get("ips", []):
        keys = {"address", "gateway", "interface"} | ({"version"} if version == "0.4.0" else set())
        assert set(ip) <= keys and "address" in ip
        address = ipaddress.ip_interface(ip["address"])
        if version == "0.4.0":
            assert ip["version"] == str(address.version)
        if "gateway" in ip:
            assert ipaddress.ip_address(ip["gateway"]).version == address.version
        if "interface" in ip:
            assert isinstance(ip["interface"], int) and 0 <= ip["interface"] < len(interfaces)
    for route in doc.get("routes", []):
        assert set(route) <= {"dst", "gw", "mtu", "advmss", "priority", "table", "scope"}
        dst = ipaddress.ip_network(route["dst"])
        if "gw" in route:
            assert ipaddress.ip_address(route["gw"]).version == dst.version
    dns = doc.get("dns", {})
    assert set(dns) <= {"nameservers", "domain", "search", "options"}
    assert all(isinstance(dns.get(k, []), list) for k in ("nameservers", "search", "options"))
    assert isinstance(dns.get("domain", ""), str)


def assert_error(out: Outcome, code: int, version: str, *needles: str) -> dict:
    """A failure reported as the spec's error JSON with ``code``."""
    assert out.rc != 0, out
    doc = out.doc
    assert doc is not None, out
    assert set(doc) <= {"cniVersion", "code", "msg", "details"} and {"cniVersion", "code", "msg"} <= set(doc)
    assert (doc["code"], doc["cniVersion"]) == (code, version), doc
    assert isinstance(doc["msg"], str) and doc["msg"]
    text = doc["msg"] + doc.get("details", "")
    for needle in needles:
        assert needle in text, doc
    return doc


def normalized_result(doc: dict) -> dict:
    """A result with the random parts (host veth name, MACs, sandbox path) masked."""
    doc = json.loads(json.dumps(doc))
    for iface in doc.get("interfaces", []):
        if HOST_VETH_RE.match(iface["name"]):
            iface["name"] = "VETH"
        if "mac" in iface:
            iface["mac"] = "MAC"
        if "sandbox" in iface:
            iface["sandbox"] = "SANDBOX"
    return doc


def assert_macs_are_the_kernels(doc: dict, host: Netns, container: Netns) -> None:
    for iface in doc["interfaces"]:
        ns = container if iface.get("sandbox") else host
        assert iface["mac"] == ns.link(iface["name"])["address"], iface


# -- kernel state, with random names, MACs and indexes masked ------------------------------------

VOLATILE = {"ifindex", "link_index", "link_netnsid", "stats", "stats64", "valid_life_time",
            "preferred_life_time", "fdb_n_learned"}
BRIDGE_ID_RE = re.compile(r"^[0-9a-f]{4}\.([0-9a-f]{1,2}:){5}[0-9a-f]{1,2}$")   # ip: "8000.b2:6:8a..."


def scrub(value, names: dict):
    """Drop indexes, counters and timers; mask MAC addresses, bridge ids
    (which hold one) and IPv6 link-local addresses (made from one); rename
    random interface names."""
    if isinstance(value, dict):
        return {k: scrub(v, names) for k, v in value.items()
                if k not in VOLATILE and not k.endswith("_timer")}
    if isinstance(value, list):
        return [scrub(v, names) for v in value]
    if isinstance(value, str):
        if value.startswith("fe80::"):
            return "LINK-LOCAL"
        if (MAC_RE.match(value) and value != "ff:ff:ff:ff:ff:ff") or BRIDGE_ID_RE.match(value):
            return "MAC"
        return names.get(value, value)
    return value


def kernel_state(ns: Netns, sysctls: tuple) -> dict:
    """Links, addresses, routes (every table) and some sysctls of a namespace."""
    names = {n: "VETH" for n in ns.link_names() if HOST_VETH_RE.match(n)}
    state = {
        "links": ns.ip("-d", "link", "show"),
        "addresses": [{"ifname": l["ifname"], "addr_info": l["addr_info"]}
                      for l in ns.ip("addr", "show")],
        "routes4": ns.ip("-d", "-4", "route", "show", "table", "all"),
        "routes6": ns.ip("-d", "-6", "route", "show", "table", "all"),
        "sysctls": dict(zip(sysctls, ns.run("cat", *sysctls, check=False).stdout.split()))
                   if sysctls else {},
    }
    state = scrub(state, names)
    for key in ("links", "addresses", "routes4", "routes6"):
        state[key] = sorted(state[key] or [], key=lambda x: json.dumps(x, sort_keys=True))
    return state


HOST_SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding",
                "/proc/sys/net/ipv6/conf/cnitest0/accept_ra",
                "/sys/class/net/cnitest0/addr_assign_type")
CONTAINER_SYSCTLS = ("/proc/sys/net/ipv6/conf/eth0/accept_dad",
                     "/proc/sys/net/ipv4/conf/eth0/arp_notify",
                     "/proc/sys/net/ipv6/conf/eth0/disable_ipv6",
                     "/proc/sys/net/ipv6/conf/lo/disable_ipv6")


def assert_same_state(pairs, seconds: float = 8.0) -> None:
    """Each (ns_a, ns_b, sysctls) reads the same, once the kernel's
    asynchronous work (DAD, carrier, bridge port states) has settled: polled
    every 0.2 s for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        states = [(kernel_state(a, s), kernel_state(b, s)) for a, b, s in pairs]
        if all(x == y for x, y in states) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for (a, b, _), (x, y) in zip(pairs, states):
        assert x == y, f"{a.name} and {b.name} differ: {differences(x, y)}"


def differences(x, y, path: str = "") -> list:
    """Where two decoded JSON values differ, as (path, x's, y's)."""
    if isinstance(x, dict) and isinstance(y, dict):
        return [d for k in sorted(set(x) | set(y))
                for d in differences(x.get(k, "<absent>"), y.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        return [d for i, (a, b) in enumerate(zip(x, y)) for d in differences(a, b, f"{path}[{i}]")]
    return [] if x == y else [(path, x, y)]


# -- VERSION and the environment ------------------------------------------------------------------

def test_version_lists_the_spec_versions(runtime):
    out = runtime.ok("VERSION", {"cniVersion": "1.0.0"}, netns=None, kind=PLUGIN)
    assert out == {"cniVersion": "1.0.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}
    out = runtime.ok("VERSION", "", netns=None, kind=PLUGIN)
    assert out["cniVersion"] == "1.1.0"


@pytest.mark.parametrize("env, needle", [
    ({"CNI_IFNAME": None}, "CNI_IFNAME"),
    ({"CNI_PATH": ""}, "CNI_PATH"),
    ({"CNI_CONTAINERID": "-bad id"}, "CNI_CONTAINERID"),
    ({"CNI_IFNAME": "eth/0"}, "CNI_IFNAME"),
    ({"CNI_COMMAND": "FROB"}, "FROB"),
    ({"CNI_ARGS": "FOO=bar"}, "FOO"),
])
def test_bad_environment_is_error_4(runtime, host, container, tmp_path, env, needle):
    conf = bridge_conf(PLUGIN, tmp_path)
    out = runtime.exec("ADD", conf, netns=container.path, env=env)
    assert_error(out, 4, "1.0.0", needle)
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)


# -- side by side with the reference bridge plugin ---------------------------------------------------

PARITY = {
    "dual-stack gateway, default routes, mtu, hairpin": dict(
        version="1.0.0", isDefaultGateway=True, mtu=1400, hairpinMode=True,
        dns={"nameservers": ["192.0.2.53"], "search": ["example.org"]},
        ipam=("192.0.2.0/24", "2001:db8:1::/64", [{"dst": "198.51.100.0/24"}])),
    "0.4.0 config, promiscuous bridge, IPAM default route": dict(
        version="0.4.0", promiscMode=True,
        ipam=("203.0.113.0/24", [{"dst": "0.0.0.0/0"}])),
    "no gateway on the bridge": dict(
        version="1.0.0", isGateway=False, ipam=("198.51.100.0/24", None)),
    "layer 2 only": dict(version="1.0.0", isGateway=False, ipam=None),
}


def parity_conf(kind: str, data_dir, case: dict) -> dict:
    """The case's configuration; ours keeps the host end's IPv6 link-local
    address, as the reference does (by default ours has none)."""
    options = dict(case)
    if kind == PLUGIN:
        options["hostIPv6LinkLocal"] = True
    version, ipam = options.pop("version"), options.pop("ipam")
    if ipam is not None:
        *ranges, routes = ipam
        options["ipam"] = host_local(data_dir, *ranges, routes=routes)
    else:
        options["ipam"] = None
    return bridge_conf(kind, data_dir, version, **options)


@needs_reference
@pytest.mark.parametrize("case", list(PARITY), ids=list(PARITY))
def test_same_kernel_state_and_result_as_the_reference_bridge(make_ns, plugin_dir, tmp_path, case):
    sides = {}
    for kind in ("bridge", PLUGIN):
        host, container = make_ns(), make_ns()
        data = tmp_path / kind
        conf = parity_conf(kind, data, PARITY[case])
        result = Runtime(host, [plugin_dir, REFERENCE]).ok("ADD", conf, netns=container.path)
        validate_result(result, conf["cniVersion"])
        assert_macs_are_the_kernels(result, host, container)
        sides[kind] = (host, container, result)
    (h1, c1, ref), (h2, c2, ours) = sides["bridge"], sides[PLUGIN]
    assert normalized_result(ours) == normalized_result(ref)
    assert_same_state([(h1, h2, HOST_SYSCTLS), (c1, c2, CONTAINER_SYSCTLS)])


@needs_reference
def test_each_plugin_deletes_what_the_other_made(make_ns, plugin_dir, tmp_path):
    """DEL is about kernel state, not about who made it: each plugin's DEL
    undoes the other's ADD, and CHECK accepts the other's result.  (No
    gateway-less IPAM route here: the reference's CHECK fails on those even
    after its own ADD, as it looks for them without the gateway it gave them.)"""
    case = dict(PARITY["dual-stack gateway, default routes, mtu, hairpin"],
                ipam=("192.0.2.0/24", "2001:db8:1::/64", None))
    for adder, deleter in (("bridge", PLUGIN), (PLUGIN, "bridge")):
        host, container = make_ns(), make_ns()
        runtime = Runtime(host, [plugin_dir, REFERENCE])
        data = tmp_path / adder
        result = runtime.ok("ADD", parity_conf(adder, data, case), netns=container.path)
        conf = dict(parity_conf(deleter, data, case), prevResult=result)
        runtime.ok("CHECK", conf, netns=container.path)
        runtime.ok("DEL", conf, netns=container.path)
        assert_nothing_left(host, container, data)


@needs_reference
def test_loopback_job_matches_the_reference_loopback(make_ns, plugin_dir):
    sides = {}
    for kind, conf in (("loopback", {"type": "loopback"}), (PLUGIN, {"type": PLUGIN, "loopback": True})):
        host, container = make_ns(), make_ns()
        runtime = Runtime(host, [plugin_dir, REFERENCE])
        conf = dict(conf, cniVersion="1.0.0", name="pntest-lo")
        result = runtime.ok("ADD", conf, netns=container.path, ifname="lo")
        validate_result(result, "1.0.0")
        assert result["interfaces"][0]["sandbox"] == container.path
        assert "UP" in container.link("lo")["flags"]
        runtime.ok("CHECK", dict(conf, prevResult=result), netns=container.path, ifname="lo")
        sides[kind] = (container, normalized_result(result))
    assert sides[PLUGIN][1] == sides["loopback"][1]
    assert_same_state([(sides["loopback"][0], sides[PLUGIN][0], ())])


def test_loopback_del_takes_lo_down_and_check_notices(runtime, container):
    conf = {"cniVersion": "1.0.0", "name": "pntest-lo", "type": PLUGIN, "loopback": True}
    result = runtime.ok("ADD", conf, netns=container.path, ifname="lo")
    runtime.ok("DEL", conf, netns=container.path, ifname="lo")
    assert "UP" not in container.link("lo")["flags"]
    out = runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path, ifname="lo")
    assert_error(out, 102, "1.0.0", "down")
    runtime.ok("DEL", conf, netns="/run/netns/pntest-gone", ifname="lo")


def test_loopback_refuses_bridge_options(runtime, container):
    conf = {"cniVersion": "1.0.0", "name": "pntest-lo", "type": PLUGIN, "loopback": True,
            "bridge": "cnitest0"}
    assert_error(runtime.exec("ADD", conf, netns=container.path), 7, "1.0.0", "bridge")


# -- a chain, driven as a runtime drives it -----------------------------------------------------------

def tuning_data_dir_supported() -> bool:
    try:
        with open(f"{REFERENCE}/tuning", "rb") as f:
            return b"dataDir" in f.read()
    except OSError:
        return False


@needs_reference
def test_reference_tuning_consumes_our_result_in_a_chain(runtime, host, container, tmp_path):
    tuning = {"type": "tuning", "mtu": 1280, "sysctl": {"net.core.somaxconn": "512"}}
    if tuning_data_dir_supported():
        tuning["dataDir"] = str(tmp_path / "tuning")
    ours = {k: v for k, v in bridge_conf(PLUGIN, tmp_path / "ipam").items()
            if k not in ("cniVersion", "name")}
    conflist = {"cniVersion": "1.0.0", "name": "pntest-chain", "plugins": [ours, tuning]}

    final = runtime.chain(conflist, "ADD", netns=container.path)
    validate_result(final, "1.0.0")
    eth0 = container.link("eth0")
    assert eth0["mtu"] == 1280 and "UP" in eth0["flags"]
    assert container.run("cat", "/proc/sys/net/core/somaxconn").stdout.strip() == "512"
    assert [ip["address"] for ip in final["ips"]] == ["192.0.2.2/24"]
    assert_macs_are_the_kernels(final, host, container)

    runtime.chain(conflist, "CHECK", prev=final, netns=container.path)
    runtime.chain(conflist, "DEL", prev=final, netns=container.path)
    assert_nothing_left(host, container, tmp_path / "ipam")


# -- DEL is idempotent -----------------------------------------------------------------------------------

@needs_reference
def test_del_twice_succeeds(runtime, host, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path)
    assert allocations(tmp_path) == ["192.0.2.2"]
    for _ in range(2):
        runtime.ok("DEL", dict(conf, prevResult=result), netns=container.path)
        assert_nothing_left(host, container, tmp_path)


@needs_reference
def test_del_without_add_succeeds(runtime, host, container, tmp_path):
    out = runtime.exec("DEL", bridge_conf(PLUGIN, tmp_path), netns=container.path)
    assert (out.rc, out.stdout) == (0, "")
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)


@needs_reference
def test_del_after_the_namespace_is_gone_releases_the_address(runtime, host, make_ns, tmp_path):
    container = make_ns()
    conf = bridge_conf(PLUGIN, tmp_path)
    runtime.ok("ADD", conf, netns=container.path)
    path = container.path
    container.remove()                          # its veth end dies, the host end with it
    runtime.ok("DEL", conf, netns=path)
    runtime.ok("DEL", conf, netns=None)         # CNI_NETNS may also be empty
    assert allocations(tmp_path) == []
    assert wait_until(lambda: host_veths(host) == [], 10.0)     # the kernel destroys it lazily


def wait_until(predicate, seconds: float) -> bool:
    """Poll ``predicate`` every 0.05 s for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- ADD failures leave nothing behind -------------------------------------------------------------------

BAD_CONFIGS = {
    "not JSON": ("{nope", 6, "JSON"),
    "not an object": ("[1, 2]", 6, "object"),
    "no name": ({"name": None}, 7, "name"),
    "unsupported version": ({"cniVersion": "0.3.1"}, 1, "0.3.1"),
    "bad bridge name": ({"bridge": "br/0"}, 7, "bridge"),
    "mtu not a number": ({"mtu": "big"}, 7, "mtu"),
    "mtu out of range": ({"mtu": 20}, 7, "mtu"),
    "hairpin and promiscuous": ({"hairpinMode": True, "promiscMode": True}, 7, "hairpin"),
    "unknown IPAM plugin": ({"ipam": {"type": "pntest-no-such-ipam"}}, 7, "pntest-no-such-ipam"),
    "bad MAC": ({"runtimeConfig": {"mac": "zz"}}, 7, "zz"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS), ids=list(BAD_CONFIGS))
def test_add_with_a_bad_config_is_refused_before_anything_is_made(runtime, host, container,
                                                                 tmp_path, case):
    change, code, needle = BAD_CONFIGS[case]
    conf = change if isinstance(change, str) else {
        k: v for k, v in dict(bridge_conf(PLUGIN, tmp_path), **change).items() if v is not None}
    version = conf.get("cniVersion", "1.1.0") if isinstance(conf, dict) else "1.1.0"
    out = runtime.exec("ADD", conf, netns=container.path, kind=PLUGIN)
    assert_error(out, code, version, needle)
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)


UNSUPPORTED = {"vlan": 100, "vlanTrunk": [{"id": 5}], "macspoofchk": True,
               "enabledad": True, "forceAddress": True, "preserveDefaultVlan": False}


@pytest.mark.parametrize("key", list(UNSUPPORTED))
def test_unsupported_reference_options_are_error_2(runtime, host, container, tmp_path, key):
    conf = bridge_conf(PLUGIN, tmp_path, **{key: UNSUPPORTED[key]})
    out = runtime.exec("ADD", conf, netns=container.path)
    assert_error(out, 2, "1.0.0", key, json.dumps(UNSUPPORTED[key]))
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)


@needs_reference
def test_unsupported_options_at_their_defaults_are_accepted(runtime, host, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, ipMasq=False, vlan=0, macspoofchk=False, enabledad=False)
    validate_result(runtime.ok("ADD", conf, netns=container.path), "1.0.0")
    runtime.ok("DEL", conf, netns=container.path)
    assert_nothing_left(host, container, tmp_path)


@needs_reference
def test_add_into_a_missing_netns_is_error_3(runtime, host, container, tmp_path):
    out = runtime.exec("ADD", bridge_conf(PLUGIN, tmp_path), netns="/run/netns/pntest-missing")
    assert_error(out, 3, "1.0.0", "/run/netns/pntest-missing")
    assert_nothing_left(host, container, tmp_path, bridge_allowed=False)


@needs_reference
def test_add_where_the_interface_exists_releases_the_address(runtime, host, container, tmp_path):
    """The IPAM plugin runs while the links are made; when the veth cannot be
    made, its allocation is given back."""
    sh("ip", "-n", container.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    out = runtime.exec("ADD", bridge_conf(PLUGIN, tmp_path), netns=container.path)
    assert_error(out, 100, "1.0.0", "eth0")
    assert host_veths(host) == [] and allocations(tmp_path) == []
    assert container.link_names() == {"lo", "eth0", "eth0p"}


def fake_ipam(tmp_path, result=None, fail=None) -> dict:
    conf = {"type": FAKE_IPAM, "log": str(tmp_path / "ipam.log"),
            "result": result or {"ips": [{"address": "192.0.2.7/24", "gateway": "192.0.2.1"}]}}
    if fail:
        conf["fail"] = fail
    return conf


def ipam_calls(tmp_path) -> list:
    try:
        with open(tmp_path / "ipam.log") as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def test_an_ipam_error_is_passed_on_and_nothing_is_left(runtime, host, container, tmp_path):
    fail = {"ADD": {"code": 11, "msg": "pool busy", "details": "try later"}}
    conf = bridge_conf(PLUGIN, tmp_path, ipam=fake_ipam(tmp_path, fail=fail))
    out = runtime.exec("ADD", conf, netns=container.path)
    assert out.doc == {"cniVersion": "1.0.0", "code": 11, "msg": "pool busy", "details": "try later"}
    assert [c["command"] for c in ipam_calls(tmp_path)] == ["ADD"]
    assert host_veths(host) == [] and container.link_names() == {"lo"}


def test_a_failure_after_ipam_calls_its_del(runtime, host, container, tmp_path):
    result = {"ips": [{"address": "192.0.2.7/24", "gateway": "192.0.2.1"}],
              "routes": [{"dst": "198.51.100.0/24", "table": 100}]}     # a 1.1.0 route field
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0", ipam=fake_ipam(tmp_path, result))
    out = runtime.exec("ADD", conf, netns=container.path)
    assert_error(out, 2, "1.1.0", "table")
    assert [c["command"] for c in ipam_calls(tmp_path)] == ["ADD", "DEL"]
    assert host_veths(host) == [] and container.link_names() == {"lo"}


def test_an_ipam_result_that_is_not_a_result_is_error_6_and_released(runtime, host, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, ipam=fake_ipam(tmp_path, {"ips": [{"address": "nonsense"}]}))
    assert_error(runtime.exec("ADD", conf, netns=container.path), 6, "1.0.0", "nonsense")
    assert [c["command"] for c in ipam_calls(tmp_path)] == ["ADD", "DEL"]
    assert host_veths(host) == [] and container.link_names() == {"lo"}


# -- CHECK ---------------------------------------------------------------------------------------------

@needs_reference
def test_check_passes_then_notices_a_deleted_address(runtime, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, isDefaultGateway=True)
    result = runtime.ok("ADD", conf, netns=container.path)
    checked = dict(conf, prevResult=result)
    out = runtime.exec("CHECK", checked, netns=container.path)
    assert (out.rc, out.stdout) == (0, "")
    sh("ip", "-n", container.name, "addr", "del", "192.0.2.2/24", "dev", "eth0")
    assert_error(runtime.exec("CHECK", checked, netns=container.path), 102, "1.0.0",
                 "address 192.0.2.2/24 not found on eth0")


@needs_reference
def test_check_notices_a_missing_host_end_and_a_changed_mac(runtime, host, container, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path)
    result = runtime.ok("ADD", conf, netns=container.path)
    sh("ip", "-n", container.name, "link", "set", "eth0", "address", "02:00:00:00:00:99")
    assert_error(runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path),
                 102, "1.0.0", "eth0 has MAC 02:00:00:00:00:99")
    sh("ip", "-n", host.name, "link", "set", host_veths(host)[0], "nomaster")
    assert_error(runtime.exec("CHECK", dict(conf, prevResult=result), netns=container.path),
                 102, "1.0.0", "peer of eth0")


def test_check_needs_prev_result(runtime, container, tmp_path):
    out = runtime.exec("CHECK", bridge_conf(PLUGIN, tmp_path), netns=container.path)
    assert_error(out, 7, "1.0.0", "prevResult")


@pytest.mark.parametrize("promisc", [False, True])
def test_add_brings_up_a_bridge_left_down_and_makes_it_promiscuous_if_asked(runtime, host, container,
                                                                              tmp_path, promisc):
    """A bridge already there is read, not remade, only when it is as ADD
    leaves it: one that is down (or not promiscuous, with promiscMode) is set."""
    sh("ip", "-n", host.name, "link", "add", "cnitest0", "type", "bridge")
    result = runtime.ok("ADD", bridge_conf(PLUGIN, tmp_path, promiscMode=promisc or None),
                        netns=container.path)
    bridge = host.link("cnitest0")
    assert "UP" in bridge["flags"] and ("PROMISC" in bridge["flags"]) == promisc
    assert result["interfaces"][0] == {"name": "cnitest0", "mac": bridge["address"]}


# -- CNI_ARGS, STATUS, GC -----------------------------------------------------------------------------

@needs_reference
def test_mac_from_cni_args_goes_on_the_container_end(runtime, container, tmp_path):
    result = runtime.ok("ADD", bridge_conf(PLUGIN, tmp_path), netns=container.path,
                        cni_args="IgnoreUnknown=1;K8S_POD_NAME=pntest;MAC=02:00:00:00:00:42")
    assert container.link("eth0")["address"] == "02:00:00:00:00:42"
    assert result["interfaces"][2] == {"name": "eth0", "mac": "02:00:00:00:00:42",
                                       "sandbox": container.path}


def test_status_and_gc_are_delegated_to_ipam(runtime, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0", ipam=fake_ipam(tmp_path))
    attachments = [{"containerID": "pntest-ctr1", "ifname": "eth0"}]
    assert runtime.exec("STATUS", conf, netns=None).stdout == ""
    out = runtime.exec("GC", dict(conf, **{"cni.dev/valid-attachments": attachments}), netns=None)
    assert (out.rc, out.stdout) == (0, "")
    calls = ipam_calls(tmp_path)
    assert [c["command"] for c in calls] == ["STATUS", "GC"]
    assert calls[1]["attachments"] == attachments


def test_status_passes_on_the_ipam_plugins_unavailability(runtime, tmp_path):
    fail = {"STATUS": {"code": 50, "msg": "no pool"}}
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0", ipam=fake_ipam(tmp_path, fail=fail))
    assert_error(runtime.exec("STATUS", conf, netns=None), 50, "1.1.0", "no pool")


def test_status_needs_a_1_1_0_config(runtime, tmp_path):
    conf = bridge_conf(PLUGIN, tmp_path, version="1.0.0", ipam=fake_ipam(tmp_path))
    assert_error(runtime.exec("STATUS", conf, netns=None), 1, "1.0.0", "1.1.0")


def test_a_1_1_0_add_with_a_1_1_0_ipam_plugin(runtime, host, container, tmp_path):
    result = {"ips": [{"address": "2001:db8:9::7/64", "gateway": "2001:db8:9::1"},
                      {"address": "192.0.2.7/24"}],
              "routes": [{"dst": "2001:db8:aa::/48"}], "dns": {"domain": "example.org"}}
    conf = bridge_conf(PLUGIN, tmp_path, version="1.1.0", ipam=fake_ipam(tmp_path, result))
    out = runtime.ok("ADD", conf, netns=container.path)
    validate_result(out, "1.1.0")
    assert out["ips"] == [
        {"interface": 2, "address": "2001:db8:9::7/64", "gateway": "2001:db8:9::1"},
        {"interface": 2, "address": "192.0.2.7/24", "gateway": "192.0.2.1"}]
    assert out["routes"] == [{"dst": "2001:db8:aa::/48"}] and out["dns"] == {"domain": "example.org"}
    routes = {r["dst"]: r.get("gateway") for r in container.routes("-6")}
    assert routes["2001:db8:aa::/48"] == "2001:db8:9::1"           # via the family's gateway
    gateways = {(a["local"], a["prefixlen"]) for a in host.addresses("cnitest0")}
    assert {("2001:db8:9::1", 64), ("192.0.2.1", 24)} <= gateways
    runtime.ok("DEL", conf, netns=container.path)
    assert [c["command"] for c in ipam_calls(tmp_path)] == ["ADD", "DEL"]
    assert host_veths(host) == [] and container.link_names() == {"lo"}


# -- the plugin package itself (no kernel) ----------------------------------------------------------------

def test_results_render_in_the_configs_version():
    import ipaddress as ipa
    result = cni.CNIResult([{"name": "eth0", "mac": "02:00:00:00:00:01", "sandbox": "/x"}],
                           [cni.IPConfig(ipa.ip_interface("192.0.2.2/24"), ipa.ip_address("192.0.2.1"), 0)],
                           [cni.CNIRoute(ipa.ip_network("0.0.0.0/0"), ipa.ip_address("192.0.2.1"))])
    old, new = cni.render_result(result, "0.4.0"), cni.render_result(result, "1.0.0")
    assert old["ips"] == [{"version": "4", "interface": 0, "address": "192.0.2.2/24",
                           "gateway": "192.0.2.1"}]
    assert "version" not in new["ips"][0]
    for doc, version in ((old, "0.4.0"), (new, "1.0.0")):
        validate_result(doc, version)
        assert cni.render_result(cni.parse_result(doc, "test"), version) == doc


@pytest.mark.parametrize("old, new", [("Result", "CNIResult"), ("Route", "CNIRoute"), ("cli", "install_main")])
def test_old_names_are_deprecated_aliases(old, new):
    with pytest.warns(DeprecationWarning, match=f"pynetlink.cni.{old} is deprecated; use pynetlink.cni.{new}"):
        value = getattr(cni, old)
    assert value is getattr(cni, new)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Nothing"):
        cni.Nothing


# -- one command as a function (what a resident process calls) ---------------------------------------

def test_run_answers_version_without_touching_process_state(capsys):
    environ = dict(os.environ)
    out, code = cni.run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "0.4.0"}')
    assert (json.loads(out), code) == ({"cniVersion": "0.4.0",
                                        "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]}, 0)
    assert out.endswith(b"\n")
    assert capsys.readouterr() == ("", "") and dict(os.environ) == environ


def test_run_returns_an_error_document_and_exit_code_1(capsys):
    out, code = cni.run({"CNI_COMMAND": "DEL", "CNI_PATH": "/nonexistent"},
                        b'{"cniVersion": "1.0.0", "name": "n", "type": "pynetlink-cni"}')
    assert code == 1
    assert json.loads(out) == {"cniVersion": "1.0.0", "code": 4,
                               "msg": "CNI_CONTAINERID is required for DEL"}
    assert capsys.readouterr() == ("", "")


def test_run_adds_loopback_in_process_with_the_environment_it_is_given(container, capsys):
    conf = {"cniVersion": "1.0.0", "name": "pntest-lo", "type": PLUGIN, "loopback": True}
    environ = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "pntest-ctr1", "CNI_NETNS": container.path,
               "CNI_IFNAME": "lo", "CNI_PATH": "/nonexistent"}
    out, code = cni.run(environ, json.dumps(conf).encode())
    assert code == 0, out
    result = json.loads(out)
    validate_result(result, "1.0.0")
    assert result["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": container.path}]
    assert "UP" in container.link("lo")["flags"]
    assert capsys.readouterr() == ("", "")


# -- start-up: each command imports what it needs ------------------------------------------------------

LOADED = """
import json, sys
from pynetlink.cni import run
out, code = run(json.loads(sys.argv[1]), sys.argv[2].encode())
assert code == 0, out
print(json.dumps(sorted(m for m in sys.modules if m.startswith("pynetlink.cni") or m == "subprocess")))
"""


def modules_loaded_by(environ: dict, conf: str) -> set:
    """The plugin's modules (and subprocess) a fresh interpreter has loaded
    after answering one command in-process."""
    proc = subprocess.run([sys.executable, "-c", LOADED, json.dumps(environ), conf],
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(proc.stdout))


def test_version_loads_no_command_module():
    loaded = modules_loaded_by({"CNI_COMMAND": "VERSION"}, "")
    assert loaded == {"pynetlink.cni", "pynetlink.cni.dispatch", "pynetlink.cni.spec",
                      "pynetlink.cni.netconf"}


def test_loopback_del_loads_no_ipam_or_result_code():
    conf = json.dumps({"cniVersion": "1.0.0", "name": "n", "type": PLUGIN, "loopback": True})
    loaded = modules_loaded_by({"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "lo",
                                "CNI_PATH": "/nonexistent"}, conf)
    assert loaded == {"pynetlink.cni", "pynetlink.cni.dispatch", "pynetlink.cni.spec",
                      "pynetlink.cni.netconf", "pynetlink.cni.loopback", "pynetlink.cni.kernel"}
