"""A real (small) model behind the real app, without the registry: fast API tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.modelling.estimators import build_model
from housing.serving.app import ModelSource, ServingConfig, create_app
from housing.serving.auth import Credentials
from housing.serving.model import ServingModel
from housing.serving.prediction_log import PredictionLog
from housing.serving.schemas import House

LGBM = {
    "estimator": "lightgbm.LGBMRegressor",
    "fixed": {"n_jobs": 1, "verbose": -1, "random_state": 0},
}
HOUSE = dict(House.model_config["json_schema_extra"]["examples"][0])  # the documented example
ADMIN_TOKEN = "admin-token-0123456789"
FEEDBACK_TOKEN = "feedback-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FEEDBACK = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}


@pytest.fixture(scope="session")
def fitted_models(raw_housing, params):
    """Two versions that answer differently, as a retrained champion would."""
    data = raw_housing.sample(3_000, random_state=0)
    X, y = data[list(FEATURES)], data[TARGET]
    return {
        version: build_model(LGBM, {"n_estimators": n_estimators}, params["feature_engineering"]).fit(X, y)
        for version, n_estimators in ((1, 60), (2, 20))
    }


def serving_model(fitted_models, version: int) -> ServingModel:
    return ServingModel(
        name="california-housing",
        version=version,
        alias="champion",
        pipeline=fitted_models[version],
        candidate="lightgbm",
        run_id=f"run{version}",
        registered_at="2026-11-26T12:00:00+00:00",
        metrics={"test_rmse": 0.4, "test_mae": 0.26, "test_r2": 0.87},
    )


class Registry:
    """A stand-in registry whose champion can move, or be absent, or be unreachable."""

    def __init__(self, fitted_models, version: int | None = 1):
        self.fitted_models = fitted_models
        self.version_now = version
        self.error: Exception | None = None
        self.reports: dict[str, object] = {}  # monitoring outputs by catalog name

    def load(self):
        if self.error:
            raise self.error
        return None if self.version_now is None else serving_model(self.fitted_models, self.version_now)

    def version(self):
        return self.version_now

    def report(self, name: str):
        if name not in self.reports:
            raise LookupError(f"{name}: nothing saved yet")
        return self.reports[name]

    def source(self) -> ModelSource:
        return ModelSource(
            load=self.load, version=self.version, describe="the test registry", report=self.report
        )


@pytest.fixture
def registry(fitted_models):
    return Registry(fitted_models)


@pytest.fixture
def config(tmp_path):
    return ServingConfig(
        prediction_log_uri=f"sqlite:///{tmp_path / 'log' / 'predictions.db'}",
        max_batch_rows=50,
        max_body_bytes=200_000,
        credentials=Credentials.of(admin=ADMIN_TOKEN, feedback=f"labeller:{FEEDBACK_TOKEN}"),
    )


@pytest.fixture
def app(config, registry):
    return create_app(config, registry.source())


STARTUP_TIMEOUT_S = 60


@contextlib.contextmanager
def started(app, **kwargs) -> Iterator[TestClient]:
    """A TestClient once the app's first model load has ended (it runs after start-up,
    in the background: tests/serving/test_startup.py covers the meantime)."""
    with TestClient(app, **kwargs) as client:
        assert app.state.serving.started.wait(STARTUP_TIMEOUT_S), "the first model load did not end"
        yield client


@pytest.fixture
def client(app):
    with started(app) as client:
        yield client


@pytest.fixture
def logged(config, client):
    """Reads the app's prediction log as a DataFrame (a second connection, as the
    monitoring pipeline would open)."""
    log = PredictionLog(config.prediction_log_uri)
    yield lambda: pd.read_sql_table(config.prediction_log_table, log.engine)
    log.close()
