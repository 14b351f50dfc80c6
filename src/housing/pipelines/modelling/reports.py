"""The comparison of candidates as people read it: a Markdown table, a chart, and the
metrics kedro-mlflow logs. Pure functions on the comparison table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def comparison_to_markdown(comparison: pd.DataFrame, reference: dict[str, dict[str, float]]) -> str:
    """The comparison as a Markdown table, with the earlier study's table below it."""
    cols = [
        "candidate",
        "cv_rmse",
        "cv_rmse_std",
        "test_rmse",
        "test_mae",
        "test_r2",
        "n_trials",
        "tuning_seconds",
    ]
    lines = [
        "# Candidate models",
        "",
        "Ordered by cross-validated RMSE on the training rows, which chooses the best candidate;",
        "the test columns (the study's fixed 20% split) report, they do not choose.",
        "",
        "| " + " | ".join(cols) + " |",
        "| " + " | ".join("---" for _ in cols) + " |",
    ]
    for row in comparison[cols].itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    lines += [
        "",
        "## Earlier study (scikit-learn defaults, same split)",
        "",
        "| model | rmse | mae | r2 |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {name} | {m['rmse']:.2f} | {m['mae']:.2f} | {m['r2']:.2f} |" for name, m in reference.items()
    ]
    return "\n".join(lines) + "\n"


def plot_comparison(comparison: pd.DataFrame, reference: dict[str, dict[str, float]]) -> Figure:
    """CV RMSE (± std across folds) beside test RMSE, against the earlier study's best."""
    # imported here: the API process imports this module (through the parameter check
    # of every Kedro session) and never draws
    from matplotlib.figure import Figure  # noqa: PLC0415

    # a bare Figure (no pyplot): no global state, no GUI backend, nothing to close
    fig = Figure(figsize=(8, 0.9 * len(comparison) + 1.8), dpi=110)
    ax = fig.subplots()
    y = np.arange(len(comparison))
    ax.barh(
        y - 0.2,
        comparison["cv_rmse"],
        0.4,
        xerr=comparison["cv_rmse_std"],
        label="CV RMSE (train folds)",
        color="#9ecae1",
    )
    ax.barh(y + 0.2, comparison["test_rmse"], 0.4, label="test RMSE", color="#3182bd")
    for yi, value in zip(y, comparison["test_rmse"], strict=True):
        ax.text(value + 0.005, yi + 0.2, f"{value:.3f}", va="center", fontsize=8)
    best_reference = min(m["rmse"] for m in reference.values())
    ax.axvline(
        best_reference,
        color="#d62728",
        linestyle="--",
        label=f"earlier study's best ({best_reference:.2f})",
    )
    ax.set_yticks(y, comparison["candidate"])
    ax.invert_yaxis()
    ax.set_xlabel("RMSE of MedHouseVal (units of $100,000; lower is better)")
    ax.set_title("California Housing: tuned candidates")
    ax.set_xlim(
        0,
        max(comparison["cv_rmse"].max(), comparison["test_rmse"].max(), best_reference) * 1.12,
    )
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    return fig


def comparison_to_mlflow_metrics(
    comparison: pd.DataFrame,
) -> dict[str, dict[str, float]]:
    """``{"<candidate>.<metric>": {"value", "step"}}`` for MlflowMetricsHistoryDataset."""
    metrics = {}
    for row in comparison.to_dict("records"):
        for key, value in row.items():
            if key != "candidate":
                metrics[f"{row['candidate']}.{key}"] = {
                    "value": float(value),
                    "step": 0,
                }
    best = comparison.iloc[0]
    for key in ("test_rmse", "test_mae", "test_r2", "cv_rmse"):
        metrics[f"best.{key}"] = {"value": float(best[key]), "step": 0}
    return metrics
