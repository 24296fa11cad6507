"""``pynetlink addr ...``: addresses (``ip addr``)."""
from __future__ import annotations

from .common import simple

#: ``ip addr add CIDR dev NAME`` (IPv4 gets its broadcast).
add = simple("set_interface_ip", "name", "cidr")
