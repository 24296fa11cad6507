"""The ``pynetlink`` command, run as a real subprocess in scratch namespaces
and checked with ``ip -j``."""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import sh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args: str, inside: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m pynetlink ARGS`` (inside the namespace NAME, if given)."""
    prefix = ["ip", "netns", "exec", inside] if inside else []
    return subprocess.run(prefix + [sys.executable, "-m", "pynetlink", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def ok(*args: str, **kw) -> subprocess.CompletedProcess:
    done = cli(*args, **kw)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def bridge(ns):
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "addr", "add", "192.0.2.1/24", "dev", "br0")
    sh("ip", "-n", ns.name, "link", "set", "br0", "up")
    return "br0"


# -- link, addr, route ----------------------------------------------------------------

def test_link_add_veth_with_every_option(ns, ns2, bridge):
    ok("link", "add-veth", "veth0", "ceth0", "--mtu", "1400", "--master", "br0", "--up",
       "--peer-netns", ns2.path, "--netns", ns.path)
    host = ns.link("veth0")
    assert host["mtu"] == 1400 and host["master"] == "br0" and "UP" in host["flags"]
    assert ns2.link("ceth0")["mtu"] == 1500 and "ceth0" not in ns.link_names()


def test_link_commands_change_only_what_they_name(ns, ns2, bridge):
    ok("link", "add-veth", "va", "vb", "--netns", ns.path)
    ok("link", "up", "va", "--netns", ns.path)
    assert "UP" in ns.link("va")["flags"]
    ok("link", "mtu", "va", "1300", "--netns", ns.path)
    assert ns.link("va")["mtu"] == 1300 and "UP" in ns.link("va")["flags"]
    ok("link", "master", "va", "br0", "--netns", ns.path)
    assert ns.link("va")["master"] == "br0"
    ok("link", "down", "va", "--netns", ns.path)
    assert "UP" not in ns.link("va")["flags"]
    ok("link", "rename", "vb", "eth1", "--netns", ns.path)
    assert {"va", "eth1"} <= ns.link_names() and "vb" not in ns.link_names()
    ok("link", "netns", "eth1", "--path", ns2.path, "--netns", ns.path)
    assert "eth1" in ns2.link_names() and "eth1" not in ns.link_names()
    ok("link", "del", "va", "--netns", ns.path)
    assert ns.link_names() == {"lo", "br0"} and ns2.link_names() == {"lo"}


def test_link_netns_by_pid(ns, ns2, sleeper):
    sh("ip", "-n", ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
    ok("link", "netns", "vb", "--pid", str(sleeper), "--netns", ns.path)
    assert "vb" in ns2.link_names()


def test_link_add_bridge(ns):
    ok("link", "add-bridge", "br9", "--mtu", "1400", "--up", "--netns", ns.path)
    link = ns.link("br9")
    assert link["linkinfo"]["info_kind"] == "bridge" and link["mtu"] == 1400 and "UP" in link["flags"]


def test_addr_and_default_route(ns, bridge):
    ok("addr", "add", "br0", "198.51.100.7/24", "--netns", ns.path)
    ok("route", "default", "192.0.2.254", "br0", "--netns", ns.path)
    assert ("198.51.100.7", 24) in {(a["local"], a["prefixlen"]) for a in ns.addresses("br0")}
    assert [r["gateway"] for r in ns.routes() if r["dst"] == "default"] == ["192.0.2.254"]


def contained(ours, theirs) -> bool:
    """Every key of ``ours`` is in ``theirs`` with the same value: dicts
    compared key by key, lists item by item (same length), else equal."""
    if isinstance(ours, dict):
        return isinstance(theirs, dict) and all(k in theirs and contained(v, theirs[k])
                                                for k, v in ours.items())
    if isinstance(ours, list):
        return (isinstance(theirs, list) and len(ours) == len(theirs)
                and all(contained(a, b) for a, b in zip(ours, theirs)))
    return ours == theirs


def shown(*args: str) -> list:
    """``pynetlink ARGS --json``, decoded."""
    return json.loads(ok(*args, "--json").stdout)


@pytest.fixture
def ports(ns, ns2):
    """On br0 (down): va (up) whose peer vb is down in the same namespace;
    vx whose peer vy is in ns2.  No carrier: flags and counters stay still."""
    sh("ip", "-n", ns.name, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
    sh("ip", "-n", ns.name, "link", "add", "vx", "type", "veth", "peer", "name", "vy",
       "netns", ns2.name)
    sh("ip", "-n", ns.name, "link", "set", "va", "master", "br0", "up")
    return ns


LINK_KEYS = {"ifindex", "ifname", "flags", "mtu", "group", "txqlen", "address", "stats64"}


def test_link_show_json_is_the_record_ip_prints(ports):
    ours = shown("link", "show", "--netns", ports.path)
    ip = {link["ifname"]: link for link in ports.ip("-s", "-d", "link", "show")}
    assert [link["ifname"] for link in ours] == list(ip)
    for link in ours:
        assert LINK_KEYS <= set(link) and contained(link, ip[link["ifname"]]), link
    va, vx = (next(link for link in ours if link["ifname"] == n) for n in ("va", "vx"))
    assert va["master"] == "br0" and va["link"] == "vb" and "M-DOWN" in va["flags"]
    assert va["linkinfo"] == {"info_kind": "veth", "info_slave_kind": "bridge",
                              "info_slave_data": {"hairpin": False}}
    assert vx["link_index"] == ip["vx"]["link_index"] and "link" not in vx


def test_link_show_name_gives_the_record_link_show_gives(ports):
    every = {link["ifname"]: link for link in shown("link", "show", "--netns", ports.path)}
    for name in ("va", "vb", "vx", "br0", "lo"):
        assert shown("link", "show", name, "--netns", ports.path) == [every[name]], name


@pytest.mark.unit
def test_link_flags_are_ips_names_in_ips_order_and_unnamed_bits_in_hex():
    from pynetlink._core import IFF_LOWER_UP, IFF_MULTICAST, IFF_RUNNING, IFF_UP
    from pynetlink.cli.records import link_flags
    assert link_flags(IFF_UP | IFF_RUNNING | IFF_LOWER_UP | IFF_MULTICAST) == [
        "MULTICAST", "UP", "LOWER_UP"]
    assert link_flags(IFF_UP, peer_down=True) == ["NO-CARRIER", "UP", "M-DOWN"]
    assert link_flags(IFF_UP | IFF_RUNNING | 1 << 30) == ["UP", "40000000"]


@pytest.mark.unit
def test_address_flags_are_ips_booleans():
    from pynetlink._core import IFA_F_PERMANENT, IFA_F_SECONDARY
    from pynetlink.cli.records import address_flags
    assert address_flags(IFA_F_PERMANENT, "inet") == {}
    assert address_flags(0, "inet6") == {"dynamic": True}
    assert address_flags(IFA_F_PERMANENT | IFA_F_SECONDARY, "inet") == {"secondary": True}
    assert address_flags(IFA_F_PERMANENT | IFA_F_SECONDARY, "inet6") == {"temporary": True}
    assert address_flags(IFA_F_PERMANENT | 1 << 30, "inet") == {"ifa_flags": "40000000"}


def test_link_show_name_names_the_master_in_the_table(ports):
    out = ok("link", "show", "va", "--netns", ports.path).stdout
    assert re.search(r"^\d+\s+va\s+UP\s+1500\s+br0\s", out, re.M), out


def test_link_show_human_table(ns, bridge):
    out = ok("link", "show", "--netns", ns.path).stdout
    assert re.search(r"^\d+\s+br0\s+UP\s+1500", out, re.M) and out.splitlines()[0].startswith("index")


@pytest.fixture
def dual(ns, bridge):
    """br0 with an IPv6 address too (no duplicate address detection)."""
    sh("ip", "-n", ns.name, "addr", "add", "2001:db8::1/64", "dev", "br0", "nodad")
    return bridge


def ip_addresses(ns, *args: str) -> set:
    """``ip -j [ARGS] addr show``: (ifname, family, local, prefixlen) of each address."""
    return {(link["ifname"], a["family"], a["local"], a["prefixlen"])
            for link in ns.ip(*args, "addr", "show") or [] for a in link["addr_info"]}


def shown_addresses(*args: str) -> set:
    return {(link["ifname"], a["family"], a["local"], a["prefixlen"])
            for link in shown("addr", "show", *args) for a in link["addr_info"]}


def routes_of(records) -> set:
    """dst, gateway and dev of each route, as ``ip -j`` writes them."""
    return {(r["dst"], r.get("gateway"), r["dev"]) for r in records}


def ip_routes(ns) -> set:
    return routes_of(ns.routes("-4") + ns.routes("-6"))


@pytest.mark.parametrize("args,ip_args", [
    ((), ()), (("-4",), ("-4",)), (("-6",), ("-6",)), (("br0",), ("dev", "br0")),
    (("lo",), ("dev", "lo")), (("lo", "-6"), ("-6", "dev", "lo")),
], ids=["all", "inet", "inet6", "br0", "lo", "lo-inet6"])
def test_addr_show_json_is_the_record_ip_prints(ns, dual, args, ip_args):
    """ip's records, but a link is described the same with a family or
    without (``ip -6`` takes its link part from the IPv6 link dump, with
    fewer keys): its keys are checked against the unfiltered record."""
    sh("ip", "-n", ns.name, "addr", "add", "203.0.113.5/32", "peer", "203.0.113.6", "dev", "br0")
    sh("ip", "-n", ns.name, "addr", "flush", "dev", "br0", "scope", "link")   # no DAD under way
    ours = shown("addr", "show", *args, "--netns", ns.path)
    family, dev = [a for a in ip_args if a.startswith("-")], [a for a in ip_args if a[0] != "-"]
    ip = ns.ip(*family, "addr", "show", *dev) or []
    links = {link["ifname"]: link for link in ns.ip("addr", "show")}
    assert [link["ifname"] for link in ours] == [link["ifname"] for link in ip]
    for link, theirs in zip(ours, ip):
        assert {"ifindex", "ifname", "flags", "mtu", "group", "addr_info"} <= set(link)
        assert contained(link, dict(links[link["ifname"]], addr_info=theirs["addr_info"])), link


def test_addr_show_json_matches_iproute2(ns, dual):
    assert shown_addresses("--netns", ns.path) == ip_addresses(ns)
    (br0,) = shown("addr", "show", "br0", "--netns", ns.path)
    (v6,) = [a for a in br0["addr_info"] if a["local"] == "2001:db8::1"]
    assert v6["nodad"] is True and "dynamic" not in v6


def test_addr_show_one_link_of_one_family(ns, dual):
    assert shown_addresses("br0", "-4", "--netns", ns.path) == {("br0", "inet", "192.0.2.1", 24)}
    assert shown_addresses("br0", "--family", "6", "--netns", ns.path) == {
        a for a in ip_addresses(ns, "-6") if a[0] == "br0"}
    assert shown_addresses("lo", "-6", "--netns", ns.path) == set()    # lo is down: no ::1


def test_addr_show_human_table(ns, dual):
    ok("addr", "add", "br0", "198.51.100.7/24", "--netns", ns.path)      # with its broadcast
    out = ok("addr", "show", "br0", "--netns", ns.path).stdout
    assert re.search(r"^\d+\s+br0\s+inet\s+198\.51\.100\.7/24\s+198\.51\.100\.255\s+global", out, re.M)
    assert out.splitlines()[0].split()[:4] == ["index", "name", "family", "address"]
    assert re.search(r"^\d+\s+br0\s+inet\s+192\.0\.2\.1/24\s+-\s+global\s+br0$", out, re.M)
    assert re.search(r"^\d+\s+br0\s+inet6\s+2001:db8::1/64\s+-\s+global", out, re.M)


def test_addr_del_removes_only_that_address(ns, dual):
    ok("addr", "add", "br0", "198.51.100.7/24", "--netns", ns.path)
    ok("addr", "del", "br0", "198.51.100.7/24", "--netns", ns.path)
    ok("addr", "del", "br0", "2001:db8::1/64", "--netns", ns.path)
    assert {(a["local"], a["prefixlen"]) for a in ns.addresses("br0")
            if a["scope"] == "global"} == {("192.0.2.1", 24)}


def test_route_show_json_matches_iproute2(ns, dual):
    sh("ip", "-n", ns.name, "route", "add", "198.51.100.0/24", "via", "192.0.2.254")
    sh("ip", "-n", ns.name, "route", "add", "default", "via", "2001:db8::fe")
    ours = shown("route", "show", "--netns", ns.path)
    assert routes_of(ours) == ip_routes(ns)
    assert ("198.51.100.0/24", "192.0.2.254", "br0") in routes_of(ours)
    assert all(r["table"] == "main" for r in ours)


def test_route_show_json_is_the_record_ip_prints(ns, dual):
    sh("ip", "-n", ns.name, "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "metric", "7")
    sh("ip", "-n", ns.name, "route", "add", "203.0.113.0/24", "dev", "br0", "table", "100")
    sh("ip", "-n", ns.name, "addr", "flush", "dev", "br0", "scope", "link")   # no DAD under way
    ours = shown("route", "show", "--table", "all", "--netns", ns.path)
    ip = {(family, r["table"], r["type"], r["dst"], r.get("dev")): r
          for family, flag in (("inet", "-4"), ("inet6", "-6"))
          for r in ns.ip("-d", flag, "route", "show", "table", "all") or []}
    keyed = {(r["family"], r["table"], r["type"], r["dst"], r.get("dev")): r for r in ours}
    assert len(keyed) == len(ours) and set(keyed) == set(ip)
    for key, route in keyed.items():
        rest = {k: v for k, v in route.items() if k != "family"}    # ours: two families, one list
        assert {"type", "dst", "table", "protocol", "scope"} <= set(rest)
        assert contained(rest, ip[key]), route
    assert keyed["inet", "100", "unicast", "203.0.113.0/24", "br0"]["scope"] == "link"
    assert keyed["inet", "main", "unicast", "198.51.100.0/24", "br0"]["metric"] == 7


def test_route_show_by_family_dev_and_table(ns, dual):
    def shown(*args: str) -> set:
        return routes_of(json.loads(ok("route", "show", "--json", *args, "--netns", ns.path).stdout))
    assert shown("-4") == routes_of(ns.routes("-4")) == shown("--family", "4")
    assert shown("-6", "--dev", "br0") == routes_of(ns.routes("-6"))
    assert shown("--dev", "lo") == set()
    local = shown("--table", "local", "-4")
    assert local == routes_of(ns.ip("-4", "route", "show", "table", "local"))
    assert ("192.0.2.1", None, "br0") in local and shown("--table", "255", "-4") == local


def test_route_show_human_table(ns, dual):
    sh("ip", "-n", ns.name, "route", "add", "198.51.100.0/24", "via", "192.0.2.254")
    out = ok("route", "show", "-4", "--netns", ns.path).stdout
    assert out.splitlines()[0].split()[:4] == ["dst", "via", "dev", "table"]
    assert re.search(r"^198\.51\.100\.0/24\s+192\.0\.2\.254\s+br0\s+main\s+boot\s+global", out, re.M)
    assert re.search(r"^192\.0\.2\.0/24\s+-\s+br0\s+main\s+kernel\s+link", out, re.M)


def test_route_add_replace_del_through_a_gateway(ns, bridge):
    ok("route", "add", "198.51.100.0/24", "br0", "--via", "192.0.2.254", "--netns", ns.path)
    assert [r["gateway"] for r in ns.routes() if r["dst"] == "198.51.100.0/24"] == ["192.0.2.254"]
    ok("route", "replace", "198.51.100.0/24", "br0", "--via", "192.0.2.253", "--netns", ns.path)
    assert [r["gateway"] for r in ns.routes() if r["dst"] == "198.51.100.0/24"] == ["192.0.2.253"]
    ok("route", "del", "198.51.100.0/24", "br0", "--via", "192.0.2.253", "--netns", ns.path)
    assert [r for r in ns.routes() if r["dst"] == "198.51.100.0/24"] == []


def test_route_add_without_via_is_on_link(ns, bridge):
    ok("route", "add", "203.0.113.0/24", "br0", "--netns", ns.path)
    (route,) = [r for r in ns.routes() if r["dst"] == "203.0.113.0/24"]
    assert route["scope"] == "link" and "gateway" not in route and route["dev"] == "br0"


def test_route_default_takes_the_gateways_family(ns, dual):
    ok("route", "add", "default", "br0", "--via", "2001:db8::fe", "--netns", ns.path)
    assert [r["gateway"] for r in ns.routes("-6") if r["dst"] == "default"] == ["2001:db8::fe"]
    assert [r for r in ns.routes("-4") if r["dst"] == "default"] == []
    ok("route", "del", "default", "br0", "--via", "2001:db8::fe", "--netns", ns.path)
    assert [r for r in ns.routes("-6") if r["dst"] == "default"] == []


def test_route_add_json_names_the_operation(ns, bridge):
    out = shown("route", "add", "198.51.100.0/24", "br0", "--via", "192.0.2.254",
                "--netns", ns.path)
    assert out == {"operation": "add_route", "dst": "198.51.100.0/24", "dev": "br0",
                   "gateway": "192.0.2.254"}
    (route,) = [r for r in ns.routes() if r["dst"] == "198.51.100.0/24"]
    assert contained({k: v for k, v in out.items() if k != "operation"}, route)


def test_link_add_veth_json_names_the_link_as_ip_does(ns, bridge):
    out = shown("link", "add-veth", "veth0", "ceth0", "--mtu", "1400", "--master", "br0", "--up",
                "--netns", ns.path)
    assert out == {"operation": "create_veth_pair", "ifname": "veth0", "link": "ceth0",
                   "mtu": 1400, "master": "br0", "up": True}
    assert contained({k: out[k] for k in ("ifname", "link", "mtu", "master")}, ns.link("veth0"))


def test_operations_json_use_ip_keys(ns, bridge):
    sh("ip", "-n", ns.name, "link", "add", "va", "type", "veth", "peer", "name", "vb")
    assert shown("link", "master", "va", "br0", "--netns", ns.path) == {
        "operation": "set_interface_master", "ifname": "va", "master": "br0"}
    assert shown("link", "mtu", "va", "1400", "--netns", ns.path) == {
        "operation": "set_mtu", "ifname": "va", "mtu": 1400}
    assert shown("addr", "add", "va", "198.51.100.7/24", "--netns", ns.path) == {
        "operation": "set_interface_ip", "ifname": "va", "local": "198.51.100.7", "prefixlen": 24}
    assert shown("link", "rename", "vb", "eth1", "--netns", ns.path) == {
        "operation": "change_interface_name", "ifname": "vb", "new_ifname": "eth1"}
    assert shown("link", "add-bridge", "br9", "--netns", ns.path) == {
        "operation": "create_bridge", "ifname": "br9"}
    assert contained({"ifname": "va", "master": "br0", "mtu": 1400}, ns.link("va"))
    assert ("198.51.100.7", 24) in {(a["local"], a["prefixlen"]) for a in ns.addresses("va")}


# -- errors and exit status -----------------------------------------------------------------

def test_kernel_error_is_one_line_with_errno_name_and_exit_1(ns, bridge):
    ok("link", "add-veth", "va", "vb", "--netns", ns.path)
    done = cli("link", "add-veth", "va", "vc", "--netns", ns.path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "create_veth_pair" in done.stderr and "EEXIST" in done.stderr and "va" in done.stderr


def test_kernel_error_carries_the_extended_ack_text(ns, bridge):
    done = cli("link", "mtu", "br0", "10", "--netns", ns.path)
    assert done.returncode == 1
    assert re.match(r"pynetlink: set_mtu dev br0: EINVAL \(Invalid argument\): .+", done.stderr)


def test_missing_interface_names_it(ns):
    done = cli("link", "up", "nosuch0", "--netns", ns.path)
    assert done.returncode == 1 and "ENODEV" in done.stderr and "nosuch0" in done.stderr


def test_debug_shows_the_traceback(ns):
    done = cli("--debug", "link", "up", "nosuch0", "--netns", ns.path)
    assert done.returncode == 1 and "Traceback" in done.stderr
    done = cli("link", "up", "nosuch0", "--netns", ns.path, "--debug")
    assert done.returncode == 1 and "Traceback" in done.stderr


@pytest.mark.parametrize("args", [
    ("addr", "add", "lo", "192.0.2.300/24"),            # bad address
    ("link", "mtu", "lo", "many"),                       # not a number
    ("link", "up", "a/b"),                               # not a legal name
    ("link", "up"),                                      # missing argument
    ("link", "netns", "lo"),                             # neither --pid nor --path
    ("frobnicate",),                                     # no such command
    ("demo", "--containers", "0"),
])
def test_usage_errors_exit_2_without_touching_anything(ns, args):
    before = ns.ip("-d", "link", "show")
    done = cli(*args, "--netns", ns.path) if args[0] in ("addr", "link") else cli(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert ns.ip("-d", "link", "show") == before


@pytest.mark.parametrize("args", [
    ("route", "add", "198.51.100.7/24", "br0"),                   # host bits set
    ("route", "add", "198.51.100.0/24", "br0", "--via", "192.0.2.300"),
    ("route", "replace", "nonsense", "br0"),
    ("route", "del", "198.51.100.0/24", "b/r"),                   # not a legal name
    ("route", "add", "198.51.100.0/24"),                          # no DEV
    ("route", "show", "--table", "nosuch"),
    ("route", "show", "--family", "5"),
    ("route", "show", "-4", "-6"),
    ("addr", "del", "br0", "198.51.100.7"),                       # no prefix length
    ("addr", "show", "--family", "4", "-6"),
])
def test_route_and_addr_usage_errors_exit_2_and_change_no_route(ns, bridge, args):
    before = (ns.routes("-4"), ns.routes("-6"), ns.ip("addr", "show"))
    done = cli(*args, "--netns", ns.path)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    assert (ns.routes("-4"), ns.routes("-6"), ns.ip("addr", "show")) == before


@pytest.mark.parametrize("args,operation,name", [
    (("route", "del", "203.0.113.0/24", "br0"), "delete_route", "ESRCH"),
    (("route", "add", "192.0.2.0/24", "br0"), "add_route", "EEXIST"),
    (("addr", "del", "br0", "198.51.100.9/24"), "delete_address", "EADDRNOTAVAIL"),
    (("addr", "show", "nosuch0"), "list_addresses dev nosuch0", "ENODEV"),
])
def test_route_and_addr_kernel_errors_are_one_line_and_exit_1(ns, bridge, args, operation, name):
    done = cli(*args, "--netns", ns.path)
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"pynetlink: {operation}") and name in done.stderr


def test_a_missing_namespace_is_a_runtime_error(ns):
    done = cli("link", "up", "lo", "--netns", "/run/netns/pntest-none")
    assert done.returncode == 1 and "ENOENT" in done.stderr and "pntest-none" in done.stderr


def test_a_failed_create_leaves_nothing(ns):
    done = cli("link", "add-veth", "va", "vb", "--master", "nobr0", "--netns", ns.path)
    assert done.returncode == 1 and "nobr0" in done.stderr
    assert ns.link_names() == {"lo"}


def test_help_of_every_command_has_an_example():
    commands = [(), ("link",), ("addr",), ("route",), ("net",),
                ("link", "add-veth"), ("link", "add-bridge"), ("link", "up"), ("link", "down"),
                ("link", "mtu"), ("link", "master"), ("link", "rename"), ("link", "netns"),
                ("link", "del"), ("link", "show"), ("addr", "add"), ("addr", "del"),
                ("addr", "show"), ("route", "default"), ("route", "add"), ("route", "replace"),
                ("route", "del"), ("route", "show"),
                ("net", "create"), ("net", "init"), ("stats",), ("demo",), ("churn",)]
    for command in commands:
        done = ok(*command, "--help")
        assert "example:\n  pynetlink" in done.stdout, command


def leaf_parsers(parser: argparse.ArgumentParser):
    """Every command's own parser (those with no subcommands)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in action.choices.values():
            yield from leaf_parsers(child)


