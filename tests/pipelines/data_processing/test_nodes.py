import io

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from housing.pipelines.data_processing.nodes import (
    COLUMNS,
    DataValidationError,
    clean_training_rows,
    split_train_test,
    validate_raw_housing,
)


def _validate(raw, rules, expected=None):
    table, _ = validate_raw_housing(raw, rules, expected)
    return table


@pytest.fixture
def rules(params):
    return params["validation"]


@pytest.fixture
def sample(raw_housing):
    return raw_housing.head(300).copy()


def test_real_data_passes_validation(raw_housing, rules):
    table = _validate(raw_housing, rules)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 20_640
    assert (table.dtypes == np.float64).all()


def test_extra_columns_are_dropped(sample, rules):
    sample["ocean_view"] = "yes"
    assert list(_validate(sample, rules).columns) == list(COLUMNS)


def test_empty_table_is_rejected(rules):
    with pytest.raises(DataValidationError, match=r"raw_housing is empty.*expected 9 columns"):
        _validate(pd.DataFrame(columns=list(COLUMNS)), rules)


def test_missing_column_is_named(sample, rules):
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['AveOccup'\]"):
        _validate(sample.drop(columns="AveOccup"), rules)


def test_non_numeric_value_names_column_row_and_value(sample, rules):
    sample["HouseAge"] = sample["HouseAge"].astype(object)
    sample.loc[7, "HouseAge"] = "forty"
    with pytest.raises(DataValidationError) as err:
        _validate(sample, rules)
    message = str(err.value)
    assert "HouseAge: must be numeric; 1 row(s): 7" in message
    assert "'forty'" in message


def test_nan_names_column_and_rows(sample, rules):
    sample.loc[[3, 5], "MedInc"] = np.nan
    with pytest.raises(
        DataValidationError,
        match=r"MedInc: must not be missing \(NaN\); 2 row\(s\): 3, 5",
    ):
        _validate(sample, rules)


def test_infinite_value_is_rejected(sample, rules):
    sample.loc[4, "AveRooms"] = np.inf
    with pytest.raises(DataValidationError, match=r"AveRooms: must be finite; 1 row\(s\): 4"):
        _validate(sample, rules)


def test_out_of_range_names_rule_and_truncates_rows(sample, rules):
    sample.loc[list(range(10)), "Latitude"] = 55.0
    with pytest.raises(DataValidationError) as err:
        _validate(sample, rules)
    assert "Latitude: must lie in [32.0, 42.5]; 10 row(s): 0, 1, 2, 3, 4 and 5 more outside" in str(err.value)


def test_every_problem_is_reported_at_once(sample, rules):
    sample.loc[1, "MedInc"] = np.nan
    sample.loc[2, "Longitude"] = 0.0
    with pytest.raises(DataValidationError) as err:
        _validate(sample, rules)
    assert "2 problem(s)" in str(err.value)
    assert "MedInc" in str(err.value) and "Longitude" in str(err.value)


def test_too_few_rows(raw_housing, rules):
    with pytest.raises(DataValidationError, match=r"at least 100 rows; it has 10"):
        _validate(raw_housing.head(10), rules)


def test_split_is_exactly_the_studys(raw_housing, params):
    train, test = split_train_test(_validate(raw_housing, params["validation"]), params["split"])
    _, expected_test = train_test_split(raw_housing, test_size=0.2, random_state=42)
    assert len(test) == 4_128 and len(train) == 16_512
    assert test.index.equals(expected_test.index)
    pd.testing.assert_frame_equal(test, expected_test.astype(np.float64))


def test_cleaning_drops_only_implausible_training_rows(raw_housing, params):
    train = raw_housing.copy()
    train.loc[0, "AveOccup"] = 500.0
    train = pd.concat([train, train.iloc[[1]]])  # one duplicate
    cleaned = clean_training_rows(train, params["cleaning"])
    assert 0 not in cleaned.index
    assert not cleaned.duplicated().any()
    assert (cleaned["AveOccup"] <= params["cleaning"]["max"]["AveOccup"]).all()
    assert len(cleaned) >= len(raw_housing) - 100  # mild: a few dozen rows at most


def test_cleaning_that_drops_everything_is_an_error(raw_housing):
    with pytest.raises(DataValidationError, match="dropped every training row"):
        clean_training_rows(raw_housing.head(50), {"max": {"MedInc": -1}})


def test_the_file_is_checked_against_its_expected_rows_and_checksum(raw_housing, rules, params):
    expected = params["raw_file"]
    table, version = validate_raw_housing(raw_housing, rules, expected)
    assert version == {"rows": 20_640, "sha256": expected["sha256"]}
    # the same values written by another CSV writer are the same data
    rewritten = pd.read_csv(
        io.StringIO(raw_housing.to_csv(index=False, float_format="%.17g")), float_precision="round_trip"
    )
    assert validate_raw_housing(rewritten, rules, expected)[1] == version


def test_a_truncated_file_is_refused_and_said_so(raw_housing, rules, params):
    with pytest.raises(
        DataValidationError, match=r"has 20000 rows where 20640 are expected: the file looks truncated"
    ):
        validate_raw_housing(raw_housing.head(20_000), rules, params["raw_file"])


def test_an_altered_file_is_refused_and_said_so(raw_housing, rules, params):
    altered = raw_housing.copy()
    altered.loc[123, "MedInc"] += 0.5  # still plausible: only the checksum can tell
    with pytest.raises(DataValidationError, match=r"expected 20640 rows but its values were altered"):
        validate_raw_housing(altered, rules, params["raw_file"])


def test_every_rule_of_every_column_is_reported_in_one_message(sample, rules):
    sample["HouseAge"] = sample["HouseAge"].astype(object)
    sample.loc[7, "HouseAge"] = "forty"
    sample.loc[3, "MedInc"] = np.nan
    sample.loc[4, "AveRooms"] = np.inf
    sample.loc[[0, 1], "Latitude"] = 55.0
    with pytest.raises(DataValidationError) as err:
        _validate(sample, rules)
    message = str(err.value)
    assert "4 problem(s)" in message
    for line in (
        "HouseAge: must be numeric; 1 row(s): 7",
        "MedInc: must not be missing (NaN); 1 row(s): 3",
        "AveRooms: must be finite; 1 row(s): 4",
        "Latitude: must lie in [32.0, 42.5]; 2 row(s): 0, 1 outside",
    ):
        assert line in message
