"""/feedback (ground truth for a logged prediction) and /monitoring/drift (the latest
drift verdict and report).

Labels train the challenger and weigh in the retraining gate, so they are a write that
must not be cheap to forge: a feedback token is required (auth.py), the value must be a
plausible MedHouseVal (finite, within ``feedback.actual_min``..``actual_max`` of
serving.yml: by default the range of the training data), a prediction takes one value
only, and the log records which token's name sent it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from housing.serving.auth import UNAUTHORIZED_RESPONSES, FeedbackCaller
from housing.serving.deps import ServingDep
from housing.serving.prediction_log import FeedbackConflict, UnknownRequest
from housing.serving.schemas import DriftSummary, Feedback, FeedbackResponse
from housing.serving.state import Serving

logger = logging.getLogger(__name__)

router = APIRouter(tags=["monitor"])


def _out_of_range(actual: float, low: float, high: float) -> JSONResponse:
    """A 422 shaped like FastAPI's own: the field in ``loc``, the rule in ``type``/``msg``."""
    error = {
        "type": "out_of_range",
        "loc": ["body", "actual"],
        "msg": (
            f"actual must be between {low} and {high} (MedHouseVal in $100,000s, the range of the "
            "training data; serving.yml feedback.actual_min/actual_max): send the observed value "
            "in units of $100,000, e.g. 2.5 for $250,000"
        ),
        "input": actual,
        "ctx": {"ge": low, "le": high},
    }
    return JSONResponse({"detail": [error]}, 422)


@router.post(
    "/feedback",
    response_model=FeedbackResponse,
    responses={
        **UNAUTHORIZED_RESPONSES,
        400: {"description": "the body could not be decoded"},
        404: {"description": "unknown request_id"},
        409: {"description": "already has a value"},
        413: {"description": "the body exceeds serving.max_body_bytes"},
        503: {"description": "the prediction log is unavailable"},
    },
)
async def feedback(item: Feedback, sender: FeedbackCaller, request: Request) -> FeedbackResponse:
    """Attach the observed value (e.g. the sale price) to a logged prediction, once.
    Needs a feedback token; the log keeps the token's name with the value."""
    serving = request.app.state.serving
    low, high = serving.config.feedback_actual
    if not low <= item.actual <= high:
        return _out_of_range(item.actual, low, high)
    try:
        logged = await serving.log.attach_actual_async(item.request_id, item.actual, sender)
    except UnknownRequest:
        raise HTTPException(404, f"request_id: no logged prediction has id {item.request_id!r}") from None
    except FeedbackConflict as exc:
        raise HTTPException(409, f"request_id: {exc}; an actual value is attached only once") from None
    return FeedbackResponse(request_id=item.request_id, actual=item.actual, **logged)


NO_DRIFT_REPORT = "no drift report yet: run `kedro run --pipelines=drift` (it needs logged predictions)"


async def _monitoring_output(serving: Serving, name: str) -> Any:
    if serving.source.report is None:
        raise HTTPException(404, NO_DRIFT_REPORT)
    try:
        return await run_in_threadpool(serving.source.report, name)
    except Exception as exc:  # the catalog's DatasetError: nothing written yet
        logger.info("No %s to serve: %s", name, exc)
        raise HTTPException(404, NO_DRIFT_REPORT) from None


@router.get(
    "/monitoring/drift",
    response_model=DriftSummary,
    responses={404: {"description": "no drift report yet"}},
)
async def drift_summary(serving: ServingDep) -> DriftSummary:
    """The latest drift verdict: dataset drift, each column's test and score, and the
    model's error on production rows that got ground truth."""
    return DriftSummary.model_validate(
        await _monitoring_output(serving, serving.config.drift_summary_dataset)
    )


@router.get(
    "/monitoring/drift/report",
    response_class=HTMLResponse,
    responses={404: {"description": "no drift report yet"}},
)
async def drift_report(serving: ServingDep) -> HTMLResponse:
    """The latest Evidently report (HTML)."""
    return HTMLResponse(await _monitoring_output(serving, serving.config.drift_report_dataset))
