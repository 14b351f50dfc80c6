"""Drift of production traffic against what the model was trained on. Pure functions:
the prediction log, the training rows and the champion come in through the catalog;
HTML, a JSON summary and MLflow metrics go out through it."""

from __future__ import annotations

import html
import logging
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from housing.errors import HousingError
from housing.pipelines.data_processing.features import FEATURES
from housing.pipelines.modelling.nodes import regression_metrics

logger = logging.getLogger(__name__)

LOG_COLUMNS: tuple[str, ...] = (
    "request_id",
    "created_at",
    "model_version",
    *FEATURES,
    "prediction",
    "actual",
)
DRIFT_COLUMNS: tuple[str, ...] = (*FEATURES, "prediction")


class MonitoringError(HousingError):
    """The production data cannot support the requested analysis; says why and what to do."""


def _window_of_frame(log: pd.DataFrame, window: dict[str, Any]) -> pd.DataFrame:
    missing = [c for c in LOG_COLUMNS if c not in log.columns]
    if missing:
        raise MonitoringError(
            f"the prediction log is missing column(s) {missing}; expected the table the API "
            f"writes, with columns {list(LOG_COLUMNS)}"
        )
    rows = log.sort_values("created_at", kind="stable")
    if window.get("since"):
        rows = rows[rows["created_at"] >= str(window["since"])]
    if window.get("until"):
        rows = rows[rows["created_at"] < str(window["until"])]
    if window.get("last_n"):
        rows = rows.tail(int(window["last_n"]))
    return rows.reset_index(drop=True)


def select_window(log: Any, window: dict[str, Any]) -> pd.DataFrame:
    """The production rows to judge: the last ``last_n`` rows and/or a ``since``/``until``
    time range (ISO 8601, UTC), never fewer than ``min_rows``.

    ``log`` is the catalog's ``PredictionLogTable`` (the window runs as SQL: only its rows
    are read) or a DataFrame of logged rows (filtered here)."""
    if isinstance(log, pd.DataFrame):
        rows, total = _window_of_frame(log, window), len(log)
    else:
        rows = log.window(window.get("last_n"), window.get("since"), window.get("until"))
        total = log.count() if rows.empty else None  # counted only when a message needs it
    if total == 0:
        raise MonitoringError(
            "the prediction log is empty: serve some traffic first (housing simulate "
            "--scenario stable against a running API)"
        )
    need = int(window["min_rows"])
    if len(rows) < need:
        total = log.count() if total is None else total
        raise MonitoringError(
            f"the window holds {len(rows)} production row(s) (of {total} logged); drift needs at "
            f"least {need} (parameters_drift.yml: drift.window.min_rows) - send more traffic or "
            "widen the window"
        )
    logger.info(
        "Drift window: %d production rows from %s to %s", len(rows), *rows["created_at"].iloc[[0, -1]]
    )
    return rows


def _drifted(method: str, score: float, threshold: float) -> bool:
    # statistical tests report p-values (drift when small); distances drift when large
    return score < threshold if "p_value" in method.lower() else score >= threshold


