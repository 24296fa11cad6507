"""host-local in-process (pynetlink.cni.hostlocal) against the reference
``host-local`` executable of Debian's containernetworking-plugins
(/usr/lib/cni): both are run as a runtime runs an IPAM plugin — the CNI
environment and the configuration on stdin — on scratch dataDirs under
tmp_path (pure IPAM: no namespace, no link).  The same steps give the same
output bytes, exit codes and store files; on one dataDir the two share the
addresses without a collision, also when they run at the same time."""
from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pynetlink.cni import hostlocal
from pynetlink.cni.delegate import Delegate, ipam_plugin, start_ipam
from pynetlink.cni.spec import Env

pytestmark = pytest.mark.unit

GO = "/usr/lib/cni/host-local"
needs_go = pytest.mark.skipif(not os.access(GO, os.X_OK), reason=f"{GO} is not installed "
                              "(apt-get install containernetworking-plugins)")
OURS = [sys.executable, "-m", "pynetlink.cni.hostlocal"]


def environ(command: str, cid: str = "pntest-c1", ifname: str = "eth0", cni_args: str = "") -> dict:
    return {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_IFNAME": ifname,
            "CNI_NETNS": "/run/netns/pntest-none", "CNI_PATH": "/usr/lib/cni", "CNI_ARGS": cni_args,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def run_go(command: str, conf: dict, **kw) -> tuple:
    """The reference executable: (stdout bytes, exit status)."""
    proc = subprocess.run([GO], input=json.dumps(conf).encode(), env=environ(command, **kw),
                          capture_output=True, timeout=30)
    return proc.stdout, proc.returncode


def run_ours(command: str, conf: dict, **kw) -> tuple:
    """Ours, in this process: (stdout bytes, exit status)."""
    return hostlocal.run(environ(command, **kw), json.dumps(conf).encode())


RUNNERS = {"go": run_go, "ours": run_ours}


def network(data_dir, *range_sets, version: str = "1.0.0", **ipam) -> dict:
    """A network configuration whose IPAM is host-local over ``range_sets``
    (each a list of range objects) in ``data_dir``."""
    section = {"type": "host-local", "dataDir": str(data_dir), **ipam}
    if range_sets:
        section["ranges"] = list(range_sets)
    return {"cniVersion": version, "name": "pntest-net", "type": "bridge", "ipam": section}


def store_files(data_dir) -> dict:
    """Every file under the dataDir: relative path -> (mode, bytes)."""
    found = {}
    for top, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(top, name)
            found[os.path.relpath(path, data_dir)] = (oct(os.stat(path).st_mode), open(path, "rb").read())
    return found


def held(data_dir) -> dict:
    """address -> owner text of every allocation in the network's directory."""
    out = {}
    for rel, (_, data) in store_files(data_dir).items():
        try:
            out[ipaddress.ip_address(os.path.basename(rel))] = data
        except ValueError:
            pass
    return out


def replay(runner, steps, make_conf) -> list:
    """Run ``steps`` ((command, container id, extra kwargs)) with ``runner``;
    the outputs."""
    return [runner(command, make_conf(), cid=cid, **kw) for command, cid, kw in steps]


# -- the same steps, the same answers and the same files ------------------------------------------

SEQUENCE = [("ADD", "c1", {}), ("ADD", "c2", {}), ("ADD", "c1", {}), ("CHECK", "c1", {}),
            ("CHECK", "c9", {}), ("DEL", "c1", {}), ("ADD", "c3", {}), ("ADD", "c4", {}),
            ("ADD", "c5", {}), ("DEL", "c9", {}), ("DEL", "c2", {}), ("ADD", "c6", {})]

CONFIGS = {
    "dual-stack, routes with host bits and a 1.1.0 field, gateway": lambda d: network(
        d, [{"subnet": "192.0.2.0/29", "gateway": "192.0.2.6"}], [{"subnet": "2001:db8:1::/125"}],
        routes=[{"dst": "0.0.0.0/0"}, {"dst": "198.51.100.7/24", "gw": "192.0.2.6", "mtu": 1400},
                {"dst": "2001:db8:9::/48", "gw": "2001:db8:1::1"}]),
    "0.4.0, rangeStart and rangeEnd": lambda d: network(
        d, [{"subnet": "203.0.113.0/24", "rangeStart": "203.0.113.10", "rangeEnd": "203.0.113.13"}],
        version="0.4.0"),
    "two ranges in one set, old-style subnet too": lambda d: network(
        d, [{"subnet": "198.51.100.0/30"}, {"subnet": "198.51.100.8/30"}],
        subnet="2001:db8:2::/126"),
    "0.3.1 (CHECK refused)": lambda d: network(d, [{"subnet": "192.0.2.0/29"}], version="0.3.1"),
    "resolvConf": lambda d: network(d, [{"subnet": "192.0.2.0/28"}], resolvConf=str(d.parent / "resolv.conf")),
}

RESOLV_CONF = "# comment\nnameserver 192.0.2.53\n; other\nnameserver 2001:db8::53\ndomain example.org\n" \
              "search a.example.org b.example.org\noptions ndots:2 rotate\nbogus\n"


@needs_go
@pytest.mark.parametrize("case", list(CONFIGS), ids=list(CONFIGS))
def test_same_steps_give_the_same_output_and_store_as_the_reference(tmp_path, case):
    sides = {}
    for name, runner in RUNNERS.items():
        base = tmp_path / name
        base.mkdir()
        (base / "resolv.conf").write_text(RESOLV_CONF)
        data = base / "data"
        sides[name] = (replay(runner, SEQUENCE, lambda: CONFIGS[case](data)), store_files(data))
    assert sides["ours"][0] == sides["go"][0]
    assert sides["ours"][1] == sides["go"][1]


def test_store_files_hold_id_crlf_ifname_and_the_last_address(tmp_path):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}])
    assert run_ours("ADD", conf, cid="pntest-c1", ifname="net1")[1] == 0
    files, umask = store_files(tmp_path), current_umask()
    assert files["pntest-net/192.0.2.2"] == (oct(0o100644 & ~umask), b"pntest-c1\r\nnet1")
    assert files["pntest-net/last_reserved_ip.0"] == (oct(0o100644 & ~umask), b"192.0.2.2")
    assert files["pntest-net/lock"] == (oct(0o100750 & ~umask), b"")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- one dataDir, both implementations ------------------------------------------------------------------

