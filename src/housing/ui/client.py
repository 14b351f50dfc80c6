"""What the UI asks the prediction API, and how the answers read to a person.

Plain functions, no Streamlit: every call returns the API's JSON or raises ``ApiError``
whose message is meant to be shown as it is (what went wrong, where, what to do). The UI
never imports Kedro, MLflow or the model; the API is the only contract.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

API_URL_ENV = "HOUSING_API_URL"
PUBLIC_URL_ENV = "HOUSING_API_PUBLIC_URL"
TIMEOUT_ENV = "HOUSING_API_TIMEOUT"
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_S = 10.0
DOLLARS_PER_UNIT = 100_000  # the API's predictions and contributions are in $100,000s

FEATURES = (
    "MedInc",
    "HouseAge",
    "AveRooms",
    "AveBedrms",
    "Population",
    "AveOccup",
    "Latitude",
    "Longitude",
)

# The data's medians: the 20,640 block groups of scikit-learn's California Housing
# (data/01_raw/california_housing.csv). The form starts from a typical district.
MEDIANS = {
    "MedInc": 3.5348,
    "HouseAge": 29.0,
    "AveRooms": 5.229129,
    "AveBedrms": 1.04878,
    "Population": 1166.0,
    "AveOccup": 2.818116,
    "Latitude": 34.26,
    "Longitude": -118.49,
}

# The API's input rules (src/housing/serving/schemas.py, as GET /model's `features`
# reports them), for when the API cannot be asked. A test keeps the two identical.
FALLBACK_SCHEMA: dict[str, dict[str, Any]] = {
    "MedInc": {"exclusiveMinimum": 0, "maximum": 100},
    "HouseAge": {"minimum": 0, "maximum": 200},
    "AveRooms": {"exclusiveMinimum": 0, "maximum": 1000},
    "AveBedrms": {"minimum": 0, "maximum": 1000},
    "Population": {"minimum": 1, "maximum": 1_000_000},
    "AveOccup": {"exclusiveMinimum": 0, "maximum": 10_000},
    "Latitude": {"minimum": 32.4, "maximum": 42.1},
    "Longitude": {"minimum": -124.5, "maximum": -114.0},
}


@dataclass(frozen=True)
class Field:
    """One input of the form: what a person reads, and the API's bounds."""

    name: str
    label: str
    help: str
    step: float
    format: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False

    @property
    def widget_min(self) -> float | None:
        """A number input has no open interval: "above 0" starts one small step above."""
        if self.minimum is None:
            return None
        return self.minimum + 0.01 if self.exclusive_minimum else self.minimum

    def rule(self) -> str:
        low = f"above {self.minimum:g}" if self.exclusive_minimum else f"at least {self.minimum:g}"
        parts = [low] if self.minimum is not None else []
        if self.maximum is not None:
            parts.append(f"at most {self.maximum:g}")
        return ", ".join(parts)


_FIELD_TEXT: dict[str, tuple[str, str, float, str]] = {
    # name: (label, help, step, format)
    "MedInc": (
        "Median income (tens of thousands of $)",
        "Median household income in the block group: 3.5 means $35,000 a year.",
        0.1,
        "%.4f",
    ),
    "HouseAge": ("Median house age (years)", "Median age of the houses in the block group.", 1.0, "%.0f"),
    "AveRooms": ("Average rooms per household", "All rooms, bedrooms included.", 0.1, "%.2f"),
    "AveBedrms": (
        "Average bedrooms per household",
        "Bedrooms are rooms: not more than the average rooms.",
        0.05,
        "%.2f",
    ),
    "Population": ("Population (people in the block group)", "How many people live there.", 10.0, "%.0f"),
    "AveOccup": ("Average people per household", "Population divided by households.", 0.1, "%.2f"),
    "Latitude": ("Latitude (degrees north)", "Inside California: 32.4 to 42.1.", 0.01, "%.4f"),
    "Longitude": (
        "Longitude (degrees east; west is negative)",
        "Inside California: -124.5 to -114.0.",
        0.01,
        "%.4f",
    ),
}

# How the explanation's groups and features read (unknown names are shown as they are).
PLAIN_NAMES = {
    "MedInc": "Median income",
    "HouseAge": "House age",
    "AveRooms": "Rooms per household",
    "AveBedrms": "Bedrooms per household",
    "Population": "Population",
    "AveOccup": "People per household",
    "Latitude": "Latitude",
    "Longitude": "Longitude",
}


def label(name: str) -> str:
    return _FIELD_TEXT[name][0] if name in _FIELD_TEXT else name


def plain_name(name: str) -> str:
    return PLAIN_NAMES.get(name, name)


