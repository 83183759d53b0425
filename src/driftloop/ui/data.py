"""What the dashboard shows, read from the lake and the registry: never written, and read anew
for every page (a page is what the tables say now)."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from driftloop.lake import Table
from driftloop.project import Project
from driftloop.rollout.state import Rollout, current, history


def versions(project: Project) -> list[dict[str, Any]]:
    """Every version of the model, newest first: its stage, aliases and test metrics."""
    from driftloop.registry import Registry

    registry = Registry(project)
    aliases: dict[str, list[str]] = {}
    for alias, version in registry.aliases().items():
        aliases.setdefault(version, []).append(alias)
    return [
        {"version": info.version, "stage": str(info.stage), "aliases": sorted(aliases.get(info.version, [])),
         "created": info.created, "metrics": {k: v for k, v in registry.store.run_metrics(info.run_id).items()
                                               if k.startswith("test_")}}
        for info in registry.versions()
    ]  # fmt: skip


def events(project: Project) -> pl.DataFrame:
    """The decision timeline: every event of the model, oldest first."""
    from driftloop.registry import Registry

    return Registry(project).events()


def rollout(project: Project) -> tuple[Rollout | None, pl.DataFrame]:
    """The newest rollout and every change it went through."""
    newest = current(project.lake, project.model_name)
    if newest is None:
        return None, pl.DataFrame()
    return newest, history(project.lake, project.model_name).filter(pl.col("rollout_id") == newest.rollout_id)


def monitoring(project: Project) -> pl.DataFrame:
    """Every monitored window's statistics of the model."""
    if not project.lake.exists(Table.MONITORING):
        return pl.DataFrame()
    return project.lake.read(Table.MONITORING).filter(pl.col("model_name") == project.model_name)


def quality(project: Project) -> pl.DataFrame:
    """Quarantined rows by ingest batch and broken rule (one row each), oldest batch first."""
    if not project.lake.exists(Table.BATCHES):
        return pl.DataFrame(schema={"batch_id": pl.String, "ingested_at": pl.Datetime("us", "UTC"),
                                    "rule": pl.String, "rows": pl.Int64, "rows_in": pl.Int64})  # fmt: skip
    batches = project.lake.read(Table.BATCHES).sort("ingested_at")
    rows = []
    for batch in batches.iter_rows(named=True):
        broken = json.loads(batch["rules"] or "[]")
        for rule in broken or [{"column": "", "rule": "", "rows": 0}]:
            name = f"{rule['column']}:{rule['rule']}" if rule["rule"] else "none"
            rows.append({"batch_id": batch["batch_id"], "ingested_at": batch["ingested_at"], "rule": name,
                         "rows": int(rule["rows"]), "rows_in": int(batch["rows_in"] or 0)})  # fmt: skip
    return pl.DataFrame(rows, schema={"batch_id": pl.String, "ingested_at": pl.Datetime("us", "UTC"),
                                      "rule": pl.String, "rows": pl.Int64, "rows_in": pl.Int64})  # fmt: skip


__all__ = ["events", "monitoring", "quality", "rollout", "versions"]
