"""Fixtures for the drive tests: generated frames and models, servers on free loopback ports."""

from __future__ import annotations

from pathlib import Path

import pytest
from drive_testkit import StubPredictor, make_jpeg, tiny_model

from drive.server import DriveServer


@pytest.fixture(scope="session")
def jpeg() -> bytes:
    return make_jpeg()


@pytest.fixture
def stub() -> StubPredictor:
    return StubPredictor()


@pytest.fixture(params=[True, False], ids=["inline-ws", "simple-websocket"])
def server(stub, request):
    """A DriveServer with a stub model on a free 127.0.0.1 port, always shut down.

    Run with both WebSocket transports: drive.transport's inline one (the default)
    and python-engineio's stock simple-websocket.
    """
    srv = DriveServer(
        stub, host="127.0.0.1", port=0, log_every=10_000, inline_transport=request.param
    ).start()
    try:
        yield srv
    finally:
        srv.shutdown()


@pytest.fixture(scope="session")
def tiny_keras_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tiny") / "model.keras"
    tiny_model().save(path)
    return path
