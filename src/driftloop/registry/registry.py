"""The model registry policy: dev -> qa -> prod, champion and challenger, rollback.

Each trained version is registered in MLflow with the tag ``stage=dev``. :meth:`Registry.promote`
runs the dev -> qa gates, then (as a challenger) the qa -> prod comparison with the champion on
the rows (or images) the kind's :class:`~driftloop.registry.judge.Judge` reads: the challenger's
held-out test window, or the days after its training data once they are labelled
(``[promote] judge_days``). The aliases ``champion``, ``challenger`` and ``previous`` carry the
state. Promotions hold a lock on the project, so two racing promotions run one after the other:
the second is judged against the champion the first left. Every decision goes to the ``events``
table and onto the version as tags, with the numbers and the reason. MLflow itself is behind
:class:`~driftloop.registry.mlflow.store.ModelStore`.
"""

from __future__ import annotations

import fcntl
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import polars as pl

from driftloop.errors import RegistryError
from driftloop.lake import TABLES, Table, empty
from driftloop.project import Project
from driftloop.registry.decisions import DECISION_TAG, STAGE_TAG, Alias, Decision, DecisionKind, GateResult, Stage
from driftloop.registry.evidence import Awaiting, Evidence
from driftloop.registry.gates import compare
from driftloop.registry.judge import judge_for
from driftloop.registry.mlflow.store import ModelStore, VersionInfo
from driftloop.runtime import ModelPackage
from driftloop.runtime.kinds import AnyPackage, table_package


