"""Installing the plugin executable a runtime runs:
``python3 -m pynetlink.cni --install /opt/cni/bin`` writes
``/opt/cni/bin/pynetlink-cni``, a launcher that starts the interpreter
without ``site`` (see ``LAUNCHER``)."""
from __future__ import annotations

import os
import sys

import _cffi_backend

from .spec import PLUGIN

LAUNCHER = """#!{python} -IS
# {name}: the pynetlink CNI plugin, for this interpreter (written by
# `python3 -m pynetlink.cni --install DIR`).  -S: no site module and no .pth
# files at start-up (tens of milliseconds per pod); the two directories it
# needs, pynetlink's and cffi's, are put on sys.path here.  The answer is on
# stdout once main() returns: the process ends at once, without tearing the
# interpreter down (the kernel closes every fd).
import os
import sys
sys.path[:0] = {paths!r}
from pynetlink.cni import main
code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""

PYNETLINK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launcher_paths() -> list:
    """The directories that hold this pynetlink and cffi's runtime module."""
    paths: list[str] = []
    for module_file in (PYNETLINK_DIR, _cffi_backend.__file__):
        directory = os.path.dirname(os.path.abspath(module_file))
        if directory not in paths:
            paths.append(directory)
    return paths


def install(directory: str, name: str = PLUGIN) -> str:
    """Write the executable a runtime runs, ``DIRECTORY/NAME`` (e.g.
    /opt/cni/bin/pynetlink-cni), bound to this interpreter and this
    pynetlink; replaced atomically.  Returns its path."""
    path = os.path.join(directory, name)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(LAUNCHER.format(python=sys.executable, name=name, paths=launcher_paths()))
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


def install_main(argv: list) -> int:
    """``--install DIR``: write the plugin executable into a CNI bin directory."""
    if len(argv) == 2 and argv[0] == "--install":
        print(install(argv[1]))
        return 0
    print(f"usage: {PLUGIN} (run by a CNI runtime: CNI_COMMAND=... on stdin's config)\n"
          f"       python3 -m pynetlink.cni --install DIR   # write DIR/{PLUGIN}", file=sys.stderr)
    return 2
