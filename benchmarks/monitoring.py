"""Monitoring figures: the drift pipeline's time on a 20,000-row prediction log, and the
three retraining strategies through the per-segment gate, scenario by scenario.

    python benchmarks/monitoring.py [--rows 20000] [--labelled 2000] [--env ENV]

Needs a champion (`kedro run --pipelines=training`). Scenario rows get the champion's
predictions and are written to a temporary prediction log exactly as the API writes it
(your own log is not touched); `kedro run --pipelines=drift` then runs on it as a
subprocess. The strategies run in-process (strategy `all`, as `housing monitor
--auto-retrain` runs them; nothing is registered) on `--labelled` rows of each retraining
scenario with ground truth: RMSE on held-out recent production rows, on the unseen
original test rows (whole, and the worst untouched segment), fit time, and the verdict.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from housing.pipelines.data_processing.features import FEATURES
from housing.pipelines.drift.nodes import detect_drift
from housing.pipelines.retraining.gate import MOVED, TOO_FEW
from housing.pipelines.retraining.nodes import labelled_production, retrain_candidates
from housing.pipelines.retraining.selection import judge_challengers
from housing.serving.log_table import now_iso
from housing.serving.prediction_log import PredictionLog
from housing.simulation.scenarios import make_scenario

ROOT = Path(__file__).resolve().parents[1]


def log_scenario(uri: str, rows, champion: dict) -> None:
    predictions = champion["model"].predict(rows[list(FEATURES)])
    created = now_iso()
    PredictionLog(uri).record(
        [
            {
                "request_id": uuid.uuid4().hex,
                "batch_id": None,
                "created_at": f"{created[:-13]}{i:06d}{created[-6:]}",  # strictly increasing
                "model_name": champion["name"],
                "model_version": champion["version"],
                **{name: float(row[name]) for name in FEATURES},
                "prediction": float(p),
                "actual": float(row["actual"]),
            }
            for i, ((_, row), p) in enumerate(zip(rows.iterrows(), predictions, strict=True))
        ]
    )


def verdict(strategy: str, judged: dict, decision: dict) -> str:
    """yes / no, and which one `all` promotes (the best that passes)."""
    if not judged["promoted"]:
        return "no"
    return "yes, promoted" if decision["candidate"] == f"retrain-{strategy}" else "yes"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="logged rows for the drift timing")
    parser.add_argument("--labelled", type=int, default=2_000, help="labelled rows per retraining scenario")
    parser.add_argument("--env", default=None, help="Kedro environment (e.g. test)")
    args = parser.parse_args()

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT, env=args.env) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        champion = catalog.load("current_champion")
        train, test = catalog.load("model_input_train"), catalog.load("model_input_test")
        reference = catalog.load("champion_drift_reference") if champion else None
    logging.getLogger("housing").setLevel(logging.WARNING)  # the tables only, not each verdict's log line
    if champion is None:
        print("no champion: run `kedro run --pipelines=training` first", file=sys.stderr)
        return 2
    scenario = params["simulation"]["scenarios"]["inflation"]

    with tempfile.TemporaryDirectory(prefix="housing-monitoring-bench-") as tmp:
        uri = f"sqlite:///{tmp}/prediction_log.db"
        log_scenario(uri, make_scenario(test, "inflation", args.rows, scenario), champion)
        env = {**os.environ, "HOUSING_PREDICTION_LOG_URI": uri, "KEDRO_DISABLE_TELEMETRY": "true"}
        command = [
            sys.executable,
            "-m",
            "kedro",
            "run",
            "--pipelines",
            "drift",
            *(["--env", args.env] if args.env else []),
            "--params",
            f"drift.window.last_n={args.rows}",
        ]
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        drift_seconds = time.perf_counter() - start

    print(
        "\n| scenario (2,000 requests) | dataset drift | share of drifted columns | drifted columns (score) "
        "| RMSE labelled rows (out of fold on training) | performance drift |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("stable", "inflation", "geographic", "regional", "income_shift"):
        rows = make_scenario(test, name, 2_000, params["simulation"]["scenarios"][name])
        current = rows.assign(
            prediction=champion["model"].predict(rows[list(FEATURES)]), created_at="", model_version=1
        )
        _, summary, _ = detect_drift(reference, current, params["drift"])
        drifted = ", ".join(f"{c['column']} ({c['score']:.2f})" for c in summary["columns"] if c["drifted"])
        performance = summary["performance"]
        print(
            f"| {name} | {'yes' if summary['dataset_drift'] else 'no'} | {summary['drift_share']:.2f} | {drifted or '-'} "
            f"| {performance['rmse']:.3f} ({performance['reference_rmse']:.3f}) "
            f"| {'yes' if summary['performance_drift'] else 'no'} |"
        )

    print(
        f"\ndrift pipeline on {args.rows:,} logged rows: {drift_seconds:.1f} s "
        f"(goal < 60 s: ratio {drift_seconds / 60:.2f})"
    )

    settings = {**params["retraining"], "strategy": "all"}
    print(
        f"\nretraining, strategy x scenario: {args.labelled:,} labelled rows each "
        f"({settings['holdout_share']:.0%} most recent held out); segments: the champion's location "
        f"clusters, tolerance +{settings['gate']['segments']['tolerance']} RMSE on untouched ones\n"
    )
    print(
        "| scenario | strategy | production RMSE (champion → challenger) | unseen test RMSE "
        "(champion → challenger) | worst untouched segment (champion → challenger) | moved segments "
        "| fit time | passes the gate |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in ("regional", "inflation", "income_shift"):
        rows = make_scenario(test, name, args.labelled, params["simulation"]["scenarios"][name])
        logged = rows.assign(
            prediction=champion["model"].predict(rows[list(FEATURES)]),
            request_id=[str(i) for i in range(len(rows))],
            created_at=[f"{i:08d}" for i in range(len(rows))],
            model_version=champion["version"],
        )
        production, holdout = labelled_production(logged, settings["window"], settings["holdout_share"])
        candidates = retrain_candidates(champion, train, production, settings)
        _, decision, _, _ = judge_challengers(
            candidates, champion, test, production, holdout, settings["gate"]
        )
        old = decision["champion"]
        for strategy, d in decision["strategies"].items():
            new = d["challenger"]
            untouched = [r for r in d["segments"] if r["status"] not in (MOVED, TOO_FEW)]
            worst = max(untouched, key=lambda r: r["delta"])
            moved = sum(r["status"] == MOVED for r in d["segments"])
            print(
                f"| {name} | {strategy} | {old['production_rmse']:.3f} → {new['production_rmse']:.3f} "
                f"| {old['test_rmse']:.3f} → {new['test_rmse']:.3f} "
                f"| {worst['segment']}: {worst['champion_rmse']:.3f} → {worst['challenger_rmse']:.3f} "
                f"({worst['delta']:+.3f}) | {moved} | {d['fit_seconds']:.1f} s | {verdict(strategy, d, decision)} |"
            )
        for strategy, reason in decision["skipped"].items():
            print(f"| {name} | {strategy} | skipped: {reason} | | | | | no |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
