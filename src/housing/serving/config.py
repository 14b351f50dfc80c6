"""The API's settings: ``conf/<env>/serving.yml``, checked when the API starts.

A misspelt key or a wrong type would otherwise be dropped silently and the API would run
with a default nobody chose: each is refused with the file and the key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from pydantic import ValidationError

from housing.serving.auth import Credentials
from housing.serving.compiled import CompiledTreesSettings

# the blocks of serving.yml and what each may hold
_KNOWN = {
    "prediction_log": {"uri", "table", "sqlite_synchronous", "pool", "max_queue", "max_commit_rows"},
    "auth": {"require_predict_token"},
    "feedback": {"actual_min", "actual_max"},
    "server": None,  # checked by housing.serving.server.ServerLimits
    "compiled_trees": set(CompiledTreesSettings.model_fields),
}


def bounds_from_conf(conf: dict[str, Any] | None) -> dict[str, tuple[float, float]]:
    """``feedback: {actual_min, actual_max}`` of serving.yml as ServingConfig's field."""
    if not conf:
        return {}
    low, high = float(conf["actual_min"]), float(conf["actual_max"])
    if not low < high:
        raise ValueError(f"serving.yml feedback: actual_min ({low}) must be below actual_max ({high})")
    return {"feedback_actual": (low, high)}


class SettingsError(ValueError):
    """serving.yml holds a key the API does not know, or a value of the wrong type."""


@dataclass
class ServingConfig:
    """``conf/<env>/serving.yml``, flattened."""

    prediction_log_uri: str
    prediction_log_table: str = "predictions"
    sqlite_synchronous: str = "NORMAL"
    prediction_log_pool: dict[str, Any] | None = None  # pool sizes, connect timeout (PostgreSQL)
    prediction_log_max_queue: int = 10_000  # requests waiting for a commit; more: 503 at once
    prediction_log_max_commit_rows: int = 10_000  # rows per group commit
    max_batch_rows: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    poll_seconds: float = 0.0
    credentials: Credentials = field(default_factory=Credentials)  # none: feedback, admin off
    feedback_actual: tuple[float, float] = (0.14999, 5.00001)  # MedHouseVal's range in the data
    batch_threads: int = 2
    model_dataset: str = "current_champion"
    drift_summary_dataset: str = "drift_summary"
    drift_report_dataset: str = "drift_report"
    compiled_trees: CompiledTreesSettings = field(default_factory=CompiledTreesSettings)

    @classmethod
    def from_conf(cls, conf: dict[str, Any], source: str = "serving.yml") -> ServingConfig:
        _check_keys(conf, source, {f.name for f in fields(cls)})
        log = conf.get("prediction_log") or {}
        flat = {
            **{k: v for k, v in conf.items() if k not in {"prediction_log", "auth", "feedback", "server"}},
            "compiled_trees": _compiled_trees(conf.get("compiled_trees"), source),
            "prediction_log_uri": log.get("uri"),
            "prediction_log_table": log.get("table", "predictions"),
            "sqlite_synchronous": log.get("sqlite_synchronous", "NORMAL"),
            "prediction_log_pool": log.get("pool"),
            "prediction_log_max_queue": log.get("max_queue", 10_000),
            "prediction_log_max_commit_rows": log.get("max_commit_rows", 10_000),
            "credentials": Credentials.from_env(
                predict_required=(conf.get("auth") or {}).get("require_predict_token", False)
            ),
            **bounds_from_conf(conf.get("feedback")),
        }
        known = {f.name for f in fields(cls)}
        config = cls(**{k: v for k, v in flat.items() if k in known})
        _check_types(config, source)
        return config


def _compiled_trees(conf: dict[str, Any] | None, source: str) -> CompiledTreesSettings:
    try:
        return CompiledTreesSettings(**(conf or {}))
    except ValidationError as exc:
        problems = [f"'compiled_trees.{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors()]
        raise SettingsError(f"{source}: {'; '.join(problems)}") from None


def _check_keys(conf: dict[str, Any], source: str, flat_fields: set[str]) -> None:
    top = set(flat_fields) - {"prediction_log_uri", "prediction_log_table", "sqlite_synchronous"}
    top -= {"prediction_log_pool", "prediction_log_max_queue", "prediction_log_max_commit_rows"}
    top -= {"credentials", "feedback_actual"}
    problems = []
    for key, value in conf.items():
        if key in _KNOWN:
            allowed = _KNOWN[key]
            if allowed is not None and isinstance(value, dict):
                problems += [
                    f"{source}: unknown key '{key}.{sub}'; allowed: {sorted(allowed)}"
                    for sub in value
                    if sub not in allowed
                ]
        elif key not in top:
            problems.append(f"{source}: unknown key '{key}'; allowed: {sorted(top | set(_KNOWN))}")
    if problems:
        raise SettingsError("; ".join(problems))


def _check_types(config: ServingConfig, source: str) -> None:
    numbers = {
        "max_batch_rows": int,
        "max_body_bytes": int,
        "batch_threads": int,
        "poll_seconds": (int, float),
    }
    for name, kind in numbers.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, kind) or value < 0:
            raise SettingsError(f"{source}: '{name}' must be a non-negative number, got {value!r}")
    for key in ("max_queue", "max_commit_rows"):  # 0 would refuse every prediction
        value = getattr(config, f"prediction_log_{key}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingsError(
                f"{source}: 'prediction_log.{key}' must be a whole number >= 1, got {value!r}"
            )
    if not isinstance(config.prediction_log_uri, str) or not config.prediction_log_uri:
        raise SettingsError(
            f"{source}: 'prediction_log.uri' must be a database URI, got {config.prediction_log_uri!r}"
        )
