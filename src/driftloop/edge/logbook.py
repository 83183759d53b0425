"""The device's prediction log: every answered batch written to SQLite before its answers leave.

The rows are those ``driftloop serve`` logs to the lake (:func:`driftloop.serve.app.logged_rows`),
each kept as one JSON object under its prediction id, in a database in write-ahead mode with
full synchronisation: a committed batch survives a killed process and a power cut, and a batch
that was not committed was not answered. The central side never sees these rows; a device
reports only profiles of them.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from driftloop.errors import DriftloopError, RequestRefused

SCHEMA = """CREATE TABLE IF NOT EXISTS predictions (
    prediction_id TEXT PRIMARY KEY,
    model_version TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    row TEXT NOT NULL
)"""


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
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(SCHEMA)
        self._connection = connection

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
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                # Not logged, so not answered: the caller is told to come back (503), never a silent loss.
                raise RequestRefused(f"the device cannot log predictions ({self.path}: {exc})", status=503) from exc
            self.written += len(records)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            raise DriftloopError(f"the device's prediction log {self.path} is not open: start it first")
        return self._connection


def logged(path: Path) -> pl.DataFrame:
    """Every prediction in the device's log at ``path``, a row each (its columns as logged)."""
    with sqlite3.connect(path) as connection:
        rows = [json.loads(text) for (text,) in connection.execute("SELECT row FROM predictions ORDER BY rowid")]
    return pl.DataFrame(rows) if rows else pl.DataFrame()


__all__ = ["DeviceLog", "logged"]
