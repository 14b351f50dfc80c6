"""/health, /ready, /model, /metrics and /admin/reload: what runs, and running it."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from housing.contract import FEATURES
from housing.serving.auth import UNAUTHORIZED_RESPONSES, AdminCaller
from housing.serving.deps import ModelDep, ServingDep
from housing.serving.errors import NOT_READY_RESPONSE
from housing.serving.schemas import House, ModelInfo, Reloaded, Status

router = APIRouter(tags=["operate"])


@router.get("/health", response_model=Status)
async def health() -> Status:
    """Alive (the process answers), whether or not a model is loaded."""
    return Status(status="ok")


@router.get("/ready", response_model=Status, responses=NOT_READY_RESPONSE)
async def ready(serving: ServingDep):
    """Ready when a model is loaded and the prediction log answers; 503 with why otherwise."""
    model = serving.model
    problem = serving.not_ready if model is None else await run_in_threadpool(serving.log.ping)
    if problem:
        return JSONResponse(Status(status="not ready", detail=problem).model_dump(), status_code=503)
    return Status(status="ready", model_version=model.version)


# the input rules as JSON Schema, built once (they are fixed at import)
FEATURE_SCHEMA = {name: House.model_json_schema()["properties"][name] for name in FEATURES}


@router.get("/model", response_model=ModelInfo, responses=NOT_READY_RESPONSE)
async def model_info(model: ModelDep) -> ModelInfo:
    """What is being served: registry name, version, alias, metrics, input schema."""
    return ModelInfo(
        name=model.name,
        version=model.version,
        alias=model.alias,
        candidate=model.candidate,
        run_id=model.run_id,
        trained_at=model.registered_at,
        metrics=model.metrics,
        features=FEATURE_SCHEMA,
        trees=model.trees,
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def prometheus_metrics(
    serving: ServingDep,
) -> PlainTextResponse:
    """Prometheus exposition format."""
    return PlainTextResponse(generate_latest(serving.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/admin/reload",
    response_model=Reloaded,
    responses={**UNAUTHORIZED_RESPONSES, **NOT_READY_RESPONSE},
)
async def reload(_admin: AdminCaller, serving: ServingDep) -> Reloaded:
    """Load the version that holds the alias now and swap it in atomically: requests in
    flight finish on the model they started with."""
    previous = serving.model.version if serving.model else None
    model = await serving.reload()
    if model is None:
        raise HTTPException(503, serving.not_ready)
    return Reloaded(
        previous_version=previous,
        model_version=model.version,
        changed=model.version != previous,
    )
