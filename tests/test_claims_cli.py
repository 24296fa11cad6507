"""README "The pynetlink command": ``--json`` on every command, the record
each change prints (ip's keys, checked against ``ip -j``), ``net create
--pid``, ``net init --json`` and ``stats --host --json``.  The command runs
as a real subprocess; the other commands' JSON is tested in test_cli.py."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from conftest import sh
from test_readme_claims import wire_up

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cli(*args: str, inside: str = "") -> subprocess.CompletedProcess:
    """``python -m pynetlink ARGS`` (inside the namespace NAME, if given)."""
    prefix = ["ip", "netns", "exec", inside] if inside else []
    return subprocess.run(prefix + [sys.executable, "-m", "pynetlink", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def shown(*args: str, inside: str = ""):
    """``pynetlink ARGS --json``, which must succeed, decoded."""
    done = cli(*args, "--json", inside=inside)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple = ()):
    """(command words, parser) of every command (a parser with no subcommands)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
    for action in subs:
        for word, child in action.choices.items():
            yield from leaf_parsers(child, path + (word,))


@pytest.mark.unit
def test_every_command_takes_json():
    from pynetlink.cli.parser import build_parser
    commands = dict(leaf_parsers(build_parser()))
    assert len(commands) == 40     # 24; issue 16: the link kinds' 6, monitor, neigh 4 and fdb 5
    lacking = [" ".join(words) for words, p in commands.items()
               if "--json" not in {o for a in p._actions for o in a.option_strings}]
    assert lacking == []


# -- the record a change prints, with ip's keys --------------------------------------------------

@pytest.fixture
def wired(ns, ns2):
    """``wire_up`` (va, vb, br0), IPv6 off first: no background traffic."""
    ns.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    return wire_up(ns)


def routes(ns, dst: str) -> list:
    return [(r.get("gateway"), r["dev"]) for r in ns.routes() if r["dst"] == dst]


def test_link_up_json(wired):
    sh("ip", "-n", wired.name, "link", "set", "va", "down")
    assert shown("link", "up", "va", "--netns", wired.path) == {"operation": "interface_up",
                                                                 "ifname": "va"}
    assert "UP" in wired.link("va")["flags"]


def test_link_down_json(wired):
    assert shown("link", "down", "va", "--netns", wired.path) == {"operation": "interface_down",
                                                                   "ifname": "va"}
    assert "UP" not in wired.link("va")["flags"]


def test_link_del_json(wired):
    assert shown("link", "del", "br0", "--netns", wired.path) == {"operation": "delete_link",
                                                                   "ifname": "br0"}
    assert wired.link_names() == {"lo", "va", "vb"}


def test_link_netns_by_path_json(wired, ns2):
    assert shown("link", "netns", "vb", "--path", ns2.path, "--netns", wired.path) == {
        "operation": "set_interface_in_namespace_fd", "ifname": "vb", "netns": ns2.path}
    assert "vb" in ns2.link_names() and "vb" not in wired.link_names()


def test_link_netns_by_pid_json(wired, ns2, sleeper):
    assert shown("link", "netns", "vb", "--pid", str(sleeper), "--netns", wired.path) == {
        "operation": "set_interface_in_namespace_pid", "ifname": "vb", "pid": sleeper}
    assert "vb" in ns2.link_names() and "vb" not in wired.link_names()


def test_addr_del_json(wired):
    assert shown("addr", "del", "va", "192.0.2.1/24", "--netns", wired.path) == {
        "operation": "delete_address", "ifname": "va", "local": "192.0.2.1", "prefixlen": 24}
    assert [a for a in wired.addresses("va") if a["family"] == "inet"] == []


def test_route_replace_json(wired):
    assert shown("route", "replace", "198.51.100.0/24", "va", "--via", "192.0.2.9",
                 "--netns", wired.path) == {"operation": "replace_route", "dst": "198.51.100.0/24",
                                            "dev": "va", "gateway": "192.0.2.9"}
    assert routes(wired, "198.51.100.0/24") == [("192.0.2.9", "va")]


