"""Prometheus metrics, in a registry per app (tests build many apps in one process)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from fastapi import HTTPException
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "housing_http_requests",
            "HTTP requests answered",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "housing_http_request_duration_seconds",
            "time from request to the end of the answer",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "housing_http_errors",
            "answers with a 4xx or 5xx status",
            ["path", "status"],
            registry=self.registry,
        )
        self.predictions = Counter(
            "housing_predictions",
            "rows predicted, by model version",
            ["model_version"],
            registry=self.registry,
        )
        self.model_version = Gauge(
            "housing_model_version",
            "registry version being served",
            registry=self.registry,
        )
        self.reloads = Counter(
            "housing_model_reloads",
            "model reload attempts",
            ["result"],
            registry=self.registry,
        )


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware): a few microseconds per request. The labelled
    children are looked up once per (method, path, status), not per request:
    ``labels()`` takes a lock and builds a tuple each call."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._counted: dict[tuple[str, str, int], Callable[[], None]] = {}
        self._timed: dict[str, Callable[[float], None]] = {}

    def _count(self, method: str, path: str, status: int) -> Callable[[], None]:
        metrics = self.metrics
        requests = metrics.requests.labels(method, path, str(status))
        errors = metrics.errors.labels(path, str(status)) if status >= 400 else None

        def count() -> None:
            requests.inc()
            if errors is not None:
                errors.inc()

        return self._counted.setdefault((method, path, status), count)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded labels
            key = (method, path, status)
            (self._counted.get(key) or self._count(*key))()
            observe = self._timed.get(path) or self._timed.setdefault(
                path, self.metrics.latency.labels(path).observe
            )
            observe(time.perf_counter() - start)


class BodySizeLimitMiddleware:
    """413 for a body over the limit: by Content-Length up front, or by counting a
    chunked body as it arrives (FastAPI turns the HTTPException into the answer)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.detail = f"request body exceeds the limit of {max_bytes} bytes (serving.max_body_bytes)"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            body = json.dumps({"detail": self.detail}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            return await send({"type": "http.response.body", "body": body})
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.detail)
            return message

        await self.app(scope, counting_receive, send)
