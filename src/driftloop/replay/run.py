"""Drive the loop through a history, one tick a day, in a fresh project.

The day before the replay's start gets one tick over the whole history (which trains and
promotes the first model); each replayed day then gets its inputs, the labels that have
arrived by its end, and one tick. What each tick did is kept as a :class:`DayRecord`, and a
small state file after each tick lets a replay that was stopped or killed go on where it was:
ticks are idempotent, so the day that was cut short is simply run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from driftloop.data.clock import day_span, days_span
from driftloop.errors import ReplayError
from driftloop.lake import Table
from driftloop.loop import TRAINING_STEP, tick
from driftloop.loop.steps import RetrainPolicy
from driftloop.monitor.verdict import VerdictLevel
from driftloop.monitor.window import WindowReport
from driftloop.project import Project
from driftloop.registry import DecisionKind, Registry
from driftloop.replay.feed import History

STATE_FILE = "replay-state.json"
# Share of the history's days the first model learns from when no start day is given.
DEFAULT_HISTORY_SHARE = 0.25
MIN_HISTORY_DAYS = 7


@dataclass(frozen=True)
class DayDecision:
    """One decision a replayed day's tick took about a version."""

    version: str
    kind: DecisionKind

    def __str__(self) -> str:
        return f"v{self.version} {self.kind}"


@dataclass
class DayRecord:
    """One replayed day: who scored it, what monitoring said, what the policy did."""

    day: date
    scored_by: str | None
    verdict: VerdictLevel | None
    reasons: list[str]
    retrained: bool
    retrain_reason: str
    trained_version: str | None
    decisions: list[DayDecision]
    champion_after: str | None
    seconds: float
    training_seconds: float
    steps: dict[str, float] = field(default_factory=dict)  # seconds in each step of the tick
    signals: list[str] = field(default_factory=list)  # every level the day's verdict found
    # Per target, on the tick's monitored window: the decisive metric estimated on every row
    # ({metric, value, low, high, rows}) and realised on the rows labelled by then ({metric, value, rows}).
    estimated: dict[str, dict[str, Any]] = field(default_factory=dict)
    realised: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def promoted(self) -> bool:
        """Whether the day's tick crowned a new champion."""
        return any(d.kind is DecisionKind.CHAMPION for d in self.decisions)

    @property
    def rejected(self) -> bool:
        """Whether the day's tick turned a version down, at qa or against the champion."""
        return any(d.kind in (DecisionKind.REJECTED, DecisionKind.REJECTED_AT_QA) for d in self.decisions)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["day"] = str(self.day)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DayRecord:
        decisions = [DayDecision(d["version"], DecisionKind(d["kind"])) for d in data["decisions"]]
        verdict = VerdictLevel(data["verdict"]) if data["verdict"] is not None else None
        return cls(**{**data, "day": date.fromisoformat(data["day"]), "verdict": verdict, "decisions": decisions})


@dataclass
class LoopRun:
    """The loop's side of a replay: its plan and what every tick did."""

    history_days: list[date]
    replay_days: list[date]
    label_delay: timedelta
    first_version: str
    bootstrap_training_seconds: float
    records: list[DayRecord] = field(default_factory=list)

    def step_seconds(self) -> dict[str, list[float]]:
        """Seconds each step of the replayed ticks took, a list per step in the order they run
        (a step a tick skipped counts 0 s for it)."""
        names = list(dict.fromkeys(name for r in self.records for name in r.steps))
        return {name: [r.steps.get(name, 0.0) for r in self.records] for name in names}

    def span(self, zone_name: str) -> tuple[datetime, datetime]:
        """The replayed days as ``[start, end)`` instants, days of the zone."""
        return days_span(self.replay_days[0], self.replay_days[-1], zone_name)


def plan_days(days: list[date], start: date | None, count: int | None) -> tuple[list[date], list[date]]:
    """Split the history's days into those the first model learns from and those replayed."""
    if len(days) < 2:
        raise ReplayError(f"the data covers {len(days)} day(s); a replay needs history before the days it replays")
    if start is None:
        start = (
            days[max(MIN_HISTORY_DAYS, int(len(days) * DEFAULT_HISTORY_SHARE))]
            if len(days) > MIN_HISTORY_DAYS
            else days[1]
        )
    before = [d for d in days if d < start]
    replayed = [d for d in days if d >= start][: count if count is not None else None]
    if not before:
        raise ReplayError(f"--start {start} leaves no history before it to train the first model (data from {days[0]})")
    if not replayed:
        raise ReplayError(f"--start {start} is after the last day of the data ({days[-1]}); nothing to replay")
    return before, replayed


def replay_settings(
    history: History, before: list[date], replayed: list[date], label_delay: timedelta
) -> dict[str, Any]:
    """What identifies a replay, so that a stopped one goes on only with the same history and plan."""
    return {
        "first_day": str(before[0]),
        "start": str(replayed[0]),
        "days": len(replayed),
        "label_delay_seconds": label_delay.total_seconds(),
        "rows": history.rows.height,
    }


