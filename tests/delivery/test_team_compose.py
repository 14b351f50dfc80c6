"""docker-compose.team.yml, the team's setup: PostgreSQL for MLflow, the prediction log and
Optuna; two API replicas behind nginx; checked against the compose schema and against what
the code reads (Docker itself is not run here)."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.delivery.dockerfile import env_pairs, stages
from tests.delivery.test_delivery_files import READ_BY_MLFLOW, check_jsonschema, variables_the_code_reads

TEAM = PROJECT_ROOT / "docker-compose.team.yml"
PASSWORD = "${POSTGRES_PASSWORD:?set it in .env}"


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(TEAM.read_text())["services"]


def test_the_team_file_is_valid_compose():
    result = check_jsonschema("vendor.compose-spec", TEAM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_postgres_is_the_official_image_on_a_volume_with_a_healthcheck(services):
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert any(v.startswith("postgres:/var/lib/postgresql/data") for v in postgres["volumes"])
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert postgres["environment"]["POSTGRES_PASSWORD"] == PASSWORD, "the password comes from the environment"
    init = (PROJECT_ROOT / "deploy" / "postgres-init.sql").read_text()
    assert {"mlflow", "optuna"} <= set(re.findall(r"CREATE DATABASE (\w+);", init))


def test_mlflow_log_drift_and_tuning_all_live_in_postgres(services):
    command = " ".join(services["mlflow"]["command"])
    assert f"--backend-store-uri postgresql+psycopg://housing:{PASSWORD}@postgres:5432/mlflow" in command
    assert "--serve-artifacts" in command
    log = f"postgresql://housing:{PASSWORD}@postgres:5432/housing"
    for name in ("api", "drift", "train"):
        assert services[name]["environment"]["HOUSING_PREDICTION_LOG_URI"] == log, name
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
    assert services["train"]["environment"]["HOUSING_OPTUNA_STORAGE"].endswith("@postgres:5432/optuna")
    assert "--params" not in " ".join(services["train"]["command"]), "no credential as a logged parameter"
    for name in ("mlflow", "api", "drift"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name


def test_closed_like_the_one_machine_compose(services):
    """The same defaults as docker-compose.yml: published ports on HOUSING_BIND
    (127.0.0.1), MLflow unpublished behind basic-auth, the API on the read-only account."""
    assert "ports" not in services["mlflow"] and "basic-auth" in services["mlflow"]["command"]
    for name in ("proxy", "ui"):
        assert all(p.startswith("${HOUSING_BIND:-127.0.0.1}:") for p in services[name]["ports"]), name
    assert services["api"]["environment"]["MLFLOW_TRACKING_USERNAME"] == "housing-reader"
    assert services["train"]["environment"]["MLFLOW_TRACKING_USERNAME"] == "housing-writer"


def test_two_api_replicas_follow_the_alias_behind_nginx(services):
    api = services["api"]
    assert api["deploy"]["replicas"] == 2 and "ports" not in api, "replicas are reached through the proxy"
    env = api["environment"]["KEDRO_ENV"]
    team = yaml.safe_load((PROJECT_ROOT / "conf" / env / "serving.yml").read_text())
    assert team["poll_seconds"] > 0, "each replica must pick up a new champion by itself"
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:") and proxy["ports"] == ["${HOUSING_BIND:-127.0.0.1}:8000:8000"]
    assert proxy["depends_on"]["api"]["condition"] == "service_healthy"
    nginx = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server api:8000 resolve;", nginx) and "proxy_pass http://api;" in nginx
    max_body = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "serving.yml").read_text())["max_body_bytes"]
    assert f"client_max_body_size {max_body // 2**20}m;" in nginx
    assert services["ui"]["environment"]["HOUSING_API_URL"] == "http://proxy:8000"


def test_no_password_is_written_in_the_file_and_every_variable_is_read():
    text = TEAM.read_text()
    assert not re.search(r"://housing:(?!\$\{POSTGRES_PASSWORD)", text)
    runtime = stages((PROJECT_ROOT / "Dockerfile").read_text())[-1]
    image_env = {name for i in runtime.all("ENV") for name, _ in env_pairs(i.args)}
    postgres_image = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    known = variables_the_code_reads() | image_env | READ_BY_MLFLOW | postgres_image
    for name, service in yaml.safe_load(text)["services"].items():
        for variable in service.get("environment") or {}:
            assert variable in known or variable.startswith("STREAMLIT_"), (name, variable)
