"""Two worker processes share one Optuna study and one budget: on a journal file, and on a
real PostgreSQL server whose URL (with its password) comes from HOUSING_OPTUNA_STORAGE."""

import os
import subprocess
import sys
import textwrap

import optuna
import pytest

from housing.pipelines.modelling.estimators import STORAGE_ENV, make_storage

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from housing.pipelines.modelling.nodes import tune_hyperparameters

    # start together (bounded wait), or the first worker finishes the budget alone
    barrier = Path(sys.argv[4])
    (barrier / f"ready-{sys.argv[3]}").touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)

    data = pd.read_csv(sys.argv[1]).sample(3000, random_state=0)
    candidate = {
        "name": "ridge", "estimator": "sklearn.linear_model.Ridge", "scale": True,
        "search_space": {"alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
        "n_trials": 12,
    }
    tuning = {"cv_folds": 2, "seed": int(sys.argv[3]), "storage": sys.argv[2] or None,
              "study_prefix": "shared", "show_progress_bar": False}
    tune_hyperparameters(data, candidate, {"rotation_degrees": [], "n_clusters": 0, "n_neighbors": 0}, tuning)
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
    study = optuna.load_study(study_name="shared-ridge", storage=make_storage(storage or None))
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pids = {t.user_attrs["worker"] for t in done}
    assert len(pids) == 2, "both workers should have contributed trials"
    # one shared budget of 12, overshot by at most the trial each other worker had in flight
    assert 12 <= len(done) <= 13


def test_a_password_in_tuning_storage_stops_the_run(monkeypatch):
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    with pytest.raises(ValueError, match=f"tuning.storage holds a password.*{STORAGE_ENV}"):
        make_storage("postgresql://optuna:hunter2@db/optuna")