def test_every_command_names_a_function_of_the_package():
    from pynetlink.cli import command_for
    from pynetlink.cli.parser import build_parser
    targets = [p.get_default("target") for p in leaf_parsers(build_parser())]
    assert all(targets) and len(set(targets)) == len(targets)     # each its own function
    assert all(callable(command_for(t)) for t in targets)


def test_version():
    from importlib.metadata import version
    assert ok("--version").stdout.strip() == f"pynetlink {version('pynetlink')}"


def test_console_script_is_installed():
    exe = pathlib.Path(sys.executable).parent / "pynetlink"     # where pip puts it, PATH or not
    assert os.access(exe, os.X_OK), f"pip install puts a pynetlink console script at {exe}"
    assert subprocess.run([exe, "--version"], capture_output=True, text=True,
                          timeout=60).stdout.startswith("pynetlink ")


# -- what a command imports --------------------------------------------------------------------

LOADED_AFTER = """
import sys
from pynetlink.cli import main
status = main(sys.argv[1:])
print("LOADED", *sorted(sys.modules))
sys.exit(status)
"""

# What ``link show`` has no use for: bulk, the strategies, counters of
# containers, the other commands and what only they need.  (pynetlink.types
# is not in it: Link.from_raw still makes each link's counters a NetworkStats.)
NOT_FOR_LINK_SHOW = {"pynetlink.bulk", "pynetlink.stats", "pynetlink.strategies",
                     "pynetlink.cli.demo", "pynetlink.cli.churn", "pynetlink.cli.lab",
                     "pynetlink.cli.ping", "pynetlink.cli.net", "pynetlink.cli.stats",
                     "pynetlink.cli.state", "pynetlink.cli.addr", "pynetlink.cli.route",
                     "statistics", "resource", "socket", "importlib.metadata"}


