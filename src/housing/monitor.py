"""Drift check with optional automatic retraining, for a scheduler (cron, Airflow).

    python -m housing.monitor [--auto-retrain] [--env ENV] [--project-path .]

Runs the `drift` pipeline; when it finds dataset drift and --auto-retrain is given, runs
the `retraining` pipeline (strategy from parameters_monitoring.yml), whose challenger
takes the alias only through the promotion gate. Exit status: 0 no drift or retrained,
3 drift found but not retrained, 1 a problem (the message says what to do).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from housing.errors import HousingError

DRIFT_NOT_RETRAINED = 3


def _run(project_path: Path, env: str | None, pipeline: str) -> None:
    with KedroSession.create(project_path=project_path, env=env) as session:
        session.run(pipeline_names=[pipeline])


def _latest_summary(project_path: Path, env: str | None) -> dict:
    with KedroSession.create(project_path=project_path, env=env) as session:
        return session.load_context().catalog.load("drift_summary")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check drift; retrain when it is found (--auto-retrain).")
    parser.add_argument("--auto-retrain", action="store_true")
    parser.add_argument("--project-path", default=".")
    parser.add_argument("--env", default=None)
    args = parser.parse_args(argv)
    project_path = Path(args.project_path).resolve()
    bootstrap_project(project_path)
    try:
        _run(project_path, args.env, "drift")
        summary = _latest_summary(project_path, args.env)
        print(
            f"dataset drift: {'yes' if summary['dataset_drift'] else 'no'} (share {summary['drift_share']:.2f})"
        )
        if not summary["dataset_drift"]:
            return 0
        if not args.auto_retrain:
            return DRIFT_NOT_RETRAINED
        _run(project_path, args.env, "retraining")
    except HousingError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
