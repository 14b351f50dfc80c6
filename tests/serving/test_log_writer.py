"""The prediction log's writer: commits off the event loop, in groups, each request
answered only once its own record is committed (src/housing/serving/log_writer.py).

``Commits`` stands in for a slow or failing database: it wraps the DBAPI connection the
writer thread commits on, so the delay or the driver's error happens in the writer
thread, inside the commit, exactly where a slow fsync or a network round trip would."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from housing.pipelines.data_processing.features import FEATURES
from housing.serving.log_table import LOGGED, now_iso, request_ids
from housing.serving.prediction_log import LogUnavailable, PredictionLog
from tests.serving.conftest import HOUSE

WAIT_S = 30  # every wait below is bounded


class Commits:
    """Counts the log's commits; can make each one slow, block it, or fail it with the
    driver's own error."""

    def __init__(self, log: PredictionLog, delay: float = 0.0):
        self.log, self.delay = log, delay
        self.count, self.fail = 0, False
        self.entered, self.gate = threading.Event(), threading.Event()
        self.gate.set()  # open unless a test closes it
        self._connect = log.engine.raw_connection

        def raw_connection():
            connection = self._connect()
            commit = connection.commit

            def slow_commit() -> None:
                self()
                commit()

            connection.commit = slow_commit
            return connection

        log._release_held()  # the writer's next commit takes a connection from here
        log.engine.raw_connection = raw_connection

    def __call__(self) -> None:
        self.count += 1
        self.entered.set()
        assert self.gate.wait(WAIT_S)
        time.sleep(self.delay)
        if self.fail:
            raise sqlite3.OperationalError("disk I/O error")

    def remove(self) -> None:
        self.log.engine.raw_connection = self._connect
        self.log._release_held()


@pytest.fixture
def commits(client):
    watcher = Commits(client.app.state.serving.log)
    yield watcher
    watcher.gate.set()
    watcher.remove()


def _post_many(client, count: int, threads: int = 8) -> list:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: client.post("/predict", json=HOUSE), range(count)))


def test_health_answers_while_a_commit_is_slow(client, commits, logged):
    commits.delay = 1.0
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, "/predict", json=HOUSE)
        assert commits.entered.wait(WAIT_S), "the request never reached the commit"
        started = time.perf_counter()
        health = client.get("/health")
        waited = time.perf_counter() - started
        answer = pending.result(timeout=WAIT_S)
    assert health.status_code == 200
    assert waited < 0.05, f"/health took {waited * 1000:.0f} ms while a commit was in progress"
    assert answer.status_code == 200
    assert logged()["request_id"].tolist() == [answer.json()["request_id"]]


def test_concurrent_requests_share_transactions_and_every_answer_is_logged(client, commits, logged):
    commits.delay = 0.05  # a commit long enough for the others to queue behind it
    answers = _post_many(client, 48)
    assert [a.status_code for a in answers] == [200] * 48
    assert commits.count < 48 / 2, f"{commits.count} transactions for 48 requests: no grouping"
    ids = {a.json()["request_id"] for a in answers}
    assert set(logged()["request_id"]) == ids


def test_a_failed_commit_fails_every_request_of_its_group_with_a_503(client, commits, logged):
    commits.delay, commits.fail = 0.1, True
    answers = _post_many(client, 16)
    assert [a.status_code for a in answers] == [503] * 16
    assert all("the prediction log" in a.json()["detail"] for a in answers)
    assert "disk I/O error" in answers[0].json()["detail"]
    assert commits.count < 16, "the failing requests were grouped too"
    assert logged().empty, "nothing was answered 200, nothing is logged"
    commits.fail = False
    assert client.post("/predict", json=HOUSE).status_code == 200  # the writer survived


def test_a_full_queue_is_a_503_at_once(config, registry):
    from housing.serving.app import create_app  # noqa: PLC0415
    from tests.serving.conftest import started  # noqa: PLC0415

    config.prediction_log_max_queue = 2
    with started(create_app(config, registry.source())) as client:
        commits = Commits(client.app.state.serving.log)
        commits.gate.clear()  # the first commit holds until released
        with ThreadPoolExecutor(3) as pool:
            first = pool.submit(client.post, "/predict", json=HOUSE)
            assert commits.entered.wait(WAIT_S)
            queued = [pool.submit(client.post, "/predict", json=HOUSE) for _ in range(2)]
            deadline = time.monotonic() + WAIT_S
            while client.app.state.serving.log.writer.queued() < 2:
                assert time.monotonic() < deadline, "the two requests never queued"
                time.sleep(0.01)
            refused = client.post("/predict", json=HOUSE)
            commits.gate.set()
            statuses = [f.result(timeout=WAIT_S).status_code for f in (first, *queued)]
        commits.remove()
    assert refused.status_code == 503
    assert "max_queue" in refused.json()["detail"] and "prediction log" in refused.json()["detail"]
    assert statuses == [200, 200, 200]


