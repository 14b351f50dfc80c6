"""retraining pipeline: challengers from labelled production rows, judged by the gate."""

from housing.pipelines.retraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]