class Registry:
    """The project's registered model, and the policy that moves its versions."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.name = project.model_name
        self.store = ModelStore(project.tracking_uri, self.name, registry_uri=project.registry_uri)
        self.judge = judge_for(project, self.store)

    # -- reading -----------------------------------------------------------------------------

    def versions(self) -> list[VersionInfo]:
        """Every version of the model, newest first."""
        return self.store.versions()

    def version(self, version: str) -> VersionInfo:
        """One version (its run, tags and stage); a RegistryError when there is no such version."""
        return self.store.version(version)

    def aliases(self) -> dict[str, str]:
        """Alias -> version, e.g. ``{"champion": "3"}``."""
        return self.store.aliases()

    def test_metrics(self, info: VersionInfo) -> dict[str, float]:
        """What a version's training run measured on its held-out test rows (``test_*``); none for
        a version registered without a run."""
        logged = self.store.run_metrics(info.run_id) if info.run_id else {}
        return {name: value for name, value in logged.items() if name.startswith("test_")}

    def champion(self) -> str | None:
        """The version the ``champion`` alias names (None before the first promotion)."""
        return self.aliases().get(Alias.CHAMPION)

    def stage(self, version: str) -> Stage:
        return self.store.version(version).stage

    def load(self, version: str) -> ModelPackage:
        """The table package of ``version``, read from the registry once per process."""
        return table_package(self.store.load(version), f"version {version} of {self.name!r}")

    def package(self, version: str) -> AnyPackage:
        """The package of ``version``, whatever its kind, read from the registry once per process."""
        return self.store.load(version)

    def events(self) -> pl.DataFrame:
        """Every recorded decision about this model, oldest first."""
        lake = self.project.lake
        if not lake.exists(Table.EVENTS):
            return empty(Table.EVENTS)
        # A replay records a tick's retrain and its gates at the same simulated instant: within
        # one, decisions come in the order a version meets them.
        step = pl.col("kind").replace_strict(DECISION_ORDER, default=len(DecisionKind), return_dtype=pl.Int32)
        version = pl.col("version").cast(pl.Int64, strict=False)
        return lake.read(Table.EVENTS).filter(pl.col("model") == self.name).sort(pl.col("at"), version, step)

    def champion_at(self, when: datetime) -> str | None:
        """The version that was champion at ``when`` (None if there was none yet)."""
        changes = self.events().filter((pl.col("at") <= when) & pl.col("champion_after").is_not_null())
        return None if changes.is_empty() else str(changes.get_column("champion_after")[-1])

    # -- deciding ----------------------------------------------------------------------------

    def promote(self, version: str | None = None, *, at: datetime | None = None) -> list[Decision]:
        """Move ``version`` (default: the newest in dev or qa) as far as the policy allows.

        The decisions are recorded at ``at`` (default: now; naive times are UTC): a replay passes
        its simulated time, so "which version served on day D" reads right in a backtest. With
        ``[promote] judge_days``, a challenger in qa is only judged once the days after its
        training data are labelled; until then it stays in qa and no decision is returned for it
        (:meth:`awaiting` says what it waits for)."""
        when = _utc(at)
        with self._lock():
            chosen = version or self.next_candidate()
            decisions = []
            if self.stage(chosen) is Stage.DEV:
                decisions.append(self._to_qa(chosen, when))
                if not decisions[-1].accepted:
                    return decisions
            if self.stage(chosen) in (Stage.QA, Stage.REJECTED, Stage.ARCHIVED):
                judged = self._to_prod(chosen, when)
                decisions += [judged] if judged is not None else []
            elif not decisions:
                raise RegistryError(f"version {chosen} is already {self.stage(chosen)}; nothing to promote")
            return decisions

    def qualify(self, version: str, *, at: datetime | None = None) -> Decision:
        """Run the qa gates alone on ``version`` (dev -> qa), without judging it against the
        champion: what a canary needs before live traffic judges it."""
        with self._lock():
            if self.stage(version) is not Stage.DEV:
                raise RegistryError(f"version {version} is {self.stage(version)}; only a dev version goes to qa")
            return self._to_qa(version, _utc(at))

    def rollback(self) -> Decision:
        """Make the ``previous`` champion the champion again."""
        with self._lock():
            aliases = self.aliases()
            if Alias.PREVIOUS not in aliases:
                raise RegistryError(f"model {self.name!r} has no previous champion to roll back to")
            back, current = aliases[Alias.PREVIOUS], aliases.get(Alias.CHAMPION)
            self.store.set_alias(Alias.CHAMPION, back)
            self.store.delete_alias(Alias.PREVIOUS)
            self._tag_stage(back, Stage.PROD)
            if current:
                self._tag_stage(current, Stage.ARCHIVED)
            decision = Decision(
                DecisionKind.ROLLBACK,
                back,
                Stage.ARCHIVED,
                Stage.PROD,
                f"rolled back from version {current}",
                current,
                back,
            )
            return self._record(decision)

    def record_event(self, kind: DecisionKind, version: str, reason: str, *, at: datetime | None = None) -> Decision:
        """Record a decision taken outside the promotion gates (e.g. a retrain), at ``at``
        (naive times are UTC; a replay passes its simulated time)."""
        stage = self.stage(version)
        return self._record(Decision(kind, version, stage, stage, reason, at=_utc(at)))

    def tag(self, version: str, tags: dict[str, str]) -> None:
        """Set tags of the caller's own on ``version`` (e.g. which tick trained it)."""
        self.store.set_tags(version, tags)

    def _to_qa(self, version: str, at: datetime) -> Decision:
        gates = self.judge.qa_gates(version)
        failed = [g for g in gates if not g.passed]
        if failed:
            reason = "; ".join(f"{g.name}: {g.detail}" for g in failed)
            decision = Decision(DecisionKind.REJECTED_AT_QA, version, Stage.DEV, Stage.DEV, reason, gates=gates, at=at)
        else:
            self._tag_stage(version, Stage.QA)
            self.store.set_alias(Alias.CHALLENGER, version)
            judge = self.project.settings.promote.judge_days
            reason = "all qa gates passed" + (
                f"; judged against the champion on the {judge:g} days after its training data, once labelled"
                if judge is not None and self.champion() is not None
                else ""
            )
            decision = Decision(DecisionKind.PROMOTED_TO_QA, version, Stage.DEV, Stage.QA, reason, gates=gates, at=at)
        return self._record(decision)

    def _to_prod(self, version: str, at: datetime) -> Decision | None:
        """Judge ``version`` against the champion (None: it waits for the labels of the days it is
        to be judged on)."""
        before = self.stage(version)
        champion = self.champion()
        if champion == version:
            raise RegistryError(f"version {version} is already the champion")
        if champion is None:
            self._crown(version, None)
            return self._record(
                Decision(DecisionKind.CHAMPION, version, before, Stage.PROD, "first champion", None, version, at=at)
            )
        if self.project.settings.promote.judge_days is None:
            found: Evidence | Awaiting | None = self.judge.held_out(version, champion)
        else:
            found = self.judge.ahead(version, champion, at.astimezone(UTC).replace(tzinfo=None))
        if isinstance(found, Awaiting):
            return None
        if found is None:
            reason = (
                f"not one row of the {self.project.settings.promote.judge_days:g} days after its training data was "
                f"labelled within {self.project.settings.promote.judge_wait_days:g} more days: it cannot be judged"
            )
            return self._reject(version, before, champion, reason, [], at)
        verdict = compare(found.challenger, found.champion, self.project.settings.promote)
        verdict.numbers.update(window_rows=found.rows, window_start=found.start, basis=found.basis)
        if found.end is not None:
            verdict.numbers["window_end"] = found.end
        if "fitted on" in found.basis:
            verdict = replace(verdict, detail=f"{verdict.detail} ({found.basis})")
        if not verdict.passed:
            return self._reject(version, before, champion, verdict.detail, [verdict], at)
        self._crown(version, champion)
        crowned = Decision(
            DecisionKind.CHAMPION, version, before, Stage.PROD, verdict.detail, champion, version, [verdict], at
        )
        return self._record(crowned)

    def awaiting(self, version: str, *, at: datetime | None = None) -> Awaiting | None:
        """What ``version``, a challenger in qa judged on the days after its training data, still
        waits for at ``at`` (default: now; None: nothing, it can be judged)."""
        champion = self.champion()
        judged = self.project.settings.promote.judge_days is not None and self.stage(version) is Stage.QA
        if not judged or champion is None or champion == version:
            return None
        when = _utc(at).replace(tzinfo=None)
        found = self.judge.ahead(version, champion, when)
        return found if isinstance(found, Awaiting) else None

    def _reject(
        self, version: str, before: Stage, champion: str, reason: str, gates: list[GateResult], at: datetime
    ) -> Decision:
        self._tag_stage(version, Stage.REJECTED)
        if self.aliases().get(Alias.CHALLENGER) == version:
            self.store.delete_alias(Alias.CHALLENGER)
        return self._record(
            Decision(DecisionKind.REJECTED, version, before, Stage.REJECTED, reason, champion, None, gates, at)
        )

    def _crown(self, version: str, old: str | None) -> None:
        if old is not None:
            self.store.set_alias(Alias.PREVIOUS, old)
            self._tag_stage(old, Stage.ARCHIVED)
        self.store.set_alias(Alias.CHAMPION, version)  # the one atomic switch
        if self.aliases().get(Alias.CHALLENGER) == version:
            self.store.delete_alias(Alias.CHALLENGER)
        self._tag_stage(version, Stage.PROD)

    def next_candidate(self) -> str:
        """The newest version in dev or qa: the one :meth:`promote` takes by default."""
        for v in self.versions():
            if v.stage in (Stage.DEV, Stage.QA):
                return v.version
        raise RegistryError(f"model {self.name!r} has no version in dev or qa; train one with `driftloop train`")

    def _tag_stage(self, version: str, stage: Stage) -> None:
        self.store.set_tags(version, {STAGE_TAG: stage})

    def _record(self, decision: Decision) -> Decision:
        details = json.dumps([g.to_dict() for g in decision.gates], default=str)
        self.store.set_tags(
            decision.version,
            {
                DECISION_TAG: decision.kind,
                "decision_at": decision.at.isoformat(),
                "decision_reason": decision.reason,
                "decision_numbers": details,
            },
        )
        row = {
            "event_id": uuid.uuid4().hex,
            "at": decision.at,
            "kind": decision.kind.value,
            "model": self.name,
            "version": decision.version,
            "stage_before": decision.stage_before.value,
            "stage_after": decision.stage_after.value,
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


# The order of a version's decisions when they share an instant.
DECISION_ORDER = {
    DecisionKind.RETRAIN: 0,
    DecisionKind.PROMOTED_TO_QA: 1,
    DecisionKind.REJECTED_AT_QA: 1,
    DecisionKind.CHAMPION: 2,
    DecisionKind.REJECTED: 2,
    DecisionKind.ROLLBACK: 3,
}


def _utc(at: datetime | None) -> datetime:
    """``at`` as an aware UTC time (naive times are UTC); now when None."""
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