@needs_go
def test_alternating_allocations_never_collide_until_both_see_exhaustion(tmp_path):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/28"}], [{"subnet": "2001:db8::/124"}])
    given: list = []
    for i in range(13):                     # 13 addresses in 192.0.2.2-14 (.1: the gateway)
        out, code = (run_go, run_ours)[i % 2]("ADD", conf, cid=f"c{i}")
        assert code == 0, out
        given += [ip["address"] for ip in json.loads(out)["ips"]]
    assert len(given) == len(set(given)) == 26
    assert {v for v in held(tmp_path).values()} == {f"c{i}\r\neth0".encode() for i in range(13)}
    go, ours = run_go("ADD", conf, cid="c99"), run_ours("ADD", conf, cid="c99")
    assert ours == go and go[1] == 1
    assert json.loads(go[0]) == {"code": 999, "msg": "failed to allocate for range 0: no IP addresses "
                                                      "available in range set: 192.0.2.1-192.0.2.14"}
    assert len(held(tmp_path)) == 26        # the failed ADD held nothing


@needs_go
@pytest.mark.parametrize("adder,deleter", [("go", "ours"), ("ours", "go")])
def test_each_releases_the_others_allocations_on_del(tmp_path, adder, deleter):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8::/64"}])
    for cid, ifname in (("c1", "eth0"), ("c1", "eth1"), ("c2", "eth0")):
        assert RUNNERS[adder]("ADD", conf, cid=cid, ifname=ifname)[1] == 0
    assert RUNNERS[deleter]("CHECK", conf, cid="c1", ifname="eth1") == (b"", 0)
    assert RUNNERS[deleter]("DEL", conf, cid="c1", ifname="eth1") == (b"", 0)
    assert sorted(held(tmp_path).values()) == [b"c1\r\neth0"] * 2 + [b"c2\r\neth0"] * 2


@needs_go
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_del_releases_old_style_files_holding_the_id_alone(tmp_path, runner):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}])
    directory = tmp_path / "pntest-net"
    directory.mkdir()
    (directory / "192.0.2.7").write_bytes(b"c1\n")
    assert RUNNERS[runner]("CHECK", conf, cid="c1", ifname="eth3") == (b"", 0)
    assert RUNNERS[runner]("DEL", conf, cid="c1", ifname="eth3") == (b"", 0)
    assert held(tmp_path) == {}


