"""The shape of the modelling and data-processing parameters, checked before any work.

A typo (``n_trial``), a negative budget or a candidate the pipeline does not have would
otherwise surface minutes into a run, or never (an unknown key is silently ignored).
Each problem is reported with the file that sets the key, the key and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from kedro.utils import load_obj
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from housing.errors import HousingError
from housing.pipelines.data_processing.schema import COLUMNS


class ParameterError(HousingError):
    """The parameters break their schema; says the file, the key and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchDimension(_Strict):
    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    step: float | None = Field(default=None, gt=0)
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty 'choices' list")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"needs 'low' < 'high' (got low={self.low}, high={self.high})")
        return self


class EarlyStopping(_Strict):
    rounds: int = Field(gt=0)


class Candidate(_Strict):
    name: str
    estimator: str
    scale: bool = False
    fixed: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, SearchDimension] = Field(default_factory=dict)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    n_trials: int = Field(gt=0)
    timeout_seconds: float | None = Field(default=None, gt=0)
    early_stopping: EarlyStopping | None = None
    refine: dict[str, Any] | None = None

    @field_validator("estimator")
    @classmethod
    def _importable(cls, path: str) -> str:
        try:
            load_obj(path)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"cannot import estimator class {path!r} ({exc})") from None
        return path

    @model_validator(mode="after")
    def _consistent(self) -> Candidate:
        for i, params in enumerate(self.enqueue):
            unknown = sorted(set(params) - set(self.search_space))
            if unknown:
                raise ValueError(
                    f"enqueue[{i}] sets {unknown}, which are not in search_space {sorted(self.search_space)}"
                )
        if self.refine and not self.early_stopping:
            raise ValueError("refine needs early_stopping: the refit learns its number of trees by CV")
        if self.early_stopping and self.scale:
            raise ValueError("early_stopping needs the estimator right after the features (scale: false)")
        return self


class CandidateBlock(_Strict):
    candidate: Candidate


class Tuning(_Strict):
    cv_folds: int = Field(ge=2)
    seed: int
    n_jobs: int = Field(default=1, ge=1)
    storage: str | None = None
    study_prefix: str
    show_progress_bar: bool = True


class Promotion(_Strict):
    min_improvement: float = Field(ge=0)
    input_example_rows: int = Field(default=5, ge=1)


class Validation(_Strict):
    min_rows: int = Field(ge=1)
    max_rows_reported: int = Field(default=5, ge=1)
    ranges: dict[Literal[COLUMNS], tuple[float, float]]  # type: ignore[valid-type]

    @field_validator("ranges")
    @classmethod
    def _every_column(cls, ranges: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        missing = [c for c in COLUMNS if c not in ranges]
        if missing:
            raise ValueError(f"needs a [low, high] range for every column; missing {missing}")
        inverted = [c for c, (low, high) in ranges.items() if low > high]
        if inverted:
            raise ValueError(f"low is above high for {inverted}")
        return ranges


class RawFile(_Strict):
    rows: int | None = Field(default=None, gt=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


def check_parameters(params: dict[str, Any], conf_dirs: list[Path], candidates: tuple[str, ...]) -> None:
    """Raise one ``ParameterError`` listing every problem, or return quietly."""
    schemas: dict[str, type[BaseModel]] = {
        "tuning": Tuning,
        "promotion": Promotion,
        "validation": Validation,
        "raw_file": RawFile,
        **dict.fromkeys(candidates, CandidateBlock),
    }
    problems = []
    for key, schema in schemas.items():
        if key not in params:
            problems.append(f"{_file_of(key, conf_dirs)}: '{key}' is missing")
            continue
        try:
            schema.model_validate(params[key])
        except ValidationError as exc:
            problems += [_describe(key, error, conf_dirs) for error in exc.errors()]
    for path in _modelling_files(conf_dirs):
        for key in _top_level_keys(path):
            if key not in schemas and key != "reference_study":
                problems.append(
                    f"{path}: unknown candidate '{key}'; the modelling pipeline has {list(candidates)} "
                    "(a new candidate also needs its namespace in pipelines/modelling/pipeline.py)"
                )
    if problems:
        raise ParameterError(f"{len(problems)} problem(s) in the parameters:\n  - " + "\n  - ".join(problems))


def _describe(key: str, error: dict[str, Any], conf_dirs: list[Path]) -> str:
    where = ".".join(str(part) for part in (key, *error["loc"]))
    if error["type"] == "extra_forbidden":
        parent = error["loc"][:-1]
        allowed = _allowed_keys(key, parent)
        return f"{_file_of(key, conf_dirs)}: unknown key '{where}'; allowed: {allowed}"
    given = f" (got {error['input']!r})" if error["type"] != "missing" else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{_file_of(key, conf_dirs)}: {where}: {message}{given}"


def _allowed_keys(key: str, parent: tuple) -> list[str]:
    model: Any = {
        "tuning": Tuning,
        "promotion": Promotion,
        "validation": Validation,
        "raw_file": RawFile,
    }.get(key, CandidateBlock)
    for part in parent:
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        if field is None:
            return []
        annotation = field.annotation
        inner = [
            a for a in getattr(annotation, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        elif inner:
            model = inner[-1]
        else:
            return []
    return sorted(model.model_fields)


def _parameter_files(conf_dirs: list[Path]) -> list[Path]:
    return [path for folder in conf_dirs for path in sorted(folder.glob("parameters*.yml"))]


def _modelling_files(conf_dirs: list[Path]) -> list[Path]:
    return [p for p in _parameter_files(conf_dirs) if p.stem == "parameters_modelling"]


def _top_level_keys(path: Path) -> list[str]:
    loaded = yaml.safe_load(path.read_text()) or {}
    return list(loaded) if isinstance(loaded, dict) else []


def _file_of(key: str, conf_dirs: list[Path]) -> str:
    """The last file (environment over base) that sets top-level ``key``."""
    found = [path for path in _parameter_files(conf_dirs) if key in _top_level_keys(path)]
    return str(found[-1]) if found else f"parameters ({key} set on the command line or nowhere)"
