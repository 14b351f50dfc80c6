"""``POST /predict``'s fast lane: the busiest request, straight from the metrics and body
size middlewares to the route's own work (``routes.predict.price``).

Why: FastAPI's routing (included routers, dependency solving, a request object and two
exit stacks per request) costs about as much as the model's trees on this route
(``python benchmarks/serving_parts.py`` prints the API with and without the lane). What
the lane keeps: the same answer, built by the same function; the metrics and the body
limit (the middlewares around it); OpenTelemetry (FastAPI's, around every middleware).
What it hands to FastAPI, body and all: a request with no model loaded yet or a body
that is not a valid house, so every refusal is the route's own (the 503, the 422 naming
the field). The app adds the lane only when ``/predict`` needs no token (a guarded route
goes through FastAPI and its guard); the route stays what OpenAPI documents.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError

from housing.serving.errors import log_unavailable
from housing.serving.prediction_log import LogUnavailable
from housing.serving.routes import predict
from housing.serving.state import Serving

PATH = "/predict"
# the documented route: the metrics label the lane's requests with its path
ROUTE = next(r for r in predict.router.routes if getattr(r, "path", None) == PATH)
_HEADERS = [(b"content-type", b"application/json")]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class PredictLane:
    """Pure ASGI, the innermost of the app's middlewares."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        try:
            body = await _body(receive)
        except HTTPException as exc:  # over serving.max_body_bytes, counted as it came
            response = await http_exception_handler(Request(scope), exc)  # FastAPI's own answer
            return await response(scope, receive, send)
        if body is None:  # the client left
            return None
        serving: Serving = scope["app"].state.serving
        model = serving.model  # taken once: this request uses this model to the end
        try:
            row = None if model is None else predict.house_row(body)
        except RequestValidationError:
            row = None
        if row is None:  # FastAPI answers, with the route's own refusal
            return await self.app(scope, _replay(body, receive), send)
        scope["route"] = ROUTE
        try:
            payload = await predict.price(serving, model, row)
        except LogUnavailable as exc:  # the app's handler, as the route's would be
            return await (await log_unavailable(Request(scope), exc))(scope, receive, send)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_HEADERS, (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})
        return None


async def _body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body once more, for FastAPI; then the connection's own messages (a disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def again() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return again
