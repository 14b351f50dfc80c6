import json

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from housing.pipelines.data_processing.features import FEATURES, TARGET, GeoFeatures
from housing.pipelines.modelling.estimators import build_model, make_storage, suggest
from housing.pipelines.modelling.nodes import (
    compare_candidates,
    comparison_to_markdown,
    comparison_to_mlflow_metrics,
    decide_promotion,
    evaluate_candidate,
    evaluate_champion,
    fit_candidate,
    plot_comparison,
    promotion_gate,
    select_best_candidate,
    tune_hyperparameters,
)

RIDGE = {
    "name": "ridge",
    "estimator": "sklearn.linear_model.Ridge",
    "scale": True,
    "fixed": {"fit_intercept": True},
    "search_space": {"alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
    "n_trials": 3,
}
FEATURES_CFG = {"rotation_degrees": [45], "n_clusters": 0, "n_neighbors": 5}
TUNING = {
    "cv_folds": 2,
    "seed": 0,
    "storage": None,
    "study_prefix": "t",
    "show_progress_bar": False,
}


@pytest.fixture
def split(raw_housing):
    data = raw_housing.sample(800, random_state=0)
    return data.iloc[:600], data.iloc[600:]


def test_build_model_follows_configuration():
    model = build_model(RIDGE, {"alpha": 2.0}, FEATURES_CFG)
    assert [type(step) for _, step in model.steps] == [
        GeoFeatures,
        StandardScaler,
        Ridge,
    ]
    assert model.named_steps["model"].alpha == 2.0
    assert build_model({**RIDGE, "scale": False}, {}, FEATURES_CFG).steps[1][0] == "model"


def test_suggest_draws_each_type_and_rejects_unknown():
    trial = optuna.create_study().ask()
    space = {
        "a": {"type": "int", "low": 1, "high": 3},
        "b": {"type": "float", "low": 0.1, "high": 1.0, "log": True},
        "c": {"type": "categorical", "choices": ["x", "y"]},
    }
    drawn = suggest(trial, space)
    assert drawn["a"] in {1, 2, 3} and 0.1 <= drawn["b"] <= 1.0 and drawn["c"] in {"x", "y"}
    with pytest.raises(ValueError, match=r"search_space.d: unknown type 'uniform'"):
        suggest(trial, {"d": {"type": "uniform", "low": 0, "high": 1}})


def test_make_storage(tmp_path):
    assert make_storage(None) is None
    assert type(make_storage(f"journal:{tmp_path / 'j.log'}")).__name__ == "JournalStorage"
    assert type(make_storage(f"sqlite:///{tmp_path / 'o.db'}")).__name__ == "RDBStorage"


def test_tune_fit_evaluate(split):
    train, test = split
    tuned, trials = tune_hyperparameters(train, RIDGE, FEATURES_CFG, TUNING)
    assert tuned["n_trials"] == 3 and len(trials) == 3
    assert tuned["cv_rmse"] == pytest.approx(trials["value"].min())
    assert 0.01 <= tuned["best_params"]["alpha"] <= 10.0
    json.dumps(tuned)  # saved as a JSON artifact
    model = fit_candidate(train, RIDGE, FEATURES_CFG, tuned)
    metrics = evaluate_candidate(model, test, tuned)
    assert metrics["candidate"] == "ridge"
    assert 0.3 < metrics["test_rmse"] < 1.0 and 0 < metrics["test_r2"] < 1


def test_tuning_resumes_a_finished_study_instead_of_repeating_it(split, tmp_path):
    tuning = {**TUNING, "storage": f"journal:{tmp_path / 'journal.log'}"}
    tune_hyperparameters(split[0], RIDGE, FEATURES_CFG, tuning)
    tuned, trials = tune_hyperparameters(split[0], RIDGE, FEATURES_CFG, tuning)
    assert tuned["n_trials"] == 3 and len(trials) == 3


def _metrics(name, rmse):
    return {
        "candidate": name,
        "cv_rmse": rmse + 0.01,
        "cv_rmse_std": 0.01,
        "cv_mae": 0.3,
        "cv_r2": 0.8,
        "test_rmse": rmse,
        "test_mae": 0.3,
        "test_r2": 0.8,
        "n_trials": 2,
        "fit_seconds": 1.0,
        "batch_predict_ms_per_row": 0.01,
    }


REFERENCE = {"random_forest": {"rmse": 0.51, "mae": 0.33, "r2": 0.80}}


def test_comparison_reports():
    table = compare_candidates(a=_metrics("a", 0.5), b=_metrics("b", 0.4))
    assert list(table["candidate"]) == ["b", "a"]
    markdown = comparison_to_markdown(table, REFERENCE)
    assert markdown.index("| b |") < markdown.index("| a |")
    assert "| random_forest | 0.51 | 0.33 | 0.80 |" in markdown
    fig = plot_comparison(table, REFERENCE)
    ax = fig.axes[0]
    assert "RMSE" in ax.get_xlabel() and [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]
    metrics = comparison_to_mlflow_metrics(table)
    assert metrics["b.test_rmse"] == {"value": 0.4, "step": 0}
    assert metrics["best.test_rmse"]["value"] == 0.4
    best = select_best_candidate(table, a="model-a", b="model-b")
    assert best["candidate"] == "b" and best["model"] == "model-b" and best["metrics"]["test_rmse"] == 0.4


@pytest.mark.parametrize(
    ("challenger", "champion", "margin", "promoted"),
    [
        (0.40, None, 0.0, True),
        (0.39, 0.40, 0.0, True),
        (0.41, 0.40, 0.0, False),
        (0.40, 0.40, 0.0, False),
        (0.395, 0.40, 0.01, False),
    ],
)
def test_promotion_gate(challenger, champion, margin, promoted):
    decision, reason = promotion_gate(challenger, champion, margin)
    assert decision is promoted
    assert f"{challenger:.4f}" in reason


def test_decide_promotion_both_ways(split):
    _, test = split
    best = {"candidate": "b", "model": object(), "metrics": _metrics("b", 0.40)}
    release, decision = decide_promotion(
        best, {"version": 3, "test_rmse": 0.38}, test, {"min_improvement": 0.0}
    )
    assert release["promote"] is False and decision["promoted"] is False
    assert decision["champion_before"]["version"] == 3
    release, decision = decide_promotion(best, {}, test, {"min_improvement": 0.0, "input_example_rows": 2})
    assert release["promote"] is True and "no current champion" in release["reason"]
    assert list(release["input_example"].columns) == list(FEATURES) and len(release["input_example"]) == 2
    json.dumps(decision)


def test_evaluate_champion_rescores_on_the_test_set(split):
    train, test = split

    class Constant:
        def predict(self, X):
            return np.full(len(X), train[TARGET].mean())

    assert evaluate_champion(None, test) == {}
    scored = evaluate_champion({"version": 2, "model": Constant()}, test)
    expected = float(np.sqrt(((test[TARGET] - train[TARGET].mean()) ** 2).mean()))
    assert scored["version"] == 2 and scored["test_rmse"] == pytest.approx(expected)
    assert isinstance(pd.Series(scored).to_json(), str)
