"""`housing monitor` for real, as a scheduler runs it, on copies of a trained project whose
prediction logs were filled by the real API from replayed traffic: the exit status says
what happened (0 nothing to do, 3 drift found and the champion kept, 1 a problem), and a
problem is a message that says what to do, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import clean_env, copy_project, housing_cli, running_api

pytestmark = pytest.mark.e2e

MODEL = "california-housing"


def _served_copy(trained: Path, tmp: Path, scenario: str, n: int) -> tuple[Path, dict[str, str]]:
    """A private copy of the trained project and a prediction log of ``n`` rows of
    ``scenario`` sent through the real API by `housing simulate` (no feedback)."""
    root = tmp / "project"
    shutil.copytree(trained, root, ignore=shutil.ignore_patterns("prediction_log.db*", "drift"))
    env = {**clean_env(), "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{tmp / 'log.db'}"}
    with running_api(root, env) as (url, _):
        replay = housing_cli(
            env, "simulate", "--scenario", scenario, "--n", str(n), "--rate", "2000", "--url", url,
            "--project-path", str(root), "--env", "test", timeout=300,
        )  # fmt: skip
    assert replay.returncode == 0, replay.stderr[-2000:]
    return root, env


@pytest.fixture(scope="module")
def stable(trained_project, tmp_path_factory):
    return _served_copy(trained_project, tmp_path_factory.mktemp("stable"), "stable", 400)


@pytest.fixture(scope="module")
def inflation(trained_project, tmp_path_factory):
    return _served_copy(trained_project, tmp_path_factory.mktemp("inflation"), "inflation", 600)


def monitor(root: Path, env: dict[str, str], *args: str):
    return housing_cli(env, "monitor", *args, "--env", "test", "--project-path", str(root))


def champion_version(root: Path) -> int:
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return int(client.get_model_version_by_alias(MODEL, "champion").version)


def assert_message(run, code: int, message: str) -> None:
    assert run.returncode == code, run.stdout[-2000:] + run.stderr[-3000:]
    assert message in run.stderr, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]


def test_stable_traffic_is_no_drift_exit_0_and_nothing_is_retrained(stable):
    root, env = stable
    run = monitor(root, env, "--auto-retrain")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "dataset drift: no" in run.stdout
    summary = json.loads((root / "data" / "08_reporting" / "drift" / "drift_summary.json").read_text())
    assert summary["dataset_drift"] is False and summary["n_current"] == 400
    assert not (root / "data" / "08_reporting" / "retraining_decision.json").exists()


def test_drift_without_auto_retrain_is_exit_3_and_the_champion_stays(inflation):
    root, env = inflation
    before = champion_version(root)
    run = monitor(root, env)
    assert run.returncode == 3, run.stderr[-3000:]
    assert "\ndataset drift: yes (share 0." in run.stdout, run.stdout
    assert not (root / "data" / "08_reporting" / "retraining_decision.json").exists()
    assert champion_version(root) == before


def test_auto_retrain_without_labels_is_exit_1_saying_how_to_get_them(inflation):
    root, env = inflation
    before = champion_version(root)
    run = monitor(root, env, "--auto-retrain", "--strategy", "finetune")
    assert "dataset drift: yes" in run.stdout
    assert_message(run, 1, "MonitoringError: none of the 600 production rows in the window has ground truth")
    assert "housing simulate --feedback" in run.stderr
    assert champion_version(root) == before


def test_an_empty_prediction_log_is_exit_1_saying_what_to_do(trained_project, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(trained_project, root, ignore=shutil.ignore_patterns("prediction_log.db*", "drift"))
    env = {**clean_env(), "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    assert_message(
        monitor(root, env),
        1,
        "MonitoringError: the prediction log is empty: serve some traffic first (housing simulate",
    )


def test_no_champion_yet_is_exit_1_saying_what_to_run(inflation, tmp_path):
    """Traffic in the log, but a registry without a champion (training never ran)."""
    root = copy_project(tmp_path / "project")
    env = {**clean_env(), "HOUSING_PREDICTION_LOG_URI": inflation[1]["HOUSING_PREDICTION_LOG_URI"]}
    assert_message(monitor(root, env), 1, "has no 'champion' yet: run `kedro run --pipelines=training` first")


def test_a_folder_that_is_not_a_project_is_exit_1(tmp_path):
    assert_message(monitor(tmp_path, clean_env()), 1, f"{tmp_path} is not a housing project")
