"""Where batches come from: CSV, Parquet and NDJSON files or folders, and in-memory frames.

Each file is one batch, identified by a digest of its bytes, so ingesting the same content
twice is recognised. CSV is read as text so that a cell that fails to parse keeps its
original characters for quarantine; Parquet and NDJSON keep their own types.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from driftloop.errors import SourceError

_SAFE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
READERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
}


@dataclass(frozen=True)
class Batch:
    """One unit of ingest: rows from one file or frame, and the id that names them."""

    source: str
    frame: Any  # a Polars frame, or the frame of the engine that read the file (a Spark one)
    batch_id: str


def read_paths(paths: Iterable[str | Path]) -> Iterator[Batch]:
    """Yield one batch per supported file in ``paths`` (folders are walked, sorted by name)."""
    for path in expand_paths(paths):
        yield read_file(path)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The supported files named by ``paths``, folders expanded, in a stable order."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and file_kind(p) is not None)
            if not found:
                raise SourceError(f"folder {path} holds no {_supported()} file")
            files.extend(found)
        elif path.is_file():
            if file_kind(path) is None:
                raise SourceError(f"{path}: unsupported file type {path.suffix!r}; driftloop reads {_supported()}")
            files.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    return files


def file_batch_id(path: Path) -> str:
    """The batch id of a file: a digest of its bytes, so the same content is the same batch."""
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()[:20]
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read: {exc}") from exc


def read_file(path: Path, batch_id: str | None = None) -> Batch:
    """Read one file into a batch whose id is a digest of the file's bytes (``batch_id`` if known)."""
    return Batch(source=str(path), frame=read_rows(path), batch_id=batch_id or file_batch_id(path))


def read_rows(path: Path) -> pl.DataFrame:
    """The rows of one file: CSV as text (every cell as written), Parquet and NDJSON with their types."""
    kind = file_kind(path)
    try:
        if kind == "csv":
            return pl.read_csv(path, infer_schema=False, separator=csv_separator(path))
        if kind == "parquet":
            return pl.read_parquet(path)
        return pl.read_ndjson(path, infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        # Polars' first line says what is wrong; its hints (e.g. to truncate ragged lines) would
        # drop data, which driftloop never does, so they are left out.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: cannot be read as {kind}: {reason}; fix the file and ingest it again") from exc


def csv_separator(path: Path) -> str:
    """A tab for a ``.tsv`` file (compressed or not), else a comma."""
    return "\t" if path.suffix == ".tsv" or path.name.endswith(".tsv.gz") else ","


def from_frame(
    data: Any, *, source: str = "<frame>", batch_id: str | None = None, native: Callable[[Any], bool] | None = None
) -> Batch:
    """Wrap a Polars, pandas or Arrow frame as a batch (a frame ``native`` says the engine holds
    as it is, e.g. a Spark DataFrame, is kept as it is).

    Give ``batch_id`` to make re-ingesting the same frame a recognised no-op; without it the
    frame gets a fresh id and is always ingested.
    """
    if batch_id is not None and not _SAFE_ID.fullmatch(batch_id):
        raise SourceError(f"batch id {batch_id!r} may use only letters, digits, '.', '_' and '-' (at most 64)")
    frame = data if native is not None and native(data) else to_polars(data)
    return Batch(source=source, frame=frame, batch_id=batch_id or f"frame-{uuid.uuid4().hex[:14]}")


def to_polars(data: Any) -> pl.DataFrame:
    """Convert a Polars, pandas or Arrow frame to Polars; anything else is a SourceError."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__.split(".")[0]
    try:
        if module == "pandas":
            return pl.from_pandas(data)
        if module in ("pyarrow", "arro3") or hasattr(data, "__arrow_c_stream__"):
            converted = pl.from_arrow(data)
            if isinstance(converted, pl.DataFrame):
                return converted
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise SourceError(f"cannot convert the {type(data).__name__} to a table: {exc}") from exc
    if module == "pyspark":
        raise SourceError(
            f'a Spark {type(data).__name__} is ingested by the Spark engine: set [project] engine = "spark" '
            "in driftloop.toml, or pass a Polars, pandas or Arrow frame"
        )
    raise SourceError(f"cannot ingest a {type(data).__name__}; pass a Polars, pandas or Arrow frame, or file paths")


def file_kind(path: Path) -> str | None:
    """How a file is read (``csv``, ``parquet``, ``ndjson``), or None for a file driftloop does not read."""
    if path.name.startswith("."):
        return None
    suffix = path.suffix.lower()
    if suffix == ".gz":  # only compressed CSV/TSV is read directly
        return "csv" if path.stem.lower().endswith((".csv", ".tsv")) else None
    return READERS.get(suffix)


def _supported() -> str:
    return "CSV (.csv, .tsv, .csv.gz), Parquet (.parquet) or NDJSON (.ndjson, .jsonl)"
