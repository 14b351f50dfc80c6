"""Servers for the delivery tests: the real API app (with the serving tests' fake registry
and small real model) or a stub, under uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from housing.serving.app import create_app

# the serving tests' fixtures: a real small model behind a registry stand-in
from tests.serving.conftest import config, fitted_models, registry  # noqa: F401

START_TIMEOUT_S = 60


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` on a socket bound here (no port race); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting (see the log above)"
            assert time.monotonic() < deadline, f"uvicorn did not start within {START_TIMEOUT_S} s"
            time.sleep(0.02)
        # the API's model loads after start-up, in the background: wait for that to end
        serving = getattr(app.state, "serving", None)  # None: a stub
        assert serving is None or serving.started.wait(START_TIMEOUT_S), "the first model load did not end"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def closed_port() -> Iterator[str]:
    """A URL where nothing listens: the port is held (bound, never listening), so a
    connection is refused for as long as the context lasts."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def api(config, registry):  # noqa: F811 (the imported fixtures)
    """The real API app, champion version 1, at a base URL."""
    with serve(create_app(config, registry.source())) as url:
        yield url


@pytest.fixture
def ui_env(monkeypatch):
    """Point the UI at a URL: ``ui_env(url)``."""
    monkeypatch.delenv("HOUSING_API_PUBLIC_URL", raising=False)
    monkeypatch.delenv("HOUSING_API_TIMEOUT", raising=False)

    def point(url: str, **extra: str) -> None:
        monkeypatch.setenv("HOUSING_API_URL", url)
        for name, value in extra.items():
            monkeypatch.setenv(name, value)

    return point
