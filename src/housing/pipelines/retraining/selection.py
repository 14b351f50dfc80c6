"""Choosing among the challengers: each goes through the gate, the best that passes (lowest
weighted score) is released and promoted; when none passes, the champion stays and the
decision says what labels would be needed. Pure functions."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from housing.pipelines.retraining.gate import MOVED, REGRESSED, TOO_FEW, judge_challenger

logger = logging.getLogger(__name__)


def _labels_needed(
    decisions: dict[str, dict[str, Any]], skipped: dict[str, str], holdout: pd.DataFrame, margin: float
) -> list[str]:
    """What labelled production rows would let a challenger pass, in plain words."""
    needed = list(skipped.values())
    if not any(
        d["challenger"]["production_rmse"] < d["champion"]["production_rmse"] - margin
        for d in decisions.values()
    ):
        needed.append(
            f"no strategy beat the champion by {margin} RMSE on the {len(holdout)} held-out production rows: "
            "the labels show "
            f"no change it misses, or too few to show one; about {len(holdout)} more labelled rows "
            "(POST /feedback) would tell"
        )
    regressed: dict[str, dict[str, Any]] = {}
    for decision in decisions.values():
        for row in decision["segments"]:
            if row["status"] == REGRESSED:
                regressed.setdefault(row["segment"], row)
    for row in regressed.values():
        needed.append(
            f"labelled production rows from {row['segment']} (around {row['latitude']}, {row['longitude']}; "
            f"{row['n_production']} so far): retraining got worse there on unseen original rows, and labels "
            "from there would show whether prices moved"
        )
    return needed


def judge_challengers(
    candidates: dict[str, Any],
    champion: dict | None,
    test: pd.DataFrame,
    production_train: pd.DataFrame,
    holdout: pd.DataFrame,
    gate: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, dict[str, float]], str]:
    """Every challenger through the gate; the release is the best one that passes (by
    weighted score: ``production_weight`` x production + ``test_weight`` x test RMSE), or,
    when none passes, the best one unpromoted (registered, never aliased).

    Returns the release, the decision (the chosen challenger's, plus every strategy's
    verdict and segment table), MLflow metrics and a Markdown report."""
    judged = {
        c["strategy"]: judge_challenger(c, champion, test, holdout, gate, production_train)
        for c in candidates["challengers"]
    }
    passing = [s for s, (release, _, _) in judged.items() if release["promote"]]
    pool = passing or list(judged)
    chosen = min(pool, key=lambda s: judged[s][1]["challenger"]["score"])
    release, decision, metrics = judged[chosen]
    decisions = {s: d for s, (_, d, _) in judged.items()}
    if passing:
        summary = (
            f"promoted {decision['candidate']}: of {len(judged)} strategies, {len(passing)} passed the gate "
            f"({', '.join(passing)}), and it has the lowest weighted score. {decision['reason']}"
        )
        needed: list[str] = []
    else:
        summary = (
            f"the champion stays (version {decision['champion']['version']}): none of "
            f"{', '.join(judged)} passed the gate. "
            + " | ".join(f"{s}: {d['reason']}" for s, d in decisions.items())
        )
        needed = _labels_needed(decisions, candidates["skipped"], holdout, gate["min_improvement"])
    logger.info("Retraining: %s", summary)
    decision = {
        **decision,
        "summary": summary,
        "strategies": {s: {k: v for k, v in d.items() if k != "champion"} for s, d in decisions.items()},
        "skipped": candidates["skipped"],
        "labels_needed": needed,
    }
    for strategy, (_, _, strategy_metrics) in judged.items():
        metrics = {**metrics, **{f"{strategy}.{k}": v for k, v in strategy_metrics.items()}}
    return release, decision, metrics, retraining_report(decision, gate)


def _f(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def retraining_report(decision: dict[str, Any], gate: dict[str, Any]) -> str:
    """The decision as Markdown: the verdict, then each strategy's segment table."""
    champion = decision["champion"]
    lines = [
        "# Retraining decision",
        "",
        decision["summary"],
        "",
        "| strategy | production RMSE (champion → challenger) | test RMSE (champion → challenger) "
        "| worst untouched segment | fit time | promoted |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for strategy, d in decision["strategies"].items():
        judged = [r for r in d["segments"] if r["status"] not in (MOVED, TOO_FEW)]
        worst = max(judged, key=lambda r: r["delta"], default=None)
        worst_text = f"{worst['segment']} {worst['delta']:+.3f}" if worst else "-"
        lines.append(
            f"| {strategy} | {champion['production_rmse']:.3f} → {d['challenger']['production_rmse']:.3f} "
            f"| {champion['test_rmse']:.3f} → {d['challenger']['test_rmse']:.3f} "
            f"| {worst_text} "
            f"| {d['fit_seconds']:.1f} s | {'yes' if d['promoted'] else 'no'} |"
        )
    for strategy, reason in decision["skipped"].items():
        lines.append(f"| {strategy} | skipped: {reason} | | | | no |")
    if decision["labels_needed"]:
        lines += ["", "## Labels needed", "", *(f"- {item}" for item in decision["labels_needed"])]
    tolerance = gate["segments"]["tolerance"]
    for strategy, d in decision["strategies"].items():
        lines += [
            "",
            f"## {strategy}: RMSE on unseen original rows per segment (tolerance +{tolerance})",
            "",
            "| segment | lat, lon | unseen rows | production rows | production shift | champion | challenger | change | status |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in d["segments"]:
            lines.append(
                f"| {r['segment']} | {r['latitude']}, {r['longitude']} | {r['n_unseen']} | {r['n_production']} "
                f"| {_f(r['production_shift'])} | {_f(r['champion_rmse'])} | {_f(r['challenger_rmse'])} "
                f"| {_f(r['delta'])} | {r['status']} |"
            )
    return "\n".join(lines) + "\n"
