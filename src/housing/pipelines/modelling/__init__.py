"""modelling pipeline."""

from housing.pipelines.modelling.pipeline import create_pipeline, create_tuning_pipeline

__all__ = ["create_pipeline", "create_tuning_pipeline"]
