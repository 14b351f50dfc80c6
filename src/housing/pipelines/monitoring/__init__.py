"""monitoring: drift of production traffic against training, and retraining."""

from housing.pipelines.monitoring.pipeline import create_drift_pipeline

__all__ = ["create_drift_pipeline"]
