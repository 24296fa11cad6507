"""Names of what a setup makes, in one place: random veth host-end names,
link groups, and how often a taken name is retried.  Shared by ``Veth``,
``bulk`` and the CNI plugin (which imports nothing heavier than this)."""
from __future__ import annotations

import os

from . import _validate as v

DEFAULT_DEVICE = "eth0"     # the container end's final name
SUFFIX_LEN = 7              # random characters after veth_prefix (fewer if the prefix is long)
MIN_SUFFIX_LEN = 4
NAME_ATTEMPTS = 10          # fresh names tried when a name is taken (EEXIST), as the CNI plugins do
GROUP_FLOOR = 2**16         # random link groups start here, clear of hand-picked small ones
GROUP_CEILING = 2**31       # and stay below: iproute2 prints groups as signed numbers


def suffix_len(prefix: str) -> int:
    """How many random characters fit after ``prefix`` (at least four)."""
    room = v.IFNAMSIZ - 1 - len(v.ifname(prefix, "veth_prefix"))
    if room < MIN_SUFFIX_LEN:
        raise ValueError(f"veth_prefix {prefix!r} is too long: names are at most "
                         f"{v.IFNAMSIZ - 1} bytes and need {MIN_SUFFIX_LEN} random characters")
    return min(SUFFIX_LEN, room)


def random_name(prefix: str, length: int) -> str:
    """``prefix`` and ``length`` random hex digits (from the kernel's CSPRNG)."""
    return prefix + os.urandom((length + 1) // 2).hex()[:length]


def random_below(n: int) -> int:
    """A uniformly random int in [0, n), n < 2**32, from the kernel's CSPRNG
    (``secrets`` would cost a short-lived process milliseconds of imports)."""
    limit = (1 << 32) - (1 << 32) % n           # reject the biased tail
    while True:
        value = int.from_bytes(os.urandom(4), "little")
        if value < limit:
            return value % n


def random_group() -> int:
    """A fresh link group for the host ends of one setup."""
    return GROUP_FLOOR + random_below(GROUP_CEILING - GROUP_FLOOR)
