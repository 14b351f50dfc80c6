"""The PostgreSQL fixture's own rules: under CI=true a missing server fails, elsewhere it
skips, and either way the message says what is missing."""

import pytest

from tests import postgres


def test_missing_server_binaries_are_named(monkeypatch):
    monkeypatch.setattr(postgres.glob, "glob", lambda _pattern: [])
    bin_dir, missing = postgres._server_bin()
    assert bin_dir is None and "/usr/lib/postgresql/*/bin/initdb" in missing and "apt-get install" in missing


def test_missing_postgres_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        postgres.missing_postgres("no initdb")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and no initdb"):
        postgres.missing_postgres("no initdb")
