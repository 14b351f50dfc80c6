from __future__ import annotations

import pandas as pd
import pytest
from sklearn.model_selection import KFold, cross_val_predict, train_test_split

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.modelling.estimators import build_model
from housing.pipelines.modelling.promotion import build_drift_reference

CANDIDATE = {"estimator": "lightgbm.LGBMRegressor", "fixed": {"n_jobs": 1, "verbose": -1, "random_state": 0}}


@pytest.fixture(scope="session")
def split(raw_housing):
    return train_test_split(raw_housing, test_size=0.2, random_state=42)


@pytest.fixture(scope="session")
def champion(split, params):
    train, _ = split
    return build_model(CANDIDATE, {"n_estimators": 80}, params["feature_engineering"]).fit(
        train[list(FEATURES)], train[TARGET]
    )


@pytest.fixture(scope="session")
def reference(split, champion, params):
    """As the training run builds it: raw training rows, out-of-fold predictions."""
    train, _ = split
    model = build_model(CANDIDATE, {"n_estimators": 80}, params["feature_engineering"])
    oof = cross_val_predict(
        model, train[list(FEATURES)], train[TARGET], cv=KFold(3, shuffle=True, random_state=0)
    )
    best = {"oof": pd.Series(oof, index=train.index), "model": champion}
    return build_drift_reference(train, best, params["drift"]["reference"])


def as_logged(rows: pd.DataFrame, model, version: int = 1) -> pd.DataFrame:
    """Scenario rows as the API would have logged them."""
    log = rows.loc[:, list(FEATURES)].copy()
    log["prediction"] = model.predict(log)
    log["actual"] = rows["actual"].to_numpy() if "actual" in rows else None
    log["request_id"] = [f"r{i}" for i in range(len(log))]
    log["created_at"] = pd.date_range("2026-11-01", periods=len(log), freq="s", tz="UTC").map(
        lambda t: t.isoformat()
    )
    log["model_version"] = version
    return log
