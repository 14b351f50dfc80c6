"""``housing``: one command, a subcommand per job (``housing --help`` lists them).

    housing run --pipeline training      Kedro's own ``kedro run``
    housing serve                        the prediction API
    housing simulate --scenario ...      replay traffic against it
    housing monitor [--auto-retrain]     drift, then retraining, for a scheduler
    housing registry-users               accounts of an MLflow basic-auth server

Each command imports what it needs when it runs, so ``housing --help`` and every
``--help`` answer without loading Kedro's session, MLflow or a model. Kedro also reads
this module (``kedro`` merges ``cli`` into its commands; ``find_run_command`` takes
``run``), which is why ``run`` is Kedro's own command, re-exported.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from housing.simulation import MAX_RATE, MAX_REQUESTS, SCENARIO_NAMES

PACKAGE = "housing"
MONITOR_STRATEGIES = ("all", "mixed", "finetune", "weighted")
RUN_HELP = "Run Kedro pipelines: Kedro's own `kedro run`."
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

project_path_option = click.option(
    "--project-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Kedro project root.",
)
env_option = click.option("--env", "-e", default=None, help="Kedro configuration environment (e.g. test).")


def _kedro_run() -> click.Command:
    """Kedro's ``run`` command, with the project's settings and pipelines configured (the
    project template's ``__main__`` does the same before calling it)."""
    from kedro.framework.cli.project import run  # noqa: PLC0415
    from kedro.framework.project import configure_project  # noqa: PLC0415

    configure_project(PACKAGE)
    return run


def __getattr__(name: str):
    """``housing.cli.run`` on first use: Kedro's ``find_run_command`` looks it up here."""
    if name == "run":
        return _kedro_run()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Housing(click.Group):
    """A group whose ``run`` is Kedro's, imported only when it is invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "run"})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "run":
            return _kedro_run()
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List every command without importing Kedro's ``run``."""
        limit = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = [(name, command.get_short_help_str(limit)) for name, command in self.commands.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted([*rows, ("run", RUN_HELP)]))


@click.group(cls=_Housing, context_settings=CONTEXT)
@click.version_option(package_name=PACKAGE)
def cli() -> None:
    """California house prices: train, serve, replay traffic and monitor the champion."""


@cli.command(context_settings=CONTEXT)
@click.option("--host", envvar="HOUSING_HOST", default="127.0.0.1", show_default=True, show_envvar=True)
@click.option(
    "--port",
    envvar="HOUSING_PORT",
    type=click.IntRange(1, 65_535),
    default=8000,
    show_default=True,
    show_envvar=True,
)
@click.option(
    "--project-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Kedro project root (default: $HOUSING_PROJECT_PATH, else the working directory).",
)
@click.option("--env", "-e", default=None, help="Kedro configuration environment (default: $KEDRO_ENV).")
@click.option("--access-log", is_flag=True, help="Log every request (slower).")
def serve(host: str, port: int, project_path: Path | None, env: str | None, access_log: bool) -> None:
    """Serve the champion model over HTTP (one uvicorn worker)."""
    import uvicorn  # noqa: PLC0415

    from housing.serving.server import ServerLimits  # noqa: PLC0415
    from housing.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS  # noqa: PLC0415

    # the app factory runs in this process and reads the project and environment from here
    if project_path:
        os.environ["HOUSING_PROJECT_PATH"] = str(project_path)
    if env:
        os.environ["KEDRO_ENV"] = env
    project = Path(os.environ.get("HOUSING_PROJECT_PATH") or Path.cwd()).resolve()
    loader = CONFIG_LOADER_CLASS(
        str(project / "conf"), env=os.environ.get("KEDRO_ENV") or None, **CONFIG_LOADER_ARGS
    )
    limits = ServerLimits.from_conf(loader["serving"].get("server"))  # server: of serving.yml
    uvicorn.run(
        "housing.serving.app:create_app_from_project",
        factory=True,
        host=host,
        port=port,
        workers=1,
        access_log=access_log,
        log_level="info",
        **limits.uvicorn_kwargs(),
    )


@cli.command(context_settings=CONTEXT)
@click.option("--scenario", type=click.Choice(SCENARIO_NAMES), required=True, help="Traffic to replay.")
@click.option(
    "--n", type=click.IntRange(1, MAX_REQUESTS), default=1_000, show_default=True, help="Requests to send."
)
@click.option(
    "--rate",
    type=click.FloatRange(0, MAX_RATE, min_open=True),
    default=200.0,
    show_default=True,
    help="Requests per second.",
)
@click.option("--feedback", is_flag=True, help="Send each row's ground truth too (needs a feedback token).")
@click.option("--url", envvar="HOUSING_API_URL", default="http://127.0.0.1:8000", show_default=True)
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@project_path_option
@env_option
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback API URL.")
@click.option(
    "--token",
    envvar="HOUSING_API_TOKEN",
    default=None,
    help="Bearer token sent with every request: a feedback token for --feedback, a predict "
    "token if the API requires one (default: $HOUSING_API_TOKEN).",
)
@click.pass_context
def simulate(ctx: click.Context, url: str, allow_remote: bool, project_path: Path, **options) -> None:
    """Replay a seeded traffic scenario against the prediction API.

    Exit status: 0 every row predicted, 2 some refused by the API, 1 the API not ready or
    the token refused."""
    from housing.simulation import replay  # noqa: PLC0415

    if not allow_remote and not replay.is_loopback(url):
        raise click.BadParameter(
            f"{url} is not a loopback address; pass --allow-remote to send there", param_hint="--url"
        )
    ctx.exit(replay.run(url=url, project_path=project_path.resolve(), **options))


@cli.command(context_settings=CONTEXT)
@click.option(
    "--auto-retrain", is_flag=True, help="Retrain when drift is found; promote what passes the gate."
)
@click.option(
    "--strategy",
    type=click.Choice(MONITOR_STRATEGIES),
    default="all",
    show_default=True,
    help="Retraining strategy for --auto-retrain (all: each one, the best that passes the gate).",
)
@project_path_option
@env_option
@click.pass_context
def monitor(
    ctx: click.Context, auto_retrain: bool, strategy: str, project_path: Path, env: str | None
) -> None:
    """Check drift of production traffic; retrain when it is found (--auto-retrain).

    Exit status: 0 no drift or a challenger promoted, 3 drift found but the champion
    stays, 1 a problem (the message says what to do)."""
    from housing.jobs import drift_then_retrain  # noqa: PLC0415

    ctx.exit(drift_then_retrain(project_path.resolve(), env, auto_retrain, strategy))


@cli.command("registry-users", context_settings=CONTEXT)
@click.pass_context
def registry_users(ctx: click.Context) -> None:
    """Create or update the writer and reader accounts of an MLflow basic-auth server.

    Reads MLFLOW_TRACKING_URI, MLFLOW_AUTH_ADMIN_USERNAME/_PASSWORD and
    HOUSING_MLFLOW_{WRITER,READER}_{USER,PASSWORD}. Exit status: 0 done, 2 a password
    missing or too short, 1 MLflow refused."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415

    from housing.registry_users import ensure_accounts  # noqa: PLC0415

    try:
        for name, what in ensure_accounts().items():
            click.echo(f"{name}: {what}")
    except ValueError as exc:
        click.echo(str(exc), err=True)
        ctx.exit(2)
    except MlflowException as exc:
        click.echo(f"MLflow refused: {exc}", err=True)
        ctx.exit(1)
