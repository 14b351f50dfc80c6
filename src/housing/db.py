"""Database URIs and engines: one place that turns what a user writes into what
SQLAlchemy opens, for the prediction log, the drift reader and Optuna's storage.

A plain ``postgresql://user@host/db`` (or ``postgres://``) means psycopg 3, the driver
the project depends on; SQLAlchemy alone would look for psycopg2. Errors name the
setting and never echo a password.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from housing.errors import HousingError

# what a bare scheme means: the driver that is installed
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


class DatabaseError(HousingError):
    """A database setting that cannot work: malformed, unreachable, or the wrong table.
    The message names the setting and the problem."""


def redact(uri: str) -> str:
    """The URI as it is safe to print: the password, if any, replaced by ``***``."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(uri))


def database_url(uri: str, setting: str) -> sa.URL:
    """Parse ``uri`` (named ``setting`` in messages) and pick the psycopg driver for a
    bare PostgreSQL scheme. Raises :class:`DatabaseError` on anything unparsable."""
    if not uri or not isinstance(uri, str):
        raise DatabaseError(f"{setting}: no database URI is set")
    try:
        url = sa.engine.make_url(uri)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise DatabaseError(
            f"{setting}: {redact(uri)!r} is not a database URI ({exc}); expected e.g. "
            "sqlite:////path/to/file.db or postgresql://user:password@host:5432/database"
        ) from None
    drivername = _DRIVERS.get(url.drivername, url.drivername)
    url = url.set(drivername=drivername)
    try:
        url.get_dialect()
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(
            f"{setting}: no driver for {url.drivername!r} in {redact(uri)!r} ({exc})"
        ) from None
    return url


def url_string(uri: str, setting: str) -> str:
    """:func:`database_url` as a string with the password kept (for libraries that take
    a string, such as Optuna's ``RDBStorage``)."""
    return database_url(uri, setting).render_as_string(hide_password=False)


def is_sqlite(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite"


def create_engine(
    uri: str,
    setting: str,
    *,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    **kwargs: Any,
) -> sa.Engine:
    """An engine for ``uri``: pooled, with stale connections detected on checkout, and
    connections that give up after ``connect_timeout`` seconds on a network database
    (a dead host fails a request in seconds, not minutes). Pool sizes apply to network
    databases; SQLite keeps SQLAlchemy's defaults."""
    url = database_url(uri, setting)
    if is_sqlite(url):
        return sa.create_engine(url, **kwargs)
    connect_args = (
        {"connect_timeout": max(1, round(connect_timeout))} if url.drivername.endswith("psycopg") else {}
    )
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=True,
        connect_args=connect_args,
        **kwargs,
    )


def unreachable(exc: BaseException, uri: str, setting: str) -> DatabaseError:
    """A connection failure as one line: the setting, the redacted URI, the driver's reason."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return DatabaseError(
        f"{setting}: cannot reach the database at {redact(uri)!r}: {reason[0] if reason else type(exc).__name__}"
    )
