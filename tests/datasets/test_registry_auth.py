"""A real `mlflow server --app-name basic-auth` on 127.0.0.1: the pipelines' writer
account registers and moves the alias; the API's reader account loads the champion but
gets 403 when it tries to register a version, tag one or move the alias."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from housing.datasets.model_registry import RELEASE_TAG, ChampionDataset, ModelReleaseDataset
from housing.pipelines.data_processing.features import FEATURES, TARGET, row_fingerprints
from housing.registry_users import ensure_accounts
from tests.conftest import free_port, stop_group, wait_until_answers

pytestmark = pytest.mark.e2e

NAME = "california-housing"
PASSWORDS = {
    "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-password-0123",
    "HOUSING_MLFLOW_WRITER_PASSWORD": "writer-password-0123",
    "HOUSING_MLFLOW_READER_PASSWORD": "reader-password-0123",
}


def _server_available() -> None:
    if importlib.util.find_spec("flask_wtf") is None:
        message = "mlflow's basic-auth app needs Flask-WTF: pip install 'mlflow[auth]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _server_available()
    root = tmp_path_factory.mktemp("mlflow-auth")
    ini = root / "basic_auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{root / 'auth.db'}\n")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HOUSING_"))},
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": PASSWORDS["MLFLOW_AUTH_ADMIN_PASSWORD"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only-secret-key",
    }
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    command += ["--serve-artifacts", "--artifacts-destination", str(root / "artifacts")]
    process = subprocess.Popen(
        command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/health", process, 120)
        yield url
    finally:
        stop_group(process)


@contextlib.contextmanager
def account(monkeypatch, url: str, user: str, password: str):
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_TRACKING_URI", url)
        m.setenv("MLFLOW_TRACKING_USERNAME", user)
        m.setenv("MLFLOW_TRACKING_PASSWORD", password)
        mlflow.set_tracking_uri(url)
        try:
            yield MlflowClient()
        finally:
            mlflow.set_tracking_uri(None)


def test_reader_cannot_register_or_promote_what_the_writer_can(server, monkeypatch, raw_housing):
    env = {"MLFLOW_TRACKING_URI": server, "HOUSING_MODEL_NAME": NAME, **PASSWORDS}
    assert ensure_accounts(env) == {
        "housing-writer": "created",
        "housing-reader": "created",
        NAME: "registered model created by the writer",
    }
    assert ensure_accounts(env)["housing-reader"] == "password set"  # idempotent: rotation
    with pytest.raises(ValueError, match="HOUSING_MLFLOW_READER_PASSWORD must be set"):
        ensure_accounts({**env, "HOUSING_MLFLOW_READER_PASSWORD": "short"})

    rows = raw_housing.head(200)
    model = Pipeline([("linear", LinearRegression())]).fit(rows[list(FEATURES)], rows[TARGET])
    with account(monkeypatch, server, "housing-writer", PASSWORDS["HOUSING_MLFLOW_WRITER_PASSWORD"]):
        mlflow.set_experiment("housing")
        release = {
            "model": model,
            "candidate": "linear",
            "metrics": {"test_rmse": 0.7},
            "promote": True,
            "input_example": rows[list(FEATURES)].head(3),
            "training_rows": row_fingerprints(rows),
        }
        ModelReleaseDataset(model_name=NAME, save_args={"serialization_format": "pickle"}).save(release)

    with account(
        monkeypatch, server, "housing-reader", PASSWORDS["HOUSING_MLFLOW_READER_PASSWORD"]
    ) as reader:
        champion = ChampionDataset(model_name=NAME).load()  # reading is what the API does
        assert champion["version"] == 1 and champion["tags"][RELEASE_TAG] == champion["run_id"]
        source = f"models:/{NAME}/1"
        for attempt in (
            lambda: reader.create_model_version(NAME, source, run_id=champion["run_id"]),
            lambda: reader.set_registered_model_alias(NAME, "champion", "1"),
            lambda: reader.set_model_version_tag(NAME, "1", RELEASE_TAG, "forged"),
            lambda: reader.delete_registered_model_alias(NAME, "champion"),
        ):
            with pytest.raises(MlflowException, match="403"):
                attempt()

    with account(monkeypatch, server, "anonymous", "no-such-password") as stranger:
        with pytest.raises(MlflowException, match="401"):
            stranger.get_registered_model(NAME)

    with account(
        monkeypatch, server, "housing-writer", PASSWORDS["HOUSING_MLFLOW_WRITER_PASSWORD"]
    ) as writer:
        writer.set_registered_model_alias(NAME, "champion", "1")  # the writer may move it
        assert writer.get_model_version_by_alias(NAME, "champion").version == "1"
