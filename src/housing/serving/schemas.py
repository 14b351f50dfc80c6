"""The HTTP contract: what a house is, and what each endpoint answers.

The rules are physical (finite numbers, counts at least one, averages above zero, a
location inside California) so that bad input is refused before it reaches the model,
with FastAPI's 422 naming the field and the rule. Strict numbers: ``"3.5"`` or ``true``
is a client bug, not a number.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from housing.pipelines.data_processing.features import FEATURES


def _number(description: str, example: float, **bounds: float):
    return Annotated[float, Field(strict=True, description=description, examples=[example], **bounds)]


# California's bounding box, with a little slack for rounding.
LATITUDE = (32.4, 42.1)
LONGITUDE = (-124.5, -114.0)


class House(BaseModel):
    """One census block group, by scikit-learn's feature names. Besides each field's
    bounds, AveBedrms must not exceed AveRooms (bedrooms are rooms)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "MedInc": 8.3252,
                    "HouseAge": 41.0,
                    "AveRooms": 6.984127,
                    "AveBedrms": 1.02381,
                    "Population": 322.0,
                    "AveOccup": 2.555556,
                    "Latitude": 37.88,
                    "Longitude": -122.23,
                }
            ]
        },
    )

    MedInc: _number("median household income, tens of thousands of $", 8.3252, gt=0, le=100)
    HouseAge: _number("median house age, years", 41.0, ge=0, le=200)
    AveRooms: _number("average rooms per household", 6.984127, gt=0, le=1000)
    AveBedrms: _number("average bedrooms per household", 1.02381, ge=0, le=1000)
    Population: _number("people living in the block group", 322.0, ge=1, le=1_000_000)
    AveOccup: _number("average people per household", 2.555556, gt=0, le=10_000)
    Latitude: _number("degrees north, inside California", 37.88, ge=LATITUDE[0], le=LATITUDE[1])
    Longitude: _number("degrees east, inside California", -122.23, ge=LONGITUDE[0], le=LONGITUDE[1])

    @model_validator(mode="after")
    def _bedrooms_are_rooms(self) -> House:
        if self.AveBedrms > self.AveRooms:
            raise ValueError(
                f"AveBedrms ({self.AveBedrms}) must not exceed AveRooms ({self.AveRooms}): bedrooms are rooms"
            )
        return self

    def row(self) -> tuple[float, ...]:
        """The eight values in ``FEATURES`` order."""
        return _ROW(self)


_ROW = attrgetter(*FEATURES)


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    houses: list[House] = Field(min_length=1, description="houses to price, answered in the same order")


class Prediction(BaseModel):
    request_id: str = Field(description="quote it in POST /feedback to attach the real value")
    prediction: float = Field(description="predicted MedHouseVal, in units of $100,000")
    price_usd: float = Field(description="the same prediction in dollars")


class PredictionResponse(Prediction):
    model_name: str
    model_version: int


class BatchResponse(BaseModel):
    batch_id: str
    model_name: str
    model_version: int
    predictions: list[Prediction]


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    request_id: str = Field(min_length=1, max_length=64)
    actual: float = Field(strict=True, gt=0, le=1000, description="observed MedHouseVal, $100,000s")


class FeedbackResponse(BaseModel):
    request_id: str
    actual: float
    prediction: float
    model_version: int


class ModelInfo(BaseModel):
    name: str
    version: int
    alias: str
    candidate: str | None
    run_id: str | None
    trained_at: str | None = Field(description="when this version was registered (UTC, ISO 8601)")
    metrics: dict[str, float] = Field(description="test-set metrics recorded at training")
    features: dict[str, dict] = Field(description="input schema: each feature's description and bounds")
    trees: str = Field(
        "",
        description="what evaluates the model now (the LightGBM booster, its tree tables or its "
        "compiled trees), then what is in preparation or why the faster paths are not in use",
    )


class Status(BaseModel):
    status: str
    detail: str | None = None
    model_version: int | None = None


class Reloaded(BaseModel):
    previous_version: int | None
    model_version: int
    changed: bool


class Contribution(BaseModel):
    name: str
    value: float = Field(description="SHAP contribution to MedHouseVal, $100,000s")


class ExplainResponse(BaseModel):
    model_name: str
    model_version: int
    prediction: float = Field(description="predicted MedHouseVal, $100,000s")
    price_usd: float
    base_value: float = Field(description="the model's average prediction, where contributions start")
    contributions: list[Contribution] = Field(
        description="each engineered feature's SHAP value, largest magnitude first; "
        "base_value + their sum = prediction"
    )
    groups: list[Contribution] = Field(
        description="the same summed into what a person reasons about (Location, MedInc, ...), "
        "largest magnitude first"
    )


class DriftColumn(BaseModel):
    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


class DriftSummary(BaseModel):
    """The latest `kedro run --pipelines=drift` verdict."""

    generated_at: str
    dataset_drift: bool
    drift_share: float = Field(description="share of drifted columns (8 inputs + the prediction)")
    drift_share_threshold: float
    n_drifted_columns: int
    n_reference: int
    n_current: int
    window: dict[str, str]
    model_versions: dict[str, int]
    columns: list[DriftColumn]
    performance: dict[str, float] | None = Field(description="RMSE, MAE, R² on labelled production rows")
    report_url: str
