"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from housing.serving.model import ServingModel
from housing.serving.state import Serving


# Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in its
# thread pool, a thread hop per request that cost more than the model itself.
async def get_serving(request: Request) -> Serving:
    return request.app.state.serving


async def get_model(serving: Serving = Depends(get_serving)) -> ServingModel:
    return loaded_model(serving)


def loaded_model(serving: Serving) -> ServingModel:
    """The model now, or the 503 that says why there is none."""
    model = serving.model  # taken once: this request uses this model to the end
    if model is None:
        raise HTTPException(503, serving.not_ready)
    return model


def serving_and_model(request: Request) -> tuple[Serving, ServingModel]:
    """``get_serving`` and ``get_model`` by hand, for the prediction routes: FastAPI solves
    dependencies level by level on every request (four levels there), which cost more
    than the model's features under a profiler."""
    serving: Serving = request.app.state.serving
    return serving, loaded_model(serving)


ServingDep = Annotated[Serving, Depends(get_serving)]
ModelDep = Annotated[ServingModel, Depends(get_model)]
