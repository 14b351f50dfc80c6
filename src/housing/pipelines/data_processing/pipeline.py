"""Raw table -> validated table -> fixed train/test split -> cleaned model input."""

from kedro.pipeline import Pipeline, node

from housing.pipelines.data_processing.nodes import (
    clean_training_rows,
    split_train_test,
    validate_raw_housing,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                validate_raw_housing,
                inputs=["raw_housing", "params:validation", "params:raw_file"],
                outputs=["validated_housing", "raw_data_version"],
                name="validate_raw_housing",
            ),
            node(
                split_train_test,
                inputs=["validated_housing", "params:split"],
                outputs=["train_split", "model_input_test"],
                name="split_train_test",
            ),
            node(
                clean_training_rows,
                inputs=["train_split", "params:cleaning"],
                outputs="model_input_train",
                name="clean_training_rows",
            ),
        ],
        tags=["data_processing"],
    )
