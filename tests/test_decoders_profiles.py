"""The hypothesis profiles (tests/conftest.py) reach every property of tests/.

``HYPOTHESIS_PROFILE=long`` is the thorough run of the decoder and encoder
fuzzing: it must raise every property's example count, which a property
fixing an absolute ``max_examples`` silently ignores.  Each test module is
imported in a child process under each profile, and every property's
settings are read there.  A failing property must also print what
reproduces it (``@reproduce_failure``), so that CI output is enough.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TESTS = Path(__file__).resolve().parent
PROFILES = ("quick", "ci", "long")

# Run in a child: import conftest (which loads the profile named by
# HYPOTHESIS_PROFILE), then every module given; print each property's settings.
PROBE = textwrap.dedent("""
    import importlib, json, sys
    sys.path.insert(0, sys.argv[1])
    import conftest
    from hypothesis import settings
    tests = {}
    for module in sys.argv[2:]:
        for name, fn in vars(importlib.import_module(module)).items():
            if name.startswith("test_") and getattr(fn, "is_hypothesis_test", False):
                tests[module + "::" + name] = fn._hypothesis_internal_use_settings.max_examples
    print(json.dumps({"default": settings.default.max_examples,
                      "print_blob": settings.default.print_blob, "tests": tests}))
""")


def property_modules() -> list:
    """The test modules that hold hypothesis properties."""
    return sorted(p.stem for p in TESTS.glob("test_*.py")
                  if re.search(r"^@given", p.read_text(), re.M))


def child_env(profile: str) -> dict:
    """The environment of a child run under ``profile`` ("" : none named)."""
    env = dict(os.environ, HYPOTHESIS_PROFILE=profile)
    if not profile:
        del env["HYPOTHESIS_PROFILE"]
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def probe(profile: str) -> dict:
    """What the properties' settings are when the suite runs under profile."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(TESTS), *property_modules()],
                         env=child_env(profile), capture_output=True, text=True, timeout=120,
                         check=True)
    return json.loads(out.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def profiles() -> dict:
    return {name: probe(name) for name in PROFILES}


def test_properties_are_found_in_every_module_that_has_them(profiles):
    modules = {name.split("::")[0] for name in profiles["ci"]["tests"]}
    assert modules == set(property_modules()) and len(profiles["ci"]["tests"]) >= 50


def test_long_profile_asks_for_20000_examples(profiles):
    assert [profiles[name]["default"] for name in PROFILES] == [100, 300, 20_000]


def test_the_readme_command_runs_the_quick_profile():
    """No HYPOTHESIS_PROFILE (the README's commands): 100 examples a property."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(TESTS), "test_types"],
                         env=child_env(""), capture_output=True, text=True, timeout=120,
                         check=True)
    assert json.loads(out.stdout.splitlines()[-1])["default"] == 100


def test_every_property_scales_with_the_profile(profiles):
    """long / ci of each property's count is the profiles' ratio (within the
    rounding of ``default * k // n``): no property fixes its own count."""
    ratio = profiles["long"]["default"] / profiles["ci"]["default"]
    ci, long = profiles["ci"]["tests"], profiles["long"]["tests"]
    assert set(ci) == set(long)
    fixed = {name: (ci[name], long[name]) for name in ci
             if not (ci[name] >= 1 and 0.9 * ratio <= long[name] / ci[name] <= 1.1 * ratio)}
    assert fixed == {}


def test_main_properties_run_the_profiles_count(profiles):
    """Properties that take no scaling run exactly the profile's count."""
    for name in PROFILES:
        default = profiles[name]["default"]
        counts = list(profiles[name]["tests"].values())
        assert counts.count(default) >= len(counts) // 2


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_prints_the_blob_that_reproduces_a_failure(profiles, profile):
    assert profiles[profile]["print_blob"] is True


def test_failing_property_prints_its_reproduce_failure_line(tmp_path):
    """A property failing under the ci profile prints a ``@reproduce_failure``
    line: pasting it above the test replays the failing example."""
    (tmp_path / "test_fails.py").write_text(textwrap.dedent("""
        from hypothesis import given, strategies as st

        @given(st.integers())
        def test_small(n):
            assert n < 1000
    """))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-p", "conftest", "test_fails.py"], cwd=tmp_path,
                         env=dict(child_env("ci"), PYTHONPATH=os.pathsep.join(
                             [str(TESTS), *(p for p in sys.path if p)])),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "@reproduce_failure(" in out.stdout
