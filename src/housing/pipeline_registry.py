"""Project pipelines.

Composite pipelines are built here explicitly: ``find_pipelines()`` only knows folder
names, and ``kedro run --pipelines training`` would otherwise look for a
``pipelines/training`` package (STACK-NOTES).

explainability is only part of ``training``: it explains ``best_candidate``, an
in-memory output of modelling, so a run of it alone would have nothing to explain.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from housing.pipelines import data_processing, drift, explainability, modelling, retraining


def register_pipelines() -> dict[str, Pipeline]:
    processing = data_processing.create_pipeline()
    training = processing + modelling.create_pipeline() + explainability.create_pipeline()
    return {
        "data_processing": processing,
        "tuning": processing + modelling.create_tuning_pipeline(),
        "training": training,
        "drift": drift.create_pipeline(),
        "retraining": retraining.create_pipeline(),
        "__default__": training,
    }
