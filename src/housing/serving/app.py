"""The prediction API: thin, strict and fast.

The model comes from the MLflow registry through the Kedro catalog (the
``current_champion`` entry the training pipeline defined); nothing here knows how it was
trained. Each accepted prediction is committed to the prediction log before it is
answered; the monitoring pipeline reads that log. The pieces: settings (config.py),
state and lifespan (state.py), dependencies (deps.py), error answers (errors.py) and one
router per tag (routes/).
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi_offline import FastAPIOffline

from housing import __version__
from housing.db import DatabaseError
from housing.serving.auth import UNAUTHORIZED_RESPONSES, require
from housing.serving.compiled import TreeCompiler
from housing.serving.config import ServingConfig, SettingsError
from housing.serving.errors import log_unavailable, validation_failed
from housing.serving.lane import PredictLane
from housing.serving.metrics import BodySizeLimitMiddleware, MetricsMiddleware
from housing.serving.model import ServingModel
from housing.serving.prediction_log import LogUnavailable
from housing.serving.routes import monitor, operate, predict
from housing.serving.state import ModelSource, Serving, lifespan, open_log

__all__ = ["ModelSource", "ServingConfig", "create_app", "create_app_from_project", "kedro_source"]


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
    guard = [Depends(require("predict"))] if config.credentials.predict_required else []
    if not guard:  # the innermost middleware: POST /predict past FastAPI's routing (lane.py)
        app.add_middleware(PredictLane)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=serving.metrics)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(LogUnavailable, log_unavailable)
    extra = UNAUTHORIZED_RESPONSES if guard else None
    app.include_router(predict.router, dependencies=guard, responses=extra)
    app.include_router(monitor.router)
    app.include_router(operate.router)
    return app


def kedro_source(project_path: Path, env: str | None) -> tuple[ServingConfig, ModelSource]:
    """Bootstrap the Kedro project: its catalog gives the model, its conf the settings."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(project_path)
    session = KedroSession.create(project_path=project_path, env=env)
    context = session.load_context()  # kedro-mlflow's hook points MLflow at the store here
    config = ServingConfig.from_conf(
        context.config_loader["serving"], f"{project_path}/conf (serving.yml, env {env or 'local'})"
    )
    catalog = _serving_catalog(context, config)
    trees = config.compiled_trees
    compiler = None
    if trees.enabled:
        cache = Path(trees.cache_dir)  # relative to the project, as the catalog's paths
        trees = trees.model_copy(
            update={"cache_dir": str(cache if cache.is_absolute() else project_path / cache)}
        )
        compiler = TreeCompiler(trees, config.batch_threads)

    def load() -> ServingModel | None:
        champion = catalog.load(config.model_dataset)
        return None if champion is None else ServingModel.from_champion(champion, compiler)

    def version() -> int | None:
        return catalog[config.model_dataset].current_version()

    return config, ModelSource(load=load, version=version, report=catalog.load)


def _serving_catalog(context, config: ServingConfig):
    """The catalog entries the API reads, and only those: ``context.catalog`` builds every
    entry of the project, and kedro-mlflow's hook then imports what each artifact
    dataset wraps (matplotlib for the charts), into a process that never draws."""
    from kedro.config import MissingConfigException  # noqa: PLC0415
    from kedro.framework.context.context import _convert_paths_to_absolute_posix  # noqa: PLC0415
    from kedro.io import DataCatalog  # noqa: PLC0415

    wanted = {config.model_dataset, config.drift_summary_dataset, config.drift_report_dataset}
    entries = {name: conf for name, conf in context.config_loader["catalog"].items() if name in wanted}
    # relative file paths are the project's, wherever the API was started from
    entries = _convert_paths_to_absolute_posix(Path(context.project_path), entries)
    try:
        credentials = context.config_loader["credentials"]
    except MissingConfigException:  # no credentials file: none needed
        credentials = {}
    return DataCatalog.from_config(entries, credentials)


def create_app_from_project() -> FastAPI:
    """uvicorn factory: ``HOUSING_PROJECT_PATH`` (default: the working directory) and
    ``KEDRO_ENV`` choose the project and its configuration environment."""
    project_path = Path(os.environ.get("HOUSING_PROJECT_PATH") or Path.cwd()).resolve()
    # before uvicorn starts: a bad setting is one line and exit status 1, no traceback
    try:
        app = create_app(*kedro_source(project_path, os.environ.get("KEDRO_ENV") or None))
        app.state.serving.log = open_log(app.state.serving.config)
    except (DatabaseError, SettingsError) as exc:
        raise SystemExit(f"housing.serving: cannot start: {exc}") from None
    return app
