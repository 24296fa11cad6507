"""STATUS and GC (spec 1.1.0), for both jobs: this plugin's own answer,
then the IPAM plugin's."""
from __future__ import annotations

from typing import Optional

from .. import Handle
from .delegate import ipam_plugin
from .netconf import BridgeConf
from .spec import E_INVALID_CONFIG, E_NOT_AVAILABLE, CNIError, Env


def status(env: Env, raw: bytes, conf: dict, bc: Optional[BridgeConf]) -> None:
    """STATUS (1.1.0): ready if an rtnetlink socket opens here, and the
    IPAM plugin's STATUS says it is ready (its error passed on)."""
    try:
        Handle().close()
    except OSError as e:
        raise CNIError(E_NOT_AVAILABLE, "cannot open an rtnetlink socket", str(e)) from None
    if bc is not None and bc.ipam_type:
        ipam_plugin(bc.ipam_type, env, raw).run("STATUS")


def gc(env: Env, raw: bytes, conf: dict, bc: Optional[BridgeConf]) -> None:
    """GC (1.1.0): this plugin keeps no state of its own (its links die with
    their namespaces); the IPAM plugin's GC gets the valid attachments."""
    attachments = conf.get("cni.dev/valid-attachments", [])
    if not isinstance(attachments, list):
        raise CNIError(E_INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    if bc is not None and bc.ipam_type:
        ipam_plugin(bc.ipam_type, env, raw).run("GC")
