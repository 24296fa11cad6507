"""This plugin's network configuration: which job it does (bridge, or
loopback with ``"loopback": true``) and the bridge options, validated
before anything is made.

``ipMasq`` and ``ipMasqBackend`` are the reference's (see ipmasq.py).
Options of the reference plugin that are not implemented (``vlan``,
``vlanTrunk``, ``macspoofchk``, ``enabledad``, ``forceAddress``, ...) are
refused with error 2 whenever they ask for something other than
their default; unknown keys are ignored, as the reference does.
"""
from __future__ import annotations

import json

from .. import _validate
from .spec import E_INVALID_CONFIG, E_UNSUPPORTED_FIELD, PLUGIN, CNIError, Env, field

# Reference bridge options this plugin does not implement, with the value
# that means "off" (accepted: it asks for nothing).
UNSUPPORTED = {
    "forceAddress": False, "vlan": 0, "vlanTrunk": [],
    "preserveDefaultVlan": True, "macspoofchk": False, "enabledad": False,
    "disableContainerInterface": False, "portIsolation": False,
}
BRIDGE_KEYS = ("bridge", "isGateway", "isDefaultGateway", "mtu", "hairpinMode", "promiscMode",
               "ipam", "ipMasq", "ipMasqBackend", *UNSUPPORTED)
IPMASQ_BACKENDS = ("iptables", "nftables")


def refuse_unsupported(conf: dict) -> None:
    """Reference options asking for something this plugin does not do: error 2."""
    for key, off in UNSUPPORTED.items():
        value = conf.get(key)
        if value is None or value == off or (off == [] and value in ([], None)):
            continue
        raise CNIError(E_UNSUPPORTED_FIELD,
                       f"unsupported field {key}={json.dumps(value)}: {PLUGIN} does not implement {key}",
                       "remove it, or use the reference bridge plugin for this network")


class BridgeConf:
    """The bridge-mode options of a network configuration, validated."""

    def __init__(self, conf: dict, env: Env):
        refuse_unsupported(conf)
        self.bridge = field(conf, "bridge", str, "cni0")
        self.is_default_gateway = field(conf, "isDefaultGateway", bool, False)
        self.is_gateway = field(conf, "isGateway", bool, False) or self.is_default_gateway
        self.mtu = field(conf, "mtu", int, 0)
        self.hairpin = field(conf, "hairpinMode", bool, False)
        self.promisc = field(conf, "promiscMode", bool, False)
        self.network = field(conf, "name", str, "")
        self.ip_masq = field(conf, "ipMasq", bool, False)
        self.ip_masq_backend = ipmasq_backend(conf, env.command, self.ip_masq)
        ipam = field(conf, "ipam", dict, {})
        self.ipam_type = field(ipam, "type", str, "")
        self.dns = field(conf, "dns", dict, {})
        self.mac = container_mac(conf, env)
        # pynetlink's own keys: IPv6 link-local on the host end (a bridge port
        # needs none: quiet by default) and on the container end (kept by
        # default, as the reference plugin keeps it)
        self.host_ipv6_link_local = field(conf, "hostIPv6LinkLocal", bool, False)
        self.ipv6_link_local = field(conf, "ipv6LinkLocal", bool, True)
        try:
            _validate.ifname(self.bridge, "bridge")
            if self.mac:
                _validate.mac(self.mac)
        except ValueError as e:
            raise CNIError(E_INVALID_CONFIG, str(e)) from None
        if self.mtu and not 68 <= self.mtu <= 65535:
            raise CNIError(E_INVALID_CONFIG,
                           f"mtu {self.mtu} is out of range [68, 65535] (0: the kernel's default)")
        if self.hairpin and self.promisc:
            raise CNIError(E_INVALID_CONFIG, "cannot set hairpin mode and promiscuous mode at the same time")
        if "/" in self.ipam_type or self.ipam_type in (".", ".."):
            raise CNIError(E_INVALID_CONFIG, f"ipam type {self.ipam_type!r} is not a plugin name")


def ipmasq_backend(conf: dict, command: str, ip_masq: bool) -> str:
    """``ipMasqBackend``: "iptables", "nftables", or "" when absent (the
    reference's default).  Any other value (an empty string too) is the
    reference's error when the rules are made or checked (DEL ignores it,
    as the reference does)."""
    backend = field(conf, "ipMasqBackend", str, None)
    if ip_masq and command in ("ADD", "CHECK") and backend is not None and backend not in IPMASQ_BACKENDS:
        raise CNIError(E_INVALID_CONFIG, f"unknown ipmasq backend {json.dumps(backend)}",
                       f"ipMasqBackend is one of {', '.join(IPMASQ_BACKENDS)}")
    return backend or ""


def container_mac(conf: dict, env: Env) -> str:
    """The container end's MAC address, as the reference takes it: CNI_ARGS
    MAC, then args.cni.mac, then runtimeConfig.mac (the last one set wins)."""
    mac = env.args.get("MAC", "")
    args = field(conf, "args", dict, {})
    mac = field(field(args, "cni", dict, {}), "mac", str, "") or mac
    return field(field(conf, "runtimeConfig", dict, {}), "mac", str, "") or mac


def is_loopback(conf: dict) -> bool:
    """``"loopback": true`` selects the loopback job; it takes no bridge options."""
    if not field(conf, "loopback", bool, False):
        return False
    mixed = [k for k in BRIDGE_KEYS if k in conf and k != "ipam"]
    if conf.get("ipam"):
        mixed.append("ipam")
    if mixed:
        raise CNIError(E_INVALID_CONFIG,
                       f"\"loopback\": true takes no bridge options (found: {', '.join(mixed)})")
    return True
