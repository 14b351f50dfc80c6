"""The prediction API through FastAPI's TestClient: happy paths, every rule, the log."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.serving.app import ServingConfig
from tests.conftest import PROJECT_ROOT
from tests.serving.conftest import FEEDBACK, HOUSE


def test_predict_answers_with_version_and_logs_it(client, logged, fitted_models):
    response = client.post("/predict", json=HOUSE)
    assert response.status_code == 200
    body = response.json()
    expected = fitted_models[1].predict(np.array([[HOUSE[f] for f in FEATURES]]))[0]
    assert body["prediction"] == pytest.approx(expected, rel=1e-12)
    assert body["price_usd"] == pytest.approx(round(expected * 100_000, 2))
    assert body["model_name"] == "california-housing" and body["model_version"] == 1
    rows = logged()
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["request_id"] == body["request_id"] and row["model_version"] == 1
    assert row["prediction"] == body["prediction"]
    assert [row[f] for f in FEATURES] == [HOUSE[f] for f in FEATURES]
    assert row["created_at"].endswith("+00:00") and pd.isna(row["actual"])


def test_integers_are_numbers(client):
    assert client.post("/predict", json={**HOUSE, "HouseAge": 41, "Population": 322}).status_code == 200


RULES = [
    ({"MedInc": -1.0}, ["body", "MedInc"], "greater_than"),
    ({"MedInc": 0.0}, ["body", "MedInc"], "greater_than"),
    ({"HouseAge": -3.0}, ["body", "HouseAge"], "greater_than_equal"),
    ({"AveRooms": 0.0}, ["body", "AveRooms"], "greater_than"),
    ({"AveBedrms": -0.5}, ["body", "AveBedrms"], "greater_than_equal"),
    ({"Population": 0.0}, ["body", "Population"], "greater_than_equal"),
    ({"AveOccup": 0.0}, ["body", "AveOccup"], "greater_than"),
    ({"Latitude": 45.0}, ["body", "Latitude"], "less_than_equal"),
    ({"Latitude": 30.0}, ["body", "Latitude"], "greater_than_equal"),
    ({"Longitude": -100.0}, ["body", "Longitude"], "less_than_equal"),
    ({"Longitude": -130.0}, ["body", "Longitude"], "greater_than_equal"),
    ({"MedInc": "8.3"}, ["body", "MedInc"], "float_type"),
    ({"MedInc": True}, ["body", "MedInc"], "float_type"),
    ({"MedInc": None}, ["body", "MedInc"], "float_type"),
    ({"MedInc": [1.0]}, ["body", "MedInc"], "float_type"),
    ({"Bathrooms": 2.0}, ["body", "Bathrooms"], "extra_forbidden"),
    ({"AveBedrms": 9.0}, ["body"], "value_error"),
]


@pytest.mark.parametrize(
    ("change", "loc", "rule"),
    RULES,
    ids=[f"{list(c)[0]}={list(c.values())[0]!r}" for c, _, _ in RULES],
)
@pytest.mark.parametrize("endpoint", ["/predict", "/explain"])
def test_each_rule_is_a_422_naming_field_and_rule(client, logged, change, loc, rule, endpoint):
    response = client.post(endpoint, json={**HOUSE, **change})
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, rule)]
    if rule == "value_error":
        assert "AveBedrms (9.0) must not exceed AveRooms" in errors[0]["msg"]
    assert logged().empty


@pytest.mark.parametrize("missing", FEATURES)
def test_missing_field_is_named(client, missing):
    house = {k: v for k, v in HOUSE.items() if k != missing}
    errors = client.post("/predict", json=house).json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(["body", missing], "missing")]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_rejected(client, literal):
    body = json.dumps(HOUSE).replace("8.3252", literal)
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "MedInc"]


@pytest.mark.parametrize(
    "body",
    ["", "{", "[]", "null", '"house"', "{" * 5000, b"\xff\xfe"],
    ids=["empty", "truncated", "array", "null", "string", "deep-nesting", "not-utf8"],
)
def test_malformed_bodies_are_4xx_never_5xx(client, logged, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert logged().empty


def test_body_size_limit(client, config):
    huge = {"houses": [HOUSE] * 2_000}  # > 200 kB
    response = client.post("/predict/batch", json=huge)
    assert response.status_code == 413
    assert "exceeds the limit of 200000 bytes" in response.json()["detail"]


def test_chunked_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(100):
            yield b" " * 4_096

    response = client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_batch_answers_in_order(client, logged, fitted_models):
    houses = [{**HOUSE, "MedInc": m} for m in (1.5, 3.0, 6.0, 12.0)]
    response = client.post("/predict/batch", json={"houses": houses})
    assert response.status_code == 200
    body = response.json()
    expected = fitted_models[1].predict(np.array([[h[f] for f in FEATURES] for h in houses]))
    assert [p["prediction"] for p in body["predictions"]] == pytest.approx(expected.tolist(), rel=1e-12)
    assert body["model_version"] == 1
    rows = logged().set_index("request_id")
    assert len(rows) == 4 and (rows["batch_id"] == body["batch_id"]).all()
    for p, house in zip(body["predictions"], houses, strict=True):
        assert rows.loc[p["request_id"], "MedInc"] == house["MedInc"]
        assert rows.loc[p["request_id"], "prediction"] == p["prediction"]


def test_a_batch_prices_in_dollars_exactly_as_one_house_does():
    """``usd_many`` (numpy, for batches) gives the floats ``usd`` (Python's round) gives,
    half cents included: values on and one ulp either side of a half cent, and a
    million ordinary ones."""
    from housing.serving.routes.predict import usd, usd_many  # noqa: PLC0415

    rng = np.random.default_rng(7)
    ordinary = rng.uniform(-1, 6, 1_000_000)
    halves = (rng.integers(0, 60_000_000, 20_000) + 0.5) / 1e7  # k.5 cents, as near as doubles get
    edges = np.concatenate([halves, np.nextafter(halves, 0), np.nextafter(halves, 10), [0.0, -0.0, 5.00001]])
    values = np.concatenate([ordinary, edges])
    assert usd_many(values) == [usd(v) for v in values.tolist()]


def test_batch_over_the_row_limit_is_413(client, logged):
    response = client.post("/predict/batch", json={"houses": [HOUSE] * 51})
    assert response.status_code == 413
    assert "51 houses exceed the limit of 50" in response.json()["detail"]
    assert logged().empty


def test_one_bad_house_rejects_the_batch_and_names_it(client, logged):
    houses = [HOUSE, HOUSE, {**HOUSE, "Latitude": 60.0}]
    errors = client.post("/predict/batch", json={"houses": houses}).json()["detail"]
    assert [e["loc"] for e in errors] == [["body", "houses", 2, "Latitude"]]
    assert logged().empty


def test_empty_batch_is_rejected(client):
    assert client.post("/predict/batch", json={"houses": []}).status_code == 422


def test_feedback_attaches_once(client, logged):
    request_id = client.post("/predict", json=HOUSE).json()["request_id"]
    first = client.post("/feedback", json={"request_id": request_id, "actual": 4.2}, headers=FEEDBACK)
    assert first.status_code == 200
    assert first.json()["actual"] == 4.2 and first.json()["model_version"] == 1
    second = client.post("/feedback", json={"request_id": request_id, "actual": 3.0}, headers=FEEDBACK)
    assert second.status_code == 409
    assert "request_id" in second.json()["detail"]
    row = logged().iloc[0]
    assert row["actual"] == 4.2 and row["actual_at"] is not None
    assert row["actual_by"] == "labeller"  # the token's name, never the token


def test_feedback_for_unknown_id_is_404(client):
    response = client.post("/feedback", json={"request_id": "nope", "actual": 1.0}, headers=FEEDBACK)
    assert response.status_code == 404
    assert "'nope'" in response.json()["detail"]


@pytest.mark.parametrize("actual", [-1.0, 0.0, 0.1, 5.1, 999.0, "2.0", None])
def test_feedback_value_rules(client, actual):
    response = client.post("/feedback", json={"request_id": "x", "actual": actual}, headers=FEEDBACK)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "actual"]


def test_health_ready_and_model(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/ready").json() == {
        "status": "ready",
        "detail": None,
        "model_version": 1,
    }
    info = client.get("/model").json()
    assert info["name"] == "california-housing" and info["version"] == 1 and info["alias"] == "champion"
    assert info["metrics"]["test_rmse"] == 0.4 and info["trained_at"].startswith("2026-11-26")
    assert list(info["features"]) == list(FEATURES)
    assert info["features"]["Latitude"]["minimum"] == 32.4


def test_prometheus_metrics(client):
    client.post("/predict", json=HOUSE)
    client.post("/predict/batch", json={"houses": [HOUSE] * 3})
    client.post("/predict", json={**HOUSE, "MedInc": -1.0})
    text = client.get("/metrics").text
    assert 'housing_http_requests_total{method="POST",path="/predict",status="200"} 1.0' in text
    assert 'housing_http_errors_total{path="/predict",status="422"} 1.0' in text
    assert 'housing_predictions_total{model_version="1"} 4.0' in text
    assert 'housing_http_request_duration_seconds_bucket{le="0.005",path="/predict"}' in text
    assert "housing_model_version 1.0" in text


def test_openapi_documents_endpoints_with_examples(client):
    schema = client.get("/openapi.json").json()
    assert {
        "/predict",
        "/predict/batch",
        "/feedback",
        "/health",
        "/ready",
        "/model",
        "/metrics",
        "/admin/reload",
    } <= set(schema["paths"])
    house = schema["components"]["schemas"]["House"]
    assert house["examples"][0]["MedInc"] == 8.3252
    assert house["additionalProperties"] is False
    assert client.get("/docs").status_code == 200


def test_explain_adds_up_to_the_prediction(client, logged, fitted_models):
    response = client.post("/explain", json=HOUSE)
    assert response.status_code == 200
    body = response.json()
    expected = fitted_models[1].predict(np.array([[HOUSE[f] for f in FEATURES]]))[0]
    assert body["prediction"] == pytest.approx(expected, rel=1e-12)
    assert body["model_version"] == 1
    total = body["base_value"] + sum(c["value"] for c in body["contributions"])
    assert total == pytest.approx(body["prediction"], rel=1e-6)
    grouped = body["base_value"] + sum(g["value"] for g in body["groups"])
    assert grouped == pytest.approx(body["prediction"], rel=1e-6)
    magnitudes = [abs(c["value"]) for c in body["contributions"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert {g["name"] for g in body["groups"]} >= {"Location", "MedInc"}
    assert logged().empty  # an explanation is not a served prediction


SUMMARY = {
    "generated_at": "2026-11-26T12:00:00+00:00",
    "dataset_drift": True,
    "drift_share": 0.33,
    "drift_share_threshold": 0.3,
    "n_drifted_columns": 3,
    "n_reference": 5000,
    "n_current": 2000,
    "window": {"from": "2026-11-26T10:00:00+00:00", "to": "2026-11-26T11:00:00+00:00"},
    "model_versions": {"1": 2000},
    "columns": [
        {
            "column": "MedInc",
            "method": "Wasserstein distance (normed)",
            "score": 0.27,
            "threshold": 0.1,
            "drifted": True,
        }
    ],
    "performance": {"rmse": 0.69, "mae": 0.45, "r2": 0.76, "n_labelled": 2000},
    "report_url": "/monitoring/drift/report",
}


def test_drift_endpoints_before_any_report(client):
    for path in ("/monitoring/drift", "/monitoring/drift/report"):
        response = client.get(path)
        assert response.status_code == 404
        assert "kedro run --pipelines=drift" in response.json()["detail"]


def test_drift_endpoints_serve_the_latest_report(client, registry):
    registry.reports = {"drift_summary": SUMMARY, "drift_report": "<!doctype html><p>report</p>"}
    summary = client.get("/monitoring/drift")
    assert summary.status_code == 200 and summary.json() == SUMMARY
    report = client.get("/monitoring/drift/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "<p>report</p>" in report.text


def test_feedback_bounds_default_to_the_datas_range(raw_housing):
    conf = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "serving.yml").read_text())
    ranges = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "parameters_data_processing.yml").read_text())
    low, high = ServingConfig.from_conf({"prediction_log": {"uri": "sqlite://"}, **conf}).feedback_actual
    assert (low, high) == pytest.approx((raw_housing[TARGET].min(), raw_housing[TARGET].max()), abs=1e-5)
    valid = next(v["ranges"][TARGET] for v in ranges.values() if isinstance(v, dict) and "ranges" in v)
    assert valid[0] <= low < high <= valid[1]
