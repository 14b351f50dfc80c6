"""Retraining on production data that came back with ground truth, by one of three
strategies (or all of them); ``gate.py`` judges the challengers. Pure functions; the
registry release goes through the catalog (``model_release``)."""

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
from housing.pipelines.drift.nodes import MonitoringError, select_window
from housing.pipelines.modelling.promotion import seen_rows

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
            "through POST /feedback (housing simulate --feedback) before retraining"
        )
    if len(labelled) < need:
        raise MonitoringError(
            f"only {len(labelled)} labelled production row(s) in the window; retraining needs at least {need} "
            "(parameters_retraining.yml: retraining.window.min_rows)"
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
    """Full retrain, champion's hyperparameters, on every original training row plus the
    production rows, which carry ``production_share`` of the total sample weight.

    The original rows are never shrunk to the production data's size: with a few hundred
    labels from one region, they are what keeps the rest of the state right."""
    share = float(settings["production_share"])
    if not 0 < share < 1:
        raise MonitoringError(f"retraining.mixed.production_share must be in (0, 1), got {share}")
    per_row = share / (1 - share) * len(train) / len(production)
    data = pd.concat([train, production], ignore_index=True)
    weights = np.r_[np.ones(len(train)), np.full(len(production), per_row)]
    return clone(model).fit(data[list(FEATURES)], data[TARGET].to_numpy(), model__sample_weight=weights)


def _finetune(model: Pipeline, train: pd.DataFrame, production: pd.DataFrame, settings: dict) -> Pipeline:
    """Continue the champion on the new rows, features unchanged: at most ``rounds``
    small trees (``tree``) at a small ``learning_rate`` on its own (LightGBM
    ``init_model``), stopped early on the most recent ``validation_share`` of the rows;
    scikit-learn ensembles add ``extra_trees`` by ``warm_start``. ``rehearsal_rows``
    original training rows are fitted alongside, so the added trees learn a correction
    only where production disagrees: what the champion knew elsewhere stays."""
    tuned = copy.deepcopy(model)
    head, estimator = tuned[:-1], tuned[-1]
    cut = int(round(len(production) * (1 - float(settings["validation_share"]))))
    fit, valid = production.iloc[:cut], production.iloc[cut:]
    if len(train) and settings.get("rehearsal_rows"):  # original rows anchor what did not move
        n = min(len(train), int(settings["rehearsal_rows"]))
        fit = pd.concat([fit, train.sample(n, random_state=int(settings["seed"]))], ignore_index=True)
    X, y = head.transform(fit[list(FEATURES)]), fit[TARGET].to_numpy()
    booster = getattr(estimator, "booster_", None)
    if booster is not None:
        from lightgbm import early_stopping  # noqa: PLC0415

        extra = clone(estimator).set_params(
            n_estimators=int(settings["rounds"]),
            learning_rate=float(settings["learning_rate"]),
            **(settings.get("tree") or {}),
        )
        extra.fit(
            X,
            y,
            init_model=booster,
            eval_X=head.transform(valid[list(FEATURES)]),
            eval_y=valid[TARGET].to_numpy(),
            callbacks=[early_stopping(int(settings["early_stopping_rounds"]), verbose=False)],
        )
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
        n_estimators=int(settings["classifier_rounds"]), n_jobs=1, verbose=-1, random_state=settings["seed"]
    )
    p = cross_val_predict(classifier, X, is_production, cv=3, method="predict_proba")[:, 1]
    p = np.clip(p, 1e-3, 1 - 1e-3)
    odds = p / (1 - p) * (len(train) / len(production))  # density ratio, prior-corrected
    max_weight = float(settings["max_weight"])
    weights = np.where(is_production == 1, max_weight, np.clip(odds, 1.0 / max_weight, max_weight))
    y = np.r_[train[TARGET].to_numpy(), production[TARGET].to_numpy()]
    return clone(model).fit(X, y, model__sample_weight=weights)


def labels_needed(strategy: str, n_rows: int, retraining: dict[str, Any]) -> str | None:
    """Why ``n_rows`` labelled training rows are too few for ``strategy``, with how many
    more labels it takes (counting the share held out to judge); None when enough."""
    need = int(retraining[strategy]["min_rows"])
    if n_rows >= need:
        return None
    kept = 1 - float(retraining["holdout_share"])
    more = int(np.ceil(need / kept)) - int(np.ceil(n_rows / kept))
    return (
        f"{strategy} needs at least {need} labelled production rows to train on and has {n_rows}: "
        f"send about {max(more, 1)} more actual values through POST /feedback "
        f"({retraining['holdout_share']:.0%} of labels are held out to judge; "
        f"parameters_retraining.yml: retraining.{strategy}.min_rows)"
    )


def retrain(
    champion: dict | None, train: pd.DataFrame, production: pd.DataFrame, retraining: dict[str, Any]
) -> dict[str, Any]:
    """The challenger built by ``retraining.strategy`` (one of ``STRATEGIES``)."""
    strategy = retraining["strategy"]
    if strategy not in STRATEGIES:
        raise MonitoringError(
            f"unknown retraining strategy {strategy!r}; choose one of {list(STRATEGIES)} "
            "(parameters_retraining.yml: retraining.strategy)"
        )
    model = _require_champion(champion)
    too_few = labels_needed(strategy, len(production), retraining)
    if too_few:
        raise MonitoringError(too_few)
    start = time.perf_counter()
    settings = retraining[strategy]
    if strategy == "mixed":
        challenger = _mixed(model, train, production, settings)
    elif strategy == "finetune":
        challenger = _finetune(model, train, production, settings)
    else:
        challenger = _weighted(model, train, production, settings)
    seconds = time.perf_counter() - start
    logger.info("Retrained (%s) in %.1f s on %d production rows", strategy, seconds, len(production))
    # every strategy starts from what the champion knew, so its rows count as seen
    seen = np.union1d(seen_rows(champion, train), row_fingerprints(production))
    return {
        "candidate": f"retrain-{strategy}",
        "strategy": strategy,
        "model": challenger,
        "fit_seconds": seconds,
        "training_rows": seen,
    }


def retrain_candidates(
    champion: dict | None, train: pd.DataFrame, production: pd.DataFrame, retraining: dict[str, Any]
) -> dict[str, Any]:
    """Every challenger ``retraining.strategy`` asks for: one strategy, or ``all`` of them
    (what ``housing monitor --auto-retrain`` runs). With ``all``, a strategy
    short of labels is skipped with its message; alone, it stops the run with it."""
    strategy = retraining["strategy"]
    if strategy != "all":
        return {"challengers": [retrain(champion, train, production, retraining)], "skipped": {}}
    _require_champion(champion)
    challengers, skipped = [], {}
    for name in STRATEGIES:
        too_few = labels_needed(name, len(production), retraining)
        if too_few:
            logger.warning("Skipping %s: %s", name, too_few)
            skipped[name] = too_few
            continue
        try:
            challengers.append(retrain(champion, train, production, {**retraining, "strategy": name}))
        except MonitoringError as exc:  # a strategy that does not fit this champion
            logger.warning("Skipping %s: %s", name, exc)
            skipped[name] = str(exc)
    if not challengers:
        raise MonitoringError("no strategy has enough labelled rows: " + "; ".join(skipped.values()))
    return {"challengers": challengers, "skipped": skipped}
