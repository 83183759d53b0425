"""The device's prediction log: every answered batch written to SQLite before its answers leave.

The rows are those ``driftloop serve`` logs to the lake (:func:`driftloop.serve.app.logged_rows`),
each kept as one JSON object under its prediction id, in a database in write-ahead mode with
full synchronisation: a committed batch survives a killed process and a power cut, and a batch
that was not committed was not answered. Labels the device gets for its predictions are kept
beside them, and ``reported`` holds how far the reports home have gone. The central side never
sees these rows; a device reports only profiles and outcomes of them
(:mod:`driftloop.edge.reports`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from driftloop.errors import DriftloopError, RequestRefused

SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    model_version TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    row TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    prediction_id TEXT PRIMARY KEY REFERENCES predictions,
    truth TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reported (
    what TEXT PRIMARY KEY,
    upto INTEGER NOT NULL
);
"""
# How long a writer waits for another (the server and the agent share the file).
BUSY_SECONDS = 30.0


class DeviceLog:
    """A :class:`~driftloop.serve.logbook.Logbook` in a SQLite file: synchronous, so nothing waits
    in memory to be lost (``depth`` is always 0)."""

    def __init__(self, path: Path, render: Callable[[list[Any]], pl.DataFrame]) -> None:
        self.path = path
        self.render = render
        self.written = 0
        self.spilled = 0  # nothing is kept aside: a batch that cannot be written is not answered
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @property
    def depth(self) -> int:
        return 0

    def start(self) -> None:
        """Open (or create) the database."""
        self._connection = connect(self.path)

    def add(self, entry: Any, rows: int | None = None) -> None:
        """Write the rows of scored batch ``entry`` in one transaction; a DriftloopError (and no
        answer) when the disk refuses them."""
        frame = self.render([entry])
        records = [
            (row["prediction_id"], row["model_version"], str(row["scored_at"]), json.dumps(row, default=str))
            for row in frame.iter_rows(named=True)
        ]
        with self._lock:
            connection = self._open()
            try:
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?)", records)
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                _roll_back(connection)
                # Not logged, so not answered: the caller is told to come back (503), never a silent loss.
                raise RequestRefused(f"the device cannot log predictions ({self.path}: {exc})", status=503) from exc
            self.written += len(records)

    def add_labels(self, truth: dict[str, dict[str, Any]]) -> int:
        """Keep the labels ``truth`` gives (prediction id -> target values) in one transaction;
        returns how many are new. A label for a prediction this device never made, or one that
        differs from the label it already has, is refused (422, 409) and none is kept: each
        prediction's outcome is reported once."""
        now = datetime.now(UTC).isoformat()
        with self._lock:
            connection = self._open()
            connection.execute("BEGIN IMMEDIATE")
            try:
                known = _existing(connection, "SELECT prediction_id FROM predictions", truth)
                unknown = [i for i in truth if i not in known]
                if unknown:
                    raise RequestRefused(f"no prediction of this device has the id {unknown[:5]}", status=422)
                held = dict(_existing(connection, "SELECT prediction_id, truth FROM labels", truth, pairs=True))
                changed = [i for i, text in held.items() if json.loads(text) != truth[i]]
                if changed:
                    raise RequestRefused(f"the predictions {changed[:5]} already have other labels", status=409)
                new = [(i, json.dumps(values), now) for i, values in truth.items() if i not in held]
                connection.executemany("INSERT INTO labels VALUES (?, ?, ?)", new)
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                _roll_back(connection)
                raise RequestRefused(f"the device cannot keep labels ({self.path}: {exc})", status=503) from exc
            except BaseException:
                _roll_back(connection)
                raise
        return len(new)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise DriftloopError(f"the device's prediction log {self.path} is not open: start it first")
        return self._connection


def connect(path: Path) -> sqlite3.Connection:
    """The device's log database at ``path`` (made when missing), in write-ahead mode with full
    synchronisation, transactions begun by hand."""
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=BUSY_SECONDS)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.executescript(SCHEMA)
    return connection


def _roll_back(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        connection.execute("ROLLBACK")


def _existing(connection: sqlite3.Connection, query: str, ids: dict[str, Any], *, pairs: bool = False) -> Any:
    """Rows of ``query`` (whose first column is a prediction id) for the ids of ``ids``."""
    found: list[tuple[Any, ...]] = []
    names = list(ids)
    for start in range(0, len(names), 500):  # SQLite's bound on a statement's parameters
        chunk = names[start : start + 500]
        found += connection.execute(f"{query} WHERE prediction_id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
    return found if pairs else {row[0] for row in found}


def logged(path: Path) -> pl.DataFrame:
    """Every prediction in the device's log at ``path``, a row each (its columns as logged)."""
    with sqlite3.connect(path) as connection:
        rows = [json.loads(text) for (text,) in connection.execute("SELECT row FROM predictions ORDER BY rowid")]
    return pl.DataFrame(rows) if rows else pl.DataFrame()


__all__ = ["DeviceLog", "connect", "logged"]
