"""The MLflow Model Registry as two catalog entries: the current champion (read) and a
release of a new version (write).

Keeping the registry behind datasets leaves the modelling nodes pure: a node compares
numbers and returns a decision; these classes do the logging, registration and aliasing.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema

from housing.contract import INTEGER_VALUED

logger = logging.getLogger(__name__)

# Artifacts logged beside every registered model, in the same run (see ModelReleaseDataset).
MANIFEST_PATH = "manifest/training_rows.npy"
REFERENCE_PATH = "reference/drift_reference.parquet"
# Tag on a version whose drift reference lives in another run (a retrained model keeps the
# reference of the model it was derived from).
REFERENCE_RUN_TAG = "drift_reference_run_id"


def _download(run_id: str, artifact_path: str) -> Path | None:
    """A run's artifact as a local file, or ``None`` when the run never logged it."""
    try:
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_path))
    except (MlflowException, OSError) as exc:
        logger.debug("No artifact %s in run %s: %s", artifact_path, run_id, exc)
        return None


def _signature(example: pd.DataFrame, predictions) -> ModelSignature:
    """The inferred signature, with the integer-valued columns typed ``Any``.

    MLflow refuses an int64 column where the schema says double ("Can not safely convert
    int64 to float64"), so a pandas frame with ``HouseAge=41`` would fail in
    ``mlflow.pyfunc``; the model itself casts every column to float64.
    """
    signature = infer_signature(example, predictions)
    inputs = [
        ColSpec(AnyType(), spec.name) if spec.name in INTEGER_VALUED else spec
        for spec in signature.inputs.inputs
    ]
    return ModelSignature(inputs=Schema(inputs), outputs=signature.outputs)


def load_manifest(run_id: str) -> np.ndarray | None:
    """Fingerprints of the rows the model of ``run_id`` trained on (``None``: no manifest)."""
    path = _download(run_id, MANIFEST_PATH)
    return None if path is None else np.load(path, allow_pickle=False)


# Set by ModelReleaseDataset on every version it registers, to the id of the run that
# logged the model. Loading refuses a version without it (before unpickling anything):
# a model pushed into the registry by anyone else never gets served or retrained.
RELEASE_TAG = "housing.release_run"


class Champion(Mapping[str, Any]):
    """The champion's facts, read-only, with the expensive ones fetched on first access.

    ``training_rows`` (the manifest of rows the model trained on) is one more artifact
    download, needed only by the promotion and retraining gates; the API loads the
    champion at every start and reload and never reads it. Loaded once, then kept.
    """

    def __init__(self, facts: dict[str, Any], lazy: dict[str, Callable[[], Any]]):
        self._facts, self._lazy = facts, lazy

    def __getitem__(self, key: str) -> Any:
        if key in self._lazy:
            self._facts[key] = self._lazy.pop(key)()
        return self._facts[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*self._facts, *self._lazy])

    def __len__(self) -> int:
        return len(self._facts) + len(self._lazy)

    def __repr__(self) -> str:
        return f"Champion({self._facts.get('name')!r}, version {self._facts.get('version')})"


class UntrustedModelVersion(DatasetError):
    """The version holding the alias was not registered by this project's pipelines."""


def _is_missing(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


class ChampionDataset(AbstractDataset[None, Mapping[str, Any] | None]):
    """Loads the version that holds ``alias`` (model and registry facts), or ``None``.

    ``None`` means no champion yet (first run, empty store): the promotion gate then
    promotes the first candidate. Any other registry failure is an error, not a ``None``,
    so an unreachable store can never silently crown a worse model.
    """

    def __init__(self, *, model_name: str, alias: str = "champion", metadata=None):
        self._model_name = model_name
        self._alias = alias
        self.metadata = metadata

    def _version(self):
        try:
            return MlflowClient().get_model_version_by_alias(self._model_name, self._alias)
        except MlflowException as exc:
            if _is_missing(exc):
                return None
            raise

    def current_version(self) -> int | None:
        """The version holding the alias now: a cheap registry call, no model download."""
        version = self._version()
        return None if version is None else int(version.version)

    def load(self) -> Champion | None:
        version = self._version()
        if version is None:
            logger.info(
                "No '%s' alias on registered model '%s' yet",
                self._alias,
                self._model_name,
            )
            return None
        if version.tags.get(RELEASE_TAG) != version.run_id:
            message = (
                f"version {version.version} of '{self._model_name}' (alias '{self._alias}') has no "
                f"'{RELEASE_TAG}' tag matching its run: this project's pipelines did not register "
                "it, so it is not loaded. Move the alias back to a version they registered, or "
                "register this model through `kedro run --pipelines=training`"
            )
            logger.error("Refused to load an untrusted model: %s", message)
            raise UntrustedModelVersion(message)
        uri = f"models:/{self._model_name}/{version.version}"
        registered = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=UTC)
        facts = {
            "name": self._model_name,
            "alias": self._alias,
            "version": int(version.version),
            "run_id": version.run_id,
            "registered_at": registered.isoformat(timespec="seconds"),
            "tags": dict(version.tags),
            "model": mlflow.sklearn.load_model(uri),
            "drift_reference_run_id": version.tags.get(REFERENCE_RUN_TAG) or version.run_id,
        }
        run_id = version.run_id
        return Champion(facts, {"training_rows": lambda: load_manifest(run_id)})

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: the registry is written by a release")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}


