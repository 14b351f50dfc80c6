"""`kedro run --pipelines=drift` (the prediction log against the training data) and
`kedro run --pipelines=retraining` (a challenger from labelled production rows)."""

from kedro.pipeline import Pipeline, node

from housing.pipelines.monitoring.nodes import detect_drift, keep_history, select_window
from housing.pipelines.monitoring.retraining import judge_challenger, labelled_production, retrain


def create_drift_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                select_window,
                inputs=["prediction_log", "params:drift.window"],
                outputs="production_window",
                name="select_production_window",
            ),
            node(
                detect_drift,
                inputs=["champion_drift_reference", "production_window", "params:drift"],
                outputs=["drift_report", "drift_summary", "drift_metrics"],
                name="detect_drift",
            ),
            node(
                keep_history,
                inputs=["drift_report", "drift_summary"],
                outputs=["drift_report_history", "drift_summary_history"],
                name="keep_drift_history",
            ),
        ],
        tags=["monitoring", "drift"],
    )


def create_retraining_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                labelled_production,
                inputs=["prediction_log", "params:retraining.window", "params:retraining.holdout_share"],
                outputs=["production_train", "production_holdout"],
                name="split_labelled_production",
            ),
            node(
                retrain,
                inputs=["current_champion", "model_input_train", "production_train", "params:retraining"],
                outputs="challenger",
                name="retrain_challenger",
            ),
            node(
                judge_challenger,
                inputs=[
                    "challenger",
                    "current_champion",
                    "model_input_test",
                    "production_holdout",
                    "params:retraining.gate",
                ],
                outputs=["model_release", "retraining_decision", "retraining_metrics"],
                name="judge_challenger",
            ),
        ],
        tags=["monitoring", "retraining"],
    )
