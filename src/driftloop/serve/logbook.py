"""Every online prediction, logged to the ``predictions`` table without holding up a request.

Scored batches are handed to a bounded in-memory buffer as they are; a background thread turns
what has gathered into prediction rows (one frame for many batches, so the cost of building
rows is paid per flush, not per request) and writes them every ``flush_seconds`` as one Delta
commit. Nothing is dropped: when the lake cannot
be written (or the buffer is full) the rows go to a Parquet file under ``PROJECT/spill/``,
which the next server start (or the next successful flush) writes to the lake and removes.
:meth:`PredictionLog.close` flushes everything, which the server does on shutdown (SIGTERM).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl

from driftloop.errors import LakeError
from driftloop.lake import Table

if TYPE_CHECKING:
    from driftloop.lake import Lake

logger = logging.getLogger("driftloop.serve")
SPILL_FOLDER = "spill"


class Logbook(Protocol):
    """Where a server's answers are kept: started with the server, handed each scored batch, and
    closed (everything written) when it stops; what it holds and has written, for ``/metrics``."""

    written: int  # rows written
    spilled: int  # rows that could not be written where they belong, kept aside

    @property
    def depth(self) -> int:
        """Rows waiting to be written."""
        ...

    def start(self) -> None: ...

    def add(self, entry: Any, rows: int | None = None) -> None: ...

    def close(self) -> None: ...


class PredictionLog:
    """A bounded buffer of scored batches, written to the lake as prediction rows in the background.

    ``render`` turns a list of buffered entries into the rows to write (by default the entries
    are frames already, and are concatenated); ``table`` is where they go (an image server that
    keeps the images it answers writes them to ``images`` through a log of its own).
    """

    def __init__(
        self,
        lake: Lake,
        spill: Path,
        *,
        capacity: int,
        flush_seconds: float,
        render: Callable[[list[Any]], pl.DataFrame] | None = None,
        table: Table = Table.PREDICTIONS,
    ) -> None:
        self.lake = lake
        self.table = table
        self.spill = spill
        self.capacity = capacity
        self.flush_seconds = flush_seconds
        self.render = render or (lambda frames: pl.concat(frames, how="diagonal_relaxed"))
        self.written = 0  # rows committed to the lake
        self.spilled = 0  # rows that went to a spill file (and may have been replayed since)
        self._pending: list[Any] = []
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

    def add(self, entry: Any, rows: int | None = None) -> None:
        """Queue ``entry`` (``rows`` rows, a frame's height by default); never blocks on the lake.
        A full buffer spills the entry to disk instead."""
        count = entry.height if rows is None else rows
        with self._lock:
            if self._rows + count <= self.capacity:
                self._pending.append(entry)
                self._rows += count
                return
        logger.warning("prediction log buffer full (%d rows): spilling %d rows to disk", self.capacity, count)
        self._spill(self.render([entry]))

    def flush(self) -> None:
        """Write what is buffered now (to the lake, or to a spill file if the lake refuses)."""
        with self._write_lock:
            with self._lock:
                batch, pending, self._pending, self._rows = self._pending, self._rows, [], 0
            if not batch:
                return
            try:
                rows = self.render(batch)
            except Exception:
                with self._lock:  # kept, not dropped: the next flush tries again
                    self._pending, self._rows = batch + self._pending, self._rows + pending
                raise
            try:
                self.lake.append(self.table, rows, metadata={"driftloop.source": "online"})
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
        path = self.spill / f"{self.table}-{uuid.uuid4().hex}.parquet"
        partial = path.with_suffix(".partial")
        rows.write_parquet(partial)
        partial.replace(path)
        with self._lock:  # two scoring threads may spill at once
            self.spilled += rows.height

    def _replay_spill(self) -> None:
        if not self.spill.is_dir():
            return
        for path in sorted(self.spill.glob(f"{self.table}-*.parquet")):
            rows = pl.read_parquet(path)
            # Named in its commit, so a server killed between the commit and the unlink below
            # finds the file committed on restart, and does not append its rows a second time.
            transaction = f"driftloop-spill-{path.stem}"
            try:
                if self.lake.committed(self.table, transaction):
                    logger.warning("spilled predictions %s were already written; removing the file", path.name)
                    path.unlink()
                    continue
                self.lake.append(
                    self.table,
                    rows,
                    metadata={"driftloop.source": f"spill {path.name}"},
                    transaction=transaction,
                )
            except LakeError as exc:
                logger.error("spilled predictions %s still cannot be written: %s", path, exc)
                return
            path.unlink()  # only once its rows are committed
            self.written += rows.height
            logger.warning("wrote %d spilled predictions from %s to the lake", rows.height, path.name)
