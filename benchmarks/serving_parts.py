"""What each part of /predict costs in the running server: the API as shipped, then with
one part cut out (the prediction log, the model, both), each under wrk at c=1; the
difference in time per request is that part's cost in the server. And what the fast lane
spares (lane.py): the API with /predict through FastAPI's routing instead. Next to it, the same
parts in a hot loop (in process), to show what the server adds to them.

    python benchmarks/serving_parts.py [--duration 8] [--rounds 3]

Needs a champion in the registry and Debian's `wrk`. Variants run one at a time,
interleaved over the rounds (this machine's speed drifts by tens of percent from minute
to minute; interleaving spreads the drift over all of them); the median of the rounds
is reported. Cutting a part out is done in the server process only (``--serve``): the
log's ``record_async`` returns at once, the model answers a constant without features or
trees, or the lane hands every request to FastAPI. Nothing of this is a way to run the API.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from serving import ROOT, free_port, served_model, start_server, stop_server, wait_ready, wait_trees, wrk  # noqa: E402

from housing.pipelines.data_processing.features import FEATURES  # noqa: E402

VARIANTS = {
    "as shipped": (),
    "without the log": ("log",),
    "without the model": ("model",),
    "without both": ("log", "model"),
    "through FastAPI's routing (no lane)": ("lane",),
}


def serve(cut: list[str], port: int) -> None:
    """The API on ``port`` with the ``cut`` parts replaced by nothing (this process)."""
    from housing.cli import serve as housing_serve  # noqa: PLC0415
    from housing.serving.model import ServingModel  # noqa: PLC0415
    from housing.serving.prediction_log import PredictionLog  # noqa: PLC0415

    if "log" in cut:

        async def not_logged(self, rows) -> None:
            return None

        PredictionLog.record_async = not_logged
    if "lane" in cut:
        from housing.serving.lane import PredictLane  # noqa: PLC0415

        PredictLane.__call__ = lambda self, scope, receive, send: self.app(scope, receive, send)
    if "model" in cut:
        built = ServingModel.__post_init__

        def constant(self) -> None:
            built(self)
            self.compile_trees = lambda compiler: None
            self._predict_row = lambda row: 2.0

        ServingModel.__post_init__ = constant
    housing_serve.main(
        ["--host", "127.0.0.1", "--port", str(port), "--project-path", str(ROOT)], prog_name="housing serve"
    )


def hot_loop_us(tracking: str, model_name: str, house: dict) -> dict[str, str]:
    """The model path, and a one-row log commit alone and through the writer thread, in
    a loop in this process (best of 5; the writer's round trips: the median of 2,000)."""
    import asyncio  # noqa: PLC0415
    import time  # noqa: PLC0415

    import mlflow  # noqa: PLC0415

    from housing.serving.log_table import now_iso, request_ids  # noqa: PLC0415
    from housing.serving.prediction_log import PredictionLog  # noqa: PLC0415

    mlflow.set_tracking_uri(tracking)
    model = served_model(mlflow.sklearn.load_model(f"models:/{model_name}@champion"))
    row = tuple(house[f] for f in FEATURES)

    def best(fn, number: int) -> float:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6

    def record() -> list[tuple]:
        return [(request_ids()[0], None, now_iso(), "m", 1, *row, 1.0)]

    async def through_writer(log: PredictionLog) -> float:
        times = []
        for _ in range(2_000):
            rows = record()
            start = time.perf_counter()
            await log.record_async(rows)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6

    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(f"sqlite:///{tmp}/log.db")
        alone = best(lambda: log._commit_held(record()), 300)
        pooled = best(lambda: log.record(record()), 300)
        handed = asyncio.run(through_writer(log))
        log.close()
    return {
        "the model (features and trees)": f"{best(lambda: model.predict_row(row), 1000):.0f}",
        "the prediction log (hand-off to the writer thread, commit)": (
            f"{handed:.0f} (the commit alone: {alone:.0f} on the writer's kept connection, "
            f"{pooled:.0f} through SQLAlchemy's engine.begin())"
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=8, help="seconds of wrk per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model-name", default="california-housing")
    parser.add_argument("--serve", nargs=2, metavar=("PARTS", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve([p for p in args.serve[0].split(",") if p], int(args.serve[1]))
        return 0
    tracking = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{ROOT / 'mlflow.db'}")
    house = pd.read_csv(ROOT / "data/01_raw/california_housing.csv").iloc[0][list(FEATURES)].to_dict()
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="housing-serve-parts-") as tmp:
        for round_ in range(args.rounds):
            for name, cut in VARIANTS.items():
                env = {
                    **os.environ,
                    "MLFLOW_TRACKING_URI": tracking,
                    "KEDRO_DISABLE_TELEMETRY": "true",
                    "HOUSING_PREDICTION_LOG_URI": f"sqlite:///{tmp}/log-{round_}-{len(cut)}-{cut}.db",
                }
                port = free_port()
                command = [sys.executable, __file__, "--serve", ",".join(cut), str(port)]
                process = start_server(command, env)
                try:
                    base = f"http://127.0.0.1:{port}"
                    wait_ready(base + "/ready", process)
                    wait_trees(base)
                    result = wrk(base + "/predict", json.dumps(house), 1, args.duration, Path(tmp))
                    rates[name].append(result["req_per_s"])
                finally:
                    stop_server(process)
    us = {name: 1e6 / statistics.median(values) for name, values in rates.items()}
    print(f"\n/predict at c=1, one worker, median of {args.rounds} rounds of {args.duration} s\n")
    print("| variant | req/s (each round) | µs per request |\n| --- | --- | --- |")
    for name, values in rates.items():
        print(f"| {name} | {', '.join(f'{v:,.0f}' for v in values)} | {us[name]:.0f} |")
    hot = hot_loop_us(tracking, args.model_name, house)
    server = {
        "the model (features and trees)": us["as shipped"] - us["without the model"],
        "the prediction log (hand-off to the writer thread, commit)": us["as shipped"]
        - us["without the log"],
    }
    print("\n| part | in the server (µs per request) | in a hot loop (µs) |\n| --- | --- | --- |")
    for part, micros in server.items():
        print(f"| {part} | {micros:.0f} | {hot[part]} |")
    print(f"| the rest (HTTP, FastAPI, the route) | {us['without both']:.0f} | - |")
    spared = us["through FastAPI's routing (no lane)"] - us["as shipped"]
    print(f"| FastAPI's routing, which the lane spares /predict | {spared:.0f} | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
