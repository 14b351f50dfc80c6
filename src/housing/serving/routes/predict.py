"""/predict, /predict/batch, /explain: prices, and why. Behind a predict token when
``auth.require_predict_token`` says so (the app adds the guard to this router)."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool

from housing.contract import FEATURES
from housing.explainer import group_contributions
from housing.serving.deps import ModelDep, ServingDep
from housing.serving.errors import BODY_ERRORS, NOT_READY_RESPONSE
from housing.serving.model import ServingModel
from housing.serving.prediction_log import now_iso
from housing.serving.schemas import (
    Batch,
    BatchResponse,
    Contribution,
    ExplainResponse,
    House,
    Prediction,
    PredictionResponse,
)

DOLLARS_PER_UNIT = 100_000

router = APIRouter(tags=["predict"])


def log_record(
    model: ServingModel,
    row: tuple[float, ...],
    prediction: float,
    created: str,
    batch_id=None,
) -> dict:
    return {
        "request_id": uuid.uuid4().hex,
        "batch_id": batch_id,
        "created_at": created,
        "model_name": model.name,
        "model_version": model.version,
        **dict(zip(FEATURES, row, strict=True)),
        "prediction": prediction,
    }


def usd(value: float) -> float:
    return round(value * DOLLARS_PER_UNIT, 2)


@router.post(
    "/predict",
    response_model=PredictionResponse,
    responses={**NOT_READY_RESPONSE, **BODY_ERRORS},
)
async def predict(
    house: House,
    model: ModelDep,
    serving: ServingDep,
) -> PredictionResponse:
    """Price one house."""
    row = house.row()
    # sub-millisecond, so it runs on the event loop (no thread hop)
    value = float(model.predict(np.array([row]), 1)[0])
    record = log_record(model, row, value, now_iso())
    await serving.log.record_async([record])  # committed before we answer
    serving.metrics.predictions.labels(str(model.version)).inc()
    return PredictionResponse(
        request_id=record["request_id"],
        prediction=value,
        price_usd=usd(value),
        model_name=model.name,
        model_version=model.version,
    )


@router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses={
        **NOT_READY_RESPONSE,
        **BODY_ERRORS,
        413: {"description": "more houses than max_batch_rows, or a body over max_body_bytes"},
    },
)
async def predict_batch(
    batch: Batch,
    model: ModelDep,
    serving: ServingDep,
) -> BatchResponse:
    """Price up to `max_batch_rows` houses (10,000 by default); answers in the same order."""
    limit = serving.config.max_batch_rows
    if len(batch.houses) > limit:
        raise HTTPException(
            413,
            f"houses: {len(batch.houses)} houses exceed the limit of {limit} per batch "
            "(serving.max_batch_rows); split the batch",
        )
    rows = [house.row() for house in batch.houses]
    batch_id, created = uuid.uuid4().hex, now_iso()

    def work() -> list[dict]:
        values = model.predict(np.array(rows), serving.config.batch_threads).tolist()
        return [log_record(model, r, v, created, batch_id) for r, v in zip(rows, values, strict=True)]

    records = await run_in_threadpool(work)  # big batches stay off the event loop
    await serving.log.record_async(records)  # committed before we answer
    serving.metrics.predictions.labels(str(model.version)).inc(len(records))
    return BatchResponse(
        batch_id=batch_id,
        model_name=model.name,
        model_version=model.version,
        predictions=[
            Prediction(
                request_id=r["request_id"],
                prediction=r["prediction"],
                price_usd=usd(r["prediction"]),
            )
            for r in records
        ],
    )


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
    prediction = float(model.predict(row, 1)[0])  # the same number /predict answers
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
