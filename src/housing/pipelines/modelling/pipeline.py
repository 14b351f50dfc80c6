"""Tune each candidate in its own namespace, compare them, register the best.

In kedro-viz every candidate is a collapsible ``<candidate>`` block (tune -> fit ->
evaluate); the comparison and the promotion gate sit after them.
"""

from kedro.pipeline import Pipeline, node

from housing.pipelines.modelling.nodes import (
    compare_candidates,
    evaluate_candidate,
    fit_candidate,
    prepare_cv_folds,
    select_best_candidate,
    tune_hyperparameters,
)
from housing.pipelines.modelling.promotion import (
    build_drift_reference,
    compare_with_champion,
    decide_promotion,
)
from housing.pipelines.modelling.reports import (
    comparison_to_markdown,
    comparison_to_mlflow_metrics,
    plot_comparison,
)

# Namespaces; each has a `<name>.candidate` block in parameters_modelling.yml.
CANDIDATES = ("linear_regression", "random_forest", "gradient_boosting", "lightgbm")


def _tuning(name: str) -> Pipeline:
    return Pipeline(
        [
            node(
                tune_hyperparameters,
                inputs=["model_input_train", "cv_folds", "params:candidate", "params:tuning"],
                outputs=["tuning_result", "tuning_trials", "oof_predictions"],
                name="tune_hyperparameters",
            )
        ],
        namespace=name,
        inputs={"model_input_train", "cv_folds"},
        parameters={"params:tuning"},
        tags=["tuning"],
    )


def _fit_and_evaluate(name: str) -> Pipeline:
    return Pipeline(
        [
            node(
                fit_candidate,
                inputs=[
                    "model_input_train",
                    "params:candidate",
                    "params:feature_engineering",
                    "tuning_result",
                ],
                outputs="model",
                name="fit_candidate",
            ),
            node(
                evaluate_candidate,
                inputs=["model", "model_input_test", "tuning_result"],
                outputs="metrics",
                name="evaluate_candidate",
            ),
        ],
        namespace=name,
        inputs={"model_input_train", "model_input_test"},
        parameters={"params:feature_engineering"},
    )


def create_tuning_pipeline() -> Pipeline:
    """Only the searches: what extra workers run against a shared Optuna storage."""
    folds = Pipeline(
        [
            node(
                prepare_cv_folds,
                inputs=["model_input_train", "params:feature_engineering", "params:tuning"],
                outputs="cv_folds",
                name="prepare_cv_folds",
            )
        ]
    )
    return folds + sum((_tuning(name) for name in CANDIDATES), Pipeline([]))


def create_pipeline(**kwargs) -> Pipeline:
    candidates = create_tuning_pipeline() + sum(
        (_fit_and_evaluate(name) for name in CANDIDATES), Pipeline([])
    )
    selection = Pipeline(
        [
            node(
                compare_candidates,
                inputs={name: f"{name}.metrics" for name in CANDIDATES},
                outputs="model_comparison",
                name="compare_candidates",
            ),
            node(
                comparison_to_markdown,
                inputs=["model_comparison", "params:reference_study"],
                outputs="model_comparison_markdown",
                name="write_comparison_table",
            ),
            node(
                plot_comparison,
                inputs=["model_comparison", "params:reference_study"],
                outputs="model_comparison_chart",
                name="plot_comparison",
            ),
            node(
                comparison_to_mlflow_metrics,
                inputs="model_comparison",
                outputs="candidate_metrics",
                name="log_candidate_metrics",
            ),
            node(
                select_best_candidate,
                inputs={
                    "comparison": "model_comparison",
                    **{name: f"{name}.model" for name in CANDIDATES},
                    **{f"{name}_oof": f"{name}.oof_predictions" for name in CANDIDATES},
                },
                outputs="best_candidate",
                name="select_best_candidate",
            ),
            node(
                build_drift_reference,
                inputs=["train_split", "best_candidate", "params:drift.reference"],
                outputs="drift_reference",
                name="build_drift_reference",
            ),
            node(
                compare_with_champion,
                inputs=["best_candidate", "current_champion", "model_input_train", "model_input_test"],
                outputs="head_to_head",
                name="compare_with_champion",
            ),
            node(
                decide_promotion,
                inputs=[
                    "best_candidate",
                    "head_to_head",
                    "model_input_train",
                    "model_input_test",
                    "drift_reference",
                    "raw_data_version",
                    "params:promotion",
                ],
                outputs=["model_release", "promotion_decision"],
                name="decide_promotion",
            ),
        ]
    )
    return Pipeline([candidates, selection], tags=["modelling"])
