"""The model registry policy: dev -> qa -> prod, champion and challenger, rollback.

Each trained version is registered in MLflow with the tag ``stage=dev``. :meth:`Registry.promote`
runs the dev -> qa gates, then (as a challenger) the qa -> prod comparison with the champion on
the challenger's test window: its newest labelled days, which the fit that measured it held out
(a refit package serves weights fitted on them too; its metrics are the held-out fit's).
The aliases ``champion``, ``challenger`` and ``previous`` carry
the state. Promotions hold a lock on the project, so two racing promotions run one after the
other: the second is judged against the champion the first left. Every decision goes to the
``events`` table and onto the version as tags, with the numbers and the reason. MLflow itself is
behind :class:`~driftloop.registry.mlflow.store.ModelStore`.
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

from driftloop.errors import LakeError, RegistryError, TrainingError
from driftloop.lake import TABLES, Table, empty
from driftloop.model.data import held_out_rows, recent_labelled_rows, split_clock
from driftloop.project import Project
from driftloop.registry.decisions import DECISION_TAG, STAGE_TAG, Alias, Decision, DecisionKind, Stage
from driftloop.registry.gates import compare, qa_gates, score
from driftloop.registry.mlflow.store import ModelStore, VersionInfo
from driftloop.runtime import ModelPackage


class Registry:
    """The project's registered model, and the policy that moves its versions."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.name = project.model_name
        self.store = ModelStore(project.tracking_uri, self.name, registry_uri=project.registry_uri)

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

    def champion(self) -> str | None:
        """The version the ``champion`` alias names (None before the first promotion)."""
        return self.aliases().get(Alias.CHAMPION)

    def stage(self, version: str) -> Stage:
        return self.store.version(version).stage

    def load(self, version: str) -> ModelPackage:
        """The package of ``version``, read from the registry once per process."""
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
        its simulated time, so "which version served on day D" reads right in a backtest."""
        when = _utc(at)
        with self._lock():
            chosen = version or self._next_candidate()
            decisions = []
            if self.stage(chosen) is Stage.DEV:
                decisions.append(self._to_qa(chosen, when))
                if not decisions[-1].accepted:
                    return decisions
            if self.stage(chosen) in (Stage.QA, Stage.REJECTED, Stage.ARCHIVED):
                decisions.append(self._to_prod(chosen, when))
            elif not decisions:
                raise RegistryError(f"version {chosen} is already {self.stage(chosen)}; nothing to promote")
            return decisions

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
        package = self.load(version)
        rows = self._recent_rows()
        inputs = [c for c in package.contract.stored_columns if c not in package.contract.targets]
        gates = qa_gates(
            package, self.store.model_uri(version), (self.project.tracking_uri, self.project.registry_uri),
            package.contract.as_sent(rows.select(inputs)),
            self.project.settings.promote,
        )  # fmt: skip
        failed = [g for g in gates if not g.passed]
        if failed:
            reason = "; ".join(f"{g.name}: {g.detail}" for g in failed)
            decision = Decision(DecisionKind.REJECTED_AT_QA, version, Stage.DEV, Stage.DEV, reason, gates=gates, at=at)
        else:
            self._tag_stage(version, Stage.QA)
            self.store.set_alias(Alias.CHALLENGER, version)
            decision = Decision(
                DecisionKind.PROMOTED_TO_QA, version, Stage.DEV, Stage.QA, "all qa gates passed", gates=gates, at=at
            )
        return self._record(decision)

    def _to_prod(self, version: str, at: datetime) -> Decision:
        before = self.stage(version)
        champion = self.champion()
        if champion == version:
            raise RegistryError(f"version {version} is already the champion")
        if champion is None:
            self._crown(version, None)
            return self._record(
                Decision(DecisionKind.CHAMPION, version, before, Stage.PROD, "first champion", None, version, at=at)
            )
        challenger = self.load(version)
        rows = self._held_out_rows(version, challenger)
        champion_metrics, basis = _champion_on(self.load(champion), challenger, rows)
        verdict = compare(challenger.metrics["network"]["test"], champion_metrics, self.project.settings.promote)
        verdict.numbers.update(window_rows=rows.height, window_start=challenger.lineage["test_start"], basis=basis)
        if "fitted on" in basis:
            verdict = replace(verdict, detail=f"{verdict.detail} ({basis})")
        if verdict.passed:
            self._crown(version, champion)
            decision = Decision(
                DecisionKind.CHAMPION, version, before, Stage.PROD, verdict.detail, champion, version, [verdict], at
            )
        else:
            self._tag_stage(version, Stage.REJECTED)
            if self.aliases().get(Alias.CHALLENGER) == version:
                self.store.delete_alias(Alias.CHALLENGER)
            decision = Decision(
                DecisionKind.REJECTED, version, before, Stage.REJECTED, verdict.detail, champion, None, [verdict], at
            )
        return self._record(decision)

    def _crown(self, version: str, old: str | None) -> None:
        if old is not None:
            self.store.set_alias(Alias.PREVIOUS, old)
            self._tag_stage(old, Stage.ARCHIVED)
        self.store.set_alias(Alias.CHAMPION, version)  # the one atomic switch
        if self.aliases().get(Alias.CHALLENGER) == version:
            self.store.delete_alias(Alias.CHALLENGER)
        self._tag_stage(version, Stage.PROD)

    def _held_out_rows(self, version: str, package: ModelPackage) -> pl.DataFrame:
        """The challenger's test window, read as it was when it was trained (the lake's versions
        it names), so the champion is scored on the very rows the challenger's metrics are of."""
        try:
            rows = held_out_rows(self.project.lake, self.project.feature_set(), package.lineage)
        except (LakeError, TrainingError) as exc:
            raise RegistryError(
                f"the test window of version {version} cannot be read as it was trained ({exc}); "
                "retrain it with `driftloop train` to judge it against the champion"
            ) from exc
        expected = package.lineage["rows"]["test"]
        if rows.height != expected:
            raise RegistryError(
                f"the test window of version {version} reads {rows.height} rows, not the {expected} it was "
                "tested on; the lake's history was changed. Retrain it to judge it against the champion"
            )
        return rows

    def _recent_rows(self) -> pl.DataFrame:
        return recent_labelled_rows(
            self.project.lake, self.project.feature_set(), self.project.settings.promote.window_days
        )

    def _next_candidate(self) -> str:
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
# What identifies a test window's rows in a package's lineage.
TEST_WINDOW = ("test_start", "window", "features_version", "labels_version")


def _champion_on(
    champion: ModelPackage, challenger: ModelPackage, rows: pl.DataFrame
) -> tuple[dict[str, dict[str, float]], str]:
    """The champion's metrics to set against the challenger's held-out ones, and how they were had.

    Where both were trained on the same data, the champion's own test metrics are of the very
    rows, held out of its fit too. Otherwise the champion scores the rows; if its weights were
    fitted on some of them the comparison favours it, and the basis says by how many rows.
    """
    if all(champion.lineage.get(k) == challenger.lineage.get(k) for k in TEST_WINDOW):
        return champion.metrics["network"]["test"], "the same test window, held out of both fits"
    metrics = score(champion, rows)
    fitted_until = champion.lineage.get("fitted_until") or champion.lineage["data_until"]
    clock = champion.contract.clock
    seen = rows.filter(split_clock(clock.column) <= datetime.fromisoformat(fitted_until)).height if clock else 0
    if seen:
        return metrics, f"the champion was fitted on {seen} of the {rows.height} rows, which favours it"
    return metrics, "the challenger's test window, which neither was fitted on"


def _utc(at: datetime | None) -> datetime:
    """``at`` as an aware UTC time (naive times are UTC); now when None."""
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
