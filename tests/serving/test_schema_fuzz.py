"""Schemathesis: property-based requests from the OpenAPI schema. No 5xx, ever, and every
answer conforms to the schema (status codes, content types, bodies). The endpoints behind
a token are fuzzed with and without one; so is /predict when it is configured to need one.

Plain Hypothesis over Schemathesis' strategies (not its pytest plugin, whose fixture
integration broke on pytest 9.2): one test per operation, each a bounded number of cases.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from housing.serving.app import create_app
from housing.serving.auth import Credentials
from tests.serving.conftest import ADMIN, ADMIN_TOKEN, FEEDBACK, FEEDBACK_TOKEN, started

OPERATIONS = [
    ("POST", "/predict"),
    ("POST", "/predict/batch"),
    ("POST", "/explain"),
    ("POST", "/feedback"),
    ("POST", "/admin/reload"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/model"),
    ("GET", "/metrics"),
    ("GET", "/monitoring/drift"),
    ("GET", "/monitoring/drift/report"),
]


PREDICT_TOKEN = "predict-token-0123456789"
PREDICT = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
NO_TOKEN: dict[str, str] = {}
AUTHENTICATED = [
    ("POST", "/feedback", FEEDBACK),
    ("POST", "/feedback", NO_TOKEN),
    ("POST", "/feedback", {"Authorization": "Bearer wrong-token-but-long-enough"}),
    ("POST", "/admin/reload", ADMIN),
    ("POST", "/admin/reload", NO_TOKEN),
]
CLOSED_PREDICT = [(m, p, h) for m, p in OPERATIONS[:3] for h in (PREDICT, NO_TOKEN)]


def fuzz(schema, method: str, path: str, headers: dict[str, str] | None = None) -> None:
    operation = schema[path][method]

    # Only HealthCheck.too_slow is suppressed: it times how long drawing cases takes, which
    # on a shared 2-core machine measures the load, not this code. The others stay on: a
    # strategy that filters out most cases or draws oversized data fails the test.
    @given(case=operation.as_strategy())
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    def check(case):
        # Every check but "schema-valid data is accepted": one rule, AveBedrms <= AveRooms,
        # spans two fields and JSON Schema cannot state it (the House description does), so
        # a schema-valid house may rightly get a 422 naming that rule; a label outside
        # serving.yml's feedback range is a 422 too.
        response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
        assert response.status_code < 500

    check()


@pytest.fixture
def schema(config, registry):
    app = create_app(config, registry.source())
    with started(app):  # runs the lifespan: model loaded, log open
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def closed_schema(config, registry):
    """/predict behind a predict token (auth.require_predict_token: true)."""
    config.credentials = Credentials.of(
        predict_required=True, predict=PREDICT_TOKEN, feedback=FEEDBACK_TOKEN, admin=ADMIN_TOKEN
    )
    app = create_app(config, registry.source())
    with started(app):
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(schema):
    documented = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert documented == set(OPERATIONS), "a new endpoint must join OPERATIONS, so it is fuzzed too"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_its_schema(schema, method, path):
    fuzz(schema, method, path)


def _ids(cases):
    names = {"": "no token", FEEDBACK_TOKEN: "token", ADMIN_TOKEN: "token", PREDICT_TOKEN: "token"}
    return [f"{m} {p} {names.get(h.get('Authorization', '')[7:], 'wrong token')}" for m, p, h in cases]


@pytest.mark.parametrize(("method", "path", "headers"), AUTHENTICATED, ids=_ids(AUTHENTICATED))
def test_authenticated_operations_with_and_without_a_token(schema, method, path, headers):
    fuzz(schema, method, path, headers)


@pytest.mark.parametrize(("method", "path", "headers"), CLOSED_PREDICT, ids=_ids(CLOSED_PREDICT))
def test_a_closed_predict_with_and_without_a_token(closed_schema, method, path, headers):
    fuzz(closed_schema, method, path, headers)
