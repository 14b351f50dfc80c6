"""The model being served, and its fast path.

The registered model is a scikit-learn ``Pipeline(GeoFeatures, estimator)``. For one row,
the sklearn wrapper around LightGBM costs more than the trees (STACK-NOTES: ~1.2 ms of
parameter handling vs 0.23 ms of prediction), so a LightGBM model is called through its
booster on a numpy matrix with an explicit thread count: one thread for single rows (no
pool wake-up), more for batches. Any other estimator goes through ``Pipeline.predict``.
The answers are the same either way; a test holds the two paths equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from housing.explainer import Explainer
from housing.pipelines.data_processing.features import FEATURES

_METRIC_TAGS = ("test_rmse", "test_mae", "test_r2", "cv_rmse")


def _fast_predict(pipeline: Pipeline) -> Callable[[np.ndarray, int], np.ndarray]:
    transforms = [step.transform for _, step in pipeline.steps[:-1]]  # no Pipeline overhead
    estimator = pipeline[-1]
    booster = getattr(estimator, "booster_", None)
    if booster is not None:

        def predict(X: np.ndarray, threads: int) -> np.ndarray:
            for transform in transforms:
                X = transform(X)
            return booster.predict(X, num_threads=threads)

        return predict
    if hasattr(estimator, "n_jobs"):
        estimator.n_jobs = 1  # a joblib pool per request costs more than a small forest
    return lambda X, _threads: pipeline.predict(X)


@dataclass
class ServingModel:
    """An immutable snapshot: requests take one reference and use it to the end, so a
    hot swap never serves half of one model and half of another."""

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
    explainer: Any = field(init=False, repr=False, default=None)
    explainer_error: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._predict = _fast_predict(self.pipeline)
        if self.explain_rows:
            # built with the model (seconds for a big forest), so a swap brings both at once
            try:
                self.explainer = Explainer(self.pipeline)
            except (TypeError, ValueError) as exc:  # e.g. a linear model needs background rows
                self.explainer_error = f"{type(exc).__name__}: {exc}"

    @classmethod
    def from_champion(cls, champion: dict[str, Any]) -> ServingModel:
        """From what the catalog's ``current_champion`` entry loads."""
        tags = champion.get("tags") or {}
        return cls(
            name=champion["name"],
            version=int(champion["version"]),
            alias=champion["alias"],
            pipeline=champion["model"],
            run_id=champion.get("run_id"),
            candidate=tags.get("candidate"),
            registered_at=champion.get("registered_at"),
            metrics={k: float(tags[k]) for k in _METRIC_TAGS if k in tags},
        )

    def explain(self, X: np.ndarray) -> tuple[float, pd.Series]:
        """SHAP base value and per-feature contributions of one raw row."""
        base, contributions = self.explainer.explain(pd.DataFrame(X, columns=list(FEATURES)))
        return float(base), contributions.iloc[0]

    def predict(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """Predict raw feature rows (numpy, in ``FEATURES`` order)."""
        return self._predict(X, threads)
