"""`kedro run --pipelines=retraining`: challengers from labelled production rows; the best
that passes the gate (gate.py, selection.py) is released and takes the alias."""

from kedro.pipeline import Pipeline, node

from housing.pipelines.retraining.nodes import labelled_production, retrain_candidates
from housing.pipelines.retraining.selection import judge_challengers


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                labelled_production,
                inputs=["prediction_log", "params:retraining.window", "params:retraining.holdout_share"],
                outputs=["production_train", "production_holdout"],
                name="split_labelled_production",
            ),
            node(
                retrain_candidates,
                inputs=["current_champion", "model_input_train", "production_train", "params:retraining"],
                outputs="challengers",
                name="retrain_challengers",
            ),
            node(
                judge_challengers,
                inputs=[
                    "challengers",
                    "current_champion",
                    "model_input_test",
                    "production_train",
                    "production_holdout",
                    "params:retraining.gate",
                ],
                outputs=["model_release", "retraining_decision", "retraining_metrics", "retraining_report"],
                name="judge_challengers",
            ),
        ],
        tags=["monitoring", "retraining"],
    )
