"""Validate, split and clean the raw table. Pure functions on DataFrames."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from housing.errors import HousingError
from housing.pipelines.data_processing.features import FEATURES, TARGET

logger = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (*FEATURES, TARGET)


class DataValidationError(HousingError):
    """The raw table breaks a rule; the message names the column, rule and rows."""


def _rows(mask: pd.Series, limit: int) -> str:
    bad = mask[mask].index
    shown = ", ".join(str(i) for i in bad[:limit])
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return f"{len(bad)} row(s): {shown}{more}"


def validate_raw_housing(raw: pd.DataFrame, rules: dict[str, Any]) -> pd.DataFrame:
    """Check the raw table against the schema and the plausible ranges in ``rules``.

    Every broken rule is reported in one error (not just the first), each naming the
    column, the rule and a few offending rows (0-based data rows, header excluded).
    Extra columns are dropped with a warning; the result holds the 9 columns as float64.
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

    problems: list[str] = []
    table = pd.DataFrame(index=raw.index)
    for column in COLUMNS:
        values = pd.to_numeric(raw[column], errors="coerce")
        not_numeric = values.isna() & raw[column].notna()
        if not_numeric.any():
            examples = raw.loc[not_numeric, column].astype(str).unique()[:3].tolist()
            problems.append(
                f"{column}: must be numeric; {_rows(not_numeric, limit)} hold "
                f"non-numeric values such as {examples}"
            )
        if raw[column].isna().any():
            problems.append(f"{column}: must not be missing (NaN); {_rows(raw[column].isna(), limit)}")
        finite = values.notna()
        infinite = finite & ~np.isfinite(values.where(finite, 0.0))
        if infinite.any():
            problems.append(f"{column}: must be finite; {_rows(infinite, limit)} are ±inf")
        low, high = rules["ranges"][column]
        out = finite & ~infinite & ~values.between(low, high)
        if out.any():
            problems.append(f"{column}: must lie in [{low}, {high}]; {_rows(out, limit)} outside")
        table[column] = values.astype(np.float64)

    if len(raw) < rules["min_rows"]:
        problems.append(f"table: must have at least {rules['min_rows']} rows; it has {len(raw)}")
    if problems:
        raise DataValidationError(
            f"raw_housing failed validation ({len(problems)} problem(s)):\n  - " + "\n  - ".join(problems)
        )
    logger.info("raw_housing: %d rows pass validation", len(table))
    return table


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
