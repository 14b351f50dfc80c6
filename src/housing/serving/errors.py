"""Error answers: every refusal says what is wrong and how to fix it, and is always
serialisable; the responses each route documents in OpenAPI."""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from housing.serving.prediction_log import LogUnavailable
from housing.serving.schemas import Status

NOT_READY_RESPONSE = {
    503: {"model": Status, "description": "no model loaded yet, or the prediction log is unavailable"}
}
BODY_ERRORS = {
    400: {"description": "the body could not be decoded"},
    413: {"description": "the body exceeds serving.max_body_bytes"},
}


async def log_unavailable(_request: Request, exc: LogUnavailable) -> JSONResponse:
    """A write the log could not take: 503, so the client retries; never a 200 unlogged."""
    return JSONResponse({"detail": f"{exc}; the request was not served, retry later"}, 503)


async def validation_failed(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 (field in ``loc``, rule in ``type``/``msg``), made always
    serialisable: a NaN input would otherwise turn the 422 into a 500."""
    return JSONResponse({"detail": jsonable_encoder([_json_safe(error) for error in exc.errors()])}, 422)


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
    if isinstance(error.get("input"), dict | list | bytes):
        # the client sent it: echoing a 10,000-house batch helps nobody, and a body that
        # is not UTF-8 would not even encode
        error.pop("input")
    return clean(error)
