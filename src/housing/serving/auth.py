"""Who may call what: bearer tokens, by scope.

Three scopes: ``predict`` (``/predict``, ``/predict/batch``, ``/explain``; open unless
``auth.require_predict_token`` is set), ``feedback`` (labels that train and judge models)
and ``admin`` (``/admin/reload``). Feedback and admin are never open: with no token
configured for them, they answer 403.

Tokens come from ``HOUSING_<SCOPE>_TOKEN`` and/or the file named by
``HOUSING_<SCOPE>_TOKEN_FILE`` (Docker and Kubernetes secrets), several per scope, comma-
or line-separated, so a new token can be added before the old one is removed. An entry
``name:token`` names its token; the name (never the token) is what the prediction log
records as the sender of a label. An unnamed token is called ``token-<8 hex of its sha256>``.

Each token's SHA-256 is computed once at start-up; a request costs one SHA-256 of what it
presents and a constant-time comparison (``hmac.compare_digest`` on bytes) with each
digest, so neither a non-ASCII header nor a token's length can change the path taken.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

logger = logging.getLogger(__name__)

SCOPES = ("predict", "feedback", "admin")
MIN_TOKEN_CHARS = 16
NEW_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TOKEN = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what fits in a header unchanged


ENV = {
    "predict": "HOUSING_PREDICT_TOKEN",
    "feedback": "HOUSING_FEEDBACK_TOKEN",
    "admin": "HOUSING_ADMIN_TOKEN",
}


def env_name(scope: str) -> str:
    """The variable listing the scope's tokens; ``<it>_FILE`` names a file that does."""
    return ENV[scope]


class CredentialsError(ValueError):
    """A configured token is unusable; the message names the variable, never the token."""


@dataclass(frozen=True)
class Token:
    name: str
    digest: bytes  # sha256 of the token: fixed length, so comparisons take one path


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_tokens(text: str, source: str) -> tuple[Token, ...]:
    """Entries separated by commas or new lines; ``name:token`` or a bare token; lines
    starting with ``#`` are comments."""
    tokens: list[Token] = []
    lines = (line.strip() for line in text.splitlines())
    entries = [e.strip() for line in lines if not line.startswith("#") for e in line.split(",")]
    for number, entry in enumerate((e for e in entries if e), start=1):
        name, sep, secret = entry.partition(":")
        if not sep or not _NAME.fullmatch(name):
            name, secret = "", entry
        where = f"{source}, entry {number}" + (f" ({name})" if name else "")
        if not _TOKEN.fullmatch(secret):
            raise CredentialsError(f"{where}: a token is visible ASCII without spaces or commas")
        if len(secret) < MIN_TOKEN_CHARS:
            raise CredentialsError(
                f"{where}: the token has {len(secret)} characters, at least {MIN_TOKEN_CHARS} are "
                f"needed; make one with {NEW_TOKEN}"
            )
        digest = _digest(secret.encode("ascii"))
        tokens.append(Token(name or f"token-{digest.hex()[:8]}", digest))
    names = [t.name for t in tokens]
    if len(set(names)) != len(names):
        raise CredentialsError(f"{source}: two tokens share a name; names must be unique per scope")
    return tuple(tokens)


@dataclass(frozen=True)
class Credentials:
    """The tokens of each scope (digests only) and whether predicting needs one."""

    tokens: Mapping[str, tuple[Token, ...]] = field(default_factory=dict)
    predict_required: bool = False

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, predict_required: bool | str = False
    ) -> Credentials:
        environ = os.environ if environ is None else environ
        tokens = {}
        for scope in SCOPES:
            var = env_name(scope)
            found = parse_tokens(environ.get(var) or "", var)
            if path := environ.get(f"{var}_FILE"):
                try:
                    text = Path(path).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise CredentialsError(f"{var}_FILE: cannot read {path} ({type(exc).__name__})") from None
                found += parse_tokens(text, f"{var}_FILE")
            tokens[scope] = found
        if isinstance(predict_required, str):  # from ${env:...} in serving.yml
            predict_required = predict_required.strip().lower() in {"true", "1", "yes"}
        credentials = cls(tokens, bool(predict_required))
        for scope in SCOPES:
            logger.info("API scope %s: %s", scope, credentials.describe(scope))
        return credentials

    @classmethod
    def of(cls, predict_required: bool = False, **scopes: str) -> Credentials:
        """From literal token lists, e.g. ``Credentials.of(admin="ops:...")`` (tests, embedding)."""
        return cls({s: parse_tokens(scopes.get(s, ""), s) for s in SCOPES}, predict_required)

    def describe(self, scope: str) -> str:
        names = [t.name for t in self.tokens.get(scope, ())]
        if scope == "predict" and not self.predict_required:
            return "open"
        return f"{len(names)} token(s): {', '.join(names)}" if names else "disabled (no token configured)"

    def match(self, scope: str, presented: bytes) -> str | None:
        """The name of the token ``presented`` is, or ``None``. Every digest is compared."""
        digest = _digest(presented)
        found = None
        for token in self.tokens.get(scope, ()):
            if hmac.compare_digest(digest, token.digest):
                found = token.name
        return found


class _Bearer(HTTPBearer):
    """HTTPBearer for the OpenAPI security scheme (Swagger's Authorize button); the
    header itself is read by ``require`` to say exactly what is wrong with it."""

    async def __call__(self, request: Request) -> None:
        return None


def _refuse(scope: str, reason: str, fix: str) -> HTTPException:
    return HTTPException(401, f"{reason}; {fix}", headers={"WWW-Authenticate": f'Bearer realm="{scope}"'})


def require(scope: str):
    """A dependency: the name of the caller's token for ``scope``, or a 401/403 that says
    what is wrong and how to fix it."""
    scheme = _Bearer(
        scheme_name=f"{scope}Token",
        description=f"A {scope} token: {env_name(scope)} on the server lists them (README, Security).",
        auto_error=False,
    )
    fix = f"send 'Authorization: Bearer <token>' with a {scope} token (the server lists them in {env_name(scope)})"

    # a default, not Annotated: the annotation would be a string naming a local (PEP 563)
    async def caller(request: Request, _: None = Depends(scheme)) -> str:
        credentials: Credentials = request.app.state.credentials
        if not credentials.tokens.get(scope):
            raise HTTPException(
                403,
                f"{request.url.path} is disabled: no {scope} token is configured on this server; "
                f"the operator sets {env_name(scope)} or {env_name(scope)}_FILE to enable it",
            )
        header = request.headers.get("authorization")
        if header is None:
            raise _refuse(scope, f"{request.url.path} needs a {scope} credential", fix)
        kind, _, token = header.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise _refuse(scope, "the Authorization header is not 'Bearer <token>'", fix)
        # Starlette decodes headers as latin-1: encoding back gives the bytes sent, any bytes
        name = credentials.match(scope, token.strip().encode("latin-1"))
        if name is None:
            logger.info("Refused a %s token on %s from %s", scope, request.url.path, request.client)
            raise _refuse(scope, f"the bearer token is not a valid {scope} token", fix)
        return name

    return caller


FeedbackCaller = Annotated[str, Depends(require("feedback"))]
AdminCaller = Annotated[str, Depends(require("admin"))]

UNAUTHORIZED_RESPONSES = {
    401: {"description": "no, malformed or wrong bearer token (the body says which and how to fix it)"},
    403: {"description": "this scope is disabled: no token is configured for it on the server"},
}
