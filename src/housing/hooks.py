"""Project hooks."""

from __future__ import annotations

import sys

from kedro.framework.hooks import hook_impl

from housing.errors import HousingError


class CleanErrors:
    """Show a ``HousingError`` as its message, not as a 150-line traceback.

    Kedro's CLI prints uncaught exceptions through rich's ``sys.excepthook``; this wraps
    it once a run starts. Any other exception keeps its full traceback: that is a bug.
    """

    @hook_impl
    def before_pipeline_run(self) -> None:
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
