"""The deployments a server holds: which versions are in front of traffic, and in what role.

``base`` defines a deployment and the interface of a kind; ``champion`` (answers every request),
``shadow`` (the challenger scores the same requests, never answers) and ``canary`` (a rollout's
candidate answers its share) are the kinds, one module each. :class:`Deployments` follows the registry: a version
an alias moves to is loaded and warmed beside the old one, then the whole set is swapped in one
assignment, so a batch that started on the old set finishes on it and no request waits for a load.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from driftloop.errors import DriftloopError
from driftloop.rollout.state import current as rollout_state
from driftloop.serve.deployments.base import Deployment, DeploymentKind, Role
from driftloop.serve.deployments.canary import canaries
from driftloop.serve.deployments.champion import Champion
from driftloop.serve.deployments.shadow import Shadow
from driftloop.serve.loaded import LoadedModel
from driftloop.settings import ServeSettings

if TYPE_CHECKING:
    from driftloop.project import Project
    from driftloop.registry import Registry

logger = logging.getLogger("driftloop.serve")


def kinds(settings: ServeSettings) -> list[DeploymentKind]:
    """The kinds of deployment ``[serve]`` asks for: the champion, and the shadow when on."""
    chosen: list[DeploymentKind] = [Champion()]
    if settings.shadow:
        chosen.append(Shadow())
    return chosen


@dataclass(frozen=True)
class Live:
    """The deployments in front of traffic at one moment; replaced whole, never changed."""

    deployments: tuple[Deployment, ...] = ()

    @property
    def answering(self) -> Deployment | None:
        """The deployment whose outputs are the answer (None before there is a champion)."""
        return next((d for d in self.deployments if d.role is Role.ANSWERS), None)

    @property
    def shadows(self) -> tuple[Deployment, ...]:
        return tuple(d for d in self.deployments if d.role is Role.SHADOWS)

    @property
    def canaries(self) -> tuple[Deployment, ...]:
        """A rollout's candidates, each answering its share of the requests (none: no rollout runs)."""
        return tuple(d for d in self.deployments if d.role is Role.CANARY)


class Following:
    """What every keeper of a server's deployments shares, wherever its versions come from (the
    registry, a device's store): the set live now, and refreshing it without ever going dark."""

    # Where the versions come from, for the log line of a failed refresh.
    source = "the registry"

    def __init__(self) -> None:
        self.live = Live()
        self.swaps = 0  # times the answering version changed
        self._lock = threading.Lock()  # one refresh at a time (poller and /admin/reload)

    def refresh(self) -> bool:
        """Load what the source names now; whether the answering version changed."""
        raise NotImplementedError

    def try_refresh(self) -> None:
        """:meth:`refresh`, logging (not raising) a failure: the server goes on with what it has."""
        try:
            self.refresh()
        except DriftloopError as exc:
            logger.error("could not load the versions %s names, still serving the old ones: %s", self.source, exc)

    def serving(self) -> tuple[str, str] | None:
        """The name and version of the model answering requests (None before there is one)."""
        answering = self.live.answering
        return None if answering is None else (answering.model.name, answering.model.version)


class Deployments(Following):
    """A project's deployments of ``kinds``, reloaded when the registry says another version."""

    def __init__(self, project: Project, kinds: Sequence[DeploymentKind]) -> None:
        super().__init__()
        self.project = project
        self.kinds = list(kinds)

    def refresh(self) -> bool:
        """Load the versions the registry names now, where they changed; True when the answering
        version changed. An answering deployment whose alias is gone keeps serving (a server
        never goes dark over a deleted alias); a shadow whose alias is gone is dropped."""
        from driftloop.registry import Registry  # on first use: a device's deployments follow no registry

        with self._lock:
            registry: Registry = Registry(self.project)
            aliases = registry.aliases()
            current = {d.kind.name: d for d in self.live.deployments}
            kept: list[Deployment] = []
            changed = False
            for kind in [*self.kinds, *canaries(rollout_state(self.project.lake, registry.name))]:
                wanted, serving = kind.wanted(aliases), current.get(kind.name)
                if wanted is None:
                    if serving is not None and kind.role is Role.ANSWERS:
                        kept.append(serving)
                    continue
                if serving is not None and serving.model.version == wanted:
                    kept.append(Deployment(kind, serving.model))  # the kind anew: a canary's share may have moved
                    continue
                loaded = LoadedModel(registry.name, wanted, registry.version(wanted).run_id, registry.load(wanted))
                loaded.package.warm()  # beside the one serving: no request waits for a session
                kept.append(Deployment(kind, loaded))
                if kind.role is Role.ANSWERS:
                    changed = True
                    self.swaps += 1
                    logger.warning("serving version %s of %s", wanted, registry.name)
            self.live = Live(tuple(kept))  # the swap: one reference assignment
            return changed

    def drop_canaries(self) -> None:
        """Answer every request with the champion again, at once (a guard broke; the rollout's new
        state is written after, so no request meets a candidate once it is judged)."""
        with self._lock:
            self.live = Live(tuple(d for d in self.live.deployments if d.role is not Role.CANARY))


__all__ = ["Deployment", "DeploymentKind", "Deployments", "Following", "Live", "Role", "kinds"]
