"""explainability pipeline: SHAP values, plots and tables of the best candidate."""

from housing.pipelines.explainability.pipeline import create_pipeline

__all__ = ["create_pipeline"]
