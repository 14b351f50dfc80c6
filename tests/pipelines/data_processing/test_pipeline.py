from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from housing.pipelines.data_processing import create_pipeline


def test_pipeline_turns_raw_table_into_study_split(raw_housing, params):
    catalog = DataCatalog(datasets={"raw_housing": MemoryDataset(raw_housing)})
    for key in ("validation", "raw_file", "split", "cleaning"):
        catalog[f"params:{key}"] = MemoryDataset(params[key])
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    train, test = (
        outputs["model_input_train"].load(),
        outputs["model_input_test"].load(),
    )
    assert len(test) == 4_128
    assert train.index.intersection(test.index).empty
    assert 16_400 < len(train) <= 16_512  # cleaning drops a few training rows only
    assert outputs["raw_data_version"].load() == params["raw_file"]
