"""pynetlink-cni: a CNI plugin (spec 1.0.0 and 1.1.0; 0.4.0 configs accepted)
doing the reference ``bridge`` plugin's job — or, with ``"loopback": true``,
the reference ``loopback`` plugin's — over pynetlink.

The runtime executes the plugin once per container and command, with
``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``,
``CNI_ARGS`` and ``CNI_PATH`` in the environment and the network
configuration as JSON on stdin; it reads a result (ADD), nothing (DEL,
CHECK, STATUS, GC) or an error (``{"cniVersion", "code", "msg",
"details"}``, non-zero exit) on stdout.

The modules, one job each (after the reference's ``pkg/skel``, ``pkg/ipam``,
``pkg/ns``, ``pkg/utils/sysctl`` and ``plugins/main/bridge``):

- spec.py: versions, error codes, the CNI_* environment, CNI_ARGS, the
  configuration, VERSION;
- netconf.py: this plugin's options (bridge or loopback job; refused ones);
- dispatch.py: one command from environment and stdin to stdout and exit
  code — ``run(environ, stdin)`` as a function, ``main()`` as the executable;
- delegate.py: delegated (IPAM) plugins;  result.py: the result model;
- hostlocal.py (+ hostlocal_store.py, hostlocal_ranges.py): host-local IPAM
  in-process, on the reference plugin's store (same files, same lock);
- sysctl.py;  kernel.py: the container's namespace, batch failures;
- bridge.py, bridge_del.py, bridge_check.py: ADD, DEL, CHECK of the bridge
  job (CHECK reads the container's links, addresses and routes with the
  library's dumps: the plugin never runs ``ip``);
- loopback_add.py, loopback.py: ADD, and DEL/CHECK, of the loopback job;
- status.py: STATUS and GC;  installer.py: the launcher installer;
- wire.py: the shim <-> daemon protocol (requests, responses, limits, a
  client);  daemon.py: ``pynetlink-cni daemon [--socket PATH] [--debug]
  [--allow-uid UID]``, the resident plugin: each request the shim forwards
  is answered by ``dispatch.run`` in a thread of its own, exactly as exec
  mode answers it (root-only socket, SO_PEERCRED checked, systemd socket
  activation: contrib/systemd/).

Start-up: importing this package loads dispatch.py, spec.py and netconf.py
(and ``pynetlink/__init__``); a command's module, and what it needs, is
imported when the command runs.  Install the executable with
``python3 -m pynetlink.cni --install /opt/cni/bin``: it starts the
interpreter without ``site`` (see ``installer.LAUNCHER``).
"""
from __future__ import annotations

import importlib
import warnings

from .dispatch import main, run

# Public names of the submodules, imported on first use (PEP 562).
_LAZY = {
    "CNIError": "spec", "SUPPORTED_VERSIONS": "spec", "LATEST": "spec", "PLUGIN": "spec",
    "CNIResult": "result", "CNIRoute": "result", "IPConfig": "result",
    "parse_result": "result", "render_result": "result",
    "install": "installer", "install_main": "installer",
}
# Old names, kept for one release: (module, new name).
_DEPRECATED = {"Result": ("result", "CNIResult"), "Route": ("result", "CNIRoute"),
               "cli": ("installer", "install_main")}

__all__ = ["main", "run", *_LAZY]


def __getattr__(name: str):
    if name in _DEPRECATED:
        module, new = _DEPRECATED[name]
        warnings.warn(f"pynetlink.cni.{name} is deprecated; use pynetlink.cni.{new}",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(f"{__name__}.{module}"), new)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
