"""Drift on a big prediction log costs what its window costs: time and peak memory of the
drift step (read the window, Evidently's report) on a large log vs a small one, same
window, each in a fresh process.

    python benchmarks/drift_window.py [--rows 1000000] [--small 20000] [--whole]

The logs are temporary SQLite files written as the API writes them (rows of the real
data with noise, one a second); the window is ``drift.window`` from
conf/base/parameters_drift.yml (the last 5,000 rows). ``--whole`` also times the old
way, reading the whole table into pandas and filtering there. Needs no champion: the
reference's predictions come from a linear fit.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.conftest: the raw data wherever it is

CHUNK = 50_000


def write_log(uri: str, rows: int) -> None:
    from housing.pipelines.data_processing.features import FEATURES  # noqa: PLC0415
    from housing.serving.prediction_log import PredictionLog  # noqa: PLC0415
    from tests.conftest import raw_csv_path  # noqa: PLC0415

    data = pd.read_csv(raw_csv_path())[list(FEATURES)].to_numpy()
    rng = np.random.default_rng(0)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    log = PredictionLog(uri)
    for first in range(0, rows, CHUNK):
        n = min(CHUNK, rows - first)
        values = data[rng.integers(0, len(data), n)] * rng.normal(1, 0.01, (n, len(FEATURES)))
        times = (start + pd.to_timedelta(np.arange(first, first + n), unit="s")).map(
            lambda t: t.isoformat(timespec="microseconds")
        )
        log.record(
            [
                {
                    "request_id": f"{first + i:012d}",
                    "batch_id": None,
                    "created_at": times[i],
                    "model_name": "bench",
                    "model_version": 1,
                    **dict(zip(FEATURES, map(float, values[i]), strict=True)),
                    "prediction": float(values[i][0] / 2),
                }
                for i in range(n)
            ]
        )
    log.close()


def drift_once(uri: str, whole: bool) -> None:
    """Child process: the drift step on ``uri``; prints seconds and peak memory as JSON."""
    from sklearn.linear_model import LinearRegression  # noqa: PLC0415
    from sklearn.model_selection import cross_val_predict  # noqa: PLC0415

    from housing.config_loader import ProjectConfigLoader  # noqa: PLC0415
    from housing.datasets import PredictionLogDataset  # noqa: PLC0415
    from housing.pipelines.data_processing.features import FEATURES, TARGET  # noqa: PLC0415
    from housing.pipelines.drift.nodes import detect_drift, select_window  # noqa: PLC0415
    from housing.pipelines.modelling.promotion import build_drift_reference  # noqa: PLC0415
    from tests.conftest import raw_csv_path  # noqa: PLC0415

    drift = ProjectConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="base")["parameters"][
        "drift"
    ]
    train = pd.read_csv(raw_csv_path())
    model = LinearRegression().fit(train[list(FEATURES)], train[TARGET])
    oof = pd.Series(
        cross_val_predict(LinearRegression(), train[list(FEATURES)], train[TARGET], cv=4), index=train.index
    )
    reference = build_drift_reference(train, {"oof": oof, "model": model}, drift["reference"])

    def step() -> int:
        if whole:  # the old way: every row into pandas, then the window
            log = pd.read_sql_table("predictions", uri).assign(actual=np.nan)
        else:
            log = PredictionLogDataset(uri=uri).load()
        window = select_window(log, drift["window"])
        detect_drift(reference, window, drift)
        return len(window)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    n = step()
    seconds = time.perf_counter() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    step()
    _, peak = tracemalloc.get_traced_memory()
    print(
        json.dumps(
            {
                "window_rows": n,
                "seconds": seconds,
                "peak_traced_mb": peak / 2**20,
                "rss_growth_mb": (rss_after - rss_before) / 1024,
            }
        )
    )


def measure(uri: str, whole: bool) -> dict:
    command = [sys.executable, __file__, "--child", uri, *(["--whole"] if whole else [])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big log")
    parser.add_argument("--small", type=int, default=20_000, help="rows of the small log")
    parser.add_argument(
        "--whole", action="store_true", help="also time reading the whole table (the old way)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        drift_once(args.child, args.whole)
        return 0

    results = {}
    with tempfile.TemporaryDirectory(prefix="housing-drift-window-") as tmp:
        for rows in (args.small, args.rows):
            uri = f"sqlite:///{tmp}/log_{rows}.db"
            started = time.perf_counter()
            write_log(uri, rows)
            print(f"wrote {rows:,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            for whole in (False, True) if args.whole else (False,):
                results[rows, whole] = measure(uri, whole)

    print("| log rows | read | window rows | drift time | peak traced memory | RSS growth |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (rows, whole), r in results.items():
        print(
            f"| {rows:,} | {'whole table' if whole else 'window (SQL)'} | {r['window_rows']:,} | "
            f"{r['seconds']:.2f} s | {r['peak_traced_mb']:.0f} MB | {r['rss_growth_mb']:.0f} MB |"
        )
    small, big = results[args.small, False], results[args.rows, False]
    print(
        f"\n{args.rows:,} vs {args.small:,} rows, window in SQL: time x{big['seconds'] / small['seconds']:.2f}, "
        f"peak memory x{big['peak_traced_mb'] / small['peak_traced_mb']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
