"""After `inflation` traffic with feedback, every strategy beats the champion on held-out
recent production rows; the gate's guards; and each unhappy path is a clear message.
Which strategies pass the per-segment gate, scenario by scenario: test_gate_scenarios.py."""

import json

import pytest

from housing.pipelines.data_processing.features import FEATURES, TARGET, row_fingerprints
from housing.pipelines.drift.nodes import MonitoringError
from housing.pipelines.modelling.estimators import build_model
from housing.pipelines.retraining.gate import judge_challenger
from housing.pipelines.retraining.nodes import labelled_production, retrain
from housing.simulation.scenarios import make_scenario
from tests.pipelines.conftest import as_logged

WINDOW = {"last_n": None, "since": None, "until": None, "min_rows": 100}


@pytest.fixture(scope="module")
def inflation_log(split, champion, params):
    return as_logged(
        make_scenario(split[1], "inflation", 2_000, params["simulation"]["scenarios"]["inflation"]), champion
    )


@pytest.fixture(scope="module")
def production(inflation_log):
    return labelled_production(inflation_log, WINDOW, 0.3)


@pytest.mark.parametrize("strategy", ["mixed", "finetune", "weighted"])
def test_each_strategy_beats_the_champion_on_recent_production(
    strategy, current_champion, split, production, params
):
    train, test = split
    settings = {**params["retraining"], "strategy": strategy}
    challenger = retrain(current_champion, train, production[0], settings)
    assert challenger["candidate"] == f"retrain-{strategy}"
    release, decision, metrics = judge_challenger(
        challenger, current_champion, test, production[1], settings["gate"]
    )
    assert decision["challenger"]["production_rmse"] < decision["champion"]["production_rmse"]
    assert release["promote"] is decision["promoted"]
    assert set(release["metrics"]) >= {"test_rmse", "production_rmse"}
    assert list(release["input_example"].columns) == list(FEATURES)
    assert metrics["promoted"]["value"] == float(decision["promoted"])
    assert {"segment.cluster_00.champion_rmse", "segment.cluster_00.delta"} <= set(metrics)
    json.dumps(decision, allow_nan=False)


def test_finetune_keeps_the_champion_untouched(current_champion, split, production, params):
    before = current_champion["model"].predict(split[1][list(FEATURES)].head(50))
    retrain(current_champion, split[0], production[0], {**params["retraining"], "strategy": "finetune"})
    after = current_champion["model"].predict(split[1][list(FEATURES)].head(50))
    assert (before == after).all()


def test_holdout_is_the_most_recent_rows(inflation_log, production):
    train_part, holdout = production
    assert len(train_part) == 1_400 and len(holdout) == 600
    assert list(holdout.columns) == [*FEATURES, TARGET]


def test_gate_refuses_a_worse_challenger(current_champion, split, production, params):
    worse = {
        "candidate": "retrain-mixed",
        "model": _constant(split[0]),
        "fit_seconds": 0.1,
        "training_rows": row_fingerprints(split[0]),
    }
    release, decision, _ = judge_challenger(
        worse, current_champion, split[1], production[1], params["retraining"]["gate"]
    )
    assert release["promote"] is False and "does not beat" in decision["reason"]


def _constant(train):
    class Constant:
        def predict(self, X):
            return [train[TARGET].mean()] * len(X)

    return Constant()


def test_unknown_strategy(current_champion, split, production, params):
    with pytest.raises(
        MonitoringError,
        match=r"unknown retraining strategy 'boost'; choose one of \['mixed', 'finetune', 'weighted'\]",
    ):
        retrain(current_champion, split[0], production[0], {**params["retraining"], "strategy": "boost"})


def test_no_labelled_rows(inflation_log):
    with pytest.raises(
        MonitoringError,
        match=r"none of the 2000 production rows in the window has ground truth.*POST /feedback",
    ):
        labelled_production(inflation_log.assign(actual=None), WINDOW, 0.3)


def test_too_few_labelled_rows(inflation_log):
    log = inflation_log.copy()
    log.loc[10:, "actual"] = None
    with pytest.raises(MonitoringError, match=r"only 10 labelled production row\(s\).*at least 100"):
        labelled_production(log, WINDOW, 0.3)


