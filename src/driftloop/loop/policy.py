"""The retrain policy: whether a tick retrains, decided from the ``[loop]`` settings.

A model is retrained when the monitoring verdict found a signal the settings act on
(``degraded``, ``estimated_degraded``, ``drift``), at least ``min_new_labels`` labelled rows exist after the champion's
training data, and the last retrain is at least ``cooldown_days`` old. The decision is
plain data with its reason, recorded whether it retrains or not.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from driftloop.settings.loop import LoopSettings


@dataclass(frozen=True)
class RetrainDecision:
    """Whether this tick retrains, and why (or why not)."""

    retrain: bool
    reason: str


@dataclass(frozen=True)
class TickFacts:
    """What a tick knows when it asks the policy: the levels its verdict found, the labelled
    rows newer than the champion's training data, when the last retrain was, and its own time."""

    signals: frozenset[str]
    new_labels: int
    last_retrain: datetime | None
    now: datetime

    def decide(self, settings: LoopSettings) -> RetrainDecision:
        """The decision of the policy ``settings`` describe, on these facts."""
        return should_retrain(self.signals, self.new_labels, self.last_retrain, self.now, settings)


def should_retrain(
    signals: str | Collection[str],
    new_labels: int,
    last_retrain: datetime | None,
    now: datetime,
    settings: LoopSettings,
) -> RetrainDecision:
    """Apply the policy to one tick's facts: ``signals`` are the levels its verdict found (or one level)."""
    found = {signals} if isinstance(signals, str) else set(signals)
    acted = [level for level in settings.retrain_on if level in found]
    if not acted:
        shown = ", ".join(sorted(found)) or "ok"
        return RetrainDecision(False, f"verdict {shown}: nothing to act on (acts on {settings.retrain_on})")
    verdict = " and ".join(acted)
    if new_labels < settings.min_new_labels:
        return RetrainDecision(
            False, f"verdict {verdict}, but only {new_labels} new labelled rows (needs {settings.min_new_labels})"
        )
    if last_retrain is not None and now - last_retrain < timedelta(days=settings.cooldown_days):
        days = (now - last_retrain).total_seconds() / 86400
        return RetrainDecision(
            False,
            f"verdict {verdict}, but the last retrain was {days:.1f} days ago (cool-down {settings.cooldown_days:g})",
        )
    return RetrainDecision(True, f"verdict {verdict} with {new_labels} new labelled rows")