def test_route_del_json(wired):
    assert shown("route", "del", "198.51.100.0/24", "va", "--netns", wired.path) == {
        "operation": "delete_route", "dst": "198.51.100.0/24", "dev": "va"}
    assert routes(wired, "198.51.100.0/24") == []


def test_route_default_json(wired):
    assert shown("route", "default", "192.0.2.254", "va", "--netns", wired.path) == {
        "operation": "set_default_gateway", "gateway": "192.0.2.254", "dev": "va"}
    assert routes(wired, "default") == [("192.0.2.254", "va")]


# -- net create --pid, net init --json, stats --host --json -----------------------------------------

VETH = {"type": "veth", "bridge": "br0", "veth_prefix": "veth", "mtu": 1450,
        "address": "192.0.2.7/24", "gateway": "192.0.2.1"}


def config(tmp_path) -> str:
    path = tmp_path / "net.json"
    path.write_text(json.dumps([{"type": "loopback"}, VETH]))
    return str(path)


def test_net_create_by_pid_puts_the_child_in_that_process_namespace(wired, ns2, sleeper, tmp_path):
    state_path = str(tmp_path / "state.json")
    out = shown("net", "create", "--config", config(tmp_path), "--pid", str(sleeper),
                "--state", state_path, inside=wired.name)
    with open(state_path) as f:
        state = json.load(f)
    assert out == state
    assert ns2.link(state["veth_child"])["mtu"] == 1450
    host = wired.link(state["veth_host"])
    assert (host["master"], host["mtu"], "UP" in host["flags"]) == ("br0", 1450, True)


def test_net_init_json_prints_the_state_it_wrote(wired, ns2, tmp_path):
    state_path = str(tmp_path / "state.json")
    shown("net", "create", "--config", config(tmp_path), "--netns", ns2.path, "--state", state_path,
          inside=wired.name)
    out = shown("net", "init", "--config", config(tmp_path), "--state", state_path,
                "--netns", ns2.path)
    with open(state_path) as f:
        assert out == json.load(f)
    assert out["veth_host"] in wired.link_names() and "UP" in ns2.link("eth0")["flags"]


def test_stats_host_json_is_the_containers_view_of_ips_counters(wired):
    sh("ip", "-n", wired.name, "neigh", "add", "192.0.2.3", "lladdr", "02:00:00:00:00:03", "dev", "va")
    wired.run("ping", "-c", "3", "-i", "0.2", "-W", "1", "192.0.2.3", check=False)  # one way, no ARP
    [link] = wired.ip("-s", "link", "show", "dev", "va")
    counters = ("bytes", "packets", "errors", "dropped")
    expected = ({f"rx_{c}": link["stats64"]["tx"][c] for c in counters}
                | {f"tx_{c}": link["stats64"]["rx"][c] for c in counters})
    assert (expected["rx_packets"], expected["tx_packets"]) == (3, 0)     # a swap would show
    assert shown("stats", "--host", "va", "--netns", wired.path) == expected


# -- what --json leaves out ------------------------------------------------------------------------

LINK_KEYS = {"ifindex", "ifname", "flags", "mtu", "master", "link", "link_index", "group", "txqlen",
             "address", "inet6_addr_gen_mode", "linkinfo", "stats64"}
ROUTE_KEYS = {"type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "metric",
              "family"}


def test_link_show_json_prints_only_the_keys_the_readme_lists(wired):
    records = shown("link", "show", "--netns", wired.path)
    assert {r["ifname"] for r in records} == {"lo", "va", "vb", "br0"}
    assert set().union(*records) <= LINK_KEYS
    assert set(next(r for r in records if r["ifname"] == "va")) == LINK_KEYS - {"master", "link_index"}


def test_route_show_json_prints_only_the_keys_the_readme_lists(wired):
    sh("ip", "-n", wired.name, "route", "add", "default", "via", "192.0.2.254", "dev", "va")
    records = shown("route", "show", "--netns", wired.path)
    assert "default" in {r["dst"] for r in records}
    assert set().union(*records) <= ROUTE_KEYS          # no flags, no pref: not yet decoded
