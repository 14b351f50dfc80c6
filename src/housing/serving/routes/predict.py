"""/predict, /predict/batch, /explain: prices, and why. Behind a predict token when
``auth.require_predict_token`` says so (the app adds the guard to this router)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from pydantic_core import to_json

from housing.explainer import group_contributions
from housing.serving.deps import ModelDep, serving_and_model
from housing.serving.errors import BODY_ERRORS, NOT_READY_RESPONSE
from housing.serving.log_table import now_iso, request_ids
from housing.serving.model import ServingModel
from housing.serving.schemas import (
    Batch,
    BatchResponse,
    Contribution,
    ExplainResponse,
    House,
    PredictionResponse,
)
from housing.serving.state import Serving

DOLLARS_PER_UNIT = 100_000

router = APIRouter(tags=["predict"])


def usd(value: float) -> float:
    return round(value * DOLLARS_PER_UNIT, 2)


def usd_many(values: np.ndarray) -> list[float]:
    """``usd`` of each value, in numpy for a batch (not a Python call per row): the same floats.
    ``round(x, 2)`` rounds x's exact value to cents (half to even) and returns the double
    nearest those cents; numpy rounds x·100, itself rounded, so the two can differ only
    where x·100 lies within a rounding of a half cent, and those few go through ``usd``."""
    dollars = values * DOLLARS_PER_UNIT
    scaled = dollars * 100
    out = np.rint(scaled) / 100  # k / 100 is the double nearest k cents, as round's is
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) <= np.abs(scaled) * 2.0**-50  # a few ulps
    out[near_half] = [usd(v) for v in values[near_half].tolist()]
    return out.tolist()


def _json_body(model: type) -> dict:
    """OpenAPI for a body the route validates itself (``_parse``): its schema, and the
    422 FastAPI would otherwise document."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_UNPROCESSABLE = {
    422: {
        "description": "Validation Error: `loc` names the field (and the house, in a batch)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
    }
}


def _parse(model: type, body: bytes):
    """Validate the body from its bytes with pydantic-core: FastAPI would ``json.loads``
    it, then validate the Python objects (twice the time). A refusal is FastAPI's 422,
    ``loc`` starting at the body."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


@router.post(
    "/predict",
    response_model=PredictionResponse,
    openapi_extra=_json_body(House),
    responses={**NOT_READY_RESPONSE, **BODY_ERRORS, **_UNPROCESSABLE},
)
async def predict(request: Request) -> Response:
    """Price one house."""
    serving, model = serving_and_model(request)
    row = house_row(await request.body())
    return Response(await price(serving, model, row), media_type="application/json")


def house_row(body: bytes) -> list[float]:
    """One house's features from the body, or FastAPI's 422."""
    return _parse(House, body).row()


async def price(serving: Serving, model: ServingModel, row: list[float]) -> bytes:
    """The answer to one house, committed to the log first: what ``/predict`` does once
    the body is valid and a model is in (the route, and the lane in lane.py)."""
    # tens of µs, so it runs on the event loop (no thread hop)
    value = model.predict_row(row)
    record = (request_ids()[0], None, now_iso(), model.name, model.version, *row, value)  # LOGGED order
    await serving.log.record_async([record])  # committed before we answer
    serving.metrics.predictions.labels(str(model.version)).inc()
    answer = {
        "request_id": record[0],
        "prediction": value,
        "price_usd": usd(value),
        "model_name": model.name,
        "model_version": model.version,
    }
    return to_json(answer)


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    openapi_extra=_json_body(Batch),
    responses={
        **NOT_READY_RESPONSE,
        **BODY_ERRORS,
        413: {"description": "more houses than max_batch_rows, or a body over max_body_bytes"},
        **_UNPROCESSABLE,
    },
)
async def predict_batch(request: Request) -> Response:
    """Price up to `max_batch_rows` houses (10,000 by default); answers in the same order."""
    serving, model = serving_and_model(request)
    batch = _parse(Batch, await request.body())
    limit = serving.config.max_batch_rows
    if len(batch.houses) > limit:
        raise HTTPException(
            413,
            f"houses: {len(batch.houses)} houses exceed the limit of {limit} per batch "
            "(serving.max_batch_rows); split the batch",
        )
    rows = [house.row() for house in batch.houses]
    batch_id, *ids = request_ids(len(rows) + 1)
    created = now_iso()
    name, version = model.name, model.version

    def work() -> tuple[list[tuple], bytes]:
        """Prices, log rows and the answer, off the event loop. The answer is built here,
        before the commit: built during it, it would hold the interpreter the writer
        thread needs between rows."""
        predicted = model.predict(np.array(rows), serving.config.batch_threads)
        values = predicted.tolist()
        records = [  # LOGGED order
            (request_id, batch_id, created, name, version, *row, value)
            for request_id, row, value in zip(ids, rows, values, strict=True)
        ]
        predictions = [
            {"request_id": request_id, "prediction": value, "price_usd": dollars}
            for request_id, value, dollars in zip(ids, values, usd_many(predicted), strict=True)
        ]
        body = {
            "batch_id": batch_id,
            "model_name": name,
            "model_version": version,
            "predictions": predictions,
        }
        return records, to_json(body)

    records, payload = await run_in_threadpool(work)  # big batches stay off the event loop
    await serving.log.record_async(records)  # committed before we answer
    serving.metrics.predictions.labels(str(version)).inc(len(records))
    return Response(payload, media_type="application/json")


@router.post(
    "/explain",
    response_model=ExplainResponse,
    responses={**NOT_READY_RESPONSE, **BODY_ERRORS},
)
async def explain(house: House, model: ModelDep) -> ExplainResponse:
    """Why this price: SHAP contributions of one house (TreeSHAP, ~30 ms for a 1,500-tree
    model, so it runs off the event loop). Not logged: it is not a served prediction."""
    if model.explainer is None:
        raise HTTPException(503, f"explanations are unavailable for this model ({model.explainer_error})")
    row = np.array([house.row()])
    base, contributions = await run_in_threadpool(model.explain, row)
    prediction = model.predict_row(house.row())  # the same number /predict answers
    groups = group_contributions(contributions.to_frame().T).iloc[0]

    def ranked(series: pd.Series) -> list[Contribution]:
        order = series.abs().sort_values(ascending=False).index
        return [Contribution(name=str(name), value=float(series[name])) for name in order]

    return ExplainResponse(
        model_name=model.name,
        model_version=model.version,
        prediction=prediction,
        price_usd=usd(prediction),
        base_value=base,
        contributions=ranked(contributions),
        groups=ranked(groups),
    )
