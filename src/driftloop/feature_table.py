"""The features stage: the ``features`` table kept up to date with ``raw``.

Only the batches added to ``raw`` since the last run are computed; rows are upserted by the
contract's key, so a batch that re-sends a key replaces the earlier row and a rerun changes
nothing. The raw version read is recorded in each commit: that is where the next run starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import narwhals as nw

from driftloop.engine import Engine, resolve_engine
from driftloop.errors import TableNotFound
from driftloop.features import FeatureSet
from driftloop.lake import BATCH_ID, EVENT_DATE, INGESTED_AT, ROW, Lake, Table, Where

RAW_VERSION = "driftloop.raw_version"


@dataclass(frozen=True)
class FeatureRun:
    """What one materialisation did: the table version it made and from which raw version."""

    version: int | None
    raw_version: int | None
    batches: list[str]
    rows: int


def materialize(lake: Lake, features: FeatureSet, *, engine: str | Engine | None = None) -> FeatureRun:
    """Bring ``features`` up to date with ``raw`` on ``engine``, computing only the batches added since
    the last run.

    Rows are upserted by the contract's key (id and/or event time), so a later batch that
    re-sends a key replaces the earlier row and a rerun changes nothing. The raw version read
    is recorded in the commit, which is how the next run knows where to start.
    """
    raw_version = lake.version(Table.RAW)
    if raw_version is None:
        raise TableNotFound("table 'raw' is empty: run `driftloop ingest` before `driftloop features`")
    done = _watermark(lake)
    if done == raw_version or (done is not None and _only_compacted(lake, done, raw_version)):
        return FeatureRun(lake.version(Table.FEATURES), raw_version, [], 0)
    chosen = resolve_engine(engine)
    batches = _batch_ids(chosen, lake, raw_version) - (_batch_ids(chosen, lake, done) if done is not None else set())
    if not batches:
        return FeatureRun(lake.version(Table.FEATURES), raw_version, [], 0)
    new = sorted(batches)
    rows = nw.from_native(chosen.scan(lake, Table.RAW, version=raw_version)).filter(nw.col(BATCH_ID).is_in(new))
    key = features.contract.key
    if key:  # a key sent twice among the new batches: the last one ingested wins
        rows = rows.unique(subset=key, keep="last", order_by=[INGESTED_AT, ROW])
    added = nw.from_native(chosen.add_features(rows.to_native(), features))
    table = added.select(*features.table_columns, BATCH_ID, EVENT_DATE).to_native()  # rows stay with the engine
    metadata = {RAW_VERSION: str(raw_version), "driftloop.batches": str(len(new))}
    count = chosen.count(table)
    if not count:
        return FeatureRun(lake.version(Table.FEATURES), raw_version, new, 0)
    if key:
        version = lake.merge(Table.FEATURES, table, key=key, metadata=metadata)
    else:
        version = lake.replace(Table.FEATURES, table, where=Where(one_of={BATCH_ID: new}), metadata=metadata)
    return FeatureRun(version, raw_version, new, count)


def _watermark(lake: Lake) -> int | None:
    if not lake.exists(Table.FEATURES):
        return None
    for commit in lake.history(Table.FEATURES, limit=20, counts=False):
        if RAW_VERSION in commit.metadata:
            return int(commit.metadata[RAW_VERSION])
    return None


def _only_compacted(lake: Lake, since: int, until: int) -> bool:
    """Whether every commit to raw after version ``since``, up to ``until``, was a compaction.

    OPTIMIZE rewrites files and adds no row, so there is nothing new to materialize; saying so
    from the log spares two scans of raw's batch ids every tick after the loop compacts raw.
    A commit racing in after ``until`` is left out by version (and more than a few such make
    the answer "no", and the batch ids are compared as usual).
    """
    window = until - since
    commits = [c for c in lake.history(Table.RAW, limit=window + 8, counts=False) if since < c.version <= until]
    return len(commits) == window and all(c.operation == "OPTIMIZE" for c in commits)


def _batch_ids(engine: Engine, lake: Lake, version: int) -> set[str]:
    """The batches ``raw`` holds at ``version`` (read by the engine: only the distinct ids come here)."""
    ids = nw.from_native(engine.scan(lake, Table.RAW, version=version)).select(BATCH_ID).unique().to_native()
    return set(engine.to_polars(ids).get_column(BATCH_ID).to_list())
