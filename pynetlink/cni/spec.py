"""The CNI specification's plumbing, as any plugin needs it (the reference's
``pkg/skel`` and ``pkg/types``): the versions spoken, the error object and
its codes, the CNI_* environment, CNI_ARGS, the configuration on stdin, and
the VERSION answer.  No netlink here: the standard library and
pynetlink's argument checks (interface names) only.

Error codes: the spec's well-known ones — 1 incompatible version,
2 unsupported field, 3 container unknown, 4 invalid environment variables,
5 I/O failure, 6 decoding failure, 7 invalid network configuration,
11 try again later, 50 not available (STATUS) — an IPAM plugin's own error
passed on unchanged, and this plugin's: 100 the kernel refused an operation,
101 a delegated plugin failed without a CNI error, 102 CHECK found the
kernel different from ``prevResult``, 999 an unexpected internal error.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Mapping

from .. import _validate

SUPPORTED_VERSIONS = ("0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
PLUGIN = "pynetlink-cni"

# The spec's well-known error codes, and this plugin's own (100+).
E_INCOMPATIBLE_VERSION = 1
E_UNSUPPORTED_FIELD = 2
E_UNKNOWN_CONTAINER = 3
E_INVALID_ENV = 4
E_IO = 5
E_DECODE = 6
E_INVALID_CONFIG = 7
E_TRY_AGAIN = 11
E_NOT_AVAILABLE = 50
E_KERNEL = 100
E_DELEGATE = 101
E_CHECK = 102
E_INTERNAL = 999

MAX_STDIN = 16 << 20            # bytes of configuration read at most

ENV_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
}


class CNIError(Exception):
    """An error as the spec reports it: a code, a short message, details."""

    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_dict(self, version: str) -> dict:
        doc: dict[str, Any] = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            doc["details"] = self.details
        return doc


def warn(message: str) -> None:
    """A failure that is not the one reported (a clean-up step): stderr only."""
    print(f"{PLUGIN}: {message}", file=sys.stderr)


# -- environment ---------------------------------------------------------------------------

class Env:
    """The CNI_* variables of one invocation, checked for its command;
    ``environ``: the whole environment, which delegated plugins inherit."""

    def __init__(self, command: str, environ: Mapping[str, str]):
        self.command, self.environ = command, environ
        for name in ENV_REQUIRED[command]:
            if not environ.get(name):
                raise CNIError(E_INVALID_ENV, f"{name} is required for {command}")
        self.container_id = environ.get("CNI_CONTAINERID", "")
        self.netns = environ.get("CNI_NETNS", "")
        self.ifname = environ.get("CNI_IFNAME", "")
        self.args = parse_cni_args(environ.get("CNI_ARGS", ""))
        self.path = [p for p in environ.get("CNI_PATH", "").split(":") if p]
        if self.container_id:
            check_container_id(self.container_id)
        if self.ifname:
            check_ifname(self.ifname)


def check_container_id(value: str) -> None:
    """The spec's container ID: an alphanumeric, then alphanumerics, '_', '.', '-'."""
    ok = value[0].isascii() and value[0].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in value)
    if not ok:
        raise CNIError(E_INVALID_ENV, f"CNI_CONTAINERID {value!r} is not a valid container ID",
                       "must start with a letter or digit, then letters, digits, '_', '.', '-'")


def check_ifname(value: str) -> None:
    """CNI_IFNAME as the kernel's dev_valid_name() accepts it."""
    try:
        _validate.ifname(value, "CNI_IFNAME")
    except ValueError as e:
        raise CNIError(E_INVALID_ENV, f"CNI_IFNAME {value!r} is not a valid interface name",
                       str(e)) from None


def parse_cni_args(text: str) -> dict:
    """CNI_ARGS ("K=V;K2=V2"), as the reference reads it: ``MAC`` is used,
    ``IgnoreUnknown=1`` lets any other key pass, else another key is an error."""
    pairs = {}
    for item in filter(None, text.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CNIError(E_INVALID_ENV, f"CNI_ARGS item {item!r} is not KEY=VALUE")
        pairs[key] = value
    ignore = pairs.pop("IgnoreUnknown", "").lower() in ("1", "true")
    unknown = sorted(set(pairs) - {"MAC"})
    if unknown and not ignore:
        raise CNIError(E_INVALID_ENV, f"CNI_ARGS: unknown keys {', '.join(unknown)}",
                       "add IgnoreUnknown=1 to pass keys this plugin does not use")
    return pairs


# -- configuration -------------------------------------------------------------------------

def decode_config(raw: bytes) -> dict:
    """The network configuration object (error 6 if it is not one)."""
    try:
        conf = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CNIError(E_DECODE, "the network configuration is not valid JSON", str(e)) from None
    except RecursionError:
        raise CNIError(E_DECODE, "the network configuration is nested too deeply to decode") from None
    if not isinstance(conf, dict):
        raise CNIError(E_DECODE, "the network configuration is not a JSON object")
    return conf


def config_version(conf: dict) -> str:
    """``cniVersion``, one this plugin speaks (error 1 otherwise)."""
    version = conf.get("cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise CNIError(E_INCOMPATIBLE_VERSION,
                       f"incompatible CNI version {version!r}: this plugin supports "
                       f"{', '.join(SUPPORTED_VERSIONS)}")
    return version


def check_common(conf: dict) -> None:
    """name and type are required strings."""
    for key in ("name", "type"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise CNIError(E_INVALID_CONFIG, f"the network configuration needs a non-empty {key!r}")


def field(conf: dict, key: str, kind: type, default):
    """conf[key] of JSON type ``kind`` (bool is not an int here), or the default."""
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CNIError(E_INVALID_CONFIG, f"{key} must be a {_json_type(kind)}, not {json.dumps(value)}")
    return value


def _json_type(kind: type) -> str:
    return {bool: "boolean", int: "number", str: "string", dict: "object", list: "list"}[kind]


def asked_version(raw: bytes):
    """The ``cniVersion`` the raw configuration names, if it is a JSON object (else None)."""
    try:
        return json.loads(raw).get("cniVersion") if raw.strip() else None
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return None


def error_version(raw: bytes) -> str:
    """The cniVersion an error is reported in: the configuration's, if it says one."""
    version = asked_version(raw)
    return version if isinstance(version, str) and version else LATEST


def version_info(raw: bytes) -> dict:
    """VERSION: the versions spoken; ``cniVersion`` echoes the input's when
    it is one of them."""
    asked = asked_version(raw)
    return {"cniVersion": asked if asked in SUPPORTED_VERSIONS else LATEST,
            "supportedVersions": list(SUPPORTED_VERSIONS)}
