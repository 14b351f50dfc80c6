"""POST /predict's fast lane (lane.py): the route's answer without FastAPI's routing, and
every request it does not take answered by the route itself."""

from __future__ import annotations

import pytest

from housing.serving import lane
from housing.serving.app import create_app
from housing.serving.auth import Credentials
from housing.serving.prediction_log import LogUnavailable
from housing.serving.routes import predict
from tests.serving.conftest import HOUSE, started


@pytest.fixture
def by_route(monkeypatch):
    """How many requests reached the FastAPI route (the lane never calls it)."""
    calls = []
    through = predict.serving_and_model

    def counted(request):
        calls.append(request.url.path)
        return through(request)

    monkeypatch.setattr(predict, "serving_and_model", counted)
    return calls


def without_lane(app):
    app.user_middleware = [m for m in app.user_middleware if m.cls is not lane.PredictLane]
    return app


def test_the_lane_answers_a_valid_house_as_the_route_does(config, registry, logged, by_route):
    with started(create_app(config, registry.source())) as client:
        fast = client.post("/predict", json=HOUSE)
    assert by_route == []
    with started(without_lane(create_app(config, registry.source()))) as client:
        slow = client.post("/predict", json=HOUSE)
    assert by_route == ["/predict"]
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
    assert int(fast.headers["content-length"]) == len(fast.content)
    a, b = fast.json(), slow.json()
    assert a.pop("request_id") != b.pop("request_id")
    assert a == b
    assert sorted(logged()["request_id"]) == sorted([fast.json()["request_id"], slow.json()["request_id"]])


def test_refusals_are_the_routes_own(client, logged, by_route):
    bad = client.post("/predict", json={**HOUSE, "MedInc": -1.0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "MedInc"]
    broken = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422
    assert by_route == ["/predict", "/predict"]
    assert logged().empty


def test_without_a_model_the_route_answers_503(client, by_route):
    client.app.state.serving.model = None
    response = client.post("/predict", json=HOUSE)
    assert response.status_code == 503 and by_route == ["/predict"]


def test_a_log_that_cannot_take_the_write_is_a_503_from_the_lane(client, by_route, monkeypatch):
    async def unavailable(rows):
        raise LogUnavailable("the prediction log (x) is unavailable: disk I/O error")

    monkeypatch.setattr(client.app.state.serving.log, "record_async", unavailable)
    response = client.post("/predict", json=HOUSE)
    assert response.status_code == 503 and by_route == []
    assert response.json()["detail"].endswith("disk I/O error; the request was not served, retry later")


def test_the_metrics_count_the_lane_under_the_route(client):
    for _ in range(3):
        assert client.post("/predict", json=HOUSE).status_code == 200
    text = client.get("/metrics").text
    assert 'housing_http_requests_total{method="POST",path="/predict",status="200"} 3.0' in text


def test_a_guarded_predict_goes_through_fastapi_and_its_guard(config, registry, by_route):
    config.credentials = Credentials.of(predict_required=True, predict="web:t0ken-of-the-web-client")
    app = create_app(config, registry.source())
    assert lane.PredictLane not in [m.cls for m in app.user_middleware]
    with started(app) as client:
        assert client.post("/predict", json=HOUSE).status_code == 401
        headers = {"Authorization": "Bearer t0ken-of-the-web-client"}
        assert client.post("/predict", json=HOUSE, headers=headers).status_code == 200
    assert by_route == ["/predict"]  # the 401 came from the guard, before the route
