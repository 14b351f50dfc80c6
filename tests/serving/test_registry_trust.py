"""The API serves only versions this project's pipelines registered: a version pushed
into the registry by anyone else is refused before it is unpickled, and the model being
served stays. A real MLflow store (SQLite, in a temporary folder)."""

from __future__ import annotations

import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from housing.datasets.model_registry import (
    RELEASE_TAG,
    ChampionDataset,
    ModelReleaseDataset,
    UntrustedModelVersion,
)
from housing.pipelines.data_processing.features import FEATURES, row_fingerprints
from housing.serving.app import ModelSource, create_app
from housing.serving.model import ServingModel
from tests.serving.conftest import ADMIN, HOUSE, started

NAME = "california-housing"


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("trust", artifact_location=(tmp_path / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    yield MlflowClient()
    mlflow.set_tracking_uri(None)


@pytest.fixture
def release(fitted_models, raw_housing):
    example = raw_housing[list(FEATURES)].head(5)
    return {
        "model": fitted_models[1],
        "candidate": "lightgbm",
        "metrics": {"test_rmse": 0.4},
        "promote": True,
        "reason": "first",
        "input_example": example,
        "training_rows": row_fingerprints(raw_housing.head(100)),
    }


def push_outside_the_pipelines(model, example) -> str:
    """What someone with registry access but not this project's pipelines would do."""
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            input_example=example,
            registered_model_name=NAME,
            serialization_format="pickle",
        )
    MlflowClient().set_registered_model_alias(NAME, "champion", info.registered_model_version)
    return str(info.registered_model_version)


def test_release_tags_its_run_and_an_untagged_version_is_never_unpickled(
    store, release, fitted_models, monkeypatch
):
    ModelReleaseDataset(model_name=NAME, save_args={"serialization_format": "pickle"}).save(release)
    champion = ChampionDataset(model_name=NAME).load()
    assert champion["version"] == 1 and champion["tags"][RELEASE_TAG] == champion["run_id"]

    version = push_outside_the_pipelines(fitted_models[2], release["input_example"])
    unpickled = []
    monkeypatch.setattr(mlflow.sklearn, "load_model", unpickled.append)
    with pytest.raises(UntrustedModelVersion, match=rf"version {version} .*'{RELEASE_TAG}' tag"):
        ChampionDataset(model_name=NAME).load()
    # a tag copied from another version does not match this version's run either
    store.set_model_version_tag(NAME, version, RELEASE_TAG, champion["run_id"])
    with pytest.raises(UntrustedModelVersion):
        ChampionDataset(model_name=NAME).load()
    assert unpickled == []


def test_the_api_refuses_it_logs_why_and_keeps_serving_the_old_model(
    store, release, fitted_models, config, caplog
):
    ModelReleaseDataset(model_name=NAME, save_args={"serialization_format": "pickle"}).save(release)
    dataset = ChampionDataset(model_name=NAME)
    source = ModelSource(
        load=lambda: ServingModel.from_champion(dataset.load()), version=dataset.current_version
    )
    with started(create_app(config, source)) as client:
        assert client.post("/predict", json=HOUSE).json()["model_version"] == 1
        version = push_outside_the_pipelines(fitted_models[2], release["input_example"])
        with caplog.at_level(logging.ERROR):
            reload = client.post("/admin/reload", headers=ADMIN)
        assert reload.status_code == 503 and "did not register it" in reload.json()["detail"]
        assert any(
            "Refused to load an untrusted model" in r.getMessage() and f"version {version}" in r.getMessage()
            for r in caplog.records
        )
        assert client.get("/ready").status_code == 200
        assert client.post("/predict", json=HOUSE).json()["model_version"] == 1


def test_the_training_rows_manifest_is_downloaded_only_when_a_gate_reads_it(
    store, release, raw_housing, monkeypatch
):
    """The API loads the champion at every start and reload and never reads the manifest:
    it is fetched on first access, once, and then is what the gates always saw."""
    from housing.datasets import model_registry  # noqa: PLC0415

    ModelReleaseDataset(model_name=NAME, save_args={"serialization_format": "pickle"}).save(release)
    downloads = []
    real = model_registry.load_manifest
    monkeypatch.setattr(model_registry, "load_manifest", lambda run: downloads.append(run) or real(run))
    champion = ChampionDataset(model_name=NAME).load()
    ServingModel.from_champion(champion)
    assert downloads == [], "serving the champion downloaded the manifest"
    assert "training_rows" in champion and sorted(champion) == sorted({*champion})
    rows = champion.get("training_rows")
    assert sorted(rows) == sorted(row_fingerprints(raw_housing.head(100)))
    assert {**champion}["training_rows"] is rows and downloads == [champion["run_id"]]
