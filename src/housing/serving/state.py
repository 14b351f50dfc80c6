"""What the API holds between requests: the model (swapped whole, never mutated), the
prediction log, the metrics and where new models come from; and its lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from housing.serving.config import ServingConfig
from housing.serving.metrics import Metrics
from housing.serving.model import ServingModel
from housing.serving.prediction_log import PredictionLog

logger = logging.getLogger(__name__)


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
