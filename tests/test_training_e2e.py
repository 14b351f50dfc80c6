"""`kedro run` of the light configuration, end to end, against a temporary MLflow store.

The first run (the CLI, a fresh store) must crown its best model; a new process must load
that champion back by alias through the catalog and reproduce the logged test RMSE; a
second run of the same configuration must give the same model to 1e-9, registered but
not promoted (it does not beat the champion).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import mlflow
import numpy as np
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from housing.pipelines.data_processing.features import FEATURES, row_fingerprints
from tests.conftest import clean_env, kedro_run

pytestmark = pytest.mark.e2e

MODEL = "california-housing"

LOAD_CHAMPION = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd
    from pathlib import Path
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    root = Path(sys.argv[1])
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env="test") as session:
        catalog = session.load_context().catalog
        model = catalog.load("champion_model")
        test = catalog.load("model_input_test")
    raw = test.drop(columns="MedHouseVal")
    predictions = model.predict(raw)
    print(json.dumps({
        "rmse": float(np.sqrt(np.mean((predictions - test["MedHouseVal"].to_numpy()) ** 2))),
        "first": float(predictions[0]),
        "n": int(len(predictions)),
    }))
    """
)


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "store" / "artifacts"))
    return uri


def test_training_registers_a_champion_and_the_gate_holds_it(project_copy, store):
    # 1. the CLI, as a user runs it
    cli = kedro_run(project_copy, os.environ.copy(), "--pipelines", "training")
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "test RMSE" in cli.stderr + cli.stdout

    client = MlflowClient(tracking_uri=store)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert int(champion.version) == 1
    run = client.get_run(champion.run_id)
    logged_rmse = run.data.metrics["candidate_metrics.best.test_rmse"]
    assert logged_rmse < 0.5
    assert float(champion.tags["test_rmse"]) == pytest.approx(logged_rmse, rel=1e-5)
    assert run.data.tags["promoted"] == "true"
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {
        "reports/model_comparison.csv",
        "reports/model_comparison.md",
        "reports/model_comparison.png",
        "reports/promotion_decision.json",
    } <= reports
    shap = {a.path for a in client.list_artifacts(run.info.run_id, "shap")}
    assert {"shap/shap_summary_beeswarm.png", "shap/mean_abs_shap_by_feature.csv"} <= shap
    assert any(key.startswith("linear_regression.candidate") for key in run.data.params)
    assert (project_copy / "data" / "06_models" / "model_comparison.csv").exists()
    for name in (
        "model_comparison.md",
        "model_comparison.png",
        "promotion_decision.json",
    ):
        assert (project_copy / "data" / "08_reporting" / name).exists()
    assert not (project_copy / "mlflow.db").exists(), "MLFLOW_TRACKING_URI must win over the default store"

    # 2. a new process loads the champion by alias through the catalog, feeding raw rows
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_CHAMPION, str(project_copy)],
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ.copy(),
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result["n"] == 4_128
    assert result["rmse"] == pytest.approx(logged_rmse, abs=1e-9)

    # 3. the same data and configuration give the same model (deterministic by construction),
    #    which is registered but cannot take the alias: it does not beat the champion
    bootstrap_project(project_copy)
    try:
        with KedroSession.create(project_path=project_copy, env="test") as session:
            session.run(pipeline_names=["training"])
    finally:
        mlflow.end_run()
    versions = {int(v.version) for v in client.search_model_versions(f"name='{MODEL}'")}
    assert versions == {1, 2}
    assert int(client.get_model_version_by_alias(MODEL, "champion").version) == 1
    decision = json.loads((project_copy / "data" / "08_reporting" / "promotion_decision.json").read_text())
    assert decision["promoted"] is False
    assert decision["challenger"]["test_rmse"] == pytest.approx(logged_rmse, abs=1e-9)
    head_to_head = decision["head_to_head"]
    assert head_to_head["version"] == 1 and head_to_head["rows"] == 4_128
    assert head_to_head["excluded_seen_rows"] == 0
    assert "does not beat champion" in client.get_model_version(MODEL, "2").description

    # 4. every version records the rows that trained it, and the data it came from
    with KedroSession.create(project_path=project_copy, env="test") as session:
        catalog = session.load_context().catalog
        champion = catalog.load("current_champion")
        train = catalog.load("model_input_train")
        reference = catalog.load("champion_drift_reference")
    assert np.array_equal(np.sort(champion["training_rows"]), np.sort(row_fingerprints(train)))
    assert champion["tags"]["data_sha256"] == decision["data_version"]["sha256"]
    assert list(reference.columns) == [*FEATURES, "prediction", "actual"]


RETRAIN_ON_REPLAYED_ROWS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import mlflow, numpy as np, pandas as pd
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from sklearn.base import clone
    from housing.contract import FEATURES, TARGET
    from housing.datasets import ModelReleaseDataset
    from housing.pipelines.data_processing.features import row_fingerprints
    from housing.simulation.scenarios import stable

    root = Path(sys.argv[1])
    bootstrap_project(root)
    with KedroSession.create(project_path=root, env="test") as session:
        catalog = session.load_context().catalog  # points MLflow at this project's store
        champion = catalog.load("current_champion")
        train, test = catalog.load("model_input_train"), catalog.load("model_input_test")
    replayed = stable(test, 300, np.random.default_rng(0)).drop_duplicates(subset=list(FEATURES))
    seen = pd.concat([train, replayed.rename(columns={"actual": TARGET})[[*FEATURES, TARGET]]])
    model = clone(champion["model"]).fit(seen[list(FEATURES)], seen[TARGET].to_numpy())
    mlflow.set_experiment("housing")
    with mlflow.start_run():
        ModelReleaseDataset(model_name="california-housing", save_args={"serialization_format": "pickle"}).save({
            "model": model, "candidate": "retrain-mixed", "metrics": {"test_rmse": 0.0}, "promote": True,
            "input_example": test[list(FEATURES)].head(3), "training_rows": row_fingerprints(seen),
            "drift_reference": champion["drift_reference_run_id"],
        })
    print(len(replayed), len(test))
    """
)


def test_a_champion_retrained_on_replayed_rows_is_not_graded_on_them(trained_project, tmp_path):
    """Replayed traffic comes from held-out rows; a champion retrained on it has seen them,
    so the next training run's gate must leave exactly those rows out. Each step in its own
    process, as a user runs them (MLflow's global state stays out of it)."""
    root = tmp_path / "project"
    shutil.copytree(trained_project, root)
    retrained = subprocess.run(
        [sys.executable, "-c", RETRAIN_ON_REPLAYED_ROWS, str(root)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert retrained.returncode == 0, retrained.stderr[-3000:]
    n_replayed, n_test = map(int, retrained.stdout.strip().splitlines()[-1].split())
    run = kedro_run(root, clean_env(), "--pipelines", "training")
    assert run.returncode == 0, run.stderr[-3000:]
    decision = json.loads((root / "data" / "08_reporting" / "promotion_decision.json").read_text())
    head_to_head = decision["head_to_head"]
    assert head_to_head["version"] == 2
    assert head_to_head["excluded_seen_rows"] == n_replayed > 0
    assert head_to_head["rows"] == n_test - n_replayed
