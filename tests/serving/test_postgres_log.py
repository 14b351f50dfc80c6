"""The prediction log on a real PostgreSQL server when things go wrong: the server stops
under load, the URI is malformed or points nowhere, the table has the wrong columns."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from housing.db import DatabaseError, create_engine
from housing.pipelines.data_processing.features import FEATURES
from housing.serving.prediction_log import HELD_IDLE_S, LogUnavailable, PredictionLog
from tests.conftest import clean_env, copy_project, free_port, raw_csv_path, running_api
from tests.serving.test_server import api_env, read_log

pytestmark = pytest.mark.postgres

OUTAGE_SECONDS, RECOVERY_TIMEOUT = 2.0, 30.0


async def _load(url: str, houses: list[dict], stop: asyncio.Event, concurrency: int = 8) -> list:
    """Cycle through ``houses`` until ``stop`` (bounded: at most 20,000 requests)."""
    answers: list[tuple[dict, int, dict]] = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker(offset: int) -> None:
            for i in range(offset, 20_000, concurrency):
                if stop.is_set():
                    return
                house = houses[i % len(houses)]
                response = await client.post("/predict", json=house)
                answers.append((house, response.status_code, response.json()))

        await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return answers


async def _outage(url: str, houses: list[dict], postgres) -> dict:
    stop = asyncio.Event()
    load = asyncio.create_task(_load(url, houses, stop))
    seen: dict = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await asyncio.sleep(1.0)  # traffic flowing and logged
        await asyncio.to_thread(postgres.stop, "fast")
        try:
            await asyncio.sleep(OUTAGE_SECONDS)  # load keeps coming while the database is down
            seen["ready_down"] = await client.get("/ready")
        finally:
            await asyncio.to_thread(postgres.start)
        deadline = time.monotonic() + RECOVERY_TIMEOUT
        while time.monotonic() < deadline:  # no restart of the API: it must come back alone
            response = await client.get("/ready")
            if response.status_code == 200:
                break
            await asyncio.sleep(0.2)
        seen["ready_up"] = response
        await asyncio.sleep(1.0)  # served and logged again
        stop.set()
        seen["answers"] = await asyncio.wait_for(load, timeout=60)
    return seen


@pytest.mark.e2e
def test_database_outage_gives_503_naming_the_log_and_the_api_recovers(
    trained_project, postgres, postgres_uri
):
    houses = pd.read_csv(raw_csv_path())[list(FEATURES)].sample(500, random_state=3).to_dict("records")
    with running_api(trained_project, api_env(postgres_uri)) as (url, _process):
        seen = asyncio.run(asyncio.wait_for(_outage(url, houses, postgres), timeout=180))

    statuses = [status for _, status, _ in seen["answers"]]
    assert set(statuses) <= {200, 503}, f"only 200 or 503 while the database is down, got {set(statuses)}"
    unavailable = [body for _, status, body in seen["answers"] if status == 503]
    assert unavailable, "requests during the outage must have failed"
    assert all("prediction log" in body["detail"] for body in unavailable)
    assert postgres.password not in str(unavailable[0])
    ready_down = seen["ready_down"]
    assert ready_down.status_code == 503 and "prediction log" in ready_down.json()["detail"]
    assert seen["ready_up"].status_code == 200, seen["ready_up"].text
    # traffic succeeded both before the outage and after it, with no restart
    first_503 = statuses.index(503)
    assert 200 in statuses[:first_503] and 200 in statuses[len(statuses) - statuses[::-1].index(503) :]

    log = read_log(postgres_uri)
    answered = [(house, body) for house, status, body in seen["answers"] if status == 200]
    assert {body["request_id"] for _, body in answered} <= set(log.index), "a 200 is missing from the log"
    for house, body in answered:
        row = log.loc[body["request_id"]]
        assert row["prediction"] == body["prediction"]
        assert [row[f] for f in FEATURES] == [house[f] for f in FEATURES]


def test_writes_while_the_database_is_down_raise_log_unavailable(postgres, postgres_uri):
    log = PredictionLog(postgres_uri, pool={"connect_timeout": 2})
    try:
        assert log.ping() is None
        postgres.stop("fast")
        try:
            with pytest.raises(LogUnavailable, match="prediction log .*unavailable"):
                log.record([])  # an empty insert still needs the connection
            assert "unavailable" in log.ping()
        finally:
            postgres.start()
        assert log.ping() is None and log.problem is None
    finally:
        log.close()


def test_the_writer_keeps_one_connection_and_a_restart_while_idle_costs_no_request(postgres, postgres_uri):
    """The writer thread commits on a connection it keeps (no checkout per commit); one
    idle longer than HELD_IDLE_S goes back to the pool and the next commit takes a
    pinged one, so a server restarted between two requests fails neither."""
    log = PredictionLog(postgres_uri, pool={"connect_timeout": 2})
    opened = []
    connect = log.engine.raw_connection
    log.engine.raw_connection = lambda: opened.append(1) or connect()
    row = {"batch_id": None, "created_at": "2026-01-01T00:00:00", "model_name": "m", "model_version": 1}
    row |= {name: 1.0 for name in FEATURES} | {"prediction": 1.0}

    async def write(start: int, n: int) -> None:
        for i in range(start, start + n):
            await log.record_async([{**row, "request_id": f"held-{i}"}])

    try:
        asyncio.run(write(0, 20))
        assert len(opened) == 1, f"{len(opened)} connections for 20 commits in a row"
        postgres.stop("fast")
        postgres.start()
        time.sleep(HELD_IDLE_S + 0.1)
        asyncio.run(write(20, 1))  # no LogUnavailable: a fresh, pinged connection
        assert len(opened) == 2
        with log.engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT request_id FROM predictions WHERE request_id LIKE 'held-%'"))
            assert len(ids.all()) == 21
    finally:
        log.close()


def _start_api(project, uri: str) -> subprocess.CompletedProcess:
    env = {**clean_env(), "HOUSING_PREDICTION_LOG_URI": uri}
    command = [
        sys.executable,
        "-m",
        "housing",
        "serve",
        "--port",
        str(free_port()),
        "--project-path",
        str(project),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def untrained_project(tmp_path_factory):
    return copy_project(tmp_path_factory.mktemp("untrained") / "project")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("postgresql://housing:hunter2@127.0.0.1:notaport/db", "is not a database URI"),
        ("postgresql://housing:hunter2@127.0.0.1:{closed_port}/db", "cannot reach the database"),
        ("mysql+nodriver://housing:hunter2@127.0.0.1/db", "no driver"),
    ],
    ids=["malformed", "unreachable", "unknown-driver"],
)
def test_a_bad_log_uri_is_one_line_at_start_up(untrained_project, uri, problem):
    started = time.monotonic()
    result = _start_api(untrained_project, uri.format(closed_port=free_port()))
    assert result.returncode == 1, result.stderr[-2000:]
    assert time.monotonic() - started < 60
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("housing.serving: cannot start: prediction_log.uri (HOUSING_PREDICTION_LOG_URI)")
    assert problem in last
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr


WRONG_TABLE = (
    "CREATE TABLE predictions (request_id varchar(64) PRIMARY KEY, created_at varchar(40), MedInc float)"
)


@pytest.mark.e2e
def test_a_table_without_the_log_columns_is_refused_at_start_up(untrained_project, postgres_uri):
    engine = create_engine(postgres_uri, "test")
    with engine.begin() as conn:
        conn.execute(sa.text(WRONG_TABLE))
    engine.dispose()
    result = _start_api(untrained_project, postgres_uri)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "exists without the prediction log's column(s)" in last
    assert "'model_name', 'model_version'" in last and "'prediction'" in last


def test_plain_and_explicit_driver_uris_reach_the_same_table(postgres, postgres_uri):
    plain = PredictionLog(postgres_uri)
    explicit = PredictionLog(postgres_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        assert plain.engine.url.drivername == explicit.engine.url.drivername == "postgresql+psycopg"
        assert plain.engine.pool.size() == 5  # pool sizes come from configuration (defaults here)
        sized = PredictionLog(postgres_uri, pool={"pool_size": 3, "max_overflow": 1})
        assert sized.engine.pool.size() == 3
        sized.close()
    finally:
        plain.close()
        explicit.close()
    with pytest.raises(DatabaseError, match="exists without"):
        engine = create_engine(postgres_uri, "test")
        with engine.begin() as conn:
            conn.execute(sa.text(WRONG_TABLE.replace("predictions", "other")))
        engine.dispose()
        PredictionLog(postgres_uri, table="other")


def test_server_settings_ride_on_the_uri(postgres_uri):
    """psycopg takes libpq options from the URI: e.g. commits that skip the WAL flush,
    as SQLite's synchronous=NORMAL does (README: the prediction log on PostgreSQL)."""
    log = PredictionLog(postgres_uri + "?options=-csynchronous_commit%3Doff")
    try:
        with log.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
    finally:
        log.close()