def test_no_champion(split, production, params):
    with pytest.raises(MonitoringError, match="no champion to retrain"):
        retrain(None, split[0], production[0], params["retraining"])


def test_finetune_needs_an_ensemble(split, production, params):
    ridge = build_model(
        {"estimator": "sklearn.linear_model.Ridge", "scale": True}, {}, params["feature_engineering"]
    )
    ridge.fit(split[0][list(FEATURES)], split[0][TARGET])
    with pytest.raises(
        MonitoringError, match="finetune continues a boosted or forest model; the champion is a Ridge"
    ):
        retrain(
            {"version": 1, "model": ridge},
            split[0],
            production[0],
            {**params["retraining"], "strategy": "finetune"},
        )


def test_labels_alone_cannot_crown_a_model_worse_on_the_test_rows(
    current_champion, split, production, params
):
    """A challenger that knows every held-out label (as forged feedback would make it look)
    but is poor on the original test rows is refused, however good production looks."""
    holdout = production[1]
    answers = {tuple(row): actual for row, actual in zip(holdout[list(FEATURES)].to_numpy(), holdout[TARGET])}
    fallback = split[0][TARGET].mean()

    class Oracle:
        def predict(self, X):
            return [answers.get(tuple(row), fallback) for row in X[list(FEATURES)].to_numpy()]

    gate = params["retraining"]["gate"]
    oracle = {
        "candidate": "retrain-mixed",
        "model": Oracle(),
        "fit_seconds": 0.1,
        "training_rows": row_fingerprints(split[0]),
    }
    release, decision, _ = judge_challenger(oracle, current_champion, split[1], holdout, gate)
    assert decision["challenger"]["production_rmse"] == 0.0
    assert decision["challenger"]["score"] < decision["champion"]["score"]  # the weighted score says promote
    assert release["promote"] is False and decision["promoted"] is False
    assert "max_test_regression" in decision["reason"]
    # each guard refuses it alone: the whole-test bound off, the segments still say no
    release, decision, _ = judge_challenger(
        oracle, current_champion, split[1], holdout, {**gate, "max_test_regression": float("inf")}
    )
    assert release["promote"] is False and "untouched segment(s) got worse" in decision["reason"]
    # and the same challenger passes when both guards are switched off by configuration
    release, _, _ = judge_challenger(
        oracle,
        current_champion,
        split[1],
        holdout,
        {
            **gate,
            "max_test_regression": float("inf"),
            "segments": {**gate["segments"], "tolerance": float("inf")},
        },
    )
    assert release["promote"] is True


def test_too_few_labelled_rows_for_a_strategy_says_how_many_more(current_champion, split, production, params):
    settings = {**params["retraining"], "strategy": "finetune"}
    with pytest.raises(
        MonitoringError,
        match=r"finetune needs at least 100 labelled production rows to train on and has 60: "
        r"send about 57 more actual values through POST /feedback",
    ):
        retrain(current_champion, split[0], production[0].head(60), settings)


def test_finetune_adds_few_small_trees_to_the_champion(current_champion, split, production, params):
    settings = params["retraining"]["finetune"]
    challenger = retrain(
        current_champion, split[0], production[0], {**params["retraining"], "strategy": "finetune"}
    )
    before, after = current_champion["model"][-1], challenger["model"][-1]
    added = after.booster_.current_iteration() - before.booster_.current_iteration()
    assert 0 < added <= settings["rounds"]
    assert (
        after.learning_rate == settings["learning_rate"]
        and after.num_leaves == settings["tree"]["num_leaves"]
    )


def test_mixed_keeps_every_original_row(current_champion, split, production, params):
    """The production rows get a share of the weight; the original data is never shrunk."""
    challenger = retrain(
        current_champion, split[0], production[0], {**params["retraining"], "strategy": "mixed"}
    )
    features = challenger["model"][0]
    assert len(features._y) == len(split[0]) + len(production[0])  # neighbour prices: all rows fitted
