"""sysctls under /proc/sys (the reference's ``pkg/utils/sysctl``)."""
from __future__ import annotations

from typing import Optional

from .spec import E_IO, CNIError


def sysctl(name: str, value: Optional[str] = None, *, quiet: bool = False) -> Optional[str]:
    """Read (value None) or write /proc/sys/NAME of the calling thread's
    network namespace (the opener's: /proc/sys/net is per namespace).
    ``quiet``: a missing or refused file is no error (None)."""
    path = "/proc/sys/" + name
    try:
        if value is None:
            with open(path) as f:
                return f.read().strip()
        with open(path, "w") as f:
            f.write(value)
        return value
    except OSError as e:
        if quiet:
            return None
        raise CNIError(E_IO, f"sysctl {name.replace('/', '.')}: {e.strerror}") from None


def sysctl_on(name: str) -> None:
    """Set a sysctl to 1 unless it is (as the reference's EnableIP4Forward does)."""
    if sysctl(name) != "1":
        sysctl(name, "1")