@needs_go
def test_concurrent_allocations_from_both_executables_share_the_lock(tmp_path):
    """12 reference and 12 of our executables started together on one
    dataDir: each gets an address, no two the same."""
    conf = json.dumps(network(tmp_path, [{"subnet": "192.0.2.0/24"}])).encode()

    def one(i: int) -> bytes:
        argv = [GO] if i % 2 else OURS
        env = dict(environ("ADD", cid=f"c{i}"), PYTHONPATH=os.environ.get("PYTHONPATH", ""))
        proc = subprocess.run(argv, input=conf, env=env, capture_output=True, timeout=60)
        assert proc.returncode == 0, proc
        return proc.stdout

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(one, range(24)))
    addresses = [json.loads(o)["ips"][0]["address"] for o in outs]
    assert len(set(addresses)) == 24
    assert len(held(tmp_path)) == 24


# -- requested addresses --------------------------------------------------------------------------------

REQUESTS = {
    "runtimeConfig.ips": ({"runtimeConfig": {"ips": ["192.0.2.42/24", "2001:db8::42"]}}, ""),
    "args.cni.ips": ({"args": {"cni": {"ips": ["192.0.2.43"]}}}, ""),
    "CNI_ARGS IP=": ({}, "IgnoreUnknown=1;IP=192.0.2.44;K8S_POD_NAME=x"),
    "the gateway": ({"runtimeConfig": {"ips": ["192.0.2.1"]}}, ""),
    "outside every range": ({"runtimeConfig": {"ips": ["198.51.100.1"]}}, ""),
    "two in one set": ({"runtimeConfig": {"ips": ["192.0.2.45", "192.0.2.46"]}}, ""),
    "not an address": ({"runtimeConfig": {"ips": ["192.0.2.300"]}}, ""),
    "CNI_ARGS unknown key": ({}, "IP=192.0.2.44;K8S_POD_NAME=x"),
    "CNI_ARGS not a pair": ({}, "IP"),
    "CNI_ARGS IgnoreUnknown not a boolean": ({}, "IgnoreUnknown=maybe;IP=192.0.2.44"),
    "CNI_ARGS IPv6 with a prefix": ({}, "IP=2001:DB8::4:5/64"),
    "IPv4-mapped IPv6 with a prefix": ({"runtimeConfig": {"ips": ["::ffff:192.0.2.47/120"]}}, ""),
}