def form_fields(schema: Mapping[str, Mapping[str, Any]] | None = None) -> list[Field]:
    """The 8 inputs with the bounds of ``schema`` (GET /model's ``features``), falling
    back to ``FALLBACK_SCHEMA`` for any feature it does not describe."""
    fields = []
    for name in FEATURES:
        spec = (schema or {}).get(name) or FALLBACK_SCHEMA[name]
        text, help_text, step, fmt = _FIELD_TEXT[name]
        exclusive = spec.get("exclusiveMinimum")
        minimum = exclusive if exclusive is not None else spec.get("minimum")
        maximum = spec.get("exclusiveMaximum", spec.get("maximum"))
        bounds = {
            "minimum": None if minimum is None else float(minimum),
            "maximum": None if maximum is None else float(maximum),
            "exclusive_minimum": exclusive is not None,
        }
        rule = Field(name, text, help_text, step, fmt, **bounds).rule()
        help_text = f"{help_text} Allowed: {rule}." if rule else help_text
        fields.append(Field(name, text, help_text, step, fmt, **bounds))
    return fields


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


START_HINT = "start it with `python -m housing.serving` (or `docker compose up`), or set HOUSING_API_URL"


def unreachable_message(base_url: str, reason: str = "") -> str:
    why = f" ({reason})" if reason else ""
    return f"The prediction API at {base_url} is not reachable{why}: {START_HINT}."


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
        if field in _FIELD_TEXT:
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
        raise ApiError(unreachable_message(base_url, type(exc).__name__)) from None
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


# -- formatting -------------------------------------------------------------------------
def format_usd(value: float) -> str:
    return f"-${-value:,.0f}" if value < 0 else f"${value:,.0f}"


def signed_usd(value: float) -> str:
    return f"+{format_usd(value)}" if value >= 0 else format_usd(value)


def contribution_rows(items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``[{name, value}]`` (SHAP, $100,000s, largest first) -> rows for a chart in dollars,
    in the API's order."""
    rows = []
    for rank, item in enumerate(items):
        dollars = float(item["value"]) * DOLLARS_PER_UNIT
        rows.append(
            {
                "rank": rank,
                "name": plain_name(str(item["name"])),
                "feature": str(item["name"]),
                "dollars": round(dollars, 2),
                "effect": "raises the price" if dollars >= 0 else "lowers the price",
                "label": signed_usd(dollars),
            }
        )
    return rows


def drift_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-column table: drifted columns first, then by score."""
    rows = [
        {
            "column": str(c.get("column")),
            "drifted": "yes" if c.get("drifted") else "no",
            "score": c.get("score"),
            "threshold": c.get("threshold"),
            "method": c.get("method"),
        }
        for c in summary.get("columns") or []
    ]
    return sorted(rows, key=lambda r: (r["drifted"] != "yes", -(r["score"] or 0)))


def drift_headline(summary: Mapping[str, Any]) -> dict[str, str]:
    columns = summary.get("columns") or []
    drifted = summary.get("n_drifted_columns")
    if not isinstance(drifted, int):
        drifted = sum(bool(c.get("drifted")) for c in columns)
    share = summary.get("drift_share")
    share_text = f"{share:.0%}" if isinstance(share, int | float) else "?"
    return {
        "Dataset drift": "Yes" if summary.get("dataset_drift") else "No",
        "Drifted columns": f"{drifted} of {len(columns)} ({share_text})",
        "Reference rows": _count(summary.get("n_reference")),
        "Production rows": _count(summary.get("n_current")),
    }


def drift_notes(summary: Mapping[str, Any]) -> list[str]:
    """What the verdict rests on: the rule, the production window, the versions served."""
    notes = []
    threshold = summary.get("drift_share_threshold")
    if isinstance(threshold, int | float):
        notes.append(f"Dataset drift is declared when at least {threshold:.0%} of the columns drift.")
    window = summary.get("window") or {}
    if window.get("from") or window.get("to"):
        notes.append(f"Production rows from {window.get('from', '?')} to {window.get('to', '?')}.")
    versions = summary.get("model_versions") or {}
    if versions:
        served = ", ".join(
            f"version {version} ({_count(rows)} rows)"
            for version, rows in sorted(versions.items(), key=lambda item: -_number(item[1]))
        )
        notes.append(f"Served by {served}.")
    generated = summary.get("generated_at")
    if generated:
        notes.append(f"Report generated at {generated}.")
    return notes


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def performance_cells(performance: Mapping[str, Any]) -> dict[str, str]:
    """The model's error on labelled production rows, in $100,000s as the API reports."""

    def number(key: str) -> str:
        value = performance.get(key)
        return f"{value:.3f}" if isinstance(value, int | float) else "?"

    return {
        "RMSE": number("rmse"),
        "MAE": number("mae"),
        "R²": number("r2"),
        "Labelled rows": _count(performance.get("n_labelled")),
    }


def _count(value: Any) -> str:
    """A row count; JSON may carry it as 120.0 (the API's performance is a dict of floats)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "?"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def drift_report_link(public_base: str, summary: Mapping[str, Any]) -> str:
    return join(public_base, summary.get("report_url") or "/monitoring/drift/report")
