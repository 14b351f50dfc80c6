"""``python -m housing.serving``: serve the champion with one uvicorn worker."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn

from housing.serving.server import ServerLimits


def server_limits(project_path: Path, env: str | None) -> ServerLimits:
    """``server:`` of the project's serving.yml (the same files the app reads)."""
    from housing.settings import CONFIG_LOADER_ARGS, CONFIG_LOADER_CLASS  # noqa: PLC0415

    loader = CONFIG_LOADER_CLASS(str(project_path / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return ServerLimits.from_conf(loader["serving"].get("server"))


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the champion model over HTTP.")
    parser.add_argument("--host", default=os.environ.get("HOUSING_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("HOUSING_PORT", "8000")))
    parser.add_argument("--project-path", default=None, help="Kedro project root (default: cwd)")
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    parser.add_argument("--access-log", action="store_true", help="log every request (slower)")
    args = parser.parse_args()
    if args.project_path:
        os.environ["HOUSING_PROJECT_PATH"] = args.project_path
    if args.env:
        os.environ["KEDRO_ENV"] = args.env
    project = Path(os.environ.get("HOUSING_PROJECT_PATH") or Path.cwd()).resolve()
    limits = server_limits(project, os.environ.get("KEDRO_ENV") or None)
    uvicorn.run(
        "housing.serving.app:create_app_from_project",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=args.access_log,
        log_level="info",
        **limits.uvicorn_kwargs(),
    )


if __name__ == "__main__":
    main()
