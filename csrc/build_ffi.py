"""cffi build script for pynetlink's C core (out-of-line API mode).

Kept outside the runtime package, as pyca/cryptography does: setup.py names
it in ``cffi_modules``.  The cdef is the preprocessor-free header ``pn.h``
plus ``pn_constants.cdef``, whose ``#define NAME ...`` lines make the C
compiler fill every kernel constant in from the system's Linux headers.

Set ``PYNETLINK_SANITIZE=1`` to build the core with AddressSanitizer and
UndefinedBehaviorSanitizer (run Python with LD_PRELOAD of libasan then).
"""
import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
SOURCES = ["nlmsg.c", "rtnl.c", "attr.c", "decode.c", "reply.c", "netns.c", "sock.c", "proc.c"]
SOURCES += ["kinds.c"]      # -- link kinds (issue 16) --
SOURCES += ["events.c"]     # -- events (issue 16) --
SOURCES += ["neigh.c"]      # -- neighbours (issue 16) --

CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-fvisibility=hidden"]
LDFLAGS = []
if os.environ.get("PYNETLINK_SANITIZE"):
    CFLAGS += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
               "-fno-sanitize-recover=all",
               "-fno-wrapv"]  # Python's CFLAGS add -fwrapv, which hides signed overflow from UBSan
    LDFLAGS += ["-fsanitize=address,undefined"]

ffibuilder = FFI()
ffibuilder.cdef((HERE / "pn.h").read_text() + (HERE / "pn_constants.cdef").read_text())
ffibuilder.cdef((HERE / "pn_kinds.cdef").read_text())    # -- link kinds (issue 16) --
ffibuilder.cdef((HERE / "pn_neigh_constants.cdef").read_text())  # -- neighbours (issue 16) --
ffibuilder.set_source(
    "pynetlink._pynetlink_cffi",
    """
    #include <sys/socket.h>
    #include "pn_internal.h"
    #include <linux/if_addr.h>
    #include <linux/ipv6_route.h>
    /* -- link kinds (issue 16) -- */
    #include <linux/if_ether.h>
    #include <linux/neighbour.h>   /* -- neighbours (issue 16) -- */
    """,
    # Relative to the project root, where setuptools runs this script.
    sources=[os.path.relpath(HERE / s) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=CFLAGS,
    extra_link_args=LDFLAGS,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
