"""How the API's answers read to a person: dollars, contributions, the drift verdict.

Plain functions on the API's JSON, no Streamlit and no HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from housing.ui.client import join
from housing.ui.fields import plain_name

DOLLARS_PER_UNIT = 100_000  # the API's predictions, contributions and errors are in $100,000s


def format_usd(value: float) -> str:
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def signed_usd(value: float) -> str:
    return f"+{format_usd(value)}" if value >= 0 else format_usd(value)


def contribution_rows(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{name, value}]`` (SHAP, $100,000s, largest first) -> rows for a chart in dollars,
    in the API's order."""
    rows = []
    for rank, item in enumerate(items):
        dollars = float(item["value"]) * DOLLARS_PER_UNIT
        rows.append(
            {
                "rank": rank,
                "name": plain_name(str(item["name"])),
                "feature": str(item["name"]),
                "dollars": round(dollars, 2),
                "effect": "raises the price" if dollars >= 0 else "lowers the price",
                "label": signed_usd(dollars),
            }
        )
    return rows


def drift_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-column table: drifted columns first, then by score."""
    rows = [
        {
            "column": str(c.get("column")),
            "drifted": "yes" if c.get("drifted") else "no",
            "score": c.get("score"),
            "threshold": c.get("threshold"),
            "method": c.get("method"),
        }
        for c in summary.get("columns") or []
    ]
    return sorted(rows, key=lambda r: (r["drifted"] != "yes", -(r["score"] or 0)))


def drift_headline(summary: Mapping[str, Any]) -> dict[str, str]:
    columns = summary.get("columns") or []
    drifted = summary.get("n_drifted_columns")
    if not isinstance(drifted, int):
        drifted = sum(bool(c.get("drifted")) for c in columns)
    share = summary.get("drift_share")
    share_text = f"{share:.0%}" if isinstance(share, int | float) else "?"
    return {
        "Dataset drift": "Yes" if summary.get("dataset_drift") else "No",
        "Drifted columns": f"{drifted} of {len(columns)} ({share_text})",
        "Reference rows": _count(summary.get("n_reference")),
        "Production rows": _count(summary.get("n_current")),
    }


def drift_notes(summary: Mapping[str, Any]) -> list[str]:
    """What the verdict rests on: the rule, the production window, the versions served."""
    notes = []
    threshold = summary.get("drift_share_threshold")
    if isinstance(threshold, int | float):
        notes.append(f"Dataset drift is declared when at least {threshold:.0%} of the columns drift.")
    window = summary.get("window") or {}
    if window.get("from") or window.get("to"):
        notes.append(f"Production rows from {window.get('from', '?')} to {window.get('to', '?')}.")
    versions = summary.get("model_versions") or {}
    if versions:
        served = ", ".join(
            f"version {version} ({_count(rows)} rows)"
            for version, rows in sorted(versions.items(), key=lambda item: -_number(item[1]))
        )
        notes.append(f"Served by {served}.")
    generated = summary.get("generated_at")
    if generated:
        notes.append(f"Report generated at {generated}.")
    return notes


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def units_and_dollars(value: Any) -> str:
    """An error in the API's unit and in dollars: ``0.520 ($52,000)``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "?"
    return f"{value:.3f} ({format_usd(value * DOLLARS_PER_UNIT)})"


def error_rows(
    performance: Mapping[str, Any], test_metrics: Mapping[str, Any] | None
) -> list[dict[str, str]]:
    """The model's error on labelled production rows beside its error on the test set
    (GET /model's ``metrics``), in $100,000s and in dollars; R² has no unit."""
    test_metrics = test_metrics or {}

    def r2(value: Any) -> str:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return f"{value:.3f}" if ok else "?"

    return [
        {
            "error": "RMSE",
            "production": units_and_dollars(performance.get("rmse")),
            "test set": units_and_dollars(test_metrics.get("test_rmse")),
        },
        {
            "error": "MAE",
            "production": units_and_dollars(performance.get("mae")),
            "test set": units_and_dollars(test_metrics.get("test_mae")),
        },
        {"error": "R²", "production": r2(performance.get("r2")), "test set": r2(test_metrics.get("test_r2"))},
    ]


def labelled_rows(performance: Mapping[str, Any]) -> str:
    return _count(performance.get("n_labelled"))


def _count(value: Any) -> str:
    """A row count; JSON may carry it as 120.0 (the API's performance is a dict of floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "?"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def drift_report_link(public_base: str, summary: Mapping[str, Any]) -> str:
    return join(public_base, summary.get("report_url") or "/monitoring/drift/report")
