"""A team's setup, for real: an MLflow tracking server on PostgreSQL with proxied
artifacts, the light training against it, and two API replicas that follow the alias
(``poll_seconds``) logging to one PostgreSQL table while a bounded load runs: a new
version takes the alias, both replicas serve it within two poll intervals, no request
fails, and each answer's model version is the one logged for it."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from housing.pipelines.data_processing.features import FEATURES
from tests.conftest import (
    clean_env,
    free_port,
    kedro_run,
    raw_csv_path,
    running_api,
    stop_group,
    wait_until_answers,
)
from tests.serving.test_server import read_log

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

MODEL, POLL_SECONDS = "california-housing", 5
MAX_REQUESTS = 20_000  # per replica: the load is bounded in count as well as in time


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts, timeout: float = 120):
    """`mlflow server` on 127.0.0.1 with a PostgreSQL backend store and proxied artifacts."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            backend_uri,
            "--artifacts-destination",
            str(artifacts),
            "--serve-artifacts",
        ],  # fmt: skip
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(f"{url}/health", process, timeout)
        yield url
    finally:
        stop_group(process)


async def _load(url: str, houses: list[dict], stop: asyncio.Event, concurrency: int = 4) -> list:
    """Requests to one replica until ``stop``: (time, status, body) per request."""
    answers: list[tuple[float, int, dict]] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker(offset: int) -> None:
            for i in range(offset, MAX_REQUESTS, concurrency):
                if stop.is_set():
                    return
                response = await client.post("/predict", json=houses[i % len(houses)])
                answers.append((time.monotonic(), response.status_code, response.json()))

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return answers


def _promote_a_new_version(tracking_uri: str) -> int:
    """A new registry version of the champion's model takes the alias (as a retraining
    that passed its gate would)."""
    client = MlflowClient(tracking_uri=tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    new = client.create_model_version(
        MODEL,
        champion.source,
        champion.run_id,
        tags=dict(champion.tags),
        model_id=champion.source.removeprefix("models:/"),  # MLflow 3: the logged model's id
    )
    client.set_registered_model_alias(MODEL, "champion", new.version)
    return int(new.version)


async def _swap_under_load(replicas: list[str], houses: list[dict], tracking_uri: str) -> dict:
    stop = asyncio.Event()
    loads = [asyncio.create_task(_load(url, houses, stop)) for url in replicas]
    await asyncio.sleep(2.0)  # both replicas under load on the first champion
    promoted_at = time.monotonic()
    version = await asyncio.to_thread(_promote_a_new_version, tracking_uri)
    deadline = promoted_at + 2 * POLL_SECONDS + 60  # generous bound; the assertion is tighter
    async with httpx.AsyncClient(timeout=10) as client:
        while time.monotonic() < deadline:
            served = [(await client.get(f"{url}/model")).json().get("version") for url in replicas]
            if served == [version] * len(replicas):
                break
            await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # and keep serving it
    stop.set()
    answers = await asyncio.wait_for(asyncio.gather(*loads), timeout=60)
    return {"version": version, "promoted_at": promoted_at, "answers": answers}


def test_two_replicas_follow_the_alias_on_a_postgres_tracking_server(postgres, project_copy, tmp_path):
    backend = postgres.create_database("mlflow").replace("postgresql://", "postgresql+psycopg://", 1)
    log_uri = postgres.create_database("log")
    (project_copy / "conf" / "test" / "serving.yml").write_text(f"poll_seconds: {POLL_SECONDS}\n")
    houses = pd.read_csv(raw_csv_path())[list(FEATURES)].sample(500, random_state=5).to_dict("records")

    with mlflow_server(backend, tmp_path / "artifacts") as tracking_uri:
        env = {
            **clean_env(),
            "MLFLOW_TRACKING_URI": tracking_uri,
            "MLFLOW_ARTIFACT_LOCATION": "mlflow-artifacts:/housing",
            "HOUSING_PREDICTION_LOG_URI": log_uri,
        }
        run = kedro_run(project_copy, env, "--pipelines", "training")
        assert run.returncode == 0, run.stderr[-3000:]
        assert not (project_copy / "mlflow.db").exists() and not (project_copy / "mlartifacts").exists()
        with running_api(project_copy, env) as (one, _), running_api(project_copy, env) as (two, _):
            seen = asyncio.run(asyncio.wait_for(_swap_under_load([one, two], houses, tracking_uri), 240))

    new = seen["version"]
    assert new == 2
    answers = [a for replica in seen["answers"] for a in replica]
    assert all(status == 200 for _, status, _ in answers), "no request may fail during the swap"
    for replica in seen["answers"]:
        versions = [body["model_version"] for _, _, body in replica]
        assert versions[0] == 1 and versions[-1] == new
        switched = next(t for t, _, body in replica if body["model_version"] == new)
        assert switched - seen["promoted_at"] <= 2 * POLL_SECONDS, "served the new version too late"
        first_new = versions.index(new)
        # requests in flight at the swap finish on the old model; later ones never go back
        assert versions[first_new:].count(1) <= 4
    log = read_log(log_uri)
    assert len(log) == len(answers)
    for _, _, body in answers:
        assert log.loc[body["request_id"], "model_version"] == body["model_version"]
        assert log.loc[body["request_id"], "prediction"] == body["prediction"]