def run_loop(
    project: Project,
    history: History,
    before: list[date],
    replayed: list[date],
    label_delay: timedelta,
    *,
    on_day: Callable[[DayRecord], None] | None = None,
) -> LoopRun:
    """Tick through ``replayed`` after one tick over the ``before`` days (resuming a stopped replay)."""
    settings = replay_settings(history, before, replayed, label_delay)
    state = _read_state(project, settings)
    if state is None:
        state = bootstrap(project, history, before, settings)
        _write_state(project, state)
    run = LoopRun(before, replayed, label_delay, state["first_version"], state["bootstrap_training_seconds"])
    run.records = [DayRecord.from_dict(r) for r in state["records"]]
    done = {r.day for r in run.records}
    for day in replayed:
        if day in done:
            continue
        record = replay_day(project, history, day, label_delay)
        run.records.append(record)
        state["records"].append(record.to_dict())
        _write_state(project, state)
        if on_day:
            on_day(record)
    return run


def bootstrap(project: Project, history: History, before: list[date], settings: dict[str, Any]) -> dict[str, Any]:
    """One tick over the ``before`` days in a fresh ``project``, which trains and crowns the first
    model; the replay's state to start from (``settings`` identify the replay)."""
    registry = Registry(project)
    if project.lake.exists(Table.RAW) or registry.versions():
        raise ReplayError(
            f"{project.root} already holds data or models; a replay needs a fresh project of its own "
            "(its lake and registry become the replay's): `driftloop init NEW --data ...`, then replay into NEW"
        )
    history.history_file(before[-1] + timedelta(days=1), project.inbox)
    timer = StepTimer()
    report = tick(project, before[-1], on_step=timer.step)
    timer.stop()
    report.wait_for_alerts(project.settings.loop.webhook_timeout_seconds)
    champion = registry.champion()
    if champion is None:
        why = "; ".join(d.reason for d in report.decisions) or "; ".join(report.notes) or "no model was trained"
        raise ReplayError(
            f"the first model, trained on {before[0]} to {before[-1]}, did not become champion: {why}. "
            "Adjust [train] or [promote] in driftloop.toml (or give more history with --start), then replay again"
        )
    return {
        "settings": settings,
        "first_version": champion,
        "bootstrap_training_seconds": timer.seconds.get(TRAINING_STEP, 0.0),
        "records": [],
    }


def replay_day(
    project: Project, history: History, day: date, label_delay: timedelta, *, policy: RetrainPolicy | None = None
) -> DayRecord:
    """Give ``project``'s inbox ``day``'s inputs and the labels arrived by its end, and tick it
    (``policy`` deciding whether it retrains, default the project's)."""
    end = day_span(day, project.contract.timezone)[1]
    history.data_file(day, project.inbox)
    # Labels of every row whose delay has passed by the end of the day; earlier days' files
    # are already in the inbox, so this day's file holds only what newly arrived.
    history.labels_file(end - label_delay - timedelta(days=1), end - label_delay, project.inbox, str(day))
    registry = Registry(project)
    timer = StepTimer()
    report = tick(project, day, on_step=timer.step, policy=policy)
    timer.stop()
    report.wait_for_alerts(project.settings.loop.webhook_timeout_seconds)
    monitored = report.monitored
    verdict = monitored.verdict if monitored else None
    return DayRecord(
        day=day,
        scored_by=report.predicted.model_version if report.predicted else None,
        verdict=verdict.level if verdict else None,
        reasons=verdict.reasons if verdict else report.notes,
        retrained=report.trained_version is not None,
        retrain_reason=report.retrain.reason if report.retrain else "; ".join(report.notes),
        trained_version=report.trained_version,
        decisions=[DayDecision(d.version, d.kind) for d in report.decisions],
        champion_after=registry.champion(),
        seconds=timer.total,
        training_seconds=timer.seconds.get(TRAINING_STEP, 0.0),
        steps={name: round(seconds, 4) for name, seconds in timer.seconds.items()},
        signals=sorted(verdict.signals) if verdict else [],
        estimated=_estimated(monitored),
        realised=_realised(monitored),
    )


def _estimated(monitored: WindowReport | None) -> dict[str, dict[str, Any]]:
    """Each target's estimated decisive metric on the tick's window, with its interval."""
    estimates = monitored.estimates if monitored else []
    return {e.target: {"metric": e.metric, **asdict(e.estimate), "rows": e.rows} for e in estimates}


def _realised(monitored: WindowReport | None) -> dict[str, dict[str, Any]]:
    """Each target's decisive metric on the window's rows labelled by the tick."""
    performance = monitored.performance if monitored else []
    return {p.target: {"metric": p.metric, "value": p.metrics[p.metric], "rows": p.rows} for p in performance}


class StepTimer:
    """Seconds spent in each named step of a tick (a step lasts until the next one starts)."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.current: str | None = None
        self.seconds: dict[str, float] = {}
        self.total = 0.0

    def step(self, name: str) -> None:
        now = time.perf_counter()
        if self.current is not None:
            self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self.last
        self.current, self.last = name, now

    def stop(self) -> None:
        self.step("done")
        self.total = self.last - self.started


def _read_state(project: Project, settings: dict[str, Any]) -> dict[str, Any] | None:
    path = project.root / STATE_FILE
    if not path.is_file():
        return None
    state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if state.get("settings") != settings:
        raise ReplayError(
            f"{project.root} holds a replay with other settings ({state.get('settings')}); a replay goes on only "
            "with the same data, start, days and label delay. Replay into a fresh project to change them"
        )
    return state


def _write_state(project: Project, state: dict[str, Any]) -> None:
    write_state(project.root / STATE_FILE, state)


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write a replay's state file whole or not at all (a kill mid-write leaves the last one)."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(state, indent=1), encoding="utf-8")
    partial.replace(path)
