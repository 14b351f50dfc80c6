"""Cross-validation that is cheap per trial and the same on any machine.

The engineered features of a fold depend only on that fold's training rows, never on a
trial's hyperparameters, so they are computed once (``make_folds``) and every trial of
every candidate reuses them: a trial fits estimators, not KMeans and KD-trees.

Determinism: each fold is fitted on one thread, the folds run side by side on
``n_jobs`` threads and their scores are combined in fold order, so the number of cores
and how busy they are change how long a trial takes, never what it returns.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import mean_absolute_error, r2_score
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES, TARGET, GeoFeatures
from housing.pipelines.modelling.estimators import build_estimator


@dataclass(frozen=True)
class Fold:
    """One fold's engineered training and validation matrices."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_valid: np.ndarray
    y_valid: np.ndarray
    valid_index: np.ndarray  # positions in the training table, for out-of-fold predictions


def make_folds(train: pd.DataFrame, features: dict[str, Any], tuning: dict[str, Any]) -> list[Fold]:
    """K shuffled folds of the training rows, features fitted on each fold's own rows."""
    X, y = train.loc[:, list(FEATURES)], train[TARGET].to_numpy(dtype=np.float64)
    folds = []
    cv = KFold(tuning["cv_folds"], shuffle=True, random_state=tuning["seed"])
    for train_idx, valid_idx in cv.split(X):
        geo = GeoFeatures(**features)
        folds.append(
            Fold(
                X_train=geo.fit_transform(X.iloc[train_idx], y[train_idx]),
                y_train=y[train_idx],
                X_valid=geo.transform(X.iloc[valid_idx]),
                y_valid=y[valid_idx],
                valid_index=valid_idx,
            )
        )
    return folds


def _rmse_curve(model: Pipeline) -> np.ndarray | None:
    evals = getattr(model.steps[-1][1], "evals_result_", None)
    if not evals:
        return None
    (metrics,) = evals.values()
    return np.asarray(metrics["rmse"], dtype=np.float64)


def _fit_fold(candidate: dict[str, Any], params: dict[str, Any], fold: Fold) -> tuple[Pipeline, float]:
    model = build_estimator(candidate, params, n_jobs=1)
    start = time.perf_counter()
    stopping = candidate.get("early_stopping")
    if stopping:
        import lightgbm  # noqa: PLC0415 (only candidates that stop early need it)

        model.fit(
            fold.X_train,
            fold.y_train,
            model__eval_X=(fold.X_valid,),
            model__eval_y=(fold.y_valid,),
            model__eval_metric="rmse",
            model__callbacks=[lightgbm.early_stopping(int(stopping["rounds"]), verbose=False)],
        )
    else:
        model.fit(fold.X_train, fold.y_train)
    return model, time.perf_counter() - start


def best_iteration(curves: list[np.ndarray]) -> int:
    """The number of trees that minimises the mean validation RMSE across folds.

    One count for all folds (the one the refit will use), not each fold's own best,
    which would pick the stopping point on the very rows it is scored on. Folds stop at
    different rounds; the mean is taken over the rounds every fold reached.
    """
    reached = min(len(c) for c in curves)
    mean = np.mean([c[:reached] for c in curves], axis=0)
    return int(np.argmin(mean)) + 1


def cross_validate(
    candidate: dict[str, Any], params: dict[str, Any], folds: list[Fold], n_jobs: int = 1
) -> dict[str, Any]:
    """CV metrics of one configuration, and its out-of-fold predictions.

    With ``early_stopping`` the estimator is scored at the learned number of trees
    (``best_iteration``), which is returned as ``n_estimators`` for the refit.
    """
    fitted = Parallel(n_jobs=min(n_jobs, len(folds)), backend="threading")(
        delayed(_fit_fold)(candidate, params, fold) for fold in folds
    )
    models = [model for model, _ in fitted]
    n_estimators = None
    if candidate.get("early_stopping"):
        n_estimators = best_iteration([_rmse_curve(model) for model in models])
    oof = np.empty(sum(len(f.y_valid) for f in folds))
    rmse, mae, r2 = [], [], []
    for model, fold in zip(models, folds, strict=True):
        kwargs = {"num_iteration": n_estimators} if n_estimators else {}
        predicted = model.predict(fold.X_valid, **kwargs)
        oof[fold.valid_index] = predicted
        rmse.append(float(np.sqrt(np.mean((predicted - fold.y_valid) ** 2))))
        mae.append(float(mean_absolute_error(fold.y_valid, predicted)))
        r2.append(float(r2_score(fold.y_valid, predicted)))
    return {
        "cv_rmse": float(np.mean(rmse)),
        "cv_rmse_std": float(np.std(rmse)),
        "cv_mae": float(np.mean(mae)),
        "cv_r2": float(np.mean(r2)),
        "fit_seconds": float(np.mean([seconds for _, seconds in fitted])),
        "n_estimators": n_estimators,
        "oof": oof,
    }
