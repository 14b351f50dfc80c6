"""Validate, split and clean the raw table. Pure functions on DataFrames."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from sklearn.model_selection import train_test_split

from housing.errors import HousingError
from housing.pipelines.data_processing.schema import COLUMNS, content_sha256, describe_failures, raw_schema

logger = logging.getLogger(__name__)


class DataValidationError(HousingError):
    """The raw table breaks a rule; the message names the column, rule and rows."""


def validate_raw_housing(
    raw: pd.DataFrame, rules: dict[str, Any], expected: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Check the raw table against its schema and the file against what it should be.

    Every broken rule is reported in one error (lazy pandera validation), each naming the
    column, the rule and a few offending rows (0-based data rows, header excluded). With
    ``expected`` (``rows``, ``sha256`` of the values), a truncated or altered file is
    refused and says which. Returns the 9 columns as float64 and the data version (row
    count and checksum) that the run logs to MLflow.
    """
    limit = int(rules.get("max_rows_reported", 5))
    if raw.empty:
        raise DataValidationError(
            f"raw_housing is empty ({len(raw.columns)} column(s), 0 rows): expected "
            f"{len(COLUMNS)} columns {list(COLUMNS)} and at least {rules['min_rows']} rows"
        )
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"raw_housing is missing column(s) {missing}; expected {list(COLUMNS)}, found {list(raw.columns)}"
        )
    extra = [c for c in raw.columns if c not in COLUMNS]
    if extra:
        logger.warning("Dropping unexpected column(s) %s from raw_housing", extra)
    try:
        checked = raw_schema(rules).validate(raw, lazy=True)
    except pa.errors.SchemaErrors as errors:
        problems = describe_failures(errors, raw, limit)
        raise DataValidationError(
            f"raw_housing failed validation ({len(problems)} problem(s)):\n  - " + "\n  - ".join(problems)
        ) from None
    table = checked.loc[:, list(COLUMNS)].astype(np.float64)
    version = {"rows": len(table), "sha256": content_sha256(table)}
    _check_file(version, expected or {})
    logger.info(
        "raw_housing: %d rows pass validation (data version sha256 %s)", len(table), version["sha256"][:12]
    )
    return table, version


def _check_file(version: dict[str, Any], expected: dict[str, Any]) -> None:
    rows, sha = expected.get("rows"), expected.get("sha256")
    if rows is not None and version["rows"] != int(rows):
        raise DataValidationError(
            f"raw_housing has {version['rows']} rows where {rows} are expected: the file looks "
            f"{'truncated' if version['rows'] < int(rows) else 'appended to'}; restore it (delete it and "
            "the next run downloads it again), or set raw_file.rows in parameters_data_processing.yml "
            "for a different data set"
        )
    if sha and version["sha256"] != sha:
        raise DataValidationError(
            f"raw_housing has the expected {version['rows']} rows but its values were altered: checksum "
            f"{version['sha256']} is not the expected {sha} (raw_file.sha256 in "
            "parameters_data_processing.yml); restore the file, or update the checksum if the change is meant"
        )


def split_train_test(data: pd.DataFrame, split: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original study's split on the full table: the test rows never change.

    ``train_test_split(test_size=0.2, random_state=42)`` on the validated table picks
    the same 4,128 test rows every run, so every metric compares with the study's.
    """
    train, test = train_test_split(data, test_size=split["test_size"], random_state=split["random_state"])
    logger.info("Split %d rows into %d train / %d test", len(data), len(train), len(test))
    return train, test


def clean_training_rows(train: pd.DataFrame, cleaning: dict[str, Any]) -> pd.DataFrame:
    """Drop implausible districts from the *training* rows only.

    Extreme averages (hundreds of occupants or rooms per household) are group quarters
    or data errors; they teach the model nothing about homes. Test rows are never
    dropped, so the test set stays the study's. Capped targets (5.00001) and house ages
    (52) are kept: dropping them cost accuracy on the untouched test set.
    """
    keep = pd.Series(True, index=train.index)
    for column, limit in (cleaning.get("max") or {}).items():
        over = train[column] > limit
        if over.any():
            logger.info(
                "Cleaning: dropping %d training row(s) with %s > %s",
                over.sum(),
                column,
                limit,
            )
        keep &= ~over
    if cleaning.get("drop_duplicates", True):
        dup = train.duplicated()
        if dup.any():
            logger.info("Cleaning: dropping %d duplicated training row(s)", dup.sum())
        keep &= ~dup
    cleaned = train.loc[keep]
    if cleaned.empty:
        raise DataValidationError("cleaning dropped every training row: check parameters 'cleaning'")
    return cleaned
