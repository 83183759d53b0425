"""Replay a history through the loop, day by day, and compare it with a static model and with
retraining every day: a backtest of the MLOps policy before it runs in production.

``feed`` cuts the history into days and writes what the inbox receives (inputs the same day,
labels after a delay); ``run`` ticks the loop through the days in a fresh project and can
resume; ``strategies`` scores the three strategies on the same days; ``report`` draws them.
``policies`` sets several retrain policies side by side, which ``branches`` replays together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from driftloop.data.clock import day_span
from driftloop.errors import ReplayError
from driftloop.ingest import ingest
from driftloop.project import Project
from driftloop.replay.branches import PolicyReplay
from driftloop.replay.estimates import agreement
from driftloop.replay.feed import History, parse_delay, read_history
from driftloop.replay.policies import Policy, PolicyFront, PolicyOutcome, choose, relative_error
from driftloop.replay.run import DayRecord, LoopRun, plan_days, run_loop
from driftloop.replay.strategies import STRATEGIES, StrategyResult, compare_strategies

SUMMARY_FILE = "replay.json"
POLICIES_SUMMARY_FILE = "policies.json"


@dataclass
class ReplayResult:
    """A finished replay: the loop's diary, the strategies' scores and where the report is."""

    run: LoopRun
    strategies: list[StrategyResult]
    metrics: dict[str, str]  # each target's decisive metric
    report: tuple[Path, Path]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the per-day metrics included)."""
        return {
            "history": [str(self.run.history_days[0]), str(self.run.history_days[-1])],
            "replayed": [str(self.run.replay_days[0]), str(self.run.replay_days[-1])],
            "days": len(self.run.replay_days),
            "label_delay_hours": self.run.label_delay.total_seconds() / 3600,
            "metrics": self.metrics,
            "strategies": {
                s.name: {
                    "overall": s.overall,
                    "trainings": s.trainings,
                    "training_seconds": round(s.training_seconds, 2),
                    "retrains": s.retrains,
                    "promotions": s.promotions,
                    "rejections": s.rejections,
                    "drift_days": s.drift_days,
                    "notes": s.notes,
                    "per_day": s.per_day.with_columns(s.per_day.get_column("day").cast(str)).to_dicts(),
                }
                for s in self.strategies
            },
            "loop_days": [r.to_dict() for r in self.run.records],
            "estimates": [a.to_dict() for a in agreement(self.run.records)],
            "report": [str(p) for p in self.report],
        }


def replay(
    project: Project,
    data: str | Path | Any,
    *,
    start: date | None = None,
    days: int | None = None,
    label_delay: timedelta | str = timedelta(days=1),
    daily_baseline: bool = True,
    report_dir: Path | None = None,
    on_day: Callable[[DayRecord], None] | None = None,
    on_baseline_day: Callable[[date], None] | None = None,
) -> ReplayResult:
    """Replay ``data`` (files, a folder or a frame) through the loop of a fresh ``project``.

    The days before ``start`` (default: the first quarter of the days, at least a week) train
    the first model; ``days`` days from ``start`` are replayed (default: all). A replay that
    was stopped goes on where it was when called again with the same arguments.
    """
    # Imported first: a missing plotting library is said before the days are replayed, not after.
    import driftloop.replay.report  # noqa: F401

    history, before, replayed, delay = _plan(project, data, start, days, label_delay)
    run = run_loop(project, history, before, replayed, delay, on_day=on_day)
    return finish_replay(
        project, history, run, daily_baseline=daily_baseline, report_dir=report_dir, on_baseline_day=on_baseline_day
    )


def _plan(
    project: Project, data: str | Path | Any, start: date | None, days: int | None, label_delay: timedelta | str
) -> tuple[History, list[date], list[date], timedelta]:
    """The history read, its days split into those before ``start`` and those replayed, and the label delay."""
    delay = parse_delay(label_delay) if isinstance(label_delay, str) else label_delay
    history = read_history(data, project.contract)
    before, replayed = plan_days(history.days, start, days)
    return history, before, replayed, delay


