"""housing.monitor: drift, then retraining only when asked and only when it drifted."""

import pytest

from housing import monitor
from housing.pipelines.monitoring.nodes import MonitoringError


@pytest.fixture
def runs(monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr(monitor, "bootstrap_project", lambda path: None)
    monkeypatch.setattr(monitor, "_run", lambda path, env, pipeline: ran.append(pipeline))
    return ran


def drifted(monkeypatch, value: bool) -> None:
    monkeypatch.setattr(
        monitor, "_latest_summary", lambda path, env: {"dataset_drift": value, "drift_share": 0.4}
    )


def test_no_drift_no_retraining(runs, monkeypatch):
    drifted(monkeypatch, False)
    assert monitor.main(["--auto-retrain"]) == 0
    assert runs == ["drift"]


def test_drift_without_auto_retrain_is_reported(runs, monkeypatch, capsys):
    drifted(monkeypatch, True)
    assert monitor.main([]) == monitor.DRIFT_NOT_RETRAINED
    assert runs == ["drift"] and "dataset drift: yes" in capsys.readouterr().out


def test_drift_with_auto_retrain_retrains(runs, monkeypatch):
    drifted(monkeypatch, True)
    assert monitor.main(["--auto-retrain"]) == 0
    assert runs == ["drift", "retraining"]


def test_a_user_error_is_a_message(monkeypatch, capsys):
    monkeypatch.setattr(monitor, "bootstrap_project", lambda path: None)

    def empty(path, env, pipeline):
        raise MonitoringError("the prediction log is empty")

    monkeypatch.setattr(monitor, "_run", empty)
    assert monitor.main([]) == 1
    assert "MonitoringError: the prediction log is empty" in capsys.readouterr().err
