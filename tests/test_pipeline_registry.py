"""The registry: each pipeline name is its own folder, names and tags as the CLI and the
catalog expect them, and building them warns about nothing."""

from __future__ import annotations

import subprocess
import sys

from housing.pipeline_registry import register_pipelines


def test_drift_and_retraining_are_their_own_pipelines_with_their_nodes():
    pipelines = register_pipelines()
    assert {n.name for n in pipelines["drift"].nodes} == {
        "select_production_window",
        "detect_drift",
        "keep_drift_history",
    }
    assert {n.name for n in pipelines["retraining"].nodes} == {
        "split_labelled_production",
        "retrain_challengers",
        "judge_challengers",
    }
    assert all({"monitoring", "drift"} <= n.tags for n in pipelines["drift"].nodes)
    assert all({"monitoring", "retraining"} <= n.tags for n in pipelines["retraining"].nodes)
    assert pipelines["__default__"] is pipelines["training"]


def test_building_the_pipelines_warns_about_nothing():
    """A fresh process: Kedro warns about dotted dataset names once per process."""
    probe = (
        "import warnings\nwarnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    from housing.pipeline_registry import register_pipelines\n"
        "    register_pipelines()\n"
        "print([str(w.message) for w in caught if 'kedro' in w.filename])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
