"""The prediction API: thin, strict and fast.

The model comes from the MLflow registry through the Kedro catalog (the
``current_champion`` entry the training pipeline defined); nothing here knows how it was
trained. Each accepted prediction is committed to the prediction log before it is
answered; the monitoring pipeline reads that log.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from housing import __version__
from housing.db import DatabaseError
from housing.explainer import group_contributions
from housing.pipelines.data_processing.features import FEATURES
from housing.serving import feedback
from housing.serving.auth import UNAUTHORIZED_RESPONSES, AdminCaller, Credentials, require
from housing.serving.metrics import BodySizeLimitMiddleware, Metrics, MetricsMiddleware
from housing.serving.model import ServingModel
from housing.serving.prediction_log import LogUnavailable, PredictionLog, now_iso
from housing.serving.schemas import (
    Batch,
    BatchResponse,
    Contribution,
    DriftSummary,
    ExplainResponse,
    House,
    ModelInfo,
    Prediction,
    PredictionResponse,
    Reloaded,
    Status,
)

logger = logging.getLogger(__name__)

DOLLARS_PER_UNIT = 100_000


@dataclass
class ServingConfig:
    """``conf/<env>/serving.yml``, flattened."""

    prediction_log_uri: str
    prediction_log_table: str = "predictions"
    sqlite_synchronous: str = "NORMAL"
    prediction_log_pool: dict[str, Any] | None = None  # pool sizes, connect timeout (PostgreSQL)
    max_batch_rows: int = 10_000
    max_body_bytes: int = 8 * 1024 * 1024
    poll_seconds: float = 0.0
    credentials: Credentials = field(default_factory=Credentials)  # none: feedback, admin off
    feedback_actual: tuple[float, float] = (0.14999, 5.00001)  # MedHouseVal's range in the data
    batch_threads: int = 2
    model_dataset: str = "current_champion"
    drift_summary_dataset: str = "drift_summary"
    drift_report_dataset: str = "drift_report"

    @classmethod
    def from_conf(cls, conf: dict[str, Any]) -> ServingConfig:
        log = conf.get("prediction_log") or {}
        flat = {
            **{k: v for k, v in conf.items() if k not in {"prediction_log", "auth", "feedback", "server"}},
            "prediction_log_uri": log.get("uri"),
            "prediction_log_table": log.get("table", "predictions"),
            "sqlite_synchronous": log.get("sqlite_synchronous", "NORMAL"),
            "prediction_log_pool": log.get("pool"),
            "credentials": Credentials.from_env(
                predict_required=(conf.get("auth") or {}).get("require_predict_token", False)
            ),
            **feedback.bounds_from_conf(conf.get("feedback")),
        }
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in flat.items() if k in known})


@dataclass
class ModelSource:
    """Where models come from: ``load`` the champion (or ``None``), and ``version`` of
    the champion now (cheap; for polling)."""

    load: Callable[[], ServingModel | None]
    version: Callable[[], int | None]
    describe: str = "the MLflow registry"
    report: Callable[[str], Any] | None = None  # a monitoring output by catalog name


NOT_READY = (
    "No model is loaded: {why}. Train and register one with `kedro run --pipelines=training`, "
    "then restart the API or POST /admin/reload."
)


class Serving:
    """What the app holds between requests: the model (swapped whole, never mutated),
    the prediction log, the metrics and where new models come from."""

    def __init__(self, config: ServingConfig, source: ModelSource) -> None:
        self.config = config
        self.source = source
        self.metrics = Metrics()
        self.model: ServingModel | None = None
        self.not_ready = NOT_READY.format(why="the API is starting")
        self.log: PredictionLog | None = None
        self.reload_lock = asyncio.Lock()

    def load(self) -> ServingModel | None:
        """Load the champion and swap it in; on failure keep serving what we had."""
        try:
            model = self.source.load()
        except Exception as exc:  # registry unreachable, model unreadable: not ready, no crash
            logger.exception("Loading the model failed")
            self.metrics.reloads.labels("error").inc()
            why = f"loading from {self.source.describe} failed ({type(exc).__name__}: {exc}); check MLFLOW_TRACKING_URI"
            self.not_ready = NOT_READY.format(why=why)
            return None
        if model is None:
            self.not_ready = NOT_READY.format(why=f"no version holds the alias in {self.source.describe} yet")
            return None
        self.model = model  # one reference assignment: the swap is atomic
        self.metrics.model_version.set(model.version)
        self.metrics.reloads.labels("ok").inc()
        logger.info("Serving %s version %s (%s)", model.name, model.version, model.candidate)
        return model

    async def reload(self) -> ServingModel | None:
        async with self.reload_lock:
            return await run_in_threadpool(self.load)

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            try:
                version = await run_in_threadpool(self.source.version)
            except Exception:
                logger.warning("Polling the registry failed", exc_info=True)
                continue
            if version is not None and version != (self.model.version if self.model else None):
                await self.reload()


@asynccontextmanager
async def lifespan(app: FastAPI):
    serving: Serving = app.state.serving
    config = serving.config
    if serving.log is None:  # create_app_from_project opens it before start-up
        serving.log = open_log(config)
    await serving.reload()
    # Everything loaded so far (Kedro, MLflow, the model) lives as long as the process:
    # move it out of the garbage collector's sight, or every full collection walks those
    # millions of objects and stalls a request for 100-200 ms (p99 at c=1 showed it).
    gc.collect()
    gc.freeze()
    poller = asyncio.create_task(serving.poll()) if config.poll_seconds > 0 else None
    try:
        yield
    finally:
        if poller:
            poller.cancel()
        serving.log.close()


def open_log(config: ServingConfig) -> PredictionLog:
    return PredictionLog(
        config.prediction_log_uri,
        config.prediction_log_table,
        config.sqlite_synchronous,
        config.prediction_log_pool,
    )


async def log_unavailable(_request: Request, exc: LogUnavailable) -> JSONResponse:
    """A write the log could not take: 503, so the client retries; never a 200 unlogged."""
    return JSONResponse({"detail": f"{exc}; the request was not served, retry later"}, 503)


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, a thread hop per request that cost more than the model itself.
async def get_serving(request: Request) -> Serving:
    return request.app.state.serving


async def get_model(serving: Serving = Depends(get_serving)) -> ServingModel:
    model = serving.model  # taken once: this request uses this model to the end
    if model is None:
        raise HTTPException(503, serving.not_ready)
    return model


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


router = APIRouter()
predict_router = APIRouter()  # behind a predict token when configured
NOT_READY_RESPONSE = {
    503: {"model": Status, "description": "no model loaded yet, or the prediction log is unavailable"}
}
BODY_ERRORS = {
    400: {"description": "the body could not be decoded"},
    413: {"description": "the body exceeds serving.max_body_bytes"},
}


@predict_router.post(
    "/predict",
    response_model=PredictionResponse,
    responses={**NOT_READY_RESPONSE, **BODY_ERRORS},
    tags=["predict"],
)
async def predict(
    house: House,
    model: ServingModel = Depends(get_model),
    serving: Serving = Depends(get_serving),
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


@predict_router.post(
    "/predict/batch",
    response_model=BatchResponse,
    responses={
        **NOT_READY_RESPONSE,
        **BODY_ERRORS,
        413: {"description": "more houses than max_batch_rows, or a body over max_body_bytes"},
    },
    tags=["predict"],
)
async def predict_batch(
    batch: Batch,
    model: ServingModel = Depends(get_model),
    serving: Serving = Depends(get_serving),
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
        records = [log_record(model, r, v, created, batch_id) for r, v in zip(rows, values, strict=True)]
        serving.log.record(records)
        return records

    records = await run_in_threadpool(work)  # big batches stay off the event loop
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


@predict_router.post(
    "/explain",
    response_model=ExplainResponse,
    responses={**NOT_READY_RESPONSE, **BODY_ERRORS},
    tags=["predict"],
)
async def explain(house: House, model: ServingModel = Depends(get_model)) -> ExplainResponse:
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


@router.get("/health", response_model=Status, tags=["operate"])
async def health() -> Status:
    """Alive (the process answers), whether or not a model is loaded."""
    return Status(status="ok")


@router.get("/ready", response_model=Status, responses=NOT_READY_RESPONSE, tags=["operate"])
async def ready(serving: Serving = Depends(get_serving)):
    """Ready when a model is loaded and the prediction log answers; 503 with why otherwise."""
    model = serving.model
    problem = serving.not_ready if model is None else await run_in_threadpool(serving.log.ping)
    if problem:
        return JSONResponse(Status(status="not ready", detail=problem).model_dump(), status_code=503)
    return Status(status="ready", model_version=model.version)


# the input rules as JSON Schema, built once (they are fixed at import)
FEATURE_SCHEMA = {name: House.model_json_schema()["properties"][name] for name in FEATURES}


@router.get("/model", response_model=ModelInfo, responses=NOT_READY_RESPONSE, tags=["operate"])
async def model_info(model: ServingModel = Depends(get_model)) -> ModelInfo:
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
    )


@router.get("/metrics", response_class=PlainTextResponse, tags=["operate"])
async def prometheus_metrics(
    serving: Serving = Depends(get_serving),
) -> PlainTextResponse:
    """Prometheus exposition format."""
    return PlainTextResponse(generate_latest(serving.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/admin/reload",
    response_model=Reloaded,
    responses={**UNAUTHORIZED_RESPONSES, **NOT_READY_RESPONSE},
    tags=["operate"],
)
async def reload(_admin: AdminCaller, serving: Serving = Depends(get_serving)) -> Reloaded:
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
    tags=["monitor"],
)
async def drift_summary(serving: Serving = Depends(get_serving)) -> DriftSummary:
    """The latest drift verdict: dataset drift, each column's test and score, and the
    model's error on production rows that got ground truth."""
    return DriftSummary.model_validate(
        await _monitoring_output(serving, serving.config.drift_summary_dataset)
    )


