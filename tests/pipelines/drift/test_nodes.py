import json

import pandas as pd
import pytest

from housing.pipelines.data_processing.features import FEATURES, TARGET
from housing.pipelines.drift.nodes import LOG_COLUMNS, MonitoringError, detect_drift, select_window
from housing.simulation.scenarios import make_scenario
from tests.pipelines.conftest import as_logged

WINDOW = {"last_n": None, "since": None, "until": None, "min_rows": 200}


@pytest.fixture(scope="module")
def traffic(split, champion, params):
    """1,500 logged rows of each scenario, as the API would have logged them."""
    test = split[1]
    scenarios = params["simulation"]["scenarios"]
    return {
        name: as_logged(make_scenario(test, name, 1_500, scenarios[name]), champion) for name in scenarios
    }


def test_stable_traffic_is_not_drift(reference, traffic, params):
    _, summary, _ = detect_drift(reference, traffic["stable"], params["drift"])
    assert summary["dataset_drift"] is False
    assert summary["n_drifted_columns"] <= 1


def test_inflation_is_drift_in_the_columns_that_moved(reference, traffic, params):
    _, summary, metrics = detect_drift(reference, traffic["inflation"], params["drift"])
    drifted = {c["column"] for c in summary["columns"] if c["drifted"]}
    assert summary["dataset_drift"] is True
    assert {"MedInc", "Population", "AveBedrms"} <= drifted
    assert not drifted & {"Latitude", "Longitude", "HouseAge"}
    assert metrics["drift.dataset_drift"]["value"] == 1.0
    # prices rose 40% by the end: the champion's production error shows it
    assert summary["performance"]["rmse"] > 0.5 and summary["performance"]["n_labelled"] == 1_500


def test_geographic_shift_is_drift_in_location(reference, traffic, params):
    _, summary, _ = detect_drift(reference, traffic["geographic"], params["drift"])
    drifted = {c["column"] for c in summary["columns"] if c["drifted"]}
    assert summary["dataset_drift"] is True
    assert {"Latitude", "Longitude"} <= drifted


def test_report_and_summary_are_complete(reference, traffic, params):
    report, summary, metrics = detect_drift(reference, traffic["stable"], params["drift"])
    assert report.startswith("<!doctype html>") and report.count("<iframe") == 2  # drift + performance
    assert [c["column"] for c in summary["columns"]] == [*LOG_COLUMNS[3:11], "prediction"]
    assert summary["n_current"] == 1_500 and summary["n_reference"] == len(reference)
    assert summary["model_versions"] == {"1": 1_500}
    json.dumps(summary)
    assert all(set(m) == {"value", "step"} for m in metrics.values())


def test_without_enough_ground_truth_there_is_no_performance_section(reference, traffic, params):
    unlabelled = traffic["stable"].assign(actual=None)
    report, summary, metrics = detect_drift(reference, unlabelled, params["drift"])
    assert summary["performance"] is None and report.count("<iframe") == 1
    assert not any(key.startswith("production.") for key in metrics)


def test_window_keeps_the_latest_rows(traffic):
    log = traffic["stable"].sample(frac=1.0, random_state=0)  # any order in the table
    rows = select_window(log, {**WINDOW, "last_n": 300})
    assert len(rows) == 300
    assert rows["created_at"].is_monotonic_increasing
    assert rows["created_at"].iloc[-1] == log["created_at"].max()


def test_window_by_time_range(traffic):
    log = traffic["stable"]
    since, until = log["created_at"].iloc[100], log["created_at"].iloc[700]
    rows = select_window(log, {**WINDOW, "since": since, "until": until})
    assert len(rows) == 600 and rows["created_at"].min() == since


def test_too_few_rows_says_how_many_it_has_and_needs(traffic):
    with pytest.raises(
        MonitoringError, match=r"holds 3 production row\(s\) \(of 3 logged\); drift needs at least 200"
    ):
        select_window(traffic["stable"].head(3), WINDOW)


def test_empty_log_says_what_to_do():
    with pytest.raises(MonitoringError, match="prediction log is empty.*housing simulate"):
        select_window(pd.DataFrame(columns=list(LOG_COLUMNS)), WINDOW)


def test_missing_column_is_named(traffic):
    with pytest.raises(MonitoringError, match=r"missing column\(s\) \['AveOccup'\]"):
        select_window(traffic["stable"].drop(columns="AveOccup"), WINDOW)


@pytest.mark.parametrize("seed", range(5))
def test_resamples_of_held_out_rows_are_not_drift(seed, reference, split, champion, params):
    """The reference is what production sends (raw rows) with honest (out-of-fold)
    predictions, so unseen rows of the same population flag nothing."""
    rows = split[1].sample(1_500, random_state=seed)
    current = as_logged(rows.assign(actual=rows[TARGET]), champion)
    _, summary, _ = detect_drift(reference, current, params["drift"])
    assert [c["column"] for c in summary["columns"] if c["drifted"]] == []
    assert summary["dataset_drift"] is False


def test_the_reference_error_is_out_of_sample(reference, split, champion):
    """In-sample predictions would make production look several times worse than it is."""
    reference_mae = (reference["prediction"] - reference["actual"]).abs().mean()
    test = split[1]
    test_mae = (champion.predict(test[list(FEATURES)]) - test[TARGET]).abs().mean()
    assert reference_mae == pytest.approx(test_mae, rel=0.15)


@pytest.mark.parametrize(
    ("scenario", "moved"),
    [("stable", False), ("income_shift", False), ("geographic", False), ("regional", True)],
)
def test_performance_drift_is_where_prices_moved(scenario, moved, reference, traffic, params):
    """A regional price change barely moves the inputs; the labelled rows show it."""
    _, summary, metrics = detect_drift(reference, traffic[scenario], params["drift"])
    assert summary["performance_drift"] is moved, summary["performance"]
    assert metrics["drift.performance_drift"]["value"] == float(moved)
    json.dumps(summary, allow_nan=False)
