"""The prediction log: every answered prediction and the ground truth that follows it.

SQLAlchemy Core over a URI from configuration: a SQLite file in WAL mode on one machine,
PostgreSQL (same table, same code) beyond. A request is committed before it is answered,
so a 200 is in the log even if the process dies right after (WAL survives a killed
process; ``synchronous`` = FULL in serving.yml also survives power loss).
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from housing.pipelines.data_processing.features import FEATURES


class UnknownRequest(LookupError):
    """No logged prediction has this request id."""


class FeedbackConflict(ValueError):
    """The logged prediction already has its actual value."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


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


class PredictionLog:
    def __init__(self, uri: str, table: str = "predictions", sqlite_synchronous: str = "NORMAL"):
        url = sa.engine.make_url(uri)
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite and url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = sa.create_engine(url, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
                cursor.execute("PRAGMA busy_timeout=10000")
                cursor.close()

        self.table = prediction_table(table, sa.MetaData())
        self.table.metadata.create_all(self.engine)
        _add_missing_columns(self.engine, self.table)
        self._insert = self.table.insert()
        # SQLite has one writer at a time: queue in-process writers here rather than
        # have them spin on SQLITE_BUSY
        self._writing = threading.Lock() if self.is_sqlite else contextlib.nullcontext()

    def record(self, rows: list[dict[str, Any]]) -> None:
        """Commit the rows (one transaction) before the caller answers."""
        with self._writing, self.engine.begin() as conn:
            conn.execute(self._insert, rows)

    def attach_actual(self, request_id: str, actual: float, by: str | None = None) -> dict[str, Any]:
        """Attach the observed value once, with the name of the credential that sent it
        (``by``); a second value for the same id is a conflict."""
        t = self.table
        with self._writing, self.engine.begin() as conn:
            updated = conn.execute(
                t.update()
                .where(t.c.request_id == request_id, t.c.actual.is_(None))
                .values(actual=actual, actual_at=now_iso(), actual_by=by)
            ).rowcount
            row = conn.execute(
                sa.select(t.c.prediction, t.c.model_version, t.c.actual).where(t.c.request_id == request_id)
            ).first()
        if row is None:
            raise UnknownRequest(request_id)
        if not updated:
            raise FeedbackConflict(f"request {request_id} already has actual={row.actual}")
        return {"prediction": row.prediction, "model_version": row.model_version}

    def close(self) -> None:
        self.engine.dispose()


def _add_missing_columns(engine: sa.Engine, table: sa.Table) -> None:
    """A log created by an earlier version lacks newer nullable columns (``actual_by``):
    add them, so upgrading the API never needs a manual migration."""
    present = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    with engine.begin() as conn:
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
