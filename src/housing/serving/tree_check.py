"""The check every native path passes before it serves: the booster's answers, to 1e-9,
on rows whose values sit on, just below and just above the trees' split thresholds (where
a native comparison could disagree with LightGBM's, if anywhere), as a batch and one row
at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _thresholds(text: str, n_features: int) -> list[list[float]]:
    """Each feature's split thresholds, read from the model text (``dump_model`` would
    build a JSON tree of every node first)."""
    thresholds: list[list[float]] = [[] for _ in range(n_features)]
    features: list[str] = []
    for line in text.splitlines():
        if line.startswith("split_feature="):
            features = line[len("split_feature=") :].split()
        elif line.startswith("threshold="):
            for feature, value in zip(features, line[len("threshold=") :].split(), strict=True):
                thresholds[int(feature)].append(float(value))
    return thresholds


def threshold_rows(text: str, n_features: int, n: int = 2_000, seed: int = 0) -> np.ndarray:
    """Rows whose values sit on, just below and just above the trees' split thresholds:
    where a native comparison could disagree with LightGBM's, if anywhere."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, n_features))
    for j, values in enumerate(_thresholds(text, n_features)):
        if not values:
            continue
        base = np.asarray(values)
        # zero: LightGBM may treat it as missing (missing_type Zero), and the API accepts it;
        # all-ones low bits: what tl2cgen's runtime takes for a missing value
        ones = (base.view(np.uint64) | np.uint64(0xFFFFFFFF)).view(np.float64)
        pool = np.concatenate([base, np.nextafter(base, -np.inf), np.nextafter(base, np.inf), ones, [0.0]])
        rows[:, j] = rng.choice(pool, size=n)
    return rows


def same_answers(predict: Callable[[np.ndarray], np.ndarray], booster: Any, text: str, what: object) -> None:
    """``ValueError`` unless ``predict`` answers as the booster, to 1e-9, on rows that sit
    on every split threshold."""
    rows = threshold_rows(text, booster.num_feature())
    worst = float(np.abs(predict(rows) - booster.predict(rows, num_threads=1)).max())
    if worst > 1e-9:
        raise ValueError(f"{what} differs from the booster by up to {worst:.3g}: not used")


def one_by_one(predict_row: Callable[[Sequence[float]], float]) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rows: np.array([predict_row(row) for row in rows.tolist()])
