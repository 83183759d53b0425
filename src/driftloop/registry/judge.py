"""What the registry asks of a kind of model to move its versions: the dev -> qa gates, and the
evidence a challenger and the champion are compared on at qa -> prod.

The policy itself (stages, aliases, margins, the lock, the records) is the same for every kind
and lives in :mod:`~driftloop.registry.registry`; a kind of model brings a :class:`Judge`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from driftloop.model.data import recent_labelled_rows
from driftloop.project import Project
from driftloop.registry import evidence
from driftloop.registry.decisions import GateResult
from driftloop.registry.evidence import Awaiting, Evidence
from driftloop.registry.gates import Candidate, invalid_rows, qa_gates
from driftloop.registry.mlflow.store import ModelStore
from driftloop.runtime import ModelPackage
from driftloop.runtime.kinds import table_package


class Judge(Protocol):
    """The gates and evidence of one kind of model."""

    def qa_gates(self, version: str) -> list[GateResult]:
        """Every dev -> qa gate for ``version``."""
        ...

    def held_out(self, version: str, champion: str) -> Evidence:
        """``version`` and the ``champion`` on the version's own held-out test window."""
        ...

    def ahead(self, version: str, champion: str, at: datetime) -> Evidence | Awaiting | None:
        """Both on the days after the version's training data, once labelled at ``at`` (naive
        UTC); :class:`Awaiting` before; None when the wait is over and none was labelled."""
        ...


def judge_for(project: Project, store: ModelStore) -> Judge:
    """The judge of the project's kind of model."""
    from driftloop.registry.image_judge import ImageJudge

    return ImageJudge(project, store) if project.settings.images is not None else TableJudge(project, store)


class TableJudge:
    """A table network: gated on the newest labelled rows, judged on rows of the features table."""

    def __init__(self, project: Project, store: ModelStore) -> None:
        self.project, self.store = project, store

    def qa_gates(self, version: str) -> list[GateResult]:
        package = self._load(version)
        rows = recent_labelled_rows(
            self.project.lake, self.project.feature_set(), self.project.settings.promote.window_days
        )
        contract = package.contract
        sample = contract.as_sent(rows.select([c for c in contract.stored_columns if c not in contract.targets]))
        uris = (self.project.tracking_uri, self.project.registry_uri)
        candidate = Candidate(
            self.store.model_uri(version), uris, package.metrics, sample, invalid_rows(sample, contract)
        )
        return qa_gates(candidate, self.project.settings.promote)

    def held_out(self, version: str, champion: str) -> Evidence:
        return evidence.held_out(self.project, version, self._load(version), self._load(champion))

    def ahead(self, version: str, champion: str, at: datetime) -> Evidence | Awaiting | None:
        return evidence.ahead(self.project, self._load(version), self._load(champion), at)

    def _load(self, version: str) -> ModelPackage:
        return table_package(self.store.load(version), f"version {version} of {self.store.name!r}")
