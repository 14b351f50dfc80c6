"""`POST /predict` with the prediction log on SQLite vs PostgreSQL: the same API, the same
champion, one uvicorn worker each, wrk at concurrency 1 and 16.

    python benchmarks/prediction_log.py [--duration 10] [--postgres-uri URI]

Needs a champion in the registry (`kedro run --pipelines=training`) and Debian's `wrk`.
Without --postgres-uri, a throw-away PostgreSQL server is started on 127.0.0.1 the way the
tests start one (tests/postgres.py: Debian's server binaries, `runuser` as root); each
backend gets a fresh log, so your own is not touched. Each load is bounded by --duration.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from serving import api_command, free_port, start_server, stop_server, wait_ready, wait_trees, wrk  # noqa: E402

from housing.pipelines.data_processing.features import FEATURES  # noqa: E402


def measure(log_uri: str, body: str, duration: int, workdir: Path) -> dict:
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}",
        "KEDRO_DISABLE_TELEMETRY": "true",
        "HOUSING_PREDICTION_LOG_URI": log_uri,
    }
    process = start_server(api_command(port, None), env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base + "/ready", process)
        wait_trees(base)  # measured on the trees that serve for the model's lifetime
        httpx.post(base + "/predict", content=body, headers={"content-type": "application/json"}, timeout=30)
        return {c: wrk(base + "/predict", body, c, duration, workdir) for c in (1, 16)}
    finally:
        stop_server(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load (default 10)")
    parser.add_argument(
        "--postgres-uri", help="an empty PostgreSQL database to log to (default: a throw-away server)"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    from tests.conftest import raw_csv_path  # noqa: PLC0415

    body = pd.read_csv(raw_csv_path())[list(FEATURES)].iloc[0].to_json()
    results = {}
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="housing-log-bench-")))
        postgres = args.postgres_uri
        if not postgres:
            from tests.postgres import PostgresServer, _server_bin  # noqa: PLC0415

            bin_dir, missing = _server_bin()
            if bin_dir is None:
                print(missing, file=sys.stderr)
                return 2
            server = PostgresServer(bin_dir, free_port())
            stack.callback(server.destroy)
            server.init()
            server.start()
            postgres = server.create_database("bench")
        for name, uri in (("SQLite (WAL)", f"sqlite:///{workdir / 'log.db'}"), ("PostgreSQL", postgres)):
            results[name] = measure(uri, body, args.duration, workdir)

    print("| prediction log | c=1 req/s | c=1 p50 | c=1 p99 | c=16 req/s | c=16 p50 | c=16 p99 | non-2xx |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        one, many = r[1], r[16]
        print(
            f"| {name} | {one['req_per_s']:.0f} | {one['p50_ms']:.2f} ms | {one['p99_ms']:.1f} ms | "
            f"{many['req_per_s']:.0f} | {many['p50_ms']:.1f} ms | {many['p99_ms']:.1f} ms | "
            f"{one['errors'] + many['errors']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
