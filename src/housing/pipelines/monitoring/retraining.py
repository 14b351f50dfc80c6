"""Retraining on production data that came back with ground truth, by one of three
strategies, judged by the same kind of gate as training. Pure functions; the registry
release goes through the catalog (``model_release``)."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES, TARGET, row_fingerprints
from housing.pipelines.modelling.nodes import regression_metrics
from housing.pipelines.modelling.promotion import promotion_gate, seen_rows
from housing.pipelines.monitoring.nodes import MonitoringError, select_window
from housing.pipelines.monitoring.scenarios import unseen_rows

logger = logging.getLogger(__name__)

STRATEGIES = ("mixed", "finetune", "weighted")


def labelled_production(
    log: pd.DataFrame, window: dict[str, Any], holdout_share: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Logged rows that got their actual value, oldest first, split in time: the most
    recent ``holdout_share`` judge the challenger, the rest may train it."""
    rows = select_window(log, {**window, "min_rows": 1})
    labelled = rows[rows["actual"].notna()]
    need = int(window["min_rows"])
    if labelled.empty:
        raise MonitoringError(
            f"none of the {len(rows)} production rows in the window has ground truth: send actual values "
            "through POST /feedback (python -m housing.simulate --feedback) before retraining"
        )
    if len(labelled) < need:
        raise MonitoringError(
            f"only {len(labelled)} labelled production row(s) in the window; retraining needs at least {need} "
            "(parameters_monitoring.yml: retraining.window.min_rows)"
        )
    data = (
        labelled.loc[:, list(FEATURES)]
        .assign(**{TARGET: labelled["actual"].to_numpy()})
        .reset_index(drop=True)
    )
    cut = int(round(len(data) * (1 - holdout_share)))
    logger.info(
        "Retraining data: %d labelled production rows, %d to train, %d held out",
        len(data),
        cut,
        len(data) - cut,
    )
    return data.iloc[:cut], data.iloc[cut:]


def _require_champion(champion: dict | None) -> Pipeline:
    if champion is None:
        raise MonitoringError("no champion to retrain: run `kedro run --pipelines=training` first")
    return champion["model"]


def _mixed(model: Pipeline, train: pd.DataFrame, production: pd.DataFrame, settings: dict) -> Pipeline:
    """Full retrain, champion's hyperparameters, on recent production rows topped up with
    original training rows so that production is ``production_share`` of the data."""
    share = float(settings["production_share"])
    n_original = min(len(train), int(round(len(production) * (1 - share) / share)))
    data = pd.concat([production, train.sample(n_original, random_state=settings["seed"])], ignore_index=True)
    return clone(model).fit(data[list(FEATURES)], data[TARGET].to_numpy())


def _finetune(model: Pipeline, production: pd.DataFrame, settings: dict) -> Pipeline:
    """Continue the champion on the new rows: more boosting rounds from its trees (LightGBM
    ``init_model``; scikit-learn ensembles by ``warm_start``), features unchanged."""
    tuned = copy.deepcopy(model)
    head, estimator = tuned[:-1], tuned[-1]
    X = head.transform(production[list(FEATURES)])
    y = production[TARGET].to_numpy()
    booster = getattr(estimator, "booster_", None)
    if booster is not None:
        extra = clone(estimator).set_params(n_estimators=int(settings["extra_rounds"]))
        extra.fit(X, y, init_model=booster)
        tuned.steps[-1] = (tuned.steps[-1][0], extra)
    elif "warm_start" in estimator.get_params():
        estimator.set_params(
            warm_start=True, n_estimators=estimator.n_estimators + int(settings["extra_trees"])
        )
        estimator.fit(X, y)
    else:
        raise MonitoringError(
            f"finetune continues a boosted or forest model; the champion is a {type(estimator).__name__}: "
            "use strategy 'mixed' or 'weighted'"
        )
    return tuned


def _weighted(model: Pipeline, train: pd.DataFrame, production: pd.DataFrame, settings: dict) -> Pipeline:
    """Retrain on all rows, weighting training rows by how much they look like production.

    A classifier tells production rows from training rows (out of fold); its odds
    p / (1 - p) estimate the density ratio, so the segments where traffic moved weigh
    more, clipped at ``max_weight``. Production rows weigh ``max_weight`` as they are the
    present."""
    from lightgbm import LGBMClassifier  # noqa: PLC0415

    X = pd.concat([train[list(FEATURES)], production[list(FEATURES)]], ignore_index=True)
    is_production = np.r_[np.zeros(len(train)), np.ones(len(production))]
    classifier = LGBMClassifier(
        n_estimators=int(settings["classifier_rounds"]), n_jobs=2, verbose=-1, random_state=settings["seed"]
    )
    p = cross_val_predict(classifier, X, is_production, cv=3, method="predict_proba")[:, 1]
    p = np.clip(p, 1e-3, 1 - 1e-3)
    odds = p / (1 - p) * (len(train) / len(production))  # density ratio, prior-corrected
    max_weight = float(settings["max_weight"])
    weights = np.where(is_production == 1, max_weight, np.clip(odds, 1.0 / max_weight, max_weight))
    y = np.r_[train[TARGET].to_numpy(), production[TARGET].to_numpy()]
    return clone(model).fit(X, y, model__sample_weight=weights)


