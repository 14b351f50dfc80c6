"""The UI's HTTP and formatting functions, without Streamlit."""

from __future__ import annotations

import httpx
import pytest

from housing.pipelines.data_processing.features import FEATURES
from housing.serving.schemas import House
from housing.ui import client, fields, formatting
from tests.delivery.conftest import closed_port


def test_the_ui_knows_the_api_features_rules_and_the_data_medians(raw_housing):
    assert fields.FEATURES == tuple(FEATURES)
    schema = House.model_json_schema()["properties"]
    bound_keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    assert fields.FALLBACK_SCHEMA == {
        name: {k: v for k, v in schema[name].items() if k in bound_keys} for name in FEATURES
    }
    medians = raw_housing[list(FEATURES)].median()
    assert fields.MEDIANS == pytest.approx(medians.to_dict(), rel=1e-4)


def test_form_fields_take_the_bounds_the_api_reports_and_fall_back_for_the_rest():
    by_name = {f.name: f for f in fields.form_fields({"HouseAge": {"minimum": 1, "maximum": 60}})}
    assert (by_name["HouseAge"].widget_min, by_name["HouseAge"].maximum) == (1.0, 60.0)
    assert "at least 1, at most 60" in by_name["HouseAge"].help
    medinc = by_name["MedInc"]  # from the fallback: above 0 (open), at most 100
    assert medinc.exclusive_minimum and medinc.minimum == 0 and medinc.widget_min == pytest.approx(0.01)
    assert "above 0" in medinc.help
    assert [f.name for f in fields.form_fields()] == list(FEATURES)
    for field in fields.form_fields():
        assert field.widget_min <= fields.MEDIANS[field.name] <= field.maximum
        assert field.label and field.label != field.name  # plain language


def test_urls_come_from_the_environment():
    assert client.api_url({}) == "http://127.0.0.1:8000"
    assert client.api_url({"HOUSING_API_URL": " http://api:8000/ "}) == "http://api:8000"
    assert client.public_url({"HOUSING_API_URL": "http://api:8000"}) == "http://api:8000"
    env = {"HOUSING_API_URL": "http://api:8000", "HOUSING_API_PUBLIC_URL": "http://localhost:8000/"}
    assert client.public_url(env) == "http://localhost:8000"
    assert client.join("http://host/prefix/", "/predict") == "http://host/prefix/predict"
    assert client.join("http://host", "https://elsewhere/report") == "https://elsewhere/report"
    assert client.timeout({}) == client.DEFAULT_TIMEOUT_S
    assert client.timeout({"HOUSING_API_TIMEOUT": "2.5"}) == 2.5
    assert client.timeout({"HOUSING_API_TIMEOUT": "soon"}) == client.DEFAULT_TIMEOUT_S


def test_a_422_names_each_field_and_its_rule(api):
    with pytest.raises(client.ApiError) as caught:
        client.predict(api, {**fields.MEDIANS, "MedInc": -1.0, "Latitude": 50.0})
    assert caught.value.status == 422
    lines = caught.value.message.splitlines()
    assert lines[0] == "The API rejected the input:"
    assert "- MedInc (Median income (tens of thousands of $)): Input should be greater than 0" in lines
    assert "- Latitude (Latitude (degrees north)): Input should be less than or equal to 42.1" in lines


def test_calls_against_the_real_api(api):
    info = client.model_info(api)
    assert info["version"] == 1 and set(info["features"]) == set(FEATURES)
    answer = client.predict(api, fields.MEDIANS)
    assert answer["model_version"] == 1
    explanation = client.explain(api, fields.MEDIANS)
    assert explanation["prediction"] == pytest.approx(answer["prediction"])
    with pytest.raises(client.NotFound, match="No drift report yet: run `kedro run --pipelines=drift`"):
        client.drift_summary(api)


def test_an_unreachable_api():
    with closed_port() as url, pytest.raises(client.ApiError) as caught:
        client.predict(url, fields.MEDIANS)
    assert caught.value.message.startswith(
        f"The prediction API at {url} is not reachable (nothing answers there)"
    )
    assert "housing serve" in caught.value.message
    assert "Error" not in caught.value.message  # no Python exception name


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ConnectError, "nothing answers there"),
        (httpx.RemoteProtocolError, "the server closed the connection unexpectedly"),
        (httpx.ReadError, "the connection broke while reading the answer"),
        (httpx.CloseError, "the connection failed"),
    ],
)
def test_connection_failures_read_as_words_not_class_names(failure, reason):
    def fail(request):
        raise failure("boom", request=request)

    with pytest.raises(client.ApiError) as caught:
        client.call("GET", "http://api", "/model", transport=mock(fail))
    assert f"is not reachable ({reason})" in caught.value.message
    assert failure.__name__ not in caught.value.message


def mock(handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("response", "expected", "kind"),
    [
        (
            httpx.Response(503, json={"detail": "No model is loaded: ..."}),
            "not available (503): No model is loaded",
            client.ApiError,
        ),
        (
            httpx.Response(500, text="Internal Server Error"),
            "answered 500: Internal Server Error",
            client.ApiError,
        ),
        (
            httpx.Response(413, json={"detail": "body too large"}),
            "answered 413: body too large",
            client.ApiError,
        ),
        (httpx.Response(404, json={"detail": "Not Found"}), "answered 404: Not Found", client.NotFound),
        (httpx.Response(200, text="<html>"), "did not answer with a JSON object", client.ApiError),
        (httpx.Response(200, json=[1, 2]), "did not answer with a JSON object", client.ApiError),
    ],
)
def test_answers_that_are_not_a_result(response, expected, kind):
    with pytest.raises(kind, match=expected.replace("(", r"\(").replace(")", r"\)")):
        client.call_json("GET", "http://api", "/model", transport=mock(lambda _request: response))


