"""data_processing pipeline."""

from housing.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
