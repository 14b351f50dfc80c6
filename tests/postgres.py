"""A throw-away PostgreSQL server for the tests: Debian's server binaries, a cluster in a
temporary folder, 127.0.0.1 on a free port, password authentication over TCP.

``initdb`` and ``pg_ctl`` refuse to run as root, so as root they run as the ``postgres``
user (``runuser``) on a folder it owns. Under ``CI=true`` a missing server fails the
tests that need it; elsewhere they are skipped with what is missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

USER = "housing"


def _server_bin() -> tuple[Path | None, str]:
    """The newest installed server's bin folder, or None and what is missing."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if not found:
        return None, (
            "the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/initdb): "
            "apt-get install -y postgresql"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return (
                None,
                "running as root needs the 'postgres' user to run initdb/pg_ctl (apt-get install postgresql)",
            )
        if not shutil.which("runuser"):
            return None, "running as root needs runuser (util-linux) to run initdb/pg_ctl as postgres"
    return Path(found[-1]).parent, ""


def missing_postgres(reason: str) -> None:
    """Fail under CI (the PostgreSQL tests must run there), skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


class PostgresServer:
    """One cluster: ``start``/``stop`` (to test an outage), ``create_database`` per test."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.port = port
        self.password = secrets.token_urlsafe(16)
        self.root = Path(tempfile.mkdtemp(prefix="housing-pg-"))  # not under /tmp/pytest-of-root (0700)
        self.data = self.root / "data"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres")

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed: {result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_postgres:
            shutil.chown(pwfile, "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            timeout=120,
        )
        pwfile.unlink()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def uri(self, database: str = "postgres", scheme: str = "postgresql") -> str:
        return f"{scheme}://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its plain ``postgresql://`` URI."""
        import psycopg  # noqa: PLC0415

        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.uri(), autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "log").read_text()[-chars:]
        return ""

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server(port: int):
    """A started server for the duration of the block, removed afterwards."""
    bin_dir, missing = _server_bin()
    if bin_dir is None:
        missing_postgres(missing)
    try:
        import psycopg  # noqa: F401, PLC0415
    except ImportError:
        missing_postgres("psycopg is not installed: pip install -e '.[test]'")
    server = PostgresServer(bin_dir, port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
