"""Jobs that run whole Kedro pipelines for a scheduler (cron, Airflow): ``housing monitor``.

Runs the `drift` pipeline; when it finds dataset drift or performance drift (labelled
production rows much worse than the training rows: prices moved where inputs may not
have) and ``auto_retrain`` is set, runs the `retraining` pipeline with every strategy
(or the one given), and the best challenger that passes the gate takes the alias; the
decision is printed in plain words, with the labels that would be needed when none
passes. Exit status: 0 no drift or a challenger promoted, 3 drift found but the champion
stays, 1 a problem (the message says what to do).
"""

from __future__ import annotations

import sys
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError

from housing.errors import HousingError

DRIFT_NOT_RETRAINED = 3


def _run(project_path: Path, env: str | None, pipeline: str, params: dict | None = None) -> None:
    with KedroSession.create(project_path=project_path, env=env, runtime_params=params) as session:
        session.run(pipeline_names=[pipeline])


def _load(project_path: Path, env: str | None, name: str) -> dict:
    with KedroSession.create(project_path=project_path, env=env) as session:
        return session.load_context().catalog.load(name)


def _report_drift(summary: dict) -> None:
    print(
        f"dataset drift: {'yes' if summary['dataset_drift'] else 'no'} (share {summary['drift_share']:.2f})"
    )
    performance = summary.get("performance")
    if performance and "reference_rmse" in performance:
        print(
            f"performance drift: {'yes' if summary.get('performance_drift') else 'no'} "
            f"(RMSE {performance['rmse']:.3f} on {performance['n_labelled']} labelled production rows, "
            f"{performance['reference_rmse']:.3f} on the training rows)"
        )


def _report_decision(decision: dict) -> None:
    print(decision["summary"])
    for item in decision.get("labels_needed", []):
        print(f"  labels needed: {item}")


def drift_then_retrain(project_path: Path, env: str | None, auto_retrain: bool, strategy: str = "all") -> int:
    """Check drift; retrain when it is found and ``auto_retrain``; the exit status."""
    try:
        bootstrap_project(project_path)
    except (RuntimeError, ValueError, OSError) as exc:  # no or a broken pyproject.toml [tool.kedro]
        print(f"{project_path} is not a housing project ({exc}); pass --project-path", file=sys.stderr)
        return 1
    try:
        _run(project_path, env, "drift")
        summary = _load(project_path, env, "drift_summary")
        _report_drift(summary)
        if not (summary["dataset_drift"] or summary.get("performance_drift")):
            return 0
        if not auto_retrain:
            return DRIFT_NOT_RETRAINED
        _run(project_path, env, "retraining", {"retraining": {"strategy": strategy}})
        decision = _load(project_path, env, "retraining_decision")
        _report_decision(decision)
    except (HousingError, DatasetError) as exc:  # no champion yet, too little traffic, ...
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if decision["promoted"] else DRIFT_NOT_RETRAINED
