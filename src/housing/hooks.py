"""Project hooks."""

from __future__ import annotations

import sys
from pathlib import Path

from kedro.framework.hooks import hook_impl

from housing.errors import HousingError


class CleanErrors:
    """Show a ``HousingError`` as its message, not as a 150-line traceback.

    Kedro's CLI prints uncaught exceptions through rich's ``sys.excepthook``; this wraps
    it once a run starts. Any other exception keeps its full traceback: that is a bug.
    """

    @hook_impl
    def after_context_created(self) -> None:
        self._install()

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._install()

    @staticmethod
    def _install() -> None:
        previous = sys.excepthook
        if getattr(previous, "_housing_clean_errors", False):
            return

        def excepthook(kind, value, traceback):
            if isinstance(value, HousingError):
                print(f"\n{kind.__name__}: {value}", file=sys.stderr)  # noqa: T201
            else:
                previous(kind, value, traceback)

        excepthook._housing_clean_errors = True
        sys.excepthook = excepthook


class CheckParameters:
    """Refuse a run whose parameters break their schema, before any node runs."""

    @hook_impl
    def after_context_created(self, context) -> None:
        from housing.parameters import check_parameters  # noqa: PLC0415
        from housing.pipelines.modelling.pipeline import CANDIDATES  # noqa: PLC0415

        conf = Path(context.project_path) / "conf"
        check_parameters(context.params, [conf / "base", conf / (context.env or "local")], CANDIDATES)
