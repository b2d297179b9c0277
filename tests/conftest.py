"""Shared fixtures: the reference packages (on torch) for parity tests.

``python tools/fetch_reference.py`` unpacks wageubn 1.2.0 and tqt 1.0.2 under
tests/reference/ as ``wageubn_ref`` and ``tqt_ref``; with torch==2.13.0 installed the
parity tests run, otherwise they skip (a user's machine).  CI sets
WAGEUBN_REQUIRE_REFERENCE=1, which turns those skips into failures.
"""
import importlib
import os
import pathlib
import sys

import numpy as np
import pytest

REFERENCE_DIR = pathlib.Path(__file__).parent / "reference"
if REFERENCE_DIR.is_dir():
    sys.path.insert(0, str(REFERENCE_DIR))


def _need(module: str):
    if os.environ.get("WAGEUBN_REQUIRE_REFERENCE"):
        return importlib.import_module(module)  # a missing reference fails loudly in CI
    return pytest.importorskip(module)


@pytest.fixture(scope="session")
def torch():
    """torch, for parity tests only (never imported by the package)."""
    t = _need("torch")
    t.set_num_threads(1)
    return t


@pytest.fixture(scope="session")
def ref(torch):
    """wageubn 1.2.0, the behavioural reference, imported as wageubn_ref."""
    return _need("wageubn_ref")


@pytest.fixture(scope="session")
def tqt_ref(torch):
    """tqt 1.0.2 (hooks and thresholds reference), imported as tqt_ref."""
    return _need("tqt_ref")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def pytest_sessionfinish(session, exitstatus):
    """With WAGEUBN_REQUIRE_REFERENCE set (CI), any skipped test fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("WAGEUBN_REQUIRE_REFERENCE") and skipped and exitstatus == 0:
        session.exitstatus = 1
        print(f"\nWAGEUBN_REQUIRE_REFERENCE: {len(skipped)} test(s) were skipped; failing the run.")
