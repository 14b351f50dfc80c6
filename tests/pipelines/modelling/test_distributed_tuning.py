"""Two worker processes share one Optuna study and one budget: on a journal file, and on a
real PostgreSQL server whose URL (with its password) comes from HOUSING_OPTUNA_STORAGE."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from housing.db import url_string
from housing.pipelines.modelling.estimators import STORAGE_ENV, make_storage

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from housing.pipelines.modelling.cv import make_folds
    from housing.pipelines.modelling.nodes import tune_hyperparameters

    data = pd.read_csv(sys.argv[1]).sample(3000, random_state=0)
    # trials that take a moment (a small forest): with near-instant ones, the worker that
    # connects first can finish the whole budget before the other has started
    candidate = {
        "name": "forest", "estimator": "sklearn.ensemble.RandomForestRegressor",
        "fixed": {"n_estimators": 30, "random_state": 0, "n_jobs": 1},
        "search_space": {"max_depth": {"type": "int", "low": 3, "high": 12}},
        "n_trials": 20,
    }
    tuning = {"cv_folds": 2, "seed": int(sys.argv[3]), "storage": sys.argv[2] or None,
              "study_prefix": "shared", "show_progress_bar": False}
    features = {"rotation_degrees": [], "n_clusters": 0, "n_neighbors": 0}
    folds = make_folds(data, features, tuning)

    # start together (bounded wait), or the first worker finishes the budget alone
    barrier = Path(sys.argv[4])
    (barrier / f"ready-{sys.argv[3]}").touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    tune_hyperparameters(data, folds, candidate, tuning)
    """
)


@pytest.fixture(params=["journal", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_storage(request, tmp_path, monkeypatch) -> tuple[str, dict[str, str]]:
    """``tuning.storage`` and the workers' environment: a journal file in the parameter,
    or a PostgreSQL URL with a password in the environment only."""
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    if request.param == "journal":
        return f"journal:{tmp_path / 'optuna-journal.log'}", dict(os.environ)
    uri = request.getfixturevalue("postgres_uri")
    monkeypatch.setenv(STORAGE_ENV, uri)
    return "", {**os.environ, STORAGE_ENV: uri}


def test_two_workers_share_one_study(tmp_path, shared_storage):
    from tests.conftest import raw_csv_path  # noqa: PLC0415

    storage, env = shared_storage
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(raw_csv_path()), storage, str(seed), str(tmp_path)], env=env
        )
        for seed in (1, 2)
    ]
    try:
        for worker in workers:
            assert worker.wait(timeout=180) == 0
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(timeout=30)
    # with no tuning.storage, make_storage reads HOUSING_OPTUNA_STORAGE: the study is on the server
    study = optuna.load_study(study_name="shared-forest", storage=make_storage(storage or None))
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pids = {t.user_attrs["worker"] for t in done}
    assert len(pids) == 2, "both workers should have contributed trials"
    # one shared budget of 20, overshot by at most the trial each other worker had in flight
    assert 20 <= len(done) <= 21


def test_a_password_in_tuning_storage_stops_the_run(monkeypatch):
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    with pytest.raises(ValueError, match=f"tuning.storage holds a password.*{STORAGE_ENV}"):
        make_storage("postgresql://optuna:hunter2@db/optuna")


def _files_containing(root: Path, secret: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


@pytest.mark.e2e
@pytest.mark.postgres
def test_the_storage_password_never_reaches_mlflow(project_copy, postgres, postgres_uri, tmp_path):
    """The light training with its studies on PostgreSQL: the password is in the
    environment only, never in the run's params, tags, artifacts, store or output."""
    from tests.conftest import clean_env, kedro_run  # noqa: PLC0415

    store = tmp_path / "store"
    store.mkdir()
    tracking = f"sqlite:///{store / 'mlflow.db'}"
    env = {
        **clean_env(),
        "MLFLOW_TRACKING_URI": tracking,
        "MLFLOW_ARTIFACT_LOCATION": str(store / "artifacts"),
        STORAGE_ENV: postgres_uri,
    }
    run = kedro_run(project_copy, env, "--pipelines", "training")
    assert run.returncode == 0, run.stderr[-3000:]

    secret = postgres.password
    studies = optuna.get_all_study_names(storage=optuna.storages.RDBStorage(url_string(postgres_uri, "test")))
    assert {"housing-lightgbm", "housing-linear_regression"} <= set(studies), "tuning ran on the server"
    client = MlflowClient(tracking_uri=tracking)
    runs = client.search_runs([client.get_experiment_by_name("housing").experiment_id])
    assert runs and any("tuning.storage" in r.data.params for r in runs)
    for logged in runs:
        assert not [k for k, v in logged.data.params.items() if secret in k + str(v)]
        assert not [k for k, v in logged.data.tags.items() if secret in k + str(v)]
        downloaded = Path(
            client.download_artifacts(logged.info.run_id, "", str(tmp_path / logged.info.run_id))
        )
        assert any(downloaded.rglob("*.csv")), "the run's artifacts were searched"
        assert not _files_containing(downloaded, secret.encode())
    assert not _files_containing(store, secret.encode()), "the password is in the MLflow store"
    assert not _files_containing(project_copy / "data", secret.encode())
    assert secret not in run.stdout + run.stderr
