"""The model registry policy: dev -> qa -> prod, champion and challenger, rollback.

Each trained version is registered in MLflow with the tag ``stage=dev``. :meth:`Registry.promote`
runs the dev -> qa gates, then (as a challenger) the qa -> prod comparison with the champion on
the most recent labelled window. The aliases ``champion``, ``challenger`` and ``previous``
carry the state (MLflow's stages are deprecated). Promotions hold a lock on the project, so
two racing promotions run one after the other: the second is judged against the champion the
first left. Every decision goes to the ``events`` table and onto the version as tags, with
the numbers and the reason.
"""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import mlflow
import polars as pl
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from driftloop.errors import RegistryError
from driftloop.gates import GateResult, compare, qa_gates, score
from driftloop.lake import TABLES, Table, empty
from driftloop.model.data import recent_labelled_rows
from driftloop.project import Project
from driftloop.runtime.package import ModelPackage

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
# Tag on a version once any decision about it was recorded.
DECISION_TAG = "decision"
# MLflow keeps tag values up to this length.
TAG_LIMIT = 5000


@dataclass(frozen=True)
class Decision:
    """One lifecycle decision with the evidence behind it."""

    kind: str  # "promoted to qa", "rejected at qa", "champion", "rejected", "rollback"
    version: str
    stage_before: str
    stage_after: str
    reason: str
    champion_before: str | None = None
    champion_after: str | None = None
    gates: list[GateResult] = field(default_factory=list)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def accepted(self) -> bool:
        return self.stage_after != self.stage_before and not self.kind.startswith("rejected")

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "gates"}
        data["gates"] = [g.to_dict() for g in self.gates]
        return data


