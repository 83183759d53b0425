"""What the dashboard shows, read from the lake and the registry: never written, and read anew
for every page (a page is what the tables say now)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from driftloop.errors import DriftloopError
from driftloop.lake import Table
from driftloop.profiles import Profile
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
         "created": info.created, "metrics": registry.test_metrics(info)}
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


def traffic(project: Project, since: datetime) -> pl.DataFrame:
    """Requests and rows a minute since ``since``, per arm: the source (online, canary, shadow) and
    the version ("canary v4"), from the prediction log (a server writes it every ``flush_seconds``)."""
    if not project.lake.exists(Table.PREDICTIONS):
        return pl.DataFrame(schema={"minute": pl.Datetime("us", "UTC"), "arm": pl.String, "requests": pl.UInt32,
                                    "rows": pl.UInt32})  # fmt: skip
    answered = project.lake.scan(Table.PREDICTIONS).filter(
        pl.col("model_name") == project.model_name, pl.col("scored_at") >= since, pl.col("source") != "batch"
    )
    return (
        answered.group_by(
            pl.col("scored_at").dt.truncate("1m").alias("minute"),
            pl.format("{} v{}", "source", "model_version").alias("arm"),
        )
        .agg(pl.col("request_id").n_unique().alias("requests"), pl.len().alias("rows"))
        .sort("minute")
        .collect()
    )


@dataclass(frozen=True)
class WindowProfiles:
    """The newest monitored window of the batch stream: the inputs' training profile of the
    version that scored it, and the window's own on the same bins."""

    since: datetime
    until: datetime
    version: str
    reference: Profile
    current: Profile


def newest_window(project: Project) -> WindowProfiles | None:
    """The profiles of the newest window ``driftloop monitor`` tested the inputs of (None before
    one, or when its features are gone, or for an image project)."""
    from driftloop.monitor.window import input_drift
    from driftloop.registry import Registry

    tested = monitoring(project)
    clock = project.contract.clock
    if tested.is_empty() or clock is None or project.settings.images is not None:
        return None
    inputs = tested.filter(pl.col("section") == "input").sort("window_end")
    if inputs.is_empty():
        return None
    newest = inputs.row(-1, named=True)
    low, high = clock.bounds(newest["window_start"], newest["window_end"])
    rows = project.lake.read(Table.FEATURES, since=low, until=high, time_column=clock.column)
    if rows.is_empty():
        return None
    package = Registry(project).load(newest["model_version"])
    _, reference, current = input_drift(package, rows, project)
    return WindowProfiles(newest["window_start"], newest["window_end"], newest["model_version"], reference, current)


@dataclass(frozen=True)
class Latency:
    """One endpoint's answers since its server started: how many, and the quantiles of their time."""

    endpoint: str
    requests: int
    p50_ms: float
    p99_ms: float


def latency(metrics_url: str) -> list[Latency]:
    """Each endpoint's latency, from a server's Prometheus ``/metrics`` (its request histogram);
    a DriftloopError when the server cannot be read."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as answer:
            text = answer.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        raise DriftloopError(f"cannot read the server's metrics at {metrics_url}: {exc}") from exc
    buckets: dict[str, list[tuple[float, float]]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "driftloop_request_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets.setdefault(sample.labels["endpoint"], []).append((float(sample.labels["le"]), sample.value))
    answered = {endpoint: pairs for endpoint, pairs in sorted(buckets.items()) if max(c for _, c in pairs) > 0}
    return [Latency(endpoint, int(max(c for _, c in pairs)), _quantile(pairs, 0.5) * 1000,
                    _quantile(pairs, 0.99) * 1000) for endpoint, pairs in answered.items()]  # fmt: skip


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The ``q`` quantile of a cumulative histogram, interpolated within its bucket as Prometheus'
    ``histogram_quantile`` does."""
    ordered = sorted(buckets)
    total = ordered[-1][1]
    wanted = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= wanted:
            if math.isinf(bound):
                return lower_bound  # beyond the largest finite bucket: its bound is all that is known
            share = (wanted - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


__all__ = [
    "Latency", "WindowProfiles", "events", "latency", "monitoring", "newest_window", "quality", "rollout", "traffic",
    "versions",
]  # fmt: skip