def test_timeouts_and_bad_urls_are_messages():
    def slow(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(client.ApiError, match=r"did not answer GET /model within 0.25 s"):
        client.call("GET", "http://api", "/model", timeout_s=0.25, transport=mock(slow))
    with pytest.raises(client.ApiError, match="is not an http"):
        client.model_info("ftp://api")


def test_drift_404s_read_as_no_report_yet():
    api_detail = "GET /monitoring/drift answered 404: no drift report yet: run `kedro run --pipelines=drift`"
    assert (
        client.drift_not_found_message(api_detail) == "No drift report yet: run `kedro run --pipelines=drift`"
    )
    # an API without the endpoint at all: FastAPI's plain 404
    plain = client.drift_not_found_message("GET /monitoring/drift answered 404: Not Found")
    assert plain.startswith(client.NO_DRIFT_REPORT) and "Not Found" in plain
    transport = mock(lambda _request: httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(client.NotFound, match="No drift report yet"):
        client.drift_summary("http://api", transport=transport)


def test_validation_messages_without_a_field():
    detail = [
        {
            "loc": ["body"],
            "msg": "Value error, AveBedrms (8.0) must not exceed AveRooms (5.0)",
            "type": "value_error",
        },
        {"loc": ["body", "Extra"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"},
        "odd",
    ]
    assert client.validation_messages(detail) == [
        "AveBedrms (8.0) must not exceed AveRooms (5.0)",
        "Extra: Extra inputs are not permitted",
        "odd",
    ]


def test_formatting():
    assert formatting.format_usd(452_600.4) == "$452,600"
    assert formatting.format_usd(-12_345) == "-$12,345"
    assert formatting.signed_usd(100) == "+$100"
    assert client.house_payload({**fields.MEDIANS, "extra": 1, "HouseAge": 29}) == {
        name: float(fields.MEDIANS[name]) for name in FEATURES
    }
    rows = formatting.contribution_rows(
        [{"name": "Location", "value": -0.5}, {"name": "MedInc", "value": 0.25}]
    )
    assert [(r["rank"], r["name"], r["dollars"], r["effect"], r["label"]) for r in rows] == [
        (0, "Location", -50_000.0, "lowers the price", "-$50,000"),
        (1, "Median income", 25_000.0, "raises the price", "+$25,000"),
    ]


def test_drift_formatting():
    summary = {
        "dataset_drift": False,
        "drift_share": 0.125,
        "n_reference": 16512,
        "n_current": 40,
        "columns": [
            {"column": "A", "method": "m", "score": 0.05, "threshold": 0.1, "drifted": False},
            {"column": "B", "method": "m", "score": 0.2, "threshold": 0.1, "drifted": True},
            {"column": "C", "method": "m", "score": 0.07, "threshold": 0.1, "drifted": False},
        ],
        "performance": None,
        "report_url": "/monitoring/drift/report",
    }
    assert formatting.drift_headline(summary) == {
        "Dataset drift": "No",
        "Drifted columns": "1 of 3 (12%)",
        "Reference rows": "16,512",
        "Production rows": "40",
    }
    assert [r["column"] for r in formatting.drift_rows(summary)] == ["B", "C", "A"]
    assert (
        formatting.drift_report_link("http://localhost:8000", summary)
        == "http://localhost:8000/monitoring/drift/report"
    )
    assert formatting.error_rows({"rmse": 0.5, "r2": 0.8}, {"test_rmse": 0.4, "test_mae": 0.26}) == [
        {"error": "RMSE", "production": "0.500 ($50,000)", "test set": "0.400 ($40,000)"},
        {"error": "MAE", "production": "?", "test set": "0.260 ($26,000)"},
        {"error": "R²", "production": "0.800", "test set": "?"},
    ]
    assert formatting.error_rows({"rmse": float("nan")}, None)[0] == {
        "error": "RMSE",
        "production": "?",
        "test set": "?",
    }


def test_drift_notes_and_counts():
    summary = {
        "drift_share_threshold": 0.5,
        "window": {"from": "2026-11-20", "to": "2026-11-26"},
        "model_versions": {"2": 500, "3": 1500},
        "generated_at": "2026-11-26T12:00:00+00:00",
    }
    assert formatting.drift_notes(summary) == [
        "Dataset drift is declared when at least 50% of the columns drift.",
        "Production rows from 2026-11-20 to 2026-11-26.",
        "Served by version 3 (1,500 rows), version 2 (500 rows).",
        "Report generated at 2026-11-26T12:00:00+00:00.",
    ]
    assert formatting.drift_notes({}) == []
    assert (
        formatting.drift_headline({"n_drifted_columns": 1, "columns": [{}, {}]})["Drifted columns"]
        == "1 of 2 (?)"
    )
    # the API's performance is a dict of floats: 120 labelled rows arrive as 120.0
    assert formatting.labelled_rows({"n_labelled": 120.0}) == "120"
    assert formatting.labelled_rows({"n_labelled": 1200}) == "1,200"
    assert formatting.labelled_rows({"n_labelled": float("nan")}) == "?"
