"""The real thing: `python -m housing.serving` under uvicorn on 127.0.0.1, loading the
champion through the Kedro catalog from a trained project copy."""

from __future__ import annotations

import asyncio

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from housing.pipelines.data_processing.features import FEATURES
from tests.conftest import clean_env, raw_csv_path, running_api

pytestmark = pytest.mark.e2e

REQUESTS, CONCURRENCY = 2_000, 32


@pytest.fixture
def server(trained_project):
    with running_api(trained_project, clean_env()) as (url, process):
        yield url, process


async def _hammer(url: str, houses: list[dict]) -> list[tuple[dict, dict]]:
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def one(house):
            async with gate:
                response = await client.post("/predict", json=house)
                assert response.status_code == 200, response.text
                return house, response.json()

        return await asyncio.wait_for(asyncio.gather(*(one(h) for h in houses)), timeout=300)


def test_concurrent_requests_are_all_logged_even_if_killed_right_after(server, trained_project):
    url, process = server
    assert httpx.get(f"{url}/model", timeout=5).json()["version"] == 1
    houses = pd.read_csv(raw_csv_path())[list(FEATURES)].sample(REQUESTS, random_state=7).to_dict("records")

    answered = asyncio.run(_hammer(url, houses))
    process.kill()  # no graceful shutdown: what was answered must already be durable
    process.wait(timeout=30)

    engine = sa.create_engine(
        f"sqlite:///{trained_project / 'data' / '07_model_output' / 'prediction_log.db'}"
    )
    log = pd.read_sql_table("predictions", engine).set_index("request_id")
    engine.dispose()
    assert len(log) == REQUESTS
    for house, answer in answered:
        row = log.loc[answer["request_id"]]
        assert row["prediction"] == answer["prediction"]
        assert row["model_version"] == answer["model_version"] == 1
        assert [row[f] for f in FEATURES] == [house[f] for f in FEATURES]


def test_bad_input_over_the_wire(server):
    url, _ = server
    response = httpx.post(
        f"{url}/predict",
        content=b'{"MedInc": NaN}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
