"""Candidate models from configuration: class paths, fixed arguments, search spaces."""

from __future__ import annotations

import os
import time
from typing import Any

import optuna
import sqlalchemy
from kedro.utils import load_obj
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from housing.db import unreachable, url_string
from housing.errors import HousingError
from housing.pipelines.data_processing.features import GeoFeatures


def build_model(candidate: dict[str, Any], params: dict[str, Any], features: dict[str, Any]) -> Pipeline:
    """``GeoFeatures -> [StandardScaler] -> estimator``: the one object that is registered."""
    return Pipeline([("features", GeoFeatures(**features)), *build_estimator(candidate, params).steps])


def build_estimator(candidate: dict[str, Any], params: dict[str, Any], n_jobs: int | None = None) -> Pipeline:
    """``[StandardScaler] -> estimator`` on engineered features, as cross-validation fits it.

    The estimator class is a dotted path in ``parameters_modelling.yml``; ``params`` (the
    tuned values) override the candidate's ``fixed`` arguments. ``n_jobs`` overrides the
    estimator's own thread count where it has one (CV fits each fold on one thread).
    """
    estimator_cls = load_obj(candidate["estimator"])
    kwargs = {**(candidate.get("fixed") or {}), **params}
    if n_jobs is not None and "n_jobs" in estimator_cls().get_params():
        kwargs["n_jobs"] = n_jobs
    steps: list[tuple[str, Any]] = []
    if candidate.get("scale", False):
        steps.append(("scale", StandardScaler()))
    steps.append(("model", estimator_cls(**kwargs)))
    return Pipeline(steps)


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw one point of a search space written as ``{name: {type, low, high, log}}``."""
    params: dict[str, Any] = {}
    for name, spec in (space or {}).items():
        kind = spec.get("type")
        if kind == "int":
            params[name] = trial.suggest_int(
                name,
                spec["low"],
                spec["high"],
                step=spec.get("step", 1),
                log=spec.get("log", False),
            )
        elif kind == "float":
            params[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        else:
            raise ValueError(f"search_space.{name}: unknown type {kind!r}; use int, float or categorical")
    return params


STORAGE_ENV = "HOUSING_OPTUNA_STORAGE"


def make_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """Optuna storage from configuration, so tuning scales out without code changes.

    ``None``: in memory, one process. ``journal:PATH``: a journal file that workers on one
    machine (or a shared file system) append to. Anything else is an RDB URL
    (``postgresql://user:password@host/db``, ``sqlite:///...``) shared by workers anywhere.
    ``HOUSING_OPTUNA_STORAGE`` wins over ``url`` (``tuning.storage``): kedro-mlflow logs
    every parameter to MLflow, so a URL with a password belongs in the environment, and
    one in ``tuning.storage`` stops the run.
    """
    if url and make_url_password(url):
        raise HousingError(
            "tuning.storage holds a password, and kedro-mlflow logs parameters to MLflow: set "
            f"{STORAGE_ENV} to the URL instead, leave tuning.storage null, and change that password"
        )
    url = os.environ.get(STORAGE_ENV) or url
    if not url:
        return None
    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage  # noqa: PLC0415

        return JournalStorage(JournalFileBackend(url.removeprefix("journal:")))
    setting = f"{STORAGE_ENV} or tuning.storage"
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url_string(url, setting), engine_kwargs={"pool_pre_ping": True})
        except sqlalchemy.exc.OperationalError as exc:
            raise unreachable(exc, url, setting) from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers starting together on an empty database race to create Optuna's
            # tables; the loser finds them made on the next try
            if attempt == 2:
                raise
            time.sleep(0.5 + attempt)
    return None  # unreachable: the loop returns or raises


def make_url_password(url: str) -> str | None:
    """The password in a database URL, if any (journal paths have none)."""
    if url.startswith("journal:"):
        return None
    try:
        return sqlalchemy.engine.make_url(url).password
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return None
