"""libcontainer's network types, with its JSON keys.

``Network`` (configuration), ``NetworkState`` (runtime state) and
``NetworkStats`` (counters) read and write the JSON libcontainer does:
``to_json`` omits empty fields where Go's ``omitempty`` would (every field
of ``Network`` and ``NetworkState``; none of ``NetworkStats``).  Reading is
strict where Go's decoder is lax: an unknown key or a value of the wrong
type is a ``ValueError`` naming it.  ``null`` reads as the field's zero
value, as in Go.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Type, TypeVar

__all__ = ["Network", "NetworkState", "NetworkStats"]

T = TypeVar("T", bound="_Json")

_KINDS: Dict[str, Any] = {"str": str, "int": int, "bool": bool}
_INT64 = (-2**63, 2**63 - 1)                # Go's int
_UINT64 = (0, 2**64 - 1)                    # Go's uint64
_JSON_NAMES = {str: "string", int: "integer", bool: "boolean"}


def loads(text: str, what: str) -> Any:
    """JSON text decoded; a ValueError that starts with ``what`` for text
    that is not JSON, nested too deeply, or holds an integer too long to read."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{what}: not valid JSON: {e}") from None
    except RecursionError:
        raise ValueError(f"{what}: JSON nested too deeply") from None
    except ValueError as e:                 # e.g. an integer past int_max_str_digits
        raise ValueError(f"{what}: {e}") from None


class _Json:
    """JSON methods shared by the three types (dataclasses of str/int/bool)."""

    __dataclass_fields__: ClassVar[Dict[str, Any]]     # each subclass is a dataclass
    _omitempty: ClassVar[bool] = True
    _unsigned: ClassVar[bool] = False

    @classmethod
    def from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            field = fields.get(key)
            if field is None:
                raise ValueError(f"{cls.__name__}: unknown key {key!r}")
            if value is None:
                continue                                    # Go: null leaves the zero value
            kind = _KINDS[field.type if isinstance(field.type, str) else field.type.__name__]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{cls.__name__}: {key!r} must be a JSON {_JSON_NAMES[kind]}, "
                                 f"not {json.dumps(value)}")
            if kind is int:
                low, high = _UINT64 if cls._unsigned else _INT64
                if not low <= value <= high:
                    raise ValueError(f"{cls.__name__}: {key!r} is out of range [{low}, {high}]: {value}")
            values[key] = value
        return cls(**values)

    @classmethod
    def from_json(cls: Type[T], text: str) -> T:
        return cls.from_dict(loads(text, cls.__name__))

    def to_dict(self) -> Dict[str, Any]:
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value or not self._omitempty:
                out[field.name] = value
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)


@dataclass
class Network(_Json):
    """One network of a container (libcontainer's ``network.Network``).

    ``type`` selects the strategy ("veth", "loopback", "netns"); ``address``
    and ``ipv6_address`` are CIDRs; ``mtu`` applies to both veth ends.

    Beyond libcontainer, a veth network is quiet on IPv6 unless asked: the
    host end (a bridge port) gets no IPv6 link-local address, nor does a
    container end without ``ipv6_address`` (as Docker does), so neither
    sends DAD, router solicitations or MLD reports that the bridge would
    flood to every container; the IPv6 addresses pynetlink assigns skip
    DAD (usable at once).  ``ipv6_link_local`` keeps the kernel's
    link-local address on the container end, ``host_ipv6_link_local`` on
    the host end.
    """
    type: str = ""
    ns_path: str = ""
    bridge: str = ""
    veth_prefix: str = ""
    address: str = ""
    gateway: str = ""
    mtu: int = 0
    mac_address: str = ""
    ipv6_address: str = ""
    ipv6_gateway: str = ""
    txqueuelen: int = 0
    hairpin_mode: bool = False
    ipv6_link_local: bool = False
    host_ipv6_link_local: bool = False


@dataclass
class NetworkState(_Json):
    """What a strategy made: the veth names on each side and the namespace path."""
    veth_host: str = ""
    veth_child: str = ""
    ns_path: str = ""


@dataclass
class NetworkStats(_Json):
    """Interface counters, from the container's point of view."""
    _omitempty: ClassVar[bool] = False
    _unsigned: ClassVar[bool] = True

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0
