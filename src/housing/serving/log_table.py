"""The prediction log's table, and what goes into a row: its shape (``LOGGED``, the
columns the API writes), its ids and time stamps, the checks and upgrades an existing
table gets, and the INSERTs. Shared by the API's writer (prediction_log.py) and the
drift pipeline's reader (housing.datasets.prediction_log)."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa

from housing.db import DatabaseError
from housing.pipelines.data_processing.features import FEATURES

SETTING = "prediction_log.uri (HOUSING_PREDICTION_LOG_URI)"
# rows per INSERT statement: 64 x 14 parameters stay under the 999 of old SQLite builds
ROWS_PER_INSERT = 64
# what the API writes for each prediction, in this order (``PredictionLog.record`` takes
# rows as tuples of these, or as dicts by column name)
LOGGED = ("request_id", "batch_id", "created_at", "model_name", "model_version", *FEATURES, "prediction")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


_VARIANT = 0b10 << 62  # RFC 9562's variant bits, over the low 64 bits


def request_ids(n: int = 1) -> list[str]:
    """``n`` request ids as UUIDv7 (RFC 9562) in hex: the Unix time in milliseconds,
    then random bits, and for a batch consecutive values (the standard's counter method).

    Why not uuid4: the id is the log's primary key, and random keys land on random pages
    of its index, so a commit rewrites about a page per row once the index outgrows the
    cache; ids in time order append (``python benchmarks/log_commit.py``: a 1,000-row
    commit on a log of 200,000 rows, 2 ms against 28 ms). They stay unguessable (74
    random bits per request or per batch) and unique across replicas."""
    random = secrets.randbits(74)  # one system call: 12 bits after the version, 62 after the variant
    head = (time.time_ns() // 1_000_000) << 16 | 0x7000 | random >> 62
    start = (random & ((1 << 62) - 1)) % ((1 << 62) - n)  # room for the counter
    if n < 16:
        return [f"{head:016x}{_VARIANT | low:016x}" for low in range(start, start + n)]
    # a batch: the 128-bit values as big-endian bytes, in hex at once (not a format per id)
    words = np.empty((n, 2), ">u8")
    words[:, 0] = head
    words[:, 1] = np.arange(n, dtype=np.uint64) + np.uint64(_VARIANT | start)
    text = words.tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def prediction_table(name: str, metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=True, index=True),
        sa.Column("created_at", sa.String(40), nullable=False, index=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        *(sa.Column(name, sa.Float, nullable=False) for name in FEATURES),
        sa.Column("prediction", sa.Float, nullable=False),
        sa.Column("actual", sa.Float, nullable=True),
        sa.Column("actual_at", sa.String(40), nullable=True),
        sa.Column("actual_by", sa.String(64), nullable=True),  # the feedback token's name
    )


def check_columns(engine: sa.Engine, table: sa.Table, where: str) -> set[str] | None:
    """An existing table must have every required column the API writes; say which are
    missing. Returns the columns present (``None``: no table yet). Newer nullable columns
    may be missing: the API adds them (``add_missing_columns``)."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(table.name):
        return None
    present = {c["name"] for c in inspector.get_columns(table.name)}
    missing = [c.name for c in table.columns if c.name not in present and not c.nullable]
    if missing:
        raise DatabaseError(
            f"{where}: table {table.name!r} exists without the prediction log's column(s) {missing}; "
            "point prediction_log.table at another table name or migrate this one"
        )
    return present


def add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """A log created by an earlier version lacks newer nullable columns (``actual_by``):
    add them, so upgrading the API never needs a manual migration."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    with engine.begin() as conn:
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def insert_sql(engine: sa.Engine, table: sa.Table, keys: tuple[str, ...], rows: int) -> str:
    """``INSERT ... VALUES (...), (...)`` of ``rows`` rows with these columns, in the
    driver's parameter style: many rows per statement, without SQLAlchemy's per-row
    parameter handling. ``ValueError`` names keys that are not columns."""
    unknown = [key for key in keys if key not in table.c]
    if unknown:
        raise ValueError(f"{unknown} are not columns of the prediction log {table.name!r}")
    quote = engine.dialect.identifier_preparer
    marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    row = f"({', '.join([marker] * len(keys))})"
    columns = ", ".join(quote.quote(key) for key in keys)
    return f"INSERT INTO {quote.format_table(table)} ({columns}) VALUES {', '.join([row] * rows)}"
