"""SHAP explanations of a fitted model: values, importance tables and figures.

Pure functions and one small class: fitted models and DataFrames in, tables and bare
matplotlib Figures out; the catalog writes them to data/08_reporting/shap and to MLflow.
The explainer core (``explainer.py``) is what the HTTP API reuses for one row.

SHAP values are additive: base value + sum of one row's contributions = that row's
prediction. That is what makes summing engineered features into groups a person
understands ("Location") valid, and it is checked, not assumed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from housing.explainer import (
    ADDITIVITY_RTOL,
    SHAP_UNIT,
    Explainer,
    additivity_error,
    feature_group,
    feature_unit,
    group_contributions,
    group_members,
    shap_module,
)
from housing.pipelines.data_processing.features import FEATURES

logger = logging.getLogger(__name__)


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
    shap = shap_module()
    contributions = shap_values["contributions"]
    explanation = shap.Explanation(
        values=contributions.to_numpy(),
        base_values=np.full(len(contributions), shap_values["base_value"]),
        data=shap_values["feature_values"].to_numpy(),
        feature_names=list(contributions.columns),
    )
    # a bare Figure (no pyplot): nothing global to leak or close
    from matplotlib.figure import Figure  # noqa: PLC0415 (the API imports this module, never draws)

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
    from matplotlib.figure import Figure  # noqa: PLC0415 (the API imports this module, never draws)

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
    shap = shap_module()
    contributions = shap_values["contributions"]
    values = shap_values["feature_values"]
    names = list(features["feature"].head(top_n))
    from matplotlib.figure import Figure  # noqa: PLC0415 (the API imports this module, never draws)

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
