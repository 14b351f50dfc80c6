"""What the API holds between requests: the model (swapped whole, never mutated), the
prediction log, the metrics and where new models come from; and its lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
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
LOADING = "No model is loaded yet: the API is starting ({what}); retry in a few seconds."


class Serving:
    """What the app holds between requests: the model (swapped whole, never mutated),
    the prediction log, the metrics and where new models come from."""

    def __init__(self, config: ServingConfig, source: ModelSource) -> None:
        self.config = config
        self.source = source
        self.metrics = Metrics()
        self.model: ServingModel | None = None
        self.not_ready = LOADING.format(what="the API is starting")
        self.log: PredictionLog | None = None
        self.reload_lock = asyncio.Lock()
        self.started = threading.Event()  # the first load has ended, with a model or not

    def load(self) -> ServingModel | None:
        """Load the champion and swap it in; on failure keep serving what we had. Runs in
        a worker thread: nothing here may touch the event loop."""
        try:
            if self.model is None:
                version = self.source.version()
                if version is not None:
                    what = f"loading version {version} from {self.source.describe}"
                    self.not_ready = LOADING.format(what=what)
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
        previous, self.model = self.model, model  # one reference assignment: the swap is atomic
        self.metrics.model_version.set(model.version)
        self.metrics.reloads.labels("ok").inc()
        logger.info("Serving %s version %s (%s)", model.name, model.version, model.candidate)
        if previous is not None:
            del previous
            free_replaced_model()
        return model

    async def reload(self) -> ServingModel | None:
        async with self.reload_lock:
            return await run_in_threadpool(self.load)

    async def start(self) -> None:
        """The first load, after start-up: /health answers meanwhile, /ready says why not."""
        try:
            await self.reload()
        finally:
            self.started.set()
        if self.config.poll_seconds > 0:
            await self.poll()

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


def freeze_startup_heap() -> None:
    """Everything loaded before the model (Kedro, MLflow, the libraries) lives as long as
    the process: move it out of the garbage collector's sight, or every full collection
    walks those ~400,000 objects and stalls a request for 100-200 ms. The model is left
    out on purpose: a frozen object in a reference cycle is never freed, so a frozen model
    would stay in memory after a reload replaced it."""
    gc.collect()
    gc.freeze()


def free_replaced_model() -> None:
    """After a swap the replaced model is garbage, partly in reference cycles that only a
    full collection frees; the collector runs one only when the objects added since the
    last reach a quarter of what it counted then, so without this each reload would leave
    its predecessor behind (~2 MB each with the production model). With the start-up heap
    frozen this pass walks only what came after (~5,000 objects): under a millisecond, in the
    loading thread."""
    gc.collect()


@asynccontextmanager
async def lifespan(app: FastAPI):
    serving: Serving = app.state.serving
    config = serving.config
    if serving.log is None:  # create_app_from_project opens it before start-up
        serving.log = await run_in_threadpool(open_log, config)
    serving.log.start_writer(config.prediction_log_max_queue, config.prediction_log_max_commit_rows)
    freeze_startup_heap()  # before the port opens: nothing waits on it yet
    # the model loads after start-up: the process answers /health at once, and /ready
    # (503 with the reason) until the model is in
    starting = asyncio.create_task(serving.start())
    try:
        yield
    finally:
        starting.cancel()
        await run_in_threadpool(serving.log.close)  # commits what is queued first


def open_log(config: ServingConfig) -> PredictionLog:
    return PredictionLog(
        config.prediction_log_uri,
        config.prediction_log_table,
        config.sqlite_synchronous,
        config.prediction_log_pool,
    )
