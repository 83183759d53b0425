"""What the loop's ticks share, whatever the project's kind: the tick's report, the steps after
a retrain (the gates, and the promotions an earlier tick left waiting), and alerts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from driftloop.alerts import alert
from driftloop.data.clock import window_start
from driftloop.feature_table import FeatureRun
from driftloop.ingest import IngestSummary
from driftloop.lake import Compaction
from driftloop.loop.policy import RetrainDecision, TickFacts
from driftloop.monitor.window import WindowReport
from driftloop.predict import PredictRun
from driftloop.project import Project
from driftloop.registry import Decision, DecisionKind, Registry
from driftloop.registry.decisions import DECISION_TAG

LABELS_FOLDER = "labels"
# Tag on versions the loop trained (its value: the tick's day), so an interrupted tick's
# version is still judged by the next one.
LOOP_TAG = "trained_by_loop"
# The step of a tick that trains a model (a replay times it); "promotion gates" follows it.
TRAINING_STEP = "training"
GATES_STEP = "promotion gates"


@dataclass
class TickReport:
    """What one tick did, step by step."""

    day: date
    ingested: list[IngestSummary] = field(default_factory=list)
    labels: list[IngestSummary] = field(default_factory=list)
    features: FeatureRun | None = None
    compacted: list[Compaction] = field(default_factory=list)
    predicted: PredictRun | None = None
    monitored: WindowReport | None = None
    retrain: RetrainDecision | None = None
    trained_version: str | None = None
    decisions: list[Decision] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    alerts: list[threading.Thread] = field(default_factory=list)

    def wait_for_alerts(self, seconds: float) -> None:
        """Give background webhook posts up to ``seconds`` in all to finish."""
        deadline = datetime.now() + timedelta(seconds=seconds)
        for sender in self.alerts:
            sender.join(max(0.0, (deadline - datetime.now()).total_seconds()))


# Asked once per tick, after monitoring, whether to retrain (default: the project's ``[loop]``
# settings); a replay of several policies asks each of them here.
RetrainPolicy = Callable[[TickFacts], RetrainDecision]


def training_since(project: Project, day: date) -> datetime | None:
    """Where the training window of a retrain at the end of ``day`` starts: the last
    ``window_days`` days with a sliding window, everything (None) with an expanding one."""
    settings = project.settings.loop
    if settings.training_window == "expanding":
        return None
    return window_start(day, settings.window_days, project.contract.timezone)


def ask_policy(
    project: Project,
    report: TickReport,
    registry: Registry,
    new_labels: int,
    at: datetime,
    policy: RetrainPolicy | None,
) -> RetrainDecision:
    """Alert on the monitored window's retrain signal, then ask ``policy`` (default: the project's
    ``[loop]``) whether to retrain, given ``new_labels`` newer than the champion's data; the
    decision goes into ``report``."""
    assert report.monitored is not None  # the policy reads a monitored window's verdict
    verdict = report.monitored.verdict
    if verdict.retrain_signal:
        raise_alert(project, report, verdict.level, "; ".join(verdict.reasons), {"window_end": at})
    facts = TickFacts(frozenset(verdict.signals), new_labels, last_retrain(registry), at)
    report.retrain = policy(facts) if policy is not None else facts.decide(project.settings.loop)
    return report.retrain


def after_retrain(
    registry: Registry,
    report: TickReport,
    version: str,
    decision: RetrainDecision,
    at: datetime,
    step: Callable[[str], None],
) -> None:
    """What follows a retrain that registered ``version``: it is tagged as the loop's, the retrain
    is recorded with the policy's reason, and the version goes to the gates."""
    report.trained_version = version
    registry.tag(version, {LOOP_TAG: str(at.date())})
    registry.record_event(DecisionKind.RETRAIN, version, decision.reason, at=at)
    promote_version(registry, report, version, at, step)


def promote_version(
    registry: Registry, report: TickReport, version: str, at: datetime, step: Callable[[str], None]
) -> None:
    step(GATES_STEP)
    decisions = registry.promote(version, at=at)  # none while it waits for the days it is judged on
    report.decisions += decisions
    if decisions:
        final = decisions[-1]
        raise_alert(registry.project, report, final.kind, f"version {version}: {final.reason}", {"version": version})


def resume_promotions(registry: Registry, report: TickReport, at: datetime, step: Callable[[str], None]) -> None:
    """Judge the versions the loop trained that wait in qa, and promote those it did not get to
    judge (a tick killed in between).

    A version's latest decision is tagged on it: the retrain that made it until the gates judge
    it (one rejected at qa stays in dev, so the stage alone cannot tell), then its promotion to
    qa until it is judged against the champion (with ``[promote] judge_days``, once the days
    after its training data are labelled). Oldest first, each against the champion the one
    before left.
    """
    for pending in reversed(registry.versions()):
        if LOOP_TAG not in pending.tags:
            continue
        latest = pending.tags.get(DECISION_TAG, DecisionKind.RETRAIN)
        if latest == DecisionKind.RETRAIN:
            report.notes.append(f"resumed the promotion of version {pending.version}, trained by an interrupted tick")
        elif latest != DecisionKind.PROMOTED_TO_QA:
            continue
        promote_version(registry, report, pending.version, at, step)


def last_retrain(registry: Registry) -> datetime | None:
    events = registry.events().filter(pl.col("kind") == DecisionKind.RETRAIN)
    return None if events.is_empty() else events.get_column("at")[-1].replace(tzinfo=None)


def raise_alert(project: Project, report: TickReport, kind: str, message: str, details: dict[str, object]) -> None:
    settings = project.settings.loop
    sender = alert(
        kind,
        message,
        {**details, "project": project.settings.project.name, "day": str(report.day)},
        url=settings.webhook_url,
        attempts=settings.webhook_attempts,
        timeout=settings.webhook_timeout_seconds,
    )
    if sender is not None:
        report.alerts.append(sender)
