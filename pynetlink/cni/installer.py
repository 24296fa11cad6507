"""Installing the plugin executable a runtime runs:
``python3 -m pynetlink.cni --install /opt/cni/bin`` writes

- ``/opt/cni/bin/pynetlink-cni``: the C shim shipped in this package
  (``pynetlink/cni/pynetlink-cni-shim``, built from csrc/shim/), which
  answers VERSION itself and forwards every other command to the daemon,
  falling back to exec mode when no daemon answers;
- ``/opt/cni/bin/pynetlink-cni-exec``: the exec-mode plugin, a launcher that
  starts the interpreter without ``site`` (see ``LAUNCHER``); the shim execs
  it (``<its own path>-exec``), and a network whose ``type`` names it runs
  in exec mode always.

``--install DIR --exec-only`` writes the launcher as ``DIR/pynetlink-cni``
(no shim); so does ``--install DIR`` when this pynetlink has no shim (built
without a C compiler), saying so on stderr."""
from __future__ import annotations

import os
import shutil
import sys
from typing import Callable, Optional

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
SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pynetlink-cni-shim")
EXEC_SUFFIX = "-exec"               # the shim execs "<its own path>-exec"


def launcher_paths() -> list:
    """The directories that hold this pynetlink and cffi's runtime module."""
    paths: list[str] = []
    for module_file in (PYNETLINK_DIR, _cffi_backend.__file__):
        directory = os.path.dirname(os.path.abspath(module_file))
        if directory not in paths:
            paths.append(directory)
    return paths


def shim_executable() -> Optional[str]:
    """The shim shipped in this package, or None when it was not built."""
    return SHIM if os.access(SHIM, os.X_OK) else None


def replace_file(path: str, write: Callable[[str], object]) -> str:
    """Write ``path`` through ``write(tmp)``, mode 0755, replaced atomically."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_launcher(path: str) -> str:
    """The exec-mode plugin (``LAUNCHER``) at ``path``, for this interpreter."""
    text = LAUNCHER.format(python=sys.executable, name=os.path.basename(path), paths=launcher_paths())

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)
    return replace_file(path, write)


def install(directory: str, name: str = PLUGIN, exec_only: bool = False) -> str:
    """Write the executable a runtime runs, ``DIRECTORY/NAME`` (e.g.
    /opt/cni/bin/pynetlink-cni): the shim, with the exec-mode launcher
    beside it as ``NAME-exec``; with ``exec_only`` (or no shim in this
    package), the launcher itself.  Each file is replaced atomically.
    Returns the path of ``DIRECTORY/NAME``."""
    path = os.path.join(directory, name)
    write_launcher(path + EXEC_SUFFIX)
    shim = None if exec_only else shim_executable()
    if shim is None:
        if not exec_only:
            print(f"{PLUGIN}: this pynetlink has no shim ({SHIM} was not built): "
                  f"installed the Python plugin as {path}", file=sys.stderr)
        return write_launcher(path)
    return replace_file(path, lambda tmp: shutil.copyfile(shim, tmp))


USAGE = (f"usage: {PLUGIN} (run by a CNI runtime: CNI_COMMAND=... on stdin's config)\n"
         f"       python3 -m pynetlink.cni --install DIR [--exec-only]\n"
         f"           # write DIR/{PLUGIN} (the shim; with --exec-only the Python plugin)\n"
         f"           # and DIR/{PLUGIN}{EXEC_SUFFIX} (the Python plugin)")


def install_main(argv: list) -> int:
    """``--install DIR [--exec-only]``: write the plugin into a CNI bin directory."""
    if len(argv) in (2, 3) and argv[0] == "--install" and argv[2:] in ([], ["--exec-only"]):
        print(install(argv[1], exec_only=argv[2:] == ["--exec-only"]))
        return 0
    print(USAGE, file=sys.stderr)
    return 2
