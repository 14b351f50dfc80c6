"""Which strategies pass the per-segment gate, scenario by scenario, from the same champion
(strategy ``all``, as ``housing monitor --auto-retrain`` runs it):

- ``regional``: prices +30% in the Los Angeles basin only. Only the clusters there count as
  moved; ``finetune`` (small trees, rehearsal of original rows) fixes production without
  touching the rest of the state and is promoted; the full refits move untouched clusters
  by more than the tolerance and are refused.
- ``inflation``: prices rise statewide; ``finetune`` passes, the refits do not.
- ``income_shift``: richer districts ask more often, prices unchanged: nothing moved, and no
  strategy is promoted (none is better on the held-out production rows by the margin).

Whatever passes, no promoted model regresses an untouched segment beyond the tolerance.
"""

import json

import numpy as np
import pytest

from housing.pipelines.drift.nodes import MonitoringError
from housing.pipelines.retraining.gate import MOVED, TOO_FEW, judge_challenger, segments_of
from housing.pipelines.retraining.nodes import labelled_production, retrain_candidates
from housing.pipelines.retraining.selection import judge_challengers
from housing.simulation.scenarios import make_scenario
from tests.pipelines.conftest import as_logged

WINDOW = {"last_n": None, "since": None, "until": None, "min_rows": 100}
EXPECTED = {  # scenario: (labelled rows, strategies that pass the gate)
    "regional": (1_000, {"finetune"}),
    "inflation": (1_000, {"finetune"}),
    "income_shift": (1_000, set()),
}


@pytest.fixture(scope="module")
def judged(current_champion, split, params):
    """Every scenario through retraining (all strategies) and the gate, once."""
    train, test = split
    settings = {**params["retraining"], "strategy": "all"}
    out = {}
    for scenario, (n, _) in EXPECTED.items():
        rows = make_scenario(test, scenario, n, params["simulation"]["scenarios"][scenario])
        production, holdout = labelled_production(as_logged(rows, current_champion["model"]), WINDOW, 0.3)
        candidates = retrain_candidates(current_champion, train, production, settings)
        out[scenario] = judge_challengers(
            candidates, current_champion, test, production, holdout, settings["gate"]
        )
    return out


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_which_strategies_pass_the_gate(scenario, judged, params):
    release, decision, metrics, report = judged[scenario]
    passed = {s for s, d in decision["strategies"].items() if d["promoted"]}
    assert passed == EXPECTED[scenario][1], {s: d["reason"] for s, d in decision["strategies"].items()}
    assert release["promote"] is bool(passed) and decision["promoted"] is bool(passed)
    if passed:
        assert decision["candidate"] == f"retrain-{min(passed)}" and decision["summary"].startswith(
            "promoted"
        )
        assert decision["labels_needed"] == []
    else:
        assert decision["summary"].startswith("the champion stays") and decision["labels_needed"]
        assert "## Labels needed" in report
    json.dumps(decision, allow_nan=False)
    for strategy in decision["strategies"]:
        assert f"{strategy}.promoted" in metrics and f"## {strategy}: RMSE on unseen original rows" in report


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_no_promoted_model_regresses_an_untouched_segment(scenario, judged, params):
    tolerance = params["retraining"]["gate"]["segments"]["tolerance"]
    _, decision, _, _ = judged[scenario]
    for strategy, d in decision["strategies"].items():
        untouched = [r for r in d["segments"] if r["status"] not in (MOVED, TOO_FEW)]
        assert untouched, strategy
        worst = max(r["delta"] for r in untouched)
        if d["promoted"]:
            assert worst <= tolerance, (strategy, worst)
        else:  # a refusal always has its reason
            assert "not promoted" in d["reason"]


def test_regional_moves_only_the_clusters_of_the_region(judged, params):
    box = params["simulation"]["scenarios"]["regional"]["box"]
    _, decision, _, _ = judged["regional"]
    moved = [r for r in decision["segments"] if r["status"] == MOVED]
    assert moved
    for r in moved:  # cluster centres in or next to the box
        assert box["latitude"][0] - 0.5 <= r["latitude"] <= box["latitude"][1] + 0.5, r
        assert box["longitude"][0] - 0.5 <= r["longitude"] <= box["longitude"][1] + 0.5, r


def test_an_input_shift_moves_no_segment(judged):
    _, decision, _, _ = judged["income_shift"]
    assert not [r for r in decision["segments"] if r["status"] == MOVED]
    # the champion stays, and the decision says why in terms of labels
    assert any(
        item.startswith("no strategy beat the champion by 0.01 RMSE") for item in decision["labels_needed"]
    )


def test_a_segment_with_too_few_unseen_rows_is_reported_not_judged(judged, params):
    need = params["retraining"]["gate"]["segments"]["min_rows"]
    _, decision, _, report = judged["regional"]
    few = [r for r in decision["segments"] if r["status"] == TOO_FEW]
    assert few and all(r["n_unseen"] < need for r in few)
    assert (
        f"not judged, fewer than {need} unseen rows: {few[0]['segment']} ({few[0]['n_unseen']})"
        in (decision["reason"])
    )
    assert f"| {few[0]['segment']} |" in report


def test_segments_by_latitude_for_a_model_without_clusters(champion, split):
    settings = {"by": "latitude", "latitude_bands": [34.0, 36.0, 38.0]}
    rows = split[1].head(200)
    labels = segments_of(champion, rows, settings)
    assert set(labels) <= {"lat < 34", "lat 34-36", "lat 36-38", "lat >= 38"}
    assert (labels[rows["Latitude"].to_numpy() < 34.0] == "lat < 34").all()


def test_too_few_labels_for_every_strategy_is_a_message(current_champion, split, params):
    rows = make_scenario(split[1], "regional", 140, params["simulation"]["scenarios"]["regional"])
    production, _ = labelled_production(as_logged(rows, current_champion["model"]), WINDOW, 0.3)
    settings = {**params["retraining"], "strategy": "all"}
    with pytest.raises(
        MonitoringError,
        match=r"no strategy has enough labelled rows: mixed needs at least 50 labelled production rows "
        r"to train on and has 40: send about 14 more",
    ):
        retrain_candidates(current_champion, split[0], production.head(40), settings)


def test_all_skips_a_strategy_short_of_labels_and_says_how_many_more(current_champion, split, params):
    rows = make_scenario(split[1], "regional", 200, params["simulation"]["scenarios"]["regional"])
    production, holdout = labelled_production(as_logged(rows, current_champion["model"]), WINDOW, 0.3)
    settings = {**params["retraining"], "strategy": "all"}
    candidates = retrain_candidates(current_champion, split[0], production.head(80), settings)
    assert [c["strategy"] for c in candidates["challengers"]] == ["mixed", "weighted"]
    assert (
        "finetune needs at least 100 labelled production rows to train on and has 80"
        in (candidates["skipped"]["finetune"])
    )
    _, decision, _, report = judge_challengers(
        candidates, current_champion, split[1], production.head(80), holdout, settings["gate"]
    )
    assert decision["skipped"] == candidates["skipped"] and "| finetune | skipped: finetune needs" in report
    # judged alone, the chosen challenger's own table matches the one in the decision
    _, alone, _ = judge_challenger(
        candidates["challengers"][0],
        current_champion,
        split[1],
        holdout,
        settings["gate"],
        production.head(80),
    )
    assert alone["segments"] == decision["strategies"]["mixed"]["segments"]
    assert np.isfinite([r["champion_rmse"] for r in alone["segments"] if r["n_unseen"]]).all()
    assert list(decision["strategies"]) == [c["strategy"] for c in candidates["challengers"]]
