"""Ground truth: what a row's targets really were, once known.

A target value can come with the row itself (the features table keeps it) or arrive later in
the ``labels`` table (``driftloop ingest --labels``). The latest label for a key wins, so a
correction sent later replaces an earlier value; without a label, the row's own value counts.
Training, promotion and monitoring all read ground truth through this module, so a label that
arrives late is learnt from by the next retrain as surely as it is scored by monitoring.
"""

from __future__ import annotations

import polars as pl

from driftloop.data.contract import Contract
from driftloop.lake import INGESTED_AT

LABEL_SUFFIX = "__label"


def latest_labels(labels: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """One row per key: the key columns and the targets of the latest label for it."""
    key = contract.key
    return (
        labels.sort(INGESTED_AT)
        .unique(subset=key, keep="last", maintain_order=True)
        .select(*key, *(pl.col(t) for t in contract.targets if t in labels.columns))
    )


def with_truth(rows: pl.DataFrame, labels: pl.DataFrame | None, contract: Contract) -> pl.DataFrame:
    """``rows`` with each target replaced by its latest label where one exists."""
    if labels is None or labels.is_empty() or not contract.key:
        return rows
    latest = latest_labels(labels, contract)
    targets = [t for t in contract.targets if t in latest.columns and t in rows.columns]
    renamed = latest.rename({t: t + LABEL_SUFFIX for t in targets})
    joined = rows.join(renamed, on=contract.key, how="left", maintain_order="left")
    return joined.with_columns(pl.coalesce(t + LABEL_SUFFIX, t).alias(t) for t in targets).drop(
        t + LABEL_SUFFIX for t in targets
    )


def is_labelled(contract: Contract) -> pl.Expr:
    """True for a row with at least one target value."""
    return pl.any_horizontal(pl.col(t).is_not_null() for t in contract.targets)


__all__ = ["is_labelled", "latest_labels", "with_truth"]