def retrain(
    champion: dict | None, train: pd.DataFrame, production: pd.DataFrame, retraining: dict[str, Any]
) -> dict[str, Any]:
    """The challenger built by ``retraining.strategy``."""
    strategy = retraining["strategy"]
    if strategy not in STRATEGIES:
        raise MonitoringError(
            f"unknown retraining strategy {strategy!r}; choose one of {list(STRATEGIES)} "
            "(parameters_monitoring.yml: retraining.strategy)"
        )
    model = _require_champion(champion)
    start = time.perf_counter()
    settings = retraining[strategy]
    if strategy == "mixed":
        challenger = _mixed(model, train, production, settings)
    elif strategy == "finetune":
        challenger = _finetune(model, production, settings)
    else:
        challenger = _weighted(model, train, production, settings)
    seconds = time.perf_counter() - start
    logger.info("Retrained (%s) in %.1f s on %d production rows", strategy, seconds, len(production))
    # every strategy starts from what the champion knew, so its rows count as seen
    seen = np.union1d(seen_rows(champion, train), row_fingerprints(production))
    return {
        "candidate": f"retrain-{strategy}",
        "model": challenger,
        "fit_seconds": seconds,
        "training_rows": seen,
    }


def _scores(model, test: pd.DataFrame, holdout: pd.DataFrame, gate: dict) -> dict[str, float]:
    on_test = regression_metrics(test[TARGET].to_numpy(), model.predict(test[list(FEATURES)]))
    on_prod = regression_metrics(holdout[TARGET].to_numpy(), model.predict(holdout[list(FEATURES)]))
    score = gate["production_weight"] * on_prod["rmse"] + gate["test_weight"] * on_test["rmse"]
    return {
        **{f"test_{k}": v for k, v in on_test.items()},
        **{f"production_{k}": v for k, v in on_prod.items()},
        "score": float(score),
    }


def judge_challenger(
    challenger: dict[str, Any],
    champion: dict | None,
    test: pd.DataFrame,
    holdout: pd.DataFrame,
    gate: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, float]]]:
    """Challenger and champion on the original test set (its half that never served as
    traffic) and on held-out recent production rows; the challenger takes the alias only if its weighted RMSE
    (``production_weight`` x production + ``test_weight`` x test) beats the champion's, and
    its test RMSE is at most ``max_test_regression`` above the champion's (labels alone
    never crown a model that got worse on data nobody could tamper with)."""
    if holdout.empty:
        raise MonitoringError(
            "no held-out production rows to judge the challenger: lower retraining.holdout_share"
        )
    model = _require_champion(champion)
    test = unseen_rows(test)  # replayed traffic came from the other half: no leak into the judge
    # and, whatever was replayed, never a row either model trained on (their manifests)
    # (the challenger's manifest includes every row its champion saw)
    test = test.loc[~np.isin(row_fingerprints(test), challenger["training_rows"])]
    new, old = _scores(challenger["model"], test, holdout, gate), _scores(model, test, holdout, gate)
    promote, reason = promotion_gate(new["score"], old["score"], gate["min_improvement"])
    # labels can be forged or skewed; the original test rows cannot: a bound they keep
    regression = new["test_rmse"] - old["test_rmse"]
    if promote and regression > gate["max_test_regression"]:
        promote = False
        reason = (
            f"refused: test RMSE {regression:+.4f} worse than the champion's, over "
            f"max_test_regression {gate['max_test_regression']}, whatever production says; {reason}"
        )
    reason = (
        f"{reason} on weighted RMSE ({gate['production_weight']} x production + {gate['test_weight']} x test); "
        f"production RMSE {new['production_rmse']:.4f} vs {old['production_rmse']:.4f}, "
        f"test RMSE {new['test_rmse']:.4f} vs {old['test_rmse']:.4f}"
    )
    logger.info("%s: %s -> %s", challenger["candidate"], reason, "PROMOTED" if promote else "not promoted")
    release = {
        "model": challenger["model"],
        "candidate": challenger["candidate"],
        "metrics": {k: new[k] for k in ("test_rmse", "test_mae", "test_r2", "production_rmse", "score")},
        "promote": promote,
        "reason": reason,
        "input_example": test.loc[:, list(FEATURES)].head(5),
        "training_rows": challenger["training_rows"],
        # the drift reference stays the original training distribution
        "drift_reference": champion["drift_reference_run_id"],
    }
    decision = {
        "candidate": challenger["candidate"],
        "promoted": promote,
        "reason": reason,
        "fit_seconds": challenger["fit_seconds"],
        "challenger": new,
        "champion": {"version": champion["version"], **old},
        "n_production_holdout": len(holdout),
        "n_test_rows": len(test),
    }
    metrics = {
        **{f"challenger.{k}": v for k, v in new.items()},
        **{f"champion.{k}": v for k, v in old.items()},
        "fit_seconds": challenger["fit_seconds"],
        "promoted": float(promote),
    }
    return release, decision, {k: {"value": float(v), "step": 0} for k, v in metrics.items()}
