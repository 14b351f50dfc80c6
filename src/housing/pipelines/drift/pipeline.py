"""`kedro run --pipelines=drift`: the prediction log's window against the training rows
the champion learned from; an HTML report, a JSON summary and MLflow metrics."""

from kedro.pipeline import Pipeline, node

from housing.pipelines.drift.nodes import detect_drift, keep_history, select_window


def create_pipeline(**kwargs) -> Pipeline:
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
