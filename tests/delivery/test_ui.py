"""The Streamlit app, headless (AppTest), against the real API app under uvicorn."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from streamlit.testing.v1 import AppTest

from housing.serving.app import ModelSource, create_app
from housing.ui import client, fields, formatting
from tests.conftest import PROJECT_ROOT
from tests.delivery.conftest import closed_port, serve

APP = PROJECT_ROOT / "src" / "housing" / "ui" / "app.py"
RUN_TIMEOUT_S = 60

# what `kedro run --pipelines=drift` writes (src/housing/pipelines/drift/nodes.py)
SUMMARY = {
    "generated_at": "2026-11-26T12:00:00+00:00",
    "dataset_drift": True,
    "drift_share": 0.625,
    "drift_share_threshold": 0.5,
    "n_drifted_columns": 2,
    "n_reference": 16_512,
    "n_current": 2_000,
    "window": {"from": "2026-11-20T00:00:00+00:00", "to": "2026-11-26T11:00:00+00:00"},
    "model_versions": {"3": 1_500, "2": 500},
    "columns": [
        {
            "column": c,
            "method": "Wasserstein distance (normed)",
            "score": score,
            "threshold": 0.1,
            "drifted": score > 0.1,
        }
        for c, score in (("MedInc", 0.31), ("HouseAge", 0.02), ("Latitude", 0.45))
    ],
    "performance": {"rmse": 0.52, "mae": 0.35, "r2": 0.79, "n_labelled": 120},
    "report_url": "/monitoring/drift/report",
}
REPORT = "<html><body><h1>Evidently drift report</h1></body></html>"


def run_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def submit(at: AppTest) -> AppTest:
    (button,) = [b for b in at.button if b.label == "Price this house"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go_to_drift(at: AppTest) -> AppTest:
    at.switch_page("drift_page.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_a_valid_house_gets_a_price_the_version_and_an_explanation(api, ui_env):
    ui_env(api)
    at = run_app()
    assert not at.warning and not at.error
    assert "version **1**" in texts(at.caption)  # GET /model answered
    # bounds from GET /model: "above 0" starts a step above 0, California's box
    assert at.number_input(key="MedInc").min == pytest.approx(0.01)
    assert (at.number_input(key="Latitude").min, at.number_input(key="Latitude").max) == (32.4, 42.1)
    assert at.number_input(key="Population").value == fields.MEDIANS["Population"]
    assert len(at.get("deck_gl_json_chart")) == 1  # the map of the location

    submit(at)
    assert not at.error, texts(at.error)
    expected = httpx.post(f"{api}/predict", json=client.house_payload(fields.MEDIANS), timeout=10).json()
    (metric,) = at.metric
    assert metric.value == formatting.format_usd(expected["price_usd"])
    assert "**california-housing**, version **1**" in texts(at.markdown)
    # the grouped contributions and, in the expander, the per-feature ones
    assert len(at.get("vega_lite_chart")) == 2
    assert at.expander[0].label.startswith("Per feature")


def test_a_house_the_api_rejects_shows_the_field_and_the_rule(api, ui_env):
    ui_env(api)
    at = run_app()
    at.number_input(key="AveBedrms").set_value(8.0)  # within the widget's bounds, more than AveRooms
    submit(at)
    (error,) = at.error
    assert "AveBedrms" in error.value and "must not exceed AveRooms" in error.value
    assert not at.metric


def test_an_unreachable_api_says_so_and_how_to_start_it(ui_env):
    with closed_port() as url:
        ui_env(url)
        at = run_app()
        # the form still works, on the documented bounds
        assert "not reachable" in texts(at.warning)
        assert at.number_input(key="MedInc").min == pytest.approx(0.01)
        submit(at)
    (error,) = at.error
    assert f"The prediction API at {url} is not reachable" in error.value
    assert "housing serve" in error.value
    assert not at.warning  # one message about the API, not the start-up warning again


def test_no_champion_yet_is_a_message_not_a_crash(config, registry, ui_env):
    registry.version_now = None
    with serve(create_app(config, registry.source())) as url:
        ui_env(url)
        at = run_app()
        assert "not available (503): No model is loaded" in texts(at.warning)
        submit(at)
    assert "not available (503): No model is loaded" in texts(at.error)
    assert "kedro run --pipelines=training" in texts(at.error)
    assert not at.warning


def test_drift_page_without_a_report_says_what_to_run(api, ui_env):
    ui_env(api)
    at = go_to_drift(run_app())
    assert not at.error
    assert httpx.get(f"{api}/monitoring/drift", timeout=10).status_code == 404
    assert "No drift report yet" in texts(at.info)
    assert "kedro run --pipelines=drift" in texts(at.info)


def slow_stub() -> FastAPI:
    stub = FastAPI()

    @stub.post("/predict")
    async def slow() -> dict:
        await asyncio.sleep(3)
        return {}

    return stub


def test_drift_page_shows_the_summary_and_links_the_report(config, registry, ui_env):
    """The real app serving a drift summary and report (as the catalog would give them)."""
    outputs = {config.drift_summary_dataset: SUMMARY, config.drift_report_dataset: REPORT}
    source = ModelSource(load=registry.load, version=registry.version, report=outputs.__getitem__)
    with serve(create_app(config, source)) as url:
        ui_env(url, HOUSING_API_PUBLIC_URL="http://localhost:8000")
        at = go_to_drift(run_app())
        assert not at.error, texts(at.error)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Dataset drift"] == "Yes"
        assert metrics["Drifted columns"] == "2 of 3 (62%)"
        assert metrics["Production rows"] == "2,000"
        assert metrics["Labelled production rows"] == "120"
        errors = at.table[0].value  # production beside the test set, in $100,000s and dollars
        assert errors.loc["RMSE", "production"] == "0.520 ($52,000)"
        assert errors.loc["RMSE", "test set"] == "0.400 ($40,000)"  # the served version's test_rmse
        assert errors.loc["MAE", "production"] == "0.350 ($35,000)"
        assert "version 1 of california-housing" in texts(at.caption)
        notes = texts(at.caption)
        assert (
            "at least 50% of the columns" in notes and "version 3 (1,500 rows), version 2 (500 rows)" in notes
        )
        table = at.dataframe[0].value
        assert list(table["column"]) == ["Latitude", "MedInc", "HouseAge"]  # drifted first, by score
        assert "retraining" in texts(at.warning)
        (link,) = at.get("link_button")
        assert link.proto.url == "http://localhost:8000/monitoring/drift/report"  # for the browser
        assert not at.get("iframe")  # linked, never cut to a fixed height


def test_drift_page_with_the_api_down(ui_env):
    with closed_port() as url:
        ui_env(url)
        at = go_to_drift(run_app())
    (error,) = at.error
    assert "not reachable" in error.value and not at.warning


def test_a_slow_api_times_out_with_a_message(ui_env):
    with serve(slow_stub()) as url:
        ui_env(url, HOUSING_API_TIMEOUT="0.5")
        at = run_app()
        assert "answered 404" in texts(at.warning)  # this stub has no GET /model
        submit(at)
    assert "did not answer POST /predict within 0.5 s" in texts(at.error)


def test_an_answer_the_ui_does_not_expect_is_a_message_not_a_traceback(ui_env):
    stub = FastAPI()

    @stub.post("/predict")
    async def odd() -> dict:
        return {"unexpected": True}  # a 200 without the price: not the housing API

    with serve(stub) as url:
        ui_env(url)
        at = run_app()
        submit(at)
    assert not at.exception
    (error,) = at.error
    assert "Something unexpected went wrong on this page" in error.value
    assert "KeyError" not in error.value and "price_usd" not in error.value
