import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from housing.contract import FEATURES
from housing.simulation.scenarios import make_scenario


@pytest.fixture(scope="module")
def test_rows(raw_housing):
    """The held-out rows of the project's fixed split, which scenarios are built on."""
    return train_test_split(raw_housing, test_size=0.2, random_state=42)[1]


def test_scenarios_are_seeded(test_rows, params):
    settings = params["simulation"]["scenarios"]["inflation"]
    first = make_scenario(test_rows, "inflation", 500, settings)
    again = make_scenario(test_rows, "inflation", 500, settings)
    other = make_scenario(test_rows, "inflation", 500, {**settings, "seed": 99})
    assert first.equals(again) and not first.equals(other)
    assert list(first.columns) == [*FEATURES, "actual", "t"]


def test_inflation_grows_over_time_and_keeps_api_rules(test_rows):
    settings = {
        "seed": 0,
        "medinc_growth": 0.3,
        "population_growth": 1.5,
        "bedrooms_growth": 0.6,
        "price_growth": 0.4,
    }
    rows = make_scenario(test_rows, "inflation", 4_128, settings)
    late, early = rows[rows["t"] > 0.9], rows[rows["t"] < 0.1]
    ratio = late["MedInc"].median() / early["MedInc"].median()
    assert 1.1 < ratio < 1.6
    assert (rows["AveBedrms"] <= rows["AveRooms"]).all()
    assert (rows["Population"] >= 1).all()


def test_geographic_is_the_south_only(test_rows):
    rows = make_scenario(test_rows, "geographic", 1_000, {"seed": 0, "max_latitude": 34.5})
    assert rows["Latitude"].max() <= 34.5


def test_stable_draws_held_out_rows(test_rows):
    rows = make_scenario(test_rows, "stable", 100, {"seed": 0})
    merged = rows.merge(test_rows, on=list(FEATURES))
    assert len(merged) >= 100
    np.testing.assert_array_equal(rows["t"], np.linspace(0, 1, 100))


def test_unknown_scenario_and_bad_count(test_rows):
    with pytest.raises(
        ValueError,
        match=r"unknown scenario 'crash'; choose one of \['geographic', 'income_shift', 'inflation', 'regional', 'stable'\]",
    ):
        make_scenario(test_rows, "crash", 10, {})
    with pytest.raises(ValueError, match="n must be at least 1"):
        make_scenario(test_rows, "stable", 0, {})


def test_traffic_never_comes_from_the_rows_that_judge_retraining(test_rows):
    from housing.simulation.scenarios import traffic_pool, unseen_rows  # noqa: PLC0415

    pool, unseen = traffic_pool(test_rows), unseen_rows(test_rows)
    assert len(pool) + len(unseen) == len(test_rows) and pool.index.intersection(unseen.index).empty
    rows = make_scenario(test_rows, "stable", 2_000, {"seed": 0})
    assert rows.merge(unseen, on=list(FEATURES)).empty
    assert 0.45 < len(pool) / len(test_rows) < 0.55


def test_regional_raises_prices_inside_the_box_only(test_rows, params):
    settings = params["simulation"]["scenarios"]["regional"]
    rows = make_scenario(test_rows, "regional", 1_000, settings)
    box = settings["box"]
    inside = rows["Latitude"].between(*box["latitude"]) & rows["Longitude"].between(*box["longitude"])
    assert 0.45 < inside.mean() < 0.6  # region_share 0.5, plus statewide rows that fall inside
    truth = test_rows.set_index(list(FEATURES))["MedHouseVal"]
    original = truth.loc[pd.MultiIndex.from_frame(rows[list(FEATURES)])].to_numpy()
    expected = np.where(inside, np.minimum(original * 1.3, 5.00001), original)
    assert np.allclose(rows["actual"], expected)


def test_income_shift_moves_inputs_not_prices(test_rows, params):
    rows = make_scenario(test_rows, "income_shift", 1_000, params["simulation"]["scenarios"]["income_shift"])
    assert rows["MedInc"].mean() > 1.3 * test_rows["MedInc"].mean()
    truth = test_rows.set_index(list(FEATURES))["MedHouseVal"]
    assert np.allclose(rows["actual"], truth.loc[pd.MultiIndex.from_frame(rows[list(FEATURES)])].to_numpy())