def _column_results(snapshot_dict: dict) -> list[dict[str, Any]]:
    results = []
    for metric in snapshot_dict["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            score, threshold = float(metric["value"]), float(config["threshold"])
            results.append(
                {
                    "column": config["column"],
                    "method": config["method"],
                    "score": score,
                    "threshold": threshold,
                    "drifted": _drifted(config["method"], score, threshold),
                }
            )
    return results


# Each frame takes its report's full height, and follows it as Evidently draws or a reader
# expands a section: a fixed height cut long reports (srcdoc frames are same-origin).
_FIT_FRAMES = """<script>
for (const frame of document.querySelectorAll("iframe")) {
  const fit = () => {
    const body = frame.contentDocument && frame.contentDocument.body;
    if (body) frame.style.height = Math.ceil(body.scrollHeight + 32) + "px";
  };
  const watch = () => { fit(); new ResizeObserver(fit).observe(frame.contentDocument.body); };
  // a frame may have loaded its report before this script runs (until then it holds about:blank)
  const doc = frame.contentDocument;
  if (doc && doc.URL === "about:srcdoc" && doc.readyState === "complete") watch();
  else frame.addEventListener("load", watch);
}
</script>"""


def _page(sections: list[tuple[str, str]]) -> str:
    """One HTML page holding Evidently's reports, each in its own iframe at full height."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>housing: drift report</title>",
        "<style>body{font-family:sans-serif;margin:1.5em}iframe{width:100%;height:900px;border:0}</style>",
        "</head><body>",
    ]
    for title, report_html in sections:
        parts.append(
            f'<h1>{html.escape(title)}</h1><iframe srcdoc="{html.escape(report_html, quote=True)}"></iframe>'
        )
    parts.append(_FIT_FRAMES)
    parts.append("</body></html>")
    return "\n".join(parts)


def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, drift: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, dict[str, float]]]:
    """Evidently's data-drift preset on the inputs and predictions; where production rows
    carry ground truth, the model's error on them and Evidently's regression preset.

    Returns the HTML report, a JSON-able summary and MLflow metrics.
    """
    from evidently import DataDefinition, Dataset, Regression, Report  # noqa: PLC0415
    from evidently.presets import DataDriftPreset, RegressionPreset  # noqa: PLC0415

    columns = list(DRIFT_COLUMNS)
    share_needed = float(drift["drift_share"])
    snapshot = Report([DataDriftPreset(columns=columns, drift_share=share_needed)]).run(
        reference_data=reference[columns], current_data=current[columns]
    )
    column_results = _column_results(snapshot.dict())
    n_drifted = sum(r["drifted"] for r in column_results)
    share = n_drifted / len(column_results)
    sections = [
        ("Data drift: production inputs and predictions vs training", snapshot.get_html_str(as_iframe=False))
    ]

    labelled = current[current["actual"].notna()]
    performance = None
    if len(labelled) >= int(drift["min_labelled_rows"]):
        performance = {
            **regression_metrics(labelled["actual"].to_numpy(), labelled["prediction"].to_numpy()),
            "n_labelled": len(labelled),
            # out-of-fold error on the training rows: what the model's error was when it was fitted
            "reference_rmse": regression_metrics(reference["actual"], reference["prediction"])["rmse"],
        }
        definition = DataDefinition(
            numerical_columns=columns, regression=[Regression(target="actual", prediction="prediction")]
        )
        regression = Report([RegressionPreset()]).run(
            reference_data=Dataset.from_pandas(reference[[*columns, "actual"]], data_definition=definition),
            current_data=Dataset.from_pandas(labelled[[*columns, "actual"]], data_definition=definition),
        )
        sections.append(
            ("Model performance on labelled production rows", regression.get_html_str(as_iframe=False))
        )

    summary = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset_drift": share >= share_needed,
        "drift_share": share,
        "drift_share_threshold": share_needed,
        "n_drifted_columns": n_drifted,
        "n_reference": len(reference),
        "n_current": len(current),
        "window": {"from": str(current["created_at"].iloc[0]), "to": str(current["created_at"].iloc[-1])},
        "model_versions": {str(k): int(v) for k, v in current["model_version"].value_counts().items()},
        "columns": column_results,
        "performance": performance,
        # prices can move where inputs do not (a regional change): labels show it
        "performance_drift": bool(
            performance
            and performance["rmse"] > performance["reference_rmse"] * (1 + float(drift["max_rmse_increase"]))
        ),
        "report_url": "/monitoring/drift/report",
    }
    metrics = {
        "drift.share": share,
        "drift.dataset_drift": float(summary["dataset_drift"]),
        "drift.n_current": float(len(current)),
        "drift.performance_drift": float(summary["performance_drift"]),
        **{f"drift.score.{r['column']}": r["score"] for r in column_results},
        **{f"production.{k}": float(v) for k, v in (performance or {}).items()},
    }
    drifted = [r["column"] for r in column_results if r["drifted"]]
    logger.info(
        "Drift: %d of %d columns drifted (%s) -> dataset drift %s%s",
        n_drifted,
        len(column_results),
        ", ".join(drifted) or "none",
        "YES" if summary["dataset_drift"] else "no",
        f"; production RMSE {performance['rmse']:.4f} on {performance['n_labelled']} labelled rows"
        if performance
        else "",
    )
    return _page(sections), summary, {k: {"value": float(v), "step": 0} for k, v in metrics.items()}


def keep_history(report: str, summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The same report and summary, for the versioned history (one folder per run)."""
    return report, summary
