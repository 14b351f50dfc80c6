"""SHAP explanations of a fitted model: values, importance tables and figures.

Pure functions and one small class: fitted models and DataFrames in, tables and bare
matplotlib Figures out; the catalog writes them to data/08_reporting/shap and to MLflow.
``Explainer`` is also what the HTTP API reuses for one row, so building it (parsing the
trees, which is the slow part) is separate from explaining.

SHAP values are additive: base value + sum of one row's contributions = that row's
prediction. That is what makes summing engineered features into groups a person
understands ("Location") valid, and it is checked, not assumed.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatchcase
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.pipeline import Pipeline

from housing.pipelines.data_processing.features import FEATURES

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


def _shap():
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
    else. Build it once; ``explain`` is then one pass over the
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
        shap = _shap()
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
        if self.kind == "tree":
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
def sample_rows(test: pd.DataFrame, sample_size: int, seed: int) -> pd.DataFrame:
    """The same seeded rows of the test set every run, so plots compare across runs."""
    n = min(int(sample_size), len(test))
    return test.sample(n=n, random_state=seed).loc[:, list(FEATURES)]


def compute_shap_values(best: dict[str, Any], sample: pd.DataFrame) -> dict[str, Any]:
    """SHAP values of the best candidate on the sample, with its additivity verified.

    The sample doubles as the background for models that need one (linear, generic):
    their base value is then the mean prediction over these rows.
    """
    model = best["model"]
    explainer = Explainer(model, background=sample)
    base_value, contributions = explainer.explain(sample)
    error = additivity_error(base_value, contributions, model.predict(sample))
    log = logger.info if error <= ADDITIVITY_RTOL else logger.warning
    log(
        "SHAP (%s explainer) of %s on %d rows: base value %.4f, largest additivity "
        "error %.2e (tolerance %.0e)",
        explainer.kind,
        best["candidate"],
        len(sample),
        base_value,
        error,
        ADDITIVITY_RTOL,
    )
    return {
        "candidate": best["candidate"],
        "explainer": explainer.kind,
        "base_value": base_value,
        "contributions": contributions,
        "feature_values": explainer.feature_values(sample),
        "additivity_error": error,
    }


def _importance(contributions: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "mean_abs_shap": contributions.abs().mean(),
            "mean_shap": contributions.mean(),
        }
    )
    table["share"] = table["mean_abs_shap"] / table["mean_abs_shap"].sum()
    return table.sort_values("mean_abs_shap", ascending=False, kind="stable")


def shap_importance(shap_values: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean |SHAP| per engineered feature and per group, largest first.

    A group's value is the mean of |sum of its features' SHAP| per row, not the sum of
    their mean |SHAP|: features of one group that push in opposite directions cancel,
    as they do in the prediction.
    """
    contributions = shap_values["contributions"]
    features = _importance(contributions).rename_axis("feature").reset_index()
    features.insert(1, "group", features["feature"].map(feature_group))

    members = group_members(contributions.columns)
    by_group = _importance(group_contributions(contributions))
    by_group = by_group.rename_axis("group").reset_index()
    by_group["n_features"] = by_group["group"].map(lambda g: len(members[g]))
    by_group["features"] = by_group["group"].map(lambda g: " ".join(members[g]))
    return features, by_group


def _title(shap_values: dict[str, Any]) -> str:
    n = len(shap_values["contributions"])
    return f"{shap_values['candidate']} model, {n:,} test-set districts"


