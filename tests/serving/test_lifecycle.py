"""Not ready, reloads and the hot swap."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from housing.pipelines.data_processing.features import FEATURES
from housing.serving.app import create_app
from housing.serving.auth import Credentials
from tests.serving.conftest import ADMIN, HOUSE, started

ROW = np.array([[HOUSE[f] for f in FEATURES]])


def test_no_champion_means_not_ready_with_what_to_do(config, registry):
    registry.version_now = None
    with started(create_app(config, registry.source())) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "kedro run --pipelines=training" in ready.json()["detail"]
        predict = client.post("/predict", json=HOUSE)
        assert predict.status_code == 503 and "kedro run --pipelines=training" in predict.json()["detail"]
        assert client.get("/model").status_code == 503


def test_unreachable_registry_is_not_ready_not_a_crash(config, registry):
    registry.error = ConnectionError("tracking store at http://mlflow:5000 refused the connection")
    with started(create_app(config, registry.source())) as client:
        detail = client.get("/ready").json()["detail"]
        assert "ConnectionError" in detail and "MLFLOW_TRACKING_URI" in detail
        # once the store is back and a champion exists, a reload makes it ready
        registry.error = None
        reload = client.post("/admin/reload", headers=ADMIN)
        assert reload.status_code == 200 and reload.json() == {
            "previous_version": None,
            "model_version": 1,
            "changed": True,
        }
        assert client.get("/ready").status_code == 200


def test_admin_reload_needs_the_token(client):
    assert client.post("/admin/reload").status_code == 401
    assert client.post("/admin/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_admin_is_disabled_without_a_token(config, registry):
    config.credentials = Credentials.of(feedback="labeller:feedback-token-0123456789")
    with started(create_app(config, registry.source())) as client:
        response = client.post("/admin/reload", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 403 and "HOUSING_ADMIN_TOKEN" in response.json()["detail"]
        assert "/admin/reload is disabled" in response.json()["detail"]


def test_reload_swaps_in_the_new_champion(client, registry, logged):
    assert client.post("/predict", json=HOUSE).json()["model_version"] == 1
    registry.version_now = 2
    reload = client.post("/admin/reload", headers=ADMIN)
    assert reload.json() == {"previous_version": 1, "model_version": 2, "changed": True}
    assert client.post("/predict", json=HOUSE).json()["model_version"] == 2
    assert sorted(logged()["model_version"]) == [1, 2]


def test_requests_in_flight_during_swaps_all_succeed_on_one_whole_model(client, registry, fitted_models):
    expected = {v: float(m.predict(ROW)[0]) for v, m in fitted_models.items()}
    assert expected[1] != expected[2]
    answers, failures = [], []
    stop = threading.Event()

    def shoot():
        while not stop.is_set() and len(answers) < 2_000:
            response = client.post("/predict", json=HOUSE)
            if response.status_code != 200:
                failures.append(response.status_code)
            else:
                answers.append(response.json())

    shooters = [threading.Thread(target=shoot) for _ in range(4)]
    for shooter in shooters:
        shooter.start()
    deadline = time.monotonic() + 20
    for swap in range(10):
        if time.monotonic() > deadline:
            break
        registry.version_now = 2 if swap % 2 == 0 else 1
        assert client.post("/admin/reload", headers=ADMIN).status_code == 200
        time.sleep(0.05)
    stop.set()
    for shooter in shooters:
        shooter.join(timeout=30)
    assert not failures
    assert {a["model_version"] for a in answers} == {1, 2}
    for answer in answers:  # every answer is entirely the model it names
        assert answer["prediction"] == pytest.approx(expected[answer["model_version"]], rel=1e-12)


def test_polling_picks_up_a_new_champion(config, registry):
    config.poll_seconds = 0.05
    with started(create_app(config, registry.source())) as client:
        assert client.get("/ready").json()["model_version"] == 1
        registry.version_now = 2
        deadline = time.monotonic() + 10
        while client.get("/ready").json()["model_version"] != 2:
            assert time.monotonic() < deadline, "the poller did not swap the model within 10 s"
            time.sleep(0.05)


def test_fast_path_equals_the_pipeline(fitted_models, raw_housing):
    from housing.serving.model import ServingModel  # noqa: PLC0415

    rows = raw_housing[list(FEATURES)].sample(500, random_state=3).to_numpy()
    model = ServingModel("m", 1, "champion", fitted_models[1])
    np.testing.assert_allclose(model.predict(rows, 2), fitted_models[1].predict(rows), rtol=1e-12)
    np.testing.assert_allclose(model.predict(rows[:1], 1), fitted_models[1].predict(rows[:1]), rtol=1e-12)
