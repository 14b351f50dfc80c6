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
from sklearn.pipeline import Pipeline

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
    _predict: Callable[[np.ndarray, int], np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._predict = _fast_predict(self.pipeline)

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

    def predict(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """Predict raw feature rows (numpy, in ``FEATURES`` order)."""
        return self._predict(X, threads)
