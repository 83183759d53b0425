"""The retrain policy: whether a tick retrains, decided from the ``[loop]`` settings.

A model is retrained when the monitoring verdict is one the settings act on (``degraded``
and/or ``drift``), at least ``min_new_labels`` labelled rows exist after the champion's
training data, and the last retrain is at least ``cooldown_days`` old. The decision is
plain data with its reason, recorded whether it retrains or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from driftloop.settings.loop import LoopSettings


@dataclass(frozen=True)
class RetrainDecision:
    """Whether this tick retrains, and why (or why not)."""

    retrain: bool
    reason: str


def should_retrain(
    verdict: str, new_labels: int, last_retrain: datetime | None, now: datetime, settings: LoopSettings
) -> RetrainDecision:
    """Apply the policy to one tick's facts."""
    if verdict not in settings.retrain_on:
        return RetrainDecision(False, f"verdict {verdict}: nothing to act on (acts on {settings.retrain_on})")
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
