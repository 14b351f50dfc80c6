import json

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from housing.errors import HousingError
from housing.pipelines.data_processing.features import FEATURES, TARGET, GeoFeatures, row_fingerprints
from housing.pipelines.modelling.cv import best_iteration, cross_validate, make_folds
from housing.pipelines.modelling.estimators import build_model, make_storage, suggest
from housing.pipelines.modelling.nodes import (
    compare_candidates,
    evaluate_candidate,
    fit_candidate,
    select_best_candidate,
    tune_hyperparameters,
)
from housing.pipelines.modelling.promotion import (
    build_drift_reference,
    compare_with_champion,
    decide_promotion,
    promotion_gate,
)
from housing.pipelines.modelling.reports import (
    comparison_to_markdown,
    comparison_to_mlflow_metrics,
    plot_comparison,
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


def _tune(train, candidate=RIDGE, tuning=TUNING):
    return tune_hyperparameters(train, make_folds(train, FEATURES_CFG, tuning), candidate, tuning)


def test_tune_fit_evaluate(split):
    train, test = split
    tuned, trials, oof = _tune(train)
    assert tuned["n_trials"] == 3 and len(trials) == 3 and tuned["truncated"] is False
    assert tuned["cv_rmse"] == pytest.approx(trials["value"].min())
    assert 0.01 <= tuned["best_params"]["alpha"] <= 10.0
    # the out-of-fold predictions are the best trial's, one per training row
    assert oof.index.equals(train.index)
    assert float(np.sqrt(((oof - train[TARGET]) ** 2).mean())) == pytest.approx(tuned["cv_rmse"], rel=0.05)
    json.dumps(tuned)  # saved as a JSON artifact
    model = fit_candidate(train, RIDGE, FEATURES_CFG, tuned)
    metrics = evaluate_candidate(model, test, tuned)
    assert metrics["candidate"] == "ridge"
    assert 0.3 < metrics["test_rmse"] < 1.0 and 0 < metrics["test_r2"] < 1


LGBM = {
    "name": "lgbm",
    "estimator": "lightgbm.LGBMRegressor",
    "fixed": {
        "n_estimators": 400,
        "verbose": -1,
        "random_state": 0,
        "deterministic": True,
        "force_col_wise": True,
    },
    "early_stopping": {"rounds": 20},
    "search_space": {"learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True}},
    "enqueue": [{"learning_rate": 0.2}],
    "n_trials": 2,
}


def test_early_stopping_learns_the_number_of_trees_and_enqueued_configurations_go_first(split):
    tuned, trials, _ = _tune(split[0], LGBM)
    assert trials.loc[0, "params_learning_rate"] == 0.2
    n_trees = tuned["best_params"]["n_estimators"]
    assert 1 <= n_trees < 400  # stopped early: the ceiling is never reached at these learning rates
    model = fit_candidate(split[0], LGBM, FEATURES_CFG, tuned)
    assert model.named_steps["model"].n_estimators == n_trees


def test_refining_at_a_slow_learning_rate_is_kept_only_if_cv_says_so(split):
    candidate = {**LGBM, "refine": {"learning_rate": 0.03}}
    tuned, trials, _ = _tune(split[0], candidate)
    folds = make_folds(split[0], FEATURES_CFG, TUNING)
    best = trials.loc[trials["value"].idxmin()]
    slow = cross_validate(candidate, {"learning_rate": 0.03}, folds)["cv_rmse"]
    assert tuned["refined"] is bool(slow < best["value"])
    assert tuned["cv_rmse"] == pytest.approx(min(slow, best["value"]))
    assert (tuned["best_params"]["learning_rate"] == 0.03) is tuned["refined"]


def test_best_iteration_is_the_minimum_of_the_mean_curve_over_rounds_all_folds_reached():
    curves = [np.array([3.0, 2.0, 1.0, 1.5]), np.array([3.0, 1.0, 2.0])]
    assert best_iteration(curves) == 2  # means 3.0, 1.5, 1.5 over the 3 common rounds


def test_cv_is_the_same_whatever_the_number_of_threads(split):
    folds = make_folds(split[0], FEATURES_CFG, TUNING)
    one = cross_validate(LGBM, {"learning_rate": 0.1}, folds, n_jobs=1)
    two = cross_validate(LGBM, {"learning_rate": 0.1}, folds, n_jobs=2)
    assert one["cv_rmse"] == two["cv_rmse"] and one["n_estimators"] == two["n_estimators"]
    assert np.array_equal(one["oof"], two["oof"])


def test_a_time_limit_is_an_opt_in_that_marks_the_search_truncated(split, caplog):
    candidate = {**RIDGE, "n_trials": 1_000, "timeout_seconds": 0.5}
    tuned, trials, _ = _tune(split[0], candidate)
    assert tuned["truncated"] is True and tuned["n_trials"] == len(trials) < 1_000
    assert "depends on this machine's speed" in caplog.text


def test_tuning_resumes_a_finished_study_instead_of_repeating_it(split, tmp_path):
    tuning = {**TUNING, "storage": f"journal:{tmp_path / 'journal.log'}"}
    _tune(split[0], tuning=tuning)
    tuned, trials, _ = _tune(split[0], tuning=tuning)
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
        "truncated": False,
        "tuning_seconds": 3.0,
        "fit_seconds": 1.0,
        "batch_predict_ms_per_row": 0.01,
    }


REFERENCE = {"random_forest": {"rmse": 0.51, "mae": 0.33, "r2": 0.80}}


def test_comparison_is_ordered_and_the_winner_chosen_by_cv_not_by_test():
    a, b = _metrics("a", 0.5), _metrics("b", 0.4)
    a["cv_rmse"], b["cv_rmse"] = 0.41, 0.42  # a wins on CV although b scores better on test
    table = compare_candidates(a=a, b=b)
    assert list(table["candidate"]) == ["a", "b"]
    markdown = comparison_to_markdown(table, REFERENCE)
    assert markdown.index("| a |") < markdown.index("| b |")
    assert "| random_forest | 0.51 | 0.33 | 0.80 |" in markdown
    fig = plot_comparison(table, REFERENCE)
    ax = fig.axes[0]
    assert "RMSE" in ax.get_xlabel() and [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    metrics = comparison_to_mlflow_metrics(table)
    assert metrics["b.test_rmse"] == {"value": 0.4, "step": 0}
    assert metrics["best.test_rmse"]["value"] == 0.5 and metrics["best.cv_rmse"]["value"] == 0.41
    best = select_best_candidate(table, a="model-a", b="model-b", a_oof="oof-a", b_oof="oof-b")
    assert best["candidate"] == "a" and best["model"] == "model-a" and best["oof"] == "oof-a"


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


class Constant:
    def __init__(self, value):
        self.value = value

    def predict(self, X):
        return np.full(len(X), self.value)


def test_decide_promotion_both_ways(split):
    train, test = split
    best = {"candidate": "b", "model": Constant(2.0), "metrics": _metrics("b", 0.40)}
    head_to_head = {
        "version": 3,
        "rows": 100,
        "champion": {"test_rmse": 0.38},
        "challenger": {"test_rmse": 0.40},
    }
    version = {"rows": 20_640, "sha256": "0" * 64}
    release, decision = decide_promotion(
        best, head_to_head, train, test, test, version, {"min_improvement": 0.0}
    )
    assert release["promote"] is False and decision["promoted"] is False
    assert (
        decision["head_to_head"]["version"] == 3
        and "100 test rows neither model has seen" in decision["reason"]
    )
    release, decision = decide_promotion(
        best, {}, train, test, test, version, {"min_improvement": 0.0, "input_example_rows": 2}
    )
    assert release["promote"] is True and "no current champion" in release["reason"]
    assert list(release["input_example"].columns) == list(FEATURES) and len(release["input_example"]) == 2
    assert len(release["training_rows"]) == len(train) and decision["data_version"] == version
    json.dumps(decision)


def test_the_champion_is_judged_only_on_test_rows_neither_model_has_seen(split):
    """A champion retrained on replayed held-out traffic must not be graded on those rows."""
    train, test = split
    replayed = test.iloc[:50]
    champion = {
        "version": 4,
        "model": Constant(train[TARGET].mean()),
        "training_rows": np.union1d(row_fingerprints(train), row_fingerprints(replayed)),
    }
    best = {"model": Constant(2.0)}
    assert compare_with_champion(best, None, train, test) == {}
    scored = compare_with_champion(best, champion, train, test)
    assert scored["rows"] == len(test) - 50 and scored["excluded_seen_rows"] == 50
    unseen = test.iloc[50:]
    expected = float(np.sqrt(((unseen[TARGET] - train[TARGET].mean()) ** 2).mean()))
    assert scored["champion"]["test_rmse"] == pytest.approx(expected)
    assert scored["challenger"]["test_rmse"] == pytest.approx(
        float(np.sqrt(((unseen[TARGET] - 2.0) ** 2).mean()))
    )
    json.dumps(scored)
    with pytest.raises(HousingError, match="every test row was seen by champion version 4"):
        compare_with_champion(best, {**champion, "training_rows": row_fingerprints(test)}, train, test)


def test_a_champion_without_manifest_is_assumed_to_have_seen_the_training_split(split, caplog):
    train, test = split
    scored = compare_with_champion(
        {"model": Constant(2.0)}, {"version": 1, "model": Constant(2.0)}, train, test
    )
    assert scored["rows"] == len(test) and "no manifest" in caplog.text


def test_drift_reference_uses_out_of_fold_predictions_and_predicts_only_unseen_rows(split):
    train, _ = split
    cleaned = train.iloc[10:]  # as if cleaning dropped the first 10 rows
    oof = pd.Series(1.5, index=cleaned.index)
    reference = build_drift_reference(
        train, {"oof": oof, "model": Constant(9.0)}, {"sample_size": 10_000, "seed": 0}
    )
    assert len(reference) == len(train)
    assert list(reference.columns) == [*FEATURES, "prediction", "actual"]
    assert (reference["prediction"] == 9.0).sum() == 10 and (reference["prediction"] == 1.5).sum() == len(
        cleaned
    )
