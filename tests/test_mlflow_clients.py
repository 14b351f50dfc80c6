"""The registered champion works for any MLflow client, with inputs as people have them.

Census counts come as integers (HouseAge 41, Population 322): `mlflow.pyfunc` must take
a pandas frame with int64 columns, and `mlflow models serve` the same values as JSON,
and both must give what the model gives on floats.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from housing.contract import FEATURES, INTEGER_VALUED, TARGET
from tests.conftest import clean_env, free_port, stop_group, wait_until_answers

pytestmark = pytest.mark.e2e

MODEL_URI = "models:/california-housing@champion"


@pytest.fixture(scope="module")
def houses(trained_project):
    test = pd.read_parquet(trained_project / "data" / "05_model_input" / "test.parquet")
    rows = test.loc[:, list(FEATURES)].head(20).reset_index(drop=True)
    as_ints = rows.astype({name: "int64" for name in INTEGER_VALUED})  # they are whole numbers
    assert (as_ints[list(INTEGER_VALUED)] == rows[list(INTEGER_VALUED)]).all().all()
    return rows, as_ints, test[TARGET]


@pytest.fixture(scope="module")
def store(trained_project):
    return f"sqlite:///{trained_project / 'mlflow.db'}"


def test_pyfunc_takes_integer_columns(trained_project, store, houses, monkeypatch):
    rows, as_ints, _ = houses
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    model = mlflow.pyfunc.load_model(MODEL_URI)
    expected = mlflow.sklearn.load_model(MODEL_URI).predict(rows)
    np.testing.assert_allclose(model.predict(as_ints), expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(model.predict(rows), expected, rtol=0, atol=1e-9)
    schema = {spec.name: str(spec.type) for spec in model.metadata.get_input_schema().inputs}
    assert list(schema) == list(FEATURES)
    assert schema["MedInc"] == "DataType.double" and schema["HouseAge"] == "Any"


def test_mlflow_models_serve_takes_the_same_json(trained_project, store, houses, monkeypatch):
    rows, as_ints, _ = houses
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    expected = mlflow.sklearn.load_model(MODEL_URI).predict(rows)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", MODEL_URI, "--env-manager", "local"]
        + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env={**clean_env(), "MLFLOW_TRACKING_URI": store},
        cwd=trained_project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/ping", server, 180)
        body = {"dataframe_split": as_ints.to_dict(orient="split", index=False)}
        assert isinstance(body["dataframe_split"]["data"][0][1], int)  # HouseAge sent as 41, not 41.0
        answer = httpx.post(f"{url}/invocations", json=body, timeout=30)
    finally:
        stop_group(server)
    assert answer.status_code == 200, answer.text
    served = np.asarray(answer.json()["predictions"], dtype=np.float64)
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)
