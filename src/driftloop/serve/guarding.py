"""A central server's watch over a rollout: every ``[rollout] guard_seconds`` it reads the rollout
the lake says is running, and with what its own traffic showed of each arm (the batcher feeds
:class:`~driftloop.rollout.guards.GuardWatch`):

- a guard broken: this server drops the canary at once, then rolls it back (a row in
  ``rollouts``, an event, an alert); the others read the row within their next check;
- every ``metric_seconds``, the arms' decisive metric on the rows labelled since the rollout
  began, by an always-valid sequential test: a candidate worse with confidence is rolled back;
- the step's evidence gathered (``step_requests`` answered by the candidate here, and
  ``step_minutes`` gone by): the next step, or past the last the promotion gates;
- an A/B test: the guards of service alone (errors, latency), and the sequential test's verdict
  ends it (which version is better than every other, recorded as an event);
- the rollout changed elsewhere (another server stepped it, someone aborted it): this server
  takes the new state, and judges the new step on its own traffic from then on.

A failure to read or write the lake is logged and tried again at the next check; the server
goes on answering.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from driftloop.errors import DriftloopError
from driftloop.project import Project
from driftloop.rollout.evidence import arm_losses
from driftloop.rollout.guards import GuardWatch
from driftloop.rollout.sequential import best_arm, compare
from driftloop.rollout.state import Rollout, RolloutKind, current
from driftloop.serve.deployments import Deployments

logger = logging.getLogger("driftloop.serve")


async def guard_rollouts(project: Project, deployments: Deployments, watch: GuardWatch) -> None:
    """Check the rollout every ``guard_seconds``, for the server's life."""
    while True:
        await asyncio.sleep(project.settings.rollout.guard_seconds)
        try:
            await asyncio.to_thread(check_rollout, project, deployments, watch)
        except DriftloopError as exc:
            logger.error("could not check the rollout, trying again in %gs: %s", project.settings.rollout.guard_seconds,
                         exc)  # fmt: skip
        except Exception:  # a bug must not leave a canary unguarded: logged whole, and the next check runs
            logger.exception("the rollout check failed; trying again in %gs", project.settings.rollout.guard_seconds)


def check_rollout(project: Project, deployments: Deployments, watch: GuardWatch) -> Rollout | None:
    """One check (see the module); the rollout as it stands after it."""
    from driftloop.rollout.canary import advance, roll_back

    settings = project.settings.rollout
    rollout = current(project.lake, project.model_name)
    held = deployments.live.canaries
    held_rollout: Rollout | None = getattr(held[0].kind, "rollout", None) if held else None
    running = rollout is not None and rollout.running
    if not running and not held:
        return rollout
    if not running or held_rollout is None or rollout is None or _moved(held_rollout, rollout):
        deployments.refresh()  # take the new state; the new step is judged on its own traffic
        same = held_rollout is not None and rollout is not None and held_rollout.rollout_id == rollout.rollout_id
        watch.reset(keep=rollout.champion if same and rollout is not None else None)
        return rollout
    if watch.metric_due(settings.metric_seconds):
        watch.looked(compare(arm_losses(project, rollout), settings.metric_effect**2))
    if rollout.kind is RolloutKind.AB:
        return _check_ab(project, rollout, deployments, watch)
    breaches = watch.breaches(settings, rollout)
    if breaches:
        logger.error("canary of version %s broke its guards: %s", rollout.candidate, "; ".join(breaches))
        deployments.drop_canaries()
        ended = roll_back(project, rollout, "; ".join(breaches), watch.summary(rollout))
        deployments.refresh()
        watch.reset()
        return ended
    earned = watch.requests(rollout.candidate) >= settings.step_requests
    if earned and datetime.now(UTC) - rollout.at >= timedelta(minutes=settings.step_minutes):
        moved = advance(project, rollout, watch.summary(rollout))
        deployments.refresh()
        watch.reset(keep=rollout.champion)  # the champion's latency stays the reference at the next step
        return moved
    return rollout


def _check_ab(project: Project, rollout: Rollout, deployments: Deployments, watch: GuardWatch) -> Rollout:
    """An A/B test: ended by a guard of service, or by the sequential test's verdict."""
    from driftloop.rollout.canary import decide, roll_back

    settings = project.settings.rollout
    breaches = watch.breaches(settings, rollout, service_only=True)
    if breaches:
        logger.error("a/b test of %s broke its guards: %s", rollout.named, "; ".join(breaches))
        deployments.drop_canaries()
        ended = roll_back(project, rollout, "; ".join(breaches), watch.summary(rollout))
    else:
        best = best_arm(watch.metric, settings.metric_alpha, settings.metric_rows)
        if best is None:
            return rollout
        deployments.drop_canaries()
        ended = decide(project, rollout, best, watch.metric, watch.summary(rollout))
    deployments.refresh()
    watch.reset()
    return ended


def _moved(held: Rollout, now: Rollout) -> bool:
    return (held.rollout_id, held.step) != (now.rollout_id, now.step)


__all__ = ["check_rollout", "guard_rollouts"]
