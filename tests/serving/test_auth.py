"""Scopes and tokens: who may label, reload and (when configured) predict."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from housing.serving.app import create_app
from housing.serving.auth import Credentials, CredentialsError, parse_tokens
from housing.serving.log_table import prediction_table
from housing.serving.prediction_log import PredictionLog
from tests.serving.conftest import ADMIN, ADMIN_TOKEN, FEEDBACK, FEEDBACK_TOKEN, HOUSE, started

OLD, NEW = "old-feedback-token-0001", "new-feedback-token-0002"


# -- configuration ----------------------------------------------------------------------------
def test_tokens_by_name_comma_or_line_separated():
    tokens = parse_tokens(f"# rotation in progress\nci:{OLD}, {NEW}\n\n", "HOUSING_FEEDBACK_TOKEN")
    assert tokens[0].name == "ci"
    assert tokens[1].name.startswith("token-") and len(tokens[1].name) == 14
    assert all(NEW not in t.name and OLD not in t.name for t in tokens)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("short", "at least 16"),
        ("ci:short-but-named", "at least 16"),  # 15 characters after the name
        ("tökén-with-umlauts-0123", "visible ASCII"),
        (f"a:{OLD}\na:{NEW}", "share a name"),
    ],
)
def test_unusable_tokens_stop_the_start_naming_the_variable_not_the_token(text, rule):
    with pytest.raises(CredentialsError, match=rule) as error:
        parse_tokens(text, "HOUSING_ADMIN_TOKEN")
    assert "HOUSING_ADMIN_TOKEN" in str(error.value)
    assert "short-but-named" not in str(error.value) and "umlauts" not in str(error.value)


def test_tokens_from_environment_and_files(tmp_path):
    secret = tmp_path / "feedback_tokens"
    secret.write_text(f"k8s:{NEW}\n")
    credentials = Credentials.from_env(
        {"HOUSING_FEEDBACK_TOKEN": f"env:{OLD}", "HOUSING_FEEDBACK_TOKEN_FILE": str(secret)}
    )
    assert credentials.match("feedback", OLD.encode()) == "env"
    assert credentials.match("feedback", NEW.encode()) == "k8s"
    assert credentials.match("admin", NEW.encode()) is None  # scopes do not share tokens
    assert credentials.describe("predict") == "open" and "disabled" in credentials.describe("admin")
    with pytest.raises(CredentialsError, match="HOUSING_ADMIN_TOKEN_FILE: cannot read"):
        Credentials.from_env({"HOUSING_ADMIN_TOKEN_FILE": str(tmp_path / "missing")})


# -- over HTTP ------------------------------------------------------------------------------
def feedback_for(client, headers=None, request_id="no-such-id"):
    return client.post("/feedback", json={"request_id": request_id, "actual": 2.0}, headers=headers or {})


HOSTILE = {
    "missing": {},
    "empty": {"Authorization": ""},
    "scheme only": {"Authorization": "Bearer"},
    "blank token": {"Authorization": "Bearer    "},
    "wrong scheme": {"Authorization": f"Basic {FEEDBACK_TOKEN}"},
    "wrong token": {"Authorization": "Bearer not-the-feedback-token-at-all"},
    "admin token": ADMIN,  # admin does not imply feedback
    "non-ASCII": {"Authorization": "Bearer tökén-ünïcödé-€".encode()},
    "latin-1 bytes": {"Authorization": b"Bearer \xff\xfe\xe9"},
    "a megabyte": {"Authorization": "Bearer " + "A" * 1_048_576},
    "token and junk": {"Authorization": f"Bearer {FEEDBACK_TOKEN}x"},
    "prefix": {"Authorization": f"Bearer {FEEDBACK_TOKEN[:-1]}"},
}


@pytest.mark.parametrize("headers", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_bad_credential_is_a_401_that_says_how_to_fix_it(client, logged, headers):
    request_id = client.post("/predict", json=HOUSE).json()["request_id"]
    response = feedback_for(client, headers, request_id)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    detail = response.json()["detail"]
    assert "Authorization: Bearer <token>" in detail and "HOUSING_FEEDBACK_TOKEN" in detail
    assert logged()["actual"].isna().all()


def test_the_right_token_passes_and_is_named_in_the_log(client, logged):
    request_id = client.post("/predict", json=HOUSE).json()["request_id"]
    assert (
        feedback_for(client, {"Authorization": f"bearer  {FEEDBACK_TOKEN} "}, request_id).status_code == 200
    )
    assert logged()["actual_by"].tolist() == ["labeller"]


def test_both_tokens_work_during_a_rotation(config, registry, logged):
    config.credentials = Credentials.of(feedback=f"old:{OLD},new:{NEW}")
    with started(create_app(config, registry.source())) as client:
        ids = [client.post("/predict", json=HOUSE).json()["request_id"] for _ in range(2)]
        for request_id, token in zip(ids, (OLD, NEW), strict=True):
            assert feedback_for(client, {"Authorization": f"Bearer {token}"}, request_id).status_code == 200
    assert sorted(logged()["actual_by"]) == ["new", "old"]


def test_feedback_is_disabled_without_a_token_configured(config, registry):
    config.credentials = Credentials.of(admin=ADMIN_TOKEN)
    with started(create_app(config, registry.source())) as client:
        response = feedback_for(client, FEEDBACK)
    assert response.status_code == 403
    assert "/feedback is disabled" in response.json()["detail"]
    assert "HOUSING_FEEDBACK_TOKEN" in response.json()["detail"]


def test_predict_is_open_by_default_and_closed_when_configured(config, registry):
    with started(create_app(config, registry.source())) as client:
        assert client.post("/predict", json=HOUSE).status_code == 200
        assert "security" not in client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    token = "predict-token-0123456789"
    config.credentials = Credentials.of(
        predict_required=True, predict=f"web:{token}", feedback=FEEDBACK_TOKEN
    )
    with started(create_app(config, registry.source())) as client:
        for path, body in (("/predict", HOUSE), ("/predict/batch", {"houses": [HOUSE]}), ("/explain", HOUSE)):
            refused = client.post(path, json=body)
            assert refused.status_code == 401 and "predict token" in refused.json()["detail"], path
            assert (
                client.post(path, json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 200
            )
        assert client.post("/predict", json=HOUSE, headers=FEEDBACK).status_code == 401
        assert client.get("/health").status_code == 200 and client.get("/ready").status_code == 200
        schema = client.get("/openapi.json").json()
    assert schema["paths"]["/predict"]["post"]["security"] == [{"predictToken": []}]


def test_predict_required_without_a_token_is_a_403(config, registry):
    config.credentials = Credentials.of(predict_required=True)
    with started(create_app(config, registry.source())) as client:
        response = client.post("/predict", json=HOUSE)
    assert response.status_code == 403 and "HOUSING_PREDICT_TOKEN" in response.json()["detail"]


def test_openapi_has_security_schemes_for_the_authorize_button(client):
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["feedbackToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["feedbackToken"]["description"],
    }
    assert "HOUSING_FEEDBACK_TOKEN" in schemes["feedbackToken"]["description"]
    assert schema["paths"]["/feedback"]["post"]["security"] == [{"feedbackToken": []}]
    assert schema["paths"]["/admin/reload"]["post"]["security"] == [{"adminToken": []}]
    assert {"401", "403"} <= set(schema["paths"]["/feedback"]["post"]["responses"])
    assert "security" not in schema["paths"]["/health"]["get"]


def test_require_predict_token_from_the_environment_resolver():
    assert Credentials.from_env({}, "true").predict_required is True
    assert Credentials.from_env({}, "false").predict_required is False
    assert Credentials.from_env({}, False).predict_required is False


def test_a_log_from_before_actual_by_gets_the_column(tmp_path):
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    table = prediction_table("predictions", sa.MetaData())
    columns = [c for c in table.columns if c.name != "actual_by"]
    legacy = sa.Table(
        "predictions",
        sa.MetaData(),
        *(sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in columns),
    )
    engine = sa.create_engine(uri)
    legacy.metadata.create_all(engine)
    row = {c.name: 1.0 for c in columns if isinstance(c.type, sa.Float) and c.name != "actual"}
    with engine.begin() as conn:
        conn.execute(
            legacy.insert(),
            [{**row, "request_id": "r1", "created_at": "t", "model_name": "m", "model_version": 1}],
        )
    engine.dispose()
    log = PredictionLog(uri)
    try:
        log.attach_actual("r1", 2.0, "labeller")
        frame = pd.read_sql_table("predictions", log.engine)
    finally:
        log.close()
    assert frame.loc[0, "actual_by"] == "labeller" and frame.loc[0, "actual"] == 2.0
