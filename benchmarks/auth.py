"""The cost of checking a bearer token, in process: the predict dependency on a request
carrying a valid token (request object, header parsing, SHA-256, constant-time compare).

    python benchmarks/auth.py
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from starlette.requests import Request

from housing.serving.auth import Credentials, require

TOKEN = "t" * 43  # as long as secrets.token_urlsafe(32)
N = 100_000


async def per_check() -> float:
    credentials = Credentials.of(predict_required=True, predict=f"old:{'o' * 43},new:{TOKEN}")
    app = SimpleNamespace(state=SimpleNamespace(credentials=credentials))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {TOKEN}".encode())],
        "app": app,
    }
    caller = require("predict")
    start = time.perf_counter()
    for _ in range(N):
        await caller(Request(scope), None)
    return (time.perf_counter() - start) / N


if __name__ == "__main__":
    best = min(asyncio.run(per_check()) for _ in range(3))
    print(f"token check: {best * 1e6:.2f} µs per request (best of 3 x {N:,}; two tokens configured)")
