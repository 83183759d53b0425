"""Ingest: raw batches in, valid rows to ``raw``, the rest to ``quarantine`` with reasons.

A batch (one file, or one frame) is checked against the contract. A batch-level failure
refuses it with :class:`~driftloop.errors.BatchRejected` and writes no data. Otherwise its
rejected rows go to ``quarantine`` and its valid rows to ``raw``, each write replacing any rows
of the same batch id (so a rerun after a crash never duplicates), and a row in ``batches``
marks the batch complete. A batch already marked complete is reported and skipped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import narwhals as nw
import polars as pl

from driftloop.data.contract import Contract
from driftloop.data.sources import Batch, expand_paths, file_batch_id, from_frame
from driftloop.data.validate import RuleCount
from driftloop.engine import Engine, resolve_engine
from driftloop.errors import BatchRejected, ContractError
from driftloop.lake import BATCH_ID, EVENT_DATE, INGEST_DATE, INGESTED_AT, SOURCE, TABLES, Lake, Table, Where

if TYPE_CHECKING:
    from driftloop.project import Project


class BatchStatus(StrEnum):
    """What became of a batch (also the ``status`` column of the ``batches`` table)."""

    INGESTED = "ingested"
    ALREADY_INGESTED = "already ingested"
    REFUSED = "refused"


@dataclass(frozen=True)
class IngestSummary:
    """What happened to one batch: where its rows went and which rules they broke."""

    batch_id: str
    source: str
    status: BatchStatus
    rows_in: int
    rows_raw: int
    rows_quarantined: int
    rule_counts: list[RuleCount] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    raw_version: int | None = None
    quarantine_version: int | None = None
    seconds: float = 0.0
    rows_duplicate: int = 0  # an image batch's files whose content another batch had stored

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest(
    project: Project,
    data: str | Path | Sequence[str | Path] | Any,
    *,
    batch_id: str | None = None,
    on_refused: Literal["raise", "continue"] = "raise",
    labels: bool = False,
    on_step: Callable[[str, str], None] | None = None,
) -> list[IngestSummary]:
    """Ingest files, folders or a frame (Polars, pandas, Arrow; a Spark DataFrame on the Spark
    engine) into the project's lake.

    Each file is its own batch. With ``on_refused="continue"`` a refused batch is reported in
    its summary (status "refused") and the others go on; by default the refusal is raised.
    ``batch_id`` names a frame's batch, so ingesting the same frame twice is a no-op.
    With ``labels=True`` the rows are ground truth arriving after the fact: they are checked
    against the contract's key and target columns and stored in ``labels``.
    """
    contract, table = (labels_contract(project.contract), Table.LABELS) if labels else (project.contract, Table.RAW)
    engine = project.engine
    summaries: list[IngestSummary] = []
    for batch in _new_batches(project.lake, engine, data, batch_id, summaries):
        step = (lambda s, src=batch.source: on_step(src, s)) if on_step else None
        try:
            summaries.append(ingest_batch(project.lake, contract, batch, table=table, on_step=step, engine=engine))
        except BatchRejected:
            if on_refused == "raise":
                raise
            summaries.append(_refused_summary(project.lake, batch.batch_id))
    return summaries


def labels_contract(contract: Contract) -> Contract:
    """What a label row must hold: the row's key (id and/or event time) and its targets.

    A target may be missing from a label row (another target's label came alone), but at
    least the key must be there; a label sent again for the same key is accepted and the
    latest one counts, so corrections can be sent.
    """
    if contract.row_id_column is not None:
        raise ContractError(
            f"labels are joined to their rows by key, and this project's rows are named by their own values "
            f"({contract.row_id_column!r}, made at ingest): send the targets with the rows, or give the contract "
            "a column that tells rows apart as its id"
        )
    if not contract.key or not contract.targets:
        raise ContractError(
            "labels are joined to predictions by id and/or event time and carry targets; "
            "the contract needs a key column and at least one target to ingest labels"
        )
    columns = {n: contract.columns[n] for n in [*contract.key, *contract.targets]}
    columns.update({t: columns[t].model_copy(update={"required": False, "nullable": True}) for t in contract.targets})
    return contract.model_copy(update={"columns": columns, "duplicates": "keep_latest"})


def _new_batches(
    lake: Lake, engine: Engine, data: Any, batch_id: str | None, summaries: list[IngestSummary]
) -> Iterator[Batch]:
    """The batches of ``data`` not ingested before, read one at a time by ``engine``; the
    summaries of those that were go to ``summaries`` in their place. Files are looked up by
    digest all at once (an inbox offers every file it ever held again) and only new ones are read."""
    if isinstance(data, str | Path) or (isinstance(data, Sequence) and all(isinstance(d, str | Path) for d in data)):
        files = expand_paths([data] if isinstance(data, str | Path) else data)
        ids = [file_batch_id(path) for path in files]
        done = completed_batches(lake, ids)
        for path, digest in zip(files, ids, strict=True):
            if digest in done:
                summaries.append(done[digest])
            else:
                yield Batch(str(path), engine.read_file(path), digest)
        return
    batch = from_frame(data, batch_id=batch_id, native=engine.holds)
    previous = completed_batches(lake, [batch.batch_id]).get(batch.batch_id)
    if previous is not None:
        summaries.append(previous)
    else:
        yield batch


def ingest_batch(
    lake: Lake,
    contract: Contract,
    batch: Batch,
    *,
    table: Table = Table.RAW,
    on_step: Callable[[str], None] | None = None,
    engine: str | Engine | None = None,
) -> IngestSummary:
    """Validate ``batch`` on ``engine`` (the default one when None) and store it in ``table``
    (``raw``, or ``labels`` for ground truth); raise BatchRejected (writing no data) on a
    batch-level failure."""
    if not contract.columns:
        raise ContractError(
            "the contract has no columns yet; draft one from a sample with "
            "`driftloop init DIR --data SAMPLE --force`, or add [contract.columns.NAME] sections"
        )
    started = time.perf_counter()
    step = on_step or (lambda _: None)
    previous = completed_batch(lake, batch.batch_id)
    if previous is not None:
        return previous

    step("validating")
    chosen = resolve_engine(engine)
    seen = _other_batches(chosen, lake, table, batch.batch_id) if lake.exists(table) else None
    result = chosen.check(batch.frame, contract, seen_keys=seen)
    now = datetime.now(UTC)
    if not result.ok:
        refused = IngestSummary(
            batch.batch_id,
            batch.source,
            BatchStatus.REFUSED,
            chosen.count(batch.frame),
            0,
            0,
            problems=[str(p) for p in result.problems],
            ignored_columns=result.ignored_columns,
            seconds=time.perf_counter() - started,
        )
        log_batch(lake, refused, now)
        raise BatchRejected(batch.source, result.problems)

    # The split is stamped and written by the engine that holds it (a Spark engine's rows are
    # written by Spark): Narwhals expressions, which either engine runs.
    stamp = [
        nw.lit(batch.batch_id).alias(BATCH_ID),
        nw.lit(batch.source).alias(SOURCE),
        nw.lit(now).alias(INGESTED_AT),
    ]
    metadata = {"driftloop.batch_id": batch.batch_id, "driftloop.source": batch.source}
    where = Where(equal={BATCH_ID: batch.batch_id})

    step("writing quarantine")
    quarantined = _with(result.rejected, *stamp, nw.lit(now.date()).alias(INGEST_DATE))
    rows_quarantined = chosen.count(quarantined)
    quarantine_version = store(lake, Table.QUARANTINE, quarantined, rows_quarantined, where, metadata)

    step("writing raw")
    clock = contract.event_time_column
    event_date = nw.col(clock).cast(nw.Date) if clock else nw.lit(now.date())
    accepted = _with(result.valid, *stamp, event_date.alias(EVENT_DATE))
    rows_raw = chosen.count(accepted)
    raw_version = store(lake, table, accepted, rows_raw, where, metadata)

    summary = IngestSummary(
        batch.batch_id,
        batch.source,
        BatchStatus.INGESTED,
        rows_raw + rows_quarantined,  # every row is one or the other
        rows_raw,
        rows_quarantined,
        rule_counts=result.rule_counts,
        ignored_columns=result.ignored_columns,
        raw_version=raw_version,
        quarantine_version=quarantine_version,
        seconds=time.perf_counter() - started,
    )
    step("recording batch")
    log_batch(lake, summary, now)  # written last: its presence means the batch is complete
    return summary


def completed_batch(lake: Lake, batch_id: str) -> IngestSummary | None:
    """The summary of ``batch_id`` if it was ingested completely before, else None."""
    return completed_batches(lake, [batch_id]).get(batch_id)


def completed_batches(lake: Lake, batch_ids: list[str]) -> dict[str, IngestSummary]:
    """Summaries of those of ``batch_ids`` that were ingested completely before, by id."""
    if not lake.exists(Table.BATCHES) or not batch_ids:
        return {}
    rows = (
        lake.scan(Table.BATCHES)
        .filter(pl.col("batch_id").is_in(batch_ids) & (pl.col("status") == BatchStatus.INGESTED))
        .unique("batch_id", keep="first")
        .collect()
    )
    return {
        row["batch_id"]: IngestSummary(
            row["batch_id"],
            row["source"],
            BatchStatus.ALREADY_INGESTED,
            row["rows_in"],
            row["rows_raw"],
            row["rows_quarantined"],
            rule_counts=[
                RuleCount(r["column"], r["rule"], r["rows"], tuple(r["examples"])) for r in json.loads(row["rules"])
            ],
            raw_version=row["raw_version"],
            quarantine_version=row["quarantine_version"],
            rows_duplicate=row["rows_in"] - row["rows_raw"] - row["rows_quarantined"],
        )
        for row in rows.iter_rows(named=True)
    }


def _refused_summary(lake: Lake, batch_id: str) -> IngestSummary:
    row = lake.scan(Table.BATCHES).filter(pl.col("batch_id") == batch_id).collect().row(-1, named=True)
    return IngestSummary(
        batch_id, row["source"], BatchStatus.REFUSED, row["rows_in"], 0, 0, problems=json.loads(row["problems"])
    )


def _other_batches(engine: Engine, lake: Lake, table: str, batch_id: str) -> Any:
    """The rows ``table`` holds from other batches than ``batch_id``, as ``engine``'s lazy frame."""
    stored = nw.from_native(engine.scan(lake, table))
    return stored.filter(nw.col(BATCH_ID) != batch_id).to_native()


def _with(frame: Any, *columns: Any) -> Any:
    """``frame`` (Polars or Spark) with the Narwhals ``columns`` added."""
    return nw.from_native(frame).with_columns(*columns).to_native()


def store(lake: Lake, table: str, rows: Any, count: int, where: Where, metadata: dict[str, str]) -> int | None:
    """Replace this batch's rows (``count`` of them, Polars or Spark) in ``table``; an empty
    batch only clears leftovers of an earlier try."""
    if count:
        return lake.replace(table, rows, where=where, metadata=metadata)
    if lake.any_rows(table, where):
        return lake.delete(table, where=where)
    return lake.version(table)


def log_batch(lake: Lake, summary: IngestSummary, when: datetime) -> None:
    """Record ``summary`` in ``batches``: written last, its presence marks the batch complete."""
    row = {
        "batch_id": summary.batch_id,
        "source": summary.source,
        "status": summary.status.value,
        "ingested_at": when,
        "rows_in": summary.rows_in,
        "rows_raw": summary.rows_raw,
        "rows_quarantined": summary.rows_quarantined,
        "rules": json.dumps([asdict(r) for r in summary.rule_counts]),
        "problems": json.dumps(summary.problems),
        "ignored_columns": summary.ignored_columns,
        "raw_version": summary.raw_version,
        "quarantine_version": summary.quarantine_version,
    }
    lake.append(Table.BATCHES, pl.DataFrame([row], schema=dict(TABLES[Table.BATCHES].columns)))
