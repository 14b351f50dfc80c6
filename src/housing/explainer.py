"""The SHAP explainer core: feature groups, units and ``Explainer`` for one or many rows.

No plotting here: the HTTP API imports this module to explain one house, and an API
process has no use for matplotlib. Building an ``Explainer`` (parsing the trees) is the
slow part, so it is separate from explaining.

SHAP values are additive: base value + sum of one row's contributions = that row's
prediction. That is what makes summing engineered features into groups a person
understands ("Location") valid, and it is checked, not assumed.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from housing.contract import FEATURES

logger = logging.getLogger(__name__)

SHAP_UNIT = "contribution to MedHouseVal ($100,000s)"
ADDITIVITY_RTOL = 1e-6

# Engineered feature name patterns -> the group a person reasons about. The first match
# wins; a feature that matches nothing is its own group, so a new feature is never lost.
GROUP_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Location",
        (
            "Latitude",
            "Longitude",
            "RotX*",
            "RotY*",
            "KmTo*",
            "LocationCluster",
            "Neighbour*",
        ),
    ),
    ("Rooms & bedrooms", ("BedrmsPerRoom", "RoomsPerPerson")),
    ("Households", ("LogHouseholds",)),
)

# Axis labels for dependence plots: what one unit of each feature means.
FEATURE_UNITS: tuple[tuple[str, str], ...] = (
    ("MedInc", "median income, $10,000s"),
    ("HouseAge", "median house age, years"),
    ("AveRooms", "rooms per household"),
    ("AveBedrms", "bedrooms per household"),
    ("Population", "people in the block group"),
    ("AveOccup", "people per household"),
    ("Latitude", "degrees north"),
    ("Longitude", "degrees east"),
    ("BedrmsPerRoom", "bedrooms per room"),
    ("RoomsPerPerson", "rooms per person"),
    ("LogHouseholds", "log(1 + households)"),
    ("Rot*", "degrees along a rotated axis"),
    ("KmTo*", "km"),
    ("LocationCluster", "cluster id"),
    ("NeighbourKmMax", "km to the farthest of the nearest districts"),
    ("NeighbourPrice*", "nearest districts' MedHouseVal, $100,000s"),
)


def shap_module():
    """Import shap on first use: it costs seconds, and every ``kedro`` command imports
    the pipeline registry (hence this module) whether or not it explains anything."""
    import shap  # noqa: PLC0415

    return shap


# -- groups ----------------------------------------------------------------------------
def feature_group(feature: str) -> str:
    for group, patterns in GROUP_PATTERNS:
        if any(fnmatchcase(feature, p) for p in patterns):
            return group
    return feature


def feature_groups(features) -> dict[str, str]:
    """``{feature: group}`` in feature order (groups appear in order of first feature)."""
    return {str(f): feature_group(str(f)) for f in features}


def feature_unit(feature: str) -> str:
    for pattern, unit in FEATURE_UNITS:
        if fnmatchcase(feature, pattern):
            return unit
    return "feature value"


def group_members(features) -> dict[str, list[str]]:
    """``{group: [features]}``, groups in order of their first feature."""
    members: dict[str, list[str]] = {}
    for feature, group in feature_groups(features).items():
        members.setdefault(group, []).append(feature)
    return members


def group_contributions(contributions: pd.DataFrame) -> pd.DataFrame:
    """Per-row SHAP values summed within each group (valid because SHAP is additive)."""
    values = contributions.to_numpy()
    position = {str(f): i for i, f in enumerate(contributions.columns)}
    return pd.DataFrame(
        {
            group: values[:, [position[f] for f in features]].sum(axis=1)
            for group, features in group_members(contributions.columns).items()
        },
        index=contributions.index,
    )


# -- the explainer ---------------------------------------------------------------------
class Explainer:
    """SHAP for a fitted ``Pipeline([..., ("model", estimator)])`` that takes raw rows.

    Rows go through every step but the last, then the estimator is explained on the
    engineered features: exact TreeSHAP for tree ensembles (LightGBM, forests, gradient
    boosting), the closed form for linear models, and a permutation estimate (exact in
    sum, slower, and its first call spends seconds compiling numba code) for anything
    else. LightGBM computes TreeSHAP itself (``pred_contrib``), so explaining it needs
    neither shap nor a tree-parsing build step. Build it once; ``explain`` is then one pass over the
    trees per row. ``background`` (raw rows) is the reference a linear or generic model
    is explained against; tree models ignore it and use the training data the trees
    recorded (path-dependent TreeSHAP, no background needed and much faster).
    """

    def __init__(
        self,
        model: Pipeline,
        background: pd.DataFrame | None = None,
        max_background: int = 200,
        seed: int = 0,
    ):
        if not isinstance(model, Pipeline) or len(model) < 2:
            raise TypeError(
                "Explainer expects a fitted scikit-learn Pipeline of transformer(s) "
                f"followed by an estimator, got {type(model).__name__}"
            )
        self.model = model
        self.transform = model[:-1]
        self.estimator = model[-1]
        self.feature_names = [str(f) for f in self.transform.get_feature_names_out()]
        # plots want the engineered features in their own units (km, $), not the
        # standardised values a scaler feeds a linear model; same columns either way
        first = model[:1]
        self._display = (
            first if len(first.get_feature_names_out()) == len(self.feature_names) else self.transform
        )

        booster = getattr(self.estimator, "booster_", None)
        if booster is not None and hasattr(booster, "predict"):
            # LightGBM computes the same path-dependent TreeSHAP itself: nothing to parse
            # at build time (a hot reload stays cheap) and no shap import in the API
            self.kind, self._explainer = "lightgbm", booster
            return
        shap = shap_module()
        if hasattr(self.estimator, "coef_") and hasattr(self.estimator, "intercept_"):
            self.kind = "linear"
            self._explainer = shap.LinearExplainer(
                self.estimator,
                shap.maskers.Independent(
                    self._background(background, max_background, seed),
                    max_samples=max_background,
                ),
            )
            return
        try:
            self._explainer = shap.TreeExplainer(self.estimator)
            self.kind = "tree"
        except ValueError:  # shap's InvalidModelError: not a tree model it knows
            self.kind = "permutation"
            masker = shap.maskers.Independent(
                self._background(background, max_background, seed),
                max_samples=max_background,
            )
            self._explainer = shap.explainers.PermutationExplainer(self.estimator.predict, masker, seed=seed)

    def _background(self, background: pd.DataFrame | None, max_rows: int, seed: int) -> np.ndarray:
        if background is None or len(background) == 0:
            raise ValueError(
                f"a {type(self.estimator).__name__} is explained against background "
                "rows: pass Explainer(model, background=<raw feature rows>)"
            )
        if len(background) > max_rows:
            background = background.sample(max_rows, random_state=seed)
        return np.asarray(self.transform.transform(background.loc[:, list(FEATURES)]), dtype=float)

    def explain(self, X_raw: pd.DataFrame) -> tuple[float, pd.DataFrame]:
        """``(base value, contributions)``: one column per engineered feature, in the
        units of the prediction; ``base + contributions.sum(axis=1)`` is the prediction.
        """
        Xt = np.asarray(self.transform.transform(X_raw), dtype=float)
        if self.kind == "lightgbm":
            contributions = self._explainer.predict(Xt, pred_contrib=True)
            values, base = contributions[:, :-1], contributions[0, -1]
        elif self.kind == "tree":
            # additivity is checked by the caller that cares (tests, the pipeline); here
            # it would cost a second prediction on every request
            values = self._explainer.shap_values(Xt, check_additivity=False)
            base = self._explainer.expected_value
        elif self.kind == "linear":
            values = self._explainer.shap_values(Xt)
            base = self._explainer.expected_value
        else:
            explanation = self._explainer(Xt, silent=True)
            values, base = explanation.values, explanation.base_values
        index = X_raw.index if isinstance(X_raw, pd.DataFrame) else None
        return float(np.ravel(base)[0]), pd.DataFrame(
            np.asarray(values, dtype=float), columns=self.feature_names, index=index
        )

    def feature_values(self, X_raw: pd.DataFrame) -> pd.DataFrame:
        """The engineered features in their own units, aligned with ``explain``."""
        index = X_raw.index if isinstance(X_raw, pd.DataFrame) else None
        return pd.DataFrame(
            np.asarray(self._display.transform(X_raw), dtype=float),
            columns=self.feature_names,
            index=index,
        )


def explain(
    model: Pipeline, X_raw: pd.DataFrame, background: pd.DataFrame | None = None
) -> tuple[float, pd.DataFrame]:
    """One-off explanation; to explain request after request, keep an ``Explainer``."""
    return Explainer(model, background=background).explain(X_raw)


def additivity_error(base_value: float, contributions: pd.DataFrame, predictions) -> float:
    """Largest relative gap between base + sum of contributions and the prediction."""
    predictions = np.asarray(predictions, dtype=float)
    reconstructed = base_value + contributions.to_numpy().sum(axis=1)
    scale = np.maximum(np.abs(predictions), 1.0)
    return float(np.max(np.abs(reconstructed - predictions) / scale))


# -- nodes -----------------------------------------------------------------------------
