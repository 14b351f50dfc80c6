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
import operator
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.concurrency import run_in_threadpool

from housing.db import DatabaseError, create_engine, database_url, is_sqlite, redact, unreachable
from housing.pipelines.data_processing.features import FEATURES
from housing.serving.log_writer import LogWriter, QueueFull, WriterClosed

SETTING = "prediction_log.uri (HOUSING_PREDICTION_LOG_URI)"
# failures of the database, not of our code: the API answers 503 and retries later
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


class LogUnavailable(RuntimeError):
    """The prediction log cannot take the write now (database down, locked, pool exhausted)."""


class UnknownRequest(LookupError):
    """No logged prediction has this request id."""


class FeedbackConflict(ValueError):
    """The logged prediction already has its actual value."""


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
    head = (time.time_ns() // 1_000_000) << 16 | 0x7000 | secrets.randbits(12)
    start = secrets.randbits(62) % ((1 << 62) - n)  # room for the counter
    return [f"{head:016x}{_VARIANT | low:016x}" for low in range(start, start + n)]


# rows per INSERT statement: 64 x 14 parameters stay under the 999 of old SQLite builds
_ROWS_PER_INSERT = 64
# what the API writes for each prediction, in this order (``PredictionLog.record`` takes
# rows as tuples of these, or as dicts by column name)
LOGGED = ("request_id", "batch_id", "created_at", "model_name", "model_version", *FEATURES, "prediction")


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
    may be missing: the API adds them (``_add_missing_columns``)."""
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
            _add_missing_columns(self.engine, self.table)
        except UNAVAILABLE as exc:
            self.engine.dispose()
            raise unreachable(exc, uri, SETTING) from None
        except DatabaseError:
            self.engine.dispose()
            raise
        self._statements: dict[tuple[str, ...], tuple[str, Callable[[dict], tuple]]] = {}
        self._multi_row: dict[int, str] = {}  # rows -> INSERT of that many rows
        # SQLite has one writer at a time: queue in-process writers here rather than
        # have them spin on SQLITE_BUSY
        self._writing = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self.writer: LogWriter | None = None  # the API's group-commit thread (start_writer)
        self.problem: str | None = None  # why the last write failed, until one succeeds

    @contextlib.contextmanager
    def _available(self):
        try:
            yield
        except UNAVAILABLE as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            self.problem = (
                f"the prediction log ({redact(self.uri)}, table {self.table.name!r}) is unavailable: "
                f"{reason[0] if reason else type(exc).__name__}"
            )
            raise LogUnavailable(self.problem) from exc
        self.problem = None

    def record(self, rows: list[tuple] | list[dict[str, Any]]) -> None:
        """Commit the rows (one transaction) before the caller answers: tuples in
        ``LOGGED`` order (the API's), or dicts by column name. Both go to the driver
        as plain SQL and tuples, without SQLAlchemy's per-row parameter handling."""
        with self._available(), self._writing, self.engine.begin() as conn:
            if rows and isinstance(rows[0], tuple):
                # many rows per INSERT: one statement's work instead of one per row
                for start in range(0, len(rows), _ROWS_PER_INSERT):
                    part = rows[start : start + _ROWS_PER_INSERT]
                    conn.exec_driver_sql(
                        self._insert_rows(len(part)), tuple(itertools.chain.from_iterable(part))
                    )
            elif rows:
                sql, values = self._statement(tuple(rows[0]))
                conn.exec_driver_sql(sql, [values(row) for row in rows])

    def _insert_rows(self, count: int) -> str:
        """``INSERT ... VALUES (...), (...)`` for ``count`` rows in ``LOGGED`` order."""
        sql = self._multi_row.get(count)
        if sql is None:
            one, _ = self._statement(LOGGED)
            head, _, values = one.partition(" VALUES ")
            sql = self._multi_row[count] = f"{head} VALUES {', '.join([values] * count)}"
        return sql

    def _statement(self, keys: tuple[str, ...]) -> tuple[str, Callable[[dict], tuple]]:
        """The INSERT for rows with these keys, in the driver's parameter style, and what
        turns a row into its values (cached: rows come with the same keys)."""
        found = self._statements.get(keys)
        if found is None:
            unknown = [key for key in keys if key not in self.table.c]
            if unknown:
                raise ValueError(f"{unknown} are not columns of the prediction log {self.table.name!r}")
            quote = self.engine.dialect.identifier_preparer
            marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
            sql = (
                f"INSERT INTO {quote.format_table(self.table)} ({', '.join(quote.quote(k) for k in keys)}) "
                f"VALUES ({', '.join([marker] * len(keys))})"
            )
            getter = operator.itemgetter(*keys)
            found = sql, (getter if len(keys) > 1 else lambda row: (getter(row),))
            self._statements[keys] = found
        return found

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
            self.record,
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
        if self._checkpointer is not None:
            self._closing = True
            self._checkpoint_due.set()
            self._checkpointer.join(10)
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
