"""What a device tells the central side, and nothing more: per model version, the profiles of the
inputs it answered and of its answers (on the version's reference bins), and the outcomes of
the predictions it got labels for. Never a row.

A report covers the predictions and labels logged since the last report that went through
(``reported`` in the device's log); it is marked sent only once the central side has stored it,
so a device offline for a week sends the week when it is back, and a report whose answer was
lost is sent again under the same id, and stored once.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import polars as pl

from driftloop.edge.logbook import connect
from driftloop.edge.store import DeviceStore
from driftloop.engine.polars import PolarsEngine
from driftloop.errors import DriftloopError
from driftloop.monitor.logged import INPUTS, logged_inputs
from driftloop.profiles import Profile, profile
from driftloop.profiles.device_report import DeviceReport
from driftloop.profiles.images import image_profile, output_profile
from driftloop.profiles.outcomes import Outcome, outcome
from driftloop.runtime.image_package import ImagePackage
from driftloop.runtime.kinds import AnyPackage, load_package, targets_of
from driftloop.runtime.targets import probability_column

PREDICTIONS, LABELS = "predictions", "labels"
# Seconds the central side may take to store a round of reports.
TIMEOUT_SECONDS = 30.0


OUTBOX = "outbox:"  # a range frozen for sending: re-sent as it is until the central side has it


def pending_reports(store: DeviceStore, device: str, status: dict[str, Any] | None = None) -> list[DeviceReport]:
    """The reports of what ``store``'s log gathered since the last report that went through: one
    per model version it served or got labels for, and always one for the version serving now
    (with ``status``), so the central side knows the device is alive.

    The range is frozen the first time it is asked for: until :func:`acknowledge`, every call
    gives the same reports under the same ids, so one stored twice is stored once."""
    with _open(store) as connection:
        connection.execute("BEGIN IMMEDIATE")
        marks = dict(connection.execute("SELECT what, upto FROM reported").fetchall())
        start = {table: marks.get(table, 0) for table in (PREDICTIONS, LABELS)}
        end = {table: marks.get(OUTBOX + table) for table in (PREDICTIONS, LABELS)}
        if None in end.values():
            end = {t: connection.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0] for t in end}
            if end != start:  # a range with something in it is frozen; a heartbeat needs no id kept
                connection.executemany("INSERT OR REPLACE INTO reported VALUES (?, ?)",
                                       [(OUTBOX + t, upto) for t, upto in end.items()])  # fmt: skip
        connection.execute("COMMIT")
        predictions = connection.execute(
            "SELECT row FROM predictions WHERE rowid > ? AND rowid <= ? ORDER BY rowid", (start[PREDICTIONS],
            end[PREDICTIONS])
        ).fetchall()  # fmt: skip
        labels = connection.execute(
            "SELECT p.row, l.truth FROM labels l JOIN predictions p USING (prediction_id) "
            "WHERE l.rowid > ? AND l.rowid <= ? ORDER BY l.rowid",
            (start[LABELS], end[LABELS]),
        ).fetchall()
    rows = [json.loads(text) for (text,) in predictions]
    labelled = [(json.loads(text), json.loads(truth)) for text, truth in labels]
    serving = store.serving()
    versions: set[str] = {r["model_version"] for r in rows} | {r["model_version"] for r, _ in labelled}
    if serving is not None:
        versions.add(serving)
    span = f"{start[PREDICTIONS] + 1}-{end[PREDICTIONS]}.{start[LABELS] + 1}-{end[LABELS]}"
    now = datetime.now(UTC)
    reports = []
    for version in sorted(versions, key=_order):
        package = load_package(store.package(version))
        mine = pl.DataFrame([r for r in rows if r["model_version"] == version], infer_schema_length=None)
        truth = [(r, t) for r, t in labelled if r["model_version"] == version]
        identity = (device, store.manifest(version)["model"], version, f"{device}|{version}|{span}", now)
        reports.append(_report(package, mine, truth, *identity, status if version == serving else {}))
    return reports


def acknowledge(store: DeviceStore) -> None:
    """Record that the frozen range has been reported (once the central side has stored it)."""
    with _open(store) as connection:
        connection.execute("BEGIN IMMEDIATE")
        for table in (PREDICTIONS, LABELS):
            frozen = connection.execute("SELECT upto FROM reported WHERE what = ?", (OUTBOX + table,)).fetchone()
            if frozen is not None:
                connection.execute("INSERT OR REPLACE INTO reported VALUES (?, ?)", (table, frozen[0]))
                connection.execute("DELETE FROM reported WHERE what = ?", (OUTBOX + table,))
        connection.execute("COMMIT")


def send_reports(store: DeviceStore, device: str, url: str, token: str | None, status: dict[str, Any]) -> int:
    """Send the pending reports to ``url`` (the central ``POST /v1/devices/reports``) and, once it
    has stored them, mark them sent; the rows they cover. A DriftloopError when it has not (the
    reports stay pending, under the same ids)."""
    reports = pending_reports(store, device, status)
    body = json.dumps({"reports": [r.to_dict() for r in reports]}).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=TIMEOUT_SECONDS).close()
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode(errors="replace")
        raise DriftloopError(f"{url} refused the reports ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DriftloopError(f"cannot reach {url}: {exc}") from exc
    acknowledge(store)
    return sum(r.rows for r in reports)


def _report(
    package: AnyPackage,
    rows: pl.DataFrame,
    truth: list[tuple[dict[str, Any], dict[str, Any]]],
    device: str,
    model: str,
    version: str,
    report_id: str,
    now: datetime,
    status: dict[str, Any] | None,
) -> DeviceReport:
    inputs, predictions = _profiles(package, rows) if rows.height else (None, None)
    times = rows["scored_at"].str.to_datetime(time_unit="us", time_zone="UTC") if rows.height else None
    return DeviceReport(
        report_id=report_id,
        device=device,
        model=model,
        version=version,
        made_at=now,
        rows=rows.height,
        since=times.min() if times is not None else None,  # type: ignore[arg-type]
        until=times.max() if times is not None else None,  # type: ignore[arg-type]
        inputs=inputs,
        predictions=predictions,
        labelled=len(truth),
        outcomes=_outcomes(package, truth),
        status=status or {},
    )


def _profiles(package: AnyPackage, rows: pl.DataFrame) -> tuple[Profile, Profile]:
    """The inputs' and the answers' profiles, on the bins of the version's training profiles."""
    if isinstance(package, ImagePackage):
        return _image_profiles(package, rows)
    features = package.features
    # The log is JSON: its times are text, and a column no request filled has no type.
    logged = rows.with_columns(
        pl.col("event_time").str.to_datetime(time_unit="us"), pl.col("entity_id").cast(pl.String)
    )
    typed = PolarsEngine().add_features(logged_inputs(logged, package.contract), features)
    reference = Profile.from_dict(package.reference["inputs"])
    inputs = profile(typed, features.numeric_inputs, features.categorical_inputs, like=reference)
    heads = package.heads
    labels = list(heads.classes)
    numbers = [c for c in heads.output_columns if c not in heads.classes]
    answers = profile(rows, numbers, labels, like=Profile.from_dict(package.reference["predictions"]))
    return inputs, answers


def _image_profiles(package: ImagePackage, rows: pl.DataFrame) -> tuple[Profile, Profile]:
    """The images' statistics (logged as each prediction's inputs) and the network's outputs."""
    stats = pl.DataFrame([json.loads(text) for text in rows[INPUTS]])
    inputs = image_profile(stats, like=Profile.from_dict(package.reference["images"]))
    probabilities = [probability_column(package.target, c) for c in package.classes]
    outputs = output_profile(package.target, rows, probabilities, like=Profile.from_dict(package.reference["outputs"]))
    return inputs, outputs


def _outcomes(package: AnyPackage, truth: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, Outcome]:
    outcomes = {}
    for target, classes in targets_of(package).items():
        pairs = [(t.get(target), r.get(target)) for r, t in truth if t.get(target) is not None]
        if pairs:
            actual, predicted = zip(*pairs, strict=True)
            outcomes[target] = outcome(pl.Series(actual), pl.Series(predicted), classes)
    return outcomes


def _open(store: DeviceStore) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(connect(store.log_path))


def _order(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (0, version)


__all__ = ["acknowledge", "pending_reports", "send_reports"]
