"""The README's examples run and do what they say."""
from __future__ import annotations

import pathlib
import subprocess
import sys

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run(name: str) -> str:
    return subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, check=True, timeout=120).stdout


def test_quickstart_wires_a_container_namespace():
    out = run("quickstart.py")
    assert "eth0" in out and "192.0.2.2/24" in out and "default via 192.0.2.1 dev eth0" in out


def test_container_example_pings_the_bridge_and_counts_it():
    out = run("container.py")
    assert "3 received, 0% packet loss" in out
    assert '"veth_host": "veth' in out and '"tx_packets"' in out
