"""Ground truth: what a row's targets really were, once known.

A target value can come with the row itself (the features table keeps it) or arrive later in
the ``labels`` table (``driftloop ingest --labels``). The latest label for a key wins, so a
correction sent later replaces an earlier value; without a label, the row's own value counts.
Training, promotion and monitoring all read ground truth through this module, so a label that
arrives late is learnt from by the next retrain as surely as it is scored by monitoring.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from driftloop.data.contract import Contract
from driftloop.lake import INGESTED_AT, ROW

LABEL_SUFFIX = "__label"
ORDER = "__order"


def latest_labels(labels: Any, contract: Contract) -> Any:
    """One row per key: the key columns and the targets of the latest label for it (``labels``
    a Polars frame or any engine's, through Narwhals)."""
    key = contract.key
    rows = nw.from_native(labels)
    present = [t for t in contract.targets if t in rows.columns]
    order = [INGESTED_AT, *([ROW] if ROW in rows.columns else [])]  # one batch: its later row wins
    return rows.unique(subset=key, keep="last", order_by=order).select(*key, *present).to_native()


def truth_of(rows: Any, labels: Any | None, contract: Contract) -> Any:
    """``rows`` (a Polars frame or any engine's) with each target replaced by its latest label
    where one exists, in no particular order; ``labels`` is a frame of the same kind."""
    if labels is None or not contract.key:
        return rows
    latest = nw.from_native(latest_labels(labels, contract))
    frame = nw.from_native(rows)
    targets = [t for t in contract.targets if t in latest.columns and t in frame.columns]
    renamed = latest.rename({t: t + LABEL_SUFFIX for t in targets})
    joined = frame.join(renamed, on=contract.key, how="left")
    truth = [nw.coalesce(nw.col(t + LABEL_SUFFIX), nw.col(t)).alias(t) for t in targets]
    return joined.with_columns(*truth).drop(*(t + LABEL_SUFFIX for t in targets)).to_native()


def with_truth(rows: pl.DataFrame, labels: pl.DataFrame | None, contract: Contract) -> pl.DataFrame:
    """``rows`` with each target replaced by its latest label where one exists, in their order."""
    if labels is None or labels.is_empty() or not contract.key:
        return rows
    joined: pl.DataFrame = truth_of(rows.with_row_index(ORDER), labels, contract)
    return joined.sort(ORDER).drop(ORDER)


def is_labelled(contract: Contract) -> pl.Expr:
    """True for a row with at least one target value."""
    return pl.any_horizontal(pl.col(t).is_not_null() for t in contract.targets)


__all__ = ["is_labelled", "latest_labels", "truth_of", "with_truth"]
