"""What a new model must prove before it takes the champion's alias, and what it carries
into the registry: its manifest of training rows and its drift reference. Pure functions;
the registry itself is reached through the catalog (``current_champion``, ``model_release``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from housing.errors import HousingError
from housing.pipelines.data_processing.features import FEATURES, TARGET, row_fingerprints
from housing.pipelines.modelling.nodes import regression_metrics

logger = logging.getLogger(__name__)


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
