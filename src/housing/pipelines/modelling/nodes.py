"""Tune, fit, evaluate and compare candidates; decide what gets promoted.

Pure functions: models and tables in, models and tables out. The registry and files are
reached only through the catalog.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.modelling.cv import Fold, cross_validate, make_folds
from housing.pipelines.modelling.estimators import build_model, make_storage, suggest

logger = logging.getLogger(__name__)


def _counted_trials(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def prepare_cv_folds(train: pd.DataFrame, features: dict[str, Any], tuning: dict[str, Any]) -> list[Fold]:
    """The K folds every candidate is tuned on, features fitted once per fold."""
    folds = make_folds(train, features, tuning)
    logger.info("Prepared %d CV folds of %d training rows", len(folds), len(train))
    return folds


def tune_hyperparameters(
    train: pd.DataFrame,
    folds: list[Fold],
    candidate: dict[str, Any],
    tuning: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, pd.Series]:
    """Optuna TPE search on K-fold CV of the training rows only; the test set stays unseen.

    The budget is a number of trials, never seconds, so the same data and configuration
    give the same model on any machine. Configurations in ``enqueue`` are tried first. The
    study lives in ``tuning.storage``; workers that share it share one budget (what is
    already in the study counts, so a rerun resumes, not repeats). ``timeout_seconds`` is
    an explicit opt-in that may cut the search short: the result is then marked
    ``truncated``. Returns the best parameters with their CV metrics, the table of all
    trials, and the best configuration's out-of-fold predictions (indexed like ``train``).
    """
    name = candidate["name"]
    worker = f"{socket.gethostname()}:{os.getpid()}"
    n_jobs = int(tuning.get("n_jobs", 1))
    out_of_fold: dict[int, np.ndarray] = {}

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, candidate.get("search_space"))
        scores = cross_validate(candidate, params, folds, n_jobs=n_jobs)
        out_of_fold[trial.number] = scores.pop("oof")
        trial.set_user_attr("worker", worker)
        for key in ("cv_rmse_std", "cv_mae", "cv_r2", "fit_seconds", "n_estimators"):
            trial.set_user_attr(key, scores[key])
        return scores["cv_rmse"]

    optuna.logging.set_verbosity(
        optuna.logging.WARNING if tuning.get("show_progress_bar") else optuna.logging.INFO
    )
    study = optuna.create_study(
        study_name=f"{tuning['study_prefix']}-{name}",
        storage=make_storage(tuning.get("storage")),
        sampler=optuna.samplers.TPESampler(seed=tuning["seed"]),
        direction="minimize",
        load_if_exists=True,
    )
    if not study.get_trials(deepcopy=False):
        for params in candidate.get("enqueue") or []:
            study.enqueue_trial(params, skip_if_exists=True)
    budget = int(candidate["n_trials"])
    remaining = budget - _counted_trials(study)
    timeout = candidate.get("timeout_seconds")
    if timeout:
        logger.warning(
            "Tuning %s with a %s s time limit: how many trials run depends on this machine's speed "
            "and load, so the model may differ between machines",
            name,
            timeout,
        )
    logger.info("Tuning %s: %d of %d trials to run (%d-fold CV)", name, max(remaining, 0), budget, len(folds))
    start = time.perf_counter()
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=timeout,
            callbacks=[optuna.study.MaxTrialsCallback(budget, states=None)],
            show_progress_bar=bool(tuning.get("show_progress_bar")),
            gc_after_trial=False,
        )
    best = study.best_trial
    n_complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    scores = {"cv_rmse": float(best.value), **best.user_attrs, "oof": out_of_fold.get(best.number)}
    if scores["oof"] is None:  # the best trial ran in another worker: score it again here
        scores = cross_validate(candidate, dict(best.params), folds, n_jobs=n_jobs)
    best_params, refined = dict(best.params), False
    if candidate.get("refine"):
        # the search runs at a quick learning rate; the same trees grown slowly usually
        # generalise better, and CV (never the test set) decides whether they do here
        params = {**best_params, **candidate["refine"]}
        slow = cross_validate(candidate, params, folds, n_jobs=n_jobs)
        logger.info(
            "Refined %s with %s: CV RMSE %.4f (search best %.4f)",
            name,
            candidate["refine"],
            slow["cv_rmse"],
            scores["cv_rmse"],
        )
        if slow["cv_rmse"] < scores["cv_rmse"]:
            best_params, scores, refined = params, slow, True
    if scores.get("n_estimators"):
        best_params["n_estimators"] = int(scores["n_estimators"])
    result = {
        "name": name,
        "best_params": best_params,
        **{k: float(scores[k]) for k in ("cv_rmse", "cv_rmse_std", "cv_mae", "cv_r2", "fit_seconds")},
        "n_trials": n_complete,
        "truncated": n_complete < budget,
        "refined": refined,
        "tuning_seconds": time.perf_counter() - start,
    }
    logger.info(
        "Tuned %s in %.0f s (%d trials): CV RMSE %.4f ± %.4f with %s",
        name,
        result["tuning_seconds"],
        n_complete,
        result["cv_rmse"],
        result["cv_rmse_std"],
        best_params,
    )
    trials = study.trials_dataframe()
    return result, trials, pd.Series(scores["oof"], index=train.index, name="oof_prediction")


def fit_candidate(
    train: pd.DataFrame,
    candidate: dict[str, Any],
    features: dict[str, Any],
    tuned: dict[str, Any],
) -> Pipeline:
    """Refit the tuned candidate on all training rows."""
    model = build_model(candidate, tuned["best_params"], features)
    return model.fit(train.loc[:, list(FEATURES)], train[TARGET].to_numpy())


def regression_metrics(y_true, y_pred) -> dict[str, float]:
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def evaluate_candidate(model: Pipeline, test: pd.DataFrame, tuned: dict[str, Any]) -> dict[str, Any]:
    """CV metrics from tuning next to RMSE/MAE/R² on the fixed test set."""
    start = time.perf_counter()
    predictions = model.predict(test.loc[:, list(FEATURES)])
    per_row_ms = (time.perf_counter() - start) * 1000 / len(test)
    test_metrics = regression_metrics(test[TARGET].to_numpy(), predictions)
    return {
        "candidate": tuned["name"],
        **{k: tuned[k] for k in ("cv_rmse", "cv_rmse_std", "cv_mae", "cv_r2")},
        **{f"test_{k}": v for k, v in test_metrics.items()},
        "n_trials": tuned["n_trials"],
        "truncated": bool(tuned.get("truncated", False)),
        "tuning_seconds": tuned.get("tuning_seconds", float("nan")),
        "fit_seconds": tuned["fit_seconds"],
        "batch_predict_ms_per_row": per_row_ms,
    }


def compare_candidates(**metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per candidate, lowest CV RMSE first: the order that chooses the winner.

    The test columns are shown beside it to report, never to choose (choosing on them
    would make the test set both pick the model and grade it).
    """
    table = pd.DataFrame(list(metrics.values()))
    return table.sort_values(["cv_rmse", "candidate"], kind="stable").reset_index(drop=True)


def select_best_candidate(comparison: pd.DataFrame, **inputs: Any) -> dict[str, Any]:
    """The candidate with the lowest CV RMSE, with its model, metrics and out-of-fold
    predictions (``<name>`` and ``<name>_oof`` in ``inputs``)."""
    row = comparison.iloc[0].to_dict()
    name = row.pop("candidate")
    return {"candidate": name, "model": inputs[name], "oof": inputs[f"{name}_oof"], "metrics": row}
