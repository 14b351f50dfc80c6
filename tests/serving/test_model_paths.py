"""The API's one-row path answers exactly what the registered pipeline answers."""

from __future__ import annotations

import numpy as np
import pytest

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.modelling.estimators import build_model
from housing.serving.model import ServingModel


def paths(pipeline) -> ServingModel:
    return ServingModel("m", 1, "champion", pipeline, explain_rows=False)


def test_lightgbm_rows_equal_the_pipeline_on_every_row(fitted_models, raw_housing):
    model = paths(fitted_models[1])
    assert model.row_path == "fast"
    X = raw_housing.loc[:, list(FEATURES)]
    rows = np.array([model.predict_row(row) for row in X.itertuples(index=False)])
    expected = fitted_models[1].predict(X)
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict(X.to_numpy(), 2), expected, rtol=0, atol=1e-9)


def test_a_booster_with_a_best_iteration_stops_there(fitted_models, raw_housing):
    """Booster.predict stops at best_iteration when early stopping set one (a booster
    trained with lightgbm.train keeps the trees after it); so must the one-row path."""
    import copy  # noqa: PLC0415

    pipeline = copy.deepcopy(fitted_models[1])
    booster = pipeline[-1].booster_
    booster.best_iteration = 10
    assert booster.num_trees() > 10
    model = paths(pipeline)
    X = raw_housing.loc[:, list(FEATURES)].iloc[:2_000]
    rows = np.array([model.predict_row(row) for row in X.itertuples(index=False)])
    expected = booster.predict(pipeline[0].transform(X))
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-9)
    assert not np.allclose(expected, booster.predict(pipeline[0].transform(X), num_iteration=-1))


@pytest.mark.parametrize(
    "estimator", ["sklearn.linear_model.Ridge", "sklearn.ensemble.RandomForestRegressor"]
)
def test_other_estimators_take_the_matrix_path(raw_housing, params, estimator):
    data = raw_housing.sample(1_000, random_state=2)
    X, y = data[list(FEATURES)], data[TARGET]
    fixed = {"n_estimators": 5, "random_state": 0} if "Forest" in estimator else {}
    pipeline = build_model({"estimator": estimator, "fixed": fixed}, {}, params["feature_engineering"]).fit(
        X, y
    )
    model = paths(pipeline)
    assert model.row_path == "matrix"
    rows = [model.predict_row(row) for row in X.iloc[:50].itertuples(index=False)]
    np.testing.assert_allclose(rows, pipeline.predict(X.iloc[:50]), rtol=0, atol=1e-9)
