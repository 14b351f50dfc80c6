"""The catalog's prediction log: the window runs as SQL on the indexed time column, on
SQLite and on a real PostgreSQL server, and returns what filtering the whole table would."""

import pandas as pd
import pytest
import sqlalchemy as sa
from kedro.io.core import DatasetError

from housing.datasets import PredictionLogDataset
from housing.db import DatabaseError, create_engine
from housing.pipelines.data_processing.features import FEATURES
from housing.pipelines.drift.nodes import LOG_COLUMNS, MonitoringError, select_window
from housing.serving.prediction_log import PredictionLog

ROWS = 1_000


def logged_rows(n: int = ROWS) -> list[dict]:
    """``n`` rows as the API logs them, written out of time order (as replicas would)."""
    times = pd.date_range("2026-11-01", periods=n, freq="min", tz="UTC")
    order = pd.Series(range(n)).sample(frac=1.0, random_state=0).tolist()
    return [
        {
            "request_id": f"r{i:05d}",
            "batch_id": None,
            "created_at": times[i].isoformat(timespec="microseconds"),
            "model_name": "m",
            "model_version": 1 + i // 500,
            **{name: float(i + k) for k, name in enumerate(FEATURES)},
            "prediction": i / 100,
            "actual": None if i % 3 else i / 90,
        }
        for i in order
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_uri(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("postgres_uri")


@pytest.fixture
def filled(log_uri) -> tuple[str, pd.DataFrame]:
    rows = logged_rows()
    log = PredictionLog(log_uri)
    log.record(rows)
    log.close()
    return log_uri, pd.DataFrame(rows)


WINDOWS = [
    {"last_n": 300},
    {"since": "2026-11-01T03:00:00", "until": "2026-11-01T09:00:00"},
    {"since": "2026-11-01T05:00:00", "last_n": 50},
    {},
]


@pytest.mark.parametrize("window", WINDOWS, ids=["last_n", "range", "since+last_n", "all"])
def test_the_sql_window_is_the_window_of_the_whole_table(filled, window):
    uri, frame = filled
    table = PredictionLogDataset(uri=uri).load()
    window = {**window, "min_rows": 1}
    from_sql = select_window(table, window)
    from_frame = select_window(frame, window)
    assert len(from_sql) == len(from_frame) > 0
    assert from_sql["created_at"].is_monotonic_increasing
    columns = [*LOG_COLUMNS]
    pd.testing.assert_frame_equal(
        from_sql[columns].astype({"actual": float}),
        from_frame[columns].astype({"actual": float}),
        check_dtype=False,
    )


def test_the_window_is_pushed_down_to_the_time_index(filled):
    uri, _ = filled
    table = PredictionLogDataset(uri=uri).load()
    engine = create_engine(uri, "test")
    query = table.window_query(last_n=300, since="2026-11-01T05:00:00")
    compiled = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    assert "ORDER BY predictions.created_at DESC" in compiled and "LIMIT 300" in compiled
    assert "WHERE predictions.created_at >= '2026-11-01T05:00:00'" in compiled
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE predictions"))
            conn.execute(sa.text("SET enable_seqscan = off"))  # 1,000 rows: force what 1M rows would choose
        plan = " ".join(str(row) for row in conn.execute(sa.text(explain + compiled)))
    engine.dispose()
    assert "ix_predictions_created_at" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, f"the window must not sort the table: {plan}"


def test_a_log_that_does_not_exist_yet_is_empty(tmp_path):
    table = PredictionLogDataset(uri=f"sqlite:///{tmp_path / 'missing.db'}").load()
    assert table.count() == 0 and table.window(last_n=10).empty
    with pytest.raises(MonitoringError, match="prediction log is empty"):
        select_window(table, {"min_rows": 1})


def test_too_few_rows_counts_the_whole_log(filled):
    uri, _ = filled
    with pytest.raises(MonitoringError, match=r"holds 60 production row\(s\) \(of 1000 logged\)"):
        select_window(PredictionLogDataset(uri=uri).load(), {"last_n": 60, "min_rows": 200})


def test_a_table_without_the_log_columns_is_refused_with_them_listed(log_uri):
    engine = create_engine(log_uri, "test")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE predictions (request_id varchar(64), created_at varchar(40))"))
    engine.dispose()
    with pytest.raises(
        DatabaseError, match=r"without the prediction log's column\(s\) \['model_name', 'model_version'"
    ):
        select_window(PredictionLogDataset(uri=log_uri).load(), {"last_n": 10, "min_rows": 1})


def test_is_read_only_and_never_shows_a_password(tmp_path):
    dataset = PredictionLogDataset(uri="postgresql://u:hunter2@db/x")
    assert "hunter2" not in str(dataset)
    with pytest.raises(DatasetError, match="written by the API only"):
        PredictionLogDataset(uri=f"sqlite:///{tmp_path / 'x.db'}").save(pd.DataFrame({"a": [1]}))
