"""SHAP of the best candidate on a sample of the test set: tables and figures.

It reads ``best_candidate``, an in-memory output of the modelling pipeline, so it runs
as part of ``training`` (same ``kedro run``, same MLflow run), never on its own.
"""

from kedro.pipeline import Pipeline, node

from housing.pipelines.explainability.nodes import (
    compute_shap_values,
    plot_shap_dependence,
    plot_shap_importance,
    plot_shap_summary,
    sample_rows,
    shap_importance,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                sample_rows,
                inputs=[
                    "model_input_test",
                    "params:explainability.sample_size",
                    "params:explainability.seed",
                ],
                outputs="shap_sample",
                name="sample_shap_rows",
            ),
            node(
                compute_shap_values,
                inputs=["best_candidate", "shap_sample"],
                outputs="shap_values",
                name="compute_shap_values",
            ),
            node(
                shap_importance,
                inputs="shap_values",
                outputs=["shap_importance_features", "shap_importance_groups"],
                name="summarise_shap_importance",
            ),
            node(
                plot_shap_summary,
                inputs=["shap_values", "params:explainability.max_display"],
                outputs="shap_summary_plot",
                name="plot_shap_summary",
            ),
            node(
                plot_shap_importance,
                inputs=[
                    "shap_values",
                    "shap_importance_features",
                    "shap_importance_groups",
                    "params:explainability.max_display",
                ],
                outputs="shap_importance_plot",
                name="plot_shap_importance",
            ),
            node(
                plot_shap_dependence,
                inputs=[
                    "shap_values",
                    "shap_importance_features",
                    "params:explainability.top_n_dependence",
                ],
                outputs="shap_dependence_plot",
                name="plot_shap_dependence",
            ),
        ],
        tags=["explainability"],
    )
