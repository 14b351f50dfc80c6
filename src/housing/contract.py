"""The names every part of housing shares: the eight raw features and the target.

Standard library only, so the UI, the API and the pipelines can all import it without
pulling in one another (or pandas, scikit-learn, MLflow).
"""

from __future__ import annotations

# scikit-learn's names, in the order the registered model's input schema lists them
FEATURES: tuple[str, ...] = (
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
)
TARGET = "MedHouseVal"  # median house value of the block group, in $100,000s

# Counts and years: whole numbers in most sources (41, 322), which the registered model
# accepts as integers as well as floats, for any MLflow client
INTEGER_VALUED: tuple[str, ...] = ("HouseAge", "Population")
