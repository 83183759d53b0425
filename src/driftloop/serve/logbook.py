"""Every online prediction, logged to the ``predictions`` table without holding up a request.

Requests hand their rows to a bounded in-memory buffer; a background thread writes what has
gathered every ``flush_seconds`` as one Delta commit. Nothing is dropped: when the lake cannot
be written (or the buffer is full) the rows go to a Parquet file under ``PROJECT/spill/``,
which the next server start (or the next successful flush) writes to the lake and removes.
:meth:`PredictionLog.close` flushes everything, which the server does on shutdown (SIGTERM).
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import polars as pl

from driftloop.errors import LakeError
from driftloop.lake import Lake

logger = logging.getLogger("driftloop.serve")
SPILL_FOLDER = "spill"


class PredictionLog:
    """A bounded buffer of prediction rows, written to the lake in the background."""

    def __init__(self, lake: Lake, spill: Path, *, capacity: int, flush_seconds: float) -> None:
        self.lake = lake
        self.spill = spill
        self.capacity = capacity
        self.flush_seconds = flush_seconds
        self.written = 0  # rows committed to the lake
        self.spilled = 0  # rows that went to a spill file (and may have been replayed since)
        self._pending: list[pl.DataFrame] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time: the thread, or close()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="driftloop-prediction-log", daemon=True)

    @property
    def depth(self) -> int:
        """Rows waiting to be written."""
        return self._rows

    def start(self) -> None:
        """Write rows spilled by an earlier run, then start the background writer."""
        self._replay_spill()
        self._thread.start()

    def add(self, rows: pl.DataFrame) -> None:
        """Queue ``rows``; never blocks on the lake. A full buffer spills to disk instead."""
        with self._lock:
            if self._rows + rows.height <= self.capacity:
                self._pending.append(rows)
                self._rows += rows.height
                return
        logger.warning("prediction log buffer full (%d rows): spilling %d rows to disk", self.capacity, rows.height)
        self._spill(rows)

    def flush(self) -> None:
        """Write what is buffered now (to the lake, or to a spill file if the lake refuses)."""
        with self._write_lock:
            with self._lock:
                batch, self._pending, self._rows = self._pending, [], 0
            if not batch:
                return
            rows = pl.concat(batch, how="diagonal_relaxed")
            try:
                self.lake.append("predictions", rows, metadata={"driftloop.source": "online"})
            except LakeError as exc:
                logger.error("cannot write %d logged predictions to the lake (%s); spilled to %s", rows.height, exc,
                             self.spill)  # fmt: skip
                self._spill(rows)
                return
            self.written += rows.height
        self._replay_spill()  # the lake is back: earlier spills go in too

    def close(self) -> None:
        """Stop the writer and flush everything still buffered."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except Exception:  # the writer must outlive any one failure; the rows were spilled or kept
                logger.exception("the prediction log writer failed; it goes on")

    def _spill(self, rows: pl.DataFrame) -> None:
        self.spill.mkdir(parents=True, exist_ok=True)
        path = self.spill / f"predictions-{uuid.uuid4().hex}.parquet"
        partial = path.with_suffix(".partial")
        rows.write_parquet(partial)
        partial.replace(path)
        self.spilled += rows.height

    def _replay_spill(self) -> None:
        if not self.spill.is_dir():
            return
        for path in sorted(self.spill.glob("predictions-*.parquet")):
            rows = pl.read_parquet(path)
            try:
                self.lake.append("predictions", rows, metadata={"driftloop.source": f"spill {path.name}"})
            except LakeError as exc:
                logger.error("spilled predictions %s still cannot be written: %s", path, exc)
                return
            path.unlink()  # only once its rows are committed
            self.written += rows.height
            logger.warning("wrote %d spilled predictions from %s to the lake", rows.height, path.name)
