"""Project datasets: where the catalog meets the outside world (files, the registry)."""

from housing.datasets.california_housing import CaliforniaHousingDataset
from housing.datasets.model_registry import ChampionDataset, ChampionReferenceDataset, ModelReleaseDataset
from housing.datasets.prediction_log import PredictionLogDataset

__all__ = [
    "CaliforniaHousingDataset",
    "ChampionDataset",
    "ChampionReferenceDataset",
    "ModelReleaseDataset",
    "PredictionLogDataset",
]
