"""The retraining gate: a challenger takes the alias only if it is better on recent
production rows AND no segment of the original data that production left untouched got
worse by more than a tolerance. Pure functions.

Segments are the champion's own location clusters (``LocationCluster`` of GeoFeatures),
or latitude bands for a model without them. A segment is *moved* when the champion's
mean error on labelled production rows there departs from its mean error on the original
rows there by more than ``moved_bias``: prices there changed, so the old rows are out of
date and production judges it. Every other segment is *untouched* and is held to
``tolerance`` on original test rows that no compared model has seen.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES, TARGET, row_fingerprints
from housing.pipelines.drift.nodes import MonitoringError
from housing.pipelines.modelling.nodes import regression_metrics
from housing.pipelines.modelling.promotion import promotion_gate
from housing.simulation.scenarios import unseen_rows

logger = logging.getLogger(__name__)

OK, REGRESSED, MOVED, TOO_FEW = "ok", "regressed", "moved", "too few rows"


def segments_of(model: Any, rows: pd.DataFrame, settings: dict[str, Any]) -> np.ndarray:
    """Each row's segment: the model's location cluster when ``by`` is ``location_cluster``
    and its features compute one, else its band of ``latitude_bands``."""
    features = model[0] if isinstance(model, Pipeline) else None
    names = list(getattr(features, "feature_names_out_", ()))
    if settings["by"] == "location_cluster" and "LocationCluster" in names:
        column = features.transform(rows[list(FEATURES)])[:, names.index("LocationCluster")]
        return np.array([f"cluster {int(c):02d}" for c in column])
    edges = [float(e) for e in settings["latitude_bands"]]
    labels = [f"lat < {edges[0]:g}"]
    labels += [f"lat {a:g}-{b:g}" for a, b in zip(edges, edges[1:])] + [f"lat >= {edges[-1]:g}"]
    return np.array(labels)[np.digitize(rows["Latitude"].to_numpy(), edges)]


def _rmse(y: np.ndarray, p: np.ndarray) -> float | None:
    return float(np.sqrt(np.mean((y - p) ** 2))) if len(y) else None


def segment_table(
    champion: Any, challenger: Any, test: pd.DataFrame, production: pd.DataFrame, settings: dict[str, Any]
) -> list[dict[str, Any]]:
    """Per segment of the champion: RMSE of both models on the unseen original rows, how
    far production moved there, and a status (ok, regressed, moved, too few rows)."""
    y = test[TARGET].to_numpy()
    old, new = champion.predict(test[list(FEATURES)]), np.asarray(challenger.predict(test[list(FEATURES)]))
    seg = segments_of(champion, test, settings)
    prod_seg = segments_of(champion, production, settings)
    prod_error = production[TARGET].to_numpy() - champion.predict(production[list(FEATURES)])
    need, tolerance = int(settings["min_rows"]), float(settings["tolerance"])
    table = []
    for name in sorted(set(seg) | set(prod_seg)):
        here, there = seg == name, prod_seg == name
        row: dict[str, Any] = {
            "segment": str(name),
            "latitude": round(float(test.loc[here, "Latitude"].mean()), 2) if here.any() else None,
            "longitude": round(float(test.loc[here, "Longitude"].mean()), 2) if here.any() else None,
            "n_unseen": int(here.sum()),
            "n_production": int(there.sum()),
            "champion_rmse": _rmse(y[here], old[here]),
            "challenger_rmse": _rmse(y[here], new[here]),
        }
        row["delta"] = row["challenger_rmse"] - row["champion_rmse"] if here.any() else None
        row["production_shift"], moved = None, False
        if there.sum() >= need and here.sum() >= 2:
            before, now = y[here] - old[here], prod_error[there]
            shift = float(now.mean() - before.mean())
            noise = float(np.sqrt(now.var(ddof=1) / len(now) + before.var(ddof=1) / len(before)))
            row["production_shift"] = shift
            # large enough to matter, and too large to be chance (a few dozen rows are noisy)
            moved = abs(shift) > max(float(settings["moved_bias"]), float(settings["moved_sigmas"]) * noise)
        if moved:
            row["status"] = MOVED
        elif row["n_unseen"] < need:
            row["status"] = TOO_FEW
        else:
            row["status"] = REGRESSED if row["delta"] > tolerance else OK
        table.append(row)
    return table


def _names(rows: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['segment']} ({r['latitude']}, {r['longitude']})" for r in rows)


def _segment_verdict(table: list[dict[str, Any]], settings: dict[str, Any]) -> tuple[bool, str]:
    """Whether the segments allow promotion, and why, in plain words."""
    by = {status: [r for r in table if r["status"] == status] for status in (OK, REGRESSED, MOVED, TOO_FEW)}
    tolerance = settings["tolerance"]
    parts = []
    if by[REGRESSED]:
        worst = max(by[REGRESSED], key=lambda r: r["delta"])
        parts.append(
            f"{len(by[REGRESSED])} untouched segment(s) got worse on unseen original rows by more than "
            f"{tolerance} RMSE: {_names(by[REGRESSED])}; worst {worst['segment']} {worst['delta']:+.3f}"
        )
    elif by[OK]:
        worst = max(by[OK], key=lambda r: r["delta"])
        parts.append(
            f"no untouched segment got worse by more than {tolerance} RMSE "
            f"(worst {worst['segment']} {worst['delta']:+.3f}, {len(by[OK])} judged)"
        )
    else:
        parts.append("no untouched segment had enough unseen rows to judge")
    if by[MOVED]:
        parts.append(f"prices moved in {_names(by[MOVED])}: judged on production rows there")
    if by[TOO_FEW]:
        parts.append(
            f"not judged, fewer than {settings['min_rows']} unseen rows: "
            + ", ".join(f"{r['segment']} ({r['n_unseen']})" for r in by[TOO_FEW])
        )
    return not by[REGRESSED], "; ".join(parts)


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
    production_train: pd.DataFrame | None = None,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, float]]]:
    """Challenger and champion on held-out recent production rows and, segment by segment,
    on the original test rows neither has seen (the half never replayed as traffic, minus
    every row in either manifest). Promoted only if its production RMSE beats the
    champion's by ``min_improvement``, no untouched segment is worse by more than
    ``segments.tolerance``, and its whole-test RMSE is at most ``max_test_regression``
    above the champion's (labels alone never crown a model worse on data nobody could
    tamper with). ``production_train`` (labelled rows it trained on) only helps tell
    which segments moved."""
    if holdout.empty:
        raise MonitoringError(
            "no held-out production rows to judge the challenger: lower retraining.holdout_share"
        )
    if champion is None:
        raise MonitoringError("no champion to retrain: run `kedro run --pipelines=training` first")
    model = champion["model"]
    test = unseen_rows(test)  # replayed traffic came from the other half: no leak into the judge
    # and, whatever was replayed, never a row either model trained on (the challenger's
    # manifest includes every row its champion saw)
    test = test.loc[~np.isin(row_fingerprints(test), challenger["training_rows"])]
    # a house asked about twice is the same row: a held-out copy of a training row would
    # reward memorising it
    repeated = np.isin(row_fingerprints(holdout), challenger["training_rows"])
    holdout = holdout.loc[~repeated]
    if holdout.empty:
        raise MonitoringError(
            f"all {len(repeated)} held-out production rows repeat rows the challenger trained on: "
            "nothing left to judge it on; send labels for other houses"
        )
    new, old = _scores(challenger["model"], test, holdout, gate), _scores(model, test, holdout, gate)
    promote, reason = promotion_gate(new["production_rmse"], old["production_rmse"], gate["min_improvement"])
    reason = f"production: {reason.replace('RMSE', 'production RMSE', 1)}"
    production = holdout if production_train is None else pd.concat([production_train, holdout])
    table = segment_table(model, challenger["model"], test, production, gate["segments"])
    segments_pass, segment_reason = _segment_verdict(table, gate["segments"])
    promote = promote and segments_pass
    # labels can be forged or skewed; the original test rows cannot: a bound they keep
    regression = new["test_rmse"] - old["test_rmse"]
    guard = ""
    if regression > gate["max_test_regression"]:
        promote = False
        guard = (
            f"; refused: test RMSE {regression:+.4f} worse than the champion's, over "
            f"max_test_regression {gate['max_test_regression']}, whatever production says"
        )
    reason = (
        f"{'promoted' if promote else 'not promoted'}: {reason}; segments: {segment_reason}{guard}; "
        f"test RMSE {new['test_rmse']:.4f} vs {old['test_rmse']:.4f}"
    )
    logger.info("%s: %s", challenger["candidate"], reason)
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
        "n_production_holdout_repeated": int(repeated.sum()),  # left out: trained on
        "n_test_rows": len(test),
        "segments": table,
    }
    metrics = {
        **{f"challenger.{k}": v for k, v in new.items()},
        **{f"champion.{k}": v for k, v in old.items()},
        "fit_seconds": challenger["fit_seconds"],
        "promoted": float(promote),
        **segment_metrics(table),
    }
    return release, decision, {k: {"value": float(v), "step": 0} for k, v in metrics.items()}


def segment_metrics(table: list[dict[str, Any]]) -> dict[str, float]:
    """The per-segment table as MLflow metrics (``segment.cluster_07.delta`` ...)."""
    out = {}
    for row in table:
        key = "segment." + "".join(c if c.isalnum() or c in "._-" else "_" for c in row["segment"])
        for field in ("champion_rmse", "challenger_rmse", "delta", "n_unseen", "n_production"):
            if row[field] is not None:  # a segment seen only in production has no RMSE
                out[f"{key}.{field}"] = float(row[field])
    return out