def _row(i: int) -> dict:
    features = {name: float(HOUSE[name]) for name in FEATURES}
    return {
        "request_id": f"r{i}",
        "created_at": now_iso(),
        "model_name": "m",
        "model_version": 1,
        **features,
        "prediction": 1.0,
    }


def test_closing_commits_what_is_queued(tmp_path):
    """Shutdown drains: records queued behind a slow commit are committed, and their
    requests answered, before the log closes."""
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    log = PredictionLog(uri)
    commits = Commits(log)
    commits.gate.clear()

    async def scenario() -> list:
        log.start_writer()
        writes = [asyncio.create_task(log.record_async([_row(i)])) for i in range(5)]
        while not commits.entered.is_set():
            await asyncio.sleep(0.01)
        closing = asyncio.create_task(asyncio.to_thread(log.close))
        await asyncio.sleep(0.05)
        commits.gate.set()
        await asyncio.wait_for(closing, WAIT_S)
        return await asyncio.gather(*writes, return_exceptions=True)

    assert asyncio.run(scenario()) == [None] * 5
    with pytest.raises(LogUnavailable, match="shutting down"):
        asyncio.run(log.record_async([_row(9)]))
    reader = sa.create_engine(uri)
    with reader.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM predictions")).scalar() == 5
    reader.dispose()


def test_the_write_ahead_log_is_checkpointed_off_the_requests_path(tmp_path):
    """SQLite's autocheckpoint is off (it ran inside the commit of whichever request
    crossed 1,000 pages); the log's own checkpointer copies the WAL into the database
    file every 50 commits, on its own thread, while answers go out."""
    path = tmp_path / "log.db"
    log = PredictionLog(f"sqlite:///{path}")
    record = {"batch_id": None, "model_name": "m", "model_version": 1, **{f: 1.0 for f in FEATURES}}

    async def write(n: int) -> None:
        for i in range(n):
            await log.record_async(
                [{**record, "request_id": f"r{i}", "created_at": now_iso(), "prediction": 1.0}]
            )

    try:
        asyncio.run(write(120))
        with log.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        deadline = time.monotonic() + WAIT_S
        in_file = 0
        while in_file < 100 and time.monotonic() < deadline:
            # the database file alone, without its WAL: only what was checkpointed
            copy = tmp_path / "copy.db"
            copy.write_bytes(path.read_bytes())
            with sqlite3.connect(copy) as db:
                in_file = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
            time.sleep(0.05)
        assert in_file >= 100, f"only {in_file} of 120 rows reached the database file"
    finally:
        log.close()


def test_request_ids_are_uuid7_in_time_order_and_unique():
    """The log's primary key appends: a batch's ids are consecutive, later calls sort
    after earlier ones (by their millisecond), and none repeats."""
    first = request_ids(1000)
    time.sleep(0.002)  # the next millisecond
    later = request_ids(3)
    for value in first + later:
        parsed = uuid.UUID(value)
        assert (parsed.version, parsed.variant, parsed.hex) == (7, uuid.RFC_4122, value)
    assert first == sorted(first) and max(first) < min(later)
    assert [int(v, 16) for v in first] == list(range(int(first[0], 16), int(first[0], 16) + 1000))
    stamp = uuid.UUID(later[0]).int >> 80
    assert abs(stamp - time.time_ns() // 1_000_000) < 60_000  # the Unix time in ms
    assert len({v for _ in range(200) for v in request_ids(50)}) == 200 * 50


@pytest.mark.parametrize("count", [1, 64, 130])
def test_tuple_rows_land_whole_across_multi_row_inserts(tmp_path, count):
    """The API's rows (``LOGGED`` order) go in INSERTs of up to 64 rows each; every row
    lands with its own values, and dict rows (by column name) still work."""
    log = PredictionLog(f"sqlite:///{tmp_path / 'log.db'}")
    batch_id, *ids = request_ids(count + 1)
    rows = [
        (rid, batch_id, now_iso(), "m", 3, *[float(i)] * len(FEATURES), i / 10) for i, rid in enumerate(ids)
    ]
    log.record(rows)
    log.record(
        [dict(zip(LOGGED, (*rows[0][:1], None, *rows[0][2:]), strict=True)) | {"request_id": "by-name"}]
    )
    with log.engine.connect() as conn:
        stored = conn.execute(sa.select(*log.table.c[: len(LOGGED)]).order_by(log.table.c.request_id)).all()
    log.close()
    assert [tuple(r) for r in stored if r.request_id != "by-name"] == rows
    assert [r.batch_id for r in stored if r.request_id == "by-name"] == [None]
