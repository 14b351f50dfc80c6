"""housing.simulation.replay (traffic replay) against the real app; lives with the serving fixtures."""

import pytest

from housing.serving.app import create_app
from housing.simulation.replay import is_loopback, replay
from housing.simulation.scenarios import make_scenario
from tests.serving.conftest import FEEDBACK, started


def test_replay_sends_predictions_and_feedback(config, registry, logged, raw_housing):
    rows = make_scenario(raw_housing, "stable", 40, {"seed": 0})
    with started(create_app(config, registry.source()), headers=FEEDBACK) as client:
        counts = replay(client, rows, rate=2_000, feedback=True, progress=False)
    assert counts == {"sent": 40, "predicted": 40, "rejected": 0, "feedback": 40}
    log = logged()
    assert set(log["actual_by"]) == {"labeller"}
    assert len(log) == 40
    assert sorted(log["actual"]) == pytest.approx(sorted(rows["actual"]))


def test_replay_counts_rejections(config, registry, raw_housing):
    rows = make_scenario(raw_housing, "stable", 5, {"seed": 0})
    rows.loc[2, "Latitude"] = 80.0  # outside California: the API refuses it
    with started(create_app(config, registry.source())) as client:
        counts = replay(client, rows, rate=1_000, progress=False)
    assert counts["rejected"] == 1 and counts["predicted"] == 4


def test_loopback_only_by_default():
    """The CLI refuses any other URL without --allow-remote (tests/test_cli.py)."""
    assert is_loopback("http://127.0.0.1:8000") and is_loopback("http://localhost:8000")
    assert not is_loopback("http://10.1.2.3:8000")


def test_replay_without_a_feedback_token_stops_with_the_reason(config, registry, raw_housing):
    rows = make_scenario(raw_housing, "stable", 3, {"seed": 0})
    with started(create_app(config, registry.source())) as client:
        with pytest.raises(PermissionError, match="401.*feedback"):
            replay(client, rows, rate=1_000, feedback=True, progress=False)
