"""A config loader that anchors stores to the project, whatever the working directory.

STACK-NOTES: a relative ``sqlite:///mlflow.db`` silently creates an empty store in
whatever folder a process starts from. ``${project_root:}`` resolves to the folder that
holds ``conf/`` of the session being created (a test's temporary copy, a container's
``/app``), so the tracking store, the artifacts and the prediction log stay together.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader


def _env(name: str, default: Any = None) -> Any:
    """``${env:NAME,default}``: a variable that may be unset (empty counts as unset)."""
    return os.environ.get(name) or default


class ProjectConfigLoader(OmegaConfigLoader):
    """OmegaConfigLoader with ``${project_root:}`` and ``${env:NAME,default}`` everywhere."""

    def __init__(self, conf_source: str, *args: Any, **kwargs: Any) -> None:
        root = Path(conf_source).resolve().parent.as_posix()
        resolvers = {"project_root": lambda: root, "env": _env}
        kwargs["custom_resolvers"] = {
            **resolvers,
            **(kwargs.get("custom_resolvers") or {}),
        }
        super().__init__(conf_source, *args, **kwargs)
