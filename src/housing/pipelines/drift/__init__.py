"""drift pipeline: production traffic from the prediction log against the training rows."""

from housing.pipelines.drift.pipeline import create_pipeline

__all__ = ["create_pipeline"]
