"""Small fitted models (the project's own feature engineering) to explain."""

from __future__ import annotations

import pytest

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.modelling.estimators import build_model


@pytest.fixture(scope="session")
def rows(raw_housing):
    """~1,500 districts to fit on and a disjoint 300 to explain."""
    data = raw_housing.sample(1_800, random_state=7)
    return data.iloc[:1_500], data.iloc[1_500:]


def _fit(candidate, tuned, params, rows):
    train, _ = rows
    model = build_model(candidate, tuned, params["feature_engineering"])
    return model.fit(train.loc[:, list(FEATURES)], train[TARGET].to_numpy())


@pytest.fixture(scope="session")
def lightgbm_model(params, rows):
    return _fit(
        params["lightgbm"]["candidate"],
        {"n_estimators": 150, "num_leaves": 31, "n_jobs": 1},
        params,
        rows,
    )


@pytest.fixture(scope="session")
def ridge_model(params, rows):
    return _fit(params["linear_regression"]["candidate"], {"alpha": 1.0}, params, rows)


@pytest.fixture(scope="session")
def explained_rows(rows):
    _, held_out = rows
    return held_out.loc[:, list(FEATURES)]
