"""housing.monitor: drift, then retraining only when asked and only when it drifted; the
decision is printed in plain words and the exit status says whether a model was promoted."""

import pytest

from housing import monitor
from housing.pipelines.monitoring.nodes import MonitoringError

PROMOTED = {
    "promoted": True,
    "summary": "promoted retrain-finetune: of 3 strategies, 1 passed the gate (finetune)",
    "labels_needed": [],
}
KEPT = {
    "promoted": False,
    "summary": "the champion stays (version 1): none of mixed, finetune, weighted passed the gate.",
    "labels_needed": ["labelled production rows from cluster 05 (around 32.8, -117.1; 12 so far)"],
}


@pytest.fixture
def runs(monkeypatch):
    ran: list[tuple[str, dict | None]] = []
    monkeypatch.setattr(monitor, "bootstrap_project", lambda path: None)
    monkeypatch.setattr(
        monitor, "_run", lambda path, env, pipeline, params=None: ran.append((pipeline, params))
    )
    return ran


def outcome(monkeypatch, drift: bool, decision: dict | None = None, performance_drift: bool = False) -> None:
    summary = {
        "dataset_drift": drift,
        "drift_share": 0.4,
        "performance": {"rmse": 0.62, "n_labelled": 1000, "reference_rmse": 0.43},
        "performance_drift": performance_drift,
    }
    loaded = {"drift_summary": summary, "retraining_decision": decision}
    monkeypatch.setattr(monitor, "_load", lambda path, env, name: loaded[name])


def test_no_drift_no_retraining(runs, monkeypatch):
    outcome(monkeypatch, False)
    assert monitor.main(["--auto-retrain"]) == 0
    assert runs == [("drift", None)]


def test_drift_without_auto_retrain_is_reported(runs, monkeypatch, capsys):
    outcome(monkeypatch, True)
    assert monitor.main([]) == monitor.DRIFT_NOT_RETRAINED
    assert runs == [("drift", None)] and "dataset drift: yes" in capsys.readouterr().out


def test_auto_retrain_runs_every_strategy_and_says_what_it_promoted(runs, monkeypatch, capsys):
    outcome(monkeypatch, True, PROMOTED)
    assert monitor.main(["--auto-retrain"]) == 0
    assert runs == [("drift", None), ("retraining", {"retraining": {"strategy": "all"}})]
    assert "promoted retrain-finetune" in capsys.readouterr().out


def test_prices_that_moved_without_the_inputs_trigger_retraining(runs, monkeypatch, capsys):
    """A regional price change: the inputs hardly drift, the labelled rows do."""
    outcome(monkeypatch, False, PROMOTED, performance_drift=True)
    assert monitor.main(["--auto-retrain"]) == 0
    assert [pipeline for pipeline, _ in runs] == ["drift", "retraining"]
    out = capsys.readouterr().out
    assert "dataset drift: no" in out and "performance drift: yes (RMSE 0.620 on 1000 labelled" in out


def test_auto_retrain_with_one_strategy(runs, monkeypatch):
    outcome(monkeypatch, True, PROMOTED)
    assert monitor.main(["--auto-retrain", "--strategy", "weighted"]) == 0
    assert runs[-1] == ("retraining", {"retraining": {"strategy": "weighted"}})


def test_when_no_challenger_passes_the_labels_needed_are_printed(runs, monkeypatch, capsys):
    outcome(monkeypatch, True, KEPT)
    assert monitor.main(["--auto-retrain"]) == monitor.DRIFT_NOT_RETRAINED
    out = capsys.readouterr().out
    assert "the champion stays" in out and "labels needed: labelled production rows from cluster 05" in out


def test_a_user_error_is_a_message(monkeypatch, capsys):
    monkeypatch.setattr(monitor, "bootstrap_project", lambda path: None)

    def empty(path, env, pipeline, params=None):
        raise MonitoringError("the prediction log is empty")

    monkeypatch.setattr(monitor, "_run", empty)
    assert monitor.main([]) == 1
    assert "MonitoringError: the prediction log is empty" in capsys.readouterr().err
