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

    def shim_dir(self, inplace: bool) -> str:
        return os.path.join("pynetlink" if inplace else os.path.join(self.build_lib, "pynetlink"), "cni")

    def shim_path(self, inplace: bool) -> str:
        return os.path.join(self.shim_dir(inplace), load_shim_builder().SHIM)

    def get_outputs(self):
        return super().get_outputs() + [self.shim_path(False)]

    def get_output_mapping(self):
        """Editable installs copy the shim into the source tree, as the core."""
        mapping = super().get_output_mapping()
        mapping[self.shim_path(False)] = self.shim_path(True)
        return mapping

    def run(self):
        super().run()
        try:
            path = load_shim_builder().build(self.compiler, self.build_temp, self.shim_dir(self.inplace))
        except Exception as e:      # CompileError, LinkError, no compiler
            print(f"warning: the pynetlink CNI shim was not built ({e}); "
                  "`python3 -m pynetlink.cni --install` will install the Python plugin", flush=True)
        else:
            print(f"built the pynetlink CNI shim: {path}", flush=True)


setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"], cmdclass={"build_ext": BuildExtAndShim})
