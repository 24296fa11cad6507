"""``pynetlink route ...``: routes (``ip route``)."""
from __future__ import annotations

from .common import simple

#: ``ip route add default via GATEWAY dev DEV``.
default = simple("set_default_gateway", "gateway", "dev")
