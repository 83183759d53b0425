"""A central server's watch over a canary: every ``[rollout] guard_seconds`` it reads the rollout
the lake says is running, and with what its own traffic showed of both arms (the batcher feeds
:class:`~driftloop.rollout.guards.GuardWatch`):

- a guard broken: this server drops the canary at once, then rolls it back (a row in
  ``rollouts``, an event, an alert); the others read the row within their next check;
- every ``metric_seconds``, the arms' decisive metric on the rows labelled since the rollout
  began, by an always-valid sequential test: a candidate worse with confidence is rolled back;
- the step's evidence gathered (``step_requests`` answered by the candidate here, and
  ``step_minutes`` gone by): the next step, or past the last the promotion gates;
- an A/B test: the guards of service alone (errors, latency), and the sequential test's verdict
  ends it (which version is better, recorded as an event);
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
from driftloop.rollout.guards import CANDIDATE, GuardWatch
from driftloop.rollout.sequential import msprt
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
    held = deployments.live.canary
    held_rollout: Rollout | None = getattr(held.kind, "rollout", None) if held is not None else None
    running = rollout is not None and rollout.running
    if not running and held is None:
        return rollout
    if not running or held_rollout is None or rollout is None or _moved(held_rollout, rollout):
        deployments.refresh()  # take the new state; the new step is judged on its own traffic
        watch.reset()
        return rollout
    if watch.metric_due(settings.metric_seconds):
        champion, candidate = arm_losses(project, rollout)
        watch.looked(msprt(champion, candidate, settings.metric_effect**2))
    if rollout.kind is RolloutKind.AB:
        return _check_ab(project, rollout, deployments, watch)
    breaches = watch.breaches(settings)
    if breaches:
        logger.error("canary of version %s broke its guards: %s", rollout.candidate, "; ".join(breaches))
        deployments.drop_canary()
        ended = roll_back(project, rollout, "; ".join(breaches), watch.summary())
        deployments.refresh()
        watch.reset()
        return ended
    earned = watch.arms[CANDIDATE].requests >= settings.step_requests
    if earned and datetime.now(UTC) - rollout.at >= timedelta(minutes=settings.step_minutes):
        moved = advance(project, rollout, watch.summary())
        deployments.refresh()
        watch.reset()
        return moved
    return rollout


def _check_ab(project: Project, rollout: Rollout, deployments: Deployments, watch: GuardWatch) -> Rollout:
    """An A/B test: ended by a guard of service, or by the sequential test's verdict."""
    from driftloop.rollout.canary import decide, roll_back

    settings = project.settings.rollout
    breaches = watch.breaches(settings, service_only=True)
    if breaches:
        deployments.drop_canary()
        ended = roll_back(project, rollout, "; ".join(breaches), watch.summary())
    else:
        metric = watch.metric
        enough = metric is not None and min(metric.n_first, metric.n_second) >= settings.metric_rows
        if metric is None or not enough or not metric.decided(settings.metric_alpha):
            return rollout
        deployments.drop_canary()
        ended = decide(project, rollout, metric, watch.summary())
    deployments.refresh()
    watch.reset()
    return ended


def _moved(held: Rollout, now: Rollout) -> bool:
    return (held.rollout_id, held.step) != (now.rollout_id, now.step)


__all__ = ["check_rollout", "guard_rollouts"]
