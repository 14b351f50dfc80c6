"""Project pipelines.

Composite pipelines are built here explicitly: ``find_pipelines()`` only knows folder
names, and ``kedro run --pipelines training`` would otherwise look for a
``pipelines/training`` package (STACK-NOTES).

explainability is only part of ``training``: it explains ``best_candidate``, an
in-memory output of modelling, so a run of it alone would have nothing to explain.
"""

from __future__ import annotations

import warnings

from kedro.pipeline import Pipeline

from housing.pipelines import data_processing, drift, explainability, modelling, retraining

# The selection nodes read the candidates' namespaced outputs (`lightgbm.model`): Kedro's
# own dot notation, which its advisory warning about dots in dataset names cannot tell
# apart from a stray dot (kedro-org/kedro#5021); every dotted name here is a namespace.
warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)


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