def finish_replay(
    project: Project,
    history: History,
    run: LoopRun,
    *,
    daily_baseline: bool = True,
    report_dir: Path | None = None,
    on_baseline_day: Callable[[date], None] | None = None,
) -> ReplayResult:
    """After the last tick of ``run`` in ``project``: the last labels in, the strategies scored,
    the report and the summary written."""
    from driftloop.replay.report import write_replay_report

    # The labels of the last day(s) arrive after the replay's last tick; scoring those days needs them.
    end = day_span(run.replay_days[-1], project.contract.timezone)[1]
    late = history.labels_file(end - run.label_delay, end, project.inbox, "after-replay")
    if late is not None:
        ingest(project, late, on_refused="continue", labels=True)
    results = compare_strategies(project, run, daily=daily_baseline, on_daily=on_baseline_day)
    metrics = project.decisive_metrics
    folder = report_dir or project.root / "reports"
    pages = write_replay_report(results, run, metrics, folder)
    result = ReplayResult(run, results, metrics, pages)
    (folder / SUMMARY_FILE).write_text(json.dumps(result.to_dict(), indent=1, default=str), encoding="utf-8")
    return result


def replay_policies(
    project: Project,
    data: str | Path | Any,
    policies: list[Policy],
    *,
    start: date | None = None,
    days: int | None = None,
    label_delay: timedelta | str = timedelta(days=1),
    budget: int | None = None,
    daily_baseline: bool = True,
    on_day: Callable[[date, int], None] | None = None,
) -> PolicyFront:
    """Replay ``data`` under each of ``policies`` in ``project``'s ``policies`` folder, sharing a
    project among policies while they act alike (:mod:`driftloop.replay.branches`), and choose
    among them (:mod:`driftloop.replay.policies`). ``on_day`` hears of each replayed day and how
    many projects the policies needed by then. The daily baseline, the same for all, runs once."""
    import driftloop.replay.report  # noqa: F401  (a missing plotting library is said first)

    history, before, replayed, delay = _plan(project, data, start, days, label_delay)
    replay_of = PolicyReplay(project, history, before, replayed, delay, policies)
    runs = replay_of.run(on_day=on_day)
    outcomes: dict[str, PolicyOutcome] = {
        name: PolicyOutcome(policy, None, float("nan"), failed=runs.failed[name])
        for name, policy in replay_of.policies.items()
        if name in runs.failed
    }
    static, daily, metrics = None, None, {}
    for branch in runs.branches:
        result = finish_replay(
            replay_of.project_of(branch), history, runs.runs[branch.policies[0]],
            daily_baseline=daily_baseline and daily is None,
        )  # fmt: skip
        by_name = {s.name: s for s in result.strategies}
        # One yardstick for all: the first static model (a policy's window can change its first model).
        static, daily, metrics = static or by_name["static"], daily or by_name.get("daily"), result.metrics
        loop = by_name["driftloop"]
        error = relative_error(loop, static, metrics)
        for name in branch.policies:
            outcomes[name] = PolicyOutcome(replay_of.policies[name], loop, error, replayed_in=branch.folder)
    if static is None:
        reasons = "; ".join(f"{name}: {why}" for name, why in runs.failed.items()) or "the policies file lists none"
        raise ReplayError(f"no policy could be replayed: {reasons}")
    ordered = [outcomes[p.name] for p in policies]
    front = choose(ordered, static, daily, metrics, days=len(replayed), budget=budget)
    front = replace(front, projects=len(runs.branches), ticks=runs.ticks)
    folder = project.root / "reports"
    from driftloop.replay.report import write_policies_report

    front = replace(front, report=write_policies_report(front, folder))
    (folder / POLICIES_SUMMARY_FILE).write_text(json.dumps(front.to_dict(), indent=1, default=str), encoding="utf-8")
    return front


__all__ = ["STRATEGIES", "DayRecord", "Policy", "PolicyFront", "ReplayResult", "StrategyResult", "replay",
           "replay_policies"]  # fmt: skip
