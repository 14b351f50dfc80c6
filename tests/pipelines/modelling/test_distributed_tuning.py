"""Two worker processes on one Optuna journal file share one study and one budget."""

import subprocess
import sys
import textwrap

import optuna

from housing.pipelines.modelling.estimators import make_storage

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from housing.pipelines.modelling.cv import make_folds
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
    tuning = {"cv_folds": 2, "seed": int(sys.argv[3]), "storage": sys.argv[2],
              "study_prefix": "shared", "show_progress_bar": False}
    features = {"rotation_degrees": [], "n_clusters": 0, "n_neighbors": 0}
    tune_hyperparameters(data, make_folds(data, features, tuning), candidate, tuning)
    """
)


def test_two_workers_share_one_study(tmp_path):
    from tests.conftest import raw_csv_path  # noqa: PLC0415

    storage = f"journal:{tmp_path / 'optuna-journal.log'}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(raw_csv_path()), storage, str(seed), str(tmp_path)]
        )
        for seed in (1, 2)
    ]
    for worker in workers:
        assert worker.wait(timeout=180) == 0
    study = optuna.load_study(study_name="shared-ridge", storage=make_storage(storage))
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    pids = {t.user_attrs["worker"] for t in done}
    assert len(pids) == 2, "both workers should have contributed trials"
    # one shared budget of 12, overshot by at most the trial each other worker had in flight
    assert 12 <= len(done) <= 13
