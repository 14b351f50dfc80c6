"""Drift check with optional automatic retraining, for a scheduler (cron, Airflow).

    python -m housing.monitor [--auto-retrain [--strategy all]] [--env ENV] [--project-path .]

Runs the `drift` pipeline; when it finds dataset drift or performance drift (labelled
production rows much worse than the training rows: prices moved where inputs may not
have) and --auto-retrain is given, runs the `retraining` pipeline with every strategy
(or the one given), and the best challenger that passes the gate takes the alias; the decision is printed in plain words, with the
labels that would be needed when none passes. Exit status: 0 no drift or a challenger
promoted, 3 drift found but the champion stays, 1 a problem (the message says what to do).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from housing.errors import HousingError

DRIFT_NOT_RETRAINED = 3
STRATEGIES = ("all", "mixed", "finetune", "weighted")


def _run(project_path: Path, env: str | None, pipeline: str, params: dict | None = None) -> None:
    with KedroSession.create(project_path=project_path, env=env, runtime_params=params) as session:
        session.run(pipeline_names=[pipeline])


def _load(project_path: Path, env: str | None, name: str) -> dict:
    with KedroSession.create(project_path=project_path, env=env) as session:
        return session.load_context().catalog.load(name)


def _report(decision: dict) -> None:
    print(decision["summary"])
    for item in decision.get("labels_needed", []):
        print(f"  labels needed: {item}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check drift; retrain when it is found (--auto-retrain).")
    parser.add_argument("--auto-retrain", action="store_true")
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="all",
        help="retraining strategy for --auto-retrain (default: all three, the best that passes the gate)",
    )
    parser.add_argument("--project-path", default=".")
    parser.add_argument("--env", default=None)
    args = parser.parse_args(argv)
    project_path = Path(args.project_path).resolve()
    bootstrap_project(project_path)
    try:
        _run(project_path, args.env, "drift")
        summary = _load(project_path, args.env, "drift_summary")
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
        if not (summary["dataset_drift"] or summary.get("performance_drift")):
            return 0
        if not args.auto_retrain:
            return DRIFT_NOT_RETRAINED
        _run(project_path, args.env, "retraining", {"retraining": {"strategy": args.strategy}})
        decision = _load(project_path, args.env, "retraining_decision")
        _report(decision)
    except HousingError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if decision["promoted"] else DRIFT_NOT_RETRAINED


if __name__ == "__main__":
    sys.exit(main())
