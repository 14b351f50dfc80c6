"""The raw table: a CSV that fetches itself through scikit-learn the first time."""

from __future__ import annotations

import logging
import os
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
from kedro.io.core import DatasetError, get_filepath_str
from kedro_datasets.pandas import CSVDataset

logger = logging.getLogger(__name__)


def _fetch_frame() -> pd.DataFrame:
    # imported here so loading an existing file never pays for sklearn.datasets
    from sklearn.datasets import fetch_california_housing  # noqa: PLC0415

    return fetch_california_housing(as_frame=True).frame


class CaliforniaHousingDataset(CSVDataset):
    """``pandas.CSVDataset`` that downloads the data with scikit-learn when missing.

    The file is exactly ``fetch_california_housing(as_frame=True).frame``. Offline with
    no file, loading fails with one message that says where to put it; there is never a
    synthetic stand-in.
    """

    def __init__(self, *, filepath: str, fetch: bool = True, **kwargs: Any) -> None:
        super().__init__(filepath=filepath, **kwargs)
        self._fetch = fetch

    def load(self) -> pd.DataFrame:
        if not self._exists():
            self._save_atomically(self._download())
        return super().load()

    def _save_atomically(self, frame: pd.DataFrame) -> None:
        """Write beside the target, then rename: an interrupted download never leaves a
        truncated file that the next run would take for the data."""
        target = get_filepath_str(PurePosixPath(self._filepath), self._protocol)
        temporary = f"{target}.part-{os.getpid()}"
        self._fs.makedirs(str(PurePosixPath(target).parent), exist_ok=True)
        try:
            with self._fs.open(temporary, mode="w") as handle:
                frame.to_csv(handle, index=False)
            self._fs.mv(temporary, target)
        finally:
            if self._fs.exists(temporary):
                self._fs.rm(temporary)

    def _download(self) -> pd.DataFrame:
        target = get_filepath_str(PurePosixPath(self._filepath), self._protocol)
        where = (
            f"Place the California Housing CSV (the frame of scikit-learn's "
            f"fetch_california_housing(as_frame=True), 20,640 rows, header MedInc ... "
            f"MedHouseVal) at {target}: offline, copy a California Housing CSV there from a "
            f"machine that has one."
        )
        if not self._fetch:
            raise DatasetError(f"Raw data file {target} does not exist. {where}")
        logger.info("Raw data %s is missing: downloading it with scikit-learn", target)
        try:
            frame = _fetch_frame()
        except Exception as exc:  # URLError, HTTPError, OSError, ssl errors, ...
            raise DatasetError(
                f"Raw data file {target} does not exist and downloading it with "
                f"scikit-learn failed ({type(exc).__name__}: {exc}). {where}"
            ) from exc
        logger.info("Saved %d downloaded rows to %s", len(frame), target)
        return frame
