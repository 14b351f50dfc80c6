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
from matplotlib.figure import Figure
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from housing.errors import HousingError
from housing.pipelines.data_processing.features import FEATURES, TARGET, row_fingerprints
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
    best_params = dict(best.params)
    if best.user_attrs.get("n_estimators"):
        best_params["n_estimators"] = int(best.user_attrs["n_estimators"])
    oof = out_of_fold.get(best.number)
    if oof is None:  # the best trial ran in another worker: score it again here
        oof = cross_validate(candidate, dict(best.params), folds, n_jobs=n_jobs)["oof"]
    result = {
        "name": name,
        "best_params": best_params,
        "cv_rmse": float(best.value),
        **{k: best.user_attrs[k] for k in ("cv_rmse_std", "cv_mae", "cv_r2", "fit_seconds")},
        "n_trials": n_complete,
        "truncated": n_complete < budget,
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
    return result, trials, pd.Series(oof, index=train.index, name="oof_prediction")


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


def comparison_to_markdown(comparison: pd.DataFrame, reference: dict[str, dict[str, float]]) -> str:
    """The comparison as a Markdown table, with the earlier study's table below it."""
    cols = [
        "candidate",
        "cv_rmse",
        "cv_rmse_std",
        "test_rmse",
        "test_mae",
        "test_r2",
        "n_trials",
        "tuning_seconds",
    ]
    lines = [
        "# Candidate models",
        "",
        "Ordered by cross-validated RMSE on the training rows, which chooses the best candidate;",
        "the test columns (the study's fixed 20% split) report, they do not choose.",
        "",
        "| " + " | ".join(cols) + " |",
        "| " + " | ".join("---" for _ in cols) + " |",
    ]
    for row in comparison[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    lines += [
        "",
        "## Earlier study (scikit-learn defaults, same split)",
        "",
        "| model | rmse | mae | r2 |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {name} | {m['rmse']:.2f} | {m['mae']:.2f} | {m['r2']:.2f} |" for name, m in reference.items()
    ]
    return "\n".join(lines) + "\n"


def plot_comparison(comparison: pd.DataFrame, reference: dict[str, dict[str, float]]) -> Figure:
    """CV RMSE (± std across folds) beside test RMSE, against the earlier study's best."""
    # a bare Figure (no pyplot): no global state, no GUI backend, nothing to close
    fig = Figure(figsize=(8, 0.9 * len(comparison) + 1.8), dpi=110)
    ax = fig.subplots()
    y = np.arange(len(comparison))
    ax.barh(
        y - 0.2,
        comparison["cv_rmse"],
        0.4,
        xerr=comparison["cv_rmse_std"],
        label="CV RMSE (train folds)",
        color="#9ecae1",
    )
    ax.barh(y + 0.2, comparison["test_rmse"], 0.4, label="test RMSE", color="#3182bd")
    for yi, value in zip(y, comparison["test_rmse"], strict=True):
        ax.text(value + 0.005, yi + 0.2, f"{value:.3f}", va="center", fontsize=8)
    best_reference = min(m["rmse"] for m in reference.values())
    ax.axvline(
        best_reference,
        color="#d62728",
        linestyle="--",
        label=f"earlier study's best ({best_reference:.2f})",
    )
    ax.set_yticks(y, comparison["candidate"])
    ax.invert_yaxis()
    ax.set_xlabel("RMSE of MedHouseVal (units of $100,000; lower is better)")
    ax.set_title("California Housing: tuned candidates")
    ax.set_xlim(
        0,
        max(comparison["cv_rmse"].max(), comparison["test_rmse"].max(), best_reference) * 1.12,
    )
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return fig


def comparison_to_mlflow_metrics(
    comparison: pd.DataFrame,
) -> dict[str, dict[str, float]]:
    """``{"<candidate>.<metric>": {"value", "step"}}`` for MlflowMetricsHistoryDataset."""
    metrics = {}
    for row in comparison.to_dict("records"):
        for key, value in row.items():
            if key != "candidate":
                metrics[f"{row['candidate']}.{key}"] = {
                    "value": float(value),
                    "step": 0,
                }
    best = comparison.iloc[0]
    for key in ("test_rmse", "test_mae", "test_r2", "cv_rmse"):
        metrics[f"best.{key}"] = {"value": float(best[key]), "step": 0}
    return metrics


def select_best_candidate(comparison: pd.DataFrame, **inputs: Any) -> dict[str, Any]:
    """The candidate with the lowest CV RMSE, with its model, metrics and out-of-fold
    predictions (``<name>`` and ``<name>_oof`` in ``inputs``)."""
    row = comparison.iloc[0].to_dict()
    name = row.pop("candidate")
    return {"candidate": name, "model": inputs[name], "oof": inputs[f"{name}_oof"], "metrics": row}


def build_drift_reference(
    train: pd.DataFrame, best: dict[str, Any], reference: dict[str, Any]
) -> pd.DataFrame:
    """Training rows as production sends them, with predictions the model made without
    seeing their price: the baseline the drift report compares production against.

    ``train`` is the split *before* cleaning, so the reference has the same tails as
    raw production traffic. Rows that tuning cross-validated carry their out-of-fold
    prediction; rows cleaning dropped were never trained on, so the model predicts them.
    """
    sample = train.sample(min(int(reference["sample_size"]), len(train)), random_state=reference["seed"])
    prediction = best["oof"].reindex(sample.index)
    unseen = prediction.isna()
    if unseen.any():
        prediction[unseen] = best["model"].predict(sample.loc[unseen, list(FEATURES)])
    frame = sample.loc[:, list(FEATURES)].reset_index(drop=True)
    frame["prediction"] = prediction.to_numpy()
    frame["actual"] = sample[TARGET].to_numpy()
    return frame


def compare_with_champion(
    best: dict[str, Any], champion: dict[str, Any] | None, train: pd.DataFrame, test: pd.DataFrame
) -> dict[str, Any]:
    """Score the challenger and the current champion on the same test rows, none of which
    either model has seen (a retrained champion may have learnt some of them from replayed
    traffic: its manifest of training rows says which).

    ``{}`` when there is no champion yet (Kedro datasets cannot hold ``None``).
    """
    if champion is None:
        return {}
    seen = seen_rows(champion, train)
    unseen = ~np.isin(row_fingerprints(test), seen)
    rows = test.loc[unseen]
    if rows.empty:
        raise HousingError(
            f"every test row was seen by champion version {champion['version']} or the challenger: "
            "no fair comparison is possible"
        )
    y, X = rows[TARGET].to_numpy(), rows.loc[:, list(FEATURES)]
    return {
        "version": champion["version"],
        "rows": int(len(rows)),
        "excluded_seen_rows": int((~unseen).sum()),
        "champion": {f"test_{k}": v for k, v in regression_metrics(y, champion["model"].predict(X)).items()},
        "challenger": {f"test_{k}": v for k, v in regression_metrics(y, best["model"].predict(X)).items()},
    }


def seen_rows(champion: dict[str, Any], train: pd.DataFrame) -> np.ndarray:
    """Fingerprints of the rows a registered model trained on, from its manifest.

    A version registered before manifests existed is assumed to have seen the training
    split, with a warning: that is what every training run fitted on.
    """
    manifest = champion.get("training_rows")
    if manifest is None:
        logger.warning(
            "Champion version %s has no manifest of its training rows; assuming the training split",
            champion["version"],
        )
        return row_fingerprints(train)
    return np.asarray(manifest, dtype=np.uint64)


def promotion_gate(
    challenger_rmse: float, champion_rmse: float | None, min_improvement: float
) -> tuple[bool, str]:
    """Promote only a model that beats the champion's RMSE by at least ``min_improvement``."""
    if champion_rmse is None:
        return True, f"no current champion; challenger RMSE {challenger_rmse:.4f}"
    if challenger_rmse < champion_rmse - min_improvement:
        return (
            True,
            f"challenger RMSE {challenger_rmse:.4f} beats champion {champion_rmse:.4f} (margin {min_improvement})",
        )
    return (
        False,
        f"challenger RMSE {challenger_rmse:.4f} does not beat champion {champion_rmse:.4f} (margin {min_improvement})",
    )


def decide_promotion(
    best: dict[str, Any],
    head_to_head: dict[str, Any],
    train: pd.DataFrame,
    test: pd.DataFrame,
    reference: pd.DataFrame,
    data_version: dict[str, Any],
    promotion: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The release for the registry (always registered; aliased only if promoted) and a
    JSON-able record of the decision.

    The gate compares both models on the rows neither has seen (``head_to_head``); the
    release carries the manifest of the rows this model trained on, for the next gate.
    """
    metrics = best["metrics"]
    if head_to_head:
        challenger_rmse = head_to_head["challenger"]["test_rmse"]
        champion_rmse = head_to_head["champion"]["test_rmse"]
    else:
        challenger_rmse, champion_rmse = metrics["test_rmse"], None
    promote, reason = promotion_gate(challenger_rmse, champion_rmse, promotion["min_improvement"])
    if head_to_head:
        reason += f", on {head_to_head['rows']} test rows neither model has seen"
    logger.info(
        "Best candidate %s (lowest CV RMSE %.4f): test RMSE %.4f, MAE %.4f, R² %.4f. %s -> %s",
        best["candidate"],
        metrics["cv_rmse"],
        metrics["test_rmse"],
        metrics["test_mae"],
        metrics["test_r2"],
        reason,
        "PROMOTED to champion" if promote else "not promoted",
    )
    release = {
        "model": best["model"],
        "candidate": best["candidate"],
        "metrics": {k: metrics[k] for k in ("test_rmse", "test_mae", "test_r2", "cv_rmse")},
        "promote": promote,
        "reason": reason,
        "input_example": test.loc[:, list(FEATURES)].head(promotion.get("input_example_rows", 5)),
        "training_rows": row_fingerprints(train),
        "drift_reference": reference,
        "data_version": data_version,
    }
    decision = {
        "candidate": best["candidate"],
        "promoted": promote,
        "reason": reason,
        "challenger": release["metrics"],
        "head_to_head": head_to_head,
        "data_version": data_version,
    }
    return release, decision
