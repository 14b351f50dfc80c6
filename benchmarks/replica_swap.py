"""Two API replicas swapping champions under load, on the team setup: an MLflow tracking
server on PostgreSQL with proxied artifacts, one PostgreSQL prediction log, each replica
polling the alias.

    python benchmarks/replica_swap.py [--swaps 3] [--concurrency 4] [--poll-seconds 5]

Starts a throw-away PostgreSQL cluster (Debian's binaries, as the tests do), an
`mlflow server` on it, trains the light configuration (`--env test`) against it, starts
two replicas, then runs a load on both while a new version takes the alias `--swaps`
times. Prints the requests, the failures (any non-200 or transport error), how long
after each alias move every replica served the new version, latency outside and around
the swaps, and whether every answer is the row logged for it (version and prediction).
Everything binds 127.0.0.1 and is stopped at the end; the load is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from housing.pipelines.data_processing.features import FEATURES  # noqa: E402
from tests.conftest import clean_env, copy_project, free_port, kedro_run, raw_csv_path, running_api  # noqa: E402
from tests.postgres import postgres_server  # noqa: E402
from tests.serving.test_server import read_log  # noqa: E402
from tests.test_scale_out_e2e import _promote_a_new_version, mlflow_server  # noqa: E402

MAX_REQUESTS = 200_000  # per replica


async def load(url: str, houses: list[dict], stop: asyncio.Event, concurrency: int, out: list) -> None:
    """Requests until ``stop``: (start, seconds, status, body or None) per request."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker(offset: int) -> None:
            for i in range(offset, MAX_REQUESTS, concurrency):
                if stop.is_set():
                    return
                start = time.monotonic()
                try:
                    response = await client.post("/predict", json=houses[i % len(houses)])
                    status, body = response.status_code, response.json()
                except httpx.HTTPError as exc:
                    status, body = type(exc).__name__, None
                out.append((start, time.monotonic() - start, status, body))

        await asyncio.gather(*(worker(k) for k in range(concurrency)))


async def swap_under_load(replicas: list[str], houses, tracking_uri: str, args) -> dict:
    stop = asyncio.Event()
    answers: list[list] = [[] for _ in replicas]
    tasks = [
        asyncio.create_task(load(u, houses, stop, args.concurrency, a)) for u, a in zip(replicas, answers)
    ]
    swaps = []
    await asyncio.sleep(args.settle)
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(args.swaps):
            promoted = time.monotonic()
            version = await asyncio.to_thread(_promote_a_new_version, tracking_uri)
            served_at: dict[str, float] = {}
            deadline = promoted + 2 * args.poll_seconds + 60
            while len(served_at) < len(replicas) and time.monotonic() < deadline:
                for url in replicas:
                    if (
                        url not in served_at
                        and (await client.get(f"{url}/model")).json().get("version") == version
                    ):
                        served_at[url] = time.monotonic() - promoted
                await asyncio.sleep(0.1)
            swaps.append({"version": version, "promoted": promoted, "served_after": served_at})
            await asyncio.sleep(args.settle)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    return {"answers": answers, "swaps": swaps}


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1e3 if len(values) >= 2 else float("nan")


def report(result: dict, log: pd.DataFrame, args) -> None:
    answers = [a for replica in result["answers"] for a in replica]
    failures = [a for a in answers if a[2] != 200]
    ok = [a for a in answers if a[2] == 200]
    windows = [(s["promoted"] - 1, s["promoted"] + 2 * args.poll_seconds) for s in result["swaps"]]
    is_near = [any(low <= a[0] <= high for low, high in windows) for a in ok]
    near = [a for a, flag in zip(ok, is_near, strict=True) if flag]
    calm = [a for a, flag in zip(ok, is_near, strict=True) if not flag]
    mismatched = sum(
        1
        for *_, body in ok
        if body["request_id"] not in log.index
        or log.loc[body["request_id"], "model_version"] != body["model_version"]
        or log.loc[body["request_id"], "prediction"] != body["prediction"]
    )
    seconds = max(a[0] + a[1] for a in answers) - min(a[0] for a in answers)
    print(
        f"\n{len(answers):,} requests to 2 replicas in {seconds:.0f} s ({len(answers) / seconds:,.0f} req/s), "
        f"{args.concurrency} connections each; {len(failures)} failed"
    )
    print("\n| swap | new version | replica 1 served it after | replica 2 served it after |")
    print("| --- | --- | --- | --- |")
    for i, swap in enumerate(result["swaps"], 1):
        after = [f"{v:.1f} s" for v in swap["served_after"].values()] + ["never"] * (
            2 - len(swap["served_after"])
        )
        print(f"| {i} | {swap['version']} | {after[0]} | {after[1]} |")
    print(
        f"\n(poll_seconds = {args.poll_seconds}: the goal is within two intervals, {2 * args.poll_seconds} s)"
    )
    print("\n| requests | n | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    for name, group in (
        ("away from swaps", calm),
        ("from 1 s before a swap to 2 poll intervals after", near),
    ):
        latencies = [a[1] for a in group]
        print(
            f"| {name} | {len(group):,} | {percentile(latencies, 50):.1f} | {percentile(latencies, 99):.1f} |"
        )
    print(
        f"\nprediction-log rows: {len(log):,} for {len(ok):,} answers; answers whose logged version "
        f"or prediction differ: {mismatched}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--swaps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4, help="connections per replica")
    parser.add_argument("--poll-seconds", type=int, default=5)
    parser.add_argument(
        "--settle", type=float, default=5.0, help="seconds of load before, between and after swaps"
    )
    args = parser.parse_args()
    houses = pd.read_csv(raw_csv_path())[list(FEATURES)].sample(500, random_state=5).to_dict("records")
    with (
        tempfile.TemporaryDirectory(prefix="housing-replica-swap-") as tmp,
        postgres_server(free_port()) as pg,
    ):
        workdir = Path(tmp)
        project = copy_project(workdir / "project")
        (project / "conf" / "test" / "serving.yml").write_text(f"poll_seconds: {args.poll_seconds}\n")
        backend = pg.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://", 1)
        log_uri = pg.create_database("log")
        with mlflow_server(backend, workdir / "artifacts") as tracking_uri:
            env = {
                **clean_env(),
                "MLFLOW_TRACKING_URI": tracking_uri,
                "MLFLOW_ARTIFACT_LOCATION": "mlflow-artifacts:/housing",
                "HOUSING_PREDICTION_LOG_URI": log_uri,
            }
            print("training the light configuration against the tracking server ...", flush=True)
            run = kedro_run(project, env, "--pipelines", "training")
            if run.returncode != 0:
                print(run.stderr[-3000:], file=sys.stderr)
                return 1
            with running_api(project, env) as (one, _), running_api(project, env) as (two, _):
                print(f"replicas at {one} and {two}; load and {args.swaps} alias moves ...", flush=True)
                timeout = args.swaps * (2 * args.poll_seconds + 60 + args.settle) + 120
                result = asyncio.run(
                    asyncio.wait_for(swap_under_load([one, two], houses, tracking_uri, args), timeout)
                )
        report(result, read_log(log_uri), args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
