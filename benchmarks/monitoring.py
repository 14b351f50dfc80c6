"""Monitoring figures: the drift pipeline's time on a 20,000-row prediction log, and the
three retraining strategies after `inflation` traffic with feedback.

    python benchmarks/monitoring.py [--rows 20000] [--labelled 4000]

Needs a champion (`kedro run --pipelines=training`). Scenario rows get the champion's
predictions and are written to a temporary prediction log exactly as the API writes it
(your own log is not touched); `kedro run --pipelines=drift` then runs on it as a
subprocess. The strategies run in-process on the same labelled rows (nothing is
registered): RMSE on the study's test set and on held-out recent production rows.
"""

from __future__ import annotations

import argparse
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
from housing.pipelines.monitoring.nodes import detect_drift
from housing.pipelines.monitoring.retraining import judge_challenger, labelled_production, retrain
from housing.pipelines.monitoring.scenarios import make_scenario
from housing.serving.prediction_log import PredictionLog, now_iso

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="logged rows for the drift timing")
    parser.add_argument("--labelled", type=int, default=4_000, help="labelled inflation rows for retraining")
    args = parser.parse_args()

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT) as session:
        context = session.load_context()
        catalog, params = context.catalog, context.params
        champion = catalog.load("current_champion")
        train, test = catalog.load("model_input_train"), catalog.load("model_input_test")
        reference = catalog.load("champion_drift_reference") if champion else None
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
            "--params",
            f"drift.window.last_n={args.rows}",
        ]
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        drift_seconds = time.perf_counter() - start

    print(
        "\n| scenario (2,000 requests) | dataset drift | share of drifted columns | drifted columns (score) |"
    )
    print("| --- | --- | --- | --- |")
    for name in ("stable", "inflation", "geographic"):
        rows = make_scenario(test, name, 2_000, params["simulation"]["scenarios"][name])
        current = rows.assign(
            prediction=champion["model"].predict(rows[list(FEATURES)]), created_at="", model_version=1
        )
        _, summary, _ = detect_drift(reference, current, params["drift"])
        drifted = ", ".join(f"{c['column']} ({c['score']:.2f})" for c in summary["columns"] if c["drifted"])
        print(
            f"| {name} | {'yes' if summary['dataset_drift'] else 'no'} | {summary['drift_share']:.2f} | {drifted or '-'} |"
        )

    print(
        f"\ndrift pipeline on {args.rows:,} logged rows: {drift_seconds:.1f} s "
        f"(goal < 60 s: ratio {drift_seconds / 60:.2f})"
    )

    log = make_scenario(test, "inflation", args.labelled, scenario)
    logged = log.assign(
        prediction=champion["model"].predict(log[list(FEATURES)]),
        request_id=[str(i) for i in range(len(log))],
        created_at=[f"{i:08d}" for i in range(len(log))],
        model_version=champion["version"],
    )
    settings = params["retraining"]
    production, holdout = labelled_production(logged, settings["window"], settings["holdout_share"])
    print(
        f"\nretraining after inflation traffic: {len(production):,} labelled rows to train, "
        f"{len(holdout):,} recent rows held out\n"
    )
    print("| strategy | RMSE original test | RMSE held-out production | training time | promoted |")
    print("| --- | --- | --- | --- | --- |")
    first = True
    for strategy in ("mixed", "finetune", "weighted"):
        challenger = retrain(champion, train, production, {**settings, "strategy": strategy})
        _, decision, _ = judge_challenger(challenger, champion, test, holdout, settings["gate"])
        if first:
            old = decision["champion"]
            print(
                f"| champion v{old['version']} (no retraining) | {old['test_rmse']:.4f} | "
                f"{old['production_rmse']:.4f} | - | - |"
            )
            first = False
        new = decision["challenger"]
        print(
            f"| {strategy} | {new['test_rmse']:.4f} | {new['production_rmse']:.4f} | "
            f"{decision['fit_seconds']:.1f} s | {'yes' if decision['promoted'] else 'no'} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
