"""The API's prediction log as a catalog entry, for the monitoring pipelines.

Loading gives a handle, not the table: the drift and retraining nodes ask it for their
window (the last N rows, a time range), and the window is a SQL query (``ORDER BY
created_at DESC LIMIT n``, ``WHERE created_at >= ...``, on the indexed time column), on
SQLite and PostgreSQL alike. A log of millions of rows costs what the window costs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError

from housing.db import create_engine, redact
from housing.serving.log_table import SETTING, check_columns, prediction_table


class PredictionLogTable:
    """The logged table, read on demand. A table that does not exist yet reads as empty,
    so the pipeline can say "serve some traffic first"; one without the API's columns is
    refused with the missing ones listed."""

    def __init__(self, uri: str, table: str = "predictions") -> None:
        self.uri = uri
        self.table = prediction_table(table, sa.MetaData())

    def _read(self, build) -> pd.DataFrame | None:
        """Run ``build(columns)`` on the table's columns that exist (a log written by an
        older API may lack newer nullable ones, read as empty); ``None``: no table yet."""
        engine = create_engine(self.uri, SETTING, pool_size=1, max_overflow=0)
        try:
            present = check_columns(engine, self.table, f"{SETTING} = {redact(self.uri)!r}")
            if present is None:
                return None
            with engine.connect() as conn:
                return pd.read_sql(build([c for c in self.table.columns if c.name in present]), conn)
        finally:
            engine.dispose()

    def window_query(
        self,
        last_n: int | None = None,
        since: str | None = None,
        until: str | None = None,
        columns: list[sa.Column] | None = None,
    ) -> sa.Select:
        """The rows of the window, newest first when ``last_n`` limits them."""
        t = self.table
        query = sa.select(*(columns or t.columns))
        if since:
            query = query.where(t.c.created_at >= str(since))
        if until:
            query = query.where(t.c.created_at < str(until))
        if last_n:
            return query.order_by(t.c.created_at.desc()).limit(int(last_n))
        return query.order_by(t.c.created_at)

    def window(
        self, last_n: int | None = None, since: str | None = None, until: str | None = None
    ) -> pd.DataFrame:
        """The window's rows, oldest first (ISO 8601 UTC bounds: ``since`` <= t < ``until``)."""
        frame = self._read(lambda columns: self.window_query(last_n, since, until, columns))
        if frame is None:
            return pd.DataFrame(columns=[c.name for c in self.table.columns])
        if last_n:
            frame = frame.iloc[::-1]
        return frame.reindex(columns=[c.name for c in self.table.columns]).reset_index(drop=True)

    def count(self) -> int:
        """All logged rows (for messages; the window never needs it)."""
        frame = self._read(lambda _columns: sa.select(sa.func.count().label("n")).select_from(self.table))
        return 0 if frame is None else int(frame["n"].iloc[0])


class PredictionLogDataset(AbstractDataset[None, PredictionLogTable]):
    """Reads the table the API writes (any SQLAlchemy URI; ``postgresql://`` means psycopg).
    Read-only: only the API writes the log."""

    def __init__(self, *, uri: str, table: str = "predictions", metadata: dict[str, Any] | None = None):
        self._uri = uri
        self._table = table
        self.metadata = metadata

    def load(self) -> PredictionLogTable:
        return PredictionLogTable(self._uri, self._table)

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError("the prediction log is written by the API only")

    def _describe(self) -> dict[str, Any]:
        return {"uri": redact(self._uri), "table": self._table}
