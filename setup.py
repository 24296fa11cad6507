"""Only the compiled core lives here; everything else is in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["csrc/build_ffi.py:ffibuilder"])
