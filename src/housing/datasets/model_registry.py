"""The MLflow Model Registry as two catalog entries: the current champion (read) and a
release of a new version (write).

Keeping the registry behind datasets leaves the modelling nodes pure: a node compares
numbers and returns a decision; these classes do the logging, registration and aliasing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import mlflow
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

# Set by ModelReleaseDataset on every version it registers, to the id of the run that
# logged the model. Loading refuses a version without it (before unpickling anything):
# a model pushed into the registry by anyone else never gets served or retrained.
RELEASE_TAG = "housing.release_run"


class UntrustedModelVersion(DatasetError):
    """The version holding the alias was not registered by this project's pipelines."""


def _is_missing(exc: MlflowException) -> bool:
    return exc.error_code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc).lower()


class ChampionDataset(AbstractDataset[None, dict | None]):
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

    def load(self) -> dict | None:
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
        return {
            "name": self._model_name,
            "alias": self._alias,
            "version": int(version.version),
            "run_id": version.run_id,
            "registered_at": registered.isoformat(timespec="seconds"),
            "tags": dict(version.tags),
            "model": mlflow.sklearn.load_model(uri),
        }

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: the registry is written by a release")

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}


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
        missing = {"model", "candidate", "metrics", "promote", "input_example"} - set(data)
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
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=self._model_name,
            **self._save_args,
        )
        version = str(info.registered_model_version)
        client = MlflowClient()
        tags = {
            RELEASE_TAG: run_id,
            "candidate": data["candidate"],
            **{k: f"{v:.6g}" for k, v in data["metrics"].items()},
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

    def _describe(self) -> dict[str, Any]:
        return {"model_name": self._model_name, "alias": self._alias}
