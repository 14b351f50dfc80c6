"""The prediction log: every answered prediction and the ground truth that follows it.

SQLAlchemy Core over a URI from configuration: a SQLite file in WAL mode on one machine,
PostgreSQL (same table, same code, psycopg 3, pooled) beyond. A request is committed
before it is answered, so a 200 is in the log even if the process dies right after (WAL
survives a killed process; ``synchronous`` = FULL in serving.yml also survives power
loss). When the database cannot take a write, the caller gets :class:`LogUnavailable`
(the API answers 503), never a 200 that was not logged. The API's writes go through one
writer thread that commits in groups (log_writer.py); no database call runs on the
event loop.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.concurrency import run_in_threadpool

from housing.db import DatabaseError, create_engine, database_url, is_sqlite, redact, unreachable
from housing.serving.log_table import (
    LOGGED,
    ROWS_PER_INSERT,
    SETTING,
    add_missing_columns,
    check_columns,
    insert_sql,
    now_iso,
    prediction_table,
)
from housing.serving.log_writer import LogWriter, QueueFull, WriterClosed

# failures of the database, not of our code: the API answers 503 and retries later
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
# the writer's connection, idle longer than this, goes back to the pool and a fresh one is
# checked out (and pinged, for a network database): the server may have gone in between
HELD_IDLE_S = 1.0


class LogUnavailable(RuntimeError):
    """The prediction log cannot take the write now (database down, locked, pool exhausted)."""


class UnknownRequest(LookupError):
    """No logged prediction has this request id."""


class FeedbackConflict(ValueError):
    """The logged prediction already has its actual value."""


class PredictionLog:
    """The API's writer. ``pool`` holds the engine's pool sizes and connect timeout
    (``serving.yml``: prediction_log); opening checks the database is reachable and the
    table right, or raises :class:`DatabaseError` with one line naming the setting."""

    def __init__(
        self,
        uri: str,
        table: str = "predictions",
        sqlite_synchronous: str = "NORMAL",
        pool: dict[str, Any] | None = None,
    ):
        url = database_url(uri, SETTING)
        self.uri = uri
        self.is_sqlite = is_sqlite(url)
        self._checkpointer: threading.Thread | None = None  # SQLite, with the writer
        self._checkpoint_due, self._closing = threading.Event(), False
        self._commits_since_checkpoint = 0
        if self.is_sqlite and url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(uri, SETTING, **(pool or {}))
        if self.is_sqlite:

            @sa.event.listens_for(self.engine, "connect")
            def _pragmas(dbapi_connection, _record):
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={sqlite_synchronous}")
                cursor.execute("PRAGMA busy_timeout=10000")
                if self._checkpointer is not None:
                    # the writer's checkpointer does it (checkpoint()), not whichever
                    # request's commit crosses 1,000 pages: that was the p99 at c=1
                    cursor.execute("PRAGMA wal_autocheckpoint=0")
                cursor.close()

        self.table = prediction_table(table, sa.MetaData())
        try:
            check_columns(self.engine, self.table, f"{SETTING} = {redact(uri)!r}")
            self.table.metadata.create_all(self.engine)
            add_missing_columns(self.engine, self.table)
        except UNAVAILABLE as exc:
            self.engine.dispose()
            raise unreachable(exc, uri, SETTING) from None
        except DatabaseError:
            self.engine.dispose()
            raise
        self._inserts: dict[tuple[tuple[str, ...], int], str] = {}  # (columns, rows) -> INSERT
        dbapi = self.engine.dialect.dbapi
        self._driver_unavailable = (dbapi.OperationalError, dbapi.InterfaceError)
        self._held: Any = None  # the writer thread's DBAPI connection (_commit_held)
        self._held_engine: sa.Engine | None = None
        self._held_used = 0.0
        # SQLite has one writer at a time: queue in-process writers here rather than
        # have them spin on SQLITE_BUSY
        self._writing = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self.writer: LogWriter | None = None  # the API's group-commit thread (start_writer)
        self.problem: str | None = None  # why the last write failed, until one succeeds

    @contextlib.contextmanager
    def _available(self):
        try:
            yield
        except (*UNAVAILABLE, *self._driver_unavailable) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            self.problem = (
                f"the prediction log ({redact(self.uri)}, table {self.table.name!r}) is unavailable: "
                f"{reason[0] if reason else type(exc).__name__}"
            )
            raise LogUnavailable(self.problem) from exc
        self.problem = None

    def record(self, rows: list[tuple] | list[dict[str, Any]]) -> None:
        """Commit the rows (one transaction) before the caller answers: tuples in
        ``LOGGED`` order (the API's), or dicts by column name."""
        keys, rows = _as_tuples(rows)
        with self._available(), self._writing, self.engine.begin() as conn:
            for sql, params in self._statements(keys, rows):
                conn.exec_driver_sql(sql, params)

    def _commit_held(self, rows: list[tuple] | list[dict[str, Any]]) -> None:
        """``record`` for the writer thread, on a DBAPI connection it keeps: SQLAlchemy's
        checkout, events and transaction bookkeeping per commit cost more than SQLite's
        own one-row insert (``python benchmarks/serving_parts.py`` prints both). A
        connection that fails is closed; the next commit checks out another."""
        keys, rows = _as_tuples(rows)
        with self._available(), self._writing:
            conn = self._writer_connection()
            try:
                cursor = conn.cursor()
                for sql, params in self._statements(keys, rows):
                    cursor.execute(sql, params)
                conn.commit()
            except BaseException:
                self._release_held(invalidate=True)
                raise
            self._held_used = time.monotonic()

    def _writer_connection(self) -> Any:
        if self._held is not None and (
            self._held_engine is not self.engine or time.monotonic() - self._held_used > HELD_IDLE_S
        ):
            self._release_held()
        if self._held is None:
            self._held, self._held_engine = self.engine.raw_connection(), self.engine
        return self._held

    def _release_held(self, invalidate: bool = False) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):  # a dead connection may fail to close
                if invalidate:
                    held.invalidate()
                else:
                    held.close()

    def _statements(self, keys: tuple[str, ...], rows: list[tuple]):
        """Multi-row INSERTs with their flat parameters (``ROWS_PER_INSERT`` rows each)."""
        for start in range(0, len(rows), ROWS_PER_INSERT):
            part = rows[start : start + ROWS_PER_INSERT]
            yield self._insert(keys, len(part)), tuple(itertools.chain.from_iterable(part))

    def _insert(self, keys: tuple[str, ...], rows: int) -> str:
        sql = self._inserts.get((keys, rows))
        if sql is None:
            sql = self._inserts[keys, rows] = insert_sql(self.engine, self.table, keys, rows)
        return sql

    def start_writer(self, max_queue: int = 10_000, max_commit_rows: int = 10_000) -> None:
        """The API's way in: :meth:`record_async` queues for one thread that commits
        everything queued in one transaction (log_writer.py)."""
        if self.is_sqlite:
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="prediction-log-checkpoint", daemon=True
            )
            self._checkpointer.start()
            self.engine.dispose()  # connections opened from now on leave checkpoints to it
        self.writer = LogWriter(
            self._commit_held,
            LogUnavailable,
            max_queue,
            max_commit_rows,
            after=self.checkpoint if self.is_sqlite else None,
        )

    async def record_async(self, rows: list[tuple] | list[dict[str, Any]]) -> None:
        """Return once the rows are committed, with the requests queued alongside them;
        :class:`LogUnavailable` if the commit failed or the queue is full."""
        if self.writer is None:
            self.start_writer()
        try:
            await self.writer.write(rows)
        except (QueueFull, WriterClosed) as exc:
            raise LogUnavailable(
                f"the prediction log ({redact(self.uri)}, table {self.table.name!r}) is unavailable: {exc}"
            ) from None

    async def attach_actual_async(
        self, request_id: str, actual: float, by: str | None = None
    ) -> dict[str, Any]:
        """:meth:`attach_actual` in the thread pool: feedback is rare, and one update
        per label keeps it simple."""
        return await run_in_threadpool(self.attach_actual, request_id, actual, by)

    def ping(self) -> str | None:
        """Check the database answers now; returns why not (``None``: it does)."""
        with contextlib.suppress(LogUnavailable), self._available(), self.engine.connect() as conn:
            conn.execute(sa.select(1))
        return self.problem

    def attach_actual(self, request_id: str, actual: float, by: str | None = None) -> dict[str, Any]:
        """Attach the observed value once, with the name of the credential that sent it
        (``by``); a second value for the same id is a conflict."""
        t = self.table
        with self._available(), self._writing, self.engine.begin() as conn:
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

    def checkpoint(self) -> None:
        """Ask for a checkpoint of SQLite's write-ahead log every 50 commits. It runs on
        its own thread and connection (PASSIVE: it copies what is committed while
        commits go on, and never waits for readers such as the drift job), so no request
        waits for it; SQLite's own autocheckpoint would run inside the commit of whichever
        request crossed 1,000 pages (that was the p99 at c=1). Durability is the WAL's
        either way."""
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= 50:
            self._commits_since_checkpoint = 0
            self._checkpoint_due.set()

    def _checkpoints(self) -> None:
        while True:
            self._checkpoint_due.wait()
            self._checkpoint_due.clear()
            if self._closing:
                return
            with contextlib.suppress(*UNAVAILABLE), self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Commit what the writer holds, then close the connections (blocking)."""
        if self.writer is not None:
            self.writer.close()
        self._release_held()
        if self._checkpointer is not None:
            self._closing = True
            self._checkpoint_due.set()
            self._checkpointer.join(10)
        self.engine.dispose()


def _as_tuples(rows: list[tuple] | list[dict[str, Any]]) -> tuple[tuple[str, ...], list[tuple]]:
    """The columns and the rows as tuples: ``LOGGED`` for tuples, a dict's keys for dicts."""
    if rows and not isinstance(rows[0], tuple):
        keys = tuple(rows[0])
        return keys, [tuple(row[key] for key in keys) for row in rows]
    return LOGGED, rows
