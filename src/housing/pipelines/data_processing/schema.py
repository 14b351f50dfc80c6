"""The raw table's schema (pandera), built from ``parameters_data_processing.yml``.

Every rule is a named check so that one lazy validation reports every broken rule at
once, each as ``column: rule; N row(s): first rows``. Values are checked as they were
read (a text cell is reported as non-numeric, not as a failed cast), then cast to
float64 once everything passed.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from housing.pipelines.data_processing.features import FEATURES, TARGET

COLUMNS: tuple[str, ...] = (*FEATURES, TARGET)


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


def _column(low: float, high: float) -> pa.Column:
    # pandera skips missing values in checks (ignore_na); "not missing" is nullable=False
    return pa.Column(
        nullable=False,
        checks=[
            pa.Check(lambda s: _numbers(s).notna(), name="must be numeric"),
            pa.Check(lambda s: ~np.isinf(_numbers(s)), name="must be finite"),
            pa.Check(
                lambda s: ~np.isfinite(_numbers(s)) | _numbers(s).between(low, high),
                name=f"must lie in [{low}, {high}]",
            ),
        ],
    )


def raw_schema(rules: dict[str, Any]) -> pa.DataFrameSchema:
    """The nine columns with their ranges; extra columns are dropped (``strict="filter"``)."""
    min_rows = int(rules["min_rows"])
    return pa.DataFrameSchema(
        {name: _column(*rules["ranges"][name]) for name in COLUMNS},
        strict="filter",
        checks=[pa.Check(lambda df: len(df) >= min_rows, name=f"must have at least {min_rows} rows")],
        name="raw_housing",
    )


def _rows(index: list, limit: int, suffix: str = "") -> str:
    shown = ", ".join(str(i) for i in index[:limit])
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    return f"{len(index)} row(s): {shown}{more}{suffix}"


def describe_failures(errors: pa.errors.SchemaErrors, table: pd.DataFrame, limit: int) -> list[str]:
    """One line per broken rule: the column, the rule, how many rows and the first ones."""
    problems = []
    cases = errors.failure_cases
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        if check == "column_in_dataframe":
            continue  # reported before validation, with the expected columns
        if column not in COLUMNS:  # a check on the whole table
            problems.append(f"table: {check}; it has {len(table)}")
            continue
        rows = [i for i in group["index"].tolist() if i is not None and not pd.isna(i)]
        if check == "not_nullable":
            problems.append(f"{column}: must not be missing (NaN); {_rows(rows, limit)}")
        elif check == "must be numeric":
            examples = group["failure_case"].astype(str).unique()[:3].tolist()
            problems.append(
                f"{column}: {check}; {_rows(rows, limit)} hold non-numeric values such as {examples}"
            )
        elif check == "must be finite":
            problems.append(f"{column}: {check}; {_rows(rows, limit)} are ±inf")
        else:
            problems.append(f"{column}: {check}; {_rows(rows, limit, ' outside')}")
    return problems


def content_sha256(table: pd.DataFrame) -> str:
    """A checksum of the values (not the file's bytes): the same data written by another
    CSV writer has the same checksum, a changed value or a lost row does not."""
    values = table.loc[:, list(COLUMNS)].astype(np.float64).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(values, index=True).to_numpy(dtype=np.uint64)
    return hashlib.sha256(hashed.tobytes()).hexdigest()
