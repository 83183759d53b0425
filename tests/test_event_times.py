"""Every kind of event time through every command, replay included, in a zone with daylight saving.

The same hourly history (Paris, across the night of 27 March 2016 when clocks go forward, so the
27th lasts 23 hours) is written five ways: dates with an entity id, naive wall-clock times, times
with their offsets, epoch milliseconds, and year/month/day/hour columns. Each runs init ->
ingest -> features -> train -> promote -> predict -> monitor -> one request to a real server on
127.0.0.1, and a replay of the same file in a fresh project.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from driftloop.project import Project
from driftloop.registry import Registry
from tests.live import cli, server

PARIS = ZoneInfo("Europe/Paris")
FIRST_DAY, DAYS = date(2016, 3, 20), 9  # to the 28th: the 27th is the 23-hour day
HISTORY_DAYS = 7  # replayed: the 27th and the 28th


def history(hourly: bool = True) -> pl.DataFrame:
    """Rows a network learns and a linear model cannot (y = 3a - 2b + 2ab + 2[c = x]), one an hour
    (instants, UTC) or, for a date event time, 24 entities a day."""
    start = datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=PARIS).astimezone(UTC)
    end = datetime(2016, 3, 29, tzinfo=PARIS).astimezone(UTC)
    instants = [start + timedelta(hours=h) for h in range(int((end - start).total_seconds() // 3600))]
    rows = len(instants) if hourly else 24 * DAYS
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, rows), rng.normal(0, 1, rows)
    c = rng.choice(["x", "y", "z"], rows)
    y = 3 * a - 2 * b + 2 * a * b + 2 * (c == "x") + rng.normal(0, 0.1, rows)
    frame = pl.DataFrame({"a": a, "b": b, "c": c, "y": y})
    if not hourly:
        days = [FIRST_DAY + timedelta(days=i // 24) for i in range(rows)]
        return frame.with_columns(pl.Series("day", days), pl.Series("entity", [f"e{i % 24}" for i in range(rows)]))
    return frame.with_columns(pl.Series("instant", [t.replace(tzinfo=None) for t in instants]))


def written(kind: str) -> pl.DataFrame:
    """The history as a file of this kind of event time holds it."""
    if kind == "date":
        return history(hourly=False).with_columns(pl.col("day").cast(pl.String))
    rows = history()
    paris = pl.col("instant").dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris")
    when = {
        "naive local": paris.dt.strftime("%Y-%m-%d %H:%M:%S"),
        "with offsets": paris.dt.strftime("%Y-%m-%dT%H:%M:%S%:z"),
        "epoch ms": pl.col("instant").dt.epoch("ms"),
    }
    if kind in when:
        return rows.with_columns(when[kind].alias("when")).drop("instant")
    parts = {"year": paris.dt.year(), "month": paris.dt.month(), "day": paris.dt.day(), "hour": paris.dt.hour()}
    return rows.with_columns(**parts).drop("instant")


# Each kind: what init is told of the event time (and id), and the rows of the 27th of March.
KINDS = {
    "date": (["--time", "day", "--id", "entity"], 24),
    "naive local": (["--time", "when"], 23),
    "with offsets": (["--time", "when"], 23),
    "epoch ms": (["--time", "when"], 23),
    "parts": (["--time", "year,month,day,hour"], 23),
}


def quick(root: Path) -> None:
    """Train small and fast; no calendar features (the test is about the clock, not seasonality)."""
    project = Project.load(root)
    train = project.settings.train.model_copy(update={"epochs": 25, "hidden": [32, 16], "learning_rate": 3e-3})
    loop = project.settings.loop.model_copy(update={"monitor_days": 2, "min_new_labels": 10_000})
    Project(root, project.settings.model_copy(update={"features": [], "train": train, "loop": loop})).save()


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_of_event_time_goes_through_every_command(kind: str, tmp_path: Path) -> None:
    time_args, replayed_rows = KINDS[kind]
    data = written(kind)
    path = tmp_path / "history.csv"
    data.write_csv(path)
    root = tmp_path / "project"
    cli("init", str(root), "--data", str(path), *time_args, "--target", "y", "--timezone", "Europe/Paris")
    quick(root)
    ingested = cli("ingest", str(path), "--project", str(root))
    assert ingested[0]["rows_quarantined"] == 0 and ingested[0]["rows_raw"] == data.height
    cli("features", "--project", str(root))
    trained = cli("train", "--project", str(root))
    decisions = cli("promote", str(trained["version"]), "--project", str(root))
    assert Registry(Project.load(root)).champion() == trained["version"], json.dumps(decisions)
    # The 27th in Paris: 23 hours from 26 March 23:00 UTC to 27 March 22:00 UTC.
    predicted = cli("predict", "--date", "2016-03-27", "--project", str(root))
    assert predicted["rows"] == replayed_rows and predicted["days"] == ["2016-03-27"]
    monitored = cli("monitor", "--date", "2016-03-27", "--project", str(root), "--no-report")
    assert monitored["rows"] == replayed_rows and monitored["performance"][0]["rows"] == replayed_rows
    # Served requests read the times as ingest did: the rows of the 27th the server logged have
    # the instants (and outputs) batch prediction gave them.
    project = Project.load(root)
    with server(project) as client:
        answer = client.post("/v1/predict", json=data.drop("y").to_dicts())
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]) == data.height
    logged = project.lake.read("predictions")
    batch, online = (
        logged.filter(pl.col("source") == s).select("entity_id", "event_time", "y") for s in ("batch", "online")
    )
    pairs = batch.join(online, on=["entity_id", "event_time"], how="inner", nulls_equal=True)
    assert pairs.height == replayed_rows == batch.height
    assert pairs.get_column("y").to_list() == pytest.approx(pairs.get_column("y_right").to_list(), rel=1e-5)

    fresh = tmp_path / "replayed"
    cli("init", str(fresh), "--data", str(path), *time_args, "--target", "y", "--timezone", "Europe/Paris")
    quick(fresh)
    first_replayed = FIRST_DAY + timedelta(days=HISTORY_DAYS)
    summary = cli("replay", str(path), "--start", str(first_replayed), "--project", str(fresh))
    assert summary["replayed"] == ["2016-03-27", "2016-03-28"]
    strategies = summary["strategies"]
    assert set(strategies) == {"driftloop", "static", "daily"}
    for name, strategy in strategies.items():
        assert all(np.isfinite(v) for v in strategy["overall"]["y"].values()), name
        rows = {d["day"]: d["rows"] for d in strategy["per_day"]}
        assert rows == {"2016-03-27": replayed_rows, "2016-03-28": 24}, name