class ChampionReferenceDataset(ChampionDataset):
    """The drift reference of the version holding ``alias``: the training rows the drift
    report compares production with, and the model's out-of-fold predictions on them."""

    def load(self) -> pd.DataFrame:
        version = self._version()
        if version is None:
            raise DatasetError(
                f"registered model '{self._model_name}' has no '{self._alias}' yet: "
                "run `kedro run --pipelines=training` first"
            )
        run_id = version.tags.get(REFERENCE_RUN_TAG) or version.run_id
        path = _download(run_id, REFERENCE_PATH)
        if path is None:
            raise DatasetError(
                f"version {version.version} of '{self._model_name}' has no drift reference "
                f"({REFERENCE_PATH} in run {run_id}): register a model with a current training run"
            )
        return pd.read_parquet(path)


class ModelReleaseDataset(AbstractDataset[dict, None]):
    """Logs a model to the active run, registers it, and moves the alias if promoted.

    ``save`` takes the release a node decided on: ``model``, ``candidate``, ``metrics``,
    ``promote``, ``reason`` and ``input_example`` (raw rows, from which the signature is
    inferred, so clients see the eight raw features as the model's schema).
    """

    def __init__(
        self,
        *,
        model_name: str,
        alias: str = "champion",
        artifact_name: str = "model",
        save_args: dict[str, Any] | None = None,
        metadata=None,
    ):
        self._model_name = model_name
        self._alias = alias
        self._artifact_name = artifact_name
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    def load(self) -> None:
        raise DatasetError(f"{type(self).__name__} is write-only: load the champion instead")

    def save(self, data: dict) -> None:
        missing = {"model", "candidate", "metrics", "promote", "input_example", "training_rows"} - set(data)
        if missing:
            raise DatasetError(f"model release is missing {sorted(missing)}")
        started = mlflow.active_run() is None
        run = mlflow.start_run() if started else mlflow.active_run()
        try:
            self._log_and_register(data, run.info.run_id)
        finally:
            if started:
                mlflow.end_run()

    def _log_and_register(self, data: dict, run_id: str) -> None:
        model, example = data["model"], data["input_example"]
        info = mlflow.sklearn.log_model(
            sk_model=model,
            name=self._artifact_name,
            signature=_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=self._model_name,
            **self._save_args,
        )
        version = str(info.registered_model_version)
        client = MlflowClient()
        self._log_extras(data, run_id)
        tags = {
            RELEASE_TAG: run_id,
            "candidate": data["candidate"],
            **{k: f"{v:.6g}" for k, v in data["metrics"].items()},
            "training_rows": str(len(data["training_rows"])),
            **({"data_sha256": data["data_version"]["sha256"]} if data.get("data_version") else {}),
            **(
                {REFERENCE_RUN_TAG: data["drift_reference"]}
                if isinstance(data.get("drift_reference"), str)
                else {}
            ),
        }
        for key, value in tags.items():
            client.set_model_version_tag(self._model_name, version, key, value)
        if data.get("reason"):
            client.update_model_version(self._model_name, version, description=data["reason"])
        if data["promote"]:
            client.set_registered_model_alias(self._model_name, self._alias, version)
        client.set_tag(run_id, "registered_model_version", version)
        client.set_tag(run_id, "promoted", str(bool(data["promote"])).lower())
        logger.info(
            "Registered %s version %s (%s)%s",
            self._model_name,
            version,
            data["candidate"],
            f" and gave it the alias '{self._alias}'" if data["promote"] else "",
        )

    @staticmethod
    def _log_extras(data: dict, run_id: str) -> None:
        """The manifest of training rows and the drift reference, beside the model."""
        with tempfile.TemporaryDirectory() as tmp:
            manifest = Path(tmp) / Path(MANIFEST_PATH).name
            np.save(manifest, np.asarray(data["training_rows"], dtype=np.uint64), allow_pickle=False)
            mlflow.log_artifact(str(manifest), Path(MANIFEST_PATH).parent.as_posix(), run_id=run_id)
            reference = data.get("drift_reference")
            if isinstance(reference, pd.DataFrame):
                path = Path(tmp) / Path(REFERENCE_PATH).name
                reference.to_parquet(path, index=False)
                mlflow.log_artifact(str(path), Path(REFERENCE_PATH).parent.as_posix(), run_id=run_id)

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
