import pandas as pd
import pytest
from kedro.io.core import DatasetError

from housing.datasets import PredictionLogDataset
from housing.pipelines.monitoring.nodes import LOG_COLUMNS, MonitoringError, select_window
from housing.serving.prediction_log import PredictionLog, now_iso


def test_a_log_that_does_not_exist_yet_is_empty_with_the_api_columns(tmp_path):
    log = PredictionLogDataset(uri=f"sqlite:///{tmp_path / 'missing.db'}").load()
    assert log.empty and set(LOG_COLUMNS) <= set(log.columns)
    with pytest.raises(MonitoringError, match="prediction log is empty"):
        select_window(log, {"min_rows": 1})


def test_reads_what_the_api_wrote(tmp_path):
    uri = f"sqlite:///{tmp_path / 'log.db'}"
    row = {
        "request_id": "a",
        "batch_id": None,
        "created_at": now_iso(),
        "model_name": "m",
        "model_version": 3,
        "MedInc": 1.0,
        "HouseAge": 2.0,
        "AveRooms": 3.0,
        "AveBedrms": 1.0,
        "Population": 5.0,
        "AveOccup": 2.0,
        "Latitude": 34.0,
        "Longitude": -118.0,
        "prediction": 1.5,
    }
    PredictionLog(uri).record([row])
    log = PredictionLogDataset(uri=uri).load()
    assert len(log) == 1 and log.loc[0, "model_version"] == 3 and log.loc[0, "prediction"] == 1.5


def test_is_read_only(tmp_path):
    with pytest.raises(DatasetError, match="written by the API only"):
        PredictionLogDataset(uri=f"sqlite:///{tmp_path / 'x.db'}").save(pd.DataFrame({"a": [1]}))
