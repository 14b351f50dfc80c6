"""The API's prediction log as a catalog entry, for the monitoring pipelines."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from kedro.io import AbstractDataset
from kedro.io.core import DatasetError

from housing.serving.prediction_log import prediction_table


class PredictionLogDataset(AbstractDataset[None, pd.DataFrame]):
    """Reads the table the API writes (any SQLAlchemy URI). A log that does not exist yet
    loads as an empty table, so the pipeline can say "serve some traffic first" rather
    than fail on a missing table. Read-only: only the API writes the log."""

    def __init__(self, *, uri: str, table: str = "predictions", metadata: dict[str, Any] | None = None):
        self._uri = uri
        self._table = table
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        engine = sa.create_engine(self._uri)
        try:
            if not sa.inspect(engine).has_table(self._table):
                columns = [c.name for c in prediction_table(self._table, sa.MetaData()).columns]
                return pd.DataFrame(columns=columns)
            return pd.read_sql_table(self._table, engine)
        finally:
            engine.dispose()

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError("the prediction log is written by the API only")

    def _describe(self) -> dict[str, Any]:
        return {"uri": self._uri, "table": self._table}