def plot_shap_summary(shap_values: dict[str, Any], max_display: int) -> Figure:
    """Beeswarm: per feature, every row's contribution, coloured by the feature value."""
    shap = _shap()
    contributions = shap_values["contributions"]
    explanation = shap.Explanation(
        values=contributions.to_numpy(),
        base_values=np.full(len(contributions), shap_values["base_value"]),
        data=shap_values["feature_values"].to_numpy(),
        feature_names=list(contributions.columns),
    )
    # a bare Figure (no pyplot): nothing global to leak or close
    fig = Figure(figsize=(9, 0.42 * (max_display + 1) + 1.8), dpi=110)
    ax = fig.subplots()
    shap.plots.beeswarm(explanation, max_display=max_display, ax=ax, show=False, plot_size=None)
    ax.set_xlabel(f"SHAP value: {SHAP_UNIT}", fontsize=11)
    ax.set_ylabel("engineered feature (most important first)", fontsize=11)
    ax.tick_params("y", labelsize=10)
    ax.set_title(f"What drives predictions: {_title(shap_values)}", fontsize=12)
    fig.tight_layout()
    return fig


def _barh(ax, table: pd.DataFrame, label: str, colour: str) -> None:
    y = np.arange(len(table))
    ax.barh(y, table["mean_abs_shap"], color=colour)
    for yi, value in zip(y, table["mean_abs_shap"], strict=True):
        ax.text(value, yi, f" {value:.3f}", va="center", fontsize=8)
    ax.set_yticks(y, table[label])
    ax.invert_yaxis()
    ax.set_xlim(0, table["mean_abs_shap"].max() * 1.18)
    ax.set_xlabel(f"mean |SHAP value|: {SHAP_UNIT}")


def plot_shap_importance(
    shap_values: dict[str, Any],
    features: pd.DataFrame,
    groups: pd.DataFrame,
    max_display: int,
) -> Figure:
    """Mean |SHAP| per group (what a person reads) beside the top engineered features."""
    top = features.head(max_display)
    fig = Figure(figsize=(13, 0.32 * max(len(top), len(groups)) + 2.2), dpi=110)
    by_group, by_feature = fig.subplots(1, 2)
    _barh(by_group, groups, "group", "#3182bd")
    by_group.set_ylabel("feature group")
    by_group.set_title("By feature group (SHAP summed within the group)")
    _barh(by_feature, top, "feature", "#9ecae1")
    by_feature.set_ylabel("engineered feature")
    by_feature.set_title(f"Top {len(top)} of {len(features)} engineered features")
    fig.suptitle(f"Mean |SHAP| importance: {_title(shap_values)}")
    fig.tight_layout()
    return fig


def plot_shap_dependence(shap_values: dict[str, Any], features: pd.DataFrame, top_n: int) -> Figure:
    """Contribution against value for the top features, coloured by the feature that
    seems to interact most with each (shap's ``approximate_interactions``)."""
    shap = _shap()
    contributions = shap_values["contributions"]
    values = shap_values["feature_values"]
    names = list(features["feature"].head(top_n))
    fig = Figure(figsize=(5.2 * len(names), 4.6), dpi=110)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        x, phi = values[name].to_numpy(), contributions[name].to_numpy()
        partner = contributions.columns[
            shap.utils.approximate_interactions(
                name, contributions.to_numpy(), values.to_numpy(), list(values.columns)
            )[0]
        ]
        colour = values[partner].to_numpy()
        low, high = np.nanpercentile(colour, [5, 95])
        points = ax.scatter(x, phi, c=colour, cmap="coolwarm", vmin=low, vmax=high, s=10, alpha=0.8)
        fig.colorbar(points, ax=ax, aspect=40).set_label(f"{partner} ({feature_unit(partner)})", fontsize=8)
        ax.axhline(0, color="#999999", linewidth=0.8, zorder=0)
        # a few extreme districts (AveOccup reaches ~1,200) would squash the rest
        lo, hi = np.nanpercentile(x, [0.5, 99.5])
        pad = (hi - lo) * 0.03 or 1.0
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_xlabel(f"{name} ({feature_unit(name)})")
        ax.set_ylabel(f"SHAP value: {SHAP_UNIT}", fontsize=9)
        ax.set_title(name)
    fig.suptitle(
        f"Dependence of the top {len(names)} features: {_title(shap_values)} (x axis: 0.5-99.5th percentile)"
    )
    fig.tight_layout()
    return fig
