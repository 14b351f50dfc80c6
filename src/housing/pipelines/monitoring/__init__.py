"""monitoring: drift of production traffic against training, and retraining."""

from housing.pipelines.monitoring.pipeline import create_drift_pipeline, create_retraining_pipeline

__all__ = ["create_drift_pipeline", "create_retraining_pipeline"]