@needs_go
@pytest.mark.parametrize("case", list(REQUESTS), ids=list(REQUESTS))
def test_requested_addresses_as_the_reference(tmp_path, case):
    extra, cni_args = REQUESTS[case]
    answers = {}
    for name, runner in RUNNERS.items():
        conf = network(tmp_path / name, [{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8::/64"}])
        assert runner("ADD", conf, cid="c0")[1] == 0           # 192.0.2.2 taken: requests are not
        out = runner("ADD", dict(conf, **extra), cid="c1", cni_args=cni_args)
        answers[name] = out, store_files(tmp_path / name)
    assert answers["ours"] in (answers["go"], *swapped(answers["go"], extra))


def swapped(answer, extra: dict) -> list:
    """``answer`` with two requested addresses exchanged: the reference keeps
    the requested addresses in a Go map, so which of two it tries first (and
    names in its error) changes from run to run."""
    ips = [ip.encode() for ip in extra.get("runtimeConfig", {}).get("ips", [])]
    if len(ips) != 2:
        return []
    a, b = ips

    def swap(data: bytes) -> bytes:
        return data.replace(a, b"\0").replace(b, a).replace(b"\0", b)

    (out, rc), files = answer
    return [((swap(out), rc), {swap(k.encode()).decode(): (mode, swap(data))
                               for k, (mode, data) in files.items()})]


@needs_go
def test_a_requested_address_already_held_is_refused_as_the_reference(tmp_path):
    answers = {}
    for name, runner in RUNNERS.items():
        conf = network(tmp_path / name, [{"subnet": "192.0.2.0/24"}])
        runner("ADD", conf, cid="c0")
        answers[name] = runner("ADD", dict(conf, runtimeConfig={"ips": ["192.0.2.2"]}), cid="c1")
    assert answers["ours"] == answers["go"]
    assert json.loads(answers["go"][0])["code"] == 999


def allocated(out: bytes) -> list:
    return [ip["address"] for ip in json.loads(out)["ips"]]


def test_a_network_changed_between_requests_is_read_anew(tmp_path):
    """The range sets a configuration makes are kept for its next requests
    (hostlocal_ranges.checked_ranges): a changed one is never served from them."""
    first = network(tmp_path, [{"subnet": "192.0.2.0/24", "rangeStart": "192.0.2.10"}])
    assert allocated(run_ours("ADD", first, cid="c0")[0]) == ["192.0.2.10/24"]
    moved = network(tmp_path, [{"subnet": "198.51.100.0/24", "rangeStart": "198.51.100.20"}])
    assert allocated(run_ours("ADD", moved, cid="c1")[0]) == ["198.51.100.20/24"]
    narrowed = dict(first, runtimeConfig={"ipRanges": [[{"subnet": "203.0.113.0/24"}]]})
    assert allocated(run_ours("ADD", narrowed, cid="c2")[0]) == ["203.0.113.2/24", "192.0.2.11/24"]


# -- configuration errors --------------------------------------------------------------------------------

BAD = {
    "no ipam": {"cniVersion": "1.0.0", "name": "n", "type": "bridge"},
    "no ranges": {"ranges": []},
    "empty range set": {"ranges": [[]]},
    "subnet too small": {"ranges": [[{"subnet": "192.0.2.0/31"}]]},
    "host bits": {"ranges": [[{"subnet": "192.0.2.1/24"}]]},
    "not a CIDR": {"ranges": [[{"subnet": "192.0.2.0"}]]},
    "a netmask, not a prefix length": {"ranges": [[{"subnet": "192.0.2.0/255.255.255.0"}]]},
    "an IPv6 zone": {"ranges": [[{"subnet": "2001:db8::/64", "rangeStart": "2001:db8::5%eth0"}]]},
    "no subnet": {"ranges": [[{"gateway": "192.0.2.1"}]]},
    "rangeStart outside": {"ranges": [[{"subnet": "192.0.2.0/24", "rangeStart": "192.0.3.1"}]]},
    "rangeEnd before rangeStart": {"ranges": [[{"subnet": "192.0.2.0/24", "rangeStart": "192.0.2.9",
                                                "rangeEnd": "192.0.2.8"}]]},
    "mixed families": {"ranges": [[{"subnet": "192.0.2.0/24"}, {"subnet": "2001:db8::/64"}]]},
    "overlap in a set": {"ranges": [[{"subnet": "192.0.2.0/24"}, {"subnet": "192.0.2.0/25"}]]},
    "overlapping sets": {"ranges": [[{"subnet": "192.0.2.0/24"}], [{"subnet": "192.0.2.128/25"}]]},
    "resolvConf missing": {"ranges": [[{"subnet": "192.0.2.0/24"}]], "resolvConf": "/nonexistent/resolv"},
}


@needs_go
@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_configuration_errors_are_the_references(tmp_path, case):
    bad = BAD[case]
    conf = bad if "cniVersion" in bad else network(tmp_path, **bad)
    go, ours = run_go("ADD", conf), run_ours("ADD", conf)
    assert go[1] == 1 and ours == go
    assert not (tmp_path / "pntest-net").exists() or held(tmp_path) == {}


# -- GC (spec 1.1.0; the reference has none) -----------------------------------------------------------

def test_gc_releases_allocations_not_in_the_valid_attachments(tmp_path):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8::/64"}], version="1.1.0")
    for cid, ifname in (("c1", "eth0"), ("c2", "eth0"), ("c2", "eth1")):
        assert run_ours("ADD", conf, cid=cid, ifname=ifname)[1] == 0
    (tmp_path / "pntest-net" / "192.0.2.99").write_bytes(b"c3")      # old style, c3 gone
    valid = [{"containerID": "c2", "ifname": "eth1"}, {"containerID": "c9", "ifname": "eth0"}]
    gc = dict(conf, **{"cni.dev/valid-attachments": valid})
    assert hostlocal.run(environ("GC"), json.dumps(gc).encode()) == (b"", 0)
    assert sorted(held(tmp_path).values()) == [b"c2\r\neth1"] * 2
    assert "pntest-net/last_reserved_ip.0" in store_files(tmp_path)


def test_gc_keeps_an_old_style_file_of_a_container_still_attached(tmp_path):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}], version="1.1.0",)
    (tmp_path / "pntest-net").mkdir()
    (tmp_path / "pntest-net" / "192.0.2.99").write_bytes(b"c3")
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "c3", "ifname": "eth0"}]})
    assert hostlocal.run(environ("GC"), json.dumps(gc).encode()) == (b"", 0)
    assert list(held(tmp_path).values()) == [b"c3"]


def test_gc_refuses_malformed_attachments(tmp_path):
    conf = network(tmp_path, [{"subnet": "192.0.2.0/24"}], version="1.1.0")
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "c3"}]})
    out, code = hostlocal.run(environ("GC"), json.dumps(gc).encode())
    assert code == 1 and json.loads(out)["code"] == 7


# -- the plugin's choice: in-process or executed --------------------------------------------------------

def plugin_env(command: str, **extra) -> Env:
    return Env(command, dict(environ(command), **extra))


