"""The model being served, and its fast paths.

The registered model is a scikit-learn ``Pipeline(GeoFeatures, estimator)``. For one row,
the sklearn wrapper around LightGBM costs more than the trees (STACK-NOTES: ~1.2 ms of
parameter handling vs 0.23 ms of prediction), so a LightGBM model is called through its
booster on a numpy matrix with an explicit thread count for batches, and one row goes
through ``GeoFeatures.transform_row`` (plain floats) and LightGBM's single-row fast path
(a prediction context prepared once per model, not per call). Any other estimator goes
through ``Pipeline.predict``. The answers are the same either way; tests hold the paths
equal on every row of the data.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from housing.explainer import Explainer
from housing.pipelines.data_processing.features import FEATURES
from housing.serving.compiled import CompiledTrees, TreeCompiler
from housing.serving.tree_tables import TreeTables

logger = logging.getLogger(__name__)

_METRIC_TAGS = ("test_rmse", "test_mae", "test_r2", "cv_rmse")


def _through(steps: list[Callable], trees: Callable) -> Callable:
    """``trees`` after the feature steps, without ``Pipeline``'s per-call overhead; the
    arguments after the first (a thread count) go to ``trees``."""

    def run(x, *args):
        for step in steps:
            x = step(x)
        return trees(x, *args)

    return run


def _fast_predict(pipeline: Pipeline) -> Callable[[np.ndarray, int], np.ndarray]:
    estimator = pipeline[-1]
    booster = getattr(estimator, "booster_", None)
    if booster is not None:
        return _through(
            [step.transform for _, step in pipeline.steps[:-1]],
            lambda Z, threads: booster.predict(Z, num_threads=threads),
        )
    if hasattr(estimator, "n_jobs"):
        estimator.n_jobs = 1  # a joblib pool per request costs more than a small forest
    return lambda X, _threads: pipeline.predict(X)


class SingleRowBooster:
    """LightGBM's ``LGBM_BoosterPredictForMatSingleRowFast``: the booster's configuration
    is parsed once here, so a call is the trees and one ctypes hop (~30 µs less than
    ``Booster.predict``, which re-reads its parameters and converts the matrix each time).
    Same iterations as ``Booster.predict`` (the best one when early stopping set it)."""

    def __init__(self, booster: Any, n_features: int) -> None:
        from lightgbm.basic import (  # noqa: PLC0415
            _C_API_DTYPE_FLOAT64,
            _C_API_PREDICT_NORMAL,
            _LIB,
            _c_str,
            _safe_call,
        )

        self._booster = booster  # the handle below points into it: keep it alive
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(_C_API_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(booster.best_iteration if booster.best_iteration > 0 else -1),
                ctypes.c_int(_C_API_DTYPE_FLOAT64),
                ctypes.c_int32(n_features),
                _c_str("num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        weakref.finalize(self, _LIB.LGBM_FastConfigFree, self._config)
        self._call = _LIB.LGBM_BoosterPredictForMatSingleRowFast
        self._check = _safe_call
        self._row = ctypes.c_double * n_features
        self._lock = threading.Lock()  # one prediction context: one caller at a time

    def __call__(self, features: Sequence[float]) -> float:
        out, out_len = ctypes.c_double(), ctypes.c_int64()
        with self._lock:
            self._check(
                self._call(self._config, self._row(*features), ctypes.byref(out_len), ctypes.byref(out))
            )
        return out.value


def _fast_row(pipeline: Pipeline) -> Callable | None:
    """One raw row -> one price by plain floats and LightGBM's single-row path, when every
    step has one (``None`` otherwise: the matrix path on a one-row matrix)."""
    transforms = [step for _, step in pipeline.steps[:-1]]
    booster = getattr(pipeline[-1], "booster_", None)
    if booster is not None and all(hasattr(t, "transform_row") for t in transforms):
        return _through(
            [t.transform_row for t in transforms], SingleRowBooster(booster, booster.num_feature())
        )
    return None


@dataclass
class ServingModel:
    """One registry version, immutable in what it answers: requests take one reference
    and use it to the end, so a hot swap never serves half of one model and half of
    another. Only how its trees are walked may change (booster, then compiled), never
    the numbers."""

    name: str
    version: int
    alias: str
    pipeline: Pipeline
    run_id: str | None = None
    candidate: str | None = None
    registered_at: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    explain_rows: bool = True
    _predict: Callable[[np.ndarray, int], np.ndarray] = field(init=False, repr=False)
    _predict_row: Callable[[Sequence[float]], float] = field(init=False, repr=False)
    row_path: str = field(init=False, default="matrix")  # "fast": features by row + single-row trees
    explainer: Any = field(init=False, repr=False, default=None)
    explainer_error: str | None = field(init=False, default=None)
    trees: str = field(init=False, default="")  # what walks the trees now, for GET /model

    def __post_init__(self) -> None:
        self._predict = _fast_predict(self.pipeline)
        fast = _fast_row(self.pipeline)
        self.row_path = "fast" if fast else "matrix"
        self._predict_row = fast or (
            lambda row: float(self._predict(np.array([row], dtype=np.float64), 1)[0])
        )
        booster = getattr(self.pipeline[-1], "booster_", None)
        self.trees = (
            f"LightGBM booster ({booster.num_trees()} trees)" if booster else type(self.pipeline[-1]).__name__
        )
        if self.explain_rows:
            # built with the model (seconds for a big forest), so a swap brings both at once
            try:
                self.explainer = Explainer(self.pipeline)
            except (TypeError, ValueError) as exc:  # e.g. a linear model needs background rows
                self.explainer_error = f"{type(exc).__name__}: {exc}"

    def compile_trees(self, compiler: TreeCompiler) -> None:
        """Start preparing native trees in the background (a LightGBM model on the fast row
        path only): the tree tables take rows and batches within a second or so; a model
        they cannot hold (or ``tables: false``) gets the compiled library once it is built.
        Either only after answering exactly as the booster. The callbacks hold this model
        weakly: a reload that replaces it frees it at once."""
        if self.row_path != "fast":
            return
        transforms = [step for _, step in self.pipeline.steps[:-1]]
        by_row = [t.transform_row for t in transforms]
        by_matrix = [t.transform for t in transforms]
        me = weakref.ref(self)
        # GET /model's ``trees``: what walks them now, then what is being prepared or why not
        status = {"now": self.trees, "tables": "", "library": ""}

        def show(**parts: str) -> ServingModel | None:
            model = me()
            if model is not None:
                status.update(parts)
                model.trees = "; ".join(part for part in status.values() if part)
            return model

        def tables(found: TreeTables | str) -> None:
            if isinstance(found, str):  # why not: the compiled library follows
                show(tables=found, library="compiled trees in preparation")
            elif model := show(now=repr(found), tables="", library=""):
                # one reference each: a request sees the old or the new path, both exact
                model._predict_row = _through(by_row, found.predict_row)
                features = _through(by_matrix, lambda Z: Z)
                model._predict = lambda X, _threads: found.predict(X, features)

        def ready(trees: CompiledTrees) -> None:
            model = show(now=f"compiled trees ({trees.path.name})", library="")
            if model is None:
                return
            model._predict_row = _through(by_row, trees.predict_row)
            model._predict = _through(by_matrix, lambda Z, _threads: trees.predict(Z))
            logger.info("%s version %s: trees compiled, %s", model.name, model.version, trees.path)

        if compiler.settings.tables:
            show(tables="tree tables in preparation")
        else:
            show(library="compiled trees in preparation")
        identity = (self.name, self.version, self.run_id) if self.run_id else None
        compiler.start(
            self.pipeline[-1].booster_,
            ready,
            lambda note: show(library=note),
            identity,
            on_tables=tables,
        )

    @classmethod
    def from_champion(cls, champion: dict[str, Any], compiler: TreeCompiler | None = None) -> ServingModel:
        """From what the catalog's ``current_champion`` entry loads; with a ``compiler``,
        native trees follow in the background."""
        tags = champion.get("tags") or {}
        model = cls(
            name=champion["name"],
            version=int(champion["version"]),
            alias=champion["alias"],
            pipeline=champion["model"],
            run_id=champion.get("run_id"),
            candidate=tags.get("candidate"),
            registered_at=champion.get("registered_at"),
            metrics={k: float(tags[k]) for k in _METRIC_TAGS if k in tags},
        )
        if compiler is not None:
            model.compile_trees(compiler)
        return model

    def explain(self, X: np.ndarray) -> tuple[float, pd.Series]:
        """SHAP base value and per-feature contributions of one raw row."""
        base, contributions = self.explainer.explain(pd.DataFrame(X, columns=list(FEATURES)))
        return float(base), contributions.iloc[0]

    def predict(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """Predict raw feature rows (numpy, in ``FEATURES`` order)."""
        return self._predict(X, threads)

    def predict_row(self, row: Sequence[float]) -> float:
        """Predict one raw row (``FEATURES`` order): the per-request path."""
        return self._predict_row(row)
