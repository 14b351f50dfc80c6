"""Every page a person opens, in a real browser against real servers on 127.0.0.1.

The API is the real app under uvicorn with the serving tests' small model; the UI is
`streamlit run` in its own process; the docs and kedro-viz are what a user opens.
"""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pandas as pd
import pytest

from housing.pipelines.drift.nodes import detect_drift
from housing.pipelines.modelling.pipeline import CANDIDATES
from housing.pipelines.modelling.promotion import build_drift_reference
from housing.simulation.scenarios import make_scenario
from housing.ui import client, fields, formatting
from tests.browser.conftest import LOCAL, closed_port, external, static_site, streamlit_ui
from tests.conftest import clean_env
from tests.pipelines.conftest import as_logged

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips, or fails under CI, naming what is missing
    expect = None

INCOME = fields.FIELD_TEXT["MedInc"][0]
ALERT = "[data-testid='stAlert']"
CLASS_NAMES = re.compile(r"\b\w+(Error|Exception)\b|Traceback")


def price_on_the_api(api: str, house: dict[str, float]) -> str:
    answer = httpx.post(f"{api}/predict", json=client.house_payload(house), timeout=10)
    assert answer.status_code == 200, answer.text
    return formatting.format_usd(answer.json()["price_usd"])


def test_the_price_page_shows_the_price_the_api_gives_and_draws_the_explanation(page, ui, api):
    page.goto(ui)
    expect(page.get_by_role("heading", name="Price a house")).to_be_visible()
    expect(page.get_by_text("version 1", exact=False).first).to_be_visible()  # GET /model answered
    income = page.get_by_role("spinbutton", name=INCOME)
    income.fill("6.5")
    page.get_by_role("button", name="Price this house").click()

    house = {**fields.MEDIANS, "MedInc": 6.5}
    expected = price_on_the_api(api, house)
    assert expected != price_on_the_api(api, fields.MEDIANS)  # the changed input is what got priced
    expect(page.get_by_test_id("stMetricValue")).to_have_text(expected)
    expect(page.get_by_text("version 1", exact=False).last).to_be_visible()

    chart = page.get_by_test_id("stVegaLiteChart").first  # what raised or lowered the price
    expect(chart.locator("canvas, svg").first).to_be_visible()
    assert chart.bounding_box()["height"] > 100
    expect(page.get_by_test_id("stAppDeployButton")).to_have_count(0)  # .streamlit/config.toml
    expect(page.locator(ALERT)).to_have_count(0)


@pytest.fixture
def drift_run(raw_housing, fitted_models, params):
    """What `kedro run --pipelines=drift` writes: the monitoring node on inflation traffic
    (labelled, so the error on production rows is reported too)."""
    model = fitted_models[1]
    # no out-of-fold predictions: the node lets the model predict every reference row
    best = {"oof": pd.Series(dtype=float), "model": model}
    reference = build_drift_reference(raw_housing, best, {"sample_size": 2_000, "seed": 0})
    scenario = params["simulation"]["scenarios"]["inflation"]
    current = as_logged(
        make_scenario(raw_housing.sample(4_000, random_state=1), "inflation", 1_000, scenario), model
    )
    report, summary, _ = detect_drift(reference, current, params["drift"])
    return report, summary


def test_the_drift_page_before_and_after_a_drift_run_and_on_reload(
    page, ui, api, config, registry, drift_run
):
    page.goto(ui)
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Drift").click()
    expect(page).to_have_url(re.compile(r"/drift$"))
    expect(page.locator(ALERT)).to_contain_text("No drift report yet")
    expect(page.locator(ALERT)).to_contain_text("kedro run --pipelines=drift")

    report, summary = drift_run
    registry.reports[config.drift_report_dataset] = report
    registry.reports[config.drift_summary_dataset] = summary
    page.reload()  # the same page comes back, now with the summary
    expect(page).to_have_url(re.compile(r"/drift$"))
    expect(page.get_by_role("heading", name="Drift", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="Dataset drift")).to_contain_text("Yes")
    errors = page.get_by_test_id("stTable")
    rmse = formatting.units_and_dollars(summary["performance"]["rmse"])
    expect(errors).to_contain_text(rmse)  # production, in $100,000s and dollars
    expect(errors).to_contain_text("0.400 ($40,000)")  # the served version's test RMSE

    link = page.get_by_role("link", name="Open the full HTML report")
    assert link.get_attribute("href") == f"{api}/monitoring/drift/report"
    page.goto(link.get_attribute("href"))
    frames = page.locator("iframe")
    expect(frames).to_have_count(2)  # data drift, and the error on labelled rows
    # every report at its full height: nothing is cut, nothing scrolls inside a frame
    page.wait_for_function(
        """() => [...document.querySelectorAll("iframe")].every(f => {
            const body = f.contentDocument && f.contentDocument.body;
            return body && body.scrollHeight > 300 && f.clientHeight >= body.scrollHeight;
        })"""
    )


def test_with_the_api_down_each_page_says_so_once(page, tmp_path):
    with closed_port() as down, streamlit_ui(down, tmp_path) as ui:
        page.goto(ui)
        alert = page.locator(ALERT)
        expect(alert).to_have_count(1)
        expect(alert).to_contain_text(f"The prediction API at {down} is not reachable")
        page.get_by_role("button", name="Price this house").click()
        expect(alert).to_have_count(1)  # the answer to the click replaces the warning
        expect(alert).to_contain_text("housing serve")
        page.goto(f"{ui}/drift")
        expect(page.get_by_role("heading", name="Drift", exact=True)).to_be_visible()
        expect(alert).to_have_count(1)
        expect(alert).to_contain_text("is not reachable")
        assert not CLASS_NAMES.search(page.locator("body").inner_text())


def test_the_api_docs_render_offline(page, api):
    page.route(lambda url: not LOCAL.match(url), lambda route: route.abort())  # no network at all
    page.goto(f"{api}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/predict").first).to_be_visible()
    page.goto(f"{api}/redoc")
    expect(page.get_by_role("heading", name=re.compile("California house prices")).first).to_be_visible()
    expect(page.get_by_text("/predict/batch").first).to_be_attached()
    # ReDoc's footer links its own logo on a CDN: a decorative image, the one thing
    # allowed to be missing. Scripts, styles, fonts and the schema all come from the API.
    assert {kind for kind, _ in external(page.requests)} <= {"image"}, external(page.requests)


def test_kedro_viz_shows_the_training_pipeline_with_its_candidates_and_layers(page, project_copy, tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "kedro", "viz", "build"],
        cwd=project_copy,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    with static_site(project_copy / "build", tmp_path) as url:
        page.goto(f"{url}/?pid=training")
        expect(page.locator("[data-test='kedro-pipeline-selector'] .dropdown__label")).to_have_text(
            "training"
        )
        graph = page.locator(".pipeline-flowchart__nodes")
        expect(graph.locator("[data-node-fullname='raw_housing']")).to_be_visible()
        for candidate in CANDIDATES:  # one block per candidate namespace
            expect(
                graph.locator(f"[data-node-type='modularPipeline'][data-node-fullname='{candidate}']")
            ).to_be_visible()
        layers = page.locator(".pipeline-layer-name")
        expect(layers).to_have_text(["raw", "intermediate", "model_input", "models", "reporting"])
