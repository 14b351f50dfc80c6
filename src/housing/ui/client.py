"""What the UI asks the prediction API, and how its failures read to a person.

Plain functions, no Streamlit: every call returns the API's JSON or raises ``ApiError``
whose message is meant to be shown as it is (what went wrong, where, what to do). The UI
never imports Kedro, MLflow or the model; the API is the only contract.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from housing.ui.fields import FEATURES, FIELD_TEXT, label

API_URL_ENV = "HOUSING_API_URL"
PUBLIC_URL_ENV = "HOUSING_API_PUBLIC_URL"
TIMEOUT_ENV = "HOUSING_API_TIMEOUT"
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 10.0

# How a failed connection reads: the kind of failure in words, never a Python class name.
TRANSPORT_REASONS: tuple[tuple[type[httpx.TransportError], str], ...] = (
    (httpx.ConnectError, "nothing answers there"),
    (httpx.ProxyError, "the proxy refused the connection"),
    (httpx.RemoteProtocolError, "the server closed the connection unexpectedly"),
    (httpx.ReadError, "the connection broke while reading the answer"),
    (httpx.WriteError, "the connection broke while sending the request"),
)


# -- configuration ----------------------------------------------------------------------
def api_url(environ: Mapping[str, str] | None = None) -> str:
    """``HOUSING_API_URL`` (default http://127.0.0.1:8000), without a trailing slash."""
    environ = os.environ if environ is None else environ
    return (environ.get(API_URL_ENV) or DEFAULT_API_URL).strip().rstrip("/")


def public_url(environ: Mapping[str, str] | None = None) -> str:
    """The API as the *browser* reaches it (links): ``HOUSING_API_PUBLIC_URL``, else the
    API URL. In docker compose the UI reaches http://api:8000, the browser localhost."""
    environ = os.environ if environ is None else environ
    return (environ.get(PUBLIC_URL_ENV) or api_url(environ)).strip().rstrip("/")


def timeout(environ: Mapping[str, str] | None = None) -> float:
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 and math.isfinite(value) else DEFAULT_TIMEOUT_S


def join(base_url: str, path: str) -> str:
    """``base_url`` + ``path``, keeping any path prefix of the base (http://host/api)."""
    if path.startswith(("http://", "https://")):
        return path
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"


# -- errors -----------------------------------------------------------------------------
class ApiError(Exception):
    """A failed call, with a message for a person."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class NotFound(ApiError):
    """404: nothing there (yet)."""


START_HINT = "start it with `housing serve` (or `docker compose up`), or set HOUSING_API_URL"


def unreachable_message(base_url: str, reason: str = "") -> str:
    why = f" ({reason})" if reason else ""
    return f"The prediction API at {base_url} is not reachable{why}: {START_HINT}."


def transport_reason(exc: httpx.TransportError) -> str:
    """What a failed connection means, in words a person reads."""
    return next((text for kind, text in TRANSPORT_REASONS if isinstance(exc, kind)), "the connection failed")


def _detail(body: Any) -> Any:
    return body.get("detail") if isinstance(body, dict) else None


def validation_messages(detail: Sequence[Any]) -> list[str]:
    """FastAPI's 422 ``detail`` list as lines that name the field and the rule."""
    lines = []
    for error in detail:
        if not isinstance(error, dict):
            lines.append(str(error))
            continue
        loc = [part for part in error.get("loc", ()) if part != "body"]
        field = next((str(p) for p in reversed(loc) if isinstance(p, str)), None)
        msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        if field in FIELD_TEXT:
            lines.append(f"{field} ({label(field)}): {msg}")
        elif field:
            lines.append(f"{field}: {msg}")
        else:
            lines.append(msg)
    return lines


def error_message(status: int, body: Any, text: str = "", what: str = "The API") -> str:
    """How a 4xx/5xx answer reads. ``body`` is the decoded JSON (or None)."""
    detail = _detail(body)
    if status == 422 and isinstance(detail, list):
        lines = validation_messages(detail)
        return "The API rejected the input:\n" + "\n".join(f"- {line}" for line in lines)
    if not isinstance(detail, str):
        detail = text.strip()[:300] or "no details"
    if status == 503:
        return f"{what} is not available (503): {detail}"
    return f"{what} answered {status}: {detail}"


# -- calls ------------------------------------------------------------------------------
def call(
    method: str,
    base_url: str,
    path: str,
    payload: Any = None,
    *,
    timeout_s: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Response:
    """One request; any failure becomes an ``ApiError`` with a readable message."""
    timeout_s = timeout() if timeout_s is None else timeout_s
    url = join(base_url, path)
    try:
        with httpx.Client(timeout=timeout_s, transport=transport) as client:
            response = client.request(method, url, json=payload)
    except httpx.TimeoutException:
        raise ApiError(
            f"The prediction API at {base_url} did not answer {method} {path} within {timeout_s:g} s: "
            "it may be overloaded or still loading the model; try again."
        ) from None
    except httpx.UnsupportedProtocol:
        raise ApiError(f"HOUSING_API_URL={base_url!r} is not an http(s) URL.") from None
    except httpx.TransportError as exc:
        raise ApiError(unreachable_message(base_url, transport_reason(exc))) from None
    except httpx.InvalidURL as exc:
        raise ApiError(f"HOUSING_API_URL={base_url!r} is not a valid URL ({exc}).") from None
    if response.is_success:
        return response
    try:
        body = response.json()
    except ValueError:
        body = None
    message = error_message(response.status_code, body, response.text, f"{method} {path}")
    error = NotFound if response.status_code == 404 else ApiError
    raise error(message, response.status_code)


def call_json(method: str, base_url: str, path: str, payload: Any = None, **kwargs: Any) -> dict:
    response = call(method, base_url, path, payload, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            f"{method} {path} at {base_url} did not answer with a JSON object: is this the housing API?"
        )
    return body


def house_payload(values: Mapping[str, Any]) -> dict[str, float]:
    """The request body: the 8 features as JSON numbers (floats), nothing else."""
    return {name: float(values[name]) for name in FEATURES}


def predict(base_url: str, house: Mapping[str, Any], **kwargs: Any) -> dict:
    return call_json("POST", base_url, "/predict", house_payload(house), **kwargs)


def explain(base_url: str, house: Mapping[str, Any], **kwargs: Any) -> dict:
    return call_json("POST", base_url, "/explain", house_payload(house), **kwargs)


def model_info(base_url: str, **kwargs: Any) -> dict:
    return call_json("GET", base_url, "/model", **kwargs)


NO_DRIFT_REPORT = "No drift report yet: run `kedro run --pipelines=drift`, then refresh this page."


def drift_summary(base_url: str, **kwargs: Any) -> dict:
    """The latest drift summary; ``NotFound`` (with what to run) when there is none, or
    when the API has no monitoring endpoint at all (FastAPI's plain 404)."""
    try:
        return call_json("GET", base_url, "/monitoring/drift", **kwargs)
    except NotFound as exc:
        raise NotFound(drift_not_found_message(exc.message), 404) from None


def drift_not_found_message(message: str) -> str:
    detail = message.split(": ", 1)[-1]
    if detail.lower().startswith("no drift report"):
        return detail[0].upper() + detail[1:]
    return f"{NO_DRIFT_REPORT} (GET /monitoring/drift answered 404: {detail})"


def drift_report_html(base_url: str, report_path: str, **kwargs: Any) -> str:
    return call("GET", base_url, report_path, **kwargs).text