def loaded_by(*args: str) -> set:
    """The modules a run of ``pynetlink ARGS`` had imported when it ended."""
    done = subprocess.run([sys.executable, "-c", LOADED_AFTER, *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split()[1:])


def test_link_show_imports_neither_bulk_nor_strategies_nor_other_commands(ns, bridge):
    loaded = loaded_by("link", "show", "--netns", ns.path)
    assert "pynetlink.cli.link" in loaded
    assert loaded & NOT_FOR_LINK_SHOW == set()


# -- net create / init, stats ---------------------------------------------------------------

def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


VETH = {"type": "veth", "bridge": "br0", "veth_prefix": "veth", "mtu": 1450,
        "address": "192.0.2.7/24", "gateway": "192.0.2.1"}


def no_ipv6(*spaces) -> None:
    """IPv6 off in each namespace, on its links and on those made later:
    no router solicitation, DAD or MLD message adds to the counters."""
    for space in spaces:
        space.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1")


def test_net_create_then_init_gives_the_container_its_network(ns, ns2, bridge, tmp_path):
    no_ipv6(ns, ns2)
    config = write(tmp_path, "net.json", [{"type": "loopback"}, VETH])
    state_path = str(tmp_path / "state.json")
    created = ok("net", "create", "--config", config, "--netns", ns2.path, "--state", state_path,
                 "--json", inside=ns.name)
    state = json.loads(open(state_path).read())
    assert json.loads(created.stdout) == state
    assert state["veth_child"] in ns2.link_names()          # renamed to eth0 by init
    host = ns.link(state["veth_host"])
    assert host["master"] == "br0" and host["mtu"] == 1450 and "UP" in host["flags"]
    ok("net", "init", "--config", config, "--state", state_path, "--netns", ns2.path)
    eth0 = ns2.link("eth0")
    assert eth0["mtu"] == 1450 and "UP" in eth0["flags"] and "UP" in ns2.link("lo")["flags"]
    assert ("192.0.2.7", 24) in {(a["local"], a["prefixlen"]) for a in ns2.addresses("eth0")}
    assert [r["gateway"] for r in ns2.routes() if r["dst"] == "default"] == ["192.0.2.1"]
    ns2.run("ping", "-c", "1", "-W", "2", "192.0.2.1")
    stats = json.loads(ok("stats", "--state", state_path, "--json", inside=ns.name).stdout)
    [host_end] = ns.ip("-s", "link", "show", "dev", state["veth_host"])
    host_stats = host_end["stats64"]            # the container's view is the host end's, swapped
    assert stats == {f"{way}_{c}": host_stats[other][c] for way, other in (("rx", "tx"), ("tx", "rx"))
                     for c in ("bytes", "packets", "errors", "dropped")}
    assert stats["tx_packets"] >= 2 and stats["rx_packets"] >= 2  # ARP and echo, both ways
    table = ok("stats", "--host", state["veth_host"], "--netns", ns.path).stdout
    assert re.search(r"^packets\s+\d+\s+\d+", table, re.M)


def test_net_create_takes_a_single_network_object(ns, ns2, bridge, tmp_path):
    config = write(tmp_path, "net.json", VETH)
    out = ok("net", "create", "--config", config, "--netns", ns2.path, inside=ns.name).stdout
    child = re.search(r"^veth_child: (veth\w+)$", out, re.M).group(1)
    assert re.search(r"^veth_host: veth\w+$", out, re.M) and child in ns2.link_names()


def test_net_create_failing_half_way_leaves_nothing(ns, ns2, bridge, tmp_path):
    config = write(tmp_path, "net.json", [VETH, dict(VETH, bridge="nobr0")])
    done = cli("net", "create", "--config", config, "--netns", ns2.path, inside=ns.name)
    assert done.returncode == 1 and "nobr0" in done.stderr
    assert ns.link_names() == {"lo", "br0"} and ns2.link_names() == {"lo"}


@pytest.mark.parametrize("config,message", [
    ("not json", "not valid JSON"), ('{"type": "veth", "colour": "red"}', "unknown key"),
    ('{"type": "carrier-pigeon"}', "carrier-pigeon"), ("[]", "no network"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"type": "veth", "mtu": ' + "9" * 5000 + "}", "net.json: "),
], ids=["not-json", "unknown-key", "unknown-type", "empty", "deep", "huge-int"])
def test_net_create_bad_config_is_a_usage_error(ns, ns2, tmp_path, config, message):
    path = tmp_path / "net.json"
    path.write_text(config)
    done = cli("net", "create", "--config", str(path), "--netns", ns2.path, inside=ns.name)
    assert done.returncode == 2 and message in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_net_create_with_a_state_path_it_cannot_write_makes_nothing(ns, ns2, bridge, tmp_path):
    config = write(tmp_path, "net.json", VETH)
    state = str(tmp_path / "missing" / "state.json")
    done = cli("net", "create", "--config", config, "--netns", ns2.path, "--state", state,
               inside=ns.name)
    assert done.returncode == 2 and "missing" in done.stderr
    assert ns.link_names() == {"lo", "br0"} and ns2.link_names() == {"lo"}


def test_net_create_removes_its_veth_when_the_state_cannot_be_written(ns, ns2, bridge, tmp_path):
    config = write(tmp_path, "net.json", VETH)
    state = tmp_path / "state.json"
    state.mkdir()                           # a directory where the file should go: rename fails
    done = cli("net", "create", "--config", config, "--netns", ns2.path, "--state", str(state),
               inside=ns.name)
    assert done.returncode == 1
    assert ns.link_names() == {"lo", "br0"} and ns2.link_names() == {"lo"}


# -- demo and churn -------------------------------------------------------------------------

def test_echo_request_carries_a_checksum_that_sums_to_zero():
    from pynetlink.cli.ping import checksum, echo_request
    packet = echo_request(0x1234)
    assert packet[0] == 8 and checksum(packet) == 0         # type 8: echo request (RFC 792)


def test_only_our_echo_reply_is_a_reply():
    from pynetlink.cli.ping import echo_request, is_reply
    ip_header = bytes([0x45]) + bytes(19)                   # IPv4, IHL 5: 20 bytes
    reply = bytes([0]) + echo_request(7)[1:]                # type 0: echo reply, same id and seq
    assert is_reply(ip_header + reply, 7)
    assert not is_reply(ip_header + reply, 8)               # another identifier
    assert not is_reply(ip_header + echo_request(7), 7)     # a request, not a reply
    assert not is_reply(ip_header + reply[:7], 7)           # too short



def root_state() -> tuple:
    """What the machine's own namespace has: read only, never changed.
    (Scratch namespaces of test runs, ours or another's, come and go.)"""
    return (sorted(l for l in sh("ip", "netns", "list").stdout.splitlines()
                   if not l.startswith("pntest-")),
            sorted(l["ifname"] for l in json.loads(sh("ip", "-j", "link", "show").stdout)))


def test_demo_pings_from_every_container_and_leaves_nothing():
    before = root_state()
    out = ok("demo", "--containers", "3").stdout
    rows = [l for l in out.splitlines() if re.match(r"c\d+\s", l)]
    assert len(rows) == 3
    for i, row in enumerate(rows):
        cells = row.split()
        assert cells[1] == f"192.0.2.{2 + i}/24" and float(cells[3]) > 0
        assert int(cells[4]) >= 1 and int(cells[5]) >= 1          # rx and tx packets
    assert "IPv6" in out and "router solicitations" in out     # why rx/tx exceed one ping
    assert root_state() == before


def test_demo_json_speaks_ip_and_the_state_files_words():
    rows = shown("demo", "--containers", "2")
    assert [(r["ifname"], r["local"], r["prefixlen"]) for r in rows] == [
        ("eth0", "192.0.2.2", 24), ("eth0", "192.0.2.3", 24)]
    assert all(r["veth_host"].startswith("veth") and r["ping_ms"] > 0 for r in rows)
    assert all(r["stats64"]["tx"]["packets"] >= 1 and r["stats64"]["rx"]["packets"] >= 1
               for r in rows)


def readme_run_command() -> list:
    """The README's "run it" command, after its install step."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"Install and run[^`]*```sh\n(.+?)\n```", text, re.S).group(1)
    install, run = block.split(" && ")
    assert install.startswith("python3 -m pip install")
    return run.split()


def test_the_readme_run_command_works():
    command = readme_run_command()
    assert command[0] == "pynetlink"
    done = subprocess.run([sys.executable, "-m", "pynetlink", *command[1:]], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "pinged the bridge" in done.stdout and "no reply" not in done.stdout


def test_churn_prints_progress_lines_and_a_summary():
    before = root_state()
    done = ok("churn", "--containers", "20", "--repeat", "2")
    progress = done.stderr.splitlines()
    assert [l.split()[0] for l in progress] == ["[1/2]", "[2/2]"] and "\r" not in done.stderr
    assert all("setup" in l and "/s" in l for l in progress)
    assert re.match(r"20 containers x 2 \(median\): setup \d+/s, teardown \d+/s, CPU [\d.]+ ms",
                    done.stdout)
    assert root_state() == before


def test_churn_json_summary():
    summary = json.loads(ok("churn", "--containers", "10", "--json").stdout)
    assert summary["containers"] == 10 and summary["repeat"] == 1
    assert summary["setup_per_s"] > 0 and summary["teardown_per_s"] > 0
    assert len(summary["rounds"]) == 1


# The child starts with SIGINT at Python's default (KeyboardInterrupt), even when this run was
# started with SIGINT ignored (`pytest &` in a shell), which the child would otherwise inherit.
WITH_DEFAULT_SIGINT = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                       "sys.argv[0] = 'pynetlink'; runpy.run_module('pynetlink', run_name='__main__')")


def first_line(stream, seconds: float) -> bytes:
    """The first line written to ``stream`` (a pipe), or what came before
    ``seconds`` ran out or the writer closed it."""
    deadline, got = time.monotonic() + seconds, b""
    while not got.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(stream.fileno(), 1) if ready else b""
        if not chunk:
            break
        got += chunk
    return got


def test_ctrl_c_stops_churn_and_leaves_nothing():
    before = root_state()
    proc = subprocess.Popen([sys.executable, "-c", WITH_DEFAULT_SIGINT, "churn", "--containers", "100",
                             "--repeat", "200"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        first = first_line(proc.stderr, 60)            # the first round is done
        assert first.startswith(b"[1/200]"), first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and b"interrupted" in err and b"Traceback" not in err
    assert root_state() == before


# -- --netns before the command, as `ip -n NS` ----------------------------------------------

def test_netns_before_the_command_acts_inside_that_namespace(ns, veth):
    links = json.loads(ok("--netns", ns.path, "link", "show", "--json").stdout)
    assert {link["ifname"] for link in links} == ns.link_names()
    ok("--netns", ns.path, "link", "mtu", "va", "1400")
    assert ns.link("va")["mtu"] == 1400


@pytest.mark.parametrize("args", [
    ("--netns", "PATH", "demo"),                          # demo makes its own namespaces
    ("--netns", "PATH", "link", "show", "--netns", "/proc/self/ns/net"),
], ids=["not-for-this-command", "two-namespaces"])
def test_netns_before_the_command_is_a_usage_error_where_it_means_nothing(ns, args):
    done = cli(*[ns.path if a == "PATH" else a for a in args])
    assert done.returncode == 2 and "--netns" in done.stderr and done.stdout == ""
