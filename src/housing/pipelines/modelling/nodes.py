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
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.modelling.estimators import build_model, make_storage, suggest

logger = logging.getLogger(__name__)

_SCORING = {
    "rmse": "neg_root_mean_squared_error",
    "mae": "neg_mean_absolute_error",
    "r2": "r2",
}


def _counted_trials(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    return len(study.get_trials(deepcopy=False, states=states))


def tune_hyperparameters(
    train: pd.DataFrame,
    candidate: dict[str, Any],
    features: dict[str, Any],
    tuning: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Optuna TPE search on K-fold CV of the training rows only; the test set stays unseen.

    The study lives in ``tuning.storage``; workers that share it share one budget of
    ``n_trials`` (what is already in the study counts, so a rerun resumes, not repeats).
    Returns the best parameters with their CV metrics, and the table of all trials.
    """
    name = candidate["name"]
    X, y = train.loc[:, list(FEATURES)], train[TARGET].to_numpy()
    cv = KFold(tuning["cv_folds"], shuffle=True, random_state=tuning["seed"])
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, candidate.get("search_space"))
        scores = cross_validate(build_model(candidate, params, features), X, y, cv=cv, scoring=_SCORING)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("cv_rmse_std", float(np.std(-scores["test_rmse"])))
        trial.set_user_attr("cv_mae", float(np.mean(-scores["test_mae"])))
        trial.set_user_attr("cv_r2", float(np.mean(scores["test_r2"])))
        trial.set_user_attr("fit_seconds", float(np.mean(scores["fit_time"])))
        return float(np.mean(-scores["test_rmse"]))

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
    budget = int(candidate["n_trials"])
    remaining = budget - _counted_trials(study)
    logger.info(
        "Tuning %s: %d of %d trials to run (%d-fold CV)",
        name,
        max(remaining, 0),
        budget,
        tuning["cv_folds"],
    )
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=candidate.get("timeout_seconds"),
            callbacks=[optuna.study.MaxTrialsCallback(budget, states=None)],
            show_progress_bar=bool(tuning.get("show_progress_bar")),
            gc_after_trial=False,
        )
    best = study.best_trial
    result = {
        "name": name,
        "best_params": dict(best.params),
        "cv_rmse": float(best.value),
        **{k: best.user_attrs[k] for k in ("cv_rmse_std", "cv_mae", "cv_r2", "fit_seconds")},
        "n_trials": len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))),
    }
    logger.info(
        "Tuned %s: CV RMSE %.4f ± %.4f with %s",
        name,
        result["cv_rmse"],
        result["cv_rmse_std"],
        result["best_params"],
    )
    return result, study.trials_dataframe()


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
        "fit_seconds": tuned["fit_seconds"],
        "batch_predict_ms_per_row": per_row_ms,
    }


def compare_candidates(**metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per candidate, best test RMSE first."""
    table = pd.DataFrame(list(metrics.values()))
    return table.sort_values("test_rmse", kind="stable").reset_index(drop=True)


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
        "fit_seconds",
    ]
    lines = [
        "# Candidate models (test set: the study's fixed 20% split)",
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


def select_best_candidate(comparison: pd.DataFrame, **models: Pipeline) -> dict[str, Any]:
    """The candidate with the lowest test RMSE, with its model and metrics."""
    row = comparison.iloc[0].to_dict()
    name = row.pop("candidate")
    return {"candidate": name, "model": models[name], "metrics": row}


def evaluate_champion(champion: dict | None, test: pd.DataFrame) -> dict[str, Any]:
    """Score the current champion on today's test set (not its stored numbers).

    ``{}`` when there is no champion yet (Kedro datasets cannot hold ``None``).
    """
    if champion is None:
        return {}
    metrics = regression_metrics(
        test[TARGET].to_numpy(), champion["model"].predict(test.loc[:, list(FEATURES)])
    )
    return {
        "version": champion["version"],
        **{f"test_{k}": v for k, v in metrics.items()},
    }


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
    champion: dict[str, Any],
    test: pd.DataFrame,
    promotion: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The release for the registry (always registered; aliased only if promoted) and a
    JSON-able record of the decision."""
    metrics = best["metrics"]
    promote, reason = promotion_gate(
        metrics["test_rmse"], champion.get("test_rmse"), promotion["min_improvement"]
    )
    logger.info(
        "Best candidate %s: test RMSE %.4f, MAE %.4f, R² %.4f. %s -> %s",
        best["candidate"],
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
    }
    decision = {
        "candidate": best["candidate"],
        "promoted": promote,
        "reason": reason,
        "challenger": release["metrics"],
        "champion_before": champion,
    }
    return release, decision
