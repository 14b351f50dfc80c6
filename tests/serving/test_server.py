"""The real thing: `housing serve` under uvicorn on 127.0.0.1, loading the
champion through the Kedro catalog from a trained project copy, logging to SQLite and,
with the same tests, to a real PostgreSQL server (``-m postgres``)."""

from __future__ import annotations

import asyncio

import httpx
import pandas as pd
import pytest

from housing.db import create_engine
from housing.pipelines.data_processing.features import FEATURES
from tests.conftest import clean_env, raw_csv_path, running_api

pytestmark = pytest.mark.e2e

REQUESTS, CONCURRENCY = 2_000, 32


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_uri(request, tmp_path) -> str:
    """A fresh prediction log per test: a SQLite file, or a database on the PostgreSQL
    server given as a plain ``postgresql://`` URI (psycopg is picked by housing.db)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'prediction_log.db'}"
    return request.getfixturevalue("postgres_uri")


def api_env(log_uri: str) -> dict[str, str]:
    return {**clean_env(), "HOUSING_PREDICTION_LOG_URI": log_uri}


def read_log(log_uri: str) -> pd.DataFrame:
    engine = create_engine(log_uri, "test")
    try:
        return pd.read_sql_table("predictions", engine).set_index("request_id")
    finally:
        engine.dispose()


@pytest.fixture
def server(trained_project, log_uri):
    with running_api(trained_project, api_env(log_uri)) as (url, process):
        yield url, process


async def _hammer(url: str, houses: list[dict], concurrency: int = CONCURRENCY) -> list[tuple[dict, dict]]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(house):
            async with gate:
                response = await client.post("/predict", json=house)
                assert response.status_code == 200, response.text
                return house, response.json()

        return await asyncio.wait_for(asyncio.gather(*(one(h) for h in houses)), timeout=300)


def test_concurrent_requests_are_all_logged_even_if_killed_right_after(server, log_uri):
    url, process = server
    assert httpx.get(f"{url}/model", timeout=5).json()["version"] == 1
    houses = pd.read_csv(raw_csv_path())[list(FEATURES)].sample(REQUESTS, random_state=7).to_dict("records")

    answered = asyncio.run(_hammer(url, houses))
    process.kill()  # no graceful shutdown: what was answered must already be durable
    process.wait(timeout=30)

    log = read_log(log_uri)
    assert len(log) == REQUESTS
    for house, answer in answered:
        row = log.loc[answer["request_id"]]
        assert row["prediction"] == answer["prediction"]
        assert row["model_version"] == answer["model_version"] == 1
        assert [row[f] for f in FEATURES] == [house[f] for f in FEATURES]


def test_two_replicas_on_one_log_lose_nothing(trained_project, log_uri):
    """Two API processes write the same table at once: every answer is a row, ids distinct."""
    houses = pd.read_csv(raw_csv_path())[list(FEATURES)].sample(1_000, random_state=11).to_dict("records")
    env = api_env(log_uri)
    with running_api(trained_project, env) as (one, _), running_api(trained_project, env) as (two, _):

        async def both():
            return await asyncio.gather(
                _hammer(one, houses[:500], CONCURRENCY // 2), _hammer(two, houses[500:], CONCURRENCY // 2)
            )

        answered = [pair for replica in asyncio.run(both()) for pair in replica]
    ids = [answer["request_id"] for _, answer in answered]
    assert len(set(ids)) == len(ids) == 1_000
    log = read_log(log_uri)
    assert len(log) == 1_000 and set(log.index) == set(ids)
    for _, answer in answered:
        assert log.loc[answer["request_id"], "prediction"] == answer["prediction"]


def test_bad_input_over_the_wire(server):
    url, _ = server
    response = httpx.post(
        f"{url}/predict",
        content=b'{"MedInc": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