class Registry:
    """The project's registered model in MLflow, and the policy that moves its versions."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.name = project.settings.project.name
        self.client = MlflowClient(project.tracking_uri)

    # -- reading -----------------------------------------------------------------------------

    def versions(self) -> list[Any]:
        """Every version of the model, newest first (MLflow ModelVersion objects)."""
        try:
            found = self.client.search_model_versions(f"name = '{self.name}'")
        except MlflowException as exc:
            raise RegistryError(f"cannot read the registry at {self.project.tracking_uri}: {exc}") from exc
        return sorted(found, key=lambda v: int(v.version), reverse=True)

    def aliases(self) -> dict[str, str]:
        """Alias -> version, e.g. ``{"champion": "3"}``."""
        try:
            aliases = self.client.get_registered_model(self.name).aliases
        except MlflowException as exc:
            # Only a model not registered yet has no aliases. Any other failure (a locked or
            # damaged store, a server down) must stop the step: read as "no champion yet", it
            # would crown a version without comparing it with anyone, or retrain for nothing.
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise RegistryError(
                f"cannot read the aliases of model {self.name!r} at {self.project.tracking_uri}: {exc}; "
                "nothing was decided, run the step again once the registry answers"
            ) from exc
        return {alias: str(version) for alias, version in aliases.items()}  # MLflow may give ints

    def stage(self, version: str) -> str:
        return str(self._version(version).tags.get("stage", "dev"))

    def load(self, version: str) -> ModelPackage:
        """The package of ``version``, loaded from the registry."""
        self._version(version)
        mlflow.set_tracking_uri(self.project.tracking_uri)
        model = mlflow.pyfunc.load_model(f"models:/{self.name}/{version}")
        package: ModelPackage = model.get_raw_model()
        return package

    def events(self) -> pl.DataFrame:
        """Every recorded decision about this model, oldest first."""
        lake = self.project.lake
        if not lake.exists(Table.EVENTS):
            return empty(Table.EVENTS)
        return lake.read(Table.EVENTS).filter(pl.col("model") == self.name).sort("at")

    def champion_at(self, when: datetime) -> str | None:
        """The version that was champion at ``when`` (None if there was none yet)."""
        changes = self.events().filter((pl.col("at") <= when) & pl.col("champion_after").is_not_null())
        return None if changes.is_empty() else str(changes.get_column("champion_after")[-1])

    # -- deciding ----------------------------------------------------------------------------

    def promote(self, version: str | None = None) -> list[Decision]:
        """Move ``version`` (default: the newest in dev or qa) as far as the policy allows."""
        with self._lock():
            chosen = version or self._next_candidate()
            decisions = []
            if self.stage(chosen) == "dev":
                decisions.append(self._to_qa(chosen))
                if not decisions[-1].accepted:
                    return decisions
            if self.stage(chosen) in ("qa", "rejected", "archived"):
                decisions.append(self._to_prod(chosen))
            elif not decisions:
                raise RegistryError(f"version {chosen} is already {self.stage(chosen)}; nothing to promote")
            return decisions

    def rollback(self) -> Decision:
        """Make the ``previous`` champion the champion again."""
        with self._lock():
            aliases = self.aliases()
            if PREVIOUS not in aliases:
                raise RegistryError(f"model {self.name!r} has no previous champion to roll back to")
            back, current = aliases[PREVIOUS], aliases.get(CHAMPION)
            self.client.set_registered_model_alias(self.name, CHAMPION, back)
            self.client.delete_registered_model_alias(self.name, PREVIOUS)
            self._tag_stage(back, "prod")
            if current:
                self._tag_stage(current, "archived")
            decision = Decision(
                "rollback", back, "archived", "prod", f"rolled back from version {current}", current, back
            )
            self._record(decision)
            return decision

    def record_event(self, kind: str, version: str, reason: str, *, at: datetime | None = None) -> Decision:
        """Record a decision taken outside the promotion gates (e.g. a retrain), at ``at``
        (naive times are UTC; a replay passes its simulated time)."""
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        stage = self.stage(version)
        return self._record(Decision(kind, version, stage, stage, reason, at=when))

    def _to_qa(self, version: str) -> Decision:
        package = self.load(version)
        rows = self._recent_rows()
        inputs = [c for c in package.contract.stored_columns if c not in package.contract.targets]
        gates = qa_gates(
            package,
            f"models:/{self.name}/{version}",
            self.project.tracking_uri,
            rows.select(inputs),
            self.project.settings.promote,
        )
        failed = [g for g in gates if not g.passed]
        if failed:
            reason = "; ".join(f"{g.name}: {g.detail}" for g in failed)
            decision = Decision("rejected at qa", version, "dev", "dev", reason, gates=gates)
        else:
            self._tag_stage(version, "qa")
            self.client.set_registered_model_alias(self.name, CHALLENGER, version)
            decision = Decision("promoted to qa", version, "dev", "qa", "all qa gates passed", gates=gates)
        self._record(decision)
        return decision

    def _to_prod(self, version: str) -> Decision:
        before = self.stage(version)
        champion = self.aliases().get(CHAMPION)
        if champion == version:
            raise RegistryError(f"version {version} is already the champion")
        if champion is None:
            self._crown(version, None)
            return self._record(Decision("champion", version, before, "prod", "first champion", None, version))
        rows = self._recent_rows()
        verdict = compare(
            score(self.load(version), rows), score(self.load(champion), rows), self.project.settings.promote
        )
        verdict.numbers["window_rows"] = rows.height
        if verdict.passed:
            self._crown(version, champion)
            decision = Decision("champion", version, before, "prod", verdict.detail, champion, version, [verdict])
        else:
            self._tag_stage(version, "rejected")
            if self.aliases().get(CHALLENGER) == version:
                self.client.delete_registered_model_alias(self.name, CHALLENGER)
            decision = Decision("rejected", version, before, "rejected", verdict.detail, champion, None, [verdict])
        return self._record(decision)

    def _crown(self, version: str, old: str | None) -> None:
        if old is not None:
            self.client.set_registered_model_alias(self.name, PREVIOUS, old)
            self._tag_stage(old, "archived")
        self.client.set_registered_model_alias(self.name, CHAMPION, version)  # the one atomic switch
        if self.aliases().get(CHALLENGER) == version:
            self.client.delete_registered_model_alias(self.name, CHALLENGER)
        self._tag_stage(version, "prod")

    def _recent_rows(self) -> pl.DataFrame:
        return recent_labelled_rows(
            self.project.lake, self.project.feature_set(), self.project.settings.promote.window_days
        )

    def _next_candidate(self) -> str:
        for v in self.versions():
            if v.tags.get("stage", "dev") in ("dev", "qa"):
                return str(v.version)
        raise RegistryError(f"model {self.name!r} has no version in dev or qa; train one with `driftloop train`")

    def _version(self, version: str) -> Any:
        try:
            return self.client.get_model_version(self.name, version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise RegistryError(f"model {self.name!r} has no version {version!r}") from exc
            raise RegistryError(
                f"cannot read version {version} of model {self.name!r} at {self.project.tracking_uri}: {exc}"
            ) from exc

    def _tag_stage(self, version: str, stage: str) -> None:
        self.client.set_model_version_tag(self.name, version, "stage", stage)

    def _record(self, decision: Decision) -> Decision:
        details = json.dumps([g.to_dict() for g in decision.gates], default=str)
        for key, value in {
            DECISION_TAG: decision.kind,
            "decision_at": decision.at.isoformat(),
            "decision_reason": decision.reason,
            "decision_numbers": details,
        }.items():
            self.client.set_model_version_tag(self.name, decision.version, key, value[:TAG_LIMIT])
        row = {
            "event_id": uuid.uuid4().hex,
            "at": decision.at,
            "kind": decision.kind,
            "model": self.name,
            "version": decision.version,
            "stage_before": decision.stage_before,
            "stage_after": decision.stage_after,
            "champion_before": decision.champion_before,
            "champion_after": decision.champion_after,
            "reason": decision.reason,
            "details": details,
        }
        self.project.lake.append(Table.EVENTS, pl.DataFrame([row], schema=dict(TABLES[Table.EVENTS].columns)))
        return decision

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Hold the project's promotion lock (released by the OS if the process dies)."""
        path = self.project.root / ".promotion.lock"
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
