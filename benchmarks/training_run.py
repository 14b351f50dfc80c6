"""Quality and duration of the default training run, from an empty MLflow store.

    python benchmarks/training_run.py            # the default configuration
    python benchmarks/training_run.py --env test # the light one the tests use

Runs `kedro run --pipelines=training` in this project against a fresh temporary MLflow
store (your own mlflow.db is not touched; data/ outputs are refreshed as by any run), then
reads the champion back from that store and prints its metrics and the wall time next to
the goals (test RMSE <= 0.40, <= 15 minutes) and the earlier study's best (RMSE 0.51).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
GOAL_RMSE, GOAL_SECONDS, STUDY_BEST_RMSE = 0.40, 15 * 60, 0.51


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro environment (default: local)")
    parser.add_argument("--model-name", default="california-housing")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="housing-bench-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_ARTIFACT_LOCATION": f"{tmp}/artifacts",
            "KEDRO_DISABLE_TELEMETRY": "true",
        }
        command = [sys.executable, "-m", "kedro", "run", "--pipelines", "training"]
        if args.env:
            command += ["--env", args.env]
        print(
            "running:",
            " ".join(command[2:]),
            f"(MLFLOW_TRACKING_URI={uri})",
            flush=True,
        )
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, check=True)
        seconds = time.perf_counter() - start

        client = MlflowClient(tracking_uri=uri)
        champion = client.get_model_version_by_alias(args.model_name, "champion")
        rmse = float(champion.tags["test_rmse"])
        comparison = pd.read_csv(ROOT / "data" / "06_models" / "model_comparison.csv")

    print("\ncandidates (test set = the study's 4,128 rows):")
    print(
        comparison[
            [
                "candidate",
                "cv_rmse",
                "test_rmse",
                "test_mae",
                "test_r2",
                "n_trials",
                "fit_seconds",
            ]
        ].to_string(index=False, float_format=lambda v: f"{v:.4f}")
    )
    print(f"\nchampion: {champion.tags['candidate']} (version {champion.version})")
    print(
        f"test RMSE {rmse:.4f}  MAE {float(champion.tags['test_mae']):.4f}  R2 {float(champion.tags['test_r2']):.4f}"
    )
    print(
        f"RMSE / goal 0.40            = {rmse / GOAL_RMSE:.3f}  ({'ok' if rmse <= GOAL_RMSE else 'MISSED'})"
    )
    print(f"RMSE / earlier study's 0.51 = {rmse / STUDY_BEST_RMSE:.3f}")
    print(
        f"wall time {seconds:.0f} s / goal 900 s = {seconds / GOAL_SECONDS:.3f}  "
        f"({'ok' if seconds <= GOAL_SECONDS else 'MISSED'})"
    )
    return 0 if rmse <= GOAL_RMSE and seconds <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