@router.get(
    "/monitoring/drift/report",
    response_class=HTMLResponse,
    responses={404: {"description": "no drift report yet"}},
    tags=["monitor"],
)
async def drift_report(serving: Serving = Depends(get_serving)) -> HTMLResponse:
    """The latest Evidently report (HTML)."""
    return HTMLResponse(await _monitoring_output(serving, serving.config.drift_report_dataset))


async def validation_failed(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (field in ``loc``, rule in ``type``/``msg``), made always
    serialisable: a NaN input would otherwise turn the 422 into a 500."""
    return JSONResponse({"detail": [_json_safe(error) for error in jsonable_encoder(exc.errors())]}, 422)


def create_app(config: ServingConfig, source: ModelSource) -> FastAPI:
    """The app, for any model source: the Kedro catalog in production, a fixed model in tests.
    /docs and /redoc load Swagger UI and ReDoc from the package, not a CDN: they work offline."""
    app = FastAPIOffline(
        title="housing: California house prices",
        version=__version__,
        description=(
            "Prices a California census block group from the eight features of scikit-learn's "
            "California Housing data, with the champion model of the MLflow registry. "
            "Every answer names the model version; every prediction is logged for monitoring."
        ),
        lifespan=lifespan,
    )
    app.state.serving = serving = Serving(config, source)
    app.state.credentials = config.credentials
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=serving.metrics)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(LogUnavailable, log_unavailable)
    guard = [Depends(require("predict"))] if config.credentials.predict_required else []
    extra = UNAUTHORIZED_RESPONSES if guard else None
    app.include_router(predict_router, dependencies=guard, responses=extra)
    app.include_router(router)
    app.include_router(feedback.router)
    return app


def _json_safe(error: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    error = dict(error)
    if isinstance(error.get("input"), dict | list):
        error.pop("input")  # the client sent it; echoing a 10,000-house batch helps nobody
    return clean(error)


def kedro_source(project_path: Path, env: str | None) -> tuple[ServingConfig, ModelSource]:
    """Bootstrap the Kedro project: its catalog gives the model, its conf the settings."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(project_path)
    session = KedroSession.create(project_path=project_path, env=env)
    context = session.load_context()  # kedro-mlflow's hook points MLflow at the store here
    config = ServingConfig.from_conf(context.config_loader["serving"])
    catalog = context.catalog

    def load() -> ServingModel | None:
        champion = catalog.load(config.model_dataset)
        return None if champion is None else ServingModel.from_champion(champion)

    def version() -> int | None:
        return catalog[config.model_dataset].current_version()

    return config, ModelSource(load=load, version=version, report=catalog.load)


def create_app_from_project() -> FastAPI:
    """uvicorn factory: ``HOUSING_PROJECT_PATH`` (default: the working directory) and
    ``KEDRO_ENV`` choose the project and its configuration environment."""
    project_path = Path(os.environ.get("HOUSING_PROJECT_PATH") or Path.cwd()).resolve()
    app = create_app(*kedro_source(project_path, os.environ.get("KEDRO_ENV") or None))
    serving = app.state.serving
    try:  # before uvicorn starts: a bad setting is one line and exit status 1, no traceback
        serving.log = open_log(serving.config)
    except DatabaseError as exc:
        raise SystemExit(f"housing.serving: cannot start: {exc}") from None
    return app
