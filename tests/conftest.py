"""Shared fixtures: the real data, the project's own parameters, isolated project copies."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from housing.config_loader import ProjectConfigLoader

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RAW_CANDIDATES = (
    PROJECT_ROOT / "data" / "01_raw" / "california_housing.csv",
    PROJECT_ROOT.parent / "shared" / "data" / "california_housing.csv",
)


def raw_csv_path() -> Path:
    for path in RAW_CANDIDATES:
        if path.exists():
            return path
    pytest.fail(
        "California Housing CSV not found; copy ../shared/data/california_housing.csv "
        "to data/01_raw/ (.ci/run does)"
    )


@pytest.fixture(scope="session")
def raw_housing() -> pd.DataFrame:
    return pd.read_csv(raw_csv_path(), float_precision="round_trip")  # as the catalog reads it


@pytest.fixture(scope="session")
def params() -> dict:
    """The base parameters, as the pipelines see them."""
    loader = ProjectConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]


@pytest.fixture(scope="session")
def light_params(params) -> dict:
    """Base parameters with conf/test layered on top (what `--env test` runs)."""
    loader = ProjectConfigLoader(
        str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="test",
        merge_strategy={"parameters": "soft"},
    )
    return loader["parameters"]


def copy_project(root: Path) -> Path:
    """A throw-away copy of the project: its own data/, mlflow.db and artifacts.

    The installed ``housing`` package is shared; only configuration and data are copied,
    which is all a Kedro session reads from its project path.
    """
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / ".telemetry", root / ".telemetry")
    (root / "src").mkdir()  # Kedro wants the source dir; the package itself is installed
    (root / "data" / "01_raw").mkdir(parents=True)
    shutil.copy(raw_csv_path(), root / "data" / "01_raw" / "california_housing.csv")
    return root


def clean_env() -> dict[str, str]:
    """The environment for a subprocess that must use the project copy's own stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "HOUSING_"))}
    return {**env, "KEDRO_DISABLE_TELEMETRY": "true"}


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    for var in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_ARTIFACT_LOCATION",
        "HOUSING_PREDICTION_LOG_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    return copy_project(tmp_path / "project")


def kedro_run(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`kedro run --env test ARGS` in a project copy, as a user runs it (bounded in time)."""
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--env", "test", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def housing_cli(
    env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """`housing ARGS` in its own process, as a user or a scheduler runs it (bounded in time):
    MLflow keeps global state, so real runs never share the test's process."""
    return subprocess.run(
        [sys.executable, "-m", "housing", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory) -> Path:
    """A project copy after `kedro run --env test`: a champion in its own registry."""
    root = copy_project(tmp_path_factory.mktemp("trained") / "project")
    run = kedro_run(root, clean_env(), "--pipelines", "training")
    assert run.returncode == 0, run.stderr[-3000:]
    return root


def stop_group(process: subprocess.Popen, grace: float = 10) -> None:
    """Stop a server started with ``start_new_session=True`` and every process it spawned
    (``mlflow server`` forks uvicorn, a job runner and its consumers): SIGTERM to the
    group, then SIGKILL to whatever is left."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # children that outlived their parent
        return


def wait_until_answers(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Poll ``url`` until it answers 200, failing with the server's stderr if it dies and
    after ``timeout`` seconds if it never answers (bounded, as every test loop is)."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() < deadline, f"{url} did not answer within {timeout} s"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_api(project: Path, env: dict[str, str], timeout: float = 120):
    """`housing serve` on 127.0.0.1 for this project copy, ready, then killed."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "housing",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--project-path",
            str(project),
            "--env",
            "test",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, f"the API was not ready within {timeout} s"
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        yield url, process
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session (tests/postgres.py); skipped with what is
    missing when it cannot run here, a failure under CI=true."""
    from tests.postgres import postgres_server  # noqa: PLC0415

    with postgres_server(free_port()) as server:
        yield server


@pytest.fixture
def postgres_uri(postgres) -> str:
    """A fresh database on the session's server, as a plain ``postgresql://`` URI."""
    return postgres.create_database()
