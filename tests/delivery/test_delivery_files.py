"""docker-compose.yml, the GitHub workflow and the README agree with the Dockerfile, with
.ci/run and with what the code reads."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sysconfig

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.delivery.dockerfile import env_pairs, stages

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
MLFLOW_UI = PROJECT_ROOT / "compose.mlflow-ui.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
# read by `mlflow server --app-name basic-auth` and MLflow's client, not by our code
READ_BY_MLFLOW = {
    "MLFLOW_AUTH_CONFIG_PATH",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
}
WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
CI_RUN = PROJECT_ROOT / ".ci" / "run"
UI_SCRIPT = "src/housing/ui/app.py"


def check_jsonschema(schema: str, path) -> subprocess.CompletedProcess:
    found = shutil.which("check-jsonschema") or shutil.which(
        "check-jsonschema", path=sysconfig.get_path("scripts")
    )
    assert found, "check-jsonschema comes with the test extra: pip install -e '.[test]'"
    return subprocess.run(
        [found, "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())  # PyYAML resolves the << merge keys


@pytest.fixture(scope="module")
def runtime():
    return stages((PROJECT_ROOT / "Dockerfile").read_text())[-1]


@pytest.fixture(scope="module")
def image_env(runtime) -> dict[str, str]:
    return dict(pair for i in runtime.all("ENV") for pair in env_pairs(i.args))


def container_port(mapping: str) -> str:
    return str(mapping).rsplit(":", 1)[-1]


def variables_the_code_reads() -> set[str]:
    """Settings named in the sources (``"HOUSING_..."`` literals) and in conf/ (``${env:NAME``)."""
    names = set()
    for path in (PROJECT_ROOT / "src").rglob("*.py"):
        names |= set(re.findall(r"\"((?:HOUSING|MLFLOW|KEDRO)_[A-Z_]+)\"", path.read_text()))
    for path in (PROJECT_ROOT / "conf").rglob("*.yml"):
        names |= set(re.findall(r"\$\{env:([A-Z_]+)", path.read_text()))
    return names


# -- docker-compose.yml ---------------------------------------------------------------------
def test_compose_file_is_valid_compose():
    result = check_jsonschema("vendor.compose-spec", COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_services_run_the_one_image(compose):
    services = compose["services"]
    assert {"mlflow", "train", "api", "ui"} <= set(services)
    for name, service in services.items():
        assert service["build"] == "." and service["image"] == "housing:latest", name
    optional = {n for n, s in services.items() if s.get("profiles")}
    assert optional <= {"drift"}, "on-demand services only; `docker compose up` starts the rest"


def test_compose_ports_and_urls_match_the_image_and_each_other(compose, runtime, image_env):
    services = compose["services"]
    (expose,) = runtime.all("EXPOSE")
    # the API: the image's default command on its exposed port
    api = services["api"]
    assert "command" not in api
    assert [container_port(p) for p in api["ports"]] == [expose.args] == [image_env["HOUSING_PORT"]]
    assert api["environment"]["HOUSING_PORT"] == image_env["HOUSING_PORT"]
    assert api["environment"]["HOUSING_HOST"] == "0.0.0.0"
    assert api["depends_on"]["train"]["condition"] == "service_completed_successfully"
    # MLflow: the command's port is the published one and the one the clients use
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[:4] == ["mlflow", "server", "--app-name", "basic-auth"]
    port = command[command.index("--port") + 1]
    assert "ports" not in mlflow, "MLflow is published only through compose.mlflow-ui.yml"
    published = yaml.safe_load(MLFLOW_UI.read_text())["services"]["mlflow"]["ports"]
    assert published == [f"127.0.0.1:{port}:{port}"]
    assert command[command.index("--backend-store-uri") + 1].startswith("sqlite:////mlflow/")
    assert any(v.endswith(":/mlflow") for v in mlflow["volumes"])
    assert f"mlflow:{port}" in command[command.index("--allowed-hosts") + 1].split(",")
    for name in ("train", "api"):
        env = services[name]["environment"]
        assert env["MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}", name
        assert env["MLFLOW_ARTIFACT_LOCATION"] == "mlflow-artifacts:/housing", name
    assert services["train"]["command"] == ["kedro", "run", "--pipelines=training"]
    assert "./data:/app/data" in services["train"]["volumes"]
    # the UI: the script the image copies, on its published port, calling the API service
    ui = services["ui"]
    command = ui["command"]
    assert command[:3] == ["streamlit", "run", UI_SCRIPT]
    assert (PROJECT_ROOT / UI_SCRIPT).exists()
    assert any(i.args.split()[-1] == UI_SCRIPT for i in runtime.all("COPY"))
    assert [container_port(p) for p in ui["ports"]] == [command[command.index("--server.port") + 1]]
    assert ui["environment"]["HOUSING_API_URL"] == f"http://api:{expose.args}"


def test_the_prediction_log_is_on_a_volume(compose, runtime):
    services = compose["services"]
    for name in ("api", "drift"):
        uri = services[name]["environment"]["HOUSING_PREDICTION_LOG_URI"]
        folder = uri.removeprefix("sqlite:///").rsplit("/", 1)[0]
        volumes = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert volumes.get(folder) in compose["volumes"], (name, folder)
    # the image creates that folder, so a new named volume starts owned by the user
    (workdir,) = runtime.all("WORKDIR")
    created = " ".join(i.args for i in runtime.all("RUN"))
    relative = folder.removeprefix(workdir.args + "/")
    assert re.search(rf"mkdir[^&]*\s{re.escape(relative)}(\s|$)", created)


def test_compose_sets_only_variables_that_something_reads(compose, image_env):
    known = variables_the_code_reads() | set(image_env)
    for name, service in compose["services"].items():
        for variable in service.get("environment") or {}:
            assert variable in known | READ_BY_MLFLOW or variable.startswith("STREAMLIT_"), (name, variable)


def test_compose_is_closed_by_default(compose):
    """Published ports listen on 127.0.0.1 unless HOUSING_BIND says otherwise; MLflow asks
    for a login and its files; each job uses the registry account its role needs."""
    for name, service in compose["services"].items():
        for mapping in service.get("ports") or []:
            assert str(mapping).startswith("${HOUSING_BIND:-127.0.0.1}:"), (name, mapping)
    services = compose["services"]
    mlflow_env = services["mlflow"]["environment"]
    ini = next(v for v in services["mlflow"]["volumes"] if v.endswith(":ro"))
    assert ini.split(":")[1] == mlflow_env["MLFLOW_AUTH_CONFIG_PATH"]
    assert "default_permission = READ" in (PROJECT_ROOT / ini.split(":")[0]).read_text()
    for name in ("train", "drift"):
        assert services[name]["environment"]["MLFLOW_TRACKING_USERNAME"] == "housing-writer", name
    assert services["api"]["environment"]["MLFLOW_TRACKING_USERNAME"] == "housing-reader"
    assert services["train"]["depends_on"]["registry-users"]["condition"] == "service_completed_successfully"


def test_secrets_come_from_a_git_ignored_env_file_with_a_committed_example():
    text = COMPOSE.read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+):\?", text))  # compose refuses to start without them
    assert {"MLFLOW_AUTH_ADMIN_PASSWORD", "HOUSING_MLFLOW_READER_PASSWORD"} <= needed
    example = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert needed | set(re.findall(r"\$\{([A-Z_]+):-", text)) - {"HOUSING_REQUIRE_PREDICT_TOKEN"} <= set(
        example
    )
    assert not re.search(r"(PASSWORD|SECRET_KEY|_TOKEN): [^$\s]", text), "a literal secret in compose"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT_ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored"


# -- the GitHub workflow --------------------------------------------------------------------
def test_workflow_is_a_valid_github_workflow():
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        result = check_jsonschema(schema, WORKFLOW)
        assert result.returncode == 0, result.stdout + result.stderr


def ci_commands() -> list[str]:
    """.ci/run's install and test commands."""
    lines = [line.strip() for line in CI_RUN.read_text().splitlines()]
    commands = [line for line in lines if re.match(r"python -m (pip install|pytest)\b", line)]
    assert any("pytest" in c for c in commands) and any("-e" in shlex.split(c) for c in commands)
    return commands


def workflow_lines(job: dict) -> list[str]:
    return [line.strip() for step in job["steps"] for line in str(step.get("run", "")).splitlines()]


def test_workflow_runs_the_same_install_and_tests_as_ci_run():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    test = workflow["jobs"]["test"]
    lines = workflow_lines(test)
    commands = ci_commands()
    positions = [lines.index(command) for command in commands]  # each one, verbatim
    assert positions == sorted(positions), "in the same order"
    setup = next(s for s in test["steps"] if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert str(setup["with"]["python-version"]) == "3.11"
    text = "\n".join(lines)
    # a tracking server, a light training run and the API before the tests
    order = [
        text.index("mlflow server --host 127.0.0.1 --port 5000"),
        text.index("MLFLOW_TRACKING_URI=http://127.0.0.1:5000"),
        text.index("kedro run --pipelines=training --env test"),
        text.index("housing serve --host 127.0.0.1"),
        text.index("127.0.0.1:8000/ready"),
        text.index("\npython -m pytest"),
    ]
    assert order == sorted(order)


def test_workflow_pushes_the_image_from_main_after_the_tests():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    docker = workflow["jobs"]["docker"]
    assert docker["needs"] == "test"
    assert "github.event_name == 'push'" in docker["if"] and "refs/heads/main" in docker["if"]
    uses = {str(s.get("uses", "")).split("@")[0]: s for s in docker["steps"]}
    assert {"docker/setup-buildx-action", "docker/login-action", "docker/build-push-action"} <= set(uses)
    build = uses["docker/build-push-action"]["with"]
    assert build["push"] is True and build["context"] == "."
    tags = uses["docker/metadata-action"]["with"]["tags"]
    assert "${{ github.sha }}" in tags and "value=latest" in tags


# -- README ---------------------------------------------------------------------------------
def readme_sections() -> dict[str, str]:
    """The README's ``## `` sections by title."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    return {part.split("\n", 1)[0].strip(): part.split("\n", 1)[1] for part in readme.split("\n## ")[1:]}


def test_readme_documents_the_delivery(compose, image_env):
    sections = readme_sections()
    for title, needed in (
        ("The UI", f"streamlit run {UI_SCRIPT}"),
        ("Docker", "docker compose up"),
        ("CI", ".github/workflows/ci.yml"),
        ("What was checked, and how", "The image was not built on the development machine"),
    ):
        assert needed in sections[title], (title, needed)
    variables = {v for s in compose["services"].values() for v in s.get("environment") or {}}
    variables |= {v for v in image_env if v.startswith(("HOUSING_", "MLFLOW_"))}
    for variable in sorted(variables):
        if not variable.startswith(("STREAMLIT_", "KEDRO_")):
            assert variable in sections["Environment variables"], variable
    for service in ("mlflow", "train", "api", "ui"):
        assert f"`{service}`" in sections["Docker"], service
