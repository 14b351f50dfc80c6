"""`housing`: one click group; every subcommand has --help with its options, a bad option
is exit 2 with the option and the rule named, and `housing --help` loads no heavy module.
`housing monitor` for real: tests/test_monitor.py; `housing simulate` against the API:
tests/test_monitoring_e2e.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from housing import cli as cli_module
from housing.cli import MONITOR_STRATEGIES, cli
from housing.pipelines.retraining.nodes import STRATEGIES
from housing.simulation import SCENARIO_NAMES
from housing.simulation.scenarios import SCENARIOS
from tests.conftest import clean_env, copy_project, housing_cli

HEAVY = ("mlflow", "lightgbm", "kedro.framework.session", "uvicorn", "sklearn", "pandas", "httpx")
OPTIONS = {
    "serve": ["--host", "--port", "--project-path", "--env", "--access-log", "HOUSING_HOST", "HOUSING_PORT"],
    "simulate": ["--scenario", "--n", "--rate", "--feedback", "--url", "--seed", "--token", "--allow-remote"],
    "monitor": ["--auto-retrain", "--strategy", "--project-path", "--env", "Exit status: 0"],
    "registry-users": ["HOUSING_MLFLOW_", "Exit status"],
    "run": ["--pipeline", "--env", "--params"],
}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_the_group_lists_every_command(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in OPTIONS:
        assert f"\n  {name} " in result.output, result.output


@pytest.mark.parametrize("command", sorted(OPTIONS))
def test_every_command_has_help_with_its_options(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    for option in OPTIONS[command]:
        assert option in result.output, result.output


@pytest.mark.parametrize(
    "args", [["--help"], ["serve", "--help"], ["simulate", "--help"], ["monitor", "--help"]]
)
def test_help_imports_no_heavy_module(args):
    """A fresh process: what `housing ... --help` imports (no Kedro session, MLflow, model)."""
    probe = (
        "import sys, json\nfrom housing.cli import cli\n"
        f"try:\n    cli({args!r})\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["simulate", "--scenario", "stable", "--n", "0"],
            "Invalid value for '--n': 0 is not in the range 1<=x<=100000",
        ),
        (
            ["simulate", "--scenario", "stable", "--rate", "0"],
            "Invalid value for '--rate': 0.0 is not in the range 0<x<=5000",
        ),
        (
            ["simulate", "--scenario", "crash"],
            "Invalid value for '--scenario': 'crash' is not one of 'stable'",
        ),
        (["simulate", "--n", "5"], "Missing option '--scenario'"),
        (
            ["simulate", "--scenario", "stable", "--url", "http://10.1.2.3:8000"],
            "Invalid value for --url: http://10.1.2.3:8000 is not a loopback address; pass --allow-remote",
        ),
        (["monitor", "--strategy", "boost"], "Invalid value for '--strategy': 'boost' is not one of 'all'"),
        (
            ["serve", "--port", "http"],
            "Invalid value for '--port' (env var: 'HOUSING_PORT'): 'http' is not a valid integer range",
        ),
        (["serve", "--port", "70000"], "'HOUSING_PORT'): 70000 is not in the range 1<=x<=65535"),
        (["monitor", "--auto-retrian"], "No such option '--auto-retrian'. Did you mean '--auto-retrain'?"),
        (["serv"], "No such command 'serv'"),
    ],
)
def test_a_bad_option_is_exit_2_naming_it(runner, args, message):
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output


def test_an_environment_default_is_checked_like_the_option(runner, monkeypatch):
    monkeypatch.setenv("HOUSING_PORT", "eighty")
    result = runner.invoke(cli, ["serve"])
    assert result.exit_code == 2 and "(env var: 'HOUSING_PORT'): 'eighty'" in result.output


def test_choices_offered_without_imports_are_the_real_ones():
    assert SCENARIO_NAMES == tuple(SCENARIOS)
    assert MONITOR_STRATEGIES == ("all", *STRATEGIES)


def test_kedro_finds_the_project_run_command_here():
    """Kedro's `find_run_command` and the `kedro` CLI read `run` and `cli` from this module."""
    from kedro.framework.cli.project import run  # noqa: PLC0415

    assert cli_module.run is run and isinstance(cli, type(cli))
    with pytest.raises(AttributeError):
        cli_module.walk  # noqa: B018


def test_registry_users_without_passwords_is_exit_2_naming_the_variable(runner, monkeypatch):
    for name in (
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "HOUSING_MLFLOW_WRITER_PASSWORD",
        "HOUSING_MLFLOW_READER_PASSWORD",
    ):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(cli, ["registry-users"])
    assert result.exit_code == 2
    assert "HOUSING_MLFLOW_WRITER_PASSWORD must be set to at least 12 characters" in result.output


@pytest.mark.e2e
def test_housing_run_is_kedros_run_and_python_m_housing_reaches_it(tmp_path):
    """`python -m housing run` (what the `housing` script calls) runs a real pipeline."""
    root = copy_project(tmp_path / "project")
    run = housing_cli(clean_env(), "run", "--pipeline", "data_processing", "--env", "test", cwd=root)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Pipeline execution completed" in run.stdout + run.stderr
    assert (root / "data" / "05_model_input" / "test.parquet").exists()


def test_monitor_outside_a_project_is_exit_1_saying_so(runner, tmp_path):
    """The same path as a scheduler's call, in process (no Kedro session starts); the real
    exit statuses 0, 3 and 1 of a run: tests/test_monitor.py."""
    result = runner.invoke(cli, ["monitor", "--project-path", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path} is not a housing project" in result.output and "pass --project-path" in result.output


def test_simulate_outside_a_project_is_exit_1_saying_so(runner, tmp_path):
    result = runner.invoke(cli, ["simulate", "--scenario", "stable", "--project-path", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path} is not a housing project" in result.output
