"""Only the compiled parts live here (the cffi core and the CNI shim);
everything else is in pyproject.toml."""
import importlib.util
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

SHIM_BUILDER = os.path.join("csrc", "shim", "build_shim.py")


def load_shim_builder():
    spec = importlib.util.spec_from_file_location("build_shim", SHIM_BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildExtAndShim(build_ext):
    """build_ext, then the CNI shim executable into pynetlink/cni/ (in place
    or in build_lib).  A shim that fails to build is reported, not fatal:
    the installer then installs the pure-Python plugin."""

    def run(self):
        super().run()
        out_dir = os.path.join("pynetlink" if self.inplace else os.path.join(self.build_lib, "pynetlink"),
                               "cni")
        try:
            path = load_shim_builder().build(self.compiler, self.build_temp, out_dir)
        except Exception as e:      # CompileError, LinkError, no compiler
            print(f"warning: the pynetlink CNI shim was not built ({e}); "
                  "`python3 -m pynetlink.cni --install` will install the Python plugin", flush=True)
        else:
            print(f"built the pynetlink CNI shim: {path}", flush=True)


setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"], cmdclass={"build_ext": BuildExtAndShim})
