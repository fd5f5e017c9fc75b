"""Puts the repository root on sys.path for the tests (pytest rootdir conftest).

Under CI (``CI=true``, which ``.ci/run`` sets) a test that would skip fails instead:
a skip there means something CI must check was not checked (``../shared`` absent, no
node socket.io client, no Chromium). Locally a skip stays a skip with its reason.
"""

import os
import tempfile

import pytest

from core.allocator import retain_freed_memory

# Quiet TensorFlow's C++ start-up chatter in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The closed loop caches odometry and road edges per recording; tests keep theirs in
# a fresh folder instead of the user's ~/.cache.
os.environ.setdefault("EFFNET_STEERING_CACHE", tempfile.mkdtemp(prefix="effnet-steering-tests-"))
# The tests train and run models on the CPU as train.py does, with its allocator.
retain_freed_memory()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def ci() -> bool:
    """True under CI: a missing input must fail the test, not fall back or skip."""
    return in_ci()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI={os.environ['CI']}, which must check it: {reason}"
