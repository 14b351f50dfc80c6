"""The loop, end to end, as a user runs it: real API, replayed `inflation` traffic with
feedback (housing simulate), `kedro run --pipelines=drift`, then
`--pipelines=retraining`; and the unhappy paths print a message, not a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import clean_env, housing_cli, kedro_run, running_api

pytestmark = pytest.mark.e2e

MODEL = "california-housing"
TOKEN = "simulator-feedback-token-0123"


@pytest.fixture
def project(trained_project, tmp_path):
    """A private copy of the trained project: this test moves its registry's alias."""
    root = tmp_path / "project"
    shutil.copytree(trained_project, root, ignore=shutil.ignore_patterns("prediction_log.db*", "drift"))
    env = {**clean_env(), "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{tmp_path / 'log.db'}"}
    return root, env


def assert_clean_failure(run: subprocess.CompletedProcess, message: str) -> None:
    assert run.returncode != 0
    assert message in run.stderr
    assert "Traceback" not in run.stderr and "│" not in run.stderr, run.stderr[-2000:]


def test_drift_then_retraining_on_replayed_traffic(project):
    root, env = project
    assert_clean_failure(
        kedro_run(root, env, "--pipelines", "drift"), "MonitoringError: the prediction log is empty"
    )

    with running_api(root, {**env, "HOUSING_FEEDBACK_TOKEN": f"simulator:{TOKEN}"}) as (url, _):
        replay = housing_cli(
            {**env, "HOUSING_API_TOKEN": TOKEN},
            "simulate",
            "--scenario",
            "inflation",
            "--n",
            "600",
            "--rate",
            "2000",
            "--feedback",
            "--url",
            url,
            "--project-path",
            str(root),
            "--env",
            "test",
            timeout=300,
        )
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert "inflation: sent 600, predicted 600, rejected 0, feedback 600" in replay.stdout

    drift = kedro_run(root, env, "--pipelines", "drift")
    assert drift.returncode == 0, drift.stderr[-3000:]
    summary = json.loads((root / "data" / "08_reporting" / "drift" / "drift_summary.json").read_text())
    drifted = {c["column"] for c in summary["columns"] if c["drifted"]}
    assert summary["dataset_drift"] is True and {"MedInc", "Population", "AveBedrms"} <= drifted
    assert summary["performance"]["n_labelled"] == 600
    history = list((root / "data" / "08_reporting" / "drift" / "history" / "drift_summary.json").iterdir())
    assert len(history) == 1  # one folder per run: a second run adds, never overwrites

    # the API serves that verdict and report through the real catalog (not a stand-in)
    with running_api(root, env) as (url, _):
        served = httpx.get(f"{url}/monitoring/drift", timeout=30)
        report_page = httpx.get(f"{url}/monitoring/drift/report", timeout=60)
    assert served.status_code == 200 and served.json()["dataset_drift"] is True
    assert {c["column"] for c in served.json()["columns"] if c["drifted"]} == drifted
    assert report_page.status_code == 200 and report_page.headers["content-type"].startswith("text/html")
    assert report_page.text == (root / "data" / "08_reporting" / "drift" / "drift_report.html").read_text()

    assert_clean_failure(
        kedro_run(root, env, "--pipelines", "retraining", "--params", "retraining.strategy=boost"),
        "unknown retraining strategy 'boost'",
    )
    retraining = kedro_run(root, env, "--pipelines", "retraining", "--params", "retraining.strategy=finetune")
    assert retraining.returncode == 0, retraining.stderr[-3000:]
    decision = json.loads((root / "data" / "08_reporting" / "retraining_decision.json").read_text())
    assert decision["candidate"] == "retrain-finetune"
    assert decision["challenger"]["production_rmse"] < decision["champion"]["production_rmse"]
    # the per-segment table: in the decision, the Markdown report and the run's metrics
    assert {r["status"] for r in decision["segments"]} <= {"ok", "regressed", "moved", "too few rows"}
    report = (root / "data" / "08_reporting" / "retraining_report.md").read_text()
    assert "## finetune: RMSE on unseen original rows per segment" in report

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    versions = {int(v.version): v for v in client.search_model_versions(f"name='{MODEL}'")}
    newest = versions[max(versions)]
    assert newest.tags["candidate"] == "retrain-finetune"
    champion = int(client.get_model_version_by_alias(MODEL, "champion").version)
    assert (champion == int(newest.version)) is decision["promoted"]
    run = client.get_run(newest.run_id)
    assert any(k.startswith("retraining_metrics.segment.cluster_") for k in run.data.metrics), sorted(
        run.data.metrics
    )
    assert "retraining/retraining_report.md" in {
        a.path for a in client.list_artifacts(run.info.run_id, "retraining")
    }

    # unattended: drift, then every strategy through the gate; the verdict in plain words
    monitor = housing_cli(env, "monitor", "--auto-retrain", "--env", "test", "--project-path", str(root))
    decision = json.loads((root / "data" / "08_reporting" / "retraining_decision.json").read_text())
    assert set(decision["strategies"]) | set(decision["skipped"]) == {"mixed", "finetune", "weighted"}
    assert monitor.returncode == (0 if decision["promoted"] else 3), monitor.stderr[-3000:]
    assert "dataset drift: yes" in monitor.stdout and decision["summary"] in monitor.stdout
