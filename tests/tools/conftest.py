"""Fixtures for the tools tests, which drive a real drive server with the drive tests' kit.

``drive_testkit`` (generated JPEGs, the stub predictor) lives in tests/drive and is
imported by name, so that folder goes on sys.path here as pytest puts it there for
the drive tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "drive"))

from drive_testkit import StubPredictor  # noqa: E402


@pytest.fixture
def stub() -> StubPredictor:
    return StubPredictor()
