"""Accounts of an MLflow tracking server run with ``--app-name basic-auth``.

    housing registry-users

The registry is a trust boundary: the API unpickles what the alias points at. So the
training and retraining jobs use a *writer* account, which creates the registered model
(and so owns it: MANAGE), and the API a *reader* account. With the server's
``default_permission = READ``, the reader can load every version but gets 403 when it
tries to register a version, tag one or move an alias. Idempotent: run at every start; an
existing account gets the password from the environment (that is how passwords rotate).

Environment: ``MLFLOW_TRACKING_URI``; the admin account ``MLFLOW_AUTH_ADMIN_USERNAME``
(default ``admin``) and ``MLFLOW_AUTH_ADMIN_PASSWORD``; ``HOUSING_MLFLOW_WRITER_USER``,
``HOUSING_MLFLOW_WRITER_PASSWORD``, ``HOUSING_MLFLOW_READER_USER``,
``HOUSING_MLFLOW_READER_PASSWORD``; ``HOUSING_MODEL_NAME``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import contextmanager

from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

MIN_PASSWORD_CHARS = 12


@contextmanager
def _as(username: str, password: str):
    """MLflow's REST client reads the credentials from the environment at each request."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = username, password
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name) or ""
    if len(value) < MIN_PASSWORD_CHARS:
        raise ValueError(f"{name} must be set to at least {MIN_PASSWORD_CHARS} characters (see .env.example)")
    return value


def _ensure_user(auth, username: str, password: str) -> str:
    try:
        auth.get_user(username)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        auth.create_user(username, password)
        return "created"
    auth.update_user_password(username, password)
    return "password set"


def ensure_accounts(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Create or update the writer and reader; the writer creates (and owns) the model."""
    env = os.environ if env is None else env
    uri = env.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5000"
    admin = env.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin"
    accounts = {
        role: (env.get(f"HOUSING_MLFLOW_{role.upper()}_USER") or f"housing-{role}", _required(env, pw))
        for role, pw in (
            ("writer", "HOUSING_MLFLOW_WRITER_PASSWORD"),
            ("reader", "HOUSING_MLFLOW_READER_PASSWORD"),
        )
    }
    done = {}
    with _as(admin, _required(env, "MLFLOW_AUTH_ADMIN_PASSWORD")):
        auth = get_app_client("basic-auth", tracking_uri=uri)
        for role, (username, password) in accounts.items():
            done[username] = _ensure_user(auth, username, password)
    model = env.get("HOUSING_MODEL_NAME") or "california-housing"
    with _as(*accounts["writer"]):
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        try:
            client.create_registered_model(model)
            done[model] = "registered model created by the writer"
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            done[model] = "registered model exists"
    return done
