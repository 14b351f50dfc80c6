"""Start-up never blocks liveness: the model loads in the background after start-up, so
/health answers at once while /ready (and every prediction) says why not yet."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from housing.serving.app import ModelSource, create_app
from tests.serving.conftest import HOUSE

WAIT_S = 30


class SlowSource:
    """A registry whose model takes until ``release`` to load, as a big download would."""

    def __init__(self, registry):
        self.registry = registry
        self.loading, self.release = threading.Event(), threading.Event()

    def load(self):
        self.loading.set()
        assert self.release.wait(WAIT_S), "the test never released the load"
        return self.registry.load()

    def source(self) -> ModelSource:
        return ModelSource(load=self.load, version=self.registry.version, describe="the test registry")


def test_health_answers_and_ready_says_why_while_the_model_loads(config, registry):
    slow = SlowSource(registry)
    app = create_app(config, slow.source())
    with TestClient(app) as client:
        try:
            assert slow.loading.wait(WAIT_S)
            started = time.perf_counter()
            health = client.get("/health")
            assert health.status_code == 200 and time.perf_counter() - started < 0.5
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert "loading version 1 from the test registry" in ready.json()["detail"]
            predict = client.post("/predict", json=HOUSE)
            assert predict.status_code == 503 and predict.json()["detail"] == ready.json()["detail"]
        finally:
            slow.release.set()
        assert app.state.serving.started.wait(WAIT_S)
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["model_version"] == 1
        assert client.post("/predict", json=HOUSE).status_code == 200


def test_before_the_load_begins_ready_says_the_api_is_starting(config, registry):
    gate = threading.Event()

    def version():
        assert gate.wait(WAIT_S)
        return registry.version()

    app = create_app(config, ModelSource(load=registry.load, version=version, describe="the test registry"))
    with TestClient(app) as client:
        try:
            ready = client.get("/ready")
            assert ready.status_code == 503 and "the API is starting" in ready.json()["detail"]
        finally:
            gate.set()
        assert app.state.serving.started.wait(WAIT_S)
        assert client.get("/ready").status_code == 200


def test_a_shutdown_during_the_load_does_not_hang(config, registry):
    slow = SlowSource(registry)
    started = time.monotonic()
    with TestClient(create_app(config, slow.source())):
        assert slow.loading.wait(WAIT_S)
    slow.release.set()
    assert time.monotonic() - started < WAIT_S