def test_host_local_runs_in_process_by_default(tmp_path):
    conf = json.dumps(network(tmp_path, [{"subnet": "192.0.2.0/24"}])).encode()
    ipam = start_ipam("host-local", plugin_env("ADD"), conf, "ADD")
    assert isinstance(ipam, hostlocal.HostLocal) and ipam.succeeded()
    assert ipam.wait()["ips"] == [{"address": "192.0.2.2/24", "gateway": "192.0.2.1"}]
    assert ipam.finish()[0] == 0


def test_pynetlink_cni_ipam_exec_runs_the_host_local_executable(tmp_path):
    conf = json.dumps(network(tmp_path, [{"subnet": "192.0.2.0/24"}])).encode()
    ipam = ipam_plugin("host-local", plugin_env("ADD", PYNETLINK_CNI_IPAM="exec"), conf)
    assert isinstance(ipam, Delegate)


def test_in_process_error_is_reported_by_wait_with_the_references_code(tmp_path):
    conf = json.dumps(network(tmp_path, [{"subnet": "192.0.2.0/30"}])).encode()
    assert start_ipam("host-local", plugin_env("ADD"), conf, "ADD").succeeded()
    ipam = start_ipam("host-local", Env("ADD", environ("ADD", cid="c2")), conf, "ADD")
    assert not ipam.succeeded()
    with pytest.raises(hostlocal.CNIError) as e:
        ipam.wait()
    assert (e.value.code, e.value.msg) == (999, "failed to allocate for range 0: no IP addresses "
                                                "available in range set: 192.0.2.1-192.0.2.2")


def test_concurrent_in_process_allocations_exclude_each_other(tmp_path):
    """Threads of one process (the daemon's case): each request opens its
    own lock file descriptor, so flock excludes them from each other too."""
    conf = json.dumps(network(tmp_path, [{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8::/64"}])).encode()

    def one(i: int) -> dict:
        return start_ipam("host-local", Env("ADD", environ("ADD", cid=f"c{i}")), conf, "ADD").wait()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(40)))
    addresses = [ip["address"] for r in results for ip in r["ips"]]
    assert len(set(addresses)) == 80 and len(held(tmp_path)) == 80


@needs_go
@pytest.mark.parametrize("range_sets", [1, 2])
def test_del_of_new_and_old_style_files_leaves_what_the_reference_leaves(tmp_path, range_sets):
    """The reference's DEL runs one release per range set: the second finds
    no new-style file left and removes the old-style ones too."""
    stores = {}
    for name, runner in RUNNERS.items():
        sets = [[{"subnet": "192.0.2.0/24"}], [{"subnet": "2001:db8::/64"}]][:range_sets]
        conf = network(tmp_path / name, *sets)
        assert runner("ADD", conf, cid="c1")[1] == 0
        (tmp_path / name / "pntest-net" / "192.0.2.99").write_bytes(b"c1")
        assert runner("DEL", conf, cid="c1") == (b"", 0)
        stores[name] = store_files(tmp_path / name)
    assert stores["ours"] == stores["go"]
    assert ("pntest-net/192.0.2.99" in stores["go"]) == (range_sets == 1)


@needs_go
@pytest.mark.parametrize("runner", ["go", "ours"])
def test_each_waits_while_the_store_lock_is_held(tmp_path, runner):
    """Both take flock(LOCK_EX) on <dataDir>/<name>/lock: while another
    holder has it, neither allocates."""
    conf = json.dumps(network(tmp_path, [{"subnet": "192.0.2.0/24"}])).encode()
    (tmp_path / "pntest-net").mkdir()
    with open(tmp_path / "pntest-net" / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        env = dict(environ("ADD"), PYTHONPATH=os.environ.get("PYTHONPATH", ""))
        proc = subprocess.Popen([GO] if runner == "go" else OURS, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env)
        try:
            proc.stdin.write(conf)
            proc.stdin.close()
            proc.stdin = None                   # communicate() reads the answer only
            time.sleep(1.0)
            assert proc.poll() is None and held(tmp_path) == {}
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and json.loads(out)["ips"][0]["address"] == "192.0.2.2/24"


def test_case_variants_of_a_key_are_read_in_their_order_not_from_the_cache(tmp_path):
    """member(): the last case-variant of a key wins; two configurations
    that differ only in their order are two configurations."""
    first = network(tmp_path, Subnet="198.51.100.0/24", SUBNET="192.0.2.0/24")
    second = network(tmp_path, SUBNET="192.0.2.0/24", Subnet="198.51.100.0/24")
    assert allocated(run_ours("ADD", first, cid="c0")[0]) == ["192.0.2.2/24"]
    assert allocated(run_ours("ADD", second, cid="c1")[0]) == ["198.51.100.2/24"]
